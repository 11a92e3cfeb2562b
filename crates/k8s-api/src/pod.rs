//! Pods: list (selectors, continue-token pagination as a stream — see
//! [`Resources::stream`]), get, delete with a grace period, logs (container,
//! timestamps, tail lines, since, previous, limit bytes), readiness waits,
//! and the pod's events.
//!
//! Logs come three ways:
//!
//! | call | follows | memory |
//! |---|---|---|
//! | [`Resources::<Pod>::logs`] | no | the whole answer, as one `String` |
//! | [`Resources::<Pod>::log_lines`] | no | one line at a time (a stream) |
//! | [`Resources::<Pod>::log_stream`] | yes | one line at a time (a stream) |
//!
//! A container's log can be large and `logs` buffers all of it: bound it
//! with [`LogOptions::limit_bytes`] or [`LogOptions::tail_lines`], or read
//! it with `log_lines`.

use crate::events::{EventApi, EventRecord, ObjectRef};
use crate::resource::{Resources, check_name};
use crate::{Client, Error, Result};
use futures::stream::{BoxStream, StreamExt as _};
use futures::{AsyncBufReadExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::LogParams;
use std::time::Duration;

/// Options of a log read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// Container (required when the pod has more than one).
    pub container: Option<String>,
    /// Prefix each line with its RFC 3339 timestamp.
    pub timestamps: bool,
    /// Only the last N lines.
    pub tail_lines: Option<i64>,
    /// Only lines newer than this many seconds.
    pub since_seconds: Option<i64>,
    /// Only lines newer than this time (ignored when `since_seconds` is set).
    pub since_time: Option<Timestamp>,
    /// The previous (terminated) instance of the container.
    pub previous: bool,
    /// Stop after this many bytes.
    pub limit_bytes: Option<i64>,
}

impl LogOptions {
    /// Logs of `container`.
    pub fn container(name: impl Into<String>) -> Self {
        LogOptions {
            container: Some(name.into()),
            ..Default::default()
        }
    }

    fn validate(&self) -> Result<()> {
        for (what, v) in [
            ("tail_lines", self.tail_lines),
            ("since_seconds", self.since_seconds),
            ("limit_bytes", self.limit_bytes),
        ] {
            if let Some(v) = v
                && v < 0
            {
                return Err(Error::invalid(format!(
                    "{what} must not be negative, got {v}"
                )));
            }
        }
        if self.since_seconds == Some(0) || self.limit_bytes == Some(0) {
            return Err(Error::invalid(
                "since_seconds and limit_bytes must be positive when set",
            ));
        }
        Ok(())
    }

    fn to_params(&self, follow: bool) -> LogParams {
        LogParams {
            container: self.container.clone(),
            follow,
            limit_bytes: self.limit_bytes,
            pretty: false,
            previous: self.previous,
            since_seconds: self.since_seconds,
            since_time: if self.since_seconds.is_some() {
                None
            } else {
                self.since_time
            },
            tail_lines: self.tail_lines,
            timestamps: self.timestamps,
        }
    }
}

impl Client {
    /// Pods of `namespace`.
    pub fn pods(&self, namespace: &str) -> Resources<Pod> {
        self.namespaced(namespace)
    }
}

/// Whether a pod is Running with condition Ready=True.
pub fn is_ready(p: &Pod) -> bool {
    let Some(st) = &p.status else { return false };
    st.phase.as_deref() == Some("Running")
        && st
            .conditions
            .as_ref()
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The pod's phase (`Pending`, `Running`…; `Unknown` when absent).
pub fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Unknown")
}

impl Resources<Pod> {
    /// The log as it is now (bounded by the options), as one `String`.
    ///
    /// The whole answer is buffered in memory, and nothing bounds it by
    /// default: a chatty container's log can be hundreds of megabytes. Set
    /// [`LogOptions::limit_bytes`] (or [`LogOptions::tail_lines`]) to cap
    /// it, or read it line by line with [`Self::log_lines`] (or follow it
    /// with [`Self::log_stream`]).
    pub async fn logs(&self, name: &str, opts: &LogOptions) -> Result<String> {
        check_name(name)?;
        opts.validate()?;
        let lp = opts.to_params(false);
        self.client
            .run("logs", &self.target(Some(name)), self.api.logs(name, &lp))
            .await
    }

    /// The log as it is now (bounded by the options), streamed: one line
    /// at a time (without its newline) as it arrives, ending at the end of
    /// the log. Memory is bounded by the longest line, not the log's size.
    /// A last line without a newline is delivered too.
    ///
    /// Only the response headers are subject to the client's request
    /// timeout, so a long log is not cut off by it.
    pub async fn log_lines(
        &self,
        name: &str,
        opts: &LogOptions,
    ) -> Result<BoxStream<'static, Result<String>>> {
        self.lines(name, opts, false).await
    }

    /// Follows the log: a stream of lines (without the newline) that ends
    /// when the container stops or the stream is dropped.
    pub async fn log_stream(
        &self,
        name: &str,
        opts: &LogOptions,
    ) -> Result<BoxStream<'static, Result<String>>> {
        self.lines(name, opts, true).await
    }

    async fn lines(
        &self,
        name: &str,
        opts: &LogOptions,
        follow: bool,
    ) -> Result<BoxStream<'static, Result<String>>> {
        check_name(name)?;
        opts.validate()?;
        let lp = opts.to_params(follow);
        let target = self.target(Some(name));
        let operation = if follow { "logs.follow" } else { "logs.stream" };
        let reader = self
            .client
            .run(operation, &target, self.api.log_stream(name, &lp))
            .await?;
        Ok(reader
            .lines()
            .map_err(move |e| Error::Unavailable(format!("log stream of {target} broke: {e}")))
            .boxed())
    }

    /// Waits until the pod is Running and Ready.
    pub async fn wait_ready(&self, name: &str, timeout: Duration) -> Result<Pod> {
        self.wait_for(name, timeout, |p| is_ready(p).then(|| p.clone()))
            .await
    }

    /// Events about the pod, newest first.
    pub async fn events(&self, name: &str) -> Result<Vec<EventRecord>> {
        check_name(name)?;
        let ns = self
            .namespace
            .clone()
            .ok_or_else(|| Error::invalid("pod events need a namespaced handle"))?;
        self.client
            .events_for(
                &ObjectRef {
                    namespace: ns,
                    kind: "Pod".into(),
                    name: name.into(),
                    uid: None,
                },
                EventApi::CoreV1,
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_options_validate_and_map() {
        let o = LogOptions {
            container: Some("app".into()),
            timestamps: true,
            tail_lines: Some(10),
            since_seconds: Some(60),
            since_time: Some("2024-01-01T00:00:00Z".parse().unwrap()),
            previous: true,
            limit_bytes: Some(1024),
        };
        assert!(o.validate().is_ok());
        let p = o.to_params(true);
        assert!(p.follow && p.timestamps && p.previous);
        assert_eq!(p.tail_lines, Some(10));
        assert_eq!(p.since_time, None, "since_seconds wins");
        assert!(
            LogOptions {
                tail_lines: Some(-1),
                ..Default::default()
            }
            .validate()
            .is_err()
        );
        assert!(
            LogOptions {
                limit_bytes: Some(0),
                ..Default::default()
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn readiness_needs_running_and_ready() {
        let mut p: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]}
        }))
        .unwrap();
        assert!(!is_ready(&p));
        assert_eq!(phase(&p), "Running");
        if let Some(st) = p.status.as_mut()
            && let Some(cs) = st.conditions.as_mut()
        {
            cs[0].status = "True".into();
        }
        assert!(is_ready(&p));
    }
}
