//! Against the real Docker engine and OCI registry of the local environment
//! (`cargo xtask env up`): build a FROM-scratch busybox image, run it, push
//! it with credentials, find it through the distribution backend, pull it
//! back, delete it by digest and see it gone.

mod common;

use futures::StreamExt;
use kubepkg_image_api::engine::{BuildContext, BuildOptions, ContainerSpec, PruneOptions};
use kubepkg_image_api::registry::media_types;
use kubepkg_image_api::{ArtifactRef, Error, ProgressEvent, RegistryAuth};
use kubepkg_util::ErrorKind;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_run_push_list_pull_delete() {
    let engine = common::engine();
    let registry = common::registry();
    let host = common::registry_env().host.clone();
    let ns = "kubepkg-it";
    let name = kubepkg_testenv::unique_name("roundtrip");
    let repo = format!("{ns}/{name}");
    let image = format!("{host}/{repo}");
    let token = kubepkg_testenv::unique_name("hello");

    // -- build from a directory, with a build arg
    let dir = tempfile::tempdir().unwrap();
    common::busybox_context(dir.path(), common::GREETING_DOCKERFILE);
    let opts = BuildOptions::tagged(format!("{image}:v1")).build_arg("GREETING", token.clone());
    let mut events = engine.build_stream(BuildContext::Directory(dir.path().into()), opts);
    let mut built = None;
    let mut log = String::new();
    while let Some(ev) = events.next().await {
        match ev.expect("build event") {
            ProgressEvent::Built { image_id } => built = Some(image_id),
            ProgressEvent::Log { text } => log.push_str(&text),
            _ => {}
        }
    }
    let image_id = built.unwrap_or_else(|| panic!("no image id; log:\n{log}"));
    assert!(image_id.starts_with("sha256:"), "{image_id}");
    assert!(log.contains("COPY busybox"), "{log}");

    let details = engine.inspect_image(&format!("{image}:v1")).await.unwrap();
    assert_eq!(details.id, image_id);
    assert!(
        details
            .env
            .iter()
            .any(|e| e == &format!("GREETING={token}"))
    );

    // -- run it (no network) and read its output
    let out = engine
        .run(&ContainerSpec::new(format!("{image}:v1"), Vec::<String>::new()).network_mode("none"))
        .await
        .unwrap();
    assert_eq!(out.exit_code, 0, "stderr: {}", out.stderr);
    assert_eq!(out.stdout.trim(), format!("{token} from busybox"));
    let failing = engine
        .run(
            &ContainerSpec::new(
                format!("{image}:v1"),
                ["/bin/busybox", "sh", "-c", "echo oops >&2; exit 3"],
            )
            .network_mode("none"),
        )
        .await
        .unwrap();
    assert_eq!(failing.exit_code, 3);
    assert_eq!(failing.stderr.trim(), "oops");

    // -- push with credentials; the last event carries the digest
    let pushed = engine
        .push(&format!("{image}:v1"), Some(&common::auth()))
        .await
        .unwrap();
    assert_eq!(pushed.tag, "v1");
    assert!(pushed.digest.starts_with("sha256:"));

    // -- list it through the distribution backend
    registry.check_credentials().await.unwrap();
    let repos = registry.list_repositories(Some(ns)).await.unwrap();
    assert!(
        repos.iter().any(|r| r.name == repo),
        "{repo} not in {repos:?}"
    );
    assert!(repos.iter().all(|r| r.name.starts_with("kubepkg-it/")));
    assert_eq!(
        registry.list_tags(&repo).await.unwrap(),
        vec!["v1".to_string()]
    );
    let artifacts = registry.list_artifacts(&repo).await.unwrap();
    assert_eq!(artifacts.len(), 1, "{artifacts:?}");
    let a = &artifacts[0];
    assert_eq!(a.digest, pushed.digest);
    assert_eq!(a.tags, vec!["v1".to_string()]);
    let busybox_len = std::fs::metadata(&kubepkg_testenv::docker().busybox)
        .unwrap()
        .len();
    // gzip-compressed layer: smaller than busybox, but not tiny
    assert!(
        a.size > busybox_len / 4 && a.size < busybox_len * 2,
        "{a:?}"
    );
    let pushed_at = a.pushed.clone().expect("config created time");
    assert!(pushed_at.starts_with("20"), "{pushed_at}");

    let v1 = ArtifactRef::Tag("v1".into());
    let manifest = registry.get_manifest(&repo, &v1).await.unwrap();
    assert_eq!(manifest.digest, pushed.digest);
    assert_eq!(manifest.size, pushed.size);
    assert_eq!(manifest.media_type, media_types::DOCKER_MANIFEST);
    let m = manifest.as_image().expect("image manifest");
    assert_eq!(m.layers.len(), 1);
    assert_eq!(m.total_size(), a.size);
    assert_eq!(registry.resolve(&repo, &v1).await.unwrap(), pushed.digest);
    let by_digest = registry
        .get_artifact(&repo, &ArtifactRef::Digest(pushed.digest.clone()))
        .await
        .unwrap();
    assert_eq!(&by_digest, a);

    // -- pull it back: drop the local copy first so the pull transfers it
    engine
        .remove_image(&format!("{image}:v1"), true)
        .await
        .unwrap();
    assert_eq!(
        engine
            .inspect_image(&format!("{image}:v1"))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    let pulled = engine
        .pull(&format!("{image}:v1"), Some(&common::auth()))
        .await
        .unwrap();
    assert_eq!(pulled.as_deref(), Some(pushed.digest.as_str()));
    let again = engine.inspect_image(&format!("{image}:v1")).await.unwrap();
    assert_eq!(again.id, image_id, "same config, same image id");
    assert!(
        again
            .repo_digests
            .contains(&format!("{image}@{}", pushed.digest)),
        "{:?}",
        again.repo_digests
    );
    let out = engine
        .run(&ContainerSpec::new(format!("{image}:v1"), Vec::<String>::new()).network_mode("none"))
        .await
        .unwrap();
    assert_eq!(out.stdout.trim(), format!("{token} from busybox"));

    // -- deleting a tag alone is not something this registry does
    let e = registry.delete_tag(&repo, "v1").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");

    // -- delete by digest, and see it gone
    registry
        .delete_artifact(&repo, &ArtifactRef::Digest(pushed.digest.clone()))
        .await
        .unwrap();
    let e = registry
        .get_manifest(&repo, &ArtifactRef::Digest(pushed.digest.clone()))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert_eq!(
        registry.resolve(&repo, &v1).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert!(registry.list_tags(&repo).await.unwrap().is_empty());
    assert!(registry.list_artifacts(&repo).await.unwrap().is_empty());
    // ... and a pull of it now fails
    engine
        .remove_image(&format!("{image}:v1"), true)
        .await
        .unwrap();
    let e = engine
        .pull(&format!("{image}:v1"), Some(&common::auth()))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_load_tag_and_prune() {
    let engine = common::engine();
    let name = kubepkg_testenv::unique_name("saveload");
    let dir = tempfile::tempdir().unwrap();
    common::busybox_context(dir.path(), common::GREETING_DOCKERFILE);
    let built = engine
        .build(
            BuildContext::Directory(dir.path().into()),
            // A unique build arg: an image identical to another test's would
            // share its id, and removing our tags would not remove it.
            BuildOptions {
                tags: vec![format!("{name}:a"), format!("{name}:b")],
                ..BuildOptions::default()
            }
            .build_arg("GREETING", name.clone()),
        )
        .await
        .unwrap();
    // both tags were applied
    let listed = engine.list_images(false).await.unwrap();
    let mine = listed.iter().find(|i| i.id == built.id).expect("listed");
    assert!(mine.repo_tags.contains(&format!("{name}:a")));
    assert!(mine.repo_tags.contains(&format!("{name}:b")));

    engine
        .tag_image(&format!("{name}:a"), &format!("{name}-copy:c"))
        .await
        .unwrap();
    assert_eq!(
        engine
            .inspect_image(&format!("{name}-copy:c"))
            .await
            .unwrap()
            .id,
        built.id
    );

    let mut tar = Vec::new();
    let mut s = engine.save_images(&[format!("{name}:a")]);
    while let Some(chunk) = s.next().await {
        tar.extend_from_slice(&chunk.unwrap());
    }
    assert!(tar.len() as u64 > 100_000, "tarball of {} bytes", tar.len());

    for t in ["a", "b"] {
        engine
            .remove_image(&format!("{name}:{t}"), true)
            .await
            .unwrap();
    }
    engine
        .remove_image(&format!("{name}-copy:c"), true)
        .await
        .unwrap();
    assert_eq!(
        engine.inspect_image(&built.id).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );

    let body = futures::stream::iter(vec![Ok(bytes::Bytes::from(tar))]);
    let loaded = engine.load_images(Box::pin(body)).await.unwrap();
    assert_eq!(loaded, vec![format!("{name}:a")]);
    assert_eq!(
        engine.inspect_image(&format!("{name}:a")).await.unwrap().id,
        built.id
    );
    engine
        .remove_image(&format!("{name}:a"), true)
        .await
        .unwrap();
}

#[tokio::test]
async fn prune_removes_only_labelled_dangling_images() {
    let engine = common::engine();
    let name = kubepkg_testenv::unique_name("prune");
    let label = format!("kubepkg.test/prune={name}");
    // Two builds of one tag: the first image is left dangling, with our label.
    let mut ids = Vec::new();
    for round in ["one", "two"] {
        let dir = tempfile::tempdir().unwrap();
        common::busybox_context(
            dir.path(),
            &format!(
                "FROM scratch\nCOPY busybox /bin/busybox\nLABEL kubepkg.test/prune={name}\n\
                 CMD [\"/bin/busybox\", \"echo\", \"{round}\"]\n"
            ),
        );
        let built = engine
            .build(
                BuildContext::Directory(dir.path().into()),
                BuildOptions::tagged(format!("{name}:latest")),
            )
            .await
            .unwrap();
        ids.push(built.id);
    }
    assert_ne!(ids[0], ids[1]);
    // Another label matches nothing, and removes nothing.
    let none = engine
        .prune_images(&PruneOptions::dangling().label(format!("kubepkg.test/prune={name}-other")))
        .await
        .unwrap();
    assert!(none.deleted.is_empty(), "{none:?}");
    assert!(engine.inspect_image(&ids[0]).await.is_ok());

    let report = engine
        .prune_images(&PruneOptions::dangling().label(&label))
        .await
        .unwrap();
    assert!(
        report
            .deleted
            .iter()
            .any(|d| d.contains(ids[0].trim_start_matches("sha256:"))),
        "{report:?} should include {}",
        ids[0]
    );
    assert_eq!(
        engine.inspect_image(&ids[0]).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    // The tagged image is not dangling and stays.
    assert_eq!(
        engine
            .inspect_image(&format!("{name}:latest"))
            .await
            .unwrap()
            .id,
        ids[1]
    );
    engine
        .remove_image(&format!("{name}:latest"), true)
        .await
        .unwrap();
}

#[tokio::test]
async fn bad_dockerfile_is_a_typed_build_error() {
    let engine = common::engine();
    let dir = tempfile::tempdir().unwrap();
    common::busybox_context(
        dir.path(),
        "FROM scratch\nCOPY busybox /bin/busybox\nFROBNICATE the widgets\n",
    );
    let e = engine
        .build(
            BuildContext::Directory(dir.path().into()),
            BuildOptions::tagged(kubepkg_testenv::unique_name("bad")),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid);
    match &e {
        Error::Build { message } => {
            assert!(
                message.to_ascii_lowercase().contains("frobnicate"),
                "engine message: {message}"
            )
        }
        other => panic!("expected Error::Build, got {other:?}"),
    }

    // a failing RUN step is a build error too, with the step's message
    let dir = tempfile::tempdir().unwrap();
    common::busybox_context(
        dir.path(),
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"false\"]\n",
    );
    let e = engine
        .build(
            BuildContext::Directory(dir.path().into()),
            BuildOptions {
                network_mode: Some("none".into()),
                ..BuildOptions::tagged(kubepkg_testenv::unique_name("failing"))
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Build { .. }), "{e:?}");
    assert!(e.to_string().contains("non-zero code"), "{e}");
}

#[tokio::test]
async fn wrong_credentials_are_unauthorized() {
    let r = common::registry_env();
    let cfg = kubepkg_image_api::RegistryConfig::new(r.url.clone())
        .credentials(r.username.clone(), "definitely-not-the-password")
        .allow_http(true);
    let registry = kubepkg_image_api::connect_registry(&cfg).unwrap();
    let e = registry.check_credentials().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
    let e = registry.list_repositories(None).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
    assert!(!e.to_string().contains("definitely-not"), "{e}");

    // no credentials at all
    let anon = kubepkg_image_api::connect_registry(
        &kubepkg_image_api::RegistryConfig::new(r.url.clone()).allow_http(true),
    )
    .unwrap();
    assert_eq!(
        anon.check_credentials().await.unwrap_err().kind(),
        ErrorKind::Unauthorized
    );

    // the engine pushing with wrong credentials
    let engine = common::engine();
    let dir = tempfile::tempdir().unwrap();
    common::busybox_context(dir.path(), common::GREETING_DOCKERFILE);
    let tag = format!(
        "{}/kubepkg-it/{}:v1",
        r.host,
        kubepkg_testenv::unique_name("unauth")
    );
    engine
        .build(
            BuildContext::Directory(dir.path().into()),
            BuildOptions::tagged(&tag),
        )
        .await
        .unwrap();
    let bad = RegistryAuth::basic(r.host.clone(), r.username.clone(), "wrong");
    let e = engine.push(&tag, Some(&bad)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
    engine.remove_image(&tag, true).await.unwrap();
}

#[tokio::test]
async fn missing_repository_is_not_found() {
    let registry = common::registry();
    let repo = format!("kubepkg-it/{}", kubepkg_testenv::unique_name("missing"));
    for e in [
        registry.list_tags(&repo).await.unwrap_err(),
        registry.list_artifacts(&repo).await.unwrap_err(),
        registry
            .get_manifest(&repo, &ArtifactRef::Tag("latest".into()))
            .await
            .unwrap_err(),
        registry.delete_repository(&repo).await.unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    }
    // invalid names never reach the server
    let e = registry.list_tags("Not/Valid").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid);
    // namespaces do not exist in this API
    let e = registry.list_namespaces().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    let e = registry
        .create_namespace(&kubepkg_image_api::NamespaceSpec::new("x"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
}

#[tokio::test]
async fn engine_version_negotiated() {
    let engine = common::engine();
    engine.ping().await.unwrap();
    let v = engine.version().await.unwrap();
    assert!(!v.version.is_empty());
    assert_eq!(v.os, "linux");
    // the client speaks no newer API than the engine
    let parse = |s: &str| -> (u32, u32) {
        let (a, b) = s.split_once('.').unwrap();
        (a.parse().unwrap(), b.parse().unwrap())
    };
    assert!(
        parse(&v.negotiated_api_version) <= parse(&v.api_version),
        "{v:?}"
    );
}

#[tokio::test]
async fn unreachable_engine_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("nothing.sock");
    // bollard checks the socket exists when connecting
    let e = kubepkg_image_api::connect_engine(&kubepkg_image_api::EngineConfig::new(
        sock.display().to_string(),
    ))
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid, "{e}");
    let e = kubepkg_image_api::connect_registry(
        &kubepkg_image_api::RegistryConfig::new("http://127.0.0.1:1").allow_http(true),
    )
    .unwrap()
    .list_tags("a")
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
}

/// A directory context of many MiB is streamed to the engine and builds;
/// container output comes as a stream (followed to the container's end,
/// or only its tail), and the collected form keeps the end of a log larger
/// than it holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_contexts_build_and_logs_stream() {
    use kubepkg_image_api::engine::{LogChunk, LogOptions, MAX_LOG_BYTES};

    let engine = common::engine();
    let name = kubepkg_testenv::unique_name("logs");
    let dir = tempfile::tempdir().unwrap();
    common::busybox_context(
        dir.path(),
        &format!(
            "FROM scratch\nCOPY busybox /bin/busybox\nCOPY big.bin /big.bin\n\
             LABEL kubepkg.test/logs={name}\n"
        ),
    );
    let big: Vec<u8> = (0..24u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    std::fs::write(dir.path().join("big.bin"), &big).unwrap();
    let image = format!("{name}:v1");
    let built = engine
        .build(
            BuildContext::Directory(dir.path().into()),
            BuildOptions::tagged(image.clone()),
        )
        .await
        .unwrap();
    let size = engine.inspect_image(&built.id).await.unwrap().size;
    assert!(size > big.len() as u64, "image of {size} bytes");

    let sh = |script: &str| {
        ContainerSpec::new(image.clone(), ["/bin/busybox", "sh", "-c", script]).network_mode("none")
    };
    // followed: lines arriving over a second, then the end of the stream
    let id = engine
        .create_container(&sh(
            "for i in 1 2 3 4 5; do echo line $i; /bin/busybox sleep 0.2; done; echo done >&2",
        ))
        .await
        .unwrap();
    engine.start_container(&id).await.unwrap();
    let mut stream = engine.container_log_stream(&id, &LogOptions::follow());
    let (mut out, mut err) = (Vec::new(), Vec::new());
    while let Some(chunk) = stream.next().await {
        match chunk.unwrap() {
            LogChunk::Stdout(b) => out.extend_from_slice(&b),
            LogChunk::Stderr(b) => err.extend_from_slice(&b),
            _ => {}
        }
    }
    assert_eq!(
        String::from_utf8_lossy(&out),
        "line 1\nline 2\nline 3\nline 4\nline 5\n"
    );
    assert_eq!(String::from_utf8_lossy(&err), "done\n");
    assert_eq!(engine.wait_container(&id).await.unwrap(), 0);
    // only the tail
    let tail = LogOptions {
        tail: Some(2),
        ..LogOptions::default()
    };
    let mut last = Vec::new();
    let mut s = engine.container_log_stream(&id, &tail);
    while let Some(chunk) = s.next().await {
        if let LogChunk::Stdout(b) = chunk.unwrap() {
            last.extend_from_slice(&b);
        }
    }
    // the tail counts lines of both streams together
    assert!(
        String::from_utf8_lossy(&last).ends_with("line 5\n"),
        "{last:?}"
    );
    assert!(!String::from_utf8_lossy(&last).contains("line 3"));
    engine.remove_container(&id, true).await.unwrap();

    // more output than the collected form keeps: its end survives
    let out = engine
        .run(&sh(
            "/bin/busybox yes 0123456789abcdef | /bin/busybox head -c 5000000",
        ))
        .await
        .unwrap();
    assert_eq!(out.exit_code, 0, "{}", out.stderr);
    assert!(out.truncated);
    assert_eq!(out.stdout.len(), MAX_LOG_BYTES);
    // 5000000 = 294117 × 17 + 11
    assert!(
        out.stdout.ends_with("\n0123456789a"),
        "{:?}",
        &out.stdout[out.stdout.len() - 40..]
    );

    engine.remove_image(&image, true).await.unwrap();
    // a missing context directory fails before anything is sent
    let e = engine
        .build(
            BuildContext::Directory(dir.path().join("nope")),
            BuildOptions::tagged(format!("{name}:never")),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");

    // names that would be URL syntax in the engine API are refused up front
    for bad in ["../containers/json", "busybox?x=1"] {
        let e = engine.inspect_image(bad).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid, "{bad}: {e}");
    }
    let e = engine
        .remove_container("../images/busybox", true)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid, "{e}");
}

/// Against the registry's HTTPS endpoint (a certificate from the
/// environment's own CA): verified by default, so unknown to a default
/// client; `allow_http` does not weaken that, `ca_file` trusts the CA, and
/// only `danger_accept_invalid_certs` skips the check.
#[tokio::test]
async fn tls_is_verified_and_allow_http_is_not_a_cert_switch() {
    let r = common::registry_env();
    let tls = kubepkg_testenv::registry_tls();
    let base = || {
        kubepkg_image_api::RegistryConfig::new(tls.url.clone())
            .credentials(r.username.clone(), r.password.clone())
    };
    for (what, cfg) in [("default", base()), ("allow_http", base().allow_http(true))] {
        let reg = kubepkg_image_api::connect_registry(&cfg).unwrap();
        let e = reg.check_credentials().await.unwrap_err();
        assert!(matches!(e, Error::Transport { .. }), "{what}: {e:?}");
    }
    let mut trusted = base();
    trusted.ca_file = Some(tls.ca_file.clone());
    let reg = kubepkg_image_api::connect_registry(&trusted).unwrap();
    reg.check_credentials().await.unwrap();
    reg.list_repositories(None).await.unwrap();

    let unchecked =
        kubepkg_image_api::connect_registry(&base().danger_accept_invalid_certs(true)).unwrap();
    unchecked.check_credentials().await.unwrap();
}
