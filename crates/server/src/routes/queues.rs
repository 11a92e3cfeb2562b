//! Message queues: declare a queue, publish a message, receive one message
//! and acknowledge it.

use crate::error::{Error, Result};
use crate::extract::JsonBody;
use crate::state::AppState;
use crate::views::{Envelope, ErrorBody};
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use futures::StreamExt;
use kubepkg_storage_api::mq::{ConsumeOptions, Message, MessageQueue, QueueSpec};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use utoipa::ToSchema;

fn queue(state: &AppState, name: &str) -> Result<Arc<dyn MessageQueue>> {
    if !state.queues.iter().any(|s| s == name) {
        return Err(Error::NotFound(format!(
            "message queue {name:?} (configured: {})",
            state.queues.join(", ")
        )));
    }
    Ok(kubepkg_storage_api::global::named_queue(name)?)
}

/// A queue to declare.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeclareBody {
    /// Queue name (at most 255 bytes).
    pub name: String,
    /// Survives a broker restart (default true).
    #[serde(default = "yes")]
    pub durable: bool,
}

fn yes() -> bool {
    true
}

/// A declared queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueView {
    /// Name.
    pub name: String,
    /// Messages ready.
    pub messages: u32,
    /// Consumers.
    pub consumers: u32,
}

/// Declares a queue (idempotent).
#[utoipa::path(post, path = "/message-queues/{mq}/queues", tag = "queues",
    params(("mq" = String, Path, description = "Configured queue connection")), request_body = DeclareBody,
    responses((status = 200, description = "Declared", body = Envelope<QueueView>),
        (status = 404, description = "Unknown connection", body = ErrorBody)))]
pub async fn declare(
    State(state): State<AppState>,
    Path(mq): Path<String>,
    JsonBody(body): JsonBody<DeclareBody>,
) -> Result<impl IntoResponse> {
    let q = queue(&state, &mq)?;
    let mut spec = QueueSpec::new(body.name);
    spec.durable = body.durable;
    let info = q.declare_queue(&spec).await?;
    Ok(super::ok(QueueView {
        name: info.name,
        messages: info.messages,
        consumers: info.consumers,
    }))
}

/// A message to publish.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishBody {
    /// Exchange (`""`: the default exchange, routing key = queue name).
    #[serde(default)]
    pub exchange: String,
    /// Routing key.
    pub routing_key: String,
    /// The body, as text.
    pub body: String,
    /// Content type.
    #[serde(default)]
    pub content_type: Option<String>,
    /// Message id.
    #[serde(default)]
    pub message_id: Option<String>,
    /// Headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// Publishes a message and waits for the broker's confirm.
#[utoipa::path(post, path = "/message-queues/{mq}/publish", tag = "queues",
    params(("mq" = String, Path)), request_body = PublishBody,
    responses((status = 200, description = "Confirmed", body = Envelope<String>),
        (status = 404, description = "Unknown connection or exchange", body = ErrorBody),
        (status = 422, description = "Bad routing key, header or id", body = ErrorBody)))]
pub async fn publish(
    State(state): State<AppState>,
    Path(mq): Path<String>,
    JsonBody(body): JsonBody<PublishBody>,
) -> Result<impl IntoResponse> {
    let q = queue(&state, &mq)?;
    let mut m = Message::new(body.body.into_bytes());
    m.content_type = body.content_type;
    m.message_id = body.message_id;
    m.headers = body.headers;
    q.publish(&body.exchange, &body.routing_key, &m).await?;
    Ok(super::ok("confirmed"))
}

/// A received message.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReceivedView {
    /// The body (lossy UTF-8).
    pub body: String,
    /// Content type.
    pub content_type: Option<String>,
    /// Message id.
    pub message_id: Option<String>,
    /// Headers.
    pub headers: BTreeMap<String, String>,
    /// Exchange it was published to.
    pub exchange: String,
    /// Its routing key.
    pub routing_key: String,
    /// It was delivered before.
    pub redelivered: bool,
}

/// How long to wait.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ReceiveBody {
    /// Seconds to wait for a message (0–30, default 5).
    pub wait_secs: Option<u64>,
}

/// Receives one message and acknowledges it; 404 when none arrives in time.
#[utoipa::path(post, path = "/message-queues/{mq}/queues/{queue}/receive", tag = "queues",
    params(("mq" = String, Path), ("queue" = String, Path)), request_body = ReceiveBody,
    responses((status = 200, description = "One message, acknowledged", body = Envelope<ReceivedView>),
        (status = 404, description = "Unknown queue, or no message in time", body = ErrorBody)))]
pub async fn receive(
    State(state): State<AppState>,
    Path((mq, name)): Path<(String, String)>,
    crate::extract::JsonOrEmpty(body): crate::extract::JsonOrEmpty<ReceiveBody>,
) -> Result<impl IntoResponse> {
    let wait = body.wait_secs.unwrap_or(5);
    if wait > 30 {
        return Err(Error::Invalid("wait_secs must be at most 30".into()));
    }
    let q = queue(&state, &mq)?;
    let mut consumer = q.consume(&name, &ConsumeOptions::prefetch(1)).await?;
    let next = tokio::time::timeout(Duration::from_secs(wait), consumer.next()).await;
    let delivery = match next {
        Ok(Some(d)) => d?,
        Ok(None) => return Err(Error::NotFound(format!("queue {name:?} closed"))),
        Err(_) => {
            return Err(Error::NotFound(format!(
                "no message arrived on {name:?} within {wait} s"
            )));
        }
    };
    let view = ReceivedView {
        body: String::from_utf8_lossy(&delivery.message.body).into_owned(),
        content_type: delivery.message.content_type.clone(),
        message_id: delivery.message.message_id.clone(),
        headers: delivery.message.headers.clone(),
        exchange: delivery.exchange.clone(),
        routing_key: delivery.routing_key.clone(),
        redelivered: delivery.redelivered,
    };
    delivery.ack().await?;
    Ok(super::ok(view))
}
