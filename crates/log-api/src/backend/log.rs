//! The `log` backend: a `log::Log` sink that writes JSON lines or text, and
//! the bridges into it from `tracing` (a layer) and `slog` (a drain).

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::sync::Arc;

use tracing::{Event, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::layer::{Context, Layer};

use crate::config::Format;
use crate::fields::{KvPairs, SlogCollector, TracingFields};
use crate::filter::{SharedFilter, from_log_level, from_slog_level, to_log_level};
use crate::json;
use crate::time::Timestamp;
use crate::writer::{FLUSH_TIMEOUT, NonBlocking};

/// The `log` backend's logger.
#[derive(Debug)]
pub(crate) struct LogSink {
    pub(crate) filter: Arc<SharedFilter>,
    pub(crate) writer: NonBlocking,
    pub(crate) format: Format,
    pub(crate) color: bool,
}

thread_local! {
    static LINE: RefCell<String> = RefCell::new(String::with_capacity(512));
}

impl LogSink {
    /// Formats and queues `record` without consulting the filter.
    pub(crate) fn write_record(&self, record: &log::Record<'_>) {
        let write = |buf: &mut String| {
            buf.clear();
            if self.format_into(buf, record).is_ok() {
                self.writer.send(buf.as_bytes());
            }
        };
        let done = LINE.try_with(|cell| match cell.try_borrow_mut() {
            Ok(mut buf) => write(&mut buf),
            // Re-entered (a value's Display logged): use a fresh buffer.
            Err(_) => write(&mut String::new()),
        });
        if done.is_err() {
            write(&mut String::new());
        }
    }

    fn format_into(&self, out: &mut String, record: &log::Record<'_>) -> fmt::Result {
        let level = from_log_level(record.level());
        match self.format {
            Format::Json => {
                out.push_str("{\"timestamp\":\"");
                out.push_str(Timestamp::now().as_str());
                out.push_str("\",\"level\":\"");
                out.push_str(level.as_str());
                out.push('"');
                json::write_key(out, "target")?;
                json::write_str(out, record.target())?;
                json::write_key(out, "message")?;
                json::write_display(out, record.args())?;
                let mut visitor = JsonKv { out };
                record
                    .key_values()
                    .visit(&mut visitor)
                    .map_err(|_| fmt::Error)?;
                out.push_str("}\n");
            }
            Format::Text => {
                out.push_str(Timestamp::now().as_str());
                out.push(' ');
                if self.color {
                    write!(
                        out,
                        "\x1b[{}m{:>5}\x1b[0m",
                        level_color(record.level()),
                        level.as_str()
                    )?;
                } else {
                    write!(out, "{:>5}", level.as_str())?;
                }
                write!(out, " {}: {}", record.target(), record.args())?;
                let mut visitor = TextKv { out };
                record
                    .key_values()
                    .visit(&mut visitor)
                    .map_err(|_| fmt::Error)?;
                out.push('\n');
            }
        }
        Ok(())
    }
}

fn level_color(level: log::Level) -> u8 {
    match level {
        log::Level::Error => 31,
        log::Level::Warn => 33,
        log::Level::Info => 32,
        log::Level::Debug => 34,
        log::Level::Trace => 35,
    }
}

impl log::Log for LogSink {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.filter
            .enabled(metadata.target(), &from_log_level(metadata.level()))
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            self.write_record(record);
        }
    }

    fn flush(&self) {
        let _ = self.writer.flush(FLUSH_TIMEOUT);
    }
}

struct JsonKv<'a> {
    out: &'a mut String,
}

impl<'kvs> log::kv::VisitSource<'kvs> for JsonKv<'_> {
    fn visit_pair(
        &mut self,
        key: log::kv::Key<'kvs>,
        value: log::kv::Value<'kvs>,
    ) -> Result<(), log::kv::Error> {
        json::write_key(self.out, key.as_str())?;
        value.visit(&mut JsonValue { out: self.out })
    }
}

struct JsonValue<'a> {
    out: &'a mut String,
}

impl<'v> log::kv::VisitValue<'v> for JsonValue<'_> {
    fn visit_any(&mut self, value: log::kv::Value<'_>) -> Result<(), log::kv::Error> {
        json::write_display(self.out, &value)?;
        Ok(())
    }
    fn visit_null(&mut self) -> Result<(), log::kv::Error> {
        self.out.push_str("null");
        Ok(())
    }
    fn visit_u64(&mut self, value: u64) -> Result<(), log::kv::Error> {
        write!(self.out, "{value}")?;
        Ok(())
    }
    fn visit_i64(&mut self, value: i64) -> Result<(), log::kv::Error> {
        write!(self.out, "{value}")?;
        Ok(())
    }
    fn visit_u128(&mut self, value: u128) -> Result<(), log::kv::Error> {
        write!(self.out, "{value}")?;
        Ok(())
    }
    fn visit_i128(&mut self, value: i128) -> Result<(), log::kv::Error> {
        write!(self.out, "{value}")?;
        Ok(())
    }
    fn visit_f64(&mut self, value: f64) -> Result<(), log::kv::Error> {
        json::write_f64(self.out, value)?;
        Ok(())
    }
    fn visit_bool(&mut self, value: bool) -> Result<(), log::kv::Error> {
        write!(self.out, "{value}")?;
        Ok(())
    }
    fn visit_str(&mut self, value: &str) -> Result<(), log::kv::Error> {
        json::write_str(self.out, value)?;
        Ok(())
    }
}

struct TextKv<'a> {
    out: &'a mut String,
}

impl<'kvs> log::kv::VisitSource<'kvs> for TextKv<'_> {
    fn visit_pair(
        &mut self,
        key: log::kv::Key<'kvs>,
        value: log::kv::Value<'kvs>,
    ) -> Result<(), log::kv::Error> {
        write!(self.out, " {key}={value}")?;
        Ok(())
    }
}

/// Forwards `tracing` events into the `log` sink, fields as key-values.
/// Filtering already happened in the `tracing` subscriber.
pub(crate) struct TracingToLog {
    pub(crate) sink: Arc<LogSink>,
}

impl<S: Subscriber> Layer<S> for TracingToLog {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let mut fields = TracingFields::new(normalized.is_some());
        event.record(&mut fields);
        let kvs = KvPairs(&fields.pairs);
        self.sink.write_record(
            &log::Record::builder()
                .level(to_log_level(meta.level()))
                .target(meta.target())
                .module_path(meta.module_path())
                .file(meta.file())
                .line(meta.line())
                .key_values(&kvs)
                .args(format_args!("{}", fields.message()))
                .build(),
        );
    }
}

/// Forwards `slog` records into the `log` sink, key-values included.
pub(crate) struct SlogToLog {
    pub(crate) sink: Arc<LogSink>,
}

impl slog::Drain for SlogToLog {
    type Ok = ();
    type Err = slog::Never;

    fn log(
        &self,
        record: &slog::Record<'_>,
        values: &slog::OwnedKVList,
    ) -> Result<(), slog::Never> {
        let target = crate::backend::slog::target_of(record);
        let level = from_slog_level(record.level());
        if !self.sink.filter.enabled(target, &level) {
            return Ok(());
        }
        let pairs = SlogCollector::collect(record, values);
        let kvs = KvPairs(&pairs);
        self.sink.write_record(
            &log::Record::builder()
                .level(to_log_level(&level))
                .target(target)
                .module_path_static(Some(record.module()))
                .file_static(Some(record.file()))
                .line(Some(record.line()))
                .key_values(&kvs)
                .args(*record.msg())
                .build(),
        );
        Ok(())
    }
}
