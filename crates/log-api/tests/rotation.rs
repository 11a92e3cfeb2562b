//! File rotation: by size (exact file count and sizes) and by time (file
//! naming, with an injected clock), directly and through a pipeline.

mod common;

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use kubepkg_log_api::writer::rotate::{Clock, RotatingFile};
use kubepkg_log_api::{Backend, FileOutput, Format, LogConfig, Output, Rotation, build};

fn sorted_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// Exactly `len` bytes, newline included.
fn line(i: usize, len: usize) -> String {
    let head = format!("line {i:04} ");
    format!("{head}{}\n", "x".repeat(len - head.len() - 1))
}

#[test]
fn size_rotation_keeps_k_plus_one_files_of_exact_sizes() {
    const LINE: usize = 100;
    const MAX: u64 = 1000; // ten lines per file
    const KEEP: usize = 3;
    const LINES: usize = 55; // rotates 5 times
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let mut output = FileOutput::new(&path);
    output.rotation = Rotation::Size;
    output.max_bytes = Some(MAX);
    output.keep = KEEP;
    let mut file = RotatingFile::open(&output).unwrap();
    for i in 0..LINES {
        file.write_all(line(i, LINE).as_bytes()).unwrap();
    }
    file.flush().unwrap();
    assert_eq!(file.failed_rotations(), 0);

    assert_eq!(
        sorted_names(dir.path()),
        ["app.log", "app.log.1", "app.log.2", "app.log.3"]
    );
    let expect = [
        ("app.log", 50..55),
        ("app.log.1", 40..50),
        ("app.log.2", 30..40),
        ("app.log.3", 20..30),
    ];
    for (name, range) in expect {
        let text = std::fs::read_to_string(dir.path().join(name)).unwrap();
        let want: String = range.clone().map(|i| line(i, LINE)).collect();
        assert_eq!(text.len(), range.len() * LINE, "{name} size");
        assert_eq!(text, want, "{name} content");
    }
}

#[test]
fn size_rotation_with_keep_zero_truncates_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("only.log");
    let mut output = FileOutput::new(&path);
    output.rotation = Rotation::Size;
    output.max_bytes = Some(300);
    output.keep = 0;
    let mut file = RotatingFile::open(&output).unwrap();
    for i in 0..7 {
        file.write_all(line(i, 100).as_bytes()).unwrap();
    }
    file.flush().unwrap();
    assert_eq!(sorted_names(dir.path()), ["only.log"]);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), line(6, 100));
}

#[test]
fn size_rotation_through_a_pipeline() {
    const MAX: u64 = 4096;
    const KEEP: usize = 2;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("svc.log");
    let mut output = FileOutput::new(&path);
    output.rotation = Rotation::Size;
    output.max_bytes = Some(MAX);
    output.keep = KEEP;
    let config = LogConfig {
        backend: Backend::Slog,
        format: Format::Json,
        outputs: vec![Output::File(output)],
        ..LogConfig::default()
    };
    let pipeline = build(&config).unwrap();
    let slog = pipeline.slog_logger();
    for i in 0..400u64 {
        slog::info!(slog, "fixed width record"; "seq" => format!("{i:06}"));
    }
    pipeline.guard().flush().unwrap();
    assert_eq!(pipeline.guard().dropped(), 0);
    drop(pipeline);

    assert_eq!(
        sorted_names(dir.path()),
        ["svc.log", "svc.log.1", "svc.log.2"]
    );
    let line_len = {
        let text = std::fs::read_to_string(&path).unwrap();
        text.lines().next().unwrap().len() as u64 + 1
    };
    let per_file = MAX / line_len;
    for name in ["svc.log.1", "svc.log.2"] {
        let text = std::fs::read_to_string(dir.path().join(name)).unwrap();
        assert_eq!(text.len() as u64, per_file * line_len, "{name} is full");
        for l in text.lines() {
            serde_json::from_str::<serde_json::Value>(l).unwrap();
        }
    }
    // The newest records are in the active file; sequence numbers continue
    // across files.
    let seqs = |name: &str| -> Vec<u64> {
        common::read_json_lines(&dir.path().join(name))
            .iter()
            .map(|l| l["seq"].as_str().unwrap().parse().unwrap())
            .collect()
    };
    let (older, old, active) = (seqs("svc.log.2"), seqs("svc.log.1"), seqs("svc.log"));
    assert_eq!(*active.last().unwrap(), 399);
    assert_eq!(old.last().unwrap() + 1, active[0]);
    assert_eq!(older.last().unwrap() + 1, old[0]);
}

#[derive(Clone)]
struct FakeClock(Arc<Mutex<SystemTime>>);

impl FakeClock {
    fn at(rfc3339: &str) -> Self {
        FakeClock(Arc::new(Mutex::new(common::parse_rfc3339_utc(rfc3339))))
    }
    fn set(&self, rfc3339: &str) {
        *self.0.lock().unwrap() = common::parse_rfc3339_utc(rfc3339);
    }
}

impl Clock for FakeClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap()
    }
}

#[test]
fn hourly_rotation_names_files_by_hour_and_keeps_k() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let mut output = FileOutput::new(&path);
    output.rotation = Rotation::Hourly;
    output.keep = 2;
    let clock = FakeClock::at("2024-05-01T10:30:00Z");
    let mut file = RotatingFile::open_with_clock(&output, Arc::new(clock.clone())).unwrap();
    let steps = [
        ("2024-05-01T10:30:00Z", "a\n"),
        ("2024-05-01T10:59:59Z", "a2\n"),
        ("2024-05-01T11:05:00Z", "b\n"),
        ("2024-05-01T12:00:00Z", "c\n"),
        ("2024-05-01T13:59:00Z", "d\n"),
        ("2024-05-01T15:00:00Z", "e\n"), // nothing logged at 14h: no file for it
    ];
    for (now, text) in steps {
        clock.set(now);
        file.write_all(text.as_bytes()).unwrap();
    }
    file.flush().unwrap();
    assert_eq!(
        sorted_names(dir.path()),
        ["app.log", "app.log.2024-05-01-12", "app.log.2024-05-01-13"]
    );
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
    assert_eq!(read("app.log"), "e\n");
    assert_eq!(read("app.log.2024-05-01-12"), "c\n");
    assert_eq!(read("app.log.2024-05-01-13"), "d\n");
}

#[test]
fn daily_rotation_names_files_by_day_and_rotates_stale_files_on_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("daily.log");
    let mut output = FileOutput::new(&path);
    output.rotation = Rotation::Daily;
    output.keep = 7;
    let clock = FakeClock::at("2024-02-28T23:00:00Z");
    {
        let mut file = RotatingFile::open_with_clock(&output, Arc::new(clock.clone())).unwrap();
        file.write_all(b"feb 28\n").unwrap();
        clock.set("2024-02-29T00:00:01Z");
        file.write_all(b"leap day\n").unwrap();
        file.flush().unwrap();
    }
    assert_eq!(
        sorted_names(dir.path()),
        ["daily.log", "daily.log.2024-02-28"]
    );

    // A restart much later: the existing file was last written "now" by the
    // real clock (its mtime), so with a fake clock in the future it belongs
    // to an older day and is rotated out before the first new record.
    let later = FakeClock::at("2100-01-01T00:00:00Z");
    let mut file = RotatingFile::open_with_clock(&output, Arc::new(later)).unwrap();
    file.write_all(b"future\n").unwrap();
    file.flush().unwrap();
    let names = sorted_names(dir.path());
    assert_eq!(names.len(), 3, "{names:?}");
    assert_eq!(names[0], "daily.log");
    assert_eq!(names[1], "daily.log.2024-02-28");
    let real_day = &names[2];
    assert!(real_day.starts_with("daily.log.20"), "{real_day}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "future\n");
    assert_eq!(
        std::fs::read_to_string(dir.path().join(real_day)).unwrap(),
        "leap day\n"
    );
}
