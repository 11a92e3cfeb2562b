//! One JSON log event with four fields, written to a file.
//!
//! - `json_4_fields/<backend>/{kubepkg,direct}`: kubepkg-log-api on each
//!   backend against the same backend wired up directly (tracing-appender /
//!   slog-async). Target: kubepkg-log-api within 5% of the direct setup.
//!   Both sides use a bounded background buffer of the same capacity that
//!   blocks when full, so the caller's time is sustained throughput
//!   (formatting on the caller, writing on the background thread), not the
//!   cost of dropping records.
//! - The Go peer (`benches/peers/zap`) is measured the way zap is timed,
//!   until every record is in the file, so kubepkg is too:
//!   `json_4_fields_flush/<backend>/kubepkg` is the wall time of the records
//!   plus the flush that waits for the writer thread to write them (vs zap
//!   with the same kind of background writer, `go:BenchmarkAsyncJSON4Fields`),
//!   and `json_4_fields_cpu/<backend>/kubepkg` the process's CPU time over
//!   the same loop, the writer thread included: the work a synchronous
//!   logger would do on the caller's thread (vs zap's synchronous core,
//!   `go:BenchmarkSyncJSON4Fields:cpu-ns/op`). kubepkg-log-api has no
//!   synchronous mode, so CPU per record is how the two are put on the same
//!   footing.
//!
//! ```sh
//! cargo bench -p kubepkg-log-api --bench log_event
//! ```

use std::fs::File;
use std::hint::black_box;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use kubepkg_log_api::{Backend, BufferConfig, FileOutput, Format, LogConfig, OnFull, Output};
use tracing_subscriber::layer::SubscriberExt;

const CAPACITY: usize = 8192;

/// CPU time (ns) used so far by every thread of this process, from the
/// scheduler's per-thread counters in `/proc/self/task/*/schedstat`
/// (nanosecond resolution, unlike `/proc/self/stat`'s clock ticks).
fn process_cpu_ns() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(|t| t.ok())
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// The records plus the flush that gets them into the file: wall time
/// (`flush`) and CPU time of the whole process (`cpu`), both with a
/// kubepkg pipeline; `in_scope` wraps the loop (the tracing dispatch).
fn bench_flushed(
    c: &mut Criterion,
    backend: &str,
    pipeline: &kubepkg_log_api::Pipeline,
    in_scope: &dyn Fn(&mut dyn FnMut()),
    event: &dyn Fn(),
) {
    let flush = || pipeline.guard().flush().expect("flush");
    c.bench_function(&format!("json_4_fields_flush/{backend}/kubepkg"), |b| {
        b.iter_custom(|iters| {
            let mut took = Duration::ZERO;
            in_scope(&mut || {
                let start = std::time::Instant::now();
                for _ in 0..iters {
                    event();
                }
                flush();
                took = start.elapsed();
            });
            took
        })
    });
    c.bench_function(&format!("json_4_fields_cpu/{backend}/kubepkg"), |b| {
        b.iter_custom(|iters| {
            let mut took = Duration::ZERO;
            in_scope(&mut || {
                let start = process_cpu_ns();
                for _ in 0..iters {
                    event();
                }
                flush();
                took = Duration::from_nanos(process_cpu_ns().saturating_sub(start));
            });
            took
        })
    });
}

fn kubepkg(backend: Backend, path: &Path) -> kubepkg_log_api::Pipeline {
    let config = LogConfig {
        backend,
        filter: "info".to_owned(),
        format: Format::Json,
        outputs: vec![Output::File(FileOutput::new(path))],
        buffer: BufferConfig {
            capacity: CAPACITY,
            on_full: OnFull::Block,
        },
    };
    match kubepkg_log_api::build(&config) {
        Ok(pipeline) => pipeline,
        Err(e) => panic!("building the pipeline: {e}"),
    }
}

fn file(path: &Path) -> BufWriter<File> {
    BufWriter::new(File::create(path).expect("create bench log file"))
}

fn appender(
    path: &Path,
) -> (
    tracing_appender::non_blocking::NonBlocking,
    tracing_appender::non_blocking::WorkerGuard,
) {
    tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(CAPACITY)
        .lossy(false)
        .finish(file(path))
}

fn bench_tracing(c: &mut Criterion, dir: &Path) {
    let mut group = c.benchmark_group("json_4_fields/tracing");
    let event = || {
        tracing::info!(
            method = "GET",
            path = "/api/v1/namespaces/default/pods",
            status = 200u64,
            latency_ms = 1.5,
            "request handled"
        );
    };

    let pipeline = kubepkg(Backend::Tracing, &dir.join("tracing-kubepkg.log"));
    pipeline.in_scope(|| group.bench_function("kubepkg", |b| b.iter(event)));
    drop(pipeline);
    group.finish();

    let pipeline = kubepkg(Backend::Tracing, &dir.join("tracing-kubepkg-flush.log"));
    bench_flushed(
        c,
        "tracing",
        &pipeline,
        &|f: &mut dyn FnMut()| pipeline.in_scope(f),
        &event,
    );
    drop(pipeline);
    let mut group = c.benchmark_group("json_4_fields/tracing");

    let (writer, guard) = appender(&dir.join("tracing-direct.log"));
    let filter = tracing_subscriber::filter::Targets::from_str("info").expect("filter");
    let subscriber = tracing_subscriber::registry().with(filter).with(
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(writer),
    );
    tracing::subscriber::with_default(subscriber, || {
        group.bench_function("direct", |b| b.iter(event));
    });
    drop(guard);
    group.finish();
}

fn bench_slog(c: &mut Criterion, dir: &Path) {
    let mut group = c.benchmark_group("json_4_fields/slog");
    let event = |logger: &slog::Logger| {
        slog::info!(
            logger,
            "request handled";
            "method" => "GET",
            "path" => "/api/v1/namespaces/default/pods",
            "status" => 200u64,
            "latency_ms" => 1.5,
        );
    };

    let pipeline = kubepkg(Backend::Slog, &dir.join("slog-kubepkg.log"));
    let logger = pipeline.slog_logger();
    group.bench_function("kubepkg", |b| b.iter(|| event(black_box(&logger))));
    drop(logger);
    drop(pipeline);
    group.finish();

    let pipeline = kubepkg(Backend::Slog, &dir.join("slog-kubepkg-flush.log"));
    let logger = pipeline.slog_logger();
    bench_flushed(c, "slog", &pipeline, &|f: &mut dyn FnMut()| f(), &|| {
        event(black_box(&logger))
    });
    drop(logger);
    drop(pipeline);
    let mut group = c.benchmark_group("json_4_fields/slog");

    let json = slog_json::Json::new(file(&dir.join("slog-direct.log")))
        .set_newlines(true)
        .add_default_keys()
        .build();
    let (drain, guard) = slog_async::Async::new(slog::Drain::fuse(json))
        .chan_size(CAPACITY)
        .overflow_strategy(slog_async::OverflowStrategy::Block)
        .build_with_guard();
    let logger = slog::Logger::root(slog::Drain::fuse(drain), slog::o!());
    group.bench_function("direct", |b| b.iter(|| event(black_box(&logger))));
    drop(logger);
    drop(guard);
    group.finish();
}

/// A plain `log` JSON logger: what a service would write itself with
/// serde_json, streaming one object per record into the same non-blocking
/// file writer.
struct PlainJsonLogger {
    writer: tracing_appender::non_blocking::NonBlocking,
}

struct Display<'a>(&'a dyn std::fmt::Display);

impl serde::Serialize for Display<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self.0)
    }
}

struct KvToJson<'a, M>(&'a mut M);

impl<'kvs, M: serde::ser::SerializeMap> log::kv::VisitSource<'kvs> for KvToJson<'_, M> {
    fn visit_pair(
        &mut self,
        key: log::kv::Key<'kvs>,
        value: log::kv::Value<'kvs>,
    ) -> Result<(), log::kv::Error> {
        let key = key.as_str();
        let done = if let Some(s) = value.to_borrowed_str() {
            self.0.serialize_entry(key, s)
        } else if let Some(b) = value.to_bool() {
            self.0.serialize_entry(key, &b)
        } else if let Some(n) = value.to_u64() {
            self.0.serialize_entry(key, &n)
        } else if let Some(n) = value.to_i64() {
            self.0.serialize_entry(key, &n)
        } else if let Some(f) = value.to_f64() {
            self.0.serialize_entry(key, &f)
        } else {
            self.0.serialize_entry(key, &Display(&value))
        };
        done.map_err(|_| log::kv::Error::msg("serialize"))
    }
}

impl log::Log for PlainJsonLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Info
    }

    fn log(&self, record: &log::Record<'_>) {
        use serde::ser::{SerializeMap, Serializer};
        if !self.enabled(record.metadata()) {
            return;
        }
        let mut line = Vec::with_capacity(256);
        let mut ser = serde_json::Serializer::new(&mut line);
        let Ok(mut map) = ser.serialize_map(None) else {
            return;
        };
        let _ = map.serialize_entry("timestamp", &rfc3339_now());
        let _ = map.serialize_entry("level", record.level().as_str());
        let _ = map.serialize_entry("target", record.target());
        let _ = map.serialize_entry("message", &Display(record.args()));
        let _ = record.key_values().visit(&mut KvToJson(&mut map));
        let _ = map.end();
        line.push(b'\n');
        // What the fmt layer does per event: a cheap handle clone.
        let mut writer = self.writer.clone();
        let _ = writer.write_all(&line);
    }

    fn flush(&self) {}
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`, the same timestamp the crate writes.
fn rfc3339_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_micros()
    )
}

fn bench_log(c: &mut Criterion, dir: &Path) {
    // The `log!` macros consult the global maximum level even with
    // `logger:`; nothing is installed globally otherwise.
    log::set_max_level(log::LevelFilter::Info);
    let mut group = c.benchmark_group("json_4_fields/log");
    let event = |logger: &dyn log::Log| {
        log::info!(
            logger: logger,
            method = "GET",
            path = "/api/v1/namespaces/default/pods",
            status = 200u64,
            latency_ms = 1.5;
            "request handled"
        );
    };

    let pipeline = kubepkg(Backend::Log, &dir.join("log-kubepkg.log"));
    group.bench_function("kubepkg", |b| {
        b.iter(|| event(black_box(pipeline.log_logger())))
    });
    drop(pipeline);
    group.finish();

    let pipeline = kubepkg(Backend::Log, &dir.join("log-kubepkg-flush.log"));
    bench_flushed(c, "log", &pipeline, &|f: &mut dyn FnMut()| f(), &|| {
        event(black_box(pipeline.log_logger()))
    });
    drop(pipeline);
    let mut group = c.benchmark_group("json_4_fields/log");

    let (writer, guard) = appender(&dir.join("log-direct.log"));
    let direct = PlainJsonLogger { writer };
    group.bench_function("direct", |b| b.iter(|| event(black_box(&direct))));
    drop(direct);
    drop(guard);
    group.finish();
}

fn benches(c: &mut Criterion) {
    // Files are written for real and removed afterwards.
    let dir = tempfile::tempdir().expect("temp dir");
    bench_tracing(c, dir.path());
    bench_slog(c, dir.path());
    bench_log(c, dir.path());
}

criterion_group! {
    name = log_event;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    targets = benches
}
criterion_main!(log_event);
