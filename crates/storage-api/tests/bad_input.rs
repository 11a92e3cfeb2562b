//! Bad input against the real servers: wrong credentials, missing buckets,
//! unreachable brokers. Each yields a typed error and changes nothing.
//! (Invalid names and re-declared queues are part of the conformance suites.)
//! Needs the `s3` and `amqp` features (declared in Cargo.toml).

mod s3 {
    use kubepkg_storage_api::config::{CredentialsConfig, S3Config, StorageConfig, connect};
    use kubepkg_storage_api::object::PutOptions;
    use kubepkg_util::ErrorKind;

    fn config(secret: &str) -> StorageConfig {
        let m = kubepkg_testenv::minio();
        StorageConfig::S3(S3Config {
            endpoint: Some(m.endpoint.clone()),
            region: Some(m.region.clone()),
            path_style: true,
            credentials: CredentialsConfig::Static {
                access_key: m.access_key.clone(),
                secret_key: secret.into(),
                session_token: None,
            },
            max_attempts: 1,
            ..Default::default()
        })
    }

    #[tokio::test]
    async fn wrong_credentials_are_unauthorized_and_create_nothing() {
        let good = connect(&config(&kubepkg_testenv::minio().secret_key)).unwrap();
        let bad = connect(&config("definitely-not-the-secret")).unwrap();
        let bucket = kubepkg_testenv::unique_name("badcreds");
        let e = bad.create_bucket(&bucket).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
        assert!(!e.to_string().contains("definitely-not-the-secret"));
        assert_eq!(
            bad.list_buckets().await.unwrap_err().kind(),
            ErrorKind::Unauthorized
        );
        assert!(
            !good.bucket_exists(&bucket).await.unwrap(),
            "nothing was created"
        );
        // And an existing bucket is not writable with them.
        good.create_bucket(&bucket).await.unwrap();
        let e = bad
            .put_object(&bucket, "k", "v".into(), &PutOptions::default())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
        assert_eq!(
            good.head_object(&bucket, "k").await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
        good.delete_bucket(&bucket).await.unwrap();
    }

    #[tokio::test]
    async fn missing_bucket_is_not_found() {
        let s = connect(&config(&kubepkg_testenv::minio().secret_key)).unwrap();
        let ghost = kubepkg_testenv::unique_name("ghost");
        for e in [
            s.put_object(&ghost, "k", "v".into(), &PutOptions::default())
                .await
                .unwrap_err(),
            s.get_object(&ghost, "k").await.unwrap_err(),
            s.delete_bucket(&ghost).await.unwrap_err(),
            s.copy_object(&ghost, "k", &ghost, "k2").await.unwrap_err(),
        ] {
            assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        }
        assert!(!s.bucket_exists(&ghost).await.unwrap());
    }

    #[tokio::test]
    async fn unreachable_endpoint_is_unavailable() {
        let cfg = StorageConfig::S3(S3Config {
            endpoint: Some("http://127.0.0.1:9".into()),
            path_style: true,
            credentials: CredentialsConfig::Static {
                access_key: "a".into(),
                secret_key: "b".into(),
                session_token: None,
            },
            max_attempts: 1,
            ..Default::default()
        });
        let e = connect(&cfg).unwrap().list_buckets().await.unwrap_err();
        assert!(
            matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
            "{e}"
        );
    }

    #[test]
    fn bad_configs_are_invalid() {
        let cfg = StorageConfig::S3(S3Config {
            endpoint: Some("ftp://x".into()),
            ..Default::default()
        });
        assert_eq!(connect(&cfg).unwrap_err().kind(), ErrorKind::Invalid);
        let mut s3 = S3Config::default();
        s3.multipart.part_size = 1024;
        assert_eq!(
            connect(&StorageConfig::S3(s3)).unwrap_err().kind(),
            ErrorKind::Invalid
        );
    }
}

mod amqp {
    use kubepkg_storage_api::config::{AmqpConfig, QueueConfig, connect_queue};
    use kubepkg_storage_api::mq::{Message, QueueSpec};
    use kubepkg_util::ErrorKind;
    use std::time::{Duration, Instant};

    #[tokio::test]
    async fn wrong_password_is_unauthorized_at_once() {
        let r = kubepkg_testenv::rabbitmq();
        let url = format!(
            "amqp://{}:wrong-password@{}:{}/%2f",
            r.username, r.host, r.port
        );
        let q = connect_queue(&QueueConfig::Amqp(AmqpConfig::new(url))).unwrap();
        let started = Instant::now();
        let e = q.declare_queue(&QueueSpec::new("never")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "not retried for long"
        );
        assert!(!e.to_string().contains("wrong-password"), "{e}");
        assert!(!format!("{q:?}").contains("wrong-password"));
    }

    #[tokio::test]
    async fn unreachable_broker_is_unavailable_after_the_retry_budget() {
        let cfg = AmqpConfig {
            retry_timeout_secs: 2,
            ..AmqpConfig::new("amqp://u:p@127.0.0.1:9/%2f")
        };
        let q = connect_queue(&QueueConfig::Amqp(cfg)).unwrap();
        let started = Instant::now();
        let e = q.publish("", "x", &Message::new("x")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
        assert!(started.elapsed() < Duration::from_secs(15));
    }

    #[test]
    fn bad_urls_are_invalid() {
        for url in ["http://h/", "not a url"] {
            let e = connect_queue(&QueueConfig::Amqp(AmqpConfig::new(url))).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Invalid, "{url}");
        }
    }
}
