//! Where the S3 backend's credentials, region and endpoint come from.
//!
//! Credentials are aws-config's providers, so the S3 backend finds them
//! where every AWS SDK does:
//!
//! - [`CredentialsConfig::Chain`] (the default): the standard AWS
//!   credential chain — the `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` /
//!   `AWS_SESSION_TOKEN` environment variables, the shared config and
//!   credentials files (`AWS_PROFILE`, `AWS_CONFIG_FILE`,
//!   `AWS_SHARED_CREDENTIALS_FILE`; static keys, assume-role,
//!   `credential_process`, SSO), web identity tokens (EKS IRSA:
//!   `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`), the ECS container
//!   endpoint and EC2 instance metadata. The chain is built on the first
//!   request (building it is asynchronous, connecting is not).
//! - [`CredentialsConfig::Env`]: only the environment variables.
//! - [`CredentialsConfig::Profile`]: only one profile of the shared files.
//! - [`CredentialsConfig::Static`]: keys given in the config, overriding
//!   everything else.
//!
//! Whatever the source, the SDK caches the credentials and fetches new ones
//! before they expire (temporary credentials of SSO, assume-role, IRSA, ECS
//! and IMDS refresh by themselves). No credential is ever logged.
//!
//! The region is [`S3Config::region`](crate::config::S3Config::region) or
//! else `AWS_REGION`, `AWS_DEFAULT_REGION`, `us-east-1`; the endpoint is
//! [`S3Config::endpoint`](crate::config::S3Config::endpoint) or else
//! `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL` (unless
//! `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`), AWS's own otherwise.

use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_config::environment::credentials::EnvironmentVariableCredentialsProvider;
use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::provider_config::ProviderConfig;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};
use aws_sdk_s3::config::{Credentials, Region};

use crate::config::CredentialsConfig;
use crate::error::{Error, Result};

/// The region when neither the config nor the environment names one.
const DEFAULT_REGION: &str = "us-east-1";

/// Reads one environment variable; empty counts as unset.
pub(super) fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The region to sign with: the configured one, else `AWS_REGION`, else
/// `AWS_DEFAULT_REGION`, else `us-east-1`.
pub(super) fn region(
    configured: Option<&str>,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<Region> {
    match configured {
        Some("") => Err(Error::Invalid("s3 region must not be empty".into())),
        Some(r) => Ok(Region::new(r.to_owned())),
        None => Ok(Region::new(
            var("AWS_REGION")
                .or_else(|| var("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|| DEFAULT_REGION.to_owned()),
        )),
    }
}

/// The endpoint: the configured one, else `AWS_ENDPOINT_URL_S3`, else
/// `AWS_ENDPOINT_URL` (both ignored when
/// `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` is `true`), else none (AWS).
pub(super) fn endpoint(
    configured: Option<&str>,
    var: &dyn Fn(&str) -> Option<String>,
) -> Option<String> {
    if let Some(ep) = configured {
        return Some(ep.to_owned());
    }
    let ignore =
        var("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if ignore {
        return None;
    }
    var("AWS_ENDPOINT_URL_S3").or_else(|| var("AWS_ENDPOINT_URL"))
}

/// The credentials provider for a config.
pub(super) fn provider(
    c: &CredentialsConfig,
    region: &Region,
) -> Result<SharedCredentialsProvider> {
    Ok(match c {
        CredentialsConfig::Static {
            access_key,
            secret_key,
            session_token,
        } => {
            if access_key.is_empty() || secret_key.expose().is_empty() {
                return Err(Error::Invalid(
                    "static credentials need access_key and secret_key".into(),
                ));
            }
            SharedCredentialsProvider::new(Credentials::new(
                access_key.clone(),
                secret_key.expose().to_owned(),
                session_token.as_ref().map(|t| t.expose().to_owned()),
                None,
                "kubepkg-static",
            ))
        }
        CredentialsConfig::Env => {
            SharedCredentialsProvider::new(EnvironmentVariableCredentialsProvider::new())
        }
        CredentialsConfig::Profile { name } => {
            let mut b = ProfileFileCredentialsProvider::builder()
                .configure(&ProviderConfig::default().with_region(Some(region.clone())));
            if let Some(name) = name.as_deref().filter(|n| !n.is_empty()) {
                b = b.profile_name(name);
            }
            SharedCredentialsProvider::new(b.build())
        }
        CredentialsConfig::Chain => SharedCredentialsProvider::new(StandardChain {
            region: region.clone(),
            chain: tokio::sync::OnceCell::new(),
        }),
    })
}

/// aws-config's default credential chain, built on first use (building it
/// is asynchronous; [`S3Storage::new`](super::S3Storage::new) is not).
#[derive(Debug)]
struct StandardChain {
    region: Region,
    chain: tokio::sync::OnceCell<DefaultCredentialsChain>,
}

impl ProvideCredentials for StandardChain {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            let chain = self
                .chain
                .get_or_init(|| {
                    DefaultCredentialsChain::builder()
                        .region(self.region.clone())
                        .build()
                })
                .await;
            chain.provide_credentials().await
        })
    }
}

/// The credentials failure somewhere in an error's source chain: no
/// provider of the chain had credentials, or one failed to fetch them.
pub(super) fn credentials_failure<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a CredentialsError> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(c) = err.downcast_ref::<CredentialsError>() {
            return Some(c);
        }
        cur = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn vars(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn region_from_config_then_environment() {
        let none = vars(&[]);
        assert_eq!(region(None, &none).unwrap().as_ref(), "us-east-1");
        let env = vars(&[("AWS_REGION", "eu-west-3"), ("AWS_DEFAULT_REGION", "x")]);
        assert_eq!(region(None, &env).unwrap().as_ref(), "eu-west-3");
        let default_only = vars(&[("AWS_DEFAULT_REGION", "ap-south-1")]);
        assert_eq!(region(None, &default_only).unwrap().as_ref(), "ap-south-1");
        assert_eq!(
            region(Some("cn-north-1"), &env).unwrap().as_ref(),
            "cn-north-1"
        );
        assert_eq!(
            region(Some(""), &env).unwrap_err().kind(),
            kubepkg_util::ErrorKind::Invalid
        );
    }

    #[test]
    fn endpoint_from_config_then_environment() {
        let env = vars(&[
            ("AWS_ENDPOINT_URL", "http://all:1"),
            ("AWS_ENDPOINT_URL_S3", "http://s3:2"),
        ]);
        assert_eq!(endpoint(None, &env).as_deref(), Some("http://s3:2"));
        let general = vars(&[("AWS_ENDPOINT_URL", "http://all:1")]);
        assert_eq!(endpoint(None, &general).as_deref(), Some("http://all:1"));
        assert_eq!(
            endpoint(Some("http://cfg:3"), &env).as_deref(),
            Some("http://cfg:3")
        );
        let ignored = vars(&[
            ("AWS_ENDPOINT_URL", "http://all:1"),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
        ]);
        assert_eq!(endpoint(None, &ignored), None);
        assert_eq!(endpoint(None, &vars(&[])), None);
    }

    #[test]
    fn static_keys_must_be_complete() {
        let c = CredentialsConfig::Static {
            access_key: "ak".into(),
            secret_key: Secret::default(),
            session_token: None,
        };
        let err = provider(&c, &Region::new("us-east-1")).unwrap_err();
        assert_eq!(err.kind(), kubepkg_util::ErrorKind::Invalid);
    }

    #[test]
    fn credentials_failure_is_found_in_the_chain() {
        #[derive(Debug)]
        struct Outer(CredentialsError);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("dispatch failed")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = Outer(CredentialsError::not_loaded("no source had credentials"));
        assert!(credentials_failure(&e).is_some());
        let io = std::io::Error::other("x");
        assert!(credentials_failure(&io).is_none());
    }
}
