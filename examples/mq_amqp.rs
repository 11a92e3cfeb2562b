//! Message queue on RabbitMQ: topology, confirmed publishes, a consumer with
//! acks, dead-lettering and request / reply. `KUBEPKG_AMQP_URL` selects the
//! broker; without it the local environment's RabbitMQ is used.
//!
//! ```text
//! KUBEPKG_AMQP_URL=amqp://user:pass@127.0.0.1:5672/%2f cargo run --example mq_amqp
//! ```

use std::time::Duration;

use futures::StreamExt;
use kubepkg::storage::config::{AmqpConfig, QueueConfig, connect_queue};
use kubepkg::storage::mq::{ConsumeOptions, ExchangeKind, ExchangeSpec, Message, QueueSpec};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("KUBEPKG_AMQP_URL")
        .unwrap_or_else(|_| kubepkg_testenv::rabbitmq().url.clone());
    let mq = connect_queue(&QueueConfig::Amqp(AmqpConfig::new(url)))?;
    println!("{mq:?}"); // the password prints as <redacted>

    let id = std::process::id();
    let (events, jobs, dlx, dead) = (
        format!("events-{id}"),
        format!("jobs-{id}"),
        format!("dlx-{id}"),
        format!("dead-{id}"),
    );
    mq.declare_exchange(&ExchangeSpec::new(&events, ExchangeKind::Topic))
        .await?;
    mq.declare_exchange(&ExchangeSpec::new(&dlx, ExchangeKind::Fanout))
        .await?;
    mq.declare_queue(&QueueSpec::new(&dead)).await?;
    mq.bind_queue(&dead, &dlx, "").await?;
    mq.declare_queue(&QueueSpec::new(&jobs).with_dead_letter(&dlx, None))
        .await?;
    mq.bind_queue(&jobs, &events, "job.#").await?;

    // Each publish returns once the broker confirmed it.
    for i in 0..5 {
        let msg = Message::new(format!("job {i}")).with_id(format!("job-{i}"));
        mq.publish(&events, "job.build", &msg).await?;
    }
    println!("published 5 persistent, confirmed messages");

    let mut consumer = mq.consume(&jobs, &ConsumeOptions::prefetch(2)).await?;
    for _ in 0..5 {
        let d = consumer.next().await.ok_or("consumer ended")??;
        let body = String::from_utf8_lossy(&d.message.body).into_owned();
        if body == "job 3" {
            println!("rejecting {body:?} (goes to the dead-letter queue)");
            d.reject(false).await?;
        } else {
            println!("processed {body:?}");
            d.ack().await?;
        }
    }
    drop(consumer);
    let mut dead_consumer = mq.consume(&dead, &ConsumeOptions::default()).await?;
    let d = dead_consumer.next().await.ok_or("no dead letter")??;
    println!(
        "dead letter: {:?} ({:?})",
        String::from_utf8_lossy(&d.message.body),
        d.message.headers.get("x-first-death-reason")
    );
    d.ack().await?;
    drop(dead_consumer);

    // Request / reply.
    let rpc = format!("rpc-{id}");
    mq.declare_queue(&QueueSpec::new(&rpc)).await?;
    let server = mq.clone();
    let mut requests = mq.consume(&rpc, &ConsumeOptions::default()).await?;
    tokio::spawn(async move {
        while let Some(Ok(d)) = requests.next().await {
            let answer = format!("{} pong", String::from_utf8_lossy(&d.message.body));
            let _ = server.reply(&d.message, Message::new(answer)).await;
            let _ = d.ack().await;
        }
    });
    let reply = mq
        .request("", &rpc, Message::new("ping"), Duration::from_secs(10))
        .await?;
    println!("reply: {:?}", String::from_utf8_lossy(&reply.body));

    for q in [&jobs, &dead, &rpc] {
        mq.delete_queue(q).await?;
    }
    for x in [&events, &dlx] {
        mq.delete_exchange(x).await?;
    }
    println!("cleaned up");
    Ok(())
}
