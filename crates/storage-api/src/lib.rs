//! # kubepkg_storage_api
//!
//! Object storage and message queues for kubepkg services, each behind one
//! object-safe trait used as `Arc<dyn Trait>`:
//!
//! - [`ObjectStorage`]: buckets, objects (bytes or
//!   streams, ranges, metadata, listings as streams of pages, copy, batch
//!   delete), presigned URLs, automatic multipart uploads with checksums.
//!   Backends: [`memory`](object::memory) and [`local`](object::local)
//!   (default features), `object::s3` and `object::minio` (features `s3`,
//!   `minio`). Every backend applies the same key rules
//!   ([`validate::object_key`], MinIO's), so a key gets the same answer
//!   everywhere.
//! - [`MessageQueue`]: exchanges, queues, bindings,
//!   confirmed persistent publishes, consumers with ack / nack / reject and
//!   prefetch, dead-lettering, request / reply. Backends:
//!   [`memory`](mq::memory) (default) and `mq::amqp` (feature `amqp`:
//!   RabbitMQ, with reconnects and at-least-once delivery).
//!
//! Configs are plain data ([`config`]); [`global`] keeps process-wide
//! defaults and named instances. Every error is one [`Error`] whose
//! [`kind()`](Error::kind) is a shared [`kubepkg_util::ErrorKind`]; names are
//! validated ([`validate`]) before anything is sent, and secrets
//! ([`secret::Secret`]) never appear in `Debug` output or logs.
//!
//! ```
//! use kubepkg_storage_api::config::{connect, connect_queue, QueueConfig, StorageConfig};
//! use kubepkg_storage_api::mq::{ConsumeOptions, Message, QueueSpec};
//! use kubepkg_storage_api::object::{ListOptions, PutOptions};
//! use kubepkg_util::ErrorKind;
//! use futures::StreamExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> kubepkg_storage_api::Result<()> {
//! let store = connect(&StorageConfig::Memory)?;
//! store.create_bucket("reports").await?;
//! let put = store
//!     .put_object("reports", "2024/q1.csv", "a,b\n1,2\n".into(), &PutOptions::default().content_type("text/csv"))
//!     .await?;
//! assert_eq!(put.size, 8);
//! assert_eq!(store.get_object("reports", "2024/q1.csv").await?, "a,b\n1,2\n");
//!
//! let mut pages = store.list_objects("reports", &ListOptions::default().with_delimiter("/"));
//! let page = pages.next().await.expect("one page")?;
//! assert_eq!(page.common_prefixes, vec!["2024/"]);
//!
//! // Bad names are rejected before anything happens.
//! let err = store.create_bucket("Not_A_Bucket").await.unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::Invalid);
//!
//! let mq = connect_queue(&QueueConfig::Memory)?;
//! mq.declare_queue(&QueueSpec::new("jobs")).await?;
//! mq.publish("", "jobs", &Message::new("build #1")).await?;
//! let mut consumer = mq.consume("jobs", &ConsumeOptions::prefetch(10)).await?;
//! let delivery = consumer.next().await.expect("a delivery")?;
//! assert_eq!(delivery.message.body, "build #1");
//! delivery.ack().await?;
//! # Ok(())
//! # }
//! ```
//!
//! ## Tests
//!
//! `cargo test -p kubepkg-storage-api` runs the in-process suites (memory
//! and local backends, the memory broker). The suites against real servers
//! — MinIO through `s3` / `minio`, RabbitMQ through `amqp`, started by
//! `cargo xtask env up` — are separate test targets that declare the
//! features they need (`required-features` in Cargo.toml), so they are
//! never built with their tests compiled out: run them with
//! `cargo test -p kubepkg-storage-api --all-features` (as `cargo xtask test`
//! does). They fail, rather than pass, when a server is missing.
#![warn(missing_docs)]
// docs.rs (`--cfg docsrs`, nightly): each item badged with the feature it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod config;
pub mod error;
pub mod global;
pub mod mq;
pub mod object;
pub mod secret;
pub mod validate;

/// Bodies are [`bytes::Bytes`], re-exported for convenience.
pub use bytes::Bytes;
pub use config::{QueueConfig, StorageConfig, connect, connect_queue};
pub use error::{Error, Result};
pub use mq::MessageQueue;
pub use object::ObjectStorage;
