//! The S3 backend with no keys in its config: credentials, region and
//! endpoint found the way every AWS SDK finds them (aws-config's chain),
//! against the local environment's MinIO (`cargo xtask env up`).
//!
//! The environment is process-wide, so this binary holds one test, which
//! walks through the sources one after the other: the `AWS_*` variables,
//! a shared credentials file, a named profile, and finally no source at all.

use bytes::Bytes;
use kubepkg_storage_api::config::{CredentialsConfig, S3Config};
use kubepkg_storage_api::object::s3::S3Storage;
use kubepkg_storage_api::object::{ObjectStorage, PutOptions};
use kubepkg_util::ErrorKind;

/// Every variable a source of the chain reads, so that what the test sets
/// is all the chain sees (nothing from the developer's own shell).
const AWS_VARS: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
];

fn set(name: &str, value: &str) {
    // SAFETY: this test binary holds a single test and sets the environment
    // before each step, while no other thread of it reads or writes it.
    unsafe { std::env::set_var(name, value) }
}

fn unset(name: &str) {
    // SAFETY: as in `set`.
    unsafe { std::env::remove_var(name) }
}

/// A bucket round trip through a store built from `cfg`.
async fn round_trip(cfg: &S3Config, bucket: &str) {
    let store = S3Storage::new(cfg).unwrap();
    match store.create_bucket(bucket).await {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => panic!("create_bucket {bucket}: {e}"),
    }
    let body = Bytes::from_static(b"found by the credential chain");
    store
        .put_object(bucket, "k", body.clone(), &PutOptions::default())
        .await
        .unwrap();
    assert_eq!(store.get_object(bucket, "k").await.unwrap(), body);
    store.delete_object(bucket, "k").await.unwrap();
    store.delete_bucket(bucket).await.unwrap();
}

#[tokio::test]
async fn credentials_region_and_endpoint_from_the_standard_chain() {
    let m = kubepkg_testenv::minio();
    let dir = tempfile::tempdir().unwrap();
    for v in AWS_VARS {
        unset(v);
    }
    // No instance metadata service here: the chain ends fast when empty.
    set("AWS_EC2_METADATA_DISABLED", "true");
    // Neither the developer's ~/.aws files.
    let missing = dir.path().join("missing");
    set("AWS_CONFIG_FILE", missing.to_str().unwrap());
    set("AWS_SHARED_CREDENTIALS_FILE", missing.to_str().unwrap());

    // No endpoint, region or keys in the config.
    let chain = S3Config {
        path_style: true,
        ..Default::default()
    };
    assert!(matches!(chain.credentials, CredentialsConfig::Chain));
    assert_eq!(chain.endpoint, None);
    assert_eq!(chain.region, None);

    // 1. The AWS_* environment variables: keys, region and endpoint.
    set("AWS_ACCESS_KEY_ID", &m.access_key);
    set("AWS_SECRET_ACCESS_KEY", &m.secret_key);
    set("AWS_REGION", &m.region);
    set("AWS_ENDPOINT_URL", &m.endpoint);
    round_trip(&chain, "chain-env").await;
    let env_only = S3Config {
        credentials: CredentialsConfig::Env,
        ..chain.clone()
    };
    round_trip(&env_only, "chain-env-only").await;

    // 2. A shared credentials file (AWS_SHARED_CREDENTIALS_FILE), its
    //    default profile, with no keys in the environment.
    unset("AWS_ACCESS_KEY_ID");
    unset("AWS_SECRET_ACCESS_KEY");
    let creds = dir.path().join("credentials");
    std::fs::write(
        &creds,
        format!(
            "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n\n\
             [kubepkg-test]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            m.access_key, m.secret_key, m.access_key, m.secret_key
        ),
    )
    .unwrap();
    set("AWS_SHARED_CREDENTIALS_FILE", creds.to_str().unwrap());
    round_trip(&chain, "chain-profile").await;

    // 3. A named profile, from the config and from AWS_PROFILE.
    let named = S3Config {
        credentials: CredentialsConfig::Profile {
            name: Some("kubepkg-test".into()),
        },
        ..chain.clone()
    };
    round_trip(&named, "chain-named").await;
    set("AWS_PROFILE", "kubepkg-test");
    round_trip(&chain, "chain-aws-profile").await;
    unset("AWS_PROFILE");

    // 4. Static keys in the config override the chain: wrong ones are
    //    refused although the shared file holds good ones.
    let wrong = S3Config {
        credentials: CredentialsConfig::Static {
            access_key: "not-a-key".into(),
            secret_key: "not-a-secret".into(),
            session_token: None,
        },
        ..chain.clone()
    };
    let err = S3Storage::new(&wrong)
        .unwrap()
        .list_buckets()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");

    // 5. No source at all: Unauthorized, saying so, and no panic.
    set("AWS_SHARED_CREDENTIALS_FILE", missing.to_str().unwrap());
    let err = S3Storage::new(&chain)
        .unwrap()
        .list_buckets()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    assert!(err.to_string().contains("credentials"), "{err}");
    let err = S3Storage::new(&env_only)
        .unwrap()
        .list_buckets()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
}
