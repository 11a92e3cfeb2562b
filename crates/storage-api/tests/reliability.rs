//! Reliability against the real servers:
//!
//! - RabbitMQ (the environment's fault-injection node, `rabbitmq-fault`,
//!   held by this test alone) is stopped while 20,000 persistent messages
//!   are being published, then started again: every message the API
//!   reported as published is consumed at least once; duplicates are
//!   reported.
//! - A 256 MiB multipart upload whose connections are cut mid-way (through a
//!   TCP proxy in the test), once or with a 3 s outage, completes: the stored
//!   object has the source's checksum and no upload parts are left behind.
//!
//! Needs the `s3` and `amqp` features (declared in Cargo.toml).
//!
//! Sizes can be lowered for a quick run: `KUBEPKG_RELIABILITY_MESSAGES`,
//! `KUBEPKG_RELIABILITY_UPLOAD_MIB`.

mod common;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

mod amqp {
    use super::env_usize;
    use futures::StreamExt;
    use kubepkg_storage_api::config::AmqpConfig;
    use kubepkg_storage_api::mq::amqp::AmqpQueue;
    use kubepkg_storage_api::mq::{ConsumeOptions, Message, MessageQueue, QueueSpec};
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn broker_restart_loses_no_confirmed_message() {
        // The fault-injection node, held by this test alone: stopping it
        // disturbs no other test (and the next holder starts it again if
        // this test fails while it is down).
        let broker = kubepkg_testenv::rabbitmq_fault();
        let r = &*broker;
        let total = env_usize("KUBEPKG_RELIABILITY_MESSAGES", 20_000);
        let mq = Arc::new(
            AmqpQueue::new(&AmqpConfig {
                retry_timeout_secs: 300,
                ..AmqpConfig::new(r.url.clone())
            })
            .unwrap(),
        );
        let queue = kubepkg_testenv::unique_name("reliable");
        mq.declare_queue(&QueueSpec::new(&queue)).await.unwrap();

        let confirmed = Arc::new(AtomicUsize::new(0));
        // Paced over ~12 s so the broker goes down while messages are still
        // being published, however long `xtask env stop` takes to act.
        let pace = Duration::from_secs(12) / total.max(1) as u32;
        let t0 = tokio::time::Instant::now();
        let publisher = {
            let mq = mq.clone();
            let queue = queue.clone();
            let confirmed = confirmed.clone();
            tokio::spawn(async move {
                futures::stream::iter(0..total)
                    .map(|i| {
                        let mq = mq.clone();
                        let queue = queue.clone();
                        let confirmed = confirmed.clone();
                        async move {
                            tokio::time::sleep_until(t0 + pace * i as u32).await;
                            let msg = Message::new(vec![b'x'; 256]).with_id(i.to_string());
                            let r = mq.publish("", &queue, &msg).await;
                            if r.is_ok() {
                                confirmed.fetch_add(1, Ordering::Relaxed);
                            }
                            (i, r)
                        }
                    })
                    .buffer_unordered(256)
                    .collect::<Vec<_>>()
                    .await
            })
        };

        // Stop the broker once a tenth of the messages went through.
        let started = Instant::now();
        while confirmed.load(Ordering::Relaxed) < total / 10 {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "publishing stalled"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let at_stop = confirmed.load(Ordering::Relaxed);
        // `stop` returns once the node no longer answers, `start` once it
        // is healthy again: no sleeping in between.
        tokio::task::block_in_place(|| broker.stop())
            .unwrap_or_else(|e| panic!("stopping {}: {e}", broker.server()));
        let during = confirmed.load(Ordering::Relaxed);
        assert!(
            std::net::TcpStream::connect((r.host.as_str(), r.port)).is_err(),
            "the stopped broker still accepts connections"
        );
        tokio::task::block_in_place(|| broker.start())
            .unwrap_or_else(|e| panic!("starting {}: {e}", broker.server()));

        let results = publisher.await.unwrap();
        let mut ok: Vec<usize> = results
            .iter()
            .filter(|(_, r)| r.is_ok())
            .map(|(i, _)| *i)
            .collect();
        ok.sort_unstable();
        let failed: Vec<String> = results
            .iter()
            .filter_map(|(i, r)| r.as_ref().err().map(|e| format!("{i}: {e}")))
            .take(5)
            .collect();
        eprintln!(
            "published {total}: {} confirmed ({at_stop} before the stop, {during} when stopped), {} failed {failed:?}; {} connections",
            ok.len(),
            total - ok.len(),
            mq.connections_opened()
        );
        assert!(
            mq.connections_opened() >= 2,
            "the broker restart was not noticed"
        );
        assert!(during < total, "the stop came too late to test anything");

        // Every confirmed message is there at least once.
        let mut seen: HashMap<usize, usize> = HashMap::new();
        let mut consumer = mq
            .consume(&queue, &ConsumeOptions::prefetch(1000))
            .await
            .unwrap();
        let mut deliveries = 0usize;
        // Ends once every confirmed message arrived; the timeout only bounds
        // a failing run (a lost message never arrives).
        let mut missing_count = ok.len();
        while missing_count > 0 {
            let next = tokio::time::timeout(Duration::from_secs(60), consumer.next()).await;
            let Ok(Some(d)) = next else { break };
            let d = d.unwrap();
            deliveries += 1;
            let id: usize = d.message.message_id.as_deref().unwrap().parse().unwrap();
            let n = seen.entry(id).or_default();
            *n += 1;
            if *n == 1 && ok.binary_search(&id).is_ok() {
                missing_count -= 1;
            }
            d.ack().await.unwrap();
        }
        let missing: Vec<usize> = ok
            .iter()
            .copied()
            .filter(|i| !seen.contains_key(i))
            .collect();
        let duplicates: usize = seen.values().map(|n| n - 1).sum();
        eprintln!(
            "consumed {deliveries} deliveries of {} distinct messages; duplicates: {duplicates}; missing: {}",
            seen.len(),
            missing.len()
        );
        assert!(
            missing.is_empty(),
            "confirmed but lost: {:?}",
            &missing[..missing.len().min(20)]
        );
        assert_eq!(
            ok.len(),
            total,
            "every publish succeeded within the retry budget: {failed:?}"
        );
        drop(consumer);
        mq.delete_queue(&queue).await.unwrap();
    }
}

mod s3 {
    use super::env_usize;
    use bytes::Bytes;
    use futures::StreamExt;
    use kubepkg_storage_api::config::{MultipartConfig, S3Config};
    use kubepkg_storage_api::object::s3::S3Storage;
    use kubepkg_storage_api::object::{ObjectStorage, PutOptions};
    use md5::{Digest, Md5};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::watch;

    /// A TCP proxy that cuts every open connection once `cut_after` bytes
    /// went from client to server, then refuses connections for `down`.
    struct Proxy {
        addr: std::net::SocketAddr,
        cut: Arc<AtomicBool>,
    }

    async fn proxy(upstream: String, cut_after: u64, down: Duration) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sent = Arc::new(AtomicU64::new(0));
        let cut = Arc::new(AtomicBool::new(false));
        let (kill_tx, kill_rx) = watch::channel(0u32);
        let kill_tx = Arc::new(kill_tx);
        let down_until: Arc<Mutex<Option<std::time::Instant>>> = Arc::new(Mutex::new(None));
        let c = cut.clone();
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let refusing = down_until
                    .lock()
                    .unwrap()
                    .is_some_and(|t| std::time::Instant::now() < t);
                if refusing {
                    drop(client);
                    continue;
                }
                let upstream = upstream.clone();
                let sent = sent.clone();
                let cut = c.clone();
                let kill_tx = kill_tx.clone();
                let mut kill_rx = kill_rx.clone();
                let down_until = down_until.clone();
                // Only a cut that happens after this connection opened kills it.
                kill_rx.borrow_and_update();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let up = async {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = tokio::io::AsyncReadExt::read(&mut cr, &mut buf).await?;
                            if n == 0 {
                                return Ok::<_, std::io::Error>(());
                            }
                            let total = sent.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
                            if total >= cut_after && !cut.swap(true, Ordering::Relaxed) {
                                *down_until.lock().unwrap() =
                                    Some(std::time::Instant::now() + down);
                                let _ = kill_tx.send(1);
                                return Ok(());
                            }
                            tokio::io::AsyncWriteExt::write_all(&mut sw, &buf[..n]).await?;
                        }
                    };
                    let downstream = tokio::io::copy(&mut sr, &mut cw);
                    tokio::select! {
                        _ = up => {}
                        _ = downstream => {}
                        _ = kill_rx.changed() => {}
                    }
                    // Dropping both halves resets the connections.
                });
            }
        });
        Proxy { addr, cut }
    }

    /// A deterministic stream of `len` bytes in 1 MiB chunks, and its MD5.
    fn source(len: usize, seed: u64) -> (kubepkg_storage_api::object::ByteStream, String) {
        let mut md5 = Md5::new();
        let mut chunks = Vec::new();
        let mut left = len;
        let mut i = 0u64;
        while left > 0 {
            let n = left.min(1024 * 1024);
            let c = super::common::data(n, seed + i);
            md5.update(&c);
            chunks.push(Ok::<Bytes, kubepkg_storage_api::Error>(c));
            left -= n;
            i += 1;
        }
        let hex: String = md5.finalize().iter().map(|b| format!("{b:02x}")).collect();
        (futures::stream::iter(chunks).boxed(), hex)
    }

    fn storage(endpoint: &str) -> S3Storage {
        S3Storage::new(&S3Config {
            multipart: MultipartConfig::default(),
            ..crate::common::minio_s3_config(endpoint)
        })
        .unwrap()
    }

    async fn cut_upload(down: Duration) {
        let m = kubepkg_testenv::minio();
        let upstream = m
            .endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let mib = env_usize("KUBEPKG_RELIABILITY_UPLOAD_MIB", 256);
        let len = mib * 1024 * 1024;
        let direct = storage(&m.endpoint);
        let bucket = kubepkg_testenv::unique_name("cut");
        direct.create_bucket(&bucket).await.unwrap();

        let p = proxy(upstream, (len / 3) as u64, down).await;
        let via_proxy = storage(&format!("http://{}", p.addr));
        let (body, md5) = source(len, 7);
        let result = via_proxy
            .put_stream(&bucket, "big.bin", body, &PutOptions::default())
            .await;
        assert!(
            p.cut.load(Ordering::Relaxed),
            "the proxy never cut the upload"
        );
        // Surviving the cut is the point: the upload must succeed...
        let r = result.unwrap_or_else(|e| panic!("the upload did not survive the cut: {e}"));
        eprintln!(
            "upload survived the cut: {} parts, etag {}",
            r.parts, r.etag
        );
        assert_eq!(r.size, len as u64);
        // ...and store exactly the source.
        let mut got = Md5::new();
        let mut s = direct
            .get_stream(&bucket, "big.bin", None)
            .await
            .unwrap()
            .body;
        let mut n = 0usize;
        while let Some(c) = s.next().await {
            let c = c.unwrap();
            n += c.len();
            got.update(&c);
        }
        let got: String = got.finalize().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(n, len);
        assert_eq!(got, md5, "the stored object matches the source");
        direct.delete_object(&bucket, "big.bin").await.unwrap();
        let left = direct.list_multipart_uploads(&bucket).await.unwrap();
        assert!(left.is_empty(), "upload parts left behind: {left:?}");
        direct.delete_bucket(&bucket).await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn multipart_upload_survives_a_cut_connection() {
        cut_upload(Duration::ZERO).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn multipart_upload_survives_a_short_outage() {
        cut_upload(Duration::from_secs(3)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn failed_multipart_upload_is_aborted() {
        let m = kubepkg_testenv::minio();
        let direct = storage(&m.endpoint);
        let bucket = kubepkg_testenv::unique_name("abort");
        direct.create_bucket(&bucket).await.unwrap();
        // 40 MiB arrive, then the source fails.
        let (good, _) = source(40 * 1024 * 1024, 3);
        let failing = good
            .chain(futures::stream::once(async {
                Err(kubepkg_storage_api::Error::Unavailable(
                    "source went away".into(),
                ))
            }))
            .boxed();
        let e = direct
            .put_stream(&bucket, "partial.bin", failing, &PutOptions::default())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("source went away"), "{e}");
        assert!(
            direct
                .list_multipart_uploads(&bucket)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            direct
                .head_object(&bucket, "partial.bin")
                .await
                .unwrap_err()
                .kind(),
            kubepkg_util::ErrorKind::NotFound
        );
        direct.delete_bucket(&bucket).await.unwrap();
    }
}
