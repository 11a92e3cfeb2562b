//! The conformance suites every backend runs.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use kubepkg_storage_api::mq::{
    ConsumeOptions, ExchangeKind, ExchangeSpec, Message, MessageQueue, Overflow, PublishOptions,
    QueueSpec,
};
use kubepkg_storage_api::object::{
    ByteRange, ListOptions, ListPage, ObjectStorage, PutOptions, bytes_stream,
};
use kubepkg_util::ErrorKind;

/// An S3 config for the environment's MinIO at `endpoint` (its plain or
/// HTTPS endpoint, or a relay in front of it): its static keys and region,
/// path-style addressing, defaults otherwise.
pub fn minio_s3_config(endpoint: &str) -> kubepkg_storage_api::config::S3Config {
    use kubepkg_storage_api::config::{CredentialsConfig, S3Config};
    let m = kubepkg_testenv::minio();
    S3Config {
        endpoint: Some(endpoint.to_owned()),
        region: Some(m.region.clone()),
        path_style: true,
        credentials: CredentialsConfig::Static {
            access_key: m.access_key.clone(),
            secret_key: m.secret_key.clone().into(),
            session_token: None,
        },
        ..Default::default()
    }
}

/// `host:port` of the environment's plain MinIO endpoint, for a relay.
pub fn minio_host() -> String {
    kubepkg_testenv::minio()
        .endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned()
}

/// Deterministic pseudo-random bytes.
pub fn data(len: usize, seed: u64) -> Bytes {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
        | 1;
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    Bytes::from(v)
}

pub fn md5_hex(b: &[u8]) -> String {
    use md5::{Digest, Md5};
    Md5::digest(b).iter().map(|b| format!("{b:02x}")).collect()
}

async fn all_pages(store: &dyn ObjectStorage, bucket: &str, opts: &ListOptions) -> Vec<ListPage> {
    store
        .list_objects(bucket, opts)
        .try_collect()
        .await
        .expect("listing")
}

fn kind<T: std::fmt::Debug>(r: kubepkg_storage_api::Result<T>) -> ErrorKind {
    r.expect_err("expected an error").kind()
}

/// Runs every object-storage operation against `store`. `multipart` says the
/// backend was configured with 5 MiB parts and a 5 MiB threshold.
pub async fn object_suite(store: Arc<dyn ObjectStorage>, multipart: bool) {
    let s = store.as_ref();
    let bucket = kubepkg_testenv::unique_name("conf");

    // Buckets.
    assert!(!s.bucket_exists(&bucket).await.unwrap());
    s.create_bucket(&bucket).await.unwrap();
    assert!(s.bucket_exists(&bucket).await.unwrap());
    assert_eq!(
        kind(s.create_bucket(&bucket).await),
        ErrorKind::AlreadyExists
    );
    let buckets = s.list_buckets().await.unwrap();
    assert!(buckets.iter().any(|b| b.name == bucket), "{buckets:?}");

    // Put bytes, head, get, ranges.
    let body = data(10_000, 1);
    let opts = PutOptions::default()
        .content_type("application/octet-stream")
        .meta("Owner", "team-a")
        .meta("build", "42");
    let put = s
        .put_object(&bucket, "dir/one.bin", body.clone(), &opts)
        .await
        .unwrap();
    assert_eq!(put.size, 10_000);
    assert_eq!(put.etag, md5_hex(&body));
    let head = s.head_object(&bucket, "dir/one.bin").await.unwrap();
    assert_eq!(head.size, 10_000);
    assert_eq!(head.etag, md5_hex(&body));
    assert_eq!(
        head.content_type.as_deref(),
        Some("application/octet-stream")
    );
    assert_eq!(
        head.metadata.get("owner").map(String::as_str),
        Some("team-a")
    );
    assert_eq!(head.metadata.get("build").map(String::as_str), Some("42"));
    let age = head
        .last_modified
        .expect("last modified")
        .elapsed()
        .unwrap_or_default();
    assert!(age < Duration::from_secs(600), "{age:?}");
    assert_eq!(s.get_object(&bucket, "dir/one.bin").await.unwrap(), body);
    assert_eq!(
        s.get_range(&bucket, "dir/one.bin", ByteRange::new(100, 200))
            .await
            .unwrap(),
        body.slice(100..200)
    );
    assert_eq!(
        s.get_range(&bucket, "dir/one.bin", ByteRange::from(9_990))
            .await
            .unwrap(),
        body.slice(9_990..)
    );
    assert_eq!(
        s.get_range(&bucket, "dir/one.bin", ByteRange::new(9_000, 20_000))
            .await
            .unwrap(),
        body.slice(9_000..),
        "a range past the end is clamped"
    );
    assert_eq!(
        kind(
            s.get_range(&bucket, "dir/one.bin", ByteRange::from(10_000))
                .await
        ),
        ErrorKind::Invalid
    );
    assert_eq!(
        kind(
            s.get_range(&bucket, "dir/one.bin", ByteRange::new(5, 5))
                .await
        ),
        ErrorKind::Invalid
    );
    let streamed = s
        .get_stream(&bucket, "dir/one.bin", Some(ByteRange::new(10, 20)))
        .await
        .unwrap();
    assert_eq!(
        streamed.meta.size, 10_000,
        "meta size is the whole object's"
    );
    assert_eq!(streamed.collect().await.unwrap(), body.slice(10..20));

    // Put a stream of unknown length.
    let big = data(
        if multipart {
            12 * 1024 * 1024 + 123
        } else {
            3 * 1024 * 1024 + 7
        },
        2,
    );
    let res = s
        .put_stream(
            &bucket,
            "dir/big.bin",
            bytes_stream(big.clone(), 100_000),
            &PutOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(res.size, big.len() as u64);
    if multipart {
        assert_eq!(res.parts, 3);
        assert!(res.etag.ends_with("-3"), "{}", res.etag);
    } else {
        assert_eq!(res.parts, 1);
        assert_eq!(res.etag, md5_hex(&big));
    }
    let got = s
        .get_stream(&bucket, "dir/big.bin", None)
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(md5_hex(&got), md5_hex(&big));
    if multipart {
        // A large in-memory buffer goes multipart too.
        let r = s
            .put_object(&bucket, "dir/big2.bin", big.clone(), &PutOptions::default())
            .await
            .unwrap();
        assert_eq!(r.parts, 3);
        assert_eq!(
            s.head_object(&bucket, "dir/big2.bin").await.unwrap().size,
            big.len() as u64
        );
        s.delete_object(&bucket, "dir/big2.bin").await.unwrap();
    }
    // Empty objects.
    let e = s
        .put_object(&bucket, "empty", Bytes::new(), &PutOptions::default())
        .await
        .unwrap();
    assert_eq!(e.etag, md5_hex(b""));
    assert_eq!(s.get_object(&bucket, "empty").await.unwrap().len(), 0);
    s.delete_object(&bucket, "empty").await.unwrap();

    // Listing with prefix and delimiter, as a stream over pages.
    for k in ["a/1", "a/2", "b", "c/x/y", "c/z"] {
        s.put_object(
            &bucket,
            k,
            Bytes::from(k.to_owned()),
            &PutOptions::default(),
        )
        .await
        .unwrap();
    }
    let pages = all_pages(
        s,
        &bucket,
        &ListOptions::default().with_delimiter("/").with_page_size(2),
    )
    .await;
    assert!(pages.len() >= 2, "{pages:?}");
    let objs: Vec<String> = pages
        .iter()
        .flat_map(|p| p.objects.iter().map(|o| o.key.clone()))
        .collect();
    let mut prefixes: Vec<String> = pages
        .iter()
        .flat_map(|p| p.common_prefixes.clone())
        .collect();
    prefixes.sort();
    assert_eq!(objs, vec!["b"]);
    assert_eq!(prefixes, vec!["a/", "c/", "dir/"]);
    let pages = all_pages(s, &bucket, &ListOptions::prefix("c/").with_page_size(1)).await;
    let keys: Vec<String> = pages
        .iter()
        .flat_map(|p| p.objects.iter().map(|o| o.key.clone()))
        .collect();
    assert_eq!(keys, vec!["c/x/y", "c/z"]);
    assert_eq!(pages.len(), 2);
    let a1 = &all_pages(s, &bucket, &ListOptions::prefix("a/1")).await[0].objects[0];
    assert_eq!((a1.key.as_str(), a1.size), ("a/1", 3));
    assert_eq!(a1.etag, md5_hex(b"a/1"));
    let none = all_pages(s, &bucket, &ListOptions::prefix("nothing/")).await;
    assert!(
        none.iter()
            .all(|p| p.objects.is_empty() && p.common_prefixes.is_empty())
    );

    // Listings are read page by page: a key deleted before its page is
    // read is not listed.
    for k in ["lazy/a", "lazy/b", "lazy/c"] {
        s.put_object(&bucket, k, Bytes::from_static(b"l"), &PutOptions::default())
            .await
            .unwrap();
    }
    let mut pages = s.list_objects(&bucket, &ListOptions::prefix("lazy/").with_page_size(1));
    let first = pages.next().await.expect("a first page").unwrap();
    assert_eq!(first.objects[0].key, "lazy/a");
    s.delete_object(&bucket, "lazy/c").await.unwrap();
    let mut rest = Vec::new();
    while let Some(p) = pages.next().await {
        rest.extend(p.unwrap().objects.into_iter().map(|o| o.key));
    }
    assert_eq!(rest, vec!["lazy/b"], "the listing was read ahead");
    s.delete_objects(&bucket, &["lazy/a".to_owned(), "lazy/b".to_owned()])
        .await
        .unwrap();

    // Copy keeps content and metadata.
    s.copy_object(&bucket, "dir/one.bin", &bucket, "copy of one")
        .await
        .unwrap();
    assert_eq!(s.get_object(&bucket, "copy of one").await.unwrap(), body);
    let ch = s.head_object(&bucket, "copy of one").await.unwrap();
    assert_eq!(ch.metadata.get("owner").map(String::as_str), Some("team-a"));
    assert_eq!(ch.etag, md5_hex(&body));

    // Missing things.
    assert_eq!(
        kind(s.get_object(&bucket, "no/such/key").await),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(s.head_object(&bucket, "no/such/key").await),
        ErrorKind::NotFound
    );
    let ghost = kubepkg_testenv::unique_name("ghost");
    assert_eq!(kind(s.get_object(&ghost, "k").await), ErrorKind::NotFound);
    assert_eq!(
        kind(
            s.put_object(
                &ghost,
                "k",
                Bytes::from_static(b"x"),
                &PutOptions::default()
            )
            .await
        ),
        ErrorKind::NotFound
    );
    let first = s
        .list_objects(&ghost, &ListOptions::default())
        .next()
        .await
        .expect("an item");
    assert_eq!(kind(first), ErrorKind::NotFound);
    assert_eq!(kind(s.delete_bucket(&ghost).await), ErrorKind::NotFound);
    assert!(!s.bucket_exists(&ghost).await.unwrap());

    // Presigned URLs: real on HTTP backends, Unsupported elsewhere.
    let presigned = s
        .presign_get(&bucket, "a/1", Duration::from_secs(300))
        .await;
    match s.backend() {
        "memory" | "local" => assert_eq!(kind(presigned), ErrorKind::Unsupported),
        _ => {
            let url = presigned.unwrap();
            assert!(url.contains("X-Amz-Signature="), "{url}");
            let got = reqwest::get(&url).await.unwrap();
            assert!(got.status().is_success(), "{}", got.status());
            assert_eq!(got.bytes().await.unwrap(), "a/1");
            let put_url = s
                .presign_put(&bucket, "via-url", Duration::from_secs(300))
                .await
                .unwrap();
            let resp = reqwest::Client::new()
                .put(&put_url)
                .body("uploaded")
                .send()
                .await
                .unwrap();
            assert!(resp.status().is_success(), "{}", resp.status());
            assert_eq!(s.get_object(&bucket, "via-url").await.unwrap(), "uploaded");
            s.delete_object(&bucket, "via-url").await.unwrap();
        }
    }

    // Delete: non-empty bucket refuses, keys go, missing keys are fine.
    assert_eq!(kind(s.delete_bucket(&bucket).await), ErrorKind::Conflict);
    s.delete_object(&bucket, "b").await.unwrap();
    s.delete_object(&bucket, "b").await.unwrap();
    assert_eq!(kind(s.head_object(&bucket, "b").await), ErrorKind::NotFound);
    let rest: Vec<String> = all_pages(s, &bucket, &ListOptions::default())
        .await
        .iter()
        .flat_map(|p| p.objects.iter().map(|o| o.key.clone()))
        .collect();
    assert_eq!(rest.len(), 7, "{rest:?}");
    s.delete_objects(&bucket, &rest).await.unwrap();
    assert!(
        all_pages(s, &bucket, &ListOptions::default())
            .await
            .iter()
            .all(|p| p.objects.is_empty())
    );
    s.delete_bucket(&bucket).await.unwrap();
    assert!(!s.bucket_exists(&bucket).await.unwrap());
}

/// Invalid names are refused with `Invalid` and change nothing.
pub async fn object_bad_input(store: Arc<dyn ObjectStorage>) {
    let s = store.as_ref();
    let bucket = kubepkg_testenv::unique_name("bad");
    s.create_bucket(&bucket).await.unwrap();
    for b in ["UPPER", "ab", "has_underscore", "-dash", "10.0.0.1", "a..b"] {
        assert_eq!(kind(s.create_bucket(b).await), ErrorKind::Invalid, "{b}");
        assert_eq!(kind(s.bucket_exists(b).await), ErrorKind::Invalid, "{b}");
    }
    let long = "k".repeat(1025);
    for k in [
        "",
        "/abs",
        "../escape",
        "a/../../b",
        "x/./y",
        "nul\0",
        long.as_str(),
    ] {
        let r = s
            .put_object(&bucket, k, Bytes::from_static(b"x"), &PutOptions::default())
            .await;
        assert_eq!(kind(r), ErrorKind::Invalid, "{k:?}");
        assert_eq!(
            kind(s.get_object(&bucket, k).await),
            ErrorKind::Invalid,
            "{k:?}"
        );
        assert_eq!(
            kind(s.delete_object(&bucket, k).await),
            ErrorKind::Invalid,
            "{k:?}"
        );
    }
    let bad_meta = PutOptions::default().meta("bad key", "v");
    assert_eq!(
        kind(
            s.put_object(&bucket, "ok", Bytes::from_static(b"x"), &bad_meta)
                .await
        ),
        ErrorKind::Invalid
    );
    // One bad key in a batch: nothing is deleted.
    s.put_object(
        &bucket,
        "keep",
        Bytes::from_static(b"x"),
        &PutOptions::default(),
    )
    .await
    .unwrap();
    let batch = vec!["keep".to_owned(), "../nope".to_owned()];
    assert_eq!(
        kind(s.delete_objects(&bucket, &batch).await),
        ErrorKind::Invalid
    );
    assert_eq!(s.get_object(&bucket, "keep").await.unwrap(), "x");
    let pages: Vec<ListPage> = s
        .list_objects(&bucket, &ListOptions::default())
        .try_collect()
        .await
        .unwrap();
    let keys: Vec<&str> = pages
        .iter()
        .flat_map(|p| p.objects.iter().map(|o| o.key.as_str()))
        .collect();
    assert_eq!(keys, vec!["keep"], "only the valid put happened");
    // Other tests create and delete buckets concurrently: look for the
    // refused names only.
    let after = s.list_buckets().await.unwrap();
    for b in ["UPPER", "ab", "has_underscore", "-dash", "10.0.0.1", "a..b"] {
        assert!(
            !after.iter().any(|x| x.name.eq_ignore_ascii_case(b)),
            "no bucket {b} was created: {after:?}"
        );
    }
    assert!(
        after.iter().any(|x| x.name == bucket),
        "{bucket} is still there"
    );
    s.delete_object(&bucket, "keep").await.unwrap();
    s.delete_bucket(&bucket).await.unwrap();
}

fn tagged_at(tag: &str) -> ConsumeOptions {
    ConsumeOptions {
        tag: Some(tag.to_owned()),
        ..Default::default()
    }
}

async fn next_within(
    c: &mut kubepkg_storage_api::mq::Consumer,
    d: Duration,
) -> Option<kubepkg_storage_api::mq::Delivery> {
    match tokio::time::timeout(d, c.next()).await {
        Ok(Some(r)) => Some(r.expect("delivery")),
        Ok(None) => panic!("consumer ended"),
        Err(_) => None,
    }
}

const WAIT: Duration = Duration::from_secs(10);

/// Runs every message-queue operation against `mq`.
pub async fn mq_suite(mq: Arc<dyn MessageQueue>) {
    let m = mq.as_ref();
    let q = kubepkg_testenv::unique_name("conf-q");

    // Publish, consume, properties round trip.
    let info = m.declare_queue(&QueueSpec::new(&q)).await.unwrap();
    assert_eq!(info.name, q);
    assert_eq!(info.messages, 0);
    for i in 0..3 {
        let msg = Message::new(format!("m{i}"))
            .with_id(format!("id-{i}"))
            .with_header("n", i.to_string())
            .with_content_type("text/plain");
        m.publish("", &q, &msg).await.unwrap();
    }
    assert_eq!(
        m.declare_queue(&QueueSpec::new(&q)).await.unwrap().messages,
        3,
        "re-declaring is idempotent"
    );
    let mut c = m.consume(&q, &ConsumeOptions::prefetch(10)).await.unwrap();
    for i in 0..3 {
        let d = next_within(&mut c, WAIT).await.expect("message");
        assert_eq!(d.message.body, format!("m{i}"));
        assert_eq!(
            d.message.message_id.as_deref(),
            Some(format!("id-{i}").as_str())
        );
        assert_eq!(d.message.headers.get("n"), Some(&i.to_string()));
        assert_eq!(d.message.content_type.as_deref(), Some("text/plain"));
        assert!(d.message.persistent);
        assert!(!d.redelivered);
        assert_eq!(d.routing_key, q);
        d.ack().await.unwrap();
    }

    // Nack with requeue: redelivered.
    m.publish("", &q, &Message::new("again")).await.unwrap();
    let d = next_within(&mut c, WAIT).await.unwrap();
    assert!(!d.redelivered);
    d.nack(true).await.unwrap();
    let d = next_within(&mut c, WAIT).await.unwrap();
    assert_eq!(d.message.body, "again");
    assert!(d.redelivered);
    d.ack().await.unwrap();
    drop(c);

    // Prefetch bounds unacked deliveries.
    for i in 0..4 {
        m.publish("", &q, &Message::new(format!("p{i}")))
            .await
            .unwrap();
    }
    let mut c = m.consume(&q, &ConsumeOptions::prefetch(2)).await.unwrap();
    let d0 = next_within(&mut c, WAIT).await.unwrap();
    let d1 = next_within(&mut c, WAIT).await.unwrap();
    // The broker hands out deliveries as soon as the consumer has room; with
    // two unacknowledged, the other two must still be ready in the queue.
    assert_eq!(
        m.declare_queue(&QueueSpec::new(&q)).await.unwrap().messages,
        2,
        "prefetch 2 exceeded"
    );
    d0.ack().await.unwrap();
    let d2 = next_within(&mut c, WAIT).await.expect("a slot freed up");
    assert_eq!(d2.message.body, "p2");
    // Dropping a consumer requeues what it did not ack.
    d2.ack().await.unwrap();
    drop(d1);
    drop(c);
    let mut c = m.consume(&q, &ConsumeOptions::prefetch(10)).await.unwrap();
    let mut got = Vec::new();
    while let Some(d) = next_within(&mut c, Duration::from_secs(2)).await {
        got.push((
            String::from_utf8_lossy(&d.message.body).into_owned(),
            d.redelivered,
        ));
        d.ack().await.unwrap();
        if got.len() == 2 {
            break;
        }
    }
    got.sort();
    // p1 was held unacked: redelivered. p3 may or may not have reached the
    // first consumer's buffer before it was dropped.
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0], ("p1".to_owned(), true));
    assert_eq!(got[1].0, "p3");
    drop(c);

    // Dead-letter routing.
    let dlx = kubepkg_testenv::unique_name("conf-dlx");
    let dead = kubepkg_testenv::unique_name("conf-dead");
    let work = kubepkg_testenv::unique_name("conf-work");
    m.declare_exchange(&ExchangeSpec::new(&dlx, ExchangeKind::Fanout))
        .await
        .unwrap();
    m.declare_queue(&QueueSpec::new(&dead)).await.unwrap();
    m.bind_queue(&dead, &dlx, "").await.unwrap();
    m.declare_queue(&QueueSpec::new(&work).with_dead_letter(&dlx, None))
        .await
        .unwrap();
    m.publish("", &work, &Message::new("poison")).await.unwrap();
    let mut c = m.consume(&work, &ConsumeOptions::default()).await.unwrap();
    next_within(&mut c, WAIT)
        .await
        .unwrap()
        .reject(false)
        .await
        .unwrap();
    let mut dc = m.consume(&dead, &ConsumeOptions::default()).await.unwrap();
    let d = next_within(&mut dc, WAIT).await.expect("dead-lettered");
    assert_eq!(d.message.body, "poison");
    assert_eq!(
        d.message
            .headers
            .get("x-first-death-reason")
            .map(String::as_str),
        Some("rejected")
    );
    assert_eq!(d.message.headers.get("x-first-death-queue"), Some(&work));
    d.ack().await.unwrap();
    // TTL expiry dead-letters too.
    let ttl_q = kubepkg_testenv::unique_name("conf-ttl");
    m.declare_queue(
        &QueueSpec::new(&ttl_q)
            .with_dead_letter(&dlx, None)
            .with_message_ttl(Duration::from_millis(100)),
    )
    .await
    .unwrap();
    m.publish("", &ttl_q, &Message::new("stale")).await.unwrap();
    let d = next_within(&mut dc, WAIT)
        .await
        .expect("expired into the DLX");
    assert_eq!(d.message.body, "stale");
    assert_eq!(
        d.message
            .headers
            .get("x-first-death-reason")
            .map(String::as_str),
        Some("expired")
    );
    d.ack().await.unwrap();
    drop(c);
    drop(dc);

    // A dead-letter cycle without a rejection ends: a message expiring in
    // `cyc` goes through a fanout exchange bound to `cyc` itself and to
    // `seen`; the copy headed back into `cyc` is dropped, the one in `seen`
    // arrives once.
    let cyc_x = kubepkg_testenv::unique_name("conf-cyc-x");
    let cyc = kubepkg_testenv::unique_name("conf-cyc");
    let seen = kubepkg_testenv::unique_name("conf-seen");
    m.declare_exchange(&ExchangeSpec::new(&cyc_x, ExchangeKind::Fanout))
        .await
        .unwrap();
    let cyc_spec = QueueSpec::new(&cyc)
        .with_dead_letter(&cyc_x, None)
        .with_message_ttl(Duration::ZERO);
    m.declare_queue(&cyc_spec).await.unwrap();
    m.declare_queue(&QueueSpec::new(&seen)).await.unwrap();
    m.bind_queue(&cyc, &cyc_x, "").await.unwrap();
    m.bind_queue(&seen, &cyc_x, "").await.unwrap();
    let mut sc = m.consume(&seen, &ConsumeOptions::default()).await.unwrap();
    m.publish("", &cyc, &Message::new("loop")).await.unwrap();
    let d = next_within(&mut sc, WAIT)
        .await
        .expect("dead-lettered once");
    assert_eq!(d.message.body, "loop");
    assert_eq!(d.message.headers.get("x-first-death-queue"), Some(&cyc));
    d.ack().await.unwrap();
    // The same path again: a looping copy of "loop" would arrive first.
    m.publish("", &cyc, &Message::new("marker")).await.unwrap();
    let d = next_within(&mut sc, WAIT).await.expect("the marker");
    assert_eq!(d.message.body, "marker", "a dead-letter cycle kept going");
    d.ack().await.unwrap();
    assert_eq!(m.declare_queue(&cyc_spec).await.unwrap().messages, 0);
    drop(sc);

    // A rejection is not part of a cycle: a message rejected in a queue that
    // dead-letters into itself comes back once, marked.
    let retry = kubepkg_testenv::unique_name("conf-retry");
    m.declare_queue(&QueueSpec::new(&retry).with_dead_letter("", None))
        .await
        .unwrap();
    m.publish("", &retry, &Message::new("again")).await.unwrap();
    let mut rc = m.consume(&retry, &ConsumeOptions::default()).await.unwrap();
    let d = next_within(&mut rc, WAIT).await.unwrap();
    assert_eq!(d.message.headers.get("x-first-death-reason"), None);
    d.reject(false).await.unwrap();
    let d = next_within(&mut rc, WAIT)
        .await
        .expect("dead-lettered back");
    assert_eq!(d.message.body, "again");
    assert_eq!(
        d.message
            .headers
            .get("x-first-death-reason")
            .map(String::as_str),
        Some("rejected")
    );
    assert_eq!(d.message.headers.get("x-first-death-queue"), Some(&retry));
    d.ack().await.unwrap();
    drop(rc);

    // A full reject-publish queue nacks: publish fails at once, typed.
    let full = kubepkg_testenv::unique_name("conf-full");
    let full_spec = QueueSpec::new(&full)
        .with_max_length(1)
        .with_overflow(Overflow::RejectPublish);
    m.declare_queue(&full_spec).await.unwrap();
    m.publish("", &full, &Message::new("fits")).await.unwrap();
    let started = std::time::Instant::now();
    let e = m
        .publish("", &full, &Message::new("refused"))
        .await
        .expect_err("a full reject-publish queue refuses");
    assert!(matches!(e, kubepkg_storage_api::Error::Nacked(_)), "{e:?}");
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a nack is not retried: {:?}",
        started.elapsed()
    );
    assert_eq!(m.declare_queue(&full_spec).await.unwrap().messages, 1);

    // A time to live beyond what a broker enforces means none.
    let forever = kubepkg_testenv::unique_name("conf-forever");
    m.declare_queue(&QueueSpec::new(&forever).with_message_ttl(Duration::MAX))
        .await
        .unwrap();
    let mut msg = Message::new("kept");
    msg.expiration = Some(Duration::MAX);
    m.publish("", &forever, &msg).await.unwrap();
    let mut fc = m
        .consume(&forever, &ConsumeOptions::default())
        .await
        .unwrap();
    let d = next_within(&mut fc, WAIT).await.expect("never expires");
    assert_eq!(d.message.body, "kept");
    d.ack().await.unwrap();
    drop(fc);

    // Topic routing and mandatory publishes.
    let topic = kubepkg_testenv::unique_name("conf-topic");
    let errors = kubepkg_testenv::unique_name("conf-errors");
    m.declare_exchange(&ExchangeSpec::new(&topic, ExchangeKind::Topic))
        .await
        .unwrap();
    m.declare_queue(&QueueSpec::new(&errors)).await.unwrap();
    m.bind_queue(&errors, &topic, "logs.*.error").await.unwrap();
    m.publish(&topic, "logs.api.info", &Message::new("info"))
        .await
        .unwrap();
    m.publish(&topic, "logs.api.error", &Message::new("error"))
        .await
        .unwrap();
    // Publishes return after the broker's confirm, so routing is done:
    // only "error" reached the queue.
    assert_eq!(
        m.declare_queue(&QueueSpec::new(&errors))
            .await
            .unwrap()
            .messages,
        1,
        "info was not routed"
    );
    let unroutable = m
        .publish_with(
            &topic,
            "metrics.x",
            &Message::new("x"),
            PublishOptions { mandatory: true },
        )
        .await;
    assert_eq!(kind(unroutable), ErrorKind::NotFound);
    let mut c = m
        .consume(&errors, &ConsumeOptions::default())
        .await
        .unwrap();
    let d = next_within(&mut c, WAIT).await.unwrap();
    assert_eq!(d.message.body, "error");
    assert_eq!(d.routing_key, "logs.api.error");
    assert_eq!(d.exchange, topic);
    d.ack().await.unwrap();
    drop(c);

    // Request / reply.
    let rpc = kubepkg_testenv::unique_name("conf-rpc");
    m.declare_queue(&QueueSpec::new(&rpc)).await.unwrap();
    let server_mq = mq.clone();
    let mut server = m.consume(&rpc, &ConsumeOptions::default()).await.unwrap();
    let task = tokio::spawn(async move {
        let d = server.next().await.expect("a request").expect("delivery");
        let upper = String::from_utf8_lossy(&d.message.body).to_uppercase();
        server_mq
            .reply(&d.message, Message::new(upper))
            .await
            .expect("reply");
        d.ack().await.expect("ack");
    });
    let reply = m
        .request("", &rpc, Message::new("ping"), WAIT)
        .await
        .unwrap();
    assert_eq!(reply.body, "PING");
    task.await.unwrap();
    assert_eq!(
        kind(
            m.reply(&Message::new("no reply_to"), Message::new("x"))
                .await
        ),
        ErrorKind::Invalid
    );

    // Bad input: redeclared with other arguments, missing things.
    let r = m
        .declare_queue(&QueueSpec::new(&q).with_message_ttl(Duration::from_secs(60)))
        .await;
    assert_eq!(kind(r), ErrorKind::Conflict);
    m.publish("", &q, &Message::new("still works"))
        .await
        .unwrap();
    let mut c = m.consume(&q, &ConsumeOptions::default()).await.unwrap();
    let d = next_within(&mut c, WAIT).await.expect("queue unchanged");
    assert_eq!(d.message.body, "still works");
    d.ack().await.unwrap();
    drop(c);
    let ghost = kubepkg_testenv::unique_name("conf-ghost");
    assert_eq!(
        kind(m.publish(&ghost, "k", &Message::new("x")).await),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(
            m.consume(&ghost, &ConsumeOptions::default())
                .await
                .map(|_| ())
        ),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(m.bind_queue(&q, &ghost, "k").await),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(m.declare_queue(&QueueSpec::new("amq.reserved")).await),
        ErrorKind::Invalid
    );
    assert_eq!(
        kind(
            m.consume(&q, &ConsumeOptions::prefetch(0))
                .await
                .map(|_| ())
        ),
        ErrorKind::Invalid
    );

    // AMQP short strings: over 255 bytes is refused before anything is
    // sent; 255 bytes go through.
    let long = "k".repeat(256);
    let max = "k".repeat(255);
    let refused = [
        Message::new("x").with_id(&long),
        Message::new("x").with_content_type(&long),
        Message::new("x").with_header(&long, "v"),
        Message {
            correlation_id: Some(long.clone()),
            ..Message::new("x")
        },
        Message {
            reply_to: Some(long.clone()),
            ..Message::new("x")
        },
    ];
    for msg in &refused {
        assert_eq!(kind(m.publish("", &q, msg).await), ErrorKind::Invalid);
    }
    assert_eq!(
        kind(m.publish(&topic, &long, &Message::new("x")).await),
        ErrorKind::Invalid,
        "routing key"
    );
    assert_eq!(
        kind(m.publish(&long, "k", &Message::new("x")).await),
        ErrorKind::Invalid,
        "exchange name"
    );
    assert_eq!(
        kind(m.bind_queue(&q, &topic, &long).await),
        ErrorKind::Invalid
    );
    let tagged = ConsumeOptions {
        tag: Some(long.clone()),
        ..Default::default()
    };
    assert_eq!(
        kind(m.consume(&q, &tagged).await.map(|_| ())),
        ErrorKind::Invalid
    );
    assert_eq!(
        kind(m.declare_queue(&QueueSpec::new(&long)).await),
        ErrorKind::Invalid
    );
    assert_eq!(
        m.declare_queue(&QueueSpec::new(&q)).await.unwrap().messages,
        0,
        "nothing was published"
    );
    let msg = Message::new("at the limit")
        .with_id(&max)
        .with_header(&max, "v")
        .with_content_type(&max);
    m.bind_queue(&q, &topic, &max).await.unwrap();
    m.publish(&topic, &max, &msg).await.unwrap();
    let mut c = m.consume(&q, &tagged_at(&max)).await.unwrap();
    assert_eq!(c.tag(), max);
    let d = next_within(&mut c, WAIT)
        .await
        .expect("a 255-byte key routes");
    assert_eq!(d.routing_key, max);
    assert_eq!(d.message.message_id.as_deref(), Some(max.as_str()));
    assert_eq!(d.message.headers.get(&max).map(String::as_str), Some("v"));
    d.ack().await.unwrap();
    drop(c);

    for name in [
        &q, &dead, &work, &ttl_q, &errors, &rpc, &cyc, &seen, &retry, &full, &forever,
    ] {
        m.delete_queue(name).await.unwrap();
    }
    for name in [&dlx, &topic, &cyc_x] {
        m.delete_exchange(name).await.unwrap();
    }
}

/// What a backend did with one key: the error kinds (or success) of put,
/// head, get, listing and delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOutcome {
    pub put: Result<(), ErrorKind>,
    pub head: Result<u64, ErrorKind>,
    pub get: Result<Bytes, ErrorKind>,
    pub listed: bool,
    pub delete: Result<(), ErrorKind>,
    pub gone: bool,
}

/// Keys every backend stores under their own name (MinIO included). No key
/// is another one plus `/...`: on MinIO an object `a` hides `a/b` from
/// listings.
pub fn good_keys() -> Vec<String> {
    let s255 = "s".repeat(255);
    let mut k1024 = format!("k1024/{s255}/{s255}/{s255}/");
    k1024.push_str(&"t".repeat(1024 - k1024.len()));
    [
        "plain",
        "dir/file.txt",
        "folder/",
        "nested/folder/",
        ".hidden",
        "x..y",
        "ünï/ç",
        " x",
        "sp/ /b",
        "x .. y",
        "\u{a0}..",
        "a+b=c&d",
        "q?x#y%z",
        "emoji/😀",
        "dots/.../..x/x..",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain([
        s255.clone(),
        format!("d254/{}", "u".repeat(254)),
        format!("d255/{}/z", "v".repeat(255)),
        format!("long/{}/{}", "é".repeat(127), "ü".repeat(127)),
        k1024,
    ])
    .collect()
}

/// Keys refused (`Invalid`) before anything is sent, on every backend.
pub fn bad_keys() -> Vec<String> {
    let k = |n: usize| "k".repeat(n);
    [
        "",
        "/abs",
        "a//b",
        "a/b//",
        "../up",
        "a/./b",
        "..",
        ".",
        " .. ",
        "a/ ./b",
        "nul\0x",
        "tab\tx",
        " ",
        "\u{a0} \u{2003}",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain([
        format!("seg256/{}", k(256)),
        format!("{}/{}", k(255), k(769)),
    ])
    .collect()
}

fn kind_of<T>(r: kubepkg_storage_api::Result<T>) -> Result<T, ErrorKind> {
    r.map_err(|e| e.kind())
}

/// Runs `keys` through put, head, get, list and delete on `store` (in a new
/// bucket) and reports what happened to each.
pub async fn key_outcomes(store: &dyn ObjectStorage, keys: &[String]) -> Vec<KeyOutcome> {
    let bucket = kubepkg_testenv::unique_name("keys");
    store.create_bucket(&bucket).await.unwrap();
    let mut out = Vec::new();
    for key in keys {
        let body = Bytes::from(format!("body of {key:?}"));
        let put = kind_of(
            store
                .put_object(&bucket, key, body.clone(), &PutOptions::default())
                .await,
        )
        .map(|_| ());
        let head = kind_of(store.head_object(&bucket, key).await).map(|m| m.size);
        let get = kind_of(store.get_object(&bucket, key).await);
        let listed = all_pages(store, &bucket, &ListOptions::default())
            .await
            .iter()
            .any(|p| p.objects.iter().any(|o| &o.key == key));
        let delete = kind_of(store.delete_object(&bucket, key).await);
        let gone = matches!(
            store.head_object(&bucket, key).await.map_err(|e| e.kind()),
            Err(ErrorKind::NotFound | ErrorKind::Invalid)
        );
        out.push(KeyOutcome {
            put,
            head,
            get,
            listed,
            delete,
            gone,
        });
    }
    let left: Vec<String> = all_pages(store, &bucket, &ListOptions::default())
        .await
        .iter()
        .flat_map(|p| p.objects.iter().map(|o| o.key.clone()))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    store.delete_bucket(&bucket).await.unwrap();
    out
}

/// The outcome every backend must give a good key.
pub fn stored(key: &str) -> KeyOutcome {
    let body = Bytes::from(format!("body of {key:?}"));
    KeyOutcome {
        put: Ok(()),
        head: Ok(body.len() as u64),
        get: Ok(body),
        listed: true,
        delete: Ok(()),
        gone: true,
    }
}

/// The outcome every backend must give a bad key.
pub fn refused() -> KeyOutcome {
    KeyOutcome {
        put: Err(ErrorKind::Invalid),
        head: Err(ErrorKind::Invalid),
        get: Err(ErrorKind::Invalid),
        listed: false,
        delete: Err(ErrorKind::Invalid),
        gone: true,
    }
}

/// `key_outcomes` of good then bad keys, checked against what they must be.
pub async fn key_conformance(store: &dyn ObjectStorage) -> Vec<KeyOutcome> {
    let good = good_keys();
    let bad = bad_keys();
    let mut all = good.clone();
    all.extend(bad.iter().cloned());
    let got = key_outcomes(store, &all).await;
    for (key, outcome) in all.iter().zip(&got) {
        let want = if good.contains(key) {
            stored(key)
        } else {
            refused()
        };
        assert_eq!(outcome, &want, "{} key {key:?}", store.backend());
    }
    got
}

/// A TCP relay in front of a real server, for network trouble the server
/// itself cannot be asked for: counts the bytes it forwards, can slow the
/// client's side down and can stop answering mid-response.
pub struct Relay {
    pub addr: std::net::SocketAddr,
    up: Arc<std::sync::atomic::AtomicU64>,
    down: Arc<std::sync::atomic::AtomicU64>,
    accepted: Arc<std::sync::atomic::AtomicUsize>,
    open: Arc<std::sync::atomic::AtomicUsize>,
    stall_after: Arc<std::sync::atomic::AtomicU64>,
    down_rate: Arc<std::sync::atomic::AtomicU64>,
}

impl Relay {
    /// Relays to `upstream` (`host:port`); `up_rate` limits client → server
    /// bytes per second.
    pub async fn start(upstream: String, up_rate: Option<u64>) -> Relay {
        use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicU64::new(0));
        let down = Arc::new(AtomicU64::new(0));
        let accepted = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(AtomicUsize::new(0));
        let stall_after = Arc::new(AtomicU64::new(u64::MAX));
        let down_rate = Arc::new(AtomicU64::new(0));
        let (u, d, a, o, st, dr) = (
            up.clone(),
            down.clone(),
            accepted.clone(),
            open.clone(),
            stall_after.clone(),
            down_rate.clone(),
        );
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                a.fetch_add(1, Ordering::SeqCst);
                let (up, down, open, stall_after) = (u.clone(), d.clone(), o.clone(), st.clone());
                let down_rate = dr.load(Ordering::SeqCst);
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    open.fetch_add(1, Ordering::SeqCst);
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let to_server = async {
                        let mut buf = vec![0u8; 64 * 1024];
                        let started = tokio::time::Instant::now();
                        let mut sent = 0u64;
                        loop {
                            let n = cr.read(&mut buf).await?;
                            if n == 0 {
                                return Ok::<_, std::io::Error>(());
                            }
                            sw.write_all(&buf[..n]).await?;
                            up.fetch_add(n as u64, Ordering::SeqCst);
                            sent += n as u64;
                            if let Some(rate) = up_rate {
                                let due = Duration::from_secs_f64(sent as f64 / rate as f64);
                                tokio::time::sleep_until(started + due).await;
                            }
                        }
                    };
                    let to_client = async {
                        let limit = stall_after.load(Ordering::SeqCst);
                        let mut buf = vec![0u8; 16 * 1024];
                        let mut sent = 0u64;
                        let started = tokio::time::Instant::now();
                        loop {
                            let n = sr.read(&mut buf).await?;
                            if n == 0 {
                                return Ok::<_, std::io::Error>(());
                            }
                            let n = if sent + n as u64 > limit {
                                (limit - sent) as usize
                            } else {
                                n
                            };
                            cw.write_all(&buf[..n]).await?;
                            sent += n as u64;
                            down.fetch_add(n as u64, Ordering::SeqCst);
                            if down_rate > 0 {
                                let due = Duration::from_secs_f64(sent as f64 / down_rate as f64);
                                tokio::time::sleep_until(started + due).await;
                            }
                            if sent >= limit {
                                // Keep the connection open, send nothing more.
                                std::future::pending::<()>().await;
                            }
                        }
                    };
                    tokio::select! {
                        _ = to_server => {}
                        _ = to_client => {}
                    }
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Relay {
            addr,
            up,
            down,
            accepted,
            open,
            stall_after,
            down_rate,
        }
    }

    /// `http://` URL of the relay.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Bytes forwarded from clients to the server so far.
    pub fn up(&self) -> u64 {
        self.up.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Bytes forwarded from the server to clients so far.
    pub fn down(&self) -> u64 {
        self.down.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Connections opened from now on forward at most `bytes_per_sec` of
    /// responses each.
    pub fn limit_down(&self, bytes_per_sec: u64) {
        self.down_rate
            .store(bytes_per_sec, std::sync::atomic::Ordering::SeqCst);
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Connections currently open through the relay.
    pub fn open(&self) -> usize {
        self.open.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Connections opened from now on forward only `bytes` of each
    /// response, then hold the connection open without sending more.
    pub fn stall_responses_after(&self, bytes: u64) {
        self.stall_after
            .store(bytes, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Polls `cond` every 50 ms until it holds or `within` passes; whether it
/// held.
pub async fn wait_for(within: Duration, mut cond: impl AsyncFnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if cond().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
