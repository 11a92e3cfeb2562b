//! Filter directives shared by the three families, and the run-time reload
//! handle.
//!
//! The directive string is tracing-subscriber's `EnvFilter` syntax, parsed
//! by `EnvFilter` itself: `level`, `target=level`, and span directives
//! `target[span{field=value}]=level`, which enable events inside matching
//! spans. `tracing` events are filtered by that `EnvFilter`; `slog` and
//! `log` records have no spans, so their sinks apply the directives
//! without a span part (a span directive never matches a record outside a
//! span, as in `EnvFilter`).

use std::str::FromStr;
use std::sync::{Arc, RwLock};

use tracing::Level;
use tracing_subscriber::filter::{EnvFilter, LevelFilter, Targets};
use tracing_subscriber::reload;

use crate::error::{Error, Result};

/// A parsed directive string: the `EnvFilter` for `tracing`, the span-free
/// directives for `slog` and `log` records, and the most verbose level any
/// directive enables.
pub(crate) struct Parsed {
    pub(crate) env: EnvFilter,
    pub(crate) statics: Targets,
    pub(crate) max: LevelFilter,
}

/// Parses an `EnvFilter` directive string (`info,kube=warn,a::b=debug`,
/// `warn,kube[k8s{cluster=prod}]=debug`).
///
/// # Errors
///
/// [`Error::Invalid`] naming the directive string when it does not parse
/// (unknown level, malformed span directive, empty string).
pub(crate) fn parse(directives: &str) -> Result<Parsed> {
    if directives.trim().is_empty() {
        return Err(Error::invalid(
            "empty filter: give at least a level, e.g. `info`",
        ));
    }
    let invalid = |e: &dyn std::fmt::Display| Error::invalid(format!("filter `{directives}`: {e}"));
    let env = EnvFilter::builder()
        .parse(directives)
        .map_err(|e| invalid(&e))?;
    // EnvFilter splits on commas the same way.
    let statics: Vec<&str> = directives
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty() && !d.contains('['))
        .collect();
    let statics = if statics.is_empty() {
        Targets::new()
    } else {
        Targets::from_str(&statics.join(",")).map_err(|e| invalid(&e))?
    };
    let max = env.max_level_hint().unwrap_or(LevelFilter::TRACE);
    Ok(Parsed { env, statics, max })
}

pub(crate) fn to_log_level_filter(level: LevelFilter) -> log::LevelFilter {
    match level.into_level() {
        None => log::LevelFilter::Off,
        Some(Level::ERROR) => log::LevelFilter::Error,
        Some(Level::WARN) => log::LevelFilter::Warn,
        Some(Level::INFO) => log::LevelFilter::Info,
        Some(Level::DEBUG) => log::LevelFilter::Debug,
        Some(_) => log::LevelFilter::Trace,
    }
}

pub(crate) fn from_log_level(level: log::Level) -> Level {
    match level {
        log::Level::Error => Level::ERROR,
        log::Level::Warn => Level::WARN,
        log::Level::Info => Level::INFO,
        log::Level::Debug => Level::DEBUG,
        log::Level::Trace => Level::TRACE,
    }
}

pub(crate) fn to_log_level(level: &Level) -> log::Level {
    match *level {
        Level::ERROR => log::Level::Error,
        Level::WARN => log::Level::Warn,
        Level::INFO => log::Level::Info,
        Level::DEBUG => log::Level::Debug,
        _ => log::Level::Trace,
    }
}

/// `slog::Level::Critical` has no counterpart and maps to `ERROR`.
pub(crate) fn from_slog_level(level: slog::Level) -> Level {
    match level {
        slog::Level::Critical | slog::Level::Error => Level::ERROR,
        slog::Level::Warning => Level::WARN,
        slog::Level::Info => Level::INFO,
        slog::Level::Debug => Level::DEBUG,
        slog::Level::Trace => Level::TRACE,
    }
}

pub(crate) fn to_slog_level(level: &Level) -> slog::Level {
    match *level {
        Level::ERROR => slog::Level::Error,
        Level::WARN => slog::Level::Warning,
        Level::INFO => slog::Level::Info,
        Level::DEBUG => slog::Level::Debug,
        _ => slog::Level::Trace,
    }
}

/// The filter as the `slog` and `log` sinks read it on every record.
#[derive(Debug)]
pub(crate) struct SharedFilter {
    targets: RwLock<Targets>,
}

impl SharedFilter {
    pub(crate) fn new(targets: Targets) -> Arc<Self> {
        Arc::new(SharedFilter {
            targets: RwLock::new(targets),
        })
    }

    pub(crate) fn enabled(&self, target: &str, level: &Level) -> bool {
        match self.targets.read() {
            Ok(targets) => targets.would_enable(target, level),
            Err(poisoned) => poisoned.into_inner().would_enable(target, level),
        }
    }

    fn set(&self, targets: Targets) {
        match self.targets.write() {
            Ok(mut guard) => *guard = targets,
            Err(poisoned) => *poisoned.into_inner() = targets,
        }
    }
}

/// Changes one pipeline's filter at run time, for all three families.
#[derive(Debug)]
pub(crate) struct FilterHandle<S> {
    reload: reload::Handle<EnvFilter, S>,
    shared: Arc<SharedFilter>,
    dispatch: tracing::Dispatch,
    global: Arc<std::sync::atomic::AtomicBool>,
}

impl<S> Clone for FilterHandle<S> {
    fn clone(&self) -> Self {
        FilterHandle {
            reload: self.reload.clone(),
            shared: self.shared.clone(),
            dispatch: self.dispatch.clone(),
            global: self.global.clone(),
        }
    }
}

impl<S> FilterHandle<S>
where
    S: tracing::Subscriber + 'static,
{
    pub(crate) fn new(
        reload: reload::Handle<EnvFilter, S>,
        shared: Arc<SharedFilter>,
        dispatch: tracing::Dispatch,
    ) -> Self {
        FilterHandle {
            reload,
            shared,
            dispatch,
            global: Arc::default(),
        }
    }

    /// From now on `set` also moves `log`'s process-wide maximum level.
    pub(crate) fn mark_global(&self) {
        self.global
            .store(true, std::sync::atomic::Ordering::Release);
    }

    pub(crate) fn set(&self, directives: &str) -> Result<()> {
        let Parsed { env, statics, max } = parse(directives)?;
        self.shared.set(statics);
        // Reloading rebuilds tracing's callsite interest and global max
        // level. While only one dispatcher exists, tracing computes those
        // from the calling thread's default dispatcher, so make it ours.
        tracing::dispatcher::with_default(&self.dispatch, || self.reload.reload(env))
            .map_err(|e| Error::Unavailable(format!("filter reload failed: {e}")))?;
        if self.global.load(std::sync::atomic::Ordering::Acquire) {
            log::set_max_level(to_log_level_filter(max));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_directives_and_computes_max() {
        let p = parse("info,kube=warn,my_crate::db=debug").unwrap();
        let t = &p.statics;
        assert!(t.would_enable("app", &Level::INFO));
        assert!(!t.would_enable("app", &Level::DEBUG));
        assert!(!t.would_enable("kube::client", &Level::INFO));
        assert!(t.would_enable("my_crate::db::pool", &Level::DEBUG));
        assert_eq!(p.max, LevelFilter::DEBUG);
    }

    #[test]
    fn span_directives_count_for_tracing_only() {
        let p = parse("warn,kube[k8s{cluster=prod}]=trace").unwrap();
        // The records of slog and log have no span: the static part only.
        assert!(p.statics.would_enable("kube", &Level::WARN));
        assert!(!p.statics.would_enable("kube", &Level::DEBUG));
        // The most verbose level counts the span directive.
        assert_eq!(p.max, LevelFilter::TRACE);
        // Span directives alone: nothing outside such spans.
        let p = parse("[request]=debug").unwrap();
        assert!(!p.statics.would_enable("app", &Level::ERROR));
        assert_eq!(p.max, LevelFilter::DEBUG);
    }

    #[test]
    fn rejects_malformed_directives() {
        for bad in [
            "",
            "  ",
            "kube=loud",
            "info,[span=debug",
            "kube=debug=trace",
            "info,[span]=loud",
        ] {
            let err = parse(bad).err().expect(bad);
            assert_eq!(err.kind(), kubepkg_util::ErrorKind::Invalid, "{bad}");
        }
    }
}
