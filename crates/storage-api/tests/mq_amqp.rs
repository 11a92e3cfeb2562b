//! The message-queue conformance suite and AMQP specifics against the local
//! environment's RabbitMQ (`cargo xtask env up`). Needs the `amqp` feature
//! (declared in Cargo.toml, so this target is never built without it).

mod common;

use std::time::Duration;

use futures::StreamExt;
use kubepkg_storage_api::config::{AmqpConfig, QueueConfig, connect_queue};
use kubepkg_storage_api::mq::amqp::AmqpQueue;
use kubepkg_storage_api::mq::{ConsumeOptions, Message, MessageQueue, QueueSpec};

#[tokio::test]
async fn amqp_backend_against_rabbitmq() {
    let r = kubepkg_testenv::rabbitmq();
    let q = connect_queue(&QueueConfig::Amqp(AmqpConfig::new(r.url.clone()))).unwrap();
    assert_eq!(q.backend(), "amqp");
    common::mq_suite(q).await;
}

#[tokio::test]
async fn a_retry_window_too_large_for_the_clock_works() {
    let r = kubepkg_testenv::rabbitmq();
    let mq = AmqpQueue::new(&AmqpConfig {
        retry_timeout_secs: u64::MAX,
        reconnect_initial_ms: u64::MAX,
        reconnect_max_ms: u64::MAX,
        ..AmqpConfig::new(r.url.clone())
    })
    .unwrap();
    let queue = kubepkg_testenv::unique_name("forever-retry");
    mq.declare_queue(&QueueSpec::new(&queue)).await.unwrap();
    mq.publish("", &queue, &Message::new("delivered"))
        .await
        .unwrap();
    let mut c = mq
        .consume(&queue, &ConsumeOptions::default())
        .await
        .unwrap();
    let d = tokio::time::timeout(Duration::from_secs(10), c.next())
        .await
        .expect("a delivery in time")
        .expect("the consumer is open")
        .unwrap();
    assert_eq!(d.message.body, "delivered");
    d.ack().await.unwrap();
    drop(c);
    mq.delete_queue(&queue).await.unwrap();
}

/// A TCP listener that accepts connections and never answers.
async fn silent_broker() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn);
        }
    });
    (format!("amqp://u:p@{addr}/%2f"), task)
}

#[tokio::test]
async fn a_broker_that_never_answers_fails_within_the_retry_window() {
    use kubepkg_util::ErrorKind;
    let (url, _server) = silent_broker().await;
    let mq = AmqpQueue::new(&AmqpConfig {
        retry_timeout_secs: 3,
        connect_timeout_secs: 1,
        ..AmqpConfig::new(url)
    })
    .unwrap();
    let started = std::time::Instant::now();
    let r = tokio::time::timeout(
        Duration::from_secs(30),
        mq.publish("", "q", &Message::new("x")),
    )
    .await
    .expect("publish returned instead of hanging");
    let e = r.expect_err("nothing answers");
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let started = std::time::Instant::now();
    let r = tokio::time::timeout(
        Duration::from_secs(30),
        mq.declare_queue(&QueueSpec::new("q")),
    )
    .await
    .expect("declare returned instead of hanging");
    assert_eq!(r.unwrap_err().kind(), ErrorKind::Timeout);
    assert!(started.elapsed() < Duration::from_secs(10));
}
