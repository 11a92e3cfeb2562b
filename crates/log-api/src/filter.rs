//! Filter directives shared by the three families, and the run-time reload
//! handle.

use std::str::FromStr;
use std::sync::{Arc, RwLock};

use tracing::Level;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::{Registry, reload};

use crate::error::{Error, Result};

/// Parses an EnvFilter-like directive string (`info,kube=warn,a::b=debug`).
///
/// # Errors
///
/// [`Error::Invalid`] naming the directive string when it does not parse
/// (unknown level, span directives, empty string).
pub(crate) fn parse(directives: &str) -> Result<Targets> {
    if directives.trim().is_empty() {
        return Err(Error::invalid(
            "empty filter: give at least a level, e.g. `info`",
        ));
    }
    if directives.contains('[') || directives.contains('{') {
        return Err(Error::invalid(format!(
            "filter `{directives}`: span directives (`[span{{field}}]`) are not supported; \
             use `level` and `target=level` directives"
        )));
    }
    Targets::from_str(directives).map_err(|e| Error::invalid(format!("filter `{directives}`: {e}")))
}

/// The most verbose level any directive enables.
pub(crate) fn max_level(targets: &Targets) -> LevelFilter {
    let default = targets.default_level().unwrap_or(LevelFilter::OFF);
    targets
        .iter()
        .map(|(_, level)| level)
        .fold(default, std::cmp::max)
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
#[derive(Debug, Clone)]
pub(crate) struct FilterHandle {
    reload: reload::Handle<Targets, Registry>,
    shared: Arc<SharedFilter>,
    dispatch: tracing::Dispatch,
    global: Arc<std::sync::atomic::AtomicBool>,
}

impl FilterHandle {
    pub(crate) fn new(
        reload: reload::Handle<Targets, Registry>,
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
        let targets = parse(directives)?;
        let max = max_level(&targets);
        self.shared.set(targets.clone());
        // Reloading rebuilds tracing's callsite interest and global max
        // level. While only one dispatcher exists, tracing computes those
        // from the calling thread's default dispatcher, so make it ours.
        tracing::dispatcher::with_default(&self.dispatch, || self.reload.reload(targets))
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
        let t = parse("info,kube=warn,my_crate::db=debug").unwrap();
        assert!(t.would_enable("app", &Level::INFO));
        assert!(!t.would_enable("app", &Level::DEBUG));
        assert!(!t.would_enable("kube::client", &Level::INFO));
        assert!(t.would_enable("my_crate::db::pool", &Level::DEBUG));
        assert_eq!(max_level(&t), LevelFilter::DEBUG);
    }

    #[test]
    fn rejects_malformed_directives() {
        for bad in [
            "",
            "  ",
            "kube=loud",
            "info,[span]=debug",
            "kube=debug=trace",
            "info,db{x}=debug",
        ] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.kind(), kubepkg_util::ErrorKind::Invalid, "{bad}");
        }
    }
}
