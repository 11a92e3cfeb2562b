//! The three backends and the bridges between them.

pub(crate) mod log;
pub(crate) mod slog;
pub(crate) mod tracing;

use std::sync::Arc;

/// Lets a shared `log::Log` be installed with `log::set_boxed_logger`.
pub(crate) struct SharedLogger(pub(crate) Arc<dyn ::log::Log>);

impl ::log::Log for SharedLogger {
    fn enabled(&self, metadata: &::log::Metadata<'_>) -> bool {
        self.0.enabled(metadata)
    }
    fn log(&self, record: &::log::Record<'_>) {
        self.0.log(record);
    }
    fn flush(&self) {
        self.0.flush();
    }
}
