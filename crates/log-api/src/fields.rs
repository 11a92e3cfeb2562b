//! Structured fields in flight between the families: collected from a
//! `tracing` event or a `slog` record, handed to another family.

use std::fmt;

use tracing::field::{Field, Visit};

/// One field value, owned.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FieldValue {
    I64(i64),
    U64(u64),
    I128(i128),
    U128(u128),
    F64(f64),
    Bool(bool),
    /// Strings and everything recorded through `Display` / `Debug`.
    Str(String),
}

impl FieldValue {
    pub(crate) fn to_log_value(&self) -> log::kv::Value<'_> {
        match self {
            FieldValue::I64(v) => log::kv::Value::from(*v),
            FieldValue::U64(v) => log::kv::Value::from(*v),
            FieldValue::I128(v) => log::kv::Value::from(*v),
            FieldValue::U128(v) => log::kv::Value::from(*v),
            FieldValue::F64(v) => log::kv::Value::from(*v),
            FieldValue::Bool(v) => log::kv::Value::from(*v),
            FieldValue::Str(v) => log::kv::Value::from(v.as_str()),
        }
    }

    pub(crate) fn emit_slog(&self, key: slog::Key, ser: &mut dyn slog::Serializer) -> slog::Result {
        match self {
            FieldValue::I64(v) => ser.emit_i64(key, *v),
            FieldValue::U64(v) => ser.emit_u64(key, *v),
            FieldValue::I128(v) => ser.emit_i128(key, *v),
            FieldValue::U128(v) => ser.emit_u128(key, *v),
            FieldValue::F64(v) => ser.emit_f64(key, *v),
            FieldValue::Bool(v) => ser.emit_bool(key, *v),
            FieldValue::Str(v) => ser.emit_str(key, v),
        }
    }

    pub(crate) fn as_tracing_value(&self) -> &dyn tracing::Value {
        match self {
            FieldValue::I64(v) => v,
            FieldValue::U64(v) => v,
            FieldValue::I128(v) => v,
            FieldValue::U128(v) => v,
            FieldValue::F64(v) => v,
            FieldValue::Bool(v) => v,
            FieldValue::Str(v) => v,
        }
    }
}

impl fmt::Display for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldValue::I64(v) => v.fmt(f),
            FieldValue::U64(v) => v.fmt(f),
            FieldValue::I128(v) => v.fmt(f),
            FieldValue::U128(v) => v.fmt(f),
            FieldValue::F64(v) => v.fmt(f),
            FieldValue::Bool(v) => v.fmt(f),
            FieldValue::Str(v) => v.fmt(f),
        }
    }
}

/// Named fields in order.
pub(crate) type Pairs = Vec<(&'static str, FieldValue)>;

/// Collects a `tracing` event's fields. For events that came from `log`
/// (through `tracing-log`), the `log.*` bookkeeping fields are skipped.
#[derive(Debug, Default)]
pub(crate) struct TracingFields {
    pub(crate) message: Option<String>,
    pub(crate) pairs: Pairs,
    pub(crate) skip_log_fields: bool,
}

impl TracingFields {
    pub(crate) fn new(skip_log_fields: bool) -> Self {
        TracingFields {
            message: None,
            pairs: Vec::with_capacity(8),
            skip_log_fields,
        }
    }

    fn push(&mut self, field: &Field, value: FieldValue) {
        let name = field.name();
        if self.skip_log_fields && name.starts_with("log.") {
            return;
        }
        if name == "message" {
            self.message = Some(value.to_string());
        } else {
            self.pairs.push((name, value));
        }
    }

    pub(crate) fn message(&self) -> &str {
        self.message.as_deref().unwrap_or("")
    }
}

impl Visit for TracingFields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, FieldValue::F64(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, FieldValue::I64(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, FieldValue::U64(value));
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        self.push(field, FieldValue::I128(value));
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        self.push(field, FieldValue::U128(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, FieldValue::Bool(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, FieldValue::Str(value.to_owned()));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.push(field, FieldValue::Str(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push(field, FieldValue::Str(format!("{value:?}")));
    }
}

impl slog::KV for TracingFields {
    fn serialize(
        &self,
        _record: &slog::Record<'_>,
        ser: &mut dyn slog::Serializer,
    ) -> slog::Result {
        for (key, value) in &self.pairs {
            value.emit_slog(key, ser)?;
        }
        Ok(())
    }
}

/// A `log` key-value source over collected pairs.
pub(crate) struct KvPairs<'a>(pub(crate) &'a [(&'static str, FieldValue)]);

impl log::kv::Source for KvPairs<'_> {
    fn visit<'kvs>(
        &'kvs self,
        visitor: &mut dyn log::kv::VisitSource<'kvs>,
    ) -> Result<(), log::kv::Error> {
        for (key, value) in self.0 {
            visitor.visit_pair(log::kv::Key::from_str(key), value.to_log_value())?;
        }
        Ok(())
    }

    fn count(&self) -> usize {
        self.0.len()
    }
}

/// Collects a `slog` record's key-values (the record's, then the logger's).
#[derive(Debug, Default)]
pub(crate) struct SlogCollector(pub(crate) Pairs);

impl SlogCollector {
    pub(crate) fn collect(record: &slog::Record<'_>, values: &slog::OwnedKVList) -> Pairs {
        use slog::KV;
        let mut collector = SlogCollector(Vec::with_capacity(8));
        let _ = record.kv().serialize(record, &mut collector);
        let _ = values.serialize(record, &mut collector);
        collector.0
    }

    fn push(&mut self, key: slog::Key, value: FieldValue) -> slog::Result {
        self.0.push((key, value));
        Ok(())
    }
}

macro_rules! emit_as {
    ($($name:ident: $ty:ty => $variant:ident as $target:ty),* $(,)?) => {
        $(fn $name(&mut self, key: slog::Key, val: $ty) -> slog::Result {
            self.push(key, FieldValue::$variant(<$target>::from(val)))
        })*
    };
}

impl slog::Serializer for SlogCollector {
    fn emit_arguments(&mut self, key: slog::Key, val: &fmt::Arguments<'_>) -> slog::Result {
        self.push(key, FieldValue::Str(val.to_string()))
    }

    fn emit_str(&mut self, key: slog::Key, val: &str) -> slog::Result {
        self.push(key, FieldValue::Str(val.to_owned()))
    }

    fn emit_usize(&mut self, key: slog::Key, val: usize) -> slog::Result {
        self.push(key, FieldValue::U64(val as u64))
    }

    fn emit_isize(&mut self, key: slog::Key, val: isize) -> slog::Result {
        self.push(key, FieldValue::I64(val as i64))
    }

    fn emit_none(&mut self, key: slog::Key) -> slog::Result {
        self.push(key, FieldValue::Str("None".to_owned()))
    }

    fn emit_unit(&mut self, key: slog::Key) -> slog::Result {
        self.push(key, FieldValue::Str("()".to_owned()))
    }

    fn emit_char(&mut self, key: slog::Key, val: char) -> slog::Result {
        self.push(key, FieldValue::Str(val.to_string()))
    }

    emit_as! {
        emit_bool: bool => Bool as bool,
        emit_u8: u8 => U64 as u64,
        emit_u16: u16 => U64 as u64,
        emit_u32: u32 => U64 as u64,
        emit_u64: u64 => U64 as u64,
        emit_i8: i8 => I64 as i64,
        emit_i16: i16 => I64 as i64,
        emit_i32: i32 => I64 as i64,
        emit_i64: i64 => I64 as i64,
        emit_u128: u128 => U128 as u128,
        emit_i128: i128 => I128 as i128,
        emit_f32: f32 => F64 as f64,
        emit_f64: f64 => F64 as f64,
    }
}
