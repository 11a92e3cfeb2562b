//! The `tracing` backend's JSON event format, and the bridges *into*
//! `tracing`: `slog` records (a drain) and `log` records (for scoped
//! pipelines; the global one uses `tracing_log::LogTracer`).

use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{OnceLock, RwLock};

use tracing::field::{Field, Visit};
use tracing::{Dispatch, Event, Level, Metadata, Subscriber};
use tracing_core::callsite::{self, Callsite, Identifier};
use tracing_core::field::FieldSet;
use tracing_core::metadata::Kind;
use tracing_core::subscriber::Interest;
use tracing_log::NormalizeEvent;
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

use crate::fields::{FieldValue, SlogCollector};
use crate::filter::from_slog_level;
use crate::json;
use crate::time::Timestamp;

/// JSON lines: `timestamp`, `level`, `target`, then every field (the
/// `message` included) as its own key, then `span` (the current span: its
/// `name` and fields) and `spans` (root first). Span fields come from
/// [`JsonFields`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct JsonEvent;

impl<S> FormatEvent<S, JsonFields> for JsonEvent
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let out: &mut dyn fmt::Write = &mut writer;
        out.write_str("{\"timestamp\":\"")?;
        out.write_str(Timestamp::now().as_str())?;
        out.write_str("\",\"level\":\"")?;
        out.write_str(meta.level().as_str())?;
        out.write_char('"')?;
        json::write_key(out, "target")?;
        json::write_str(out, meta.target())?;

        let mut visitor = JsonVisitor {
            out: &mut *out,
            skip_log_fields: normalized.is_some(),
            result: Ok(()),
        };
        event.record(&mut visitor);
        visitor.result?;

        let current = event
            .parent()
            .and_then(|id| ctx.span(id))
            .or_else(|| ctx.lookup_current());
        if let Some(leaf) = current {
            json::write_key(out, "span")?;
            write_span(out, &leaf)?;
            json::write_key(out, "spans")?;
            out.write_char('[')?;
            for (i, span) in leaf.scope().from_root().enumerate() {
                if i > 0 {
                    out.write_char(',')?;
                }
                write_span(out, &span)?;
            }
            out.write_char(']')?;
        }
        out.write_str("}\n")
    }
}

fn write_span<'a, R: tracing_subscriber::registry::LookupSpan<'a>>(
    out: &mut dyn fmt::Write,
    span: &tracing_subscriber::registry::SpanRef<'a, R>,
) -> fmt::Result {
    out.write_str("{\"name\":")?;
    json::write_str(out, span.name())?;
    let extensions = span.extensions();
    if let Some(fields) = extensions.get::<FormattedFields<JsonFields>>() {
        // `JsonFields` stores the span's fields as one JSON object.
        let inner = fields
            .fields
            .trim()
            .strip_prefix('{')
            .and_then(|s| s.strip_suffix('}'))
            .unwrap_or("");
        if !inner.trim().is_empty() {
            out.write_char(',')?;
            out.write_str(inner)?;
        }
    }
    out.write_char('}')
}

struct JsonVisitor<'a> {
    out: &'a mut dyn fmt::Write,
    skip_log_fields: bool,
    result: fmt::Result,
}

impl JsonVisitor<'_> {
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut dyn fmt::Write) -> fmt::Result) {
        if self.result.is_err() || (self.skip_log_fields && field.name().starts_with("log.")) {
            return;
        }
        self.result = json::write_key(self.out, field.name()).and_then(|()| value(self.out));
    }
}

impl Visit for JsonVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.field(field, |out| json::write_f64(out, value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |out| write!(out, "{value}"));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |out| write!(out, "{value}"));
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        self.field(field, |out| write!(out, "{value}"));
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        self.field(field, |out| write!(out, "{value}"));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, |out| write!(out, "{value}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, |out| json::write_str(out, value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.field(field, |out| json::write_display(out, value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, |out| json::write_debug(out, value));
    }
}

// ---------------------------------------------------------------------------
// slog -> tracing

/// A `slog` drain that turns records into `tracing` events, each field of
/// the record (and of its logger) a field of the event, under the current
/// span. With no dispatch of its own it uses the thread's default one.
///
/// `tracing` needs a static callsite per distinct (level, target, location,
/// field names); one is created and registered the first time such a record
/// is seen, so memory grows with the number of `slog` call sites, not with
/// the number of records.
#[derive(Default)]
pub(crate) struct SlogToTracing {
    // `slog` wants unwind-safe drains; a dispatch is only ever read here.
    dispatch: Option<AssertUnwindSafe<Dispatch>>,
}

impl SlogToTracing {
    pub(crate) fn new(dispatch: Option<Dispatch>) -> Self {
        SlogToTracing {
            dispatch: dispatch.map(AssertUnwindSafe),
        }
    }
}

/// At most this many fields (the message included) go through as separate
/// `tracing` fields; the rest are folded into one `extra` field.
const MAX_FIELDS: usize = 32;

impl slog::Drain for SlogToTracing {
    type Ok = ();
    type Err = slog::Never;

    fn log(
        &self,
        record: &slog::Record<'_>,
        values: &slog::OwnedKVList,
    ) -> Result<(), slog::Never> {
        match &self.dispatch {
            Some(dispatch) => forward_slog(&dispatch.0, false, record, values),
            None => tracing::dispatcher::get_default(|d| forward_slog(d, true, record, values)),
        }
        Ok(())
    }
}

fn forward_slog(
    dispatch: &Dispatch,
    use_interest: bool,
    record: &slog::Record<'_>,
    values: &slog::OwnedKVList,
) {
    let level = from_slog_level(record.level());
    // Cheap early exit before collecting fields: no dispatcher wants this
    // level at all.
    if level > tracing::level_filters::LevelFilter::current() {
        return;
    }
    let mut pairs = SlogCollector::collect(record, values);
    if pairs.len() > MAX_FIELDS - 1 {
        let rest = pairs.split_off(MAX_FIELDS - 2);
        let folded = rest
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ");
        pairs.push(("extra", FieldValue::Str(folded)));
    }
    let target = if record.tag().is_empty() {
        record.module()
    } else {
        record.tag()
    };
    let callsite = DynCallsite::get(level, target, record.file(), record.line(), &pairs);
    let meta = callsite.static_metadata();
    // The cached interest is computed against the thread's default
    // dispatcher, so it only applies when that is where the record goes.
    let never = use_interest && callsite.interest.load(Ordering::Relaxed) == INTEREST_NEVER;
    if never || !dispatch.enabled(meta) {
        return;
    }
    let message = record.msg();
    let fields = meta.fields();
    let mut iter = fields.iter();
    let Some(message_field) = iter.next() else {
        return;
    };
    let field_list: Vec<Field> = iter.collect();
    let mut entries: [(&Field, Option<&dyn tracing::Value>); MAX_FIELDS] =
        [(&message_field, None); MAX_FIELDS];
    entries[0] = (&message_field, Some(message as &dyn tracing::Value));
    for (slot, (field, (_, value))) in entries[1..]
        .iter_mut()
        .zip(field_list.iter().zip(pairs.iter()))
    {
        *slot = (field, Some(value.as_tracing_value()));
    }
    let value_set = fields.value_set(&entries);
    dispatch.event(&Event::new(meta, &value_set));
}

const INTEREST_NEVER: u8 = 0;
const INTEREST_SOMETIMES: u8 = 1;
const INTEREST_ALWAYS: u8 = 2;

struct DynCallsite {
    meta: OnceLock<Metadata<'static>>,
    interest: AtomicU8,
    key: CallsiteKey,
}

#[derive(PartialEq, Eq, Hash)]
struct CallsiteKey {
    level: Level,
    target: &'static str,
    file: &'static str,
    line: u32,
    names: &'static [&'static str],
}

static FALLBACK_CALLSITE: FallbackCallsite = FallbackCallsite;
static FALLBACK_META: Metadata<'static> = Metadata::new(
    "slog event",
    "slog",
    Level::INFO,
    None,
    None,
    None,
    FieldSet::new(&["message"], Identifier(&FALLBACK_CALLSITE)),
    Kind::EVENT,
);

struct FallbackCallsite;

impl Callsite for FallbackCallsite {
    fn set_interest(&self, _: Interest) {}
    fn metadata(&self) -> &Metadata<'_> {
        &FALLBACK_META
    }
}

impl Callsite for DynCallsite {
    fn set_interest(&self, interest: Interest) {
        let value = if interest.is_never() {
            INTEREST_NEVER
        } else if interest.is_always() {
            INTEREST_ALWAYS
        } else {
            INTEREST_SOMETIMES
        };
        self.interest.store(value, Ordering::Relaxed);
    }

    fn metadata(&self) -> &Metadata<'_> {
        self.meta.get().unwrap_or(&FALLBACK_META)
    }
}

type Registry = RwLock<HashMap<u64, Vec<&'static DynCallsite>>>;

fn registry() -> &'static Registry {
    static CALLSITES: OnceLock<Registry> = OnceLock::new();
    CALLSITES.get_or_init(Registry::default)
}

fn leak_str(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

impl DynCallsite {
    fn static_metadata(&'static self) -> &'static Metadata<'static> {
        self.meta.get().unwrap_or(&FALLBACK_META)
    }

    fn matches(
        &self,
        level: Level,
        target: &str,
        file: &str,
        line: u32,
        pairs: &[(&str, FieldValue)],
    ) -> bool {
        let k = &self.key;
        k.level == level
            && k.target == target
            && k.file == file
            && k.line == line
            && k.names.len() == pairs.len() + 1
            && k.names[1..].iter().zip(pairs).all(|(a, (b, _))| a == b)
    }

    fn get(
        level: Level,
        target: &str,
        file: &'static str,
        line: u32,
        pairs: &[(&'static str, FieldValue)],
    ) -> &'static DynCallsite {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        level.hash(&mut hasher);
        target.hash(&mut hasher);
        file.hash(&mut hasher);
        line.hash(&mut hasher);
        for (name, _) in pairs {
            name.hash(&mut hasher);
        }
        let hash = hasher.finish();
        let found = |map: &HashMap<u64, Vec<&'static DynCallsite>>| {
            map.get(&hash).and_then(|candidates| {
                candidates
                    .iter()
                    .copied()
                    .find(|cs| cs.matches(level, target, file, line, pairs))
            })
        };
        if let Some(cs) = found(&registry().read().unwrap_or_else(|p| p.into_inner())) {
            return cs;
        }
        let mut map = registry().write().unwrap_or_else(|p| p.into_inner());
        if let Some(cs) = found(&map) {
            return cs;
        }
        let names: Vec<&'static str> = std::iter::once("message")
            .chain(pairs.iter().map(|(name, _)| *name))
            .collect();
        let names: &'static [&'static str] = Box::leak(names.into_boxed_slice());
        let cs: &'static DynCallsite = Box::leak(Box::new(DynCallsite {
            meta: OnceLock::new(),
            interest: AtomicU8::new(INTEREST_SOMETIMES),
            key: CallsiteKey {
                level,
                target: leak_str(target),
                file,
                line,
                names,
            },
        }));
        let _ = cs.meta.set(Metadata::new(
            "slog event",
            cs.key.target,
            level,
            Some(file).filter(|f| !f.is_empty()),
            Some(line).filter(|l| *l > 0),
            Some(cs.key.target),
            FieldSet::new(names, Identifier(cs)),
            Kind::EVENT,
        ));
        callsite::register(cs);
        map.entry(hash).or_default().push(cs);
        cs
    }
}

// ---------------------------------------------------------------------------
// log -> tracing, for a pipeline that is not installed globally.

/// A `log::Log` that hands records to one dispatch (what `LogTracer` does
/// with the global one).
#[derive(Debug, Clone)]
pub(crate) struct LogToDispatch {
    pub(crate) dispatch: Dispatch,
}

impl log::Log for LogToDispatch {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        use tracing_log::AsTrace;
        self.dispatch.enabled(&metadata.as_trace())
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            tracing::dispatcher::with_default(&self.dispatch, || {
                let _ = tracing_log::format_trace(record);
            });
        }
    }

    fn flush(&self) {}
}
