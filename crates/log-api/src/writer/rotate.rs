//! A file writer that rotates by size or by UTC hour / day and keeps a fixed
//! number of old files.
//!
//! Each `write` call is treated as one whole record: rotation happens
//! between records, never inside one. The writer buffers; call `flush` (the
//! background writer does when it runs out of work).
//!
//! Naming: the active file is always the configured path (`app.log`), so
//! `tail -f` keeps working. Old files sit beside it:
//!
//! - size rotation: `app.log.1` (newest) ... `app.log.<keep>` (oldest);
//! - time rotation: `app.log.2024-05-01` (daily) or `app.log.2024-05-01-13`
//!   (hourly), named after the UTC period the file covers.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::{FileOutput, Rotation};
use crate::time::Civil;

/// Where a [`RotatingFile`] reads the time from. Inject a fake clock to test
/// time-based rotation without waiting for an hour to pass.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A rotating log file. See the [module docs](self).
pub struct RotatingFile {
    path: PathBuf,
    rotation: Rotation,
    max_bytes: u64,
    keep: usize,
    clock: Arc<dyn Clock>,
    file: BufWriter<File>,
    size: u64,
    period: u64,
    failed_rotations: u64,
}

impl std::fmt::Debug for RotatingFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotatingFile")
            .field("path", &self.path)
            .field("rotation", &self.rotation)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl RotatingFile {
    /// Opens (appending) or creates the file described by `output`, creating
    /// missing parent directories, with the system clock.
    ///
    /// # Errors
    ///
    /// The I/O error when the directory or file cannot be created or opened.
    pub fn open(output: &FileOutput) -> io::Result<Self> {
        Self::open_with_clock(output, Arc::new(SystemClock))
    }

    /// Like [`open`](Self::open) with the given clock.
    ///
    /// # Errors
    ///
    /// The I/O error when the directory or file cannot be created or opened.
    pub fn open_with_clock(output: &FileOutput, clock: Arc<dyn Clock>) -> io::Result<Self> {
        let path = output.path.clone();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent)?;
        }
        let file = open_append(&path)?;
        let meta = file.metadata()?;
        let size = meta.len();
        let rotation = output.rotation;
        // An existing non-empty file belongs to the period it was last
        // written in, so a restart on the next day rotates it first.
        let started = if size > 0 {
            meta.modified().unwrap_or_else(|_| clock.now())
        } else {
            clock.now()
        };
        Ok(RotatingFile {
            period: period_of(rotation, started),
            path,
            rotation,
            max_bytes: output.max_bytes.unwrap_or(u64::MAX),
            keep: output.keep,
            clock,
            file: BufWriter::with_capacity(64 * 1024, file),
            size,
            failed_rotations: 0,
        })
    }

    /// Bytes in the active file (including buffered bytes).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// How many rotations failed (a rename or open error). Records are then
    /// kept in the current file rather than lost.
    pub fn failed_rotations(&self) -> u64 {
        self.failed_rotations
    }

    fn rotate_if_needed(&mut self, incoming: u64) {
        let result = match self.rotation {
            Rotation::Never => return,
            Rotation::Size => {
                if self.size == 0 || self.size.saturating_add(incoming) <= self.max_bytes {
                    return;
                }
                self.rotate_size()
            }
            Rotation::Hourly | Rotation::Daily => {
                let now = period_of(self.rotation, self.clock.now());
                if now == self.period {
                    return;
                }
                let old = std::mem::replace(&mut self.period, now);
                if self.size == 0 {
                    return;
                }
                self.rotate_time(old)
            }
        };
        if result.is_err() {
            self.failed_rotations += 1;
        }
    }

    fn rotate_size(&mut self) -> io::Result<()> {
        self.file.flush()?;
        if self.keep == 0 {
            // No old files wanted: start over in place.
            self.file = BufWriter::with_capacity(64 * 1024, open_truncate(&self.path)?);
            self.size = 0;
            return Ok(());
        }
        for i in (1..self.keep).rev() {
            let from = numbered(&self.path, i);
            if from.exists() {
                fs::rename(&from, numbered(&self.path, i + 1))?;
            }
        }
        fs::rename(&self.path, numbered(&self.path, 1))?;
        self.reopen()?;
        // Files beyond `keep` (left from a larger `keep` earlier).
        for (n, path) in self.siblings(|suffix| suffix.parse::<usize>().ok()) {
            if n > self.keep {
                let _ = fs::remove_file(path);
            }
        }
        Ok(())
    }

    fn rotate_time(&mut self, old_period: u64) -> io::Result<()> {
        self.file.flush()?;
        let suffix = period_suffix(self.rotation, old_period);
        let mut target = suffixed(&self.path, &suffix);
        let mut n = 1;
        while target.exists() {
            target = suffixed(&self.path, &format!("{suffix}.{n}"));
            n += 1;
        }
        fs::rename(&self.path, &target)?;
        self.reopen()?;
        let mut old: Vec<(String, PathBuf)> = self.siblings(|suffix| {
            let stamp = suffix.split('.').next().unwrap_or(suffix);
            is_period_suffix(stamp).then(|| suffix.to_owned())
        });
        old.sort();
        let excess = old.len().saturating_sub(self.keep);
        for (_, path) in old.into_iter().take(excess) {
            let _ = fs::remove_file(path);
        }
        Ok(())
    }

    fn reopen(&mut self) -> io::Result<()> {
        self.file = BufWriter::with_capacity(64 * 1024, open_append(&self.path)?);
        self.size = 0;
        Ok(())
    }

    /// Files named `<file name>.<suffix>` beside the active file, with what
    /// `parse` makes of the suffix.
    fn siblings<T>(&self, parse: impl Fn(&str) -> Option<T>) -> Vec<(T, PathBuf)> {
        let Some(name) = self.path.file_name().and_then(|n| n.to_str()) else {
            return Vec::new();
        };
        let dir = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let prefix = format!("{name}.");
        let Ok(entries) = fs::read_dir(&dir) else {
            return Vec::new();
        };
        entries
            .filter_map(|entry| {
                let entry = entry.ok()?;
                let file_name = entry.file_name();
                let suffix = file_name.to_str()?.strip_prefix(&prefix)?.to_owned();
                Some((parse(&suffix)?, entry.path()))
            })
            .collect()
    }
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.rotate_if_needed(buf.len() as u64);
        self.file.write_all(buf)?;
        self.size += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

fn open_truncate(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

fn numbered(path: &Path, n: usize) -> PathBuf {
    suffixed(path, &n.to_string())
}

fn period_of(rotation: Rotation, time: SystemTime) -> u64 {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    match rotation {
        Rotation::Hourly => secs / 3600,
        Rotation::Daily => secs / 86_400,
        Rotation::Never | Rotation::Size => 0,
    }
}

fn period_suffix(rotation: Rotation, period: u64) -> String {
    let secs = match rotation {
        Rotation::Hourly => period * 3600,
        _ => period * 86_400,
    };
    let c = Civil::from_system(UNIX_EPOCH + std::time::Duration::from_secs(secs));
    match rotation {
        Rotation::Hourly => format!("{:04}-{:02}-{:02}-{:02}", c.year, c.month, c.day, c.hour),
        _ => format!("{:04}-{:02}-{:02}", c.year, c.month, c.day),
    }
}

/// `YYYY-MM-DD` or `YYYY-MM-DD-HH`.
fn is_period_suffix(s: &str) -> bool {
    let shape_ok = |pattern: &str| {
        s.len() == pattern.len()
            && s.bytes().zip(pattern.bytes()).all(|(c, p)| match p {
                b'9' => c.is_ascii_digit(),
                _ => c == p,
            })
    };
    shape_ok("9999-99-99") || shape_ok("9999-99-99-99")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn period_suffixes() {
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_714_566_896);
        assert_eq!(
            period_suffix(Rotation::Daily, period_of(Rotation::Daily, t)),
            "2024-05-01"
        );
        assert_eq!(
            period_suffix(Rotation::Hourly, period_of(Rotation::Hourly, t)),
            "2024-05-01-12"
        );
        assert!(is_period_suffix("2024-05-01"));
        assert!(is_period_suffix("2024-05-01-12"));
        assert!(!is_period_suffix("1"));
        assert!(!is_period_suffix("2024-05-01.gz"));
    }
}
