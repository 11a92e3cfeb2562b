//! Building a logging pipeline: the scoped [`Pipeline`], its [`LogGuard`],
//! and the [`Builder`] that adds the caller's own `tracing` layers.

use std::io::Write;
use std::sync::Arc;

use tracing::Dispatch;
use tracing_subscriber::filter::EnvFilter;
use tracing_subscriber::fmt::format::JsonFields;
use tracing_subscriber::layer::{Layered, SubscriberExt};
use tracing_subscriber::{Layer, Registry, reload};

use crate::backend::log::{LogSink, SlogToLog, TracingToLog};
use crate::backend::slog::{FilterDrain, SlogSink, TracingToSlog};
use crate::backend::tracing::{JsonEvent, LogToDispatch, SlogToTracing};
use crate::config::{Backend, Format, LogConfig};
use crate::error::{Error, Result};
use crate::filter::{self, FilterHandle, SharedFilter};
use crate::writer::{self, FLUSH_TIMEOUT, NonBlocking, Sink, WorkerGuard};

/// A caller's `tracing` layer, boxed: OpenTelemetry, metrics, error
/// reporting… Most layers are generic over their subscriber, so
/// `layer.boxed()` (from `tracing_subscriber::Layer`) makes one. See
/// [`Builder::layer`].
pub type ExtraLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// The registry with the caller's layers on it. `None` without any:
/// tracing-subscriber treats an absent layer as no layer, whereas an empty
/// `Vec` layer would answer "never interested" and switch everything off.
type Extras = Layered<Option<Vec<ExtraLayer>>, Registry>;
/// …and the pipeline's filter, which decides for every layer.
type Base = Layered<reload::Layer<EnvFilter, Extras>, Extras>;
type BoxedLayer = Box<dyn Layer<Base> + Send + Sync>;
/// The filter handle of a pipeline.
pub(crate) type Handle = FilterHandle<Extras>;

/// A complete logging pipeline that is not installed anywhere: a `tracing`
/// dispatch, a `slog` logger and a `log` logger, all writing through the
/// same filter, format and background writer.
///
/// Use it in tests (many pipelines in one process, each with its own
/// output) or to install it yourself. [`init`](crate::init) builds one and
/// installs it process-wide.
///
/// - `tracing`: [`dispatch`](Self::dispatch) with
///   `tracing::dispatcher::with_default` / `set_default`, or
///   [`in_scope`](Self::in_scope).
/// - `slog`: [`slog_logger`](Self::slog_logger).
/// - `log`: [`log_logger`](Self::log_logger), e.g.
///   `log::info!(logger: pipeline.log_logger(), "...")`; a `log` logger can
///   only be global, so the `log!` macros without `logger:` reach a
///   pipeline only through [`init`](crate::init).
pub struct Pipeline {
    backend: Backend,
    dispatch: Dispatch,
    slog: slog::Logger,
    log: Arc<dyn log::Log>,
    max_level: log::LevelFilter,
    guard: LogGuard,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("backend", &self.backend)
            .field("guard", &self.guard)
            .finish_non_exhaustive()
    }
}

impl Pipeline {
    /// The backend that owns the output.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The `tracing` dispatch: every backend has one, forwarding events to
    /// the backend's sink.
    pub fn dispatch(&self) -> &Dispatch {
        &self.dispatch
    }

    /// Runs `f` with this pipeline as the thread's default `tracing`
    /// dispatch.
    pub fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        tracing::dispatcher::with_default(&self.dispatch, f)
    }

    /// A `slog` logger writing into this pipeline.
    pub fn slog_logger(&self) -> slog::Logger {
        self.slog.clone()
    }

    /// A `log` logger writing into this pipeline. Note that the `log!`
    /// macros, even with `logger:`, first check `log`'s process-wide
    /// maximum level (`log::max_level()`), which only [`init`](crate::init)
    /// sets; call `log::set_max_level` yourself when using a scoped pipeline.
    pub fn log_logger(&self) -> &dyn log::Log {
        &*self.log
    }

    /// The guard: flush, drop count, run-time filter changes.
    pub fn guard(&self) -> &LogGuard {
        &self.guard
    }

    /// Gives up the loggers and keeps the guard (what [`init`](crate::init)
    /// returns once the loggers are installed).
    pub fn into_guard(self) -> LogGuard {
        self.guard
    }

    pub(crate) fn log_arc(&self) -> Arc<dyn log::Log> {
        self.log.clone()
    }

    pub(crate) fn max_log_level(&self) -> log::LevelFilter {
        self.max_level
    }
}

/// Keeps a pipeline's background writer alive. Dropping it writes what is
/// still queued, reports dropped records, flushes the outputs and stops the
/// writer thread (waiting at most 5 seconds for a stuck output). Records
/// logged after that are counted as dropped.
#[must_use = "dropping the guard stops the log writer"]
pub struct LogGuard {
    writer: NonBlocking,
    filter: Handle,
    worker: WorkerGuard,
}

impl std::fmt::Debug for LogGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogGuard")
            .field("dropped", &self.dropped())
            .field("write_errors", &self.write_errors())
            .finish_non_exhaustive()
    }
}

impl LogGuard {
    /// Waits until every record queued before the call is written and the
    /// outputs are flushed (at most 5 seconds). A pending count of dropped
    /// records is written first.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when the writer did not get there in time,
    /// [`Error::Unavailable`] when it has stopped.
    pub fn flush(&self) -> Result<()> {
        self.writer.flush(FLUSH_TIMEOUT)
    }

    /// How many records were dropped so far because the buffer was full
    /// (policy `drop`) or the writer had stopped.
    pub fn dropped(&self) -> u64 {
        self.worker.dropped()
    }

    /// How many writes or flushes to an output failed.
    pub fn write_errors(&self) -> u64 {
        self.worker.write_errors()
    }

    /// Replaces this pipeline's filter, for all three families, e.g.
    /// `guard.set_filter("debug,kube=info")`.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] for a malformed directive string; the old filter
    /// stays.
    pub fn set_filter(&self, directives: &str) -> Result<()> {
        self.filter.set(directives)
    }

    pub(crate) fn filter_handle(&self) -> &Handle {
        &self.filter
    }
}

/// Builds a pipeline from `config` without installing anything globally.
///
/// Opens the outputs (creating missing directories for file outputs) and
/// starts the background writer thread. [`Builder`] does the same with the
/// caller's own `tracing` layers added.
///
/// # Errors
///
/// [`Error::Invalid`] for a bad filter, empty outputs, bad rotation
/// settings or a file that cannot be opened for writing.
pub fn build(config: &LogConfig) -> Result<Pipeline> {
    Builder::new(config).build()
}

/// Builds a pipeline from `config` that writes to `writer` instead of the
/// configured outputs (never coloured). Useful with [`Capture`](crate::Capture)
/// in tests.
///
/// # Errors
///
/// [`Error::Invalid`] for a bad filter or buffer capacity.
pub fn build_with_writer<W>(config: &LogConfig, writer: W) -> Result<Pipeline>
where
    W: Write + Send + 'static,
{
    Builder::new(config).writer(writer).build()
}

/// Builds a [`Pipeline`] with the caller's own `tracing` layers beside the
/// pipeline's output: an OpenTelemetry exporter, metrics from events, an
/// error reporter. [`build`], [`build_with_writer`] and
/// [`init`](crate::init) are shortcuts for it.
///
/// The extra layers see the spans and events that the pipeline's filter
/// lets through (narrow them further with `Layer::with_filter`), with every
/// backend: `tracing` events and spans, `log` records (through
/// `LogTracer`) with the `tracing` and `slog` backends, and `slog` records
/// with the `tracing` backend. A filter change ([`LogGuard::set_filter`])
/// applies to them too.
///
/// ```
/// use kubepkg_log_api::{Builder, Capture, LogConfig};
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use tracing_subscriber::Layer;
///
/// /// Counts the events it sees.
/// struct Count(Arc<AtomicUsize>);
/// impl<S: tracing::Subscriber> Layer<S> for Count {
///     fn on_event(&self, _: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
///         self.0.fetch_add(1, Ordering::Relaxed);
///     }
/// }
///
/// let seen = Arc::new(AtomicUsize::new(0));
/// let out = Capture::new();
/// let pipeline = Builder::new(&LogConfig::default())
///     .writer(out.clone())
///     .layer(Count(seen.clone()))
///     .build()?;
/// pipeline.in_scope(|| {
///     tracing::info!("counted and written");
///     tracing::debug!("filtered out for both");
/// });
/// pipeline.guard().flush()?;
/// assert_eq!(seen.load(Ordering::Relaxed), 1);
/// assert_eq!(out.lines().len(), 1);
/// # Ok::<(), kubepkg_log_api::Error>(())
/// ```
#[must_use = "a builder does nothing until `build` or `init`"]
pub struct Builder<'a> {
    config: &'a LogConfig,
    writer: Option<Sink>,
    layers: Vec<ExtraLayer>,
}

impl std::fmt::Debug for Builder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("config", &self.config)
            .field("writer", &self.writer.is_some())
            .field("layers", &self.layers.len())
            .finish()
    }
}

impl<'a> Builder<'a> {
    /// A builder for the pipeline `config` describes.
    pub fn new(config: &'a LogConfig) -> Self {
        Builder {
            config,
            writer: None,
            layers: Vec::new(),
        }
    }

    /// Writes to `writer` instead of the configured outputs (never
    /// coloured), as [`build_with_writer`] does.
    pub fn writer<W>(mut self, writer: W) -> Self
    where
        W: Write + Send + 'static,
    {
        self.writer = Some(Box::new(writer));
        self
    }

    /// Adds a `tracing` layer of the caller's (see the type docs). Layers
    /// are called in the order they were added, before the pipeline's own
    /// output.
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: Layer<Registry> + Send + Sync + 'static,
    {
        self.layers.push(Box::new(layer));
        self
    }

    /// Adds an already boxed layer.
    pub fn boxed_layer(mut self, layer: ExtraLayer) -> Self {
        self.layers.push(layer);
        self
    }

    /// Builds the pipeline without installing anything globally.
    ///
    /// # Errors
    ///
    /// As [`build`] (or [`build_with_writer`] with a writer).
    pub fn build(self) -> Result<Pipeline> {
        let config = self.config;
        match self.writer {
            Some(writer) => {
                filter::parse(&config.filter)?;
                if config.buffer.capacity == 0 {
                    return Err(Error::invalid("`buffer.capacity` must be at least 1"));
                }
                assemble(config, vec![writer], false, self.layers)
            }
            None => {
                config.validate()?;
                let (sinks, all_terminals) = writer::open_outputs(config)?;
                let color = config.format == Format::Text && all_terminals;
                assemble(config, sinks, color, self.layers)
            }
        }
    }

    /// Builds the pipeline and installs it process-wide, as
    /// [`init`](crate::init) does.
    ///
    /// # Errors
    ///
    /// As [`init`](crate::init).
    pub fn init(self) -> Result<LogGuard> {
        crate::init_with(self)
    }
}

fn assemble(
    config: &LogConfig,
    sinks: Vec<Sink>,
    color: bool,
    extras: Vec<ExtraLayer>,
) -> Result<Pipeline> {
    let filter::Parsed { env, statics, max } = filter::parse(&config.filter)?;
    let max_level = filter::to_log_level_filter(max);
    let (writer, worker) = writer::spawn(
        sinks,
        config.buffer.capacity,
        config.buffer.on_full,
        config.format,
    )?;
    let shared = SharedFilter::new(statics);
    let (reload_layer, reload_handle) = reload::Layer::new(env);
    let extras = (!extras.is_empty()).then_some(extras);
    let base: Base = Registry::default().with(extras).with(reload_layer);

    let (dispatch, slog, log): (Dispatch, slog::Logger, Arc<dyn log::Log>) = match config.backend {
        Backend::Tracing => {
            let layer: BoxedLayer = match config.format {
                Format::Json => Box::new(
                    tracing_subscriber::fmt::layer()
                        .fmt_fields(JsonFields::new())
                        .event_format(JsonEvent)
                        .with_writer(writer.clone()),
                ),
                Format::Text => Box::new(
                    tracing_subscriber::fmt::layer()
                        .with_ansi(color)
                        .with_writer(writer.clone()),
                ),
            };
            let dispatch = Dispatch::new(base.with(layer));
            let slog = slog::Logger::root(SlogToTracing::new(Some(dispatch.clone())), slog::o!());
            let log = Arc::new(LogToDispatch {
                dispatch: dispatch.clone(),
            });
            (dispatch, slog, log)
        }
        Backend::Slog => {
            let sink = SlogSink {
                writer: writer.clone(),
                format: config.format,
                color,
            };
            let dispatch = Dispatch::new(base.with(TracingToSlog::new(sink.clone())));
            let slog = slog::Logger::root(
                FilterDrain {
                    filter: shared.clone(),
                    sink,
                },
                slog::o!(),
            );
            let log = Arc::new(LogToDispatch {
                dispatch: dispatch.clone(),
            });
            (dispatch, slog, log)
        }
        Backend::Log => {
            let sink = Arc::new(LogSink {
                filter: shared.clone(),
                writer: writer.clone(),
                format: config.format,
                color,
            });
            let dispatch = Dispatch::new(base.with(TracingToLog { sink: sink.clone() }));
            let slog = slog::Logger::root(SlogToLog { sink: sink.clone() }, slog::o!());
            (dispatch, slog, sink)
        }
    };

    let filter = FilterHandle::new(reload_handle, shared, dispatch.clone());
    Ok(Pipeline {
        backend: config.backend,
        dispatch,
        slog,
        log,
        max_level,
        guard: LogGuard {
            writer,
            filter,
            worker,
        },
    })
}
