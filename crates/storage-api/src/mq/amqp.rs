//! AMQP 0-9-1 backend (feature `amqp`) on `lapin`, for RabbitMQ.
//!
//! - **One connection** per [`AmqpQueue`], opened on first use; publishes go
//!   through a small pool of channels in confirm mode; every consumer gets its
//!   own channel (so its prefetch applies to it alone); declarations use a
//!   short-lived channel so a refused declaration (406) cannot poison a
//!   pooled one.
//! - **Reconnect**: when the connection is lost, the next operation
//!   reconnects with exponential backoff (up to `retry_timeout_secs`),
//!   re-declares every exchange, queue and binding declared through this
//!   handle (broker-named queues excepted), and consumers resubscribe by
//!   themselves.
//! - **At-least-once publishing**: [`publish`](MessageQueue::publish)
//!   returns only after the broker's confirm. A publish whose confirm did not
//!   arrive (connection lost) is sent again after reconnecting, so a message
//!   reported as published is never lost, but may be delivered twice.
//!   Deduplicate with [`Message::message_id`] where it matters.
//! - **Nacks are answers**: a broker nack (the broker refusing the message,
//!   e.g. a full queue with [`Overflow::RejectPublish`]) is returned at once
//!   as [`Error::Nacked`], not retried.
//! - **Short strings checked first**: names, routing keys, header names,
//!   message / correlation ids, reply-to, content type and consumer tags
//!   longer than AMQP's 255-byte short strings are `Invalid` before
//!   anything is sent.
//! - **Bounded waits**: opening a connection may take `connect_timeout_secs`
//!   per attempt, and no operation outlives `retry_timeout_secs` — a broker
//!   that accepts connections but never answers yields `Timeout`. A
//!   `retry_timeout_secs` too large for the clock means "retry until it
//!   works". A TTL beyond [`MAX_TTL`](super::MAX_TTL) (RabbitMQ's limit) is
//!   not sent: the message or queue gets no TTL, as on the memory backend.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    BasicRejectOptions, ConfirmSelectOptions, ExchangeDeclareOptions, ExchangeDeleteOptions,
    QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::protocol::{AMQPErrorKind, AMQPHardError, AMQPSoftError};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use super::{
    Acknowledger, ConsumeOptions, Consumer, Delivery, ExchangeKind, ExchangeSpec, Message,
    MessageQueue, Overflow, PublishOptions, QueueInfo, QueueSpec, effective_ttl, new_id,
};
pub use crate::config::AmqpConfig;
use crate::error::{Error, Result};
use crate::secret::redact_url;

#[derive(Debug, Clone)]
enum Op {
    Exchange(ExchangeSpec),
    Queue(QueueSpec),
    Bind {
        queue: String,
        exchange: String,
        key: String,
    },
    DeleteQueue(String),
    DeleteExchange(String),
}

struct Session {
    generation: u64,
    conn: Connection,
    publishers: Vec<Mutex<Channel>>,
    next: AtomicUsize,
}

struct Inner {
    config: AmqpConfig,
    /// Serializes reconnects.
    reconnect: tokio::sync::Mutex<()>,
    current: Mutex<Option<Arc<Session>>>,
    topology: Mutex<Vec<Op>>,
    generation: std::sync::atomic::AtomicU64,
}

/// The AMQP backend. Clones share one connection.
#[derive(Clone)]
pub struct AmqpQueue {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AmqpQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpQueue")
            .field("url", &redact_url(self.inner.config.url.expose()))
            .finish_non_exhaustive()
    }
}

/// Maps a lapin error onto this crate's kinds.
pub(crate) fn map_err(op: &str, e: &lapin::Error) -> Error {
    use lapin::ErrorKind as K;
    let detail = format!("{op}: {e}");
    match e.kind() {
        K::ProtocolError(amqp) => match amqp.kind() {
            AMQPErrorKind::Soft(s) => match s {
                AMQPSoftError::NOTFOUND | AMQPSoftError::NOROUTE | AMQPSoftError::NOCONSUMERS => {
                    Error::NotFound(detail)
                }
                AMQPSoftError::PRECONDITIONFAILED | AMQPSoftError::RESOURCELOCKED => {
                    Error::Conflict(detail)
                }
                AMQPSoftError::ACCESSREFUSED => Error::Forbidden(detail),
                AMQPSoftError::CONTENTTOOLARGE => Error::Invalid(detail),
            },
            AMQPErrorKind::Hard(h) => match h {
                AMQPHardError::CONNECTIONFORCED | AMQPHardError::RESOURCEERROR => {
                    Error::Unavailable(detail)
                }
                AMQPHardError::NOTALLOWED => Error::Forbidden(detail),
                AMQPHardError::INVALIDPATH => Error::Invalid(detail),
                AMQPHardError::NOTIMPLEMENTED => Error::Unsupported(detail),
                _ => Error::Internal(detail),
            },
        },
        K::IOError(_)
        | K::InvalidChannelState(..)
        | K::InvalidConnectionState(_)
        | K::InvalidChannel(_)
        | K::MissingHeartbeatError
        | K::ChannelsLimitReached
        | K::RuntimeShutdownError(_) => Error::Unavailable(detail),
        K::AuthProviderError(_) => Error::Unauthorized(detail),
        K::InvalidProtocolVersion(_) => Error::Unsupported(detail),
        _ => Error::Internal(detail),
    }
}

fn queue_args(spec: &QueueSpec) -> FieldTable {
    let mut t = FieldTable::default();
    if let Some(x) = &spec.dead_letter_exchange {
        t.insert(
            ShortString::from("x-dead-letter-exchange"),
            AMQPValue::LongString(LongString::from(x.as_str())),
        );
    }
    if let Some(k) = &spec.dead_letter_routing_key {
        t.insert(
            ShortString::from("x-dead-letter-routing-key"),
            AMQPValue::LongString(LongString::from(k.as_str())),
        );
    }
    if let Some(ttl) = effective_ttl(spec.message_ttl) {
        t.insert(
            ShortString::from("x-message-ttl"),
            AMQPValue::LongLongInt(ttl.as_millis().min(i64::MAX as u128) as i64),
        );
    }
    if let Some(n) = spec.max_length {
        t.insert(
            ShortString::from("x-max-length"),
            AMQPValue::LongLongInt(n.min(i64::MAX as u64) as i64),
        );
    }
    // Drop-head is the broker's default; leaving it out keeps queues
    // declared before this option existed compatible.
    if spec.overflow == Overflow::RejectPublish {
        t.insert(
            ShortString::from("x-overflow"),
            AMQPValue::LongString(LongString::from("reject-publish")),
        );
    }
    t
}

fn to_properties(m: &Message) -> BasicProperties {
    let mut p = BasicProperties::default().with_delivery_mode(if m.persistent { 2 } else { 1 });
    if let Some(ct) = &m.content_type {
        p = p.with_content_type(ShortString::from(ct.as_str()));
    }
    if !m.headers.is_empty() {
        let mut t = FieldTable::default();
        for (k, v) in &m.headers {
            t.insert(
                ShortString::from(k.as_str()),
                AMQPValue::LongString(LongString::from(v.as_str())),
            );
        }
        p = p.with_headers(t);
    }
    if let Some(id) = &m.message_id {
        p = p.with_message_id(ShortString::from(id.as_str()));
    }
    if let Some(c) = &m.correlation_id {
        p = p.with_correlation_id(ShortString::from(c.as_str()));
    }
    if let Some(r) = &m.reply_to {
        p = p.with_reply_to(ShortString::from(r.as_str()));
    }
    if let Some(e) = effective_ttl(m.expiration) {
        p = p.with_expiration(ShortString::from(e.as_millis().to_string()));
    }
    p
}

fn value_to_string(v: &AMQPValue) -> Option<String> {
    Some(match v {
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        AMQPValue::ShortString(s) => s.as_str().to_owned(),
        AMQPValue::Boolean(b) => b.to_string(),
        AMQPValue::ShortShortInt(n) => n.to_string(),
        AMQPValue::ShortShortUInt(n) => n.to_string(),
        AMQPValue::ShortInt(n) => n.to_string(),
        AMQPValue::ShortUInt(n) => n.to_string(),
        AMQPValue::LongInt(n) => n.to_string(),
        AMQPValue::LongUInt(n) => n.to_string(),
        AMQPValue::LongLongInt(n) => n.to_string(),
        AMQPValue::Timestamp(n) => n.to_string(),
        AMQPValue::Float(n) => n.to_string(),
        AMQPValue::Double(n) => n.to_string(),
        _ => return None,
    })
}

fn from_delivery(props: &BasicProperties, data: Vec<u8>) -> Message {
    let headers = props
        .headers()
        .as_ref()
        .map(|t| {
            t.inner()
                .iter()
                .filter_map(|(k, v)| value_to_string(v).map(|s| (k.as_str().to_owned(), s)))
                .collect()
        })
        .unwrap_or_default();
    Message {
        body: data.into(),
        content_type: props.content_type().as_ref().map(|s| s.as_str().to_owned()),
        headers,
        persistent: *props.delivery_mode() == Some(2),
        message_id: props.message_id().as_ref().map(|s| s.as_str().to_owned()),
        correlation_id: props
            .correlation_id()
            .as_ref()
            .map(|s| s.as_str().to_owned()),
        reply_to: props.reply_to().as_ref().map(|s| s.as_str().to_owned()),
        expiration: props
            .expiration()
            .as_ref()
            .and_then(|s| s.as_str().parse::<u64>().ok())
            .map(Duration::from_millis),
    }
}

/// Runs one topology operation on `ch`.
async fn apply(ch: &Channel, op: &Op) -> std::result::Result<Option<QueueInfo>, lapin::Error> {
    match op {
        Op::Exchange(spec) => {
            let kind = match spec.kind {
                ExchangeKind::Direct => lapin::ExchangeKind::Direct,
                ExchangeKind::Fanout => lapin::ExchangeKind::Fanout,
                ExchangeKind::Topic => lapin::ExchangeKind::Topic,
            };
            ch.exchange_declare(
                ShortString::from(spec.name.as_str()),
                kind,
                ExchangeDeclareOptions {
                    durable: spec.durable,
                    auto_delete: spec.auto_delete,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
            Ok(None)
        }
        Op::Queue(spec) => {
            let q = ch
                .queue_declare(
                    ShortString::from(spec.name.as_str()),
                    QueueDeclareOptions {
                        durable: spec.durable,
                        exclusive: spec.exclusive,
                        auto_delete: spec.auto_delete,
                        ..Default::default()
                    },
                    queue_args(spec),
                )
                .await?;
            Ok(Some(QueueInfo {
                name: q.name().as_str().to_owned(),
                messages: q.message_count(),
                consumers: q.consumer_count(),
            }))
        }
        Op::Bind {
            queue,
            exchange,
            key,
        } => {
            ch.queue_bind(
                ShortString::from(queue.as_str()),
                ShortString::from(exchange.as_str()),
                ShortString::from(key.as_str()),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
            Ok(None)
        }
        Op::DeleteQueue(name) => {
            ch.queue_delete(
                ShortString::from(name.as_str()),
                QueueDeleteOptions::default(),
            )
            .await?;
            Ok(None)
        }
        Op::DeleteExchange(name) => {
            ch.exchange_delete(
                ShortString::from(name.as_str()),
                ExchangeDeleteOptions::default(),
            )
            .await?;
            Ok(None)
        }
    }
}

/// Whether `t` is still before `deadline` (`None`: no deadline).
fn before(t: Instant, deadline: Option<Instant>) -> bool {
    deadline.is_none_or(|d| t < d)
}

/// Runs `fut`, failing with `Timeout` once `deadline` passes (`None`: no
/// deadline): a broker that stops answering cannot hang an operation past
/// its retry window.
async fn within<T>(
    deadline: Option<Instant>,
    what: &str,
    fut: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    let Some(d) = deadline else {
        return fut.await;
    };
    tokio::time::timeout_at(tokio::time::Instant::from_std(d), fut)
        .await
        .unwrap_or_else(|_| {
            Err(Error::Timeout(format!(
                "{what}: the broker did not answer within the retry window"
            )))
        })
}

impl Inner {
    /// When retrying ends; `None` when `retry_timeout_secs` is too large to
    /// add to the clock (retry until the operation succeeds).
    fn deadline(&self) -> Option<Instant> {
        Instant::now().checked_add(Duration::from_secs(self.config.retry_timeout_secs.max(1)))
    }

    fn live(&self) -> Option<Arc<Session>> {
        let cur = self.current.lock().ok()?.clone()?;
        cur.conn.status().connected().then_some(cur)
    }

    /// The current session, reconnecting (with backoff, until `deadline`)
    /// when the connection is gone.
    async fn session(&self, deadline: Option<Instant>) -> Result<Arc<Session>> {
        if let Some(s) = self.live() {
            return Ok(s);
        }
        let _guard = self.reconnect.lock().await;
        if let Some(s) = self.live() {
            return Ok(s);
        }
        let mut delay = Duration::from_millis(self.config.reconnect_initial_ms.max(1));
        let max = Duration::from_millis(self.config.reconnect_max_ms.max(1));
        // Ten years at most: as good as none, and no clock overflow.
        let connect_timeout =
            Duration::from_secs(self.config.connect_timeout_secs.clamp(1, 315_360_000));
        loop {
            let attempt = async {
                tokio::time::timeout(connect_timeout, self.open())
                    .await
                    .unwrap_or_else(|_| {
                        Err(Error::Timeout(format!(
                            "connecting to the broker: no answer within {connect_timeout:?}"
                        )))
                    })
            };
            match within(deadline, "connecting to the broker", attempt).await {
                Ok(s) => {
                    let s = Arc::new(s);
                    if let Ok(mut cur) = self.current.lock() {
                        *cur = Some(s.clone());
                    }
                    return Ok(s);
                }
                Err(e)
                    if e.is_retryable()
                        && Instant::now()
                            .checked_add(delay)
                            .is_some_and(|t| before(t, deadline)) =>
                {
                    tracing::warn!(backend = "amqp", error = %e, retry_in = ?delay, "connecting to the broker failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = delay.saturating_mul(2).min(max);
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn open(&self) -> Result<Session> {
        let url = self.config.url.expose();
        let span =
            tracing::debug_span!("mq", backend = "amqp", op = "connect", target = %redact_url(url));
        let conn = Connection::connect(
            url,
            ConnectionProperties::default()
                .with_connection_name(LongString::from(self.config.connection_name.as_str())),
        )
        .instrument(span)
        .await
        .map_err(|e| {
            let mapped = map_err("connect", &e);
            match mapped {
                Error::Forbidden(m) => Error::Unauthorized(m),
                other => other,
            }
        })?;
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        // Re-declare the topology known so far.
        let ops: Vec<Op> = self.topology.lock().map(|t| t.clone()).unwrap_or_default();
        if !ops.is_empty() {
            let mut ch = conn
                .create_channel()
                .await
                .map_err(|e| map_err("channel", &e))?;
            for op in &ops {
                if let Err(e) = apply(&ch, op).await {
                    tracing::warn!(backend = "amqp", ?op, error = %e, "re-declaring topology failed");
                    if !ch.status().connected() {
                        ch = conn
                            .create_channel()
                            .await
                            .map_err(|e| map_err("channel", &e))?;
                    }
                }
            }
            let _ = ch.close(200, ShortString::from("ok")).await;
        }
        let mut publishers = Vec::new();
        for _ in 0..self.config.publish_channels.max(1) {
            publishers.push(Mutex::new(confirm_channel(&conn).await?));
        }
        if generation > 1 {
            tracing::info!(backend = "amqp", generation, "reconnected to the broker");
        }
        Ok(Session {
            generation,
            conn,
            publishers,
            next: AtomicUsize::new(0),
        })
    }

    /// Runs a declaration / deletion on a short-lived channel, retrying
    /// through reconnects.
    async fn run(&self, op: Op) -> Result<Option<QueueInfo>> {
        let deadline = self.deadline();
        let name = match &op {
            Op::Exchange(_) => "declare_exchange",
            Op::Queue(_) => "declare_queue",
            Op::Bind { .. } => "bind_queue",
            Op::DeleteQueue(_) => "delete_queue",
            Op::DeleteExchange(_) => "delete_exchange",
        };
        loop {
            let session = self.session(deadline).await?;
            let res = async {
                let ch = session
                    .conn
                    .create_channel()
                    .await
                    .map_err(|e| map_err("channel", &e))?;
                let out = apply(&ch, &op).await.map_err(|e| map_err(name, &e));
                if ch.status().connected() {
                    let _ = ch.close(200, ShortString::from("ok")).await;
                }
                out
            };
            let res = within(deadline, name, res)
                .instrument(tracing::debug_span!("mq", backend = "amqp", op = name))
                .await;
            match res {
                Ok(v) => {
                    self.record(&op, v.as_ref());
                    return Ok(v);
                }
                Err(e) if e.is_retryable() && before(Instant::now(), deadline) => {
                    tracing::warn!(backend = "amqp", op = name, error = %e, "retrying after a connection problem");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn record(&self, op: &Op, info: Option<&QueueInfo>) {
        let Ok(mut t) = self.topology.lock() else {
            return;
        };
        match op {
            Op::Exchange(spec) => {
                t.retain(|o| !matches!(o, Op::Exchange(s) if s.name == spec.name));
                t.push(op.clone());
            }
            Op::Queue(spec) => {
                if spec.name.is_empty() {
                    // Broker-named: a new connection would get another name.
                    let _ = info;
                    return;
                }
                t.retain(|o| !matches!(o, Op::Queue(s) if s.name == spec.name));
                t.push(op.clone());
            }
            Op::Bind { .. } => {
                if !t.iter().any(|o| format!("{o:?}") == format!("{op:?}")) {
                    t.push(op.clone());
                }
            }
            Op::DeleteQueue(name) => t.retain(|o| match o {
                Op::Queue(s) => &s.name != name,
                Op::Bind { queue, .. } => queue != name,
                _ => true,
            }),
            Op::DeleteExchange(name) => t.retain(|o| match o {
                Op::Exchange(s) => &s.name != name,
                Op::Bind { exchange, .. } => exchange != name,
                _ => true,
            }),
        }
    }
}

async fn confirm_channel(conn: &Connection) -> Result<Channel> {
    let ch = conn
        .create_channel()
        .await
        .map_err(|e| map_err("channel", &e))?;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(|e| map_err("confirm_select", &e))?;
    Ok(ch)
}

impl Session {
    /// A publishing channel, replacing one that a channel error closed.
    async fn publisher(&self) -> Result<Channel> {
        let n = self.publishers.len().max(1);
        let idx = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let slot = &self.publishers[idx];
        let ch = slot
            .lock()
            .map_err(|_| Error::Internal("channel pool lock poisoned".into()))?
            .clone();
        if ch.status().connected() {
            return Ok(ch);
        }
        let fresh = confirm_channel(&self.conn).await?;
        if let Ok(mut s) = slot.lock() {
            *s = fresh.clone();
        }
        Ok(fresh)
    }
}

impl AmqpQueue {
    /// A handle for `config`. Nothing is sent until the first operation.
    pub fn new(config: &AmqpConfig) -> Result<Self> {
        let url = url::Url::parse(config.url.expose()).map_err(|e| {
            Error::Invalid(format!("amqp url {}: {e}", redact_url(config.url.expose())))
        })?;
        if url.scheme() != "amqp" && url.scheme() != "amqps" {
            return Err(Error::Invalid(format!(
                "amqp url {}: scheme must be amqp or amqps",
                redact_url(config.url.expose())
            )));
        }
        Ok(AmqpQueue {
            inner: Arc::new(Inner {
                config: config.clone(),
                reconnect: tokio::sync::Mutex::new(()),
                current: Mutex::new(None),
                topology: Mutex::new(Vec::new()),
                generation: std::sync::atomic::AtomicU64::new(0),
            }),
        })
    }

    /// Opens the connection now (instead of on first use).
    pub async fn connect(&self) -> Result<()> {
        self.inner.session(self.inner.deadline()).await.map(|_| ())
    }

    /// How many times a connection was opened (1 + reconnects).
    pub fn connections_opened(&self) -> u64 {
        self.inner.generation.load(Ordering::Relaxed)
    }

    /// Closes the connection. Later operations reconnect.
    pub async fn close(&self) -> Result<()> {
        let cur = self.inner.current.lock().ok().and_then(|mut c| c.take());
        if let Some(s) = cur
            && s.conn.status().connected()
        {
            {
                s.conn
                    .close(200, ShortString::from("bye"))
                    .await
                    .map_err(|e| map_err("close", &e))?;
            }
        }
        Ok(())
    }
}

/// A settlement for the per-subscription ack task.
enum AckOp {
    Ack(u64),
    Nack(u64, bool),
    Reject(u64, bool),
    /// Reply once everything queued before is on the wire.
    Flush(oneshot::Sender<()>),
}

type Settle = futures::future::BoxFuture<'static, std::result::Result<(), lapin::Error>>;

/// Sends the acks / nacks / rejects of one subscription, many in flight at
/// once (a settlement has no broker reply in AMQP 0-9-1, so waiting for each
/// write in turn would only serialize consumers). Ends when every sender is
/// gone.
async fn ack_runner(ch: Channel, mut ops: mpsc::UnboundedReceiver<AckOp>) {
    use futures::stream::FuturesUnordered;
    let mut in_flight: FuturesUnordered<Settle> = FuturesUnordered::new();
    loop {
        tokio::select! {
            op = ops.recv() => {
                let Some(op) = op else { break };
                let fut: Settle = match op {
                    AckOp::Ack(tag) => {
                        let ch = ch.clone();
                        Box::pin(async move { ch.basic_ack(tag, BasicAckOptions::default()).await })
                    }
                    AckOp::Nack(tag, requeue) => {
                        let ch = ch.clone();
                        Box::pin(async move {
                            ch.basic_nack(tag, BasicNackOptions { requeue, multiple: false }).await
                        })
                    }
                    AckOp::Reject(tag, requeue) => {
                        let ch = ch.clone();
                        Box::pin(async move { ch.basic_reject(tag, BasicRejectOptions { requeue }).await })
                    }
                    AckOp::Flush(done) => {
                        while let Some(r) = in_flight.next().await {
                            log_settle(r);
                        }
                        let _ = done.send(());
                        continue;
                    }
                };
                in_flight.push(fut);
            }
            Some(r) = in_flight.next(), if !in_flight.is_empty() => log_settle(r),
        }
    }
    while let Some(r) = in_flight.next().await {
        log_settle(r);
    }
}

fn log_settle(r: std::result::Result<(), lapin::Error>) {
    if let Err(e) = r {
        tracing::debug!(backend = "amqp", error = %e, "settling a delivery failed; the broker will redeliver it");
    }
}

/// Closes a consumer channel once every settlement queued before is out, so
/// acked messages are not redelivered.
async fn close_after_acks(ch: Channel, ops: mpsc::UnboundedSender<AckOp>) {
    let (done_tx, done_rx) = oneshot::channel();
    if ops.send(AckOp::Flush(done_tx)).is_ok() {
        let _ = done_rx.await;
    }
    if ch.status().connected() {
        let _ = ch.close(200, ShortString::from("consumer dropped")).await;
    }
}

struct AmqpAcker {
    tag: u64,
    ops: mpsc::UnboundedSender<AckOp>,
}

impl AmqpAcker {
    fn send(&self, op: AckOp) -> Result<()> {
        self.ops.send(op).map_err(|_| {
            Error::Unavailable(
                "the consumer's channel is gone; the broker will redeliver the message".into(),
            )
        })
    }
}

/// Settlements are queued, in order, to the subscription's channel and
/// written asynchronously: `Ok` means the settlement will be sent unless the
/// channel is lost first — and then the broker redelivers (at-least-once).
#[async_trait]
impl Acknowledger for AmqpAcker {
    async fn ack(&self) -> Result<()> {
        self.send(AckOp::Ack(self.tag))
    }
    async fn nack(&self, requeue: bool) -> Result<()> {
        self.send(AckOp::Nack(self.tag, requeue))
    }
    async fn reject(&self, requeue: bool) -> Result<()> {
        self.send(AckOp::Reject(self.tag, requeue))
    }
}

/// Subscribes once: a channel with the prefetch, then `basic.consume`.
async fn subscribe(
    session: &Session,
    queue: &str,
    tag: &str,
    opts: &ConsumeOptions,
) -> Result<(Channel, lapin::Consumer)> {
    let ch = session
        .conn
        .create_channel()
        .await
        .map_err(|e| map_err("channel", &e))?;
    ch.basic_qos(opts.prefetch, BasicQosOptions::default())
        .await
        .map_err(|e| map_err("basic_qos", &e))?;
    let consumer = ch
        .basic_consume(
            ShortString::from(queue),
            ShortString::from(tag),
            BasicConsumeOptions {
                exclusive: opts.exclusive,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(|e| map_err("basic_consume", &e))?;
    Ok((ch, consumer))
}

/// Feeds deliveries into `tx`, resubscribing after connection losses, until
/// the receiver is dropped or the queue is gone.
async fn consume_loop(
    inner: Arc<Inner>,
    queue: String,
    tag: String,
    opts: ConsumeOptions,
    tx: mpsc::Sender<Result<Delivery>>,
    started: oneshot::Sender<Result<()>>,
) {
    let mut started = Some(started);
    loop {
        let deadline = inner.deadline();
        let sub = async {
            let session = inner.session(deadline).await?;
            within(
                deadline,
                "consume",
                subscribe(&session, &queue, &tag, &opts),
            )
            .await
        }
        .await;
        let (ch, mut consumer) = match sub {
            Ok(v) => v,
            Err(e) => {
                if let Some(s) = started.take() {
                    let _ = s.send(Err(e));
                    return;
                }
                if e.is_retryable() {
                    tracing::warn!(backend = "amqp", queue = %queue, error = %e, "resubscribing failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
                let _ = tx.send(Err(e)).await;
                return;
            }
        };
        if let Some(s) = started.take() {
            let _ = s.send(Ok(()));
        } else {
            tracing::info!(backend = "amqp", queue = %queue, "consumer resubscribed");
        }
        let (ack_tx, ack_rx) = mpsc::unbounded_channel();
        tokio::spawn(ack_runner(ch.clone(), ack_rx));
        loop {
            tokio::select! {
                _ = tx.closed() => {
                    // The application dropped the consumer: closing the
                    // channel returns unacked deliveries to the queue.
                    close_after_acks(ch, ack_tx).await;
                    return;
                }
                next = consumer.next() => match next {
                    Some(Ok(d)) => {
                        let message = from_delivery(&d.properties, d.data);
                        let delivery = Delivery::new(
                            message,
                            d.exchange.as_str().to_owned(),
                            d.routing_key.as_str().to_owned(),
                            d.redelivered,
                            Box::new(AmqpAcker { tag: d.delivery_tag, ops: ack_tx.clone() }),
                        );
                        if tx.send(Ok(delivery)).await.is_err() {
                            close_after_acks(ch, ack_tx).await;
                            return;
                        }
                    }
                    Some(Err(e)) => {
                        tracing::warn!(backend = "amqp", queue = %queue, error = %e, "consumer interrupted");
                        break;
                    }
                    None => break,
                }
            }
        }
        // Interrupted: wait a moment so a dead connection is noticed, then
        // resubscribe (the queue itself may be gone: that ends the stream).
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[async_trait]
impl MessageQueue for AmqpQueue {
    fn backend(&self) -> &'static str {
        "amqp"
    }

    async fn declare_exchange(&self, spec: &ExchangeSpec) -> Result<()> {
        spec.validate()?;
        self.inner.run(Op::Exchange(spec.clone())).await.map(|_| ())
    }

    async fn delete_exchange(&self, name: &str) -> Result<()> {
        crate::validate::amqp_name("exchange", name, false)?;
        self.inner
            .run(Op::DeleteExchange(name.to_owned()))
            .await
            .map(|_| ())
    }

    async fn declare_queue(&self, spec: &QueueSpec) -> Result<QueueInfo> {
        spec.validate()?;
        self.inner
            .run(Op::Queue(spec.clone()))
            .await?
            .ok_or_else(|| Error::Internal("queue.declare returned nothing".into()))
    }

    async fn delete_queue(&self, name: &str) -> Result<()> {
        crate::validate::amqp_name("queue", name, false)?;
        self.inner
            .run(Op::DeleteQueue(name.to_owned()))
            .await
            .map(|_| ())
    }

    async fn bind_queue(&self, queue: &str, exchange: &str, routing_key: &str) -> Result<()> {
        crate::validate::amqp_name("queue", queue, false)?;
        crate::validate::amqp_name("exchange", exchange, false)?;
        crate::validate::amqp_short("routing key", routing_key)?;
        self.inner
            .run(Op::Bind {
                queue: queue.to_owned(),
                exchange: exchange.to_owned(),
                key: routing_key.to_owned(),
            })
            .await
            .map(|_| ())
    }

    async fn publish_with(
        &self,
        exchange: &str,
        routing_key: &str,
        message: &Message,
        opts: PublishOptions,
    ) -> Result<()> {
        crate::validate::amqp_name("exchange", exchange, true)?;
        crate::validate::amqp_short("routing key", routing_key)?;
        message.validate()?;
        let props = to_properties(message);
        let deadline = self.inner.deadline();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let session = self.inner.session(deadline).await?;
            let res = async {
                let ch = session.publisher().await?;
                let confirm = ch
                    .basic_publish(
                        ShortString::from(exchange),
                        ShortString::from(routing_key),
                        BasicPublishOptions {
                            mandatory: opts.mandatory,
                            immediate: false,
                        },
                        &message.body,
                        props.clone(),
                    )
                    .await
                    .map_err(|e| map_err("publish", &e))?;
                confirm.await.map_err(|e| map_err("publish confirm", &e))
            };
            let res: Result<Confirmation> = within(deadline, "publish", res).await;
            let err = match res {
                Ok(Confirmation::Ack(None)) => return Ok(()),
                Ok(Confirmation::Ack(Some(_))) | Ok(Confirmation::Nack(Some(_))) => {
                    return Err(Error::NotFound(format!(
                        "message to exchange {exchange:?} with key {routing_key:?} is unroutable"
                    )));
                }
                Ok(Confirmation::Nack(None)) => {
                    // The broker refused this message (a full reject-publish
                    // queue, a failing queue): sending it again unchanged
                    // would only be refused again.
                    return Err(Error::Nacked(format!(
                        "publishing to exchange {exchange:?} with key {routing_key:?}"
                    )));
                }
                Ok(Confirmation::NotRequested) => {
                    return Err(Error::Internal(
                        "publisher confirms are not enabled on the channel".into(),
                    ));
                }
                Err(e) => e,
            };
            if !err.is_retryable() || !before(Instant::now(), deadline) {
                return Err(err);
            }
            if attempt == 1 || attempt.is_multiple_of(50) {
                tracing::warn!(backend = "amqp", generation = session.generation, attempt, error = %err, "publish not confirmed; publishing again");
            }
            // A closed channel on a live connection is replaced at once; a
            // dead connection is noticed by `session()`.
            tokio::time::sleep(Duration::from_millis(if attempt < 3 { 10 } else { 100 })).await;
        }
    }

    async fn consume(&self, queue: &str, opts: &ConsumeOptions) -> Result<Consumer> {
        crate::validate::amqp_name("queue", queue, false)?;
        opts.validate()?;
        let tag = opts
            .tag
            .clone()
            .unwrap_or_else(|| format!("kubepkg-{}", new_id()));
        let (tx, mut rx) = mpsc::channel(opts.prefetch as usize);
        let (started_tx, started_rx) = oneshot::channel();
        tokio::spawn(consume_loop(
            self.inner.clone(),
            queue.to_owned(),
            tag.clone(),
            opts.clone(),
            tx,
            started_tx,
        ));
        started_rx
            .await
            .map_err(|_| Error::Internal("consumer task ended early".into()))??;
        let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed();
        Ok(Consumer::new(tag, stream))
    }
}
