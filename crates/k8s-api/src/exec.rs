//! Exec into a container and port-forward to a pod (feature `exec`, over
//! kube's WebSocket client).

use crate::resource::{Resources, check_name};
use crate::{Error, Result};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::AttachParams;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Options of [`Resources::<Pod>::exec`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOptions {
    /// Container (required when the pod has more than one).
    pub container: Option<String>,
    /// Bytes written to the command's stdin (then stdin is closed).
    pub stdin: Option<Vec<u8>>,
}

/// What a finished command produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// Everything written to stdout.
    pub stdout: Vec<u8>,
    /// Everything written to stderr.
    pub stderr: Vec<u8>,
    /// The exit code (0 on success; `None` when the server did not say).
    pub exit_code: Option<i32>,
}

impl ExecOutput {
    /// Whether the command exited with 0.
    pub fn success(&self) -> bool {
        self.exit_code == Some(0)
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

impl Resources<Pod> {
    /// Runs `command` in the pod and collects its output and exit code.
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
        let (stdout, stderr) = (proc.stdout(), proc.stderr());
        let read_out = async {
            if let Some(mut r) = stdout {
                r.read_to_end(&mut out).await?;
            }
            Ok::<_, std::io::Error>(())
        };
        let read_err = async {
            if let Some(mut r) = stderr {
                r.read_to_end(&mut err).await?;
            }
            Ok::<_, std::io::Error>(())
        };
        let (a, b) = futures::join!(read_out, read_err);
        a.and(b)
            .map_err(|e| Error::Unavailable(format!("reading the output of {target}: {e}")))?;
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
