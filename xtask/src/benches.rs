//! `cargo xtask bench NAME`: one benchmark, kubepkg and its peer measured in
//! the same run and printed as ratios, each beside its target and MET /
//! MISSED (these machines are shared and noisy, so only ratios from one run
//! mean anything).
//!
//! The rules every benchmark follows:
//! - kubepkg and the peer run alternately: the runner reverses the order of
//!   its steps every other run and tells each step its run number
//!   (`KUBEPKG_BENCH_ROUND`), so a binary that measures both sides can
//!   alternate which goes first;
//! - every figure is the median of at least `KUBEPKG_BENCH_RUNS` (default 3)
//!   samples: a step is run again until each id it reports has that many,
//!   and a binary may print several samples of an id in one run;
//! - the run fails (non-zero exit) when a measurement is missing, has too
//!   few samples, or a ratio is not a finite number. A MISSED target is
//!   reported, not an error.
//!
//! Criterion benchmarks run with `--output-format bencher` and are parsed
//! into `id -> ns/iter`; Go peers run `go test -bench` and are parsed into
//! `go:BenchmarkName -> ns/op` (and `go:BenchmarkName:<unit>` for every
//! extra metric the benchmark reports). Bench binaries that measure kubepkg
//! and the peer themselves print `RESULT <id> <value> <unit>` lines, one per
//! sample, with the unit `ns` or `B` (lower is better) or ending in `/s`
//! (higher is better).

mod gopeers;

use crate::env;
use crate::gobuild;
use crate::sh::{self, Res};
use gopeers::GoPeer;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// How one side (or both sides) of a comparison is measured.
enum Step {
    /// `cargo bench -p CRATE --bench BENCH` (criterion, bencher output).
    Criterion {
        krate: &'static str,
        bench: &'static str,
    },
    /// `go test -bench .` in a directory under `benches/peers/`.
    GoBench { dir: &'static str },
    /// A bench binary that measures kubepkg and the peer itself and prints
    /// `RESULT id value unit` lines (plus its own comparison lines).
    Binary {
        krate: &'static str,
        bench: &'static str,
    },
}

/// When a ratio (kubepkg / peer) meets its target.
#[derive(Clone, Copy)]
enum Cmp {
    Below,
    AtMost,
    AtLeast,
    /// Printed for context only: no target.
    Context,
}

#[derive(Clone, Copy)]
struct Target {
    /// What the ratio is of: "time", "throughput", "RSS", "CPU".
    what: &'static str,
    cmp: Cmp,
    value: f64,
}

const fn at_most(what: &'static str, value: f64) -> Target {
    Target {
        what,
        cmp: Cmp::AtMost,
        value,
    }
}

const fn below(what: &'static str, value: f64) -> Target {
    Target {
        what,
        cmp: Cmp::Below,
        value,
    }
}

const fn at_least(what: &'static str, value: f64) -> Target {
    Target {
        what,
        cmp: Cmp::AtLeast,
        value,
    }
}

const fn context(what: &'static str) -> Target {
    Target {
        what,
        cmp: Cmp::Context,
        value: f64::NAN,
    }
}

impl Target {
    /// `Some(met)`, or `None` for a context figure.
    fn met(&self, ratio: f64) -> Option<bool> {
        match self.cmp {
            Cmp::Below => Some(ratio < self.value),
            Cmp::AtMost => Some(ratio <= self.value),
            Cmp::AtLeast => Some(ratio >= self.value),
            Cmp::Context => None,
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = match self.cmp {
            Cmp::Below => "<",
            Cmp::AtMost => "≤",
            Cmp::AtLeast => "≥",
            Cmp::Context => return write!(f, "{} ratio, context (no target)", self.what),
        };
        write!(f, "{} ratio {op} {}", self.what, self.value)
    }
}

/// One comparison printed as a ratio kubepkg / peer.
struct Pair {
    label: &'static str,
    ours: &'static str,
    peer: &'static str,
    target: Target,
    /// Any difference left between the two sides, printed beside the ratio.
    note: &'static str,
}

struct Bench {
    name: &'static str,
    about: &'static str,
    needs_env: bool,
    /// Go programs of `benches/peers/` the steps need (path passed in
    /// `KUBEPKG_PEER_<NAME>`).
    go_peers: &'static [&'static GoPeer],
    steps: &'static [Step],
    pairs: &'static [Pair],
}

const SYNC_NOTE: &str = "kubepkg has no synchronous mode: the process's CPU time per record (its writer thread included) vs zap's synchronous core, both until flushed to the same kind of file (64 KiB buffer)";
const ASYNC_NOTE: &str = "both: a bounded queue of 8192 records to one writer thread / goroutine that blocks when full; wall time of the records plus the flush";

const BENCHES: &[Bench] = &[
    Bench {
        name: "log",
        about: "JSON event with 4 fields to a file: each backend vs itself used directly, and vs Go's zap",
        needs_env: false,
        go_peers: &[],
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
                target: at_most("time", 1.05),
                note: "",
            },
            Pair {
                label: "slog: kubepkg / direct",
                ours: "json_4_fields/slog/kubepkg",
                peer: "json_4_fields/slog/direct",
                target: at_most("time", 1.05),
                note: "",
            },
            Pair {
                label: "log: kubepkg / direct",
                ours: "json_4_fields/log/kubepkg",
                peer: "json_4_fields/log/direct",
                target: at_most("time", 1.05),
                note: "",
            },
            Pair {
                label: "sync, CPU per record: tracing backend / zap",
                ours: "json_4_fields_cpu/tracing/kubepkg",
                peer: "go:BenchmarkSyncJSON4Fields:cpu-ns/op",
                target: at_most("CPU", 1.0),
                note: SYNC_NOTE,
            },
            Pair {
                label: "sync, CPU per record: slog backend / zap",
                ours: "json_4_fields_cpu/slog/kubepkg",
                peer: "go:BenchmarkSyncJSON4Fields:cpu-ns/op",
                target: at_most("CPU", 1.0),
                note: SYNC_NOTE,
            },
            Pair {
                label: "sync, CPU per record: log backend / zap",
                ours: "json_4_fields_cpu/log/kubepkg",
                peer: "go:BenchmarkSyncJSON4Fields:cpu-ns/op",
                target: at_most("CPU", 1.0),
                note: SYNC_NOTE,
            },
            Pair {
                label: "async + flush: tracing backend / zap async",
                ours: "json_4_fields_flush/tracing/kubepkg",
                peer: "go:BenchmarkAsyncJSON4Fields",
                target: at_most("time", 1.0),
                note: ASYNC_NOTE,
            },
            Pair {
                label: "async + flush: slog backend / zap async",
                ours: "json_4_fields_flush/slog/kubepkg",
                peer: "go:BenchmarkAsyncJSON4Fields",
                target: at_most("time", 1.0),
                note: ASYNC_NOTE,
            },
            Pair {
                label: "async + flush: log backend / zap async",
                ours: "json_4_fields_flush/log/kubepkg",
                peer: "go:BenchmarkAsyncJSON4Fields",
                target: at_most("time", 1.0),
                note: ASYNC_NOTE,
            },
            Pair {
                label: "until written: tracing (2 threads) / zap sync (1)",
                ours: "json_4_fields_flush/tracing/kubepkg",
                peer: "go:BenchmarkSyncJSON4Fields",
                target: context("time"),
                note: "wall time to get the records into the file: kubepkg's writer thread runs beside the caller, zap writes on it",
            },
        ],
    },
    Bench {
        name: "quantity",
        about: "Quantity parse + add vs Go's resource.ParseQuantity + Add",
        needs_env: false,
        go_peers: &[],
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
            target: at_most("time", 1.0),
            note: "mean of the same two pairs on both sides",
        }],
    },
    Bench {
        name: "registry-tags",
        about: "tags of 200 repositories in the local registry, 32 in flight: kubepkg vs go-containerregistry as a library; and vs `crane ls` in a loop",
        needs_env: true,
        go_peers: &[&gopeers::GGCR_TAGS],
        steps: &[Step::Binary {
            krate: "kubepkg-image-api",
            bench: "list_tags",
        }],
        pairs: &[
            Pair {
                label: "tags of 200 repos, 32 in flight: kubepkg / go-containerregistry",
                ours: "registry_tags/kubepkg",
                peer: "registry_tags/ggcr",
                target: at_most("time", 1.0),
                note: "both: a fresh client per round, one process each, timed inside it; ggcr reuses auth through one remote.Puller",
            },
            Pair {
                label: "tags of 200 repositories: kubepkg / `crane ls` per repository",
                ours: "registry_tags/kubepkg",
                peer: "registry_tags/crane_cli",
                target: at_most("time", 0.333),
                note: "kubepkg: 32 requests in flight in one warm process; crane: one process launch per repository",
            },
        ],
    },
    Bench {
        name: "image-push",
        about: "push of a 200 MiB image through the engine: kubepkg (bollard) vs `docker push`",
        needs_env: true,
        go_peers: &[],
        steps: &[Step::Binary {
            krate: "kubepkg-image-api",
            bench: "push",
        }],
        pairs: &[Pair {
            label: "push 200 MiB: kubepkg (bollard) / `docker push`",
            ours: "image_push/kubepkg",
            peer: "image_push/docker_cli",
            target: at_most("time", 1.05),
            note: "the same daemon compresses and uploads on both sides",
        }],
    },
    Bench {
        name: "storage",
        about: "1 GiB up/download and 10,000 × 4 KiB puts to MinIO vs `mc`; 100,000 confirmed messages vs RabbitMQ PerfTest",
        needs_env: true,
        go_peers: &[],
        steps: &[Step::Binary {
            krate: "kubepkg-storage-api",
            bench: "peers",
        }],
        pairs: &[
            Pair {
                label: "upload 1 GiB: kubepkg / mc cp",
                ours: "storage/upload_big/kubepkg",
                peer: "storage/upload_big/mc",
                target: at_least("throughput", 1.0),
                note: "",
            },
            Pair {
                label: "download 1 GiB: kubepkg / mc cp",
                ours: "storage/download_big/kubepkg",
                peer: "storage/download_big/mc",
                target: at_least("throughput", 1.0),
                note: "the same object into a file in the same directory (temp file, then rename), each after a `sync`; kubepkg download: 4 ranged GETs of 16 MiB in flight (its default), size checked (multipart ETag); mc cp: one GET stream",
            },
            Pair {
                label: "10,000 x 4 KiB puts: kubepkg / mc mirror",
                ours: "storage/small_puts/kubepkg",
                peer: "storage/small_puts/mc",
                target: at_least("throughput", 1.0),
                note: "",
            },
            Pair {
                label: "AMQP publish, confirmed: kubepkg / PerfTest",
                ours: "mq/publish/kubepkg",
                peer: "mq/publish/perftest",
                target: at_least("throughput", 1.0),
                note: "both: one connection, 4 confirm channels with one producer each, 128 unconfirmed in total",
            },
            Pair {
                label: "AMQP consume: kubepkg / PerfTest",
                ours: "mq/consume/kubepkg",
                peer: "mq/consume/perftest",
                target: at_least("throughput", 1.0),
                note: "both: one consumer, prefetch 128, one ack per message",
            },
        ],
    },
    Bench {
        name: "k8s-apply",
        about: "apply of a 1,000-object bundle: kubepkg vs a client-go program (same concurrency), vs `kubectl apply --server-side`, and at concurrency 1 vs a sequential kube-rs loop",
        needs_env: true,
        go_peers: &[&gopeers::CLIENT_GO],
        steps: &[Step::Binary {
            krate: "kubepkg-k8s-api",
            bench: "apply_bundle",
        }],
        pairs: &[
            Pair {
                label: "apply 1,000: kubepkg / client-go, 16 in flight",
                ours: "k8s_apply/kubepkg",
                peer: "k8s_apply/client_go",
                target: at_most("time", 1.0),
                note: "both in-process after a warm-up: parse, discovery (cached), server-side apply, 16 in flight",
            },
            Pair {
                label: "re-apply 1,000 (unchanged): kubepkg / client-go",
                ours: "k8s_reapply/kubepkg",
                peer: "k8s_reapply/client_go",
                target: at_most("time", 1.0),
                note: "",
            },
            Pair {
                label: "apply 1,000: kubepkg / kubectl",
                ours: "k8s_apply/kubepkg",
                peer: "k8s_apply/kubectl",
                target: at_most("time", 0.2),
                note: "kubectl: one object after the other, with its start-up, discovery and output in the figure",
            },
            Pair {
                label: "re-apply: kubepkg c=1 / kube-rs loop",
                ours: "k8s_reapply_c1/kubepkg",
                peer: "k8s_reapply_c1/kube_sequential",
                target: at_most("time", 1.05),
                note: "both one object after the other, in this process",
            },
        ],
    },
    Bench {
        name: "k8s-list",
        about: "listing the 10,000 ConfigMaps of a namespace to stdout: vs a client-go program (compact lines) and vs `kubectl get -o json` (identical bytes); time and peak RSS",
        needs_env: true,
        go_peers: &[&gopeers::CLIENT_GO],
        steps: &[Step::Binary {
            krate: "kubepkg-k8s-api",
            bench: "list_configmaps",
        }],
        pairs: &[
            Pair {
                label: "list 10k, compact lines: kubepkg / client-go, time",
                ours: "k8s_list_cm/kubepkg",
                peer: "k8s_list_cm/client_go",
                target: at_most("time", 1.0),
                note: "both: a process of its own, pages of 500, one compact JSON object per line to stdout",
            },
            Pair {
                label: "list 10k, compact lines: kubepkg / client-go, peak RSS",
                ours: "k8s_list_cm_rss/kubepkg",
                peer: "k8s_list_cm_rss/client_go",
                target: at_most("RSS", 1.0),
                note: "",
            },
            Pair {
                label: "list 10k as `kubectl -o json`: kubepkg / kubectl, time",
                ours: "k8s_list_cm_kubectl_format/kubepkg",
                peer: "k8s_list_cm_kubectl_format/kubectl",
                target: at_most("time", 0.5),
                note: "the same bytes on both sides (checked); kubepkg streams the List, kubectl builds it whole",
            },
            Pair {
                label: "list 10k as `kubectl -o json`: kubepkg / kubectl, peak RSS",
                ours: "k8s_list_cm_kubectl_format_rss/kubepkg",
                peer: "k8s_list_cm_kubectl_format_rss/kubectl",
                target: at_most("RSS", 0.5),
                note: "",
            },
        ],
    },
    Bench {
        name: "k8s-fanout",
        about: "one list fanned out over 10 registered clusters vs one cluster (remote: 20 ms round trip; loopback for context), and vs a client-go program doing the same fan-out",
        needs_env: true,
        go_peers: &[&gopeers::CLIENT_GO],
        steps: &[Step::Binary {
            krate: "kubepkg-k8s-api",
            bench: "fan_out",
        }],
        pairs: &[
            Pair {
                label: "10 remote clusters / one",
                ours: "k8s_fan_out/10_clusters",
                peer: "k8s_fan_out/one_cluster",
                target: at_most("time", 1.5),
                note: "",
            },
            Pair {
                label: "10 remote clusters: kubepkg / client-go",
                ours: "k8s_fan_out/10_clusters",
                peer: "k8s_fan_out_client_go/10_clusters",
                target: at_most("time", 1.0),
                note: "the same relays (20 ms round trip each); client-go: one clientset per cluster, the lists at once, timed in its process",
            },
            Pair {
                label: "10 remote clusters / one, client-go",
                ours: "k8s_fan_out_client_go/10_clusters",
                peer: "k8s_fan_out_client_go/one_cluster",
                target: context("time"),
                note: "",
            },
            Pair {
                label: "10 clusters / one, loopback (one shared server)",
                ours: "k8s_fan_out_loopback/10_clusters",
                peer: "k8s_fan_out_loopback/one_cluster",
                target: context("time"),
                note: "bounded by the one shared API server's CPU",
            },
        ],
    },
    Bench {
        name: "platform",
        about: "platform: 1,000 list calls with cached clients vs a client rebuilt per request; search over 10 remote clusters vs one",
        needs_env: true,
        go_peers: &[],
        steps: &[Step::Binary {
            krate: "kubepkg-platform",
            bench: "platform",
        }],
        pairs: &[
            Pair {
                label: "1,000 list calls: cached clients / client rebuilt per request",
                ours: "platform_cached/list_calls",
                peer: "platform_rebuilt/list_calls",
                target: below("time", 1.0),
                note: "the rebuilt side reads the store, decrypts, builds a client and probes /version per call, as the source design did",
            },
            Pair {
                label: "search 10 remote clusters / one",
                ours: "platform_search/10_clusters",
                peer: "platform_search/one_cluster",
                target: at_most("time", 1.5),
                note: "20 ms round trip per cluster through the bench's relays",
            },
        ],
    },
    Bench {
        name: "server",
        about: "kubepkg-server: GET pods of a namespace of 1,000 kwok pods under wrk vs kubectl per request, the same server with a client rebuilt per request, and kube-rs directly; server memory",
        needs_env: true,
        go_peers: &[],
        steps: &[Step::Binary {
            krate: "kubepkg-server",
            bench: "server_load",
        }],
        pairs: &[
            Pair {
                label: "requests/s: server / same server, client rebuilt per request",
                ours: "server_pods/cached/rps",
                peer: "server_pods/rebuilt/rps",
                target: at_least("rate", 10.0),
                note: "both servers under wrk at the same concurrency; the rebuilt side reads the store, decrypts, builds a client and probes /version per request, as the source design did",
            },
            Pair {
                label: "p50: server / kube-rs directly (the floor)",
                ours: "server_pods/cached/p50",
                peer: "server_pods/kube_rs/p50",
                target: at_most("latency", 1.15),
                note: "the same lists (pages of 500) at the same concurrency; the server adds its store check, JSON encoding of 1,000 pods and the HTTP hop",
            },
            Pair {
                label: "p99: server / kube-rs directly",
                ours: "server_pods/cached/p99",
                peer: "server_pods/kube_rs/p99",
                target: context("latency"),
                note: "",
            },
            Pair {
                label: "requests/s: server / kubectl get pods -o json per request",
                ours: "server_pods/cached/rps",
                peer: "server_pods/kubectl/rps",
                target: context("rate"),
                note: "kubectl pays a process start, a new connection and pretty-printing per request, as a script calling it would",
            },
            Pair {
                label: "server memory: peak under load / idle",
                ours: "server_rss/load",
                peer: "server_rss/idle",
                target: context("memory"),
                note: "resident set of the cached server: idle after import and one answer, peak sampled every 50 ms under wrk",
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

/// What a measurement's number means.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Unit {
    /// Nanoseconds (of wall or CPU time) per operation: lower is better.
    Ns,
    /// Bytes (peak RSS): lower is better.
    Bytes,
    /// Operations, bytes or messages per second: higher is better.
    PerSec,
}

/// Every sample of one id.
#[derive(Debug)]
struct Samples {
    unit: Unit,
    values: Vec<f64>,
}

type Measurements = BTreeMap<String, Samples>;

fn add(m: &mut Measurements, id: &str, unit: Unit, value: f64) {
    let s = m.entry(id.to_string()).or_insert(Samples {
        unit,
        values: Vec::new(),
    });
    if s.unit == unit {
        s.values.push(value);
    } else {
        // A mixed-unit id cannot be summarised: poison it.
        s.values.push(f64::NAN);
    }
}

fn median(values: &[f64]) -> f64 {
    if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// How many samples every figure needs (`KUBEPKG_BENCH_RUNS`, default 3).
fn min_runs() -> Res<usize> {
    match std::env::var("KUBEPKG_BENCH_RUNS") {
        Err(_) => Ok(3),
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if n >= 1 => {
                if n < 3 {
                    eprintln!(
                        "xtask: KUBEPKG_BENCH_RUNS={n}: fewer than 3 runs, a quick look and not a figure to report"
                    );
                }
                Ok(n)
            }
            _ => Err(format!(
                "KUBEPKG_BENCH_RUNS must be a positive number, got {v:?}"
            )),
        },
    }
}

fn run_one(b: &Bench) -> Res {
    let runs = min_runs()?;
    if b.needs_env {
        env::up(&[])?;
    }
    for t in gobuild::PEERS {
        t.ensure()?;
    }
    let mut peer_env: Vec<(String, std::path::PathBuf)> = Vec::new();
    for t in gobuild::PEERS {
        for bin in t.bins {
            peer_env.push((format!("KUBEPKG_PEER_{}", bin.to_uppercase()), t.bin(bin)));
            peer_env.push((bin.to_uppercase(), t.bin(bin)));
        }
    }
    for p in b.go_peers {
        peer_env.push((p.env_var(), p.ensure()?));
    }

    let mut m = Measurements::new();
    let mut report: Vec<String> = Vec::new();
    // The ids the pairs compare (a `prefix/*` pattern stands for every id
    // under it), and which of them each step reported: a step runs again
    // until those have `runs` samples. Ids no pair uses are printed only.
    let wanted = |id: &str| {
        b.pairs.iter().any(|p| {
            [p.ours, p.peer].iter().any(|w| match w.strip_suffix('*') {
                Some(prefix) => id.starts_with(prefix),
                None => id == *w,
            })
        })
    };
    let mut step_ids: Vec<Vec<String>> = vec![Vec::new(); b.steps.len()];
    let enough = |m: &Measurements, ids: &[String]| {
        ids.iter()
            .all(|id| m.get(id).is_some_and(|s| s.values.len() >= runs))
    };
    for round in 0..runs {
        let mut order: Vec<usize> = (0..b.steps.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            if round > 0 && enough(&m, &step_ids[i]) {
                continue;
            }
            eprintln!(
                "xtask: bench {} run {}/{runs}: {}",
                b.name,
                round + 1,
                step_name(&b.steps[i])
            );
            let mut got = Measurements::new();
            let out = run_step(&b.steps[i], round, &peer_env)?;
            match &b.steps[i] {
                Step::Criterion { .. } => parse_bencher(&out, &mut got),
                Step::GoBench { .. } => parse_gobench(&out, &mut got),
                Step::Binary { .. } => {
                    parse_results(&out, &mut got);
                    // These binaries print their own comparison lines.
                    for line in out.lines().filter(|l| !l.starts_with("RESULT ")) {
                        if !line.trim().is_empty() {
                            report.push(format!("[run {}] {line}", round + 1));
                        }
                    }
                }
            }
            if got.is_empty() {
                return Err(format!(
                    "{} reported no measurement at all",
                    step_name(&b.steps[i])
                ));
            }
            for (id, s) in got {
                if wanted(&id) && !step_ids[i].contains(&id) {
                    step_ids[i].push(id.clone());
                }
                for v in s.values {
                    add(&mut m, &id, s.unit, v);
                }
            }
        }
        if b.pairs.iter().all(|p| {
            [p.ours, p.peer]
                .iter()
                .all(|id| resolve(&m, id).is_some_and(|(_, n, _)| n >= runs))
        }) {
            break;
        }
    }
    print_summary(b, &m, &report, runs)
}

fn step_name(s: &Step) -> String {
    match s {
        Step::Criterion { krate, bench } => format!("criterion {krate}/{bench}"),
        Step::GoBench { dir } => format!("go test -bench in {dir}"),
        Step::Binary { krate, bench } => format!("bench binary {krate}/{bench}"),
    }
}

fn run_step(step: &Step, round: usize, peer_env: &[(String, std::path::PathBuf)]) -> Res<String> {
    let mut c = match step {
        Step::Criterion { krate, bench } => {
            let mut c = bench_binary(krate, bench, false)?;
            c.args([
                "--output-format",
                "bencher",
                "--warm-up-time",
                "1",
                "--measurement-time",
                "3",
            ]);
            c
        }
        Step::GoBench { dir } => {
            let mut c = Command::new("go");
            c.current_dir(sh::workspace_root().join(dir))
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
                    "-count",
                    "1",
                    "-benchmem",
                ]);
            c
        }
        Step::Binary { krate, bench } => {
            let mut c = bench_binary(krate, bench, true)?;
            for (k, v) in peer_env {
                c.env(k, v);
            }
            c
        }
    };
    c.env("KUBEPKG_BENCH_ROUND", round.to_string());
    capture(&mut c)
}

/// Builds a bench target (`cargo bench --no-run`) and returns the command
/// that runs its executable the way `cargo bench` would (from the package's
/// directory, with `--bench`). Running it outside cargo keeps the shared
/// target directory unlocked for the minutes a benchmark takes.
fn bench_binary(krate: &str, bench: &str, all_features: bool) -> Res<Command> {
    let mut c = cargo();
    c.args(["bench", "-p", krate, "--bench", bench, "--no-run"]);
    if all_features {
        c.arg("--all-features");
    }
    c.args(["--message-format", "json-render-diagnostics"]);
    let out = capture_quiet(&mut c)?;
    for line in out.lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let is_bench = msg["reason"] == "compiler-artifact"
            && msg["target"]["name"] == bench
            && msg["target"]["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "bench"));
        if let (true, Some(exe)) = (is_bench, msg["executable"].as_str()) {
            let mut run = Command::new(exe);
            if let Some(dir) = msg["manifest_path"]
                .as_str()
                .and_then(|m| std::path::Path::new(m).parent())
            {
                run.current_dir(dir);
            }
            run.arg("--bench");
            return Ok(run);
        }
    }
    Err(format!(
        "`cargo bench -p {krate} --bench {bench} --no-run` named no executable"
    ))
}

/// Runs `cmd` with stderr shown and stdout returned (not shown).
fn capture_quiet(cmd: &mut Command) -> Res<String> {
    let desc = sh::describe(cmd);
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("could not run `{desc}`: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("`{desc}` failed with {}", out.status))
    }
}

/// Runs `cmd` with stderr shown as it comes and stdout both shown and returned.
fn capture(cmd: &mut Command) -> Res<String> {
    let desc = sh::describe(cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("could not run `{desc}`: {e}"))?;
    let mut all = String::new();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let line = line.map_err(|e| format!("reading the output of `{desc}`: {e}"))?;
            eprintln!("  | {line}");
            all.push_str(&line);
            all.push('\n');
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for `{desc}`: {e}"))?;
    if status.success() {
        Ok(all)
    } else {
        Err(format!("`{desc}` failed with {status}"))
    }
}

/// `(median, samples, unit)` of an exact id, or of the per-sample mean of
/// every id matching a `prefix/*` pattern (all must have the same count).
fn resolve(m: &Measurements, id: &str) -> Option<(f64, usize, Unit)> {
    if let Some(prefix) = id.strip_suffix('*') {
        let group: Vec<&Samples> = m
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, s)| s)
            .collect();
        let first = group.first()?;
        let n = group.iter().map(|s| s.values.len()).min()?;
        if group.iter().any(|s| s.unit != first.unit) {
            return Some((f64::NAN, n, first.unit));
        }
        let means: Vec<f64> = (0..n)
            .map(|i| group.iter().map(|s| s.values[i]).sum::<f64>() / group.len() as f64)
            .collect();
        return Some((median(&means), n, first.unit));
    }
    m.get(id)
        .map(|s| (median(&s.values), s.values.len(), s.unit))
}

fn show(v: f64, unit: Unit) -> String {
    match unit {
        Unit::Ns if v >= 1e9 => format!("{:.3} s", v / 1e9),
        Unit::Ns if v >= 1e6 => format!("{:.2} ms", v / 1e6),
        Unit::Ns if v >= 1e3 => format!("{:.2} µs", v / 1e3),
        Unit::Ns => format!("{v:.1} ns"),
        Unit::Bytes => format!("{:.1} MiB", v / (1024.0 * 1024.0)),
        Unit::PerSec => format!("{v:.1}/s"),
    }
}

fn print_summary(b: &Bench, m: &Measurements, report: &[String], runs: usize) -> Res {
    println!("\n{} — {}\n", b.name, b.about);
    for line in report {
        println!("  {line}");
    }
    if !report.is_empty() {
        println!();
    }
    for (id, s) in m {
        println!(
            "  {id:<52} {:>14}  (median of {}: {})",
            show(median(&s.values), s.unit),
            s.values.len(),
            s.values
                .iter()
                .map(|v| show(*v, s.unit))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    println!();
    let (mut met, mut missed, mut ctx) = (0, 0, 0);
    let mut failures: Vec<String> = Vec::new();
    for p in b.pairs {
        let (ours, peer) = (resolve(m, p.ours), resolve(m, p.peer));
        let line = match (ours, peer) {
            (Some((o, no, uo)), Some((q, nq, uq))) => {
                let ratio = o / q;
                if uo != uq {
                    failures.push(format!(
                        "{}: {} and {} have different units",
                        p.label, p.ours, p.peer
                    ));
                    format!("units differ ({uo:?} vs {uq:?})")
                } else if no < runs || nq < runs {
                    failures.push(format!(
                        "{}: {no} / {nq} samples of {} / {}, fewer than {runs}",
                        p.label, p.ours, p.peer
                    ));
                    format!("too few samples ({no} / {nq} < {runs})")
                } else if !ratio.is_finite() || ratio <= 0.0 {
                    failures.push(format!(
                        "{}: the ratio is not a number ({o} / {q})",
                        p.label
                    ));
                    format!("ratio is not a number ({o} / {q})")
                } else {
                    let verdict = match p.target.met(ratio) {
                        Some(true) => {
                            met += 1;
                            "MET"
                        }
                        Some(false) => {
                            missed += 1;
                            "MISSED"
                        }
                        None => {
                            ctx += 1;
                            "context"
                        }
                    };
                    let better = match uo {
                        Unit::PerSec => "higher is better",
                        _ => "lower is better",
                    };
                    format!(
                        "ratio {ratio:>7.3}  target {}  {verdict}   (kubepkg {} vs peer {}, median of {no}/{nq}; {better})",
                        p.target,
                        show(o, uo),
                        show(q, uq)
                    )
                }
            }
            _ => {
                let absent: Vec<&str> = [(p.ours, ours.is_none()), (p.peer, peer.is_none())]
                    .into_iter()
                    .filter(|(_, gone)| *gone)
                    .map(|(id, _)| id)
                    .collect();
                failures.push(format!("{}: no measurement {}", p.label, absent.join(", ")));
                format!("missing measurement: {}", absent.join(", "))
            }
        };
        println!("  {:<58} {line}", p.label);
        if !p.note.is_empty() {
            println!("  {:<58}   note: {}", "", p.note);
        }
    }
    println!(
        "\n  {}: {met} MET, {missed} MISSED, {ctx} context, {} failed",
        b.name,
        failures.len()
    );
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "benchmark {} is incomplete:\n  {}",
            b.name,
            failures.join("\n  ")
        ))
    }
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(sh::workspace_root());
    c
}

/// `test group/name ... bench:       1,234 ns/iter (+/- 56)`
fn parse_bencher(out: &str, m: &mut Measurements) {
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
        let v = num.parse::<f64>().unwrap_or(f64::NAN);
        add(m, id.trim(), Unit::Ns, v);
    }
}

/// `BenchmarkParseAdd-2  9838467  121.9 ns/op  130.2 cpu-ns/op  0 B/op ...`:
/// `ns/op` becomes `go:BenchmarkParseAdd`; every other `<value> <unit>`
/// pair `go:BenchmarkParseAdd:<unit>` (lower is better, except `/s` units).
fn parse_gobench(out: &str, m: &mut Measurements) {
    for line in out.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 4 || !f[0].starts_with("Benchmark") || f[1].parse::<u64>().is_err() {
            continue;
        }
        let name = f[0].rsplit_once('-').map(|(n, _)| n).unwrap_or(f[0]);
        for kv in f[2..].chunks(2) {
            let [value, unit] = kv else { continue };
            let v = value.parse::<f64>().unwrap_or(f64::NAN);
            if *unit == "ns/op" {
                add(m, &format!("go:{name}"), Unit::Ns, v);
            } else if unit.ends_with("/s") {
                add(m, &format!("go:{name}:{unit}"), Unit::PerSec, v);
            } else if unit.starts_with("B/") || unit.starts_with("allocs/") {
                continue;
            } else {
                add(m, &format!("go:{name}:{unit}"), Unit::Ns, v);
            }
        }
    }
}

/// `RESULT id value unit`, one line per sample.
fn parse_results(out: &str, m: &mut Measurements) {
    for line in out.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.first() != Some(&"RESULT") {
            continue;
        }
        let (Some(id), Some(value), Some(unit)) = (f.get(1), f.get(2), f.get(3)) else {
            // A RESULT line without a value still names the measurement:
            // record it as not a number so the pair fails loudly.
            if let Some(id) = f.get(1) {
                add(m, id, Unit::Ns, f64::NAN);
            }
            continue;
        };
        let v = value.parse::<f64>().unwrap_or(f64::NAN);
        let unit = if unit.ends_with("/s") {
            Unit::PerSec
        } else if *unit == "B" {
            Unit::Bytes
        } else {
            Unit::Ns
        };
        add(m, id, unit, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_criterion_bencher_lines() {
        let mut m = Measurements::new();
        parse_bencher(
            "test a/b/kubepkg ... bench:       1,234 ns/iter (+/- 56)\nnoise",
            &mut m,
        );
        assert_eq!(m["a/b/kubepkg"].values, vec![1234.0]);
    }

    #[test]
    fn parses_go_bench_lines_with_extra_metrics() {
        let mut m = Measurements::new();
        parse_gobench(
            "BenchmarkParseAdd-2   \t 9838467\t       121.9 ns/op\t 130.5 cpu-ns/op\t 0 B/op\t 0 allocs/op",
            &mut m,
        );
        assert_eq!(m["go:BenchmarkParseAdd"].values, vec![121.9]);
        assert_eq!(m["go:BenchmarkParseAdd:cpu-ns/op"].values, vec![130.5]);
        assert!(!m.contains_key("go:BenchmarkParseAdd:B/op"));
    }

    #[test]
    fn results_are_samples_with_units() {
        let mut m = Measurements::new();
        parse_results(
            "RESULT x/kubepkg 10 ns\nRESULT x/kubepkg 30 ns\nRESULT x/kubepkg 20 ns\nRESULT r 5.5 MB/s\nRESULT rss 1024 B\nRESULT bad nan ns",
            &mut m,
        );
        assert_eq!(resolve(&m, "x/kubepkg"), Some((20.0, 3, Unit::Ns)));
        assert_eq!(m["r"].unit, Unit::PerSec);
        assert_eq!(m["rss"].unit, Unit::Bytes);
        assert!(resolve(&m, "bad").is_some_and(|(v, _, _)| v.is_nan()));
    }

    #[test]
    fn wildcard_lookup_averages_per_sample() {
        let mut m = Measurements::new();
        for (a, b) in [(10.0, 30.0), (20.0, 40.0), (0.0, 20.0)] {
            add(&mut m, "q/a", Unit::Ns, a);
            add(&mut m, "q/b", Unit::Ns, b);
        }
        // per-sample means 20, 30, 10 -> median 20
        assert_eq!(resolve(&m, "q/*"), Some((20.0, 3, Unit::Ns)));
    }

    #[test]
    fn median_of_even_count_and_nan() {
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[1.0, f64::NAN, 2.0]).is_nan());
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn targets() {
        assert_eq!(at_most("time", 1.05).met(1.05), Some(true));
        assert_eq!(below("time", 1.0).met(1.0), Some(false));
        assert_eq!(at_least("throughput", 1.0).met(0.99), Some(false));
        assert_eq!(context("time").met(3.0), None);
        assert_eq!(at_most("time", 0.2).to_string(), "time ratio ≤ 0.2");
    }

    #[test]
    fn missing_or_nan_fails_the_run() {
        const PAIRS: &[Pair] = &[Pair {
            label: "x",
            ours: "a",
            peer: "b",
            target: at_most("time", 1.0),
            note: "",
        }];
        let b = Bench {
            name: "t",
            about: "",
            needs_env: false,
            go_peers: &[],
            steps: &[],
            pairs: PAIRS,
        };
        let mut m = Measurements::new();
        for _ in 0..3 {
            add(&mut m, "a", Unit::Ns, 1.0);
        }
        assert!(print_summary(&b, &m, &[], 3).is_err(), "b is missing");
        for _ in 0..3 {
            add(&mut m, "b", Unit::Ns, 0.0);
        }
        assert!(print_summary(&b, &m, &[], 3).is_err(), "ratio is infinite");
        let mut m2 = Measurements::new();
        for _ in 0..3 {
            add(&mut m2, "a", Unit::Ns, 1.0);
            add(&mut m2, "b", Unit::Ns, 2.0);
        }
        assert!(print_summary(&b, &m2, &[], 3).is_ok());
        assert!(print_summary(&b, &m2, &[], 4).is_err(), "too few samples");
    }

    #[test]
    fn every_bench_has_pairs_and_unique_names() {
        let mut names = std::collections::BTreeSet::new();
        for b in BENCHES {
            assert!(names.insert(b.name), "duplicate {}", b.name);
            assert!(!b.pairs.is_empty(), "{} has no pairs", b.name);
        }
    }
}
