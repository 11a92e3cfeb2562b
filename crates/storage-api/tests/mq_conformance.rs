//! The message-queue conformance suite on every backend: memory here, amqp
//! against the local environment's RabbitMQ.

mod common;

use kubepkg_storage_api::config::{QueueConfig, connect_queue};

#[tokio::test]
async fn memory_backend() {
    common::mq_suite(connect_queue(&QueueConfig::Memory).unwrap()).await;
}

#[cfg(feature = "amqp")]
#[tokio::test]
async fn amqp_backend_against_rabbitmq() {
    use kubepkg_storage_api::config::AmqpConfig;
    let r = kubepkg_testenv::rabbitmq();
    let q = connect_queue(&QueueConfig::Amqp(AmqpConfig::new(r.url.clone()))).unwrap();
    assert_eq!(q.backend(), "amqp");
    common::mq_suite(q).await;
}
