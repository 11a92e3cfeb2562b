//! Listing the N ConfigMaps of a namespace (default 10,000;
//! `KUBEPKG_BENCH_LIST_CONFIGMAPS`) and writing them to stdout, each
//! contender a process of its own, timed with its peak RSS through
//! `/usr/bin/time -v`, compared two ways with the same output on both sides:
//!
//! - **one compact JSON object per line, pages of 500**: kubepkg (this
//!   binary re-run as a child, streaming) vs a client-go program doing the
//!   same list and write (`benches/peers/client-go`, `list`). Targets: time
//!   and peak RSS ≤ client-go's.
//! - **`kubectl get cm -n NS -o json`'s output, byte for byte** (one
//!   pretty-printed `List`, four-space indent, keys sorted, managed fields
//!   left out, as kubectl prints it): kubepkg streaming that document vs
//!   kubectl itself (its start-up and formatting in the figure). Targets: ≥ 2×
//!   faster, ≤ 50% of kubectl's peak RSS. The two outputs are compared and
//!   must be identical.
//!
//! `KUBEPKG_BENCH_ROUNDS` rounds (default 3), the order of the contenders
//! reversed every other round; a `RESULT` line per contender per round.
//! The ConfigMaps are created in a throwaway namespace first (not measured)
//! and deleted afterwards. Only that namespace is listed, so other work on
//! the cluster cannot change what is listed.

mod support;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::ConfigMap;
use kubepkg_k8s_api::{ApplyOptions, ListOptions};
use std::io::Write;
use std::process::Command;
use std::time::Duration;
use support::*;

const CHILD: &str = "KUBEPKG_BENCH_LIST_CHILD";
const CHILD_NS: &str = "KUBEPKG_BENCH_LIST_NS";

/// The measured program: stream every ConfigMap of the namespace to stdout,
/// as compact lines (`lines`) or as kubectl's JSON `List` (`kubectl`).
async fn child(mode: &str) {
    let ns = std::env::var(CHILD_NS).expect("namespace for the child");
    let c = client().await;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut all = c
        .config_maps(&ns)
        .stream(&ListOptions::default().page_size(500));
    let kubectl = mode == "kubectl";
    if kubectl {
        out.write_all(b"{\n    \"apiVersion\": \"v1\",\n    \"items\": [")
            .expect("write");
    }
    let mut first = true;
    while let Some(cm) = all.next().await {
        let cm: ConfigMap = cm.expect("list");
        if kubectl {
            let mut v = serde_json::to_value(&cm).expect("to JSON");
            // kubectl leaves managed fields out unless asked for them.
            if let Some(meta) = v.get_mut("metadata").and_then(|m| m.as_object_mut()) {
                meta.remove("managedFields");
            }
            out.write_all(if first { b"\n" } else { b",\n" })
                .expect("write");
            indent(&mut out, 2);
            go_json(&mut out, &v, 2).expect("write");
        } else {
            serde_json::to_writer(&mut out, &cm).expect("write");
            out.write_all(b"\n").expect("write");
        }
        first = false;
    }
    if kubectl {
        if !first {
            out.write_all(b"\n    ").expect("write");
        }
        out.write_all(
            b"],\n    \"kind\": \"List\",\n    \"metadata\": {\n        \"resourceVersion\": \"\"\n    }\n}\n",
        )
        .expect("write");
    }
    out.flush().expect("flush");
}

fn indent(out: &mut impl Write, level: usize) {
    for _ in 0..level {
        let _ = out.write_all(b"    ");
    }
}

/// Writes `v` as Go's `json.MarshalIndent(v, "", "    ")` does for a map
/// (what kubectl's JSON printer calls): keys sorted, `<`, `>`, `&`, U+2028
/// and U+2029 escaped, empty objects and arrays as `{}` / `[]`.
fn go_json(out: &mut impl Write, v: &serde_json::Value, level: usize) -> std::io::Result<()> {
    use serde_json::Value;
    match v {
        Value::Null => out.write_all(b"null"),
        Value::Bool(b) => out.write_all(if *b { b"true" } else { b"false" }),
        Value::Number(n) => write!(out, "{n}"),
        Value::String(s) => go_string(out, s),
        Value::Array(a) if a.is_empty() => out.write_all(b"[]"),
        Value::Array(a) => {
            out.write_all(b"[")?;
            for (i, x) in a.iter().enumerate() {
                out.write_all(if i == 0 { b"\n" } else { b",\n" })?;
                indent(out, level + 1);
                go_json(out, x, level + 1)?;
            }
            out.write_all(b"\n")?;
            indent(out, level);
            out.write_all(b"]")
        }
        Value::Object(m) if m.is_empty() => out.write_all(b"{}"),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.write_all(b"{")?;
            for (i, k) in keys.into_iter().enumerate() {
                out.write_all(if i == 0 { b"\n" } else { b",\n" })?;
                indent(out, level + 1);
                go_string(out, k)?;
                out.write_all(b": ")?;
                go_json(out, &m[k], level + 1)?;
            }
            out.write_all(b"\n")?;
            indent(out, level);
            out.write_all(b"}")
        }
    }
}

fn go_string(out: &mut impl Write, s: &str) -> std::io::Result<()> {
    out.write_all(b"\"")?;
    let mut start = 0;
    for (i, ch) in s.char_indices() {
        let esc: Option<std::borrow::Cow<'static, str>> = match ch {
            '"' => Some("\\\"".into()),
            '\\' => Some("\\\\".into()),
            '\n' => Some("\\n".into()),
            '\r' => Some("\\r".into()),
            '\t' => Some("\\t".into()),
            '\u{8}' => Some("\\b".into()),
            '\u{c}' => Some("\\f".into()),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                Some(format!("\\u{:04x}", ch as u32).into())
            }
            c if (c as u32) < 0x20 => Some(format!("\\u{:04x}", c as u32).into()),
            _ => None,
        };
        if let Some(e) = esc {
            out.write_all(&s.as_bytes()[start..i])?;
            out.write_all(e.as_bytes())?;
            start = i + ch.len_utf8();
        }
    }
    out.write_all(&s.as_bytes()[start..])?;
    out.write_all(b"\"")
}

struct Run {
    wall: Duration,
    rss_kib: u64,
    out: Vec<u8>,
}

fn run(mut cmd: Command) -> Run {
    let (wall, rss_kib, out) = time_v(&mut cmd);
    Run { wall, rss_kib, out }
}

fn ours(ns: &str, mode: &str) -> Run {
    let mut cmd = Command::new(std::env::current_exe().expect("current exe"));
    cmd.env(CHILD, mode).env(CHILD_NS, ns);
    run(cmd)
}

fn client_go(ns: &str) -> Run {
    let mut cmd = Command::new(go_peer("client-go"));
    cmd.arg("list")
        .arg("-kubeconfig")
        .arg(&env().kubeconfig)
        .args(["-namespace", ns, "-page-size", "500"]);
    run(cmd)
}

fn kubectl_json(ns: &str) -> Run {
    let mut cmd = Command::new(kubectl());
    cmd.arg("--kubeconfig").arg(&env().kubeconfig).args([
        "get",
        "configmaps",
        "-n",
        ns,
        "-o",
        "json",
    ]);
    run(cmd)
}

fn lines(out: &[u8]) -> usize {
    out.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count()
}

fn first_difference(a: &[u8], b: &[u8]) -> String {
    let at = a
        .iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let show = |s: &[u8]| {
        String::from_utf8_lossy(&s[at.saturating_sub(80)..(at + 80).min(s.len())]).into_owned()
    };
    format!(
        "outputs differ at byte {at} (lengths {} and {}):\n--- kubepkg\n{}\n--- kubectl\n{}",
        a.len(),
        b.len(),
        show(a),
        show(b)
    )
}

fn mid<T: Copy + Ord>(mut v: Vec<T>) -> T {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    if let Ok(mode) = std::env::var(CHILD) {
        child(&mode).await;
        return;
    }
    let n = size("KUBEPKG_BENCH_LIST_CONFIGMAPS", 10_000);
    let rounds = size("KUBEPKG_BENCH_ROUNDS", 3).max(1);
    let c = client().await;
    let ns = fresh_namespace(&c, "kp-bench-list").await;
    let mut text = String::with_capacity(n * 200);
    for i in 0..n {
        text.push_str(&format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm-{i}, namespace: {ns}, labels: {{app: bench}}}}\ndata: {{index: \"{i}\", payload: \"{}\"}}\n",
            "y".repeat(100)
        ));
    }
    let report = c
        .apply(
            &text,
            &ApplyOptions {
                concurrency: 32,
                ..Default::default()
            },
        )
        .await;
    assert!(
        report.is_ok(),
        "setup failed: {:?}",
        report.failures().next()
    );
    // Build the peer before anything is timed.
    let _ = go_peer("client-go");
    println!("list_configmaps: {n} ConfigMaps in {ns}; {rounds} rounds");

    // (id, wall, rss) per contender and round
    let mut samples: Vec<(&str, Duration, u64)> = Vec::new();
    let shift = round_shift();
    for round in 0..rounds {
        let mut order = ["kubepkg", "client_go", "kubepkg_kubectl_format", "kubectl"];
        if (round + shift) % 2 == 1 {
            order.reverse();
        }
        let mut runs: Vec<(&str, Run)> = Vec::new();
        for who in order {
            let r = match who {
                "kubepkg" => ours(&ns, "lines"),
                "client_go" => client_go(&ns),
                "kubepkg_kubectl_format" => ours(&ns, "kubectl"),
                _ => kubectl_json(&ns),
            };
            runs.push((who, r));
        }
        let get = |who: &str| &runs.iter().find(|(w, _)| *w == who).expect("ran").1;
        // The namespace also holds kube-root-ca.crt.
        let (lo, lg) = (lines(&get("kubepkg").out), lines(&get("client_go").out));
        assert!(lo > n, "kubepkg listed {lo} <= {n}");
        assert_eq!(
            lo, lg,
            "kubepkg and client-go must list the same ConfigMaps"
        );
        let (fo, fk) = (&get("kubepkg_kubectl_format").out, &get("kubectl").out);
        assert!(fo == fk, "{}", first_difference(fo, fk));
        for (who, r) in &runs {
            samples.push((who, r.wall, r.rss_kib));
            let group = if who.contains("kubectl") {
                "k8s_list_cm_kubectl_format"
            } else {
                "k8s_list_cm"
            };
            let side = match *who {
                "kubepkg_kubectl_format" => "kubepkg",
                w => w,
            };
            result(&format!("{group}/{side}"), ns_of(r.wall), "ns");
            result(
                &format!("{group}_rss/{side}"),
                (r.rss_kib * 1024) as f64,
                "B",
            );
        }
    }
    let med = |who: &str| {
        let of: Vec<_> = samples.iter().filter(|s| s.0 == who).collect();
        (
            mid(of.iter().map(|s| s.1).collect()),
            mid(of.iter().map(|s| s.2).collect()),
        )
    };
    let (ow, orss) = med("kubepkg");
    let (gw, grss) = med("client_go");
    let (fw, frss) = med("kubepkg_kubectl_format");
    let (kw, krss) = med("kubectl");
    println!(
        "compact lines: kubepkg {ow:?} / {orss} KiB vs client-go {gw:?} / {grss} KiB -> time ratio {:.2}, RSS ratio {:.2} (targets <= 1)",
        ow.as_secs_f64() / gw.as_secs_f64(),
        orss as f64 / grss as f64
    );
    println!(
        "kubectl's JSON List (identical bytes): kubepkg {fw:?} / {frss} KiB vs kubectl {kw:?} / {krss} KiB -> {:.2}x faster (target >= 2x), {:.1}% of kubectl's RSS (target <= 50%)",
        kw.as_secs_f64() / fw.as_secs_f64(),
        frss as f64 * 100.0 / krss as f64
    );
    if std::env::var_os("KUBEPKG_BENCH_KEEP").is_none() {
        drop_namespace(&c, &ns).await;
    }
}

fn ns_of(d: Duration) -> f64 {
    support::ns(d)
}
