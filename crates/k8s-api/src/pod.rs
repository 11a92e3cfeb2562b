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
//!
//! A log is bytes, whatever the container wrote: bytes that are not UTF-8
//! are decoded lossily (each invalid sequence becomes U+FFFD `�`), never
//! an error. The line streams also bound memory for a log without
//! newlines: a line longer than [`LogOptions::max_line_bytes`] (default
//! [`DEFAULT_MAX_LINE_BYTES`], 64 KiB) is delivered as several items of at
//! most that many bytes each, split at a character boundary where the
//! text allows. A line ending `\r\n` loses both characters, as with `\n`.

use crate::events::{EventApi, EventRecord, ObjectRef};
use crate::resource::{Resources, check_name};
use crate::{Client, Error, Result};
use futures::io::AsyncBufRead;
use futures::stream::{BoxStream, StreamExt as _};
use futures::{AsyncBufReadExt as _, AsyncReadExt as _};
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
    /// The longest item [`Resources::<Pod>::log_lines`] and
    /// [`Resources::<Pod>::log_stream`] deliver, in bytes (default
    /// [`DEFAULT_MAX_LINE_BYTES`]); a longer line comes as several items.
    /// Must be at least 4 (one character of UTF-8).
    pub max_line_bytes: Option<usize>,
}

/// The default of [`LogOptions::max_line_bytes`]: 64 KiB.
pub const DEFAULT_MAX_LINE_BYTES: usize = 64 * 1024;

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
        if let Some(max) = self.max_line_bytes
            && max < 4
        {
            return Err(Error::invalid(format!(
                "max_line_bytes must be at least 4 (one UTF-8 character), got {max}"
            )));
        }
        Ok(())
    }

    fn max_line(&self) -> usize {
        self.max_line_bytes.unwrap_or(DEFAULT_MAX_LINE_BYTES)
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
    ///
    /// Bytes that are not UTF-8 are decoded lossily (see the module docs).
    pub async fn logs(&self, name: &str, opts: &LogOptions) -> Result<String> {
        check_name(name)?;
        opts.validate()?;
        let lp = opts.to_params(false);
        let target = self.target(Some(name));
        let mut reader = self
            .client
            .run("logs", &target, self.api.log_stream(name, &lp))
            .await?;
        let mut bytes = Vec::new();
        reader
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| Error::Unavailable(format!("reading the log of {target}: {e}")))?;
        Ok(match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    /// The log as it is now (bounded by the options), streamed: one line
    /// at a time (without its newline) as it arrives, ending at the end of
    /// the log. Memory is bounded by [`LogOptions::max_line_bytes`], not
    /// the log's size: a longer line comes as several items. A last line
    /// without a newline is delivered too; bytes that are not UTF-8 are
    /// decoded lossily.
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
    /// when the container stops or the stream is dropped. Lines are
    /// bounded and decoded as for [`Self::log_lines`].
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
        Ok(split_lines(reader, opts.max_line())
            .map(move |r| {
                r.map_err(|e| Error::Unavailable(format!("log stream of {target} broke: {e}")))
            })
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

/// Where to cut `buf` so that the piece holds at most `max` bytes: at
/// `max`, or before a UTF-8 sequence that `max` would split (when there
/// is one within the last three bytes).
fn cut_point(buf: &[u8], max: usize) -> usize {
    let is_continuation = |b: u8| b & 0b1100_0000 == 0b1000_0000;
    let mut cut = max.min(buf.len());
    if cut == buf.len() {
        return cut;
    }
    let floor = max.saturating_sub(3).max(1);
    while cut > floor && is_continuation(buf[cut]) {
        cut -= 1;
    }
    if is_continuation(buf[cut]) { max } else { cut }
}

fn lossy(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// Splits a byte stream into lines of at most `max` bytes (see the module
/// docs): `\n` or `\r\n` ends a line and is dropped; a longer line comes
/// out in pieces; bytes are decoded lossily. At most `max + 1` bytes are
/// held besides the reader's own buffer. The first read error ends the
/// stream.
fn split_lines<R>(reader: R, max: usize) -> BoxStream<'static, std::io::Result<String>>
where
    R: AsyncBufRead + Send + 'static,
{
    struct State<R> {
        reader: std::pin::Pin<Box<R>>,
        buf: Vec<u8>,
        eof: bool,
        max: usize,
    }
    let max = max.max(4);
    let state = State {
        reader: Box::pin(reader),
        buf: Vec::new(),
        eof: false,
        max,
    };
    futures::stream::try_unfold(state, |mut st| async move {
        loop {
            if let Some(pos) = st.buf.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = st.buf.drain(..=pos).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Some((lossy(line), st)));
            }
            if st.buf.len() > st.max {
                let cut = cut_point(&st.buf, st.max);
                let piece: Vec<u8> = st.buf.drain(..cut).collect();
                return Ok(Some((lossy(piece), st)));
            }
            if st.eof {
                if st.buf.is_empty() {
                    return Ok(None);
                }
                let rest = std::mem::take(&mut st.buf);
                return Ok(Some((lossy(rest), st)));
            }
            let chunk = st.reader.fill_buf().await?;
            if chunk.is_empty() {
                st.eof = true;
                continue;
            }
            // Up to and including the first newline, and never more than
            // one byte past the cap.
            let room = st.max + 1 - st.buf.len();
            let take = chunk
                .iter()
                .position(|&b| b == b'\n')
                .map_or(chunk.len(), |p| p + 1)
                .min(room);
            st.buf.extend_from_slice(&chunk[..take]);
            st.reader.as_mut().consume(take);
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt as _;

    /// The items `split_lines` makes of `chunks`, read as they come.
    async fn split(chunks: &[&[u8]], max: usize) -> Vec<String> {
        let owned: Vec<std::io::Result<Vec<u8>>> = chunks.iter().map(|c| Ok(c.to_vec())).collect();
        let reader = futures::stream::iter(owned).into_async_read();
        split_lines(reader, max)
            .try_collect()
            .await
            .expect("no read error")
    }

    #[tokio::test]
    async fn lines_are_split_on_newlines_across_chunks() {
        assert_eq!(
            split(&[b"a\nb", b"c\r\nd", b"\n\nlast"], 64).await,
            ["a", "bc", "d", "", "last"]
        );
        assert_eq!(split(&[b"one\n"], 64).await, ["one"]);
        assert_eq!(split(&[], 64).await, Vec::<String>::new());
        assert_eq!(split(&[b"", b"\n"], 64).await, [""]);
    }

    #[tokio::test]
    async fn bytes_that_are_not_utf8_are_replaced_not_fatal() {
        let out = split(
            &[
                b"ok\n",
                b"bad \xff\xfe byte\n",
                b"\xc3",
                b"\xa9t\xc3\xa9\n",
                b"after\n",
            ],
            64,
        )
        .await;
        assert_eq!(
            out,
            ["ok", "bad \u{fffd}\u{fffd} byte", "\u{e9}t\u{e9}", "after"]
        );
    }

    #[tokio::test]
    async fn a_log_without_newlines_comes_in_bounded_pieces() {
        // 1 MiB without a newline, fed in 8 KiB chunks.
        let chunk = vec![b'x'; 8192];
        let chunks: Vec<&[u8]> = (0..128).map(|_| chunk.as_slice()).collect();
        let out = split(&chunks, 64 * 1024).await;
        assert_eq!(out.len(), 16);
        assert!(out.iter().all(|l| l.len() == 64 * 1024));
        // A line of exactly the cap stays whole; one byte more splits.
        let exact = "y".repeat(10);
        assert_eq!(
            split(&[format!("{exact}\nz").as_bytes()], 10).await,
            [exact.as_str(), "z"]
        );
        assert_eq!(split(&[b"abcdefghijk\n"], 10).await, ["abcdefghij", "k"]);
    }

    #[tokio::test]
    async fn pieces_of_a_long_line_do_not_split_characters() {
        // "é" is two bytes: a cut at 5 would fall inside the third one.
        let text = "ééééé\n";
        let out = split(&[text.as_bytes()], 5).await;
        assert_eq!(out, ["éé", "éé", "é"]);
        assert!(out.iter().all(|p| p.len() <= 5 && !p.contains('\u{fffd}')));
        // Four-byte characters with a cap of 4.
        let out = split(&["🦀🦀".as_bytes()], 4).await;
        assert_eq!(out, ["🦀", "🦀"]);
        // No boundary within reach (garbage): cut at the cap anyway.
        let out = split(&[&[0x80u8; 9][..]], 4).await;
        assert_eq!(out.iter().map(|p| p.chars().count()).sum::<usize>(), 9);
    }

    #[tokio::test]
    async fn a_read_error_ends_the_stream_with_that_error() {
        let chunks: Vec<std::io::Result<Vec<u8>>> = vec![
            Ok(b"fine\npart".to_vec()),
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "reset",
            )),
            Ok(b"never\n".to_vec()),
        ];
        let reader = futures::stream::iter(chunks).into_async_read();
        let mut s = split_lines(reader, 64);
        assert_eq!(s.next().await.expect("line").expect("ok"), "fine");
        let err = s.next().await.expect("an item").expect_err("the error");
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
        assert!(s.next().await.is_none());
    }

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
            max_line_bytes: Some(4),
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
        assert!(
            LogOptions {
                max_line_bytes: Some(3),
                ..Default::default()
            }
            .validate()
            .is_err()
        );
        assert_eq!(LogOptions::default().max_line(), DEFAULT_MAX_LINE_BYTES);
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
