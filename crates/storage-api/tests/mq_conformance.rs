//! The message-queue conformance suite on the in-process broker. The same
//! suite runs against RabbitMQ in `mq_amqp.rs` (feature `amqp`).

mod common;

use kubepkg_storage_api::config::{QueueConfig, connect_queue};

#[tokio::test]
async fn memory_backend() {
    common::mq_suite(connect_queue(&QueueConfig::Memory).unwrap()).await;
}
