//! The caller's own `tracing` layers, `RUST_LOG`, and span directives in
//! filters — on scoped pipelines (no global is touched).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use kubepkg_log_api::config::{ENV_FILTER, ENV_RUST_LOG};
use kubepkg_log_api::{Backend, Builder, Capture, Format, LogConfig};
use kubepkg_util::ErrorKind;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::Context;

const BACKENDS: [Backend; 3] = [Backend::Tracing, Backend::Slog, Backend::Log];

/// One test at a time: `tracing` caches each callsite's interest for the
/// whole process, and a pipeline built, or re-filtered, on another test
/// thread rebuilds that cache while this test's events are being decided,
/// so parallel tests could see each other's filters.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

fn json_config(backend: Backend, filter: &str) -> LogConfig {
    // The `log!` macros check log's process-wide maximum first.
    log::set_max_level(log::LevelFilter::Trace);
    LogConfig {
        backend,
        filter: filter.to_owned(),
        format: Format::Json,
        ..LogConfig::default()
    }
}

/// A layer that counts the events and the spans it is shown.
#[derive(Clone, Default)]
struct Counter {
    events: Arc<AtomicUsize>,
    spans: Arc<AtomicUsize>,
}

impl<S: tracing::Subscriber> Layer<S> for Counter {
    fn on_event(&self, _: &tracing::Event<'_>, _: Context<'_, S>) {
        self.events.fetch_add(1, Ordering::SeqCst);
    }

    fn on_new_span(
        &self,
        _: &tracing::span::Attributes<'_>,
        _: &tracing::span::Id,
        _: Context<'_, S>,
    ) {
        self.spans.fetch_add(1, Ordering::SeqCst);
    }
}

impl Counter {
    fn events(&self) -> usize {
        self.events.load(Ordering::SeqCst)
    }
}

fn messages(out: &Capture) -> Vec<String> {
    out.json_lines()
        .expect("JSON lines")
        .iter()
        .map(|l| l["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn extra_layers_see_what_the_filter_lets_through_with_every_backend() {
    let _serial = serial();
    for backend in BACKENDS {
        let first = Counter::default();
        let second = Counter::default();
        let out = Capture::new();
        let pipeline = Builder::new(&json_config(backend, "info,noisy=off"))
            .writer(out.clone())
            .layer(first.clone())
            .boxed_layer(second.clone().boxed())
            .build()
            .expect("pipeline");
        pipeline.in_scope(|| {
            let span = tracing::info_span!("request", id = 1);
            let _e = span.enter();
            tracing::info!(target: "app", "one");
            tracing::warn!(target: "app", "two");
            tracing::debug!(target: "app", "filtered: debug");
            tracing::error!(target: "noisy", "filtered: noisy");
        });
        // `log` records reach the layers through the tracing dispatch
        // (except with the log backend, which writes them itself).
        log::info!(logger: pipeline.log_logger(), target: "app", "three");
        pipeline.guard().flush().expect("flush");
        let via_log = usize::from(backend != Backend::Log);
        assert_eq!(first.events(), 2 + via_log, "{backend:?}");
        assert_eq!(second.events(), 2 + via_log, "{backend:?}");
        assert_eq!(first.spans.load(Ordering::SeqCst), 1, "{backend:?}");
        // The pipeline's own output is unaffected by the extra layers.
        assert_eq!(messages(&out), ["one", "two", "three"], "{backend:?}");

        // A filter change applies to the extra layers too.
        pipeline.guard().set_filter("error").expect("set_filter");
        pipeline.in_scope(|| {
            tracing::warn!(target: "app", "filtered: warn under error");
            tracing::error!(target: "app", "four");
        });
        pipeline.guard().flush().expect("flush");
        assert_eq!(first.events(), 3 + via_log, "{backend:?}");
    }
}

#[test]
fn an_extra_layer_narrows_itself_with_its_own_filter() {
    let _serial = serial();
    let all = Counter::default();
    let errors = Counter::default();
    let out = Capture::new();
    let pipeline = Builder::new(&json_config(Backend::Tracing, "info"))
        .writer(out.clone())
        .layer(all.clone())
        .layer(errors.clone().with_filter(LevelFilter::ERROR))
        .build()
        .expect("pipeline");
    pipeline.in_scope(|| {
        tracing::info!("a");
        tracing::error!("b");
        tracing::debug!("filtered for all");
    });
    pipeline.guard().flush().expect("flush");
    assert_eq!(all.events(), 2);
    assert_eq!(errors.events(), 1);
    // A narrow extra layer does not narrow the pipeline's output.
    assert_eq!(messages(&out), ["a", "b"]);
}

#[test]
fn rust_log_is_read_when_kubepkg_log_is_unset_and_kubepkg_log_wins() {
    let _serial = serial();
    let from = |vars: &'static [(&'static str, &'static str)]| {
        let mut config = LogConfig {
            filter: "warn".to_owned(),
            ..LogConfig::default()
        };
        let res = config.apply_env_from(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        });
        (res, config.filter)
    };
    // Neither: the file's filter stays.
    assert_eq!(from(&[]).1, "warn");
    // RUST_LOG alone.
    let (res, filter) = from(&[(ENV_RUST_LOG, "debug,hyper=info")]);
    assert!(res.is_ok());
    assert_eq!(filter, "debug,hyper=info");
    // Both: KUBEPKG_LOG wins.
    let (_, filter) = from(&[(ENV_RUST_LOG, "debug"), (ENV_FILTER, "trace,kube=info")]);
    assert_eq!(filter, "trace,kube=info");
    // An empty KUBEPKG_LOG counts as unset.
    let (_, filter) = from(&[(ENV_FILTER, " "), (ENV_RUST_LOG, "error")]);
    assert_eq!(filter, "error");
    // A bad RUST_LOG is named, and nothing changes.
    let (res, filter) = from(&[(ENV_RUST_LOG, "kube=loud")]);
    let err = res.expect_err("bad RUST_LOG");
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert!(err.to_string().contains("RUST_LOG"), "{err}");
    assert_eq!(filter, "warn");
    // With both set, a bad RUST_LOG is not even read.
    let (res, filter) = from(&[(ENV_RUST_LOG, "kube=loud"), (ENV_FILTER, "info")]);
    assert!(res.is_ok());
    assert_eq!(filter, "info");
    // Span directives are accepted from the environment as from a file.
    let (res, filter) = from(&[(ENV_RUST_LOG, "warn,[request{user=ada}]=debug")]);
    assert!(res.is_ok(), "{res:?}");
    assert_eq!(filter, "warn,[request{user=ada}]=debug");
}

#[test]
fn span_directives_filter_as_env_filter_does() {
    let _serial = serial();
    let out = Capture::new();
    let filter = "warn,[request{user=ada}]=debug,app::db[query]=trace";
    let pipeline = Builder::new(&json_config(Backend::Tracing, filter))
        .writer(out.clone())
        .build()
        .expect("span directives parse");
    pipeline.in_scope(|| {
        tracing::info!(target: "app", "filtered: info outside any span");
        tracing::warn!(target: "app", "warn outside");
        {
            let span = tracing::info_span!("request", user = "ada");
            let _e = span.enter();
            tracing::debug!(target: "app", "debug inside ada's request");
            tracing::trace!(target: "app", "filtered: trace inside ada's request");
        }
        {
            let span = tracing::info_span!("request", user = "bob");
            let _e = span.enter();
            tracing::debug!(target: "app", "filtered: debug inside bob's request");
        }
        {
            let span = tracing::info_span!(target: "app::db", "query", table = "t");
            let _e = span.enter();
            tracing::trace!(target: "app::db", "trace inside a db query");
        }
        // Outside the span again: back to warn.
        tracing::debug!(target: "app", "filtered: debug after the spans");
    });
    // slog and log records have no span: only the span-free directives.
    log::info!(logger: pipeline.log_logger(), target: "app", "filtered: log info");
    log::warn!(logger: pipeline.log_logger(), target: "app", "log warn");
    slog::info!(pipeline.slog_logger(), "filtered: slog info");
    slog::warn!(pipeline.slog_logger(), "slog warn");
    pipeline.guard().flush().expect("flush");
    assert_eq!(
        messages(&out),
        [
            "warn outside",
            "debug inside ada's request",
            "trace inside a db query",
            "log warn",
            "slog warn",
        ]
    );

    // A span directive set at run time works the same way.
    out.clear();
    pipeline
        .guard()
        .set_filter("error,[job{id=7}]=info")
        .expect("set_filter with a span directive");
    pipeline.in_scope(|| {
        let span = tracing::info_span!("job", id = 7);
        let _e = span.enter();
        tracing::info!(target: "app", "info inside job 7");
        tracing::warn!(target: "app", "warn inside job 7");
        drop(_e);
        tracing::warn!(target: "app", "filtered: warn outside the job");
    });
    pipeline.guard().flush().expect("flush");
    assert_eq!(messages(&out), ["info inside job 7", "warn inside job 7"]);
}

#[test]
fn span_directives_work_with_the_slog_and_log_backends_for_tracing_events() {
    let _serial = serial();
    for backend in [Backend::Slog, Backend::Log] {
        let out = Capture::new();
        let pipeline = Builder::new(&json_config(backend, "warn,[request]=info"))
            .writer(out.clone())
            .build()
            .expect("pipeline");
        pipeline.in_scope(|| {
            tracing::info!(target: "app", "filtered: info outside");
            let span = tracing::info_span!("request");
            let _e = span.enter();
            tracing::info!(target: "app", "info inside the request");
        });
        pipeline.guard().flush().expect("flush");
        assert_eq!(messages(&out), ["info inside the request"], "{backend:?}");
    }
}

#[test]
fn malformed_span_directives_are_invalid() {
    let _serial = serial();
    for bad in ["info,[request=debug", "info,[request]=loud"] {
        let err = Builder::new(&json_config(Backend::Tracing, bad))
            .writer(Capture::new())
            .build()
            .expect_err(bad);
        assert_eq!(err.kind(), ErrorKind::Invalid, "{bad}");
    }
}
