//! The `slog` backend: `slog-json` / `slog-term` formatting on the logging
//! thread into the shared non-blocking writer, and the bridge from
//! `tracing` (a layer).

use std::cell::RefCell;
use std::io::{self, Write};
use std::rc::Rc;
use std::sync::Arc;
use std::thread::LocalKey;

use slog::{Drain, Never, OwnedKVList, Record};
use slog_term::RecordDecorator as _;
use tracing::{Event, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::layer::{Context, Layer};

use crate::config::Format;
use crate::fields::TracingFields;
use crate::filter::{SharedFilter, from_slog_level, to_slog_level};
use crate::time::Timestamp;
use crate::writer::NonBlocking;

/// The target of a `slog` record: its tag when set, else its module.
pub(crate) fn target_of<'a>(record: &'a Record<'_>) -> &'a str {
    let tag = record.tag();
    if tag.is_empty() { record.module() } else { tag }
}

fn level_name(level: slog::Level) -> &'static str {
    from_slog_level(level).as_str()
}

/// A growable byte buffer shared between a thread-local formatter and the
/// code that hands the bytes to the writer.
#[derive(Clone, Default)]
struct SharedBuf(Rc<RefCell<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

type JsonDrain = slog_json::Json<SharedBuf>;
type PlainText = slog_term::FullFormat<slog_term::PlainDecorator<SharedBuf>>;
type ColorText = slog_term::FullFormat<AnsiDecorator>;

thread_local! {
    static JSON: RefCell<Option<(JsonDrain, SharedBuf)>> = const { RefCell::new(None) };
    static PLAIN: RefCell<Option<(PlainText, SharedBuf)>> = const { RefCell::new(None) };
    static COLOR: RefCell<Option<(ColorText, SharedBuf)>> = const { RefCell::new(None) };
}

fn new_json(buf: SharedBuf) -> JsonDrain {
    slog_json::Json::new(buf)
        .set_newlines(true)
        // `slog` serialises these last to first.
        .add_key_value(slog::o!(
            "message" => slog::PushFnValue(|record, ser| ser.emit(record.msg())),
            "target" => slog::PushFnValue(|record, ser| ser.emit(target_of(record))),
            "level" => slog::FnValue(|record| level_name(record.level())),
            "timestamp" => slog::PushFnValue(|_, ser| ser.emit(Timestamp::now().as_str())),
        ))
        .build()
}

fn text_timestamp(out: &mut dyn Write) -> io::Result<()> {
    out.write_all(Timestamp::now().as_str().as_bytes())
}

fn text_header(
    timestamp: &dyn slog_term::ThreadSafeTimestampFn<Output = io::Result<()>>,
    mut rd: &mut dyn slog_term::RecordDecorator,
    record: &Record<'_>,
    _use_file_location: bool,
) -> io::Result<bool> {
    rd.start_timestamp()?;
    timestamp(&mut rd)?;
    rd.start_whitespace()?;
    write!(rd, " ")?;
    rd.start_level()?;
    write!(rd, "{:>5}", level_name(record.level()))?;
    rd.start_whitespace()?;
    write!(rd, " {}: ", target_of(record))?;
    rd.start_msg()?;
    let mut counter = slog_term::CountingWriter::new(&mut rd);
    write!(counter, "{}", record.msg())?;
    Ok(counter.count() != 0)
}

fn new_plain(buf: SharedBuf) -> PlainText {
    slog_term::FullFormat::new(slog_term::PlainDecorator::new(buf))
        .use_custom_timestamp(text_timestamp)
        .use_custom_header_print(text_header)
        .build()
}

fn new_color(buf: SharedBuf) -> ColorText {
    slog_term::FullFormat::new(AnsiDecorator(buf))
        .use_custom_timestamp(text_timestamp)
        .use_custom_header_print(text_header)
        .build()
}

/// Colours the level and bolds keys with ANSI escapes.
struct AnsiDecorator(SharedBuf);

impl slog_term::Decorator for AnsiDecorator {
    fn with_record<F>(&self, record: &Record<'_>, _: &OwnedKVList, f: F) -> io::Result<()>
    where
        F: FnOnce(&mut dyn slog_term::RecordDecorator) -> io::Result<()>,
    {
        f(&mut AnsiRecord {
            buf: self.0.clone(),
            level: record.level(),
            styled: false,
        })
    }
}

struct AnsiRecord {
    buf: SharedBuf,
    level: slog::Level,
    styled: bool,
}

impl AnsiRecord {
    fn style(&mut self, code: &str) -> io::Result<()> {
        self.reset()?;
        write!(self.buf, "\x1b[{code}m")?;
        self.styled = true;
        Ok(())
    }
}

impl Write for AnsiRecord {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buf.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl slog_term::RecordDecorator for AnsiRecord {
    fn reset(&mut self) -> io::Result<()> {
        if self.styled {
            self.buf.write_all(b"\x1b[0m")?;
            self.styled = false;
        }
        Ok(())
    }

    fn start_level(&mut self) -> io::Result<()> {
        let code = match self.level {
            slog::Level::Critical | slog::Level::Error => "31",
            slog::Level::Warning => "33",
            slog::Level::Info => "32",
            slog::Level::Debug => "34",
            slog::Level::Trace => "35",
        };
        self.style(code)
    }

    fn start_key(&mut self) -> io::Result<()> {
        self.style("1")
    }
}

type Slot<D> = RefCell<Option<(D, SharedBuf)>>;

/// Formats with this thread's formatter (built on first use) and queues the
/// bytes. A re-entrant call (a value that logs while being serialised) gets
/// a fresh formatter instead.
fn format_with<D: Drain>(
    slot: &'static LocalKey<Slot<D>>,
    make: fn(SharedBuf) -> D,
    record: &Record<'_>,
    values: &OwnedKVList,
    writer: &NonBlocking,
) {
    let fresh = || {
        let buf = SharedBuf::default();
        let drain = make(buf.clone());
        let _ = drain.log(record, values);
        writer.send(&buf.0.borrow());
    };
    let done = slot.try_with(|cell| match cell.try_borrow_mut() {
        Ok(mut slot) => {
            let (drain, buf) = slot.get_or_insert_with(|| {
                let buf = SharedBuf::default();
                (make(buf.clone()), buf)
            });
            buf.0.borrow_mut().clear();
            let _ = drain.log(record, values);
            writer.send(&buf.0.borrow());
        }
        Err(_) => fresh(),
    });
    if done.is_err() {
        fresh();
    }
}

/// Formats `slog` records and queues them on the writer. Unfiltered.
#[derive(Debug, Clone)]
pub(crate) struct SlogSink {
    pub(crate) writer: NonBlocking,
    pub(crate) format: Format,
    pub(crate) color: bool,
}

impl Drain for SlogSink {
    type Ok = ();
    type Err = Never;

    fn log(&self, record: &Record<'_>, values: &OwnedKVList) -> Result<(), Never> {
        match (self.format, self.color) {
            (Format::Json, _) => format_with(&JSON, new_json, record, values, &self.writer),
            (Format::Text, false) => format_with(&PLAIN, new_plain, record, values, &self.writer),
            (Format::Text, true) => format_with(&COLOR, new_color, record, values, &self.writer),
        }
        Ok(())
    }
}

/// The root drain of the `slog` backend's logger: the shared filter, then
/// the sink.
#[derive(Debug, Clone)]
pub(crate) struct FilterDrain {
    pub(crate) filter: Arc<SharedFilter>,
    pub(crate) sink: SlogSink,
}

impl Drain for FilterDrain {
    type Ok = ();
    type Err = Never;

    fn log(&self, record: &Record<'_>, values: &OwnedKVList) -> Result<(), Never> {
        if self
            .filter
            .enabled(target_of(record), &from_slog_level(record.level()))
        {
            self.sink.log(record, values)?;
        }
        Ok(())
    }
}

/// Forwards `tracing` events to the `slog` sink; the event's target becomes
/// the record's tag, its fields the record's key-values. Filtering already
/// happened in the `tracing` subscriber.
pub(crate) struct TracingToSlog {
    pub(crate) sink: SlogSink,
    pub(crate) values: OwnedKVList,
}

impl TracingToSlog {
    pub(crate) fn new(sink: SlogSink) -> Self {
        TracingToSlog {
            sink,
            values: slog::OwnedKV(()).into(),
        }
    }
}

impl<S: Subscriber> Layer<S> for TracingToSlog {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let mut fields = TracingFields::new(normalized.is_some());
        event.record(&mut fields);
        let static_meta = event.metadata();
        let location = slog::RecordLocation {
            file: static_meta.file().unwrap_or(""),
            line: static_meta.line().unwrap_or(0),
            column: 0,
            function: "",
            module: static_meta.module_path().unwrap_or(""),
        };
        let record_static = slog::RecordStatic {
            location: &location,
            tag: meta.target(),
            level: to_slog_level(meta.level()),
        };
        let message = fields.message();
        let _ = self.sink.log(
            &Record::new(
                &record_static,
                &format_args!("{message}"),
                slog::BorrowedKV(&fields),
            ),
            &self.values,
        );
    }
}
