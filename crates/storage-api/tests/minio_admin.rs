//! MinIO extras against the environment's MinIO: admin API (server info,
//! users, policies) and the bucket versioning / lifecycle / notification
//! setters. Needs the `minio` feature (declared in Cargo.toml).

use kubepkg_storage_api::config::{MinioConfig, StorageConfig, connect};
use kubepkg_storage_api::object::ObjectStorage;
use kubepkg_storage_api::object::minio::MinioStorage;
use kubepkg_storage_api::object::s3::{ExpirationRule, NotificationTarget};
use kubepkg_storage_api::secret::Secret;
use kubepkg_util::ErrorKind;

fn admin() -> MinioStorage {
    let m = kubepkg_testenv::minio();
    MinioStorage::new(&MinioConfig {
        endpoint: m.endpoint.clone(),
        access_key: m.access_key.clone(),
        secret_key: m.secret_key.clone().into(),
        region: m.region.clone(),
        ..Default::default()
    })
    .unwrap()
}

#[tokio::test]
async fn server_info() {
    let info = admin().server_info().await.unwrap();
    assert!(
        info.get("mode").is_some() || info.get("servers").is_some(),
        "{info}"
    );
}

#[tokio::test]
async fn users_and_policies() {
    let a = admin();
    let bucket = kubepkg_testenv::unique_name("pol");
    a.create_bucket(&bucket).await.unwrap();
    let user = kubepkg_testenv::unique_name("user");
    let secret = Secret::from("user-secret-123");
    a.add_user(&user, &secret).await.unwrap();
    let policy = kubepkg_testenv::unique_name("rw");
    let doc = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:ListBucket"],
            "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")]
        }]
    });
    a.add_policy(&policy, &doc).await.unwrap();
    a.attach_policy(&user, &[&policy]).await.unwrap();
    let info = a.user_info(&user).await.unwrap();
    assert_eq!(info.status, "enabled");
    assert!(info.policy_name.contains(&policy), "{info:?}");

    // The new user can write its bucket and nothing else.
    let m = kubepkg_testenv::minio();
    let as_user = connect(&StorageConfig::Minio(MinioConfig {
        endpoint: m.endpoint.clone(),
        access_key: user.clone(),
        secret_key: secret.clone(),
        region: m.region.clone(),
        ..Default::default()
    }))
    .unwrap();
    as_user
        .put_object(&bucket, "k", "v".into(), &Default::default())
        .await
        .unwrap();
    assert_eq!(as_user.get_object(&bucket, "k").await.unwrap(), "v");
    let other = kubepkg_testenv::unique_name("other");
    let e = as_user.create_bucket(&other).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Forbidden, "{e}");

    // Bad input.
    assert_eq!(
        a.add_user("x", &Secret::from("short"))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Invalid
    );
    let ghost = kubepkg_testenv::unique_name("ghost");
    assert_eq!(
        a.user_info(&ghost).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let wrong = MinioStorage::new(&MinioConfig {
        endpoint: m.endpoint.clone(),
        access_key: m.access_key.clone(),
        secret_key: "wrong-secret".into(),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        wrong.server_info().await.unwrap_err().kind(),
        ErrorKind::Unauthorized
    );

    a.remove_user(&user).await.unwrap();
    assert_eq!(
        a.user_info(&user).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    a.delete_object(&bucket, "k").await.unwrap();
    a.delete_bucket(&bucket).await.unwrap();
}

#[tokio::test]
async fn versioning_lifecycle_notifications() {
    let a = admin();
    let s3 = a.s3();
    let bucket = kubepkg_testenv::unique_name("ver");
    a.create_bucket(&bucket).await.unwrap();
    assert!(!s3.bucket_versioning(&bucket).await.unwrap());
    s3.set_bucket_versioning(&bucket, true).await.unwrap();
    assert!(s3.bucket_versioning(&bucket).await.unwrap());
    s3.set_bucket_versioning(&bucket, false).await.unwrap();
    assert!(!s3.bucket_versioning(&bucket).await.unwrap());

    assert!(s3.bucket_lifecycle(&bucket).await.unwrap().is_empty());
    let rule = ExpirationRule {
        id: "tmp".into(),
        prefix: "tmp/".into(),
        days: 7,
    };
    s3.set_bucket_lifecycle(&bucket, std::slice::from_ref(&rule))
        .await
        .unwrap();
    assert_eq!(s3.bucket_lifecycle(&bucket).await.unwrap(), vec![rule]);
    s3.set_bucket_lifecycle(&bucket, &[]).await.unwrap();
    assert!(s3.bucket_lifecycle(&bucket).await.unwrap().is_empty());
    let bad = ExpirationRule {
        id: String::new(),
        prefix: String::new(),
        days: 0,
    };
    let too_long = ExpirationRule {
        id: "forever".into(),
        prefix: String::new(),
        days: u32::MAX,
    };
    for rule in [bad, too_long] {
        assert_eq!(
            s3.set_bucket_lifecycle(&bucket, &[rule])
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::Invalid
        );
    }
    assert!(s3.bucket_lifecycle(&bucket).await.unwrap().is_empty());

    // No notification target is configured on the test server: an ARN that
    // does not exist is refused; clearing notifications works.
    let target = NotificationTarget {
        arn: "arn:minio:sqs::missing:webhook".into(),
        events: vec!["s3:ObjectCreated:*".into()],
        prefix: None,
        suffix: Some(".csv".into()),
    };
    let e = s3
        .set_bucket_notification(&bucket, &[target])
        .await
        .unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::Invalid | ErrorKind::NotFound),
        "{e}"
    );
    s3.set_bucket_notification(&bucket, &[]).await.unwrap();
    a.delete_bucket(&bucket).await.unwrap();
}
