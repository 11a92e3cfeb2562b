//! Message queues: the [`MessageQueue`] trait, its data types, and the
//! backends (`memory`, `amqp`).
//!
//! The model is AMQP 0-9-1's: messages are published to an *exchange* with a
//! *routing key*; *bindings* route them into *queues*; consumers receive
//! [`Delivery`]s and settle each one with [`ack`](Delivery::ack),
//! [`nack`](Delivery::nack) or [`reject`](Delivery::reject). The default
//! exchange `""` routes to the queue named by the routing key.
//!
//! Delivery guarantee: **at least once**. [`publish`](MessageQueue::publish)
//! returns only after the broker confirmed the message (publisher confirms);
//! a message whose confirm was lost with the connection is published again
//! after reconnecting, so a consumer may see a message twice (with
//! [`Delivery::redelivered`] or a repeated [`Message::message_id`]) but never
//! loses one that `publish` reported as published. Consumers must be
//! idempotent or deduplicate by `message_id`.

use std::collections::BTreeMap;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;
use futures::stream::BoxStream;

use crate::error::{Error, Result};

#[cfg(feature = "amqp")]
pub mod amqp;
#[cfg(feature = "memory")]
pub mod memory;

/// A message: body plus the AMQP basic properties worth having.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The payload.
    pub body: Bytes,
    /// MIME type of the body.
    pub content_type: Option<String>,
    /// Application headers (string values; other AMQP header types are
    /// rendered as text when received).
    pub headers: BTreeMap<String, String>,
    /// Written to disk by the broker (delivery mode 2). Default `true`.
    pub persistent: bool,
    /// Application message id, useful to deduplicate redeliveries.
    pub message_id: Option<String>,
    /// Correlates a reply with its request.
    pub correlation_id: Option<String>,
    /// Queue a reply should be sent to.
    pub reply_to: Option<String>,
    /// Per-message time to live. One longer than [`MAX_TTL`] means the
    /// message never expires.
    pub expiration: Option<Duration>,
}

/// The longest time to live a broker enforces (RabbitMQ refuses longer
/// ones). Every backend treats a longer [`Message::expiration`] or
/// [`QueueSpec::message_ttl`] as no time to live at all.
pub const MAX_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// A time to live as the backends apply it: `None` when absent or longer
/// than [`MAX_TTL`].
pub(crate) fn effective_ttl(ttl: Option<Duration>) -> Option<Duration> {
    ttl.filter(|t| *t <= MAX_TTL)
}

impl Default for Message {
    fn default() -> Self {
        Message {
            body: Bytes::new(),
            content_type: None,
            headers: BTreeMap::new(),
            persistent: true,
            message_id: None,
            correlation_id: None,
            reply_to: None,
            expiration: None,
        }
    }
}

impl Message {
    /// A persistent message with this body.
    pub fn new(body: impl Into<Bytes>) -> Self {
        Message {
            body: body.into(),
            ..Default::default()
        }
    }

    /// Sets the message id.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.message_id = Some(id.into());
        self
    }

    /// Adds a header.
    pub fn with_header(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.headers.insert(k.into(), v.into());
        self
    }

    /// Sets the content type.
    pub fn with_content_type(mut self, ct: impl Into<String>) -> Self {
        self.content_type = Some(ct.into());
        self
    }

    /// Makes the message transient (not written to disk).
    pub fn transient(mut self) -> Self {
        self.persistent = false;
        self
    }

    /// Checks the properties AMQP carries as short strings (at most 255
    /// bytes): content type, header names, message id, correlation id and
    /// reply-to. Every backend runs it before publishing.
    pub(crate) fn validate(&self) -> Result<()> {
        use crate::validate::amqp_short;
        if let Some(ct) = &self.content_type {
            amqp_short("content type", ct)?;
        }
        for name in self.headers.keys() {
            amqp_short("header name", name)?;
        }
        if let Some(id) = &self.message_id {
            amqp_short("message id", id)?;
        }
        if let Some(id) = &self.correlation_id {
            amqp_short("correlation id", id)?;
        }
        if let Some(to) = &self.reply_to {
            amqp_short("reply-to", to)?;
        }
        Ok(())
    }
}

/// Exchange types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExchangeKind {
    /// Routes on an exact routing-key match.
    Direct,
    /// Routes to every bound queue.
    Fanout,
    /// Routes on `.`-separated patterns with `*` (one word) and `#` (zero or
    /// more words).
    Topic,
}

/// An exchange to declare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeSpec {
    /// Name (not empty, not starting with `amq.`).
    pub name: String,
    /// Type.
    pub kind: ExchangeKind,
    /// Survives a broker restart. Default `true`.
    pub durable: bool,
    /// Deleted when its last binding goes.
    pub auto_delete: bool,
}

impl ExchangeSpec {
    /// A durable exchange.
    pub fn new(name: impl Into<String>, kind: ExchangeKind) -> Self {
        ExchangeSpec {
            name: name.into(),
            kind,
            durable: true,
            auto_delete: false,
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        crate::validate::amqp_name("exchange", &self.name, false)?;
        if self.name.starts_with("amq.") {
            return Err(Error::Invalid(format!(
                "exchange name {:?}: the amq. prefix is reserved",
                self.name
            )));
        }
        Ok(())
    }
}

/// What a queue with a [`max_length`](QueueSpec::max_length) does when it
/// is full (AMQP argument `x-overflow`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Overflow {
    /// The oldest ready message is dropped (or dead-lettered) to make room.
    #[default]
    DropHead,
    /// The new message is refused: the broker nacks it and
    /// [`publish`](MessageQueue::publish) fails with [`Error::Nacked`].
    RejectPublish,
}

/// A queue to declare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    /// Name; empty lets the broker pick one (see [`QueueInfo::name`]).
    pub name: String,
    /// Survives a broker restart. Default `true`.
    pub durable: bool,
    /// Only this connection may use it; deleted when it closes.
    pub exclusive: bool,
    /// Deleted when its last consumer goes.
    pub auto_delete: bool,
    /// Rejected / expired messages are republished to this exchange.
    pub dead_letter_exchange: Option<String>,
    /// ... with this routing key instead of their own.
    pub dead_letter_routing_key: Option<String>,
    /// Messages older than this expire (and are dead-lettered). One longer
    /// than [`MAX_TTL`] means they never expire.
    pub message_ttl: Option<Duration>,
    /// At most this many ready messages; what happens beyond is
    /// [`overflow`](Self::overflow).
    pub max_length: Option<u64>,
    /// Behaviour of a full queue (default: drop the oldest).
    pub overflow: Overflow,
}

impl QueueSpec {
    /// A durable queue with no extra arguments.
    pub fn new(name: impl Into<String>) -> Self {
        QueueSpec {
            name: name.into(),
            durable: true,
            exclusive: false,
            auto_delete: false,
            dead_letter_exchange: None,
            dead_letter_routing_key: None,
            message_ttl: None,
            max_length: None,
            overflow: Overflow::DropHead,
        }
    }

    /// A broker-named, exclusive, auto-deleted, non-durable queue (for
    /// replies).
    pub fn temporary() -> Self {
        QueueSpec {
            durable: false,
            exclusive: true,
            auto_delete: true,
            ..QueueSpec::new("")
        }
    }

    /// Dead-letters rejected / expired messages to `exchange`.
    pub fn with_dead_letter(
        mut self,
        exchange: impl Into<String>,
        routing_key: Option<String>,
    ) -> Self {
        self.dead_letter_exchange = Some(exchange.into());
        self.dead_letter_routing_key = routing_key;
        self
    }

    /// Sets the message TTL.
    pub fn with_message_ttl(mut self, ttl: Duration) -> Self {
        self.message_ttl = Some(ttl);
        self
    }

    /// Sets the maximum length.
    pub fn with_max_length(mut self, n: u64) -> Self {
        self.max_length = Some(n);
        self
    }

    /// Sets what a full queue does.
    pub fn with_overflow(mut self, overflow: Overflow) -> Self {
        self.overflow = overflow;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        crate::validate::amqp_name("queue", &self.name, true)?;
        if self.name.starts_with("amq.") {
            return Err(Error::Invalid(format!(
                "queue name {:?}: the amq. prefix is reserved",
                self.name
            )));
        }
        if let Some(x) = &self.dead_letter_exchange {
            crate::validate::amqp_name("dead-letter exchange", x, true)?;
        }
        if let Some(k) = &self.dead_letter_routing_key {
            crate::validate::amqp_short("dead-letter routing key", k)?;
        }
        Ok(())
    }
}

/// What declaring a queue returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueInfo {
    /// The queue's name (broker-chosen when the spec's was empty).
    pub name: String,
    /// Ready messages.
    pub messages: u32,
    /// Active consumers.
    pub consumers: u32,
}

/// Options of a publish.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublishOptions {
    /// Fail with `NotFound` when no queue is bound for the message, instead
    /// of the broker silently dropping it.
    pub mandatory: bool,
}

/// Options of a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumeOptions {
    /// Most unacknowledged deliveries outstanding at once (default 64).
    pub prefetch: u16,
    /// Consumer tag (at most 255 bytes); generated when absent.
    pub tag: Option<String>,
    /// Only consumer of the queue.
    pub exclusive: bool,
}

impl Default for ConsumeOptions {
    fn default() -> Self {
        ConsumeOptions {
            prefetch: 64,
            tag: None,
            exclusive: false,
        }
    }
}

impl ConsumeOptions {
    /// With this prefetch.
    pub fn prefetch(prefetch: u16) -> Self {
        ConsumeOptions {
            prefetch,
            ..Default::default()
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.prefetch == 0 {
            return Err(Error::Invalid("prefetch must be at least 1".into()));
        }
        if let Some(tag) = &self.tag {
            crate::validate::amqp_short("consumer tag", tag)?;
        }
        Ok(())
    }
}

/// How a backend settles a delivery. Implemented by the backends.
#[async_trait]
pub trait Acknowledger: Send + Sync {
    /// Processed: remove it.
    async fn ack(&self) -> Result<()>;
    /// Not processed: requeue it, or dead-letter / drop it.
    async fn nack(&self, requeue: bool) -> Result<()>;
    /// Refused: requeue it, or dead-letter / drop it.
    async fn reject(&self, requeue: bool) -> Result<()>;
}

/// A received message, to be settled exactly once.
pub struct Delivery {
    /// The message.
    pub message: Message,
    /// Exchange it was published to.
    pub exchange: String,
    /// Routing key it was published with.
    pub routing_key: String,
    /// Delivered before (to this or another consumer) without an ack.
    pub redelivered: bool,
    acker: Box<dyn Acknowledger>,
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("message", &self.message)
            .field("exchange", &self.exchange)
            .field("routing_key", &self.routing_key)
            .field("redelivered", &self.redelivered)
            .finish_non_exhaustive()
    }
}

impl Delivery {
    /// Builds a delivery (for backends).
    pub fn new(
        message: Message,
        exchange: String,
        routing_key: String,
        redelivered: bool,
        acker: Box<dyn Acknowledger>,
    ) -> Self {
        Delivery {
            message,
            exchange,
            routing_key,
            redelivered,
            acker,
        }
    }

    /// Acknowledges: the broker forgets the message.
    pub async fn ack(self) -> Result<()> {
        self.acker.ack().await
    }

    /// Negative acknowledgement: requeue, or dead-letter (drop without a
    /// dead-letter exchange).
    pub async fn nack(self, requeue: bool) -> Result<()> {
        self.acker.nack(requeue).await
    }

    /// Rejects: requeue, or dead-letter (drop without a dead-letter
    /// exchange).
    pub async fn reject(self, requeue: bool) -> Result<()> {
        self.acker.reject(requeue).await
    }
}

/// A stream of deliveries. Dropping it cancels the consumer; its
/// unacknowledged deliveries go back to the queue.
pub struct Consumer {
    inner: BoxStream<'static, Result<Delivery>>,
    tag: String,
}

impl fmt::Debug for Consumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("tag", &self.tag)
            .finish_non_exhaustive()
    }
}

impl Consumer {
    /// Wraps a stream (for backends).
    pub fn new(tag: String, inner: BoxStream<'static, Result<Delivery>>) -> Self {
        Consumer { inner, tag }
    }

    /// The consumer tag.
    pub fn tag(&self) -> &str {
        &self.tag
    }
}

impl Stream for Consumer {
    type Item = Result<Delivery>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// A message broker. Object-safe; use it as `Arc<dyn MessageQueue>`.
#[async_trait]
pub trait MessageQueue: Send + Sync + fmt::Debug {
    /// The backend's name: `"memory"` or `"amqp"`.
    fn backend(&self) -> &'static str;

    /// Declares an exchange (idempotent with the same arguments; different
    /// arguments are `Conflict`).
    async fn declare_exchange(&self, spec: &ExchangeSpec) -> Result<()>;

    /// Deletes an exchange (missing is fine).
    async fn delete_exchange(&self, name: &str) -> Result<()>;

    /// Declares a queue (idempotent with the same arguments; different
    /// arguments are `Conflict`).
    async fn declare_queue(&self, spec: &QueueSpec) -> Result<QueueInfo>;

    /// Deletes a queue and its messages (missing is fine).
    async fn delete_queue(&self, name: &str) -> Result<()>;

    /// Routes messages of `exchange` matching `routing_key` into `queue`.
    async fn bind_queue(&self, queue: &str, exchange: &str, routing_key: &str) -> Result<()>;

    /// Publishes and waits for the broker's confirm. Returns `Ok` only once
    /// the broker has taken responsibility for the message.
    async fn publish_with(
        &self,
        exchange: &str,
        routing_key: &str,
        message: &Message,
        opts: PublishOptions,
    ) -> Result<()>;

    /// [`publish_with`](Self::publish_with) with default options.
    async fn publish(&self, exchange: &str, routing_key: &str, message: &Message) -> Result<()> {
        self.publish_with(exchange, routing_key, message, PublishOptions::default())
            .await
    }

    /// Starts consuming a queue.
    async fn consume(&self, queue: &str, opts: &ConsumeOptions) -> Result<Consumer>;

    /// Sends `message` as a request and waits up to `timeout` for the reply
    /// (sent with [`reply`](Self::reply) by the consumer). Uses a temporary
    /// reply queue and a fresh correlation id.
    async fn request(
        &self,
        exchange: &str,
        routing_key: &str,
        message: Message,
        timeout: Duration,
    ) -> Result<Message> {
        use futures::StreamExt;
        let q = self.declare_queue(&QueueSpec::temporary()).await?;
        let result = async {
            let mut replies = self.consume(&q.name, &ConsumeOptions::prefetch(16)).await?;
            let correlation = new_id();
            let mut msg = message;
            msg.reply_to = Some(q.name.clone());
            msg.correlation_id = Some(correlation.clone());
            self.publish_with(
                exchange,
                routing_key,
                &msg,
                PublishOptions { mandatory: true },
            )
            .await?;
            let wait = async {
                while let Some(d) = replies.next().await {
                    let d = d?;
                    let matches = d.message.correlation_id.as_deref() == Some(correlation.as_str());
                    let reply = d.message.clone();
                    d.ack().await?;
                    if matches {
                        return Ok(reply);
                    }
                }
                Err(Error::Unavailable("reply consumer ended".into()))
            };
            tokio::time::timeout(timeout, wait)
                .await
                .map_err(|_| Error::Timeout(format!("no reply within {timeout:?}")))?
        }
        .await;
        if let Err(e) = self.delete_queue(&q.name).await {
            tracing::debug!(error = %e, "deleting the reply queue failed");
        }
        result
    }

    /// Answers a request received through [`request`](Self::request): sends
    /// `response` to its `reply_to` queue with its correlation id.
    async fn reply(&self, request: &Message, response: Message) -> Result<()> {
        let Some(to) = request.reply_to.as_deref() else {
            return Err(Error::Invalid("the request has no reply_to".into()));
        };
        let mut msg = response;
        msg.correlation_id = request.correlation_id.clone();
        msg.persistent = false;
        self.publish("", to, &msg).await
    }
}

/// A process-unique id (for correlation ids, consumer tags).
pub(crate) fn new_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{:x}-{:x}-{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Whether a topic `pattern` matches a routing `key`.
pub(crate) fn topic_matches(pattern: &str, key: &str) -> bool {
    fn go(p: &[&str], k: &[&str]) -> bool {
        match p.split_first() {
            None => k.is_empty(),
            Some((&"#", rest)) => (0..=k.len()).any(|i| go(rest, &k[i..])),
            Some((&"*", rest)) => !k.is_empty() && go(rest, &k[1..]),
            Some((w, rest)) => k.first() == Some(w) && go(rest, &k[1..]),
        }
    }
    let p: Vec<&str> = pattern.split('.').collect();
    let k: Vec<&str> = if key.is_empty() {
        Vec::new()
    } else {
        key.split('.').collect()
    };
    go(&p, &k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics() {
        assert!(topic_matches("a.*.c", "a.b.c"));
        assert!(!topic_matches("a.*.c", "a.b.b.c"));
        assert!(topic_matches("a.#", "a"));
        assert!(topic_matches("a.#", "a.b.c"));
        assert!(topic_matches("#", "x.y"));
        assert!(topic_matches("#.c", "a.b.c"));
        assert!(!topic_matches("a.b", "a.c"));
    }

    #[test]
    fn messages_default_to_persistent() {
        assert!(Message::new("x").persistent);
        assert!(!Message::new("x").transient().persistent);
    }
}
