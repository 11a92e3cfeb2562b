//! Exec and port-forward (feature `exec`, on by default; this binary
//! requires it, see Cargo.toml). kwok serves them only for pods of
//! the namespace `kubepkg-exec-test` (see the environment's kwok config):
//! exec runs on the host as user nobody, port 8080 forwards to
//! 127.0.0.1:17893, where this test listens.

// The cluster tests' helpers (not all of them are used here).
#[allow(dead_code)]
#[path = "cluster/common.rs"]
mod common;

use common::{admin, pod};
use kubepkg_k8s_api::exec::ExecOptions;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const NS: &str = "kubepkg-exec-test";

async fn step<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(30), f).await {
        Ok(v) => v,
        Err(_) => panic!("{what} did not finish within 30 s"),
    }
}

#[tokio::test]
async fn exec_collects_output_and_exit_code_and_port_forward_carries_bytes() {
    let c = admin().await;
    c.namespaces()
        .ensure(NS, &BTreeMap::new())
        .await
        .expect("namespace");
    c.service_accounts(NS)
        .wait_for("default", Duration::from_secs(30), |_| Some(()))
        .await
        .expect("default service account");
    let pods = c.pods(NS);
    let name = kubepkg_testenv::unique_name("exec");
    pods.create(&pod(&name, &[], None)).await.expect("pod");
    pods.wait_ready(&name, Duration::from_secs(60))
        .await
        .expect("ready");

    let out = step(
        "exec",
        pods.exec(
            &name,
            &["sh", "-c", "echo hello; echo oops >&2"],
            &ExecOptions::default(),
        ),
    )
    .await
    .expect("exec");
    assert_eq!(out.stdout_text(), "hello\n");
    assert_eq!(out.stderr, b"oops\n");
    assert!(out.success(), "{out:?}");

    let failed = step(
        "failing exec",
        pods.exec(&name, &["sh", "-c", "exit 3"], &ExecOptions::default()),
    )
    .await
    .expect("exec");
    assert_eq!(failed.exit_code, Some(3));
    assert!(!failed.success());
    assert!(
        pods.exec(&name, &[], &ExecOptions::default())
            .await
            .is_err()
    );

    let stdin = ExecOptions {
        stdin: Some(b"piped through".to_vec()),
        ..Default::default()
    };
    // kwok does not pass the end of stdin on to the command (`kubectl exec -i
    // ... cat` hangs the same way), so read a known number of bytes.
    let piped = step(
        "exec with stdin",
        pods.exec(&name, &["head", "-c", "13"], &stdin),
    )
    .await
    .expect("exec with stdin");
    assert_eq!(piped.stdout_text(), "piped through");

    // Port-forward to an echo server standing in for the container's port.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:17893")
        .await
        .expect("port 17893 must be free for the port-forward test");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    let mut pf = step("port-forward", pods.port_forward(&name, 8080))
        .await
        .expect("port-forward");
    let mut stream = pf.stream().expect("stream");
    stream.write_all(b"ping").await.expect("write");
    let mut got = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(20), stream.read_exact(&mut got))
        .await
        .expect("echo in time")
        .expect("read");
    assert_eq!(&got, b"ping");
    drop(stream);
    let _ = tokio::time::timeout(Duration::from_secs(10), pf.join()).await;

    pods.delete(&name, &kubepkg_k8s_api::DeleteOptions::grace(0))
        .await
        .expect("delete");
}

#[tokio::test]
async fn exec_output_is_bounded_and_a_slow_command_times_out() {
    let c = admin().await;
    c.namespaces()
        .ensure(NS, &BTreeMap::new())
        .await
        .expect("namespace");
    c.service_accounts(NS)
        .wait_for("default", Duration::from_secs(30), |_| Some(()))
        .await
        .expect("default service account");
    let pods = c.pods(NS);
    let name = kubepkg_testenv::unique_name("exec-bounds");
    pods.create(&pod(&name, &[], None)).await.expect("pod");
    pods.wait_ready(&name, Duration::from_secs(60))
        .await
        .expect("ready");

    // A command that never stops writing: cut at the limit, session closed.
    let capped = step(
        "endless output",
        pods.exec(
            &name,
            &["sh", "-c", "yes kubepkg"],
            &ExecOptions::default().with_max_output_bytes(64 * 1024),
        ),
    )
    .await
    .expect("exec");
    assert!(capped.truncated, "not truncated");
    assert_eq!(capped.stdout.len() + capped.stderr.len(), 64 * 1024);
    assert!(capped.stdout_text().starts_with("kubepkg\nkubepkg\n"));
    assert_eq!(capped.exit_code, None);
    assert!(!capped.success());

    // Within the limit: all of it, not truncated.
    let whole = step(
        "bounded output",
        pods.exec(
            &name,
            &["sh", "-c", "printf 0123456789; printf abc >&2"],
            &ExecOptions::default().with_max_output_bytes(13),
        ),
    )
    .await
    .expect("exec");
    assert!(!whole.truncated && whole.success(), "{whole:?}");
    assert_eq!(
        (whole.stdout.as_slice(), whole.stderr.as_slice()),
        (&b"0123456789"[..], &b"abc"[..])
    );
    // One byte over, across stdout and stderr together.
    let over = step(
        "output one byte over",
        pods.exec(
            &name,
            &["sh", "-c", "printf 0123456789; printf abcd >&2"],
            &ExecOptions::default().with_max_output_bytes(13),
        ),
    )
    .await
    .expect("exec");
    assert!(over.truncated, "{over:?}");
    assert_eq!(over.stdout.len() + over.stderr.len(), 13);

    // A command that outlives the timeout.
    let start = std::time::Instant::now();
    let err = step(
        "timed-out exec",
        pods.exec(
            &name,
            &["sleep", "60"],
            &ExecOptions::default().with_timeout(Duration::from_secs(2)),
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), kubepkg_util::ErrorKind::Timeout, "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    // A quick one is unaffected by it.
    let quick = step(
        "quick exec",
        pods.exec(
            &name,
            &["echo", "hi"],
            &ExecOptions::default().with_timeout(Duration::from_secs(20)),
        ),
    )
    .await
    .expect("exec");
    assert_eq!(quick.stdout_text(), "hi\n");

    pods.delete(&name, &kubepkg_k8s_api::DeleteOptions::grace(0))
        .await
        .expect("delete");
}
