//! Pipelines built with `build` / `build_with_writer` and used without any
//! global: many pipelines side by side in one process.

mod common;

use std::io::{self, Write};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime};

use common::{assert_timestamp_between, by_message};
use kubepkg_log_api::{
    Backend, BufferConfig, Capture, FileOutput, Format, LogConfig, OnFull, Output, build,
    build_with_writer,
};
use kubepkg_util::ErrorKind;

const BACKENDS: [Backend; 3] = [Backend::Tracing, Backend::Slog, Backend::Log];

/// The `log!` macros check `log`'s process-wide maximum level before they
/// reach any logger, even one given with `logger:`; only `init` sets it, so
/// scoped tests open it up (filtering is then the pipeline's).
fn allow_log_macros() {
    log::set_max_level(log::LevelFilter::Trace);
}

fn json_config(backend: Backend, filter: &str) -> LogConfig {
    allow_log_macros();
    LogConfig {
        backend,
        filter: filter.to_owned(),
        format: Format::Json,
        ..LogConfig::default()
    }
}

/// Logs the same record through all three families of `pipeline`.
fn log_all(pipeline: &kubepkg_log_api::Pipeline, level: log::Level, tag: &str) {
    let slog = pipeline.slog_logger();
    pipeline.in_scope(|| match level {
        log::Level::Info => tracing::info!(target: "app", "tracing {tag}"),
        log::Level::Warn => tracing::warn!(target: "app", "tracing {tag}"),
        _ => tracing::error!(target: "app", "tracing {tag}"),
    });
    log::log!(logger: pipeline.log_logger(), target: "app", level, "log {tag}");
    // Info and up only: slog compiles debug out of release builds.
    match level {
        log::Level::Info => slog::info!(slog, "slog {}", tag),
        log::Level::Warn => slog::warn!(slog, "slog {}", tag),
        _ => slog::error!(slog, "slog {}", tag),
    }
}

#[test]
fn every_backend_writes_the_same_json_fields() {
    for backend in BACKENDS {
        let out = Capture::new();
        let pipeline = build_with_writer(&json_config(backend, "info"), out.clone()).unwrap();
        let before = SystemTime::now();
        pipeline.in_scope(|| {
            let span = tracing::info_span!("job", id = 9);
            let _g = span.enter();
            tracing::error!(
                target: "app::jobs",
                name = "sync",
                count = 12u64,
                dry_run = false,
                took = 1.25,
                "tracing event"
            );
        });
        slog::info!(pipeline.slog_logger(), "slog record"; "name" => "sync", "count" => 12u64, "dry_run" => false, "took" => 1.25);
        log::warn!(logger: pipeline.log_logger(), target: "app::jobs", name = "sync", count = 12u64, dry_run = false, took = 1.25; "log record");
        pipeline.guard().flush().unwrap();
        let after = SystemTime::now();

        let lines = out.json_lines().unwrap();
        assert_eq!(lines.len(), 3, "{backend}: {lines:#?}");
        for line in &lines {
            assert_timestamp_between(&line["timestamp"], before, after);
        }
        let t = by_message(&lines, "tracing event");
        assert_eq!(t["level"], "ERROR", "{backend}");
        assert_eq!(t["target"], "app::jobs", "{backend}");
        assert_eq!(
            (&t["name"], &t["count"], &t["dry_run"], &t["took"]),
            (
                &"sync".into(),
                &12.into(),
                &false.into(),
                &serde_json::json!(1.25)
            ),
            "{backend}"
        );
        assert_eq!(
            t["span"].is_object(),
            backend == Backend::Tracing,
            "{backend}"
        );
        let s = by_message(&lines, "slog record");
        assert_eq!(s["level"], "INFO");
        assert_eq!(s["target"], module_path!());
        assert_eq!((&s["name"], &s["count"]), (&"sync".into(), &12.into()));
        assert_eq!(
            (&s["dry_run"], &s["took"]),
            (&false.into(), &serde_json::json!(1.25))
        );
        let l = by_message(&lines, "log record");
        assert_eq!(l["level"], "WARN");
        assert_eq!(l["target"], "app::jobs");
        if backend == Backend::Log {
            assert_eq!((&l["name"], &l["count"]), (&"sync".into(), &12.into()));
        }
    }
}

#[test]
fn log_and_tracing_records_reach_a_slog_sink() {
    let out = Capture::new();
    let pipeline = build_with_writer(&json_config(Backend::Slog, "info"), out.clone()).unwrap();
    log::info!(logger: pipeline.log_logger(), target: "legacy", "from the log crate");
    pipeline.in_scope(|| tracing::info!(target: "kube::client", verb = "GET", "from tracing"));
    pipeline.guard().flush().unwrap();
    let lines = out.json_lines().unwrap();
    let l = by_message(&lines, "from the log crate");
    assert_eq!(l["target"], "legacy");
    let t = by_message(&lines, "from tracing");
    assert_eq!(
        (&t["target"], &t["verb"]),
        (&"kube::client".into(), &"GET".into())
    );
    // The slog sink's own key set: the same four header keys.
    for line in [l, t] {
        let keys: Vec<&str> = line
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        for key in ["timestamp", "level", "target", "message"] {
            assert!(keys.contains(&key), "{key} missing in {line}");
        }
    }
}

#[test]
fn set_filter_changes_what_every_family_writes() {
    for backend in BACKENDS {
        let out = Capture::new();
        let pipeline = build_with_writer(&json_config(backend, "warn"), out.clone()).unwrap();
        log_all(&pipeline, log::Level::Info, "info-1");
        log_all(&pipeline, log::Level::Warn, "warn-1");
        pipeline.guard().set_filter("info,other=off").unwrap();
        log_all(&pipeline, log::Level::Info, "info-2");
        pipeline.guard().set_filter("error").unwrap();
        log_all(&pipeline, log::Level::Warn, "warn-3");
        log_all(&pipeline, log::Level::Error, "error-3");
        // A bad directive string is rejected and the filter stays.
        let err = pipeline.guard().set_filter("app=chatty").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid);
        log_all(&pipeline, log::Level::Warn, "warn-4");
        pipeline.guard().flush().unwrap();

        let lines = out.json_lines().unwrap();
        let mut got: Vec<String> = lines
            .iter()
            .map(|l| l["message"].as_str().unwrap().to_owned())
            .collect();
        got.sort();
        let mut want: Vec<String> = ["warn-1", "info-2", "error-3"]
            .iter()
            .flat_map(|tag| ["tracing", "log", "slog"].map(|f| format!("{f} {tag}")))
            .collect();
        want.sort();
        assert_eq!(got, want, "{backend}");
    }
}

#[test]
fn secrets_are_redacted_in_json() {
    for backend in BACKENDS {
        let out = Capture::new();
        let pipeline = build_with_writer(&json_config(backend, "info"), out.clone()).unwrap();
        let secret = kubepkg_util::secret::Secret::new("s3cr3t-value".to_owned());
        pipeline.in_scope(|| tracing::info!(password = ?secret, token = %secret, "login"));
        pipeline.guard().flush().unwrap();
        let raw = out.contents();
        assert!(!raw.contains("s3cr3t"), "{backend}: {raw}");
        let line = &out.json_lines().unwrap()[0];
        assert_eq!(line["password"], "[redacted]", "{backend}");
        assert_eq!(line["token"], "[redacted]", "{backend}");
    }
}

/// A writer that blocks every write until the gate opens.
#[derive(Clone)]
struct Gated {
    open: Arc<(Mutex<bool>, Condvar)>,
    out: Capture,
}

impl Gated {
    fn new() -> Self {
        Gated {
            open: Arc::new((Mutex::new(false), Condvar::new())),
            out: Capture::new(),
        }
    }

    fn open(&self) {
        let (lock, cvar) = &*self.open;
        *lock.lock().unwrap() = true;
        cvar.notify_all();
    }
}

impl Write for Gated {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let (lock, cvar) = &*self.open;
        let mut open = lock.lock().unwrap();
        while !*open {
            open = cvar.wait(open).unwrap();
        }
        drop(open);
        self.out.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_full_buffer_drops_and_counts_without_blocking() {
    const CAPACITY: usize = 8;
    const RECORDS: u64 = 200;
    for backend in BACKENDS {
        let gated = Gated::new();
        let config = LogConfig {
            buffer: BufferConfig {
                capacity: CAPACITY,
                on_full: OnFull::Drop,
            },
            ..json_config(backend, "info")
        };
        let pipeline = Arc::new(build_with_writer(&config, gated.clone()).unwrap());

        // Log from another thread while the output is stuck; if logging
        // blocked, `done` would never arrive.
        let (done_tx, done_rx) = mpsc::channel();
        let logger = pipeline.clone();
        std::thread::spawn(move || {
            let slog = logger.slog_logger();
            for i in 0..RECORDS {
                match i % 3 {
                    0 => logger.in_scope(|| tracing::info!(i, "record")),
                    1 => slog::info!(slog, "record"; "i" => i),
                    _ => log::info!(logger: logger.log_logger(), i; "record"),
                }
            }
            let _ = done_tx.send(());
        });
        done_rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("{backend}: logging blocked on a full buffer"));

        // One record may be in the writer's hands, CAPACITY in the buffer.
        let dropped = pipeline.guard().dropped();
        let cap = CAPACITY as u64;
        assert!(
            (RECORDS - cap - 1..=RECORDS - cap).contains(&dropped),
            "{backend}: dropped {dropped}"
        );

        gated.open();
        pipeline.guard().flush().unwrap();
        let lines = gated.out.json_lines().unwrap();
        let records = lines.iter().filter(|l| l["message"] == "record").count() as u64;
        assert_eq!(records, RECORDS - dropped, "{backend}");
        let reported: u64 = lines
            .iter()
            .filter(|l| l["target"] == "kubepkg_log_api")
            .map(|l| {
                assert_eq!(l["level"], "WARN");
                l["dropped"].as_u64().unwrap()
            })
            .sum();
        assert_eq!(
            reported, dropped,
            "{backend}: the drop report tells the count"
        );
    }
}

/// A writer that is slow but never stuck.
struct Slow(Capture);

impl Write for Slow {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        std::thread::sleep(Duration::from_micros(200));
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn block_policy_loses_nothing() {
    let out = Capture::new();
    let config = LogConfig {
        buffer: BufferConfig {
            capacity: 2,
            on_full: OnFull::Block,
        },
        ..json_config(Backend::Tracing, "info")
    };
    let pipeline = build_with_writer(&config, Slow(out.clone())).unwrap();
    pipeline.in_scope(|| {
        for i in 0..100 {
            tracing::info!(i, "blocking");
        }
    });
    pipeline.guard().flush().unwrap();
    assert_eq!(pipeline.guard().dropped(), 0);
    let lines = out.json_lines().unwrap();
    let seen: Vec<u64> = lines.iter().map(|l| l["i"].as_u64().unwrap()).collect();
    assert_eq!(seen, (0..100).collect::<Vec<_>>());
}

#[test]
fn dropping_the_guard_flushes() {
    allow_log_macros();
    let out = Capture::new();
    let pipeline = build_with_writer(&json_config(Backend::Log, "info"), out.clone()).unwrap();
    for i in 0..500 {
        log::info!(logger: pipeline.log_logger(), i; "queued");
    }
    let guard = pipeline.into_guard();
    drop(guard);
    assert_eq!(out.lines().len(), 500);
}

#[test]
fn text_format_is_plain_for_non_terminals() {
    for backend in BACKENDS {
        let out = Capture::new();
        let config = LogConfig {
            backend,
            format: Format::Text,
            ..LogConfig::default()
        };
        let pipeline = build_with_writer(&config, out.clone()).unwrap();
        pipeline.in_scope(|| tracing::warn!(target: "app::text", user = "ada", "hello text"));
        pipeline.guard().flush().unwrap();
        let text = out.contents();
        assert!(
            !text.contains('\x1b'),
            "{backend}: colour in a non-terminal: {text:?}"
        );
        let line = text.lines().next().unwrap();
        common::parse_rfc3339_utc(line.split_whitespace().next().unwrap());
        for part in ["WARN", "app::text", "hello text", "ada"] {
            assert!(line.contains(part), "{backend}: {part} missing in {line}");
        }
    }
}

#[test]
fn bad_configs_are_invalid() {
    let bad_filter = LogConfig {
        filter: "info,kube=loud".to_owned(),
        ..LogConfig::default()
    };
    let err = build(&bad_filter).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert!(err.to_string().contains("kube=loud"), "{err}");

    // A path below a regular file cannot be created.
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"x").unwrap();
    let unwritable = LogConfig {
        outputs: vec![Output::File(FileOutput::new(blocker.join("app.log")))],
        ..LogConfig::default()
    };
    let err = build(&unwritable).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert!(err.to_string().contains("not-a-dir"), "{err}");

    // A directory is not a file.
    let dir_as_file = LogConfig {
        outputs: vec![Output::File(FileOutput::new(dir.path()))],
        ..LogConfig::default()
    };
    assert_eq!(build(&dir_as_file).unwrap_err().kind(), ErrorKind::Invalid);

    let no_outputs = LogConfig {
        outputs: vec![],
        ..LogConfig::default()
    };
    assert_eq!(build(&no_outputs).unwrap_err().kind(), ErrorKind::Invalid);

    let zero = LogConfig {
        buffer: BufferConfig {
            capacity: 0,
            on_full: OnFull::Drop,
        },
        ..LogConfig::default()
    };
    assert_eq!(build(&zero).unwrap_err().kind(), ErrorKind::Invalid);

    let mut env = LogConfig::default();
    let err = env
        .apply_env_from(|k| (k == "KUBEPKG_LOG_BACKEND").then(|| "zap".to_owned()))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert!(err.to_string().contains("zap"), "{err}");
}
