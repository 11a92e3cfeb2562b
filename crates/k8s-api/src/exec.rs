//! Exec into a container and port-forward to a pod (feature `exec`, on by
//! default, over kube's WebSocket client).
//!
//! [`Resources::<Pod>::exec`] collects a command's output in memory, so it
//! is bounded: at most [`ExecOptions::max_output_bytes`] (default
//! [`DEFAULT_MAX_OUTPUT_BYTES`], 16 MiB) of stdout and stderr together.
//! A command that writes more is cut off: the session is closed, the
//! output holds the first bytes up to the limit and
//! [`ExecOutput::truncated`] is set (the exit code is then unknown).
//! [`ExecOptions::timeout`] bounds the whole call, connecting included; a
//! command still running then is an [`Error::Timeout`], and the session is
//! closed.

use crate::resource::{Resources, check_name};
use crate::{Error, Result};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::AttachParams;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};

/// The default of [`ExecOptions::max_output_bytes`]: 16 MiB.
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 16 * 1024 * 1024;

/// Options of [`Resources::<Pod>::exec`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOptions {
    /// Container (required when the pod has more than one).
    pub container: Option<String>,
    /// Bytes written to the command's stdin (then stdin is closed).
    pub stdin: Option<Vec<u8>>,
    /// The most output kept, stdout and stderr together (default
    /// [`DEFAULT_MAX_OUTPUT_BYTES`]); more ends the session with
    /// [`ExecOutput::truncated`] set. See the [module docs](self).
    pub max_output_bytes: Option<usize>,
    /// How long the whole call may take (default: no limit); then it fails
    /// with [`Error::Timeout`] and the session is closed.
    pub timeout: Option<Duration>,
}

impl ExecOptions {
    /// Keep at most `bytes` of output.
    pub fn with_max_output_bytes(mut self, bytes: usize) -> Self {
        self.max_output_bytes = Some(bytes);
        self
    }

    /// Give up after `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

/// What a finished command produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// What was written to stdout (all of it unless [`Self::truncated`]).
    pub stdout: Vec<u8>,
    /// What was written to stderr (all of it unless [`Self::truncated`]).
    pub stderr: Vec<u8>,
    /// The exit code (0 on success; `None` when the server did not say,
    /// or when the output was truncated).
    pub exit_code: Option<i32>,
    /// The command wrote more than [`ExecOptions::max_output_bytes`]: the
    /// output was cut there and the session closed before the command
    /// ended.
    pub truncated: bool,
}

impl ExecOutput {
    /// Whether the command exited with 0 (never when truncated: the exit
    /// code is unknown then).
    pub fn success(&self) -> bool {
        self.exit_code == Some(0) && !self.truncated
    }

    /// stdout as (lossy) UTF-8.
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// The exit code from the final status: the kubelet's `ExitCode` cause,
/// else an `exit status N` in the message (what some runtimes and kwok send).
fn exit_code(status: &Status) -> Option<i32> {
    if status.status.as_deref() == Some("Success") {
        return Some(0);
    }
    let cause = status
        .details
        .as_ref()
        .and_then(|d| d.causes.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.reason.as_deref() == Some("ExitCode")))
        .and_then(|c| c.message.as_deref()?.trim().parse().ok());
    cause.or_else(|| {
        let msg = status.message.as_deref()?;
        let at = msg.rfind("exit status ")? + "exit status ".len();
        let digits: String = msg[at..].chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    })
}

/// A port-forward session to one port of a pod.
pub struct PortForward {
    inner: kube::api::Portforwarder,
    port: u16,
}

impl std::fmt::Debug for PortForward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortForward")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl PortForward {
    /// The byte stream to the pod's port (`None` after it was taken).
    pub fn stream(
        &mut self,
    ) -> Option<impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + use<>> {
        self.inner.take_stream(self.port)
    }

    /// Waits for the session to end (after the stream was dropped).
    pub async fn join(self) -> Result<()> {
        self.inner
            .join()
            .await
            .map_err(|e| Error::Unavailable(format!("port-forward to port {}: {e}", self.port)))
    }
}

/// Why collecting the output stopped early.
enum Stop {
    /// The output limit was reached.
    Full,
    Io(std::io::Error),
}

/// Reads `r` to its end into `out`, counting every byte into `used`
/// (shared by stdout and stderr), and stops with [`Stop::Full`] once
/// `used` would pass `limit` (`out` then holds what still fit).
async fn read_capped(
    r: Option<impl AsyncRead + Unpin>,
    out: &mut Vec<u8>,
    used: &AtomicUsize,
    limit: usize,
) -> std::result::Result<(), Stop> {
    let Some(mut r) = r else { return Ok(()) };
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = r.read(&mut buf).await.map_err(Stop::Io)?;
        if n == 0 {
            return Ok(());
        }
        let before = used.fetch_add(n, Ordering::SeqCst);
        let room = limit.saturating_sub(before);
        if n > room {
            out.extend_from_slice(&buf[..room]);
            return Err(Stop::Full);
        }
        out.extend_from_slice(&buf[..n]);
    }
}

impl Resources<Pod> {
    /// Runs `command` in the pod and collects its output (bounded) and exit
    /// code, within the options' timeout; see the [module docs](self).
    pub async fn exec(
        &self,
        name: &str,
        command: &[&str],
        opts: &ExecOptions,
    ) -> Result<ExecOutput> {
        check_name(name)?;
        if command.is_empty() {
            return Err(Error::invalid("exec needs a command"));
        }
        let run = self.exec_inner(name, command, opts);
        match opts.timeout {
            None => run.await,
            Some(t) => tokio::time::timeout(t, run).await.map_err(|_| {
                Error::Timeout(format!(
                    "exec in {} did not finish within {t:?}",
                    self.target(Some(name))
                ))
            })?,
        }
    }

    async fn exec_inner(
        &self,
        name: &str,
        command: &[&str],
        opts: &ExecOptions,
    ) -> Result<ExecOutput> {
        let mut ap = AttachParams::default()
            .stdout(true)
            .stderr(true)
            .stdin(opts.stdin.is_some());
        if let Some(c) = &opts.container {
            ap = ap.container(c.clone());
        }
        let target = self.target(Some(name));
        let cmd: Vec<String> = command.iter().map(|s| s.to_string()).collect();
        let mut proc = self
            .client
            .run("exec", &target, self.api.exec(name, cmd, &ap))
            .await?;
        if let (Some(input), Some(mut w)) = (&opts.stdin, proc.stdin()) {
            w.write_all(input)
                .await
                .map_err(|e| Error::Unavailable(format!("writing stdin of {target}: {e}")))?;
            w.shutdown()
                .await
                .map_err(|e| Error::Unavailable(format!("closing stdin of {target}: {e}")))?;
        }
        let status = proc.take_status();
        let mut out = Vec::new();
        let mut err = Vec::new();
        let limit = opts.max_output_bytes.unwrap_or(DEFAULT_MAX_OUTPUT_BYTES);
        let used = AtomicUsize::new(0);
        let (stdout, stderr) = (proc.stdout(), proc.stderr());
        let read = futures::future::try_join(
            read_capped(stdout, &mut out, &used, limit),
            read_capped(stderr, &mut err, &used, limit),
        )
        .await;
        match read {
            Ok(_) => {}
            Err(Stop::Full) => {
                tracing::debug!(target = %target, limit, "exec output limit reached; closing the session");
                // Dropping the process closes the session.
                drop(proc);
                return Ok(ExecOutput {
                    stdout: out,
                    stderr: err,
                    exit_code: None,
                    truncated: true,
                });
            }
            Err(Stop::Io(e)) => {
                return Err(Error::Unavailable(format!(
                    "reading the output of {target}: {e}"
                )));
            }
        }
        let exit = match status {
            Some(s) => s.await.as_ref().and_then(exit_code),
            None => None,
        };
        proc.join()
            .await
            .map_err(|e| Error::Unavailable(format!("exec in {target}: {e}")))?;
        Ok(ExecOutput {
            stdout: out,
            stderr: err,
            exit_code: exit,
            truncated: false,
        })
    }

    /// Opens a port-forward session to `port` of the pod.
    pub async fn port_forward(&self, name: &str, port: u16) -> Result<PortForward> {
        check_name(name)?;
        let pf = self
            .client
            .run(
                "port_forward",
                &format!("{}:{port}", self.target(Some(name))),
                self.api.portforward(name, &[port]),
            )
            .await?;
        Ok(PortForward { inner: pf, port })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn output_is_capped_across_both_streams() {
        let used = AtomicUsize::new(0);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let big = vec![7u8; 100_000];
        let small = vec![1u8; 10];
        let r = futures::future::try_join(
            read_capped(Some(&small[..]), &mut a, &used, 1000),
            read_capped(Some(&big[..]), &mut b, &used, 1000),
        )
        .await;
        assert!(matches!(r, Err(Stop::Full)));
        assert_eq!(a.len() + b.len(), 1000, "{} + {}", a.len(), b.len());
        // Within the limit: everything, no stop.
        let used = AtomicUsize::new(0);
        let mut c = Vec::new();
        assert!(
            read_capped(Some(&small[..]), &mut c, &used, 10)
                .await
                .is_ok()
        );
        assert_eq!(c, small);
        assert!(read_capped(None::<&[u8]>, &mut c, &used, 10).await.is_ok());
    }

    #[test]
    fn exit_codes_are_read_from_the_status() {
        let ok: Status = serde_json::from_value(serde_json::json!({"status": "Success"})).unwrap();
        assert_eq!(exit_code(&ok), Some(0));
        let failed: Status = serde_json::from_value(serde_json::json!({
            "status": "Failure", "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}
        }))
        .unwrap();
        assert_eq!(exit_code(&failed), Some(3));
        let kwok: Status = serde_json::from_value(serde_json::json!({
            "status": "Failure",
            "message": "error executing command in container: cmd wait: sh -c exit 7: exit status 7"
        }))
        .unwrap();
        assert_eq!(exit_code(&kwok), Some(7));
        let unknown: Status =
            serde_json::from_value(serde_json::json!({"status": "Failure"})).unwrap();
        assert_eq!(exit_code(&unknown), None);
    }
}
