//! Services, EndpointSlices, Ingresses, ConfigMaps, Secrets, storage, RBAC,
//! namespaces and the dynamic API.

use crate::common::{TestNs, admin, pod};
use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, PersistentVolume, PersistentVolumeClaim, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::rbac::v1::Role;
use k8s_openapi::api::storage::v1::StorageClass;
use kubepkg_k8s_api::resource::FIELD_MANAGER;
use kubepkg_k8s_api::service::SecretObject;
use kubepkg_k8s_api::{ListOptions, Secret};
use kubepkg_util::ErrorKind;
use std::collections::BTreeMap;
use std::time::Duration;

#[tokio::test]
async fn services_endpoints_ingresses_configmaps_secrets() {
    let c = admin().await;
    let ns = TestNs::new(&c, "kp-svc").await;
    let svc: Service = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}
    }))
    .expect("svc");
    c.services(&ns.name)
        .apply(&svc, FIELD_MANAGER, false)
        .await
        .expect("apply svc");
    c.pods(&ns.name)
        .create(&pod("web-1", &[("app", "web")], None))
        .await
        .expect("pod");
    c.pods(&ns.name)
        .wait_ready("web-1", Duration::from_secs(60))
        .await
        .expect("ready");
    // The endpoint-slice controller publishes the ready pod.
    let slices = c.endpoint_slices(&ns.name);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let s = slices.of_service("web").await.expect("slices");
        if s.iter().any(|s| !s.endpoints.is_empty()) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no endpoints for the service: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let ing: Ingress = serde_json::from_value(serde_json::json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "web"},
        "spec": {"rules": [{"host": "web.example", "http": {"paths": [{"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}
    }))
    .expect("ingress");
    c.ingresses(&ns.name).create(&ing).await.expect("ingress");
    assert_eq!(
        c.ingresses(&ns.name)
            .list(&ListOptions::default())
            .await
            .expect("list")
            .len(),
        1
    );

    let secrets = c.secrets(&ns.name);
    let mut vals = BTreeMap::new();
    vals.insert(
        "password".to_string(),
        Secret::new("s3cr3t-value".to_string()),
    );
    secrets
        .create(&SecretObject::opaque("db", vals))
        .await
        .expect("secret");
    let got = secrets.get("db").await.expect("get secret");
    assert_eq!(
        got.text("password").map(|s| s.expose().clone()).as_deref(),
        Some("s3cr3t-value")
    );
    let dbg = format!(
        "{got:?} {:?}",
        secrets.list(&ListOptions::default()).await.expect("list")
    );
    assert!(
        !dbg.contains("s3cr3t-value") && !dbg.contains("czNjcjN0"),
        "{dbg}"
    );
    assert!(dbg.contains("password"));
    assert!(secrets.delete("db").await.expect("delete"));
}

/// `(ip, pod name)` of the ready addresses of an Endpoints object, sorted.
fn ready_addresses(e: &Endpoints) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = e
        .subsets
        .iter()
        .flatten()
        .flat_map(|s| s.addresses.iter().flatten())
        .map(|a| {
            (
                a.ip.clone(),
                a.target_ref
                    .as_ref()
                    .and_then(|r| r.name.clone())
                    .unwrap_or_default(),
            )
        })
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn endpoints_list_the_running_pods_of_a_service() {
    let c = admin().await;
    let ns = TestNs::new(&c, "kp-ep").await;
    let svc: Service = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "api"},
        "spec": {"selector": {"app": "api"},
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
    }))
    .expect("svc");
    c.services(&ns.name).create(&svc).await.expect("svc");
    let pods = c.pods(&ns.name);
    for name in ["api-1", "api-2"] {
        pods.create(&pod(name, &[("app", "api")], None))
            .await
            .expect("pod");
    }
    // Same namespace, other labels: not an endpoint.
    pods.create(&pod("bystander", &[("app", "other")], None))
        .await
        .expect("pod");
    let mut want = Vec::new();
    for name in ["api-1", "api-2", "bystander"] {
        let p = pods
            .wait_ready(name, Duration::from_secs(60))
            .await
            .expect("ready");
        let ip = p.status.and_then(|s| s.pod_ip).expect("pod IP");
        if name != "bystander" {
            want.push((ip, name.to_string()));
        }
    }
    want.sort();
    // The endpoints controller publishes both ready pods (core/v1
    // Endpoints are deprecated since 1.33 but still served and maintained).
    let eps = c.endpoints(&ns.name);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let got = loop {
        let e = eps.get_opt("api").await.expect("get endpoints");
        let addrs = e.as_ref().map(ready_addresses).unwrap_or_default();
        if addrs == want {
            break e.expect("endpoints");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Endpoints api never listed {want:?}; last: {e:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let ports: Vec<(Option<String>, i32)> = got
        .subsets
        .iter()
        .flatten()
        .flat_map(|s| s.ports.iter().flatten())
        .map(|p| (p.name.clone(), p.port))
        .collect();
    assert_eq!(ports, [(Some("http".to_string()), 8080)]);
    let listed = eps.list(&ListOptions::default()).await.expect("list");
    assert_eq!(
        listed
            .iter()
            .filter_map(|e| e.metadata.name.as_deref())
            .collect::<Vec<_>>(),
        ["api"]
    );
    // A deleted pod leaves the addresses.
    pods.delete("api-2", &kubepkg_k8s_api::DeleteOptions::grace(0))
        .await
        .expect("delete pod");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let e = eps.get("api").await.expect("get endpoints");
        let names: Vec<String> = ready_addresses(&e).into_iter().map(|(_, n)| n).collect();
        if names == ["api-1"] {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "api-2 never left the endpoints: {names:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn namespace_delete_and_wait_removes_it_and_its_contents() {
    let c = admin().await;
    // TestNs still cleans up if an assertion fails before the delete.
    let ns = TestNs::new(&c, "kp-nsdel").await;
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some("content".into());
    c.config_maps(&ns.name).create(&cm).await.expect("cm");
    let namespaces = c.namespaces();
    let existed = namespaces
        .delete_and_wait(&ns.name, Duration::from_secs(120))
        .await
        .expect("delete and wait");
    assert!(existed);
    assert!(
        namespaces.get_opt(&ns.name).await.expect("get").is_none(),
        "the namespace is really gone"
    );
    let err = c.config_maps(&ns.name).get("content").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    // Again: nothing to delete.
    let existed = namespaces
        .delete_and_wait(&ns.name, Duration::from_secs(5))
        .await
        .expect("delete and wait again");
    assert!(!existed);
    assert!(
        !namespaces
            .delete(&ns.name, &Default::default())
            .await
            .expect("delete")
    );
}

#[tokio::test]
async fn volumes_claims_and_the_pods_mounting_them() {
    let c = admin().await;
    let ns = TestNs::new(&c, "kp-vol").await;
    let sc_name = kubepkg_testenv::unique_name("kp-sc");
    let pv_name = kubepkg_testenv::unique_name("kp-pv");
    let sc: StorageClass = serde_json::from_value(serde_json::json!({
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": sc_name}, "provisioner": "kubernetes.io/no-provisioner",
        "volumeBindingMode": "Immediate"
    }))
    .expect("sc");
    c.storage_classes().create(&sc).await.expect("sc");
    let pv: PersistentVolume = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": pv_name},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                 "storageClassName": sc_name, "hostPath": {"path": "/tmp/kp"}}
    }))
    .expect("pv");
    c.persistent_volumes().create(&pv).await.expect("pv");
    let pvc: PersistentVolumeClaim = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": sc_name,
                 "resources": {"requests": {"storage": "1Gi"}}}
    }))
    .expect("pvc");
    let claims = c.persistent_volume_claims(&ns.name);
    claims.create(&pvc).await.expect("pvc");
    let mut user = pod("user", &[], None);
    if let Some(spec) = user.spec.as_mut() {
        spec.volumes = Some(vec![
            serde_json::from_value(serde_json::json!(
            {"name": "d", "persistentVolumeClaim": {"claimName": "data"}}))
            .expect("vol"),
        ]);
    }
    c.pods(&ns.name).create(&user).await.expect("pod");
    c.pods(&ns.name)
        .create(&pod("other", &[], None))
        .await
        .expect("pod");
    let mounting = claims.pods_mounting("data").await.expect("pods mounting");
    assert_eq!(mounting.len(), 1);
    assert_eq!(mounting[0].metadata.name.as_deref(), Some("user"));
    // The PV controller binds the claim.
    let bound = claims
        .wait_for("data", Duration::from_secs(60), |p| {
            p.status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .filter(|ph| ph == "Bound")
        })
        .await
        .expect("bound");
    assert_eq!(bound, "Bound");
    let vol = claims.bound_volume("data").await.expect("bound volume");
    assert_eq!(vol.and_then(|v| v.metadata.name), Some(pv_name.clone()));
    // Cleanup of the cluster-scoped objects.
    c.pods(&ns.name)
        .delete("user", &kubepkg_k8s_api::DeleteOptions::grace(0))
        .await
        .expect("del");
    claims
        .delete("data", &Default::default())
        .await
        .expect("del pvc");
    c.persistent_volumes()
        .delete(&pv_name, &Default::default())
        .await
        .expect("del pv");
    c.storage_classes()
        .delete(&sc_name, &Default::default())
        .await
        .expect("del sc");
}

#[tokio::test]
async fn rbac_objects_and_namespaces() {
    let c = admin().await;
    let ns = TestNs::new(&c, "kp-rbac").await;
    let sa: ServiceAccount = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot"}
    }))
    .expect("sa");
    c.service_accounts(&ns.name).create(&sa).await.expect("sa");
    let role: Role = serde_json::from_value(serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "reader"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]
    }))
    .expect("role");
    c.roles(&ns.name).create(&role).await.expect("role");
    let rb = c
        .bind_cluster_role_in_namespace(&ns.name, "robot", "view")
        .await
        .expect("bind");
    assert_eq!(rb.role_ref.name, "view");
    assert_eq!(
        c.role_bindings(&ns.name)
            .list(&ListOptions::default())
            .await
            .expect("rbs")
            .len(),
        1
    );
    let admin_role = c
        .cluster_roles()
        .get("admin")
        .await
        .expect("clusterrole admin");
    assert!(admin_role.rules.is_some_and(|r| !r.is_empty()));
    assert!(
        !c.cluster_role_bindings()
            .list(&ListOptions::default())
            .await
            .expect("crbs")
            .is_empty()
    );
    // Namespaces: ensure is idempotent and labels land.
    let labels = BTreeMap::from([("team".to_string(), "a".to_string())]);
    let got = c
        .namespaces()
        .ensure(&ns.name, &labels)
        .await
        .expect("ensure");
    assert_eq!(
        got.metadata
            .labels
            .and_then(|l| l.get("team").cloned())
            .as_deref(),
        Some("a")
    );
    let err = c
        .namespaces()
        .ensure("Not_Valid", &labels)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
}

#[tokio::test]
async fn custom_resources_through_the_dynamic_api() {
    let c = admin().await;
    let ns = TestNs::new(&c, "kp-dyn").await;
    let group = format!("{}.kubepkg.test", kubepkg_testenv::unique_name("g"));
    let crd = format!(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: gadgets.{group}\n\
         spec:\n  group: {group}\n  scope: Namespaced\n  names: {{plural: gadgets, singular: gadget, kind: Gadget}}\n\
         \x20 versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema:\n\
         \x20       type: object\n        x-kubernetes-preserve-unknown-fields: true\n"
    );
    let report = c.apply(&crd, &Default::default()).await;
    assert!(report.is_ok(), "{report:?}");
    // Unknown until established; discovery refreshes on the miss.
    let api_version = format!("{group}/v1");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let gadgets = loop {
        match c.dynamic(&api_version, "Gadget", Some(&ns.name)).await {
            Ok(g) => break g,
            Err(e) if e.is_not_found() && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(300)).await
            }
            Err(e) => panic!("{e}"),
        }
    };
    let obj: kubepkg_k8s_api::dynamic::DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": api_version, "kind": "Gadget",
        "metadata": {"name": "g1", "namespace": ns.name}, "spec": {"size": 3}
    }))
    .expect("obj");
    gadgets
        .apply(&obj, FIELD_MANAGER, false)
        .await
        .expect("apply cr");
    let got = gadgets.get("g1").await.expect("get cr");
    assert_eq!(got.data["spec"]["size"], 3);
    assert_eq!(
        gadgets
            .list(&ListOptions::default())
            .await
            .expect("list")
            .len(),
        1
    );
    let err = c
        .dynamic("nope.example.com/v1", "Thing", None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = c
        .dynamic(&api_version, "NoSuchKind", None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    c.apiextensions_cleanup(&format!("gadgets.{group}")).await;
}

trait Cleanup {
    async fn apiextensions_cleanup(&self, crd: &str);
}

impl Cleanup for kubepkg_k8s_api::Client {
    async fn apiextensions_cleanup(&self, crd: &str) {
        use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
        let _ = self
            .cluster::<CustomResourceDefinition>()
            .delete(crd, &Default::default())
            .await;
    }
}
