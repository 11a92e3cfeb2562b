//! The in-process broker's own edge cases, beyond the shared conformance
//! suite: dead-letter cycles that RabbitMQ ends but a naive broker would
//! follow forever, and times to live too large for the clock.

use std::time::Duration;

use futures::StreamExt;
use kubepkg_storage_api::mq::memory::MemoryQueue;
use kubepkg_storage_api::mq::{ConsumeOptions, Message, MessageQueue, QueueSpec};

async fn ready(mq: &MemoryQueue, spec: &QueueSpec) -> u32 {
    mq.declare_queue(spec).await.unwrap().messages
}

#[tokio::test]
async fn a_queue_dead_lettering_into_itself_drops_the_message() {
    let mq = MemoryQueue::new();
    // Expired, then routed by the default exchange back to the same queue.
    let ttl = QueueSpec::new("ttl-loop")
        .with_dead_letter("", None)
        .with_message_ttl(Duration::ZERO);
    // Pushed out of a queue that holds nothing, back into it.
    let full = QueueSpec::new("maxlen-loop")
        .with_dead_letter("", None)
        .with_max_length(0);
    for spec in [&ttl, &full] {
        mq.declare_queue(spec).await.unwrap();
        mq.publish("", &spec.name, &Message::new("round and round"))
            .await
            .unwrap();
        assert_eq!(ready(&mq, spec).await, 0, "{}", spec.name);
    }
}

#[tokio::test]
async fn a_dead_letter_cycle_through_two_queues_ends() {
    let mq = MemoryQueue::new();
    let a = QueueSpec::new("ping")
        .with_dead_letter("", Some("pong".into()))
        .with_message_ttl(Duration::ZERO);
    let b = QueueSpec::new("pong")
        .with_dead_letter("", Some("ping".into()))
        .with_message_ttl(Duration::ZERO);
    mq.declare_queue(&a).await.unwrap();
    mq.declare_queue(&b).await.unwrap();
    mq.publish("", "ping", &Message::new("ball")).await.unwrap();
    assert_eq!(ready(&mq, &a).await, 0);
    assert_eq!(ready(&mq, &b).await, 0);
    // The broker still works.
    let plain = QueueSpec::new("plain");
    mq.declare_queue(&plain).await.unwrap();
    mq.publish("", "plain", &Message::new("ok")).await.unwrap();
    assert_eq!(ready(&mq, &plain).await, 1);
}

#[tokio::test]
async fn a_ttl_too_large_for_the_clock_never_expires() {
    let mq = MemoryQueue::new();
    // Duration::MAX is past MAX_TTL and past what an `Instant` can hold.
    let q = QueueSpec::new("forever").with_message_ttl(Duration::MAX);
    mq.declare_queue(&q).await.unwrap();
    let mut msg = Message::new("kept");
    msg.expiration = Some(Duration::MAX);
    mq.publish("", "forever", &msg).await.unwrap();
    mq.publish("", "forever", &Message::new("kept too"))
        .await
        .unwrap();
    // Every later call still works (nothing panicked with the lock held).
    assert_eq!(ready(&mq, &q).await, 2);
    let mut c = mq
        .consume("forever", &ConsumeOptions::default())
        .await
        .unwrap();
    for body in ["kept", "kept too"] {
        let d = tokio::time::timeout(Duration::from_secs(5), c.next())
            .await
            .expect("delivered")
            .expect("a delivery")
            .unwrap();
        assert_eq!(d.message.body, body);
        d.ack().await.unwrap();
    }
}
