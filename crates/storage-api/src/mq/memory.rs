//! In-process message broker (feature `memory`) with the same semantics as
//! the AMQP backend: exchanges (direct, fanout, topic) and the default
//! exchange, durable-looking queues, prefetch, ack / nack / reject with
//! requeue, dead-letter exchanges, message TTL and max length, mandatory
//! publishes. Clones share one broker. Nothing survives the process.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;

use super::{
    Acknowledger, ConsumeOptions, Consumer, Delivery, ExchangeKind, ExchangeSpec, Message,
    MessageQueue, PublishOptions, QueueInfo, QueueSpec, new_id, topic_matches,
};
use crate::error::{Error, Result};

#[derive(Debug)]
struct Exchange {
    spec: ExchangeSpec,
    bindings: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
struct Queued {
    message: Message,
    exchange: String,
    routing_key: String,
    redelivered: bool,
    expires: Option<Instant>,
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

fn lock(b: &Mutex<Broker>) -> Result<MutexGuard<'_, Broker>> {
    b.lock()
        .map_err(|_| Error::Internal("memory broker lock poisoned".into()))
}

impl MemoryQueue {
    /// An empty broker.
    pub fn new() -> Self {
        Self::default()
    }
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

    /// Puts a message into the queues it routes to; returns them.
    fn enqueue(
        &mut self,
        exchange: &str,
        routing_key: &str,
        message: &Message,
    ) -> Result<Vec<String>> {
        let targets = self.route(exchange, routing_key)?;
        let now = Instant::now();
        for q in &targets {
            let mut overflow = Vec::new();
            if let Some(queue) = self.queues.get_mut(q) {
                let ttl = match (queue.spec.message_ttl, message.expiration) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                queue.ready.push_back(Queued {
                    message: message.clone(),
                    exchange: exchange.to_owned(),
                    routing_key: routing_key.to_owned(),
                    redelivered: false,
                    expires: ttl.map(|t| now + t),
                });
                if let Some(max) = queue.spec.max_length {
                    while queue.ready.len() as u64 > max {
                        if let Some(old) = queue.ready.pop_front() {
                            overflow.push(old);
                        }
                    }
                }
            }
            for old in overflow {
                self.dead_letter(q, old, "maxlen");
            }
        }
        Ok(targets)
    }

    /// Republishes a message to its queue's dead-letter exchange, if any.
    fn dead_letter(&mut self, queue: &str, item: Queued, reason: &str) {
        let Some(spec) = self.queues.get(queue).map(|q| q.spec.clone()) else {
            return;
        };
        let Some(dlx) = spec.dead_letter_exchange.clone() else {
            return;
        };
        let key = spec
            .dead_letter_routing_key
            .clone()
            .unwrap_or_else(|| item.routing_key.clone());
        let mut msg = item.message;
        msg.expiration = None;
        msg.headers
            .entry("x-first-death-reason".into())
            .or_insert_with(|| reason.to_owned());
        msg.headers
            .entry("x-first-death-queue".into())
            .or_insert_with(|| queue.to_owned());
        msg.headers
            .entry("x-first-death-exchange".into())
            .or_insert_with(|| item.exchange.clone());
        match self.enqueue(&dlx, &key, &msg) {
            Ok(targets) => {
                for t in targets {
                    self.pending_dispatch(&t);
                }
            }
            Err(e) => tracing::debug!(queue, error = %e, "dead-lettering dropped a message"),
        }
    }

    fn pending_dispatch(&mut self, queue: &str) {
        // Dispatch is cheap and idempotent; run it right away.
        self.dispatch_inner(queue);
    }

    fn expire(&mut self, queue: &str) {
        let now = Instant::now();
        let mut expired = Vec::new();
        if let Some(q) = self.queues.get_mut(queue) {
            q.ready.retain(|m| {
                if m.expires.is_some_and(|e| e <= now) {
                    expired.push(m.clone());
                    false
                } else {
                    true
                }
            });
        }
        for m in expired {
            self.dead_letter(queue, m, "expired");
        }
    }

    fn dispatch_inner(&mut self, queue: &str) {
        self.expire(queue);
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
            q.unacked.insert(tag, (item.clone(), consumer_id));
            let delivery = (
                item.message,
                item.exchange,
                item.routing_key,
                item.redelivered,
            );
            let acker = Box::new(MemAcker {
                broker: self.me.clone(),
                queue: queue.to_owned(),
                tag,
            });
            let d = Delivery::new(delivery.0, delivery.1, delivery.2, delivery.3, acker);
            if slot.tx.send(Ok(d)).is_err() {
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
            Some(false) => self.dead_letter(queue, item, "rejected"),
        }
        Ok(())
    }
}

/// Runs `f` with the broker locked, then dispatches every queue.
fn with_broker<T>(shared: &Shared, f: impl FnOnce(&mut Broker) -> Result<T>) -> Result<T> {
    let mut guard = lock(shared)?;
    let out = f(&mut guard);
    let names: Vec<String> = guard.queues.keys().cloned().collect();
    for n in names {
        guard.dispatch_inner(&n);
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

fn schedule_expiry(shared: &Shared, queue: &str, after: Option<Duration>) {
    let Some(after) = after else { return };
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let weak = Arc::downgrade(shared);
    let queue = queue.to_owned();
    handle.spawn(async move {
        tokio::time::sleep(after + Duration::from_millis(1)).await;
        if let Some(shared) = weak.upgrade() {
            let _ = with_broker(&shared, |b| {
                b.expire(&queue);
                Ok(())
            });
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
        let targets = with_broker(&self.broker, |b| {
            if opts.mandatory && b.route(exchange, routing_key)?.is_empty() {
                return Err(Error::NotFound(format!(
                    "message to {exchange:?} / {routing_key:?} is unroutable"
                )));
            }
            let targets = b.enqueue(exchange, routing_key, message)?;
            Ok(targets
                .into_iter()
                .map(|t| {
                    let ttl = b.queues.get(&t).and_then(|q| q.spec.message_ttl);
                    let ttl = match (ttl, message.expiration) {
                        (Some(a), Some(c)) => Some(a.min(c)),
                        (a, c) => a.or(c),
                    };
                    (t, ttl)
                })
                .collect::<Vec<_>>())
        })?;
        for (t, ttl) in targets {
            schedule_expiry(&self.broker, &t, ttl);
        }
        Ok(())
    }

    async fn consume(&self, queue: &str, opts: &ConsumeOptions) -> Result<Consumer> {
        crate::validate::amqp_name("queue", queue, false)?;
        if opts.prefetch == 0 {
            return Err(Error::Invalid("prefetch must be at least 1".into()));
        }
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
