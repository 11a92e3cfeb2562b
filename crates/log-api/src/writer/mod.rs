//! Output writers: the bounded non-blocking writer every backend formats
//! into, and the rotating file under it.
//!
//! Logging threads format a record in full, then hand the bytes to one
//! background thread through a bounded channel ([`BufferConfig`]). That
//! thread writes to every output and flushes whenever it runs out of work.
//! When the channel is full, [`OnFull::Drop`] drops the new record and counts
//! it; [`OnFull::Block`] waits. The count of dropped records is written as a
//! `WARN` record (target `kubepkg_log_api`) when the writer catches up, at
//! every flush and when the pipeline's guard drops.
//!
//! [`BufferConfig`]: crate::config::BufferConfig

pub mod rotate;

use std::io::{self, BufWriter, IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing_subscriber::fmt::MakeWriter;

use crate::config::{Format, LogConfig, OnFull, Output};
use crate::error::{Error, Result};
use crate::json;
use crate::time::Timestamp;

/// How long flushing and shutting down wait for the writer thread.
pub(crate) const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

enum Msg {
    Line(Vec<u8>),
    Flush(SyncSender<()>),
    Shutdown,
}

#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) dropped: AtomicU64,
    pub(crate) write_errors: AtomicU64,
}

/// The sending half: cheap to clone, handed to every formatter.
#[derive(Clone)]
pub(crate) struct NonBlocking {
    tx: SyncSender<Msg>,
    on_full: OnFull,
    stats: Arc<Stats>,
}

impl std::fmt::Debug for NonBlocking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonBlocking")
            .field("on_full", &self.on_full)
            .finish_non_exhaustive()
    }
}

impl NonBlocking {
    /// Queues one whole record.
    pub(crate) fn send(&self, record: &[u8]) {
        let msg = Msg::Line(record.to_vec());
        let delivered = match self.on_full {
            OnFull::Drop => self.tx.try_send(msg).is_ok(),
            OnFull::Block => self.tx.send(msg).is_ok(),
        };
        if !delivered {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits until everything queued before this call is written and the
    /// outputs are flushed.
    pub(crate) fn flush(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let (ack_tx, ack_rx) = mpsc::sync_channel(1);
        send_until(&self.tx, Msg::Flush(ack_tx), deadline)?;
        let left = deadline.saturating_duration_since(Instant::now());
        ack_rx.recv_timeout(left).map_err(|e| match e {
            mpsc::RecvTimeoutError::Timeout => {
                Error::Timeout(format!("log writer did not flush within {timeout:?}"))
            }
            mpsc::RecvTimeoutError::Disconnected => {
                Error::Unavailable("log writer has shut down".to_owned())
            }
        })
    }
}

fn send_until(tx: &SyncSender<Msg>, mut msg: Msg, deadline: Instant) -> Result<()> {
    loop {
        match tx.try_send(msg) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Disconnected(_)) => {
                return Err(Error::Unavailable("log writer has shut down".to_owned()));
            }
            Err(TrySendError::Full(back)) => {
                if Instant::now() >= deadline {
                    return Err(Error::Timeout(
                        "log buffer stayed full; the writer is stuck".to_owned(),
                    ));
                }
                msg = back;
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

impl Write for &NonBlocking {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.send(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for NonBlocking {
    type Writer = &'a NonBlocking;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

/// Owns the writer thread; flushes and stops it on drop.
pub(crate) struct WorkerGuard {
    tx: SyncSender<Msg>,
    stats: Arc<Stats>,
    // A mutex only to make the guard `Sync`; used once, on shutdown.
    done: std::sync::Mutex<Receiver<()>>,
    handle: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for WorkerGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerGuard")
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

impl WorkerGuard {
    pub(crate) fn dropped(&self) -> u64 {
        self.stats.dropped.load(Ordering::Relaxed)
    }

    pub(crate) fn write_errors(&self) -> u64 {
        self.stats.write_errors.load(Ordering::Relaxed)
    }

    fn shutdown(&mut self, timeout: Duration) {
        let Some(handle) = self.handle.take() else {
            return;
        };
        let deadline = Instant::now() + timeout;
        if send_until(&self.tx, Msg::Shutdown, deadline).is_err() {
            // Stuck output: leave the thread behind rather than hang.
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        if done.recv_timeout(left).is_ok() {
            let _ = handle.join();
        }
    }
}

impl Drop for WorkerGuard {
    fn drop(&mut self) {
        self.shutdown(FLUSH_TIMEOUT);
    }
}

/// One output the writer thread writes to.
pub(crate) type Sink = Box<dyn Write + Send>;

/// Opens the configured outputs. Returns the sinks and whether all of them
/// are terminals (the condition for colour).
pub(crate) fn open_outputs(config: &LogConfig) -> Result<(Vec<Sink>, bool)> {
    let mut sinks: Vec<Sink> = Vec::with_capacity(config.outputs.len());
    let mut all_terminals = true;
    for output in &config.outputs {
        match output {
            Output::Stdout => {
                all_terminals &= io::stdout().is_terminal();
                sinks.push(Box::new(BufWriter::with_capacity(64 * 1024, io::stdout())));
            }
            Output::Stderr => {
                all_terminals &= io::stderr().is_terminal();
                sinks.push(Box::new(BufWriter::with_capacity(64 * 1024, io::stderr())));
            }
            Output::File(file) => {
                all_terminals = false;
                let writer = rotate::RotatingFile::open(file).map_err(|e| {
                    Error::invalid(format!(
                        "file output {} cannot be opened for writing: {e}",
                        file.path.display()
                    ))
                })?;
                sinks.push(Box::new(writer));
            }
        }
    }
    Ok((sinks, all_terminals))
}

/// Starts the writer thread.
pub(crate) fn spawn(
    sinks: Vec<Sink>,
    capacity: usize,
    on_full: OnFull,
    format: Format,
) -> Result<(NonBlocking, WorkerGuard)> {
    let (tx, rx) = mpsc::sync_channel(capacity);
    let (done_tx, done) = mpsc::sync_channel(1);
    let stats = Arc::new(Stats::default());
    let mut worker = Worker {
        sinks,
        rx,
        stats: stats.clone(),
        format,
        reported: 0,
    };
    let handle = std::thread::Builder::new()
        .name("kubepkg-log-writer".to_owned())
        .spawn(move || {
            worker.run();
            let _ = done_tx.send(());
        })
        .map_err(|e| Error::Unavailable(format!("cannot start the log writer thread: {e}")))?;
    Ok((
        NonBlocking {
            tx: tx.clone(),
            on_full,
            stats: stats.clone(),
        },
        WorkerGuard {
            tx,
            stats,
            done: std::sync::Mutex::new(done),
            handle: Some(handle),
        },
    ))
}

struct Worker {
    sinks: Vec<Sink>,
    rx: Receiver<Msg>,
    stats: Arc<Stats>,
    format: Format,
    reported: u64,
}

impl Worker {
    /// The next message, spinning and yielding briefly before parking: a
    /// parked writer costs every logging thread a wake-up system call.
    fn next(&self) -> Option<Msg> {
        for step in 0..10u32 {
            match self.rx.try_recv() {
                Ok(msg) => return Some(msg),
                Err(mpsc::TryRecvError::Disconnected) => return None,
                Err(mpsc::TryRecvError::Empty) => {}
            }
            if step < 6 {
                for _ in 0..(1u32 << step) {
                    std::hint::spin_loop();
                }
            } else {
                std::thread::yield_now();
            }
        }
        self.rx.recv().ok()
    }

    fn run(&mut self) {
        while let Some(msg) = self.next() {
            if !self.handle(msg) {
                break;
            }
            while let Ok(msg) = self.rx.try_recv() {
                if !self.handle(msg) {
                    self.finish();
                    return;
                }
            }
            // Out of work: tell about drops, then push everything out.
            self.report_drops();
            self.flush();
        }
        self.finish();
    }

    /// Returns false on shutdown.
    fn handle(&mut self, msg: Msg) -> bool {
        match msg {
            Msg::Line(line) => {
                self.write(&line);
                true
            }
            Msg::Flush(ack) => {
                self.report_drops();
                self.flush();
                let _ = ack.send(());
                true
            }
            Msg::Shutdown => false,
        }
    }

    fn finish(&mut self) {
        // Drain what was queued before the shutdown request.
        while let Ok(msg) = self.rx.try_recv() {
            match msg {
                Msg::Line(line) => self.write(&line),
                Msg::Flush(ack) => {
                    let _ = ack.send(());
                }
                Msg::Shutdown => {}
            }
        }
        self.report_drops();
        self.flush();
    }

    fn write(&mut self, line: &[u8]) {
        for sink in &mut self.sinks {
            if sink.write_all(line).is_err() {
                self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn flush(&mut self) {
        for sink in &mut self.sinks {
            if sink.flush().is_err() {
                self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn report_drops(&mut self) {
        let total = self.stats.dropped.load(Ordering::Relaxed);
        if total <= self.reported {
            return;
        }
        let line = drop_report(self.format, total - self.reported, total);
        self.reported = total;
        self.write(line.as_bytes());
    }
}

/// The record announcing dropped records.
pub(crate) fn drop_report(format: Format, dropped: u64, total: u64) -> String {
    let ts = Timestamp::now();
    let message = "log buffer full: records were dropped";
    match format {
        Format::Json => {
            let mut out = String::with_capacity(192);
            out.push_str("{\"timestamp\":\"");
            out.push_str(ts.as_str());
            out.push_str("\",\"level\":\"WARN\",\"target\":\"kubepkg_log_api\"");
            let _ = json::write_key(&mut out, "message");
            let _ = json::write_str(&mut out, message);
            out.push_str(&format!(
                ",\"dropped\":{dropped},\"total_dropped\":{total}}}\n"
            ));
            out
        }
        Format::Text => format!(
            "{}  WARN kubepkg_log_api: {message} dropped={dropped} total_dropped={total}\n",
            ts.as_str()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::Capture;

    #[test]
    fn writes_in_order_and_flushes() {
        let capture = Capture::new();
        let (nb, guard) = spawn(
            vec![Box::new(capture.clone())],
            16,
            OnFull::Block,
            Format::Json,
        )
        .unwrap();
        for i in 0..100 {
            nb.send(format!("{i}\n").as_bytes());
        }
        nb.flush(FLUSH_TIMEOUT).unwrap();
        let lines = capture.lines();
        assert_eq!(lines.len(), 100);
        assert!(lines.iter().enumerate().all(|(i, l)| *l == i.to_string()));
        assert_eq!(guard.dropped(), 0);
    }

    #[test]
    fn drop_report_is_json() {
        let line = drop_report(Format::Json, 3, 5);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["dropped"], 3);
        assert_eq!(v["total_dropped"], 5);
        assert_eq!(v["level"], "WARN");
    }
}
