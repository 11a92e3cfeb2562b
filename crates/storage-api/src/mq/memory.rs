//! In-process message broker (feature `memory`) with the same semantics as
//! the AMQP backend: exchanges (direct, fanout, topic) and the default
//! exchange, durable-looking queues, prefetch, ack / nack / reject with
//! requeue, dead-letter exchanges, message TTL and max length (drop-head or
//! reject-publish), mandatory publishes. Clones share one broker. Nothing
//! survives the process.
//!
//! Like RabbitMQ:
//!
//! - a TTL longer than [`MAX_TTL`](super::MAX_TTL) (or too large to add to
//!   the clock) means the message never expires;
//! - a message that is dead-lettered back into a queue it already died in is
//!   dropped when no rejection happened on the way (a dead-letter cycle of
//!   expiries or overflows); a consumer's `reject` / `nack` breaks the cycle,
//!   so such a message is routed again.
//!
//! Dead-lettering runs as a work list, never by recursion, so no topology can
//! exhaust the stack.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;

use super::{
    Acknowledger, ConsumeOptions, Consumer, Delivery, ExchangeKind, ExchangeSpec, Message,
    MessageQueue, Overflow, PublishOptions, QueueInfo, QueueSpec, effective_ttl, new_id,
    topic_matches,
};
use crate::error::{Error, Result};

#[derive(Debug)]
struct Exchange {
    spec: ExchangeSpec,
    bindings: Vec<(String, String)>,
}

/// Why a message died (RabbitMQ's `x-death` reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Death {
    Rejected,
    Expired,
    MaxLen,
}

impl Death {
    fn as_str(self) -> &'static str {
        match self {
            Death::Rejected => "rejected",
            Death::Expired => "expired",
            Death::MaxLen => "maxlen",
        }
    }
}

#[derive(Debug, Clone)]
struct Queued {
    message: Message,
    exchange: String,
    routing_key: String,
    redelivered: bool,
    /// `None`: never expires.
    expires: Option<Instant>,
    /// Where and why this message died before, most recent first, one entry
    /// per (queue, reason) like RabbitMQ's `x-death`.
    deaths: Vec<(String, Death)>,
}

/// A message leaving `queue` for its dead-letter exchange.
struct DeadLetter {
    queue: String,
    item: Queued,
    reason: Death,
}

#[derive(Debug)]
struct Slot {
    id: u64,
    tx: mpsc::UnboundedSender<Result<Delivery>>,
    prefetch: usize,
    outstanding: usize,
}

#[derive(Debug)]
struct Queue {
    spec: QueueSpec,
    ready: VecDeque<Queued>,
    consumers: Vec<Slot>,
    rr: usize,
    unacked: HashMap<u64, (Queued, u64)>,
}

#[derive(Debug, Default)]
struct Broker {
    /// The broker's own shared handle, for the ackers it hands out.
    me: Weak<Mutex<Broker>>,
    exchanges: HashMap<String, Exchange>,
    queues: HashMap<String, Queue>,
    next_tag: u64,
    next_consumer: u64,
    /// Expiry times of messages enqueued by the current operation, for the
    /// timers started once the lock is released.
    timers: Vec<Instant>,
}

/// The in-memory broker.
#[derive(Debug, Clone)]
pub struct MemoryQueue {
    broker: Arc<Mutex<Broker>>,
}

impl Default for MemoryQueue {
    fn default() -> Self {
        MemoryQueue {
            broker: Arc::new_cyclic(|me| {
                Mutex::new(Broker {
                    me: me.clone(),
                    ..Default::default()
                })
            }),
        }
    }
}

type Shared = Arc<Mutex<Broker>>;

/// Locks the broker. A panic while it was held (a bug) does not make every
/// later call fail: the lock is taken over and its poison cleared.
fn lock(b: &Mutex<Broker>) -> MutexGuard<'_, Broker> {
    let guard = b.lock().unwrap_or_else(PoisonError::into_inner);
    b.clear_poison();
    guard
}

impl MemoryQueue {
    /// An empty broker.
    pub fn new() -> Self {
        Self::default()
    }
}

/// When a message enqueued `now` expires: the shorter of the queue's TTL and
/// the message's own; `None` (never) when neither is set (or beyond
/// [`MAX_TTL`](super::MAX_TTL)), or when the sum does not fit in an `Instant`.
fn expiry(
    queue_ttl: Option<Duration>,
    message_ttl: Option<Duration>,
    now: Instant,
) -> Option<Instant> {
    let ttl = match (effective_ttl(queue_ttl), effective_ttl(message_ttl)) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    ttl.and_then(|t| now.checked_add(t))
}

/// Whether dead-lettering into `target` closes a cycle without a rejection:
/// `deaths` (most recent first, the current death included) reaches an
/// earlier death in `target` before any rejection.
fn is_cycle(deaths: &[(String, Death)], target: &str) -> bool {
    for (queue, reason) in deaths {
        if *reason == Death::Rejected {
            return false;
        }
        if queue == target {
            return true;
        }
    }
    false
}

impl Broker {
    fn route(&self, exchange: &str, routing_key: &str) -> Result<Vec<String>> {
        if exchange.is_empty() {
            return Ok(if self.queues.contains_key(routing_key) {
                vec![routing_key.to_owned()]
            } else {
                Vec::new()
            });
        }
        let ex = self
            .exchanges
            .get(exchange)
            .ok_or_else(|| Error::NotFound(format!("exchange {exchange:?} does not exist")))?;
        let mut out: Vec<String> = ex
            .bindings
            .iter()
            .filter(|(_, key)| match ex.spec.kind {
                ExchangeKind::Direct => key == routing_key,
                ExchangeKind::Fanout => true,
                ExchangeKind::Topic => topic_matches(key, routing_key),
            })
            .map(|(q, _)| q.clone())
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Appends a message to one queue, applying its TTL and max length.
    /// Messages pushed out of a full drop-head queue go to `work`; returns
    /// `false` when a full reject-publish queue refused the message.
    fn push(
        &mut self,
        queue: &str,
        mut item: Queued,
        now: Instant,
        work: &mut VecDeque<DeadLetter>,
    ) -> bool {
        let Some(q) = self.queues.get_mut(queue) else {
            return true;
        };
        if let Some(max) = q.spec.max_length
            && q.spec.overflow == Overflow::RejectPublish
            && q.ready.len() as u64 >= max
        {
            return false;
        }
        item.expires = expiry(q.spec.message_ttl, item.message.expiration, now);
        if let Some(at) = item.expires {
            self.timers.push(at);
        }
        q.ready.push_back(item);
        if let Some(max) = q.spec.max_length {
            while q.ready.len() as u64 > max {
                let Some(old) = q.ready.pop_front() else {
                    break;
                };
                work.push_back(DeadLetter {
                    queue: queue.to_owned(),
                    item: old,
                    reason: Death::MaxLen,
                });
            }
        }
        true
    }

    /// Puts a published message into the queues it routes to. Returns them,
    /// and whether every one accepted it.
    fn enqueue(
        &mut self,
        exchange: &str,
        routing_key: &str,
        message: &Message,
    ) -> Result<(Vec<String>, bool)> {
        let targets = self.route(exchange, routing_key)?;
        let now = Instant::now();
        let mut work = VecDeque::new();
        let mut accepted = true;
        for q in &targets {
            let item = Queued {
                message: message.clone(),
                exchange: exchange.to_owned(),
                routing_key: routing_key.to_owned(),
                redelivered: false,
                expires: None,
                deaths: Vec::new(),
            };
            accepted &= self.push(q, item, now, &mut work);
        }
        self.dead_letter(work);
        Ok((targets, accepted))
    }

    /// Republishes dead messages to their queues' dead-letter exchanges
    /// (and what that pushes out of full queues, and so on), dropping those
    /// caught in a cycle.
    fn dead_letter(&mut self, mut work: VecDeque<DeadLetter>) {
        let now = Instant::now();
        while let Some(DeadLetter {
            queue,
            item,
            reason,
        }) = work.pop_front()
        {
            let Some(spec) = self.queues.get(&queue).map(|q| &q.spec) else {
                continue;
            };
            let Some(dlx) = spec.dead_letter_exchange.clone() else {
                continue;
            };
            let key = spec
                .dead_letter_routing_key
                .clone()
                .unwrap_or_else(|| item.routing_key.clone());
            let mut msg = item.message;
            msg.expiration = None;
            msg.headers
                .entry("x-first-death-reason".into())
                .or_insert_with(|| reason.as_str().to_owned());
            msg.headers
                .entry("x-first-death-queue".into())
                .or_insert_with(|| queue.clone());
            msg.headers
                .entry("x-first-death-exchange".into())
                .or_insert_with(|| item.exchange.clone());
            let mut deaths = item.deaths;
            deaths.retain(|(q, r)| !(q == &queue && *r == reason));
            deaths.insert(0, (queue.clone(), reason));
            let targets = match self.route(&dlx, &key) {
                Ok(t) => t,
                Err(e) => {
                    tracing::debug!(queue = %queue, error = %e, "dead-lettering dropped a message");
                    continue;
                }
            };
            for target in targets {
                if is_cycle(&deaths, &target) {
                    tracing::debug!(queue = %queue, target = %target, "dropped a message caught in a dead-letter cycle");
                    continue;
                }
                let next = Queued {
                    message: msg.clone(),
                    exchange: dlx.clone(),
                    routing_key: key.clone(),
                    redelivered: false,
                    expires: None,
                    deaths: deaths.clone(),
                };
                if !self.push(&target, next, now, &mut work) {
                    tracing::debug!(target = %target, "a full queue refused a dead-lettered message");
                }
            }
        }
    }

    /// Removes the expired ready messages of every queue and dead-letters
    /// them, until none is left (a dead-lettered message may land already
    /// expired in a queue with a zero TTL).
    fn expire_all(&mut self) {
        loop {
            let now = Instant::now();
            let mut work = VecDeque::new();
            for (name, q) in &mut self.queues {
                // Like RabbitMQ, only messages at the head expire.
                while q
                    .ready
                    .front()
                    .is_some_and(|m| m.expires.is_some_and(|e| e <= now))
                {
                    if let Some(item) = q.ready.pop_front() {
                        work.push_back(DeadLetter {
                            queue: name.clone(),
                            item,
                            reason: Death::Expired,
                        });
                    }
                }
            }
            if work.is_empty() {
                return;
            }
            self.dead_letter(work);
        }
    }

    /// Hands ready messages of every queue to consumers with room.
    fn dispatch_all(&mut self) {
        let names: Vec<String> = self.queues.keys().cloned().collect();
        for n in names {
            self.dispatch(&n);
        }
    }

    fn dispatch(&mut self, queue: &str) {
        loop {
            let Some(q) = self.queues.get_mut(queue) else {
                return;
            };
            if q.ready.is_empty() || q.consumers.is_empty() {
                return;
            }
            let n = q.consumers.len();
            let Some(idx) = (0..n)
                .map(|i| (q.rr + i) % n)
                .find(|&i| q.consumers[i].outstanding < q.consumers[i].prefetch)
            else {
                return;
            };
            q.rr = (idx + 1) % n;
            let Some(item) = q.ready.pop_front() else {
                return;
            };
            self.next_tag += 1;
            let tag = self.next_tag;
            let Some(q) = self.queues.get_mut(queue) else {
                return;
            };
            let slot = &mut q.consumers[idx];
            slot.outstanding += 1;
            let consumer_id = slot.id;
            let acker = Box::new(MemAcker {
                broker: self.me.clone(),
                queue: queue.to_owned(),
                tag,
            });
            let d = Delivery::new(
                item.message.clone(),
                item.exchange.clone(),
                item.routing_key.clone(),
                item.redelivered,
                acker,
            );
            let sent = slot.tx.send(Ok(d)).is_ok();
            q.unacked.insert(tag, (item, consumer_id));
            if !sent {
                // Consumer went away: requeue its messages.
                self.remove_consumer(queue, consumer_id);
            }
        }
    }

    fn remove_consumer(&mut self, queue: &str, consumer_id: u64) {
        let Some(q) = self.queues.get_mut(queue) else {
            return;
        };
        q.consumers.retain(|c| c.id != consumer_id);
        let mut back: Vec<(u64, Queued)> = q
            .unacked
            .iter()
            .filter(|(_, (_, c))| *c == consumer_id)
            .map(|(t, (m, _))| (*t, m.clone()))
            .collect();
        back.sort_by_key(|(t, _)| std::cmp::Reverse(*t));
        for (t, mut m) in back {
            q.unacked.remove(&t);
            m.redelivered = true;
            q.ready.push_front(m);
        }
    }

    fn settle(&mut self, queue: &str, tag: u64, requeue: Option<bool>) -> Result<()> {
        let q = self.queues.get_mut(queue).ok_or_else(|| {
            Error::Unavailable(format!("queue {queue:?} was deleted; the delivery is gone"))
        })?;
        let (item, consumer_id) = q.unacked.remove(&tag).ok_or_else(|| {
            Error::Unavailable(
                "the consumer was closed; the delivery was requeued and will be redelivered".into(),
            )
        })?;
        if let Some(c) = q.consumers.iter_mut().find(|c| c.id == consumer_id) {
            c.outstanding = c.outstanding.saturating_sub(1);
        }
        match requeue {
            None => {}
            Some(true) => {
                let mut item = item;
                item.redelivered = true;
                q.ready.push_front(item);
            }
            Some(false) => self.dead_letter(VecDeque::from([DeadLetter {
                queue: queue.to_owned(),
                item,
                reason: Death::Rejected,
            }])),
        }
        Ok(())
    }
}

/// Runs `f` with the broker locked, then expires, dead-letters and
/// dispatches; starts expiry timers once the lock is released.
fn with_broker<T>(shared: &Shared, f: impl FnOnce(&mut Broker) -> Result<T>) -> Result<T> {
    let (out, mut timers) = {
        let mut guard = lock(shared);
        let out = f(&mut guard);
        guard.expire_all();
        guard.dispatch_all();
        (out, std::mem::take(&mut guard.timers))
    };
    timers.sort();
    timers.dedup();
    for at in timers {
        schedule_expiry(shared, at);
    }
    out
}

struct MemAcker {
    broker: Weak<Mutex<Broker>>,
    queue: String,
    tag: u64,
}

impl MemAcker {
    fn settle(&self, requeue: Option<bool>) -> Result<()> {
        let shared = self
            .broker
            .upgrade()
            .ok_or_else(|| Error::Unavailable("the memory broker was dropped".into()))?;
        with_broker(&shared, |b| b.settle(&self.queue, self.tag, requeue))
    }
}

#[async_trait]
impl Acknowledger for MemAcker {
    async fn ack(&self) -> Result<()> {
        self.settle(None)
    }
    async fn nack(&self, requeue: bool) -> Result<()> {
        self.settle(Some(requeue))
    }
    async fn reject(&self, requeue: bool) -> Result<()> {
        self.settle(Some(requeue))
    }
}

/// Removes its consumer (requeueing unacked deliveries) when dropped.
struct MemConsumerStream {
    rx: mpsc::UnboundedReceiver<Result<Delivery>>,
    broker: Weak<Mutex<Broker>>,
    queue: String,
    id: u64,
}

impl Stream for MemConsumerStream {
    type Item = Result<Delivery>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for MemConsumerStream {
    fn drop(&mut self) {
        if let Some(shared) = self.broker.upgrade() {
            let _ = with_broker(&shared, |b| {
                b.remove_consumer(&self.queue, self.id);
                Ok(())
            });
        }
    }
}

/// Expires (and dead-letters) what is due at `at`. Without a tokio runtime,
/// expiry happens at the broker's next operation instead.
fn schedule_expiry(shared: &Shared, at: Instant) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let weak = Arc::downgrade(shared);
    let at = at.checked_add(Duration::from_millis(1)).unwrap_or(at);
    handle.spawn(async move {
        tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
        if let Some(shared) = weak.upgrade() {
            let _ = with_broker(&shared, |_| Ok(()));
        }
    });
}

#[async_trait]
impl MessageQueue for MemoryQueue {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn declare_exchange(&self, spec: &ExchangeSpec) -> Result<()> {
        spec.validate()?;
        with_broker(&self.broker, |b| {
            if let Some(ex) = b.exchanges.get(&spec.name) {
                if &ex.spec != spec {
                    return Err(Error::Conflict(format!(
                        "exchange {:?} exists with different arguments",
                        spec.name
                    )));
                }
                return Ok(());
            }
            b.exchanges.insert(
                spec.name.clone(),
                Exchange {
                    spec: spec.clone(),
                    bindings: Vec::new(),
                },
            );
            Ok(())
        })
    }

    async fn delete_exchange(&self, name: &str) -> Result<()> {
        crate::validate::amqp_name("exchange", name, false)?;
        with_broker(&self.broker, |b| {
            b.exchanges.remove(name);
            Ok(())
        })
    }

    async fn declare_queue(&self, spec: &QueueSpec) -> Result<QueueInfo> {
        spec.validate()?;
        with_broker(&self.broker, |b| {
            let name = if spec.name.is_empty() {
                format!("amq.gen-{}", new_id())
            } else {
                spec.name.clone()
            };
            let mut want = spec.clone();
            want.name = name.clone();
            if let Some(q) = b.queues.get(&name) {
                if q.spec != want {
                    return Err(Error::Conflict(format!(
                        "queue {name:?} exists with different arguments (PRECONDITION_FAILED)"
                    )));
                }
                return Ok(QueueInfo {
                    name,
                    messages: q.ready.len() as u32,
                    consumers: q.consumers.len() as u32,
                });
            }
            b.queues.insert(
                name.clone(),
                Queue {
                    spec: want,
                    ready: VecDeque::new(),
                    consumers: Vec::new(),
                    rr: 0,
                    unacked: HashMap::new(),
                },
            );
            Ok(QueueInfo {
                name,
                messages: 0,
                consumers: 0,
            })
        })
    }

    async fn delete_queue(&self, name: &str) -> Result<()> {
        crate::validate::amqp_name("queue", name, false)?;
        with_broker(&self.broker, |b| {
            b.queues.remove(name);
            for ex in b.exchanges.values_mut() {
                ex.bindings.retain(|(q, _)| q != name);
            }
            Ok(())
        })
    }

    async fn bind_queue(&self, queue: &str, exchange: &str, routing_key: &str) -> Result<()> {
        crate::validate::amqp_name("queue", queue, false)?;
        crate::validate::amqp_name("exchange", exchange, false)?;
        crate::validate::amqp_short("routing key", routing_key)?;
        with_broker(&self.broker, |b| {
            if !b.queues.contains_key(queue) {
                return Err(Error::NotFound(format!("queue {queue:?} does not exist")));
            }
            let ex = b
                .exchanges
                .get_mut(exchange)
                .ok_or_else(|| Error::NotFound(format!("exchange {exchange:?} does not exist")))?;
            let binding = (queue.to_owned(), routing_key.to_owned());
            if !ex.bindings.contains(&binding) {
                ex.bindings.push(binding);
            }
            Ok(())
        })
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
        with_broker(&self.broker, |b| {
            if opts.mandatory && b.route(exchange, routing_key)?.is_empty() {
                return Err(Error::NotFound(format!(
                    "message to {exchange:?} / {routing_key:?} is unroutable"
                )));
            }
            let (_, accepted) = b.enqueue(exchange, routing_key, message)?;
            if accepted {
                Ok(())
            } else {
                Err(Error::Nacked(format!(
                    "a full queue bound to {exchange:?} with key {routing_key:?} rejects new messages"
                )))
            }
        })
    }

    async fn consume(&self, queue: &str, opts: &ConsumeOptions) -> Result<Consumer> {
        crate::validate::amqp_name("queue", queue, false)?;
        opts.validate()?;
        let (tx, rx) = mpsc::unbounded_channel();
        let id = with_broker(&self.broker, |b| {
            b.next_consumer += 1;
            let id = b.next_consumer;
            let q = b
                .queues
                .get_mut(queue)
                .ok_or_else(|| Error::NotFound(format!("queue {queue:?} does not exist")))?;
            if opts.exclusive && !q.consumers.is_empty() {
                return Err(Error::Conflict(format!(
                    "queue {queue:?} already has consumers"
                )));
            }
            q.consumers.push(Slot {
                id,
                tx,
                prefetch: opts.prefetch as usize,
                outstanding: 0,
            });
            Ok(id)
        })?;
        let tag = opts
            .tag
            .clone()
            .unwrap_or_else(|| format!("ctag-{}", new_id()));
        let stream = MemConsumerStream {
            rx,
            broker: Arc::downgrade(&self.broker),
            queue: queue.to_owned(),
            id,
        };
        Ok(Consumer::new(tag, stream.boxed()))
    }
}
