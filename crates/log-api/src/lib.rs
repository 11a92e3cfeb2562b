//! # kubepkg_log_api
//!
//! One logging configuration and one global init for the three Rust logging
//! families, `tracing`, `slog` and `log`, so that a service's own records and
//! those of its dependencies (kube, lapin and bollard log through `tracing`
//! and `log`) land in the same place, in the same format, under the same
//! filter.
//!
//! - [`LogConfig`] is plain serde data for the application's config file
//!   (TOML or YAML) with environment overrides (`KUBEPKG_LOG=info,kube=warn`
//!   or else `RUST_LOG`, `KUBEPKG_LOG_FORMAT=json`, `KUBEPKG_LOG_BACKEND=slog`).
//! - [`init`] installs the pipeline process-wide, once, and returns a
//!   [`LogGuard`] that flushes on drop. [`slog_logger`] hands out the global
//!   `slog::Logger`; [`set_filter`] changes the filter at run time.
//! - [`build`] / [`build_with_writer`] make the same [`Pipeline`] without
//!   touching any global, for tests and custom installs; [`Builder`] adds
//!   the caller's own `tracing` layers (OpenTelemetry, metrics, error
//!   reporting) under the same filter.
//!
//! ## Filters
//!
//! The filter is tracing-subscriber's `EnvFilter` syntax, parsed by
//! `EnvFilter`: `info,kube=warn`, and span directives such as
//! `warn,kubepkg_k8s_api[k8s{cluster=prod}]=debug` (debug events inside a
//! `k8s` span whose `cluster` field is `prod`). `slog` and `log` records
//! carry no spans, so only the span-free directives apply to them. The
//! filter comes from the config file, then `KUBEPKG_LOG`, or `RUST_LOG`
//! when `KUBEPKG_LOG` is unset (see [`LogConfig::apply_env`]).
//!
//! ## Backends and bridges
//!
//! | backend | output written by | `tracing` events | `log` records | `slog` records |
//! |---|---|---|---|---|
//! | `tracing` (default) | `tracing-subscriber` fmt layer | direct | `tracing-log`'s `LogTracer` | drain → `tracing` event |
//! | `slog` | `slog-json` / `slog-term` | layer → `slog` record | `LogTracer` → layer | direct |
//! | `log` | this crate's `log::Log` | layer → `log` record | direct | drain → `log` record |
//!
//! Structured fields survive every bridge except `log` → `tracing`
//! (`tracing-log` carries only the message and target). Only the `tracing`
//! backend writes span context.
//!
//! ## JSON lines
//!
//! Every backend writes one object per line with `timestamp` (RFC 3339,
//! UTC, microseconds), `level` (`ERROR`, `WARN`, `INFO`, `DEBUG`, `TRACE`;
//! `slog`'s `CRITICAL` maps to `ERROR`), `target`, `message`, and each field
//! as its own key. The `tracing` backend adds `span` (the current span's
//! `name` and fields) and `spans` (all open spans, root first). Values
//! logged through `Debug`/`Display` appear as their formatting, so a
//! `kubepkg_util::Secret` shows as `[redacted]`.
//!
//! ## Writing
//!
//! Records are formatted on the logging thread and written by one
//! background thread through a bounded buffer; see [`writer`] for the
//! `on_full` policy and [`writer::rotate`] for file rotation.
//!
//! ## Example
//!
//! ```
//! use kubepkg_log_api::{Capture, LogConfig, build_with_writer};
//!
//! let mut config: LogConfig = toml::from_str(
//!     r#"
//!     backend = "tracing"
//!     filter = "info,noisy=warn"
//!     format = "json"
//!     "#,
//! )?;
//! config.apply_env()?; // KUBEPKG_LOG=... etc. win over the file
//!
//! let out = Capture::new();
//! let pipeline = build_with_writer(&config, out.clone())?;
//! pipeline.in_scope(|| {
//!     let span = tracing::info_span!("request", id = 7);
//!     let _entered = span.enter();
//!     tracing::info!(user = "ada", attempts = 3, "signed in");
//!     tracing::info!(target: "noisy", "filtered out");
//! });
//! slog::info!(pipeline.slog_logger(), "from slog"; "bucket" => "logs");
//! pipeline.guard().flush()?;
//!
//! let lines = out.json_lines()?;
//! assert_eq!(lines.len(), 2);
//! assert_eq!(lines[0]["message"], "signed in");
//! assert_eq!(lines[0]["attempts"], 3);
//! assert_eq!(lines[0]["span"]["id"], 7);
//! assert_eq!(lines[1]["bucket"], "logs");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]
// docs.rs (`--cfg docsrs`, nightly): each item badged with the feature it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod backend;
pub mod capture;
pub mod config;
pub mod error;
mod fields;
mod filter;
mod json;
mod pipeline;
mod time;
pub mod writer;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

pub use capture::Capture;
pub use config::{Backend, BufferConfig, FileOutput, Format, LogConfig, OnFull, Output, Rotation};
pub use error::{Error, Result};
pub use pipeline::{Builder, ExtraLayer, LogGuard, Pipeline, build, build_with_writer};

static CLAIMED: AtomicBool = AtomicBool::new(false);
static GLOBAL: OnceLock<Global> = OnceLock::new();

struct Global {
    filter: pipeline::Handle,
    slog: slog::Logger,
}

/// Builds the pipeline described by `config` and installs it for the whole
/// process: the global `tracing` dispatcher, the `log` logger (a
/// `LogTracer`, or this crate's logger for the `log` backend) and the
/// logger [`slog_logger`] returns.
///
/// Keep the returned guard alive until the end of `main`: dropping it
/// flushes and stops the writer.
///
/// ```
/// use kubepkg_log_api::{LogConfig, init};
/// use kubepkg_util::ErrorKind;
///
/// let guard = init(&LogConfig::default())?;
/// tracing::info!(answer = 42, "from tracing");
/// log::warn!("from log");
/// slog::info!(kubepkg_log_api::slog_logger(), "from slog");
///
/// // Once per process.
/// let again = init(&LogConfig::default()).unwrap_err();
/// assert_eq!(again.kind(), ErrorKind::AlreadyExists);
/// drop(guard);
/// # Ok::<(), kubepkg_log_api::Error>(())
/// ```
///
/// # Errors
///
/// - [`Error::AlreadyExists`] on a second call, or when another global
///   `tracing` subscriber or `log` logger is already installed;
/// - [`Error::Invalid`] for a bad configuration (see [`build`]); nothing is
///   installed and `init` may be called again.
pub fn init(config: &LogConfig) -> Result<LogGuard> {
    init_with(Builder::new(config))
}

/// [`init`] from a [`Builder`] (what [`Builder::init`] calls).
fn init_with(builder: Builder<'_>) -> Result<LogGuard> {
    if CLAIMED.swap(true, Ordering::AcqRel) {
        return Err(Error::AlreadyExists(
            "kubepkg_log_api::init was already called in this process".to_owned(),
        ));
    }
    let (result, release) = install(builder);
    if release {
        CLAIMED.store(false, Ordering::Release);
    }
    result
}

/// Returns the result and whether nothing global was touched (so a later
/// `init` may try again).
fn install(builder: Builder<'_>) -> (Result<LogGuard>, bool) {
    let pipeline = match builder.build() {
        Ok(p) => p,
        Err(e) => return (Err(e), true),
    };
    if tracing::dispatcher::has_been_set() {
        return (
            Err(Error::AlreadyExists(
                "a global tracing subscriber is already installed".to_owned(),
            )),
            true,
        );
    }
    let max = pipeline.max_log_level();
    let installed_log = match pipeline.backend() {
        Backend::Log => log::set_boxed_logger(Box::new(backend::SharedLogger(pipeline.log_arc()))),
        Backend::Tracing | Backend::Slog => {
            tracing_log::LogTracer::builder().with_max_level(max).init()
        }
    };
    if installed_log.is_err() {
        return (
            Err(Error::AlreadyExists(
                "a global `log` logger is already installed".to_owned(),
            )),
            true,
        );
    }
    log::set_max_level(max);
    if tracing::dispatcher::set_global_default(pipeline.dispatch().clone()).is_err() {
        return (
            Err(Error::AlreadyExists(
                "a global tracing subscriber is already installed".to_owned(),
            )),
            false,
        );
    }
    let filter = pipeline.guard().filter_handle().clone();
    filter.mark_global();
    let _ = GLOBAL.set(Global {
        filter,
        slog: pipeline.slog_logger(),
    });
    (Ok(pipeline.into_guard()), false)
}

/// The process-wide `slog` logger: after [`init`], the installed pipeline's
/// logger; before, a logger that forwards every record to the current
/// `tracing` dispatcher (so records logged early still land once `init`
/// has run).
pub fn slog_logger() -> slog::Logger {
    match GLOBAL.get() {
        Some(global) => global.slog.clone(),
        None => slog::Logger::root(backend::tracing::SlogToTracing::new(None), slog::o!()),
    }
}

/// Changes the filter of the pipeline installed by [`init`], for all three
/// families, e.g. `set_filter("debug,kube=info")`.
///
/// # Errors
///
/// [`Error::NotInitialized`] before [`init`]; [`Error::Invalid`] for a
/// malformed directive string (the old filter stays).
pub fn set_filter(directives: &str) -> Result<()> {
    GLOBAL
        .get()
        .ok_or(Error::NotInitialized)?
        .filter
        .set(directives)
}

#[cfg(test)]
mod tests {
    #[test]
    fn pipeline_and_guard_are_shareable() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<crate::Pipeline>();
        assert_send_sync::<crate::LogGuard>();
    }
}
