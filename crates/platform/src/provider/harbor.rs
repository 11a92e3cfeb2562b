//! `harbor`: a Harbor instance through `kubepkg-image-api`'s Harbor backend
//! ([`HarborRegistry`], Harbor's REST API v2.0 with basic auth).
//!
//! Namespaces are Harbor projects (public or private, with their
//! repository counts and quotas), repositories and tags come from the
//! project's repositories and artifacts, and per-namespace access is a
//! project-level robot account: [`Access::Pull`] grants `repository:pull`,
//! [`Access::Push`] adds `repository:push`. Harbor shows a robot's secret
//! once, when it is created; it is handed back in [`AccessGrant::secret`]
//! and never stored here. A robot is named `robot$<project>+<subject>` by
//! Harbor; [`RegistryProvider::revoke_access`] accepts either that full
//! name or the subject.
//!
//! Settings (`providers.<name>`): `endpoint`, `username`, `password`, and
//! the options `allow_http = "true"` (plain http, logged as a warning by
//! the backend) and `ca_file` (a private CA to trust). For plain OCI
//! distribution registries use [`super::image_api`].

use super::registry::{Built, required, required_secret};
use super::{AccessGrant, Namespace, RegistryProvider, Repository, Visibility};
use crate::config::ProviderSettings;
use crate::store::Access;
use crate::{Error, Result};
use async_trait::async_trait;
use kubepkg_image_api::config::{RegistryConfig, RegistryKind};
use kubepkg_image_api::harbor::{HarborRegistry, RobotAccess, RobotSpec, validate_robot_name};
use kubepkg_image_api::registry::{ImageRegistry, NamespaceSpec};
use std::sync::Arc;

/// The provider kind: `"harbor"`.
pub const KIND: &str = "harbor";

/// The registry's builder for this kind.
pub fn build(name: &str, s: &ProviderSettings) -> Result<Built> {
    let mut config = RegistryConfig::new(required(name, "endpoint", &s.endpoint)?)
        .kind(RegistryKind::Harbor)
        .credentials(
            required(name, "username", &s.username)?,
            required_secret(name, "password", &s.password)?,
        );
    if let Some(v) = s.options.get("allow_http") {
        let allow = v.parse::<bool>().map_err(|_| {
            Error::config(
                format!("providers.{name}.options.allow_http"),
                format!("{v:?} is not true or false"),
            )
        })?;
        config = config.allow_http(allow);
    }
    if let Some(ca) = s.options.get("ca_file") {
        config.ca_file = Some(ca.into());
    }
    Ok(Built::Registry(Arc::new(Harbor::new(&config)?)))
}

/// The Harbor adapter. See the module docs.
#[derive(Debug, Clone)]
pub struct Harbor {
    harbor: HarborRegistry,
}

/// Harbor's full name of a project robot.
pub fn robot_name(project: &str, subject: &str) -> String {
    format!("robot${project}+{subject}")
}

impl Harbor {
    /// A client for one Harbor instance (no I/O yet).
    pub fn new(config: &RegistryConfig) -> Result<Harbor> {
        Ok(Harbor {
            harbor: HarborRegistry::new(config)?,
        })
    }

    /// The wrapped backend (robots, members, quotas, garbage collection).
    pub fn backend(&self) -> &HarborRegistry {
        &self.harbor
    }
}

#[async_trait]
impl RegistryProvider for Harbor {
    fn kind(&self) -> &str {
        KIND
    }

    async fn create_namespace(&self, name: &str, visibility: Visibility) -> Result<Namespace> {
        let spec = NamespaceSpec::new(name).visibility(visibility);
        Ok(self.harbor.create_namespace(&spec).await?)
    }

    async fn list_namespaces(&self) -> Result<Vec<Namespace>> {
        Ok(self.harbor.list_namespaces().await?)
    }

    async fn delete_namespace(&self, name: &str) -> Result<()> {
        Ok(self.harbor.delete_namespace(name).await?)
    }

    async fn list_repositories(&self, namespace: Option<&str>) -> Result<Vec<Repository>> {
        Ok(self.harbor.list_repositories(namespace).await?)
    }

    async fn list_tags(&self, repository: &str) -> Result<Vec<String>> {
        Ok(self.harbor.list_tags(repository).await?)
    }

    async fn grant_access(
        &self,
        namespace: &str,
        subject: &str,
        access: Access,
    ) -> Result<AccessGrant> {
        validate_robot_name(subject)?;
        let mut rights = vec![RobotAccess::new("repository", "pull")];
        if access == Access::Push {
            rights.push(RobotAccess::new("repository", "push"));
        }
        let spec = RobotSpec {
            name: subject.to_string(),
            project: namespace.to_string(),
            description: Some("granted by kubepkg-platform".into()),
            duration_days: -1,
            access: rights,
        };
        let created = self.harbor.create_robot(&spec).await?;
        Ok(AccessGrant {
            namespace: namespace.to_string(),
            subject: created.name,
            access,
            secret: Some(created.secret),
        })
    }

    async fn revoke_access(&self, namespace: &str, subject: &str) -> Result<()> {
        let short = subject
            .strip_prefix(&format!("robot${namespace}+"))
            .unwrap_or(subject);
        validate_robot_name(short)?;
        let full = robot_name(namespace, short);
        let robots = self.harbor.list_robots(namespace).await?;
        let robot = robots.iter().find(|r| r.name == full).ok_or_else(|| {
            Error::NotFound(format!(
                "harbor: project {namespace:?} has no robot account {full:?}"
            ))
        })?;
        Ok(self.harbor.delete_robot(robot.id).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn settings(options: &[(&str, &str)]) -> ProviderSettings {
        ProviderSettings {
            kind: KIND.into(),
            endpoint: Some("https://harbor.example.com".into()),
            username: Some("admin".into()),
            password: Some("pw".to_string().into()),
            options: options
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            ..ProviderSettings::default()
        }
    }

    #[test]
    fn built_from_settings_and_refuses_what_is_missing() {
        assert!(matches!(build("h", &settings(&[])), Ok(Built::Registry(_))));
        let mut s = settings(&[]);
        s.password = None;
        let e = build("h", &s)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("providers.h.password"), "{e}");
        let e = build("h", &settings(&[("allow_http", "perhaps")]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("allow_http"), "{e}");
        assert_eq!(robot_name("team", "ci"), "robot$team+ci");
    }
}
