//! [`Capture`]: an in-memory output for tests.

use std::io::{self, Write};
use std::sync::{Arc, Mutex, MutexGuard};

/// An output that keeps everything written to it in memory. Clones share
/// the same buffer: give one clone to
/// [`build_with_writer`](crate::build_with_writer) and read the other.
#[derive(Debug, Clone, Default)]
pub struct Capture {
    buf: Arc<Mutex<Vec<u8>>>,
}

impl Capture {
    /// An empty buffer.
    pub fn new() -> Self {
        Capture::default()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        self.buf
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Everything written so far, as (lossy) UTF-8.
    pub fn contents(&self) -> String {
        String::from_utf8_lossy(&self.lock()).into_owned()
    }

    /// The non-empty lines written so far.
    pub fn lines(&self) -> Vec<String> {
        self.contents()
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Every line parsed as JSON.
    ///
    /// # Errors
    ///
    /// The first line that is not valid JSON.
    pub fn json_lines(&self) -> Result<Vec<serde_json::Value>, serde_json::Error> {
        self.lines()
            .iter()
            .map(|l| serde_json::from_str(l))
            .collect()
    }

    /// Empties the buffer.
    pub fn clear(&self) {
        self.lock().clear();
    }
}

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.lock().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
