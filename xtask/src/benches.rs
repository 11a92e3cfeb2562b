//! `cargo xtask bench NAME`: one benchmark, kubepkg and its peer measured in
//! the same run, printed as a ratio (these machines are shared and noisy, so
//! only a ratio from one run means anything).
//!
//! Criterion benchmarks run with `--output-format bencher` and are parsed
//! into `id -> ns/iter`; Go peers run `go test -bench` and are parsed into
//! `go:BenchmarkName -> ns/op`. Bench binaries that measure kubepkg and the
//! peer themselves print `RESULT <id> <value> <unit>` lines, with the unit
//! either `ns` (lower is better) or `/s` (higher is better).

use crate::env;
use crate::gobuild;
use crate::sh::{self, Res};
use std::collections::BTreeMap;
use std::process::Command;

/// How one side of a comparison is measured.
enum Step {
    /// `cargo bench -p CRATE --bench BENCH` (criterion, bencher output).
    Criterion {
        krate: &'static str,
        bench: &'static str,
    },
    /// `go test -bench .` in a directory under `benches/peers/`.
    GoBench { dir: &'static str },
    /// A bench binary that measures kubepkg and the peer itself and prints the
    /// comparison (and optionally `RESULT id value unit` lines).
    Binary {
        krate: &'static str,
        bench: &'static str,
    },
}

/// One comparison printed as a ratio.
struct Pair {
    label: &'static str,
    ours: &'static str,
    peer: &'static str,
    /// What the ratio should reach, e.g. "≤ 1.05× (overhead ≤ 5%)".
    target: &'static str,
}

struct Bench {
    name: &'static str,
    about: &'static str,
    needs_env: bool,
    steps: &'static [Step],
    pairs: &'static [Pair],
}

const BENCHES: &[Bench] = &[
    Bench {
        name: "log",
        about: "JSON event with 4 fields to a non-blocking file sink: each backend vs itself used directly, and vs Go's zap",
        needs_env: false,
        steps: &[
            Step::Criterion {
                krate: "kubepkg-log-api",
                bench: "log_event",
            },
            Step::GoBench {
                dir: "benches/peers/zap",
            },
        ],
        pairs: &[
            Pair {
                label: "tracing: kubepkg / direct",
                ours: "json_4_fields/tracing/kubepkg",
                peer: "json_4_fields/tracing/direct",
                target: "time ratio ≤ 1.05",
            },
            Pair {
                label: "slog: kubepkg / direct",
                ours: "json_4_fields/slog/kubepkg",
                peer: "json_4_fields/slog/direct",
                target: "time ratio ≤ 1.05",
            },
            Pair {
                label: "log: kubepkg / direct",
                ours: "json_4_fields/log/kubepkg",
                peer: "json_4_fields/log/direct",
                target: "time ratio ≤ 1.05",
            },
            Pair {
                label: "tracing backend / zap",
                ours: "json_4_fields/tracing/kubepkg",
                peer: "go:BenchmarkJSON4Fields",
                target: "time ratio ≤ 1.0",
            },
            Pair {
                label: "slog backend / zap",
                ours: "json_4_fields/slog/kubepkg",
                peer: "go:BenchmarkJSON4Fields",
                target: "time ratio ≤ 1.0",
            },
            Pair {
                label: "log backend / zap",
                ours: "json_4_fields/log/kubepkg",
                peer: "go:BenchmarkJSON4Fields",
                target: "time ratio ≤ 1.0",
            },
        ],
    },
    Bench {
        name: "quantity",
        about: "Quantity parse + add vs Go's resource.ParseQuantity + Add",
        needs_env: false,
        steps: &[
            Step::Criterion {
                krate: "kubepkg-util",
                bench: "quantity",
            },
            Step::GoBench {
                dir: "benches/peers/quantity",
            },
        ],
        pairs: &[Pair {
            label: "parse+add: kubepkg / Go apimachinery",
            ours: "quantity_parse_add/*",
            peer: "go:BenchmarkParseAdd",
            target: "time ratio ≤ 1.0",
        }],
    },
    Bench {
        name: "registry-tags",
        about: "tags of 200 repositories in the local registry: kubepkg (concurrent) vs `crane ls` in a loop",
        needs_env: true,
        steps: &[Step::Binary {
            krate: "kubepkg-image-api",
            bench: "list_tags",
        }],
        pairs: &[],
    },
    Bench {
        name: "image-push",
        about: "push of a 200 MiB image through the engine: kubepkg (bollard) vs `docker push`",
        needs_env: true,
        steps: &[Step::Binary {
            krate: "kubepkg-image-api",
            bench: "push",
        }],
        pairs: &[],
    },
    Bench {
        name: "storage",
        about: "1 GiB up/download and 10,000 × 4 KiB puts to MinIO vs `mc`; 100,000 confirmed messages vs RabbitMQ PerfTest",
        needs_env: true,
        steps: &[Step::Binary {
            krate: "kubepkg-storage-api",
            bench: "peers",
        }],
        pairs: &[],
    },
    Bench {
        name: "k8s-apply",
        about: "apply of a 1,000-object bundle: kubepkg vs `kubectl apply --server-side` and vs a sequential kube-rs loop",
        needs_env: true,
        steps: &[Step::Binary {
            krate: "kubepkg-k8s-api",
            bench: "apply_bundle",
        }],
        pairs: &[
            Pair {
                label: "apply 1,000: kubepkg / kubectl",
                ours: "k8s_apply/kubepkg",
                peer: "k8s_apply/kubectl",
                target: "time ratio ≤ 0.2 (≥ 5× faster)",
            },
            Pair {
                label: "re-apply: kubepkg c=1 / kube-rs loop",
                ours: "k8s_reapply_median/kubepkg_c1",
                peer: "k8s_reapply_median/kube_sequential",
                target: "time ratio ≤ 1.05",
            },
        ],
    },
    Bench {
        name: "k8s-list",
        about: "listing 10,000 ConfigMaps: time and peak RSS vs `kubectl get cm -A -o json`",
        needs_env: true,
        steps: &[Step::Binary {
            krate: "kubepkg-k8s-api",
            bench: "list_configmaps",
        }],
        pairs: &[
            Pair {
                label: "list 10k ConfigMaps: time",
                ours: "k8s_list_cm/kubepkg",
                peer: "k8s_list_cm/kubectl",
                target: "time ratio ≤ 0.5",
            },
            Pair {
                label: "list 10k ConfigMaps: peak RSS",
                ours: "k8s_list_cm_rss/kubepkg",
                peer: "k8s_list_cm_rss/kubectl",
                target: "RSS ratio ≤ 0.5",
            },
        ],
    },
    Bench {
        name: "k8s-fanout",
        about: "one list fanned out over 10 registered clusters vs one cluster (remote: 20 ms round trip; loopback for context)",
        needs_env: true,
        steps: &[Step::Binary {
            krate: "kubepkg-k8s-api",
            bench: "fan_out",
        }],
        pairs: &[
            Pair {
                label: "10 remote clusters / one",
                ours: "k8s_fan_out/10_clusters",
                peer: "k8s_fan_out/one_cluster",
                target: "time ratio ≤ 1.5",
            },
            Pair {
                label: "10 clusters / one, loopback (one shared server)",
                ours: "k8s_fan_out_loopback/10_clusters",
                peer: "k8s_fan_out_loopback/one_cluster",
                target: "context: bounded by the shared server's CPU",
            },
        ],
    },
];

/// Entry point.
pub fn run(args: &[&str]) -> Res {
    match args {
        [] | ["list"] => {
            for b in BENCHES {
                println!("{:<14} {}", b.name, b.about);
            }
            Ok(())
        }
        [name] => {
            let b = BENCHES.iter().find(|b| b.name == *name).ok_or_else(|| {
                format!("unknown benchmark {name:?}; `cargo xtask bench list` shows them")
            })?;
            run_one(b)
        }
        _ => Err("usage: cargo xtask bench NAME | list".into()),
    }
}

/// A measurement: `ns` per operation (lower is better) or a rate per second.
#[derive(Clone, Copy, Debug)]
enum Value {
    Ns(f64),
    PerSec(f64),
}

fn run_one(b: &Bench) -> Res {
    if b.needs_env {
        env::up(&[])?;
    }
    for t in gobuild::PEERS {
        t.ensure()?;
    }
    let mut m: BTreeMap<String, Value> = BTreeMap::new();
    let mut report: Vec<String> = Vec::new();
    for step in b.steps {
        match step {
            Step::Criterion { krate, bench } => {
                let out = sh::output(
                    cargo()
                        .args(["bench", "-p", krate, "--bench", bench, "--"])
                        .args([
                            "--output-format",
                            "bencher",
                            "--warm-up-time",
                            "1",
                            "--measurement-time",
                            "3",
                        ]),
                )?;
                parse_bencher(&out, &mut m);
            }
            Step::GoBench { dir } => {
                let out = sh::output(
                    Command::new("go")
                        .current_dir(sh::workspace_root().join(dir))
                        .env("GOTOOLCHAIN", "local")
                        .env("GOFLAGS", "-mod=mod")
                        .args([
                            "test",
                            "-run",
                            "^$",
                            "-bench",
                            ".",
                            "-benchtime",
                            "3s",
                            "-benchmem",
                        ]),
                )?;
                parse_gobench(&out, &mut m);
            }
            Step::Binary { krate, bench } => {
                let mut c = cargo();
                c.args(["bench", "-p", krate, "--all-features", "--bench", bench]);
                for t in gobuild::PEERS {
                    for bin in t.bins {
                        c.env(format!("KUBEPKG_PEER_{}", bin.to_uppercase()), t.bin(bin));
                        c.env(bin.to_uppercase(), t.bin(bin));
                    }
                }
                let out = sh::output(&mut c)?;
                parse_results(&out, &mut m);
                // These binaries print their own comparison lines.
                for line in out.lines().filter(|l| !l.starts_with("RESULT ")) {
                    if !line.trim().is_empty() {
                        report.push(line.to_string());
                    }
                }
            }
        }
    }
    println!("\n{} — {}\n", b.name, b.about);
    for line in &report {
        println!("  {line}");
    }
    for (id, v) in &m {
        match v {
            Value::Ns(ns) => println!("  {id:<48} {:>14.1} ns/op", ns),
            Value::PerSec(r) => println!("  {id:<48} {:>14.1} /s", r),
        }
    }
    println!();
    for p in b.pairs {
        let ours = lookup(&m, p.ours);
        let peer = lookup(&m, p.peer);
        match (ours, peer) {
            (Some(Value::Ns(o)), Some(Value::Ns(q))) => println!(
                "  {:<40} ratio {:>6.3}  ({} {:.0} vs {:.0}, lower is better; target {})",
                p.label,
                o / q,
                if o <= q {
                    "kubepkg better or equal:"
                } else {
                    "kubepkg worse:"
                },
                o,
                q,
                p.target
            ),
            (Some(Value::PerSec(o)), Some(Value::PerSec(q))) => println!(
                "  {:<40} throughput ratio {:>6.3}  ({:.1}/s vs {:.1}/s; target {})",
                p.label,
                o / q,
                o,
                q,
                p.target
            ),
            _ => println!(
                "  {:<40} missing measurement ({} or {})",
                p.label, p.ours, p.peer
            ),
        }
    }
    Ok(())
}

/// Exact id, or the mean of every id matching a `prefix/*` pattern.
fn lookup(m: &BTreeMap<String, Value>, id: &str) -> Option<Value> {
    if let Some(prefix) = id.strip_suffix('*') {
        let vals: Vec<f64> = m
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .filter_map(|(_, v)| match v {
                Value::Ns(n) => Some(*n),
                Value::PerSec(_) => None,
            })
            .collect();
        if vals.is_empty() {
            return None;
        }
        return Some(Value::Ns(vals.iter().sum::<f64>() / vals.len() as f64));
    }
    m.get(id).copied()
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(sh::workspace_root());
    c
}

/// `test group/name ... bench:       1,234 ns/iter (+/- 56)`
fn parse_bencher(out: &str, m: &mut BTreeMap<String, Value>) {
    for line in out.lines() {
        let Some(rest) = line.strip_prefix("test ") else {
            continue;
        };
        let Some((id, tail)) = rest.split_once(" ... bench:") else {
            continue;
        };
        let num: String = tail
            .split_whitespace()
            .next()
            .unwrap_or("")
            .replace(',', "");
        if let Ok(ns) = num.parse::<f64>() {
            m.insert(id.trim().to_string(), Value::Ns(ns));
        }
    }
}

/// `BenchmarkParseAdd-2  9838467  121.9 ns/op ...` (tab separated)
fn parse_gobench(out: &str, m: &mut BTreeMap<String, Value>) {
    for line in out.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() >= 4 && f[0].starts_with("Benchmark") && f[3] == "ns/op" {
            let name = f[0].rsplit_once('-').map(|(n, _)| n).unwrap_or(f[0]);
            if let Ok(ns) = f[2].parse::<f64>() {
                m.insert(format!("go:{name}"), Value::Ns(ns));
            }
        }
    }
}

/// `RESULT id value unit`
fn parse_results(out: &str, m: &mut BTreeMap<String, Value>) {
    for line in out.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() != 4 || f[0] != "RESULT" {
            continue;
        }
        if let Ok(v) = f[2].parse::<f64>() {
            // Rates ("/s", "MB/s", "msg/s") are higher-is-better; anything
            // else (ns, bytes of peak RSS) is lower-is-better.
            let v = if f[3].ends_with("/s") {
                Value::PerSec(v)
            } else {
                Value::Ns(v)
            };
            m.insert(f[1].to_string(), v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_criterion_bencher_lines() {
        let mut m = BTreeMap::new();
        parse_bencher(
            "test a/b/kubepkg ... bench:       1,234 ns/iter (+/- 56)\nnoise",
            &mut m,
        );
        assert!(matches!(m.get("a/b/kubepkg"), Some(Value::Ns(n)) if (*n - 1234.0).abs() < 1e-9));
    }

    #[test]
    fn parses_go_bench_lines() {
        let mut m = BTreeMap::new();
        parse_gobench(
            "BenchmarkParseAdd-2   \t 9838467\t       121.9 ns/op\t 0 B/op",
            &mut m,
        );
        assert!(
            matches!(m.get("go:BenchmarkParseAdd"), Some(Value::Ns(n)) if (*n - 121.9).abs() < 1e-9)
        );
    }

    #[test]
    fn wildcard_lookup_averages() {
        let mut m = BTreeMap::new();
        m.insert("q/a".to_string(), Value::Ns(10.0));
        m.insert("q/b".to_string(), Value::Ns(30.0));
        assert!(matches!(lookup(&m, "q/*"), Some(Value::Ns(n)) if (n - 20.0).abs() < 1e-9));
    }
}
