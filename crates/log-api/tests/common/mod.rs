//! Helpers shared by the integration tests (each test file is its own
//! process; not every file uses every helper).
#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// Parses `YYYY-MM-DDTHH:MM:SS[.ffffff]Z` into a `SystemTime`, independently
/// of the crate's formatter. Panics with the input on anything else.
pub fn parse_rfc3339_utc(s: &str) -> SystemTime {
    let b = s.as_bytes();
    assert!(b.len() >= 20, "timestamp too short: {s}");
    assert_eq!(b[b.len() - 1], b'Z', "timestamp not UTC (no Z): {s}");
    assert!(
        b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[13] == b':' && b[16] == b':',
        "{s}"
    );
    let num = |r: std::ops::Range<usize>| -> i64 {
        s[r.clone()]
            .parse()
            .unwrap_or_else(|_| panic!("bad digits {:?} in {s}", &s[r]))
    };
    let (year, month, day) = (num(0..4), num(5..7), num(8..10));
    let (hour, minute, second) = (num(11..13), num(14..16), num(17..19));
    assert!((1..=12).contains(&month) && (1..=31).contains(&day), "{s}");
    assert!(hour < 24 && minute < 60 && second < 61, "{s}");
    let mut nanos = 0u32;
    if b[19] == b'.' {
        let frac = &s[20..s.len() - 1];
        assert!(
            !frac.is_empty() && frac.len() <= 9 && frac.bytes().all(|c| c.is_ascii_digit()),
            "{s}"
        );
        nanos = format!("{frac:0<9}").parse().unwrap();
    } else {
        assert_eq!(b.len(), 20, "{s}");
    }
    // Days from civil (Howard Hinnant's algorithm), written out again here.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second;
    UNIX_EPOCH + Duration::new(secs as u64, nanos)
}

/// Checks that `ts` is an RFC 3339 UTC timestamp within [before, after]
/// (`before` truncated to the microsecond, as the log has it).
pub fn assert_timestamp_between(ts: &Value, before: SystemTime, after: SystemTime) {
    let ts = ts
        .as_str()
        .unwrap_or_else(|| panic!("timestamp is not a string: {ts}"));
    let t = parse_rfc3339_utc(ts);
    let before = before - Duration::from_micros(1);
    assert!(
        t >= before && t <= after,
        "timestamp {ts} outside the test's window"
    );
}

/// Reads a file of JSON lines.
pub fn read_json_lines(path: &Path) -> Vec<Value> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// The one line whose message is `message`.
pub fn by_message<'a>(lines: &'a [Value], message: &str) -> &'a Value {
    let found: Vec<&Value> = lines.iter().filter(|l| l["message"] == message).collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one {message:?} in {lines:#?}"
    );
    found[0]
}

#[test]
fn parser_self_check() {
    assert_eq!(parse_rfc3339_utc("1970-01-01T00:00:00Z"), UNIX_EPOCH);
    assert_eq!(
        parse_rfc3339_utc("2000-03-01T00:00:01.5Z"),
        UNIX_EPOCH + Duration::new(951_868_801, 500_000_000)
    );
}

/// The end-to-end scenario every backend runs through the real global
/// `init`, in its own test binary (one process per backend). Writes JSON
/// lines to a rotating file, logs from all three families, changes the
/// filter at run time, and checks the file field by field.
pub fn end_to_end(backend: kubepkg_log_api::Backend) {
    use kubepkg_log_api::{Backend, FileOutput, Format, LogConfig, Output, Rotation};
    use kubepkg_util::ErrorKind;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/app.log");
    let mut file = FileOutput::new(&path);
    file.rotation = Rotation::Daily;
    let config = LogConfig {
        backend,
        // `app::late` starts at warn; `set_filter` opens it to info later.
        // (Info rather than debug: slog compiles debug out of release builds.)
        filter: "info,noisy=warn,app::late=warn".to_owned(),
        format: Format::Json,
        outputs: vec![Output::File(file)],
        ..LogConfig::default()
    };

    // Not initialised yet: the global filter cannot be changed.
    assert_eq!(
        kubepkg_log_api::set_filter("debug").unwrap_err().kind(),
        ErrorKind::NotFound
    );

    let before = SystemTime::now();
    let guard = kubepkg_log_api::init(&config).unwrap();
    let again = kubepkg_log_api::init(&config).unwrap_err();
    assert_eq!(again.kind(), ErrorKind::AlreadyExists, "{again}");

    let slog = kubepkg_log_api::slog_logger().new(slog::o!("component" => "store"));
    {
        let request = tracing::info_span!("request", request_id = 42u64, method = "GET");
        let _request = request.enter();
        let db = tracing::info_span!("db", table = "users");
        let _db = db.enter();
        tracing::info!(
            target: "app::handler",
            user = "ada",
            attempts = 3,
            ok = true,
            ratio = 0.5,
            "tracing signed in"
        );
    }
    slog::warn!(slog, "slog signed in"; "user" => "ada", "attempts" => 3, "ok" => true, "ratio" => 0.5);
    log::info!(target: "app::log", user = "ada", attempts = 3, ok = true, ratio = 0.5; "log signed in");

    // Filtered out by "info,noisy=warn".
    tracing::info!(target: "noisy", "tracing noisy info");
    tracing::warn!(target: "noisy", "tracing noisy warn");
    tracing::info!(target: "app::late", "tracing late before");
    log::info!(target: "app::late", "log late before");
    slog::info!(slog, # "app::late", "slog late before");

    // Secrets print as [redacted] through every family.
    let secret = kubepkg_util::secret::Secret::new("hunter2".to_owned());
    tracing::info!(password = ?secret, token = %secret, "tracing login");
    slog::info!(slog, "slog login"; "password" => ?secret, "token" => %secret);
    log::info!(password:? = secret, token:% = secret; "log login");

    // Run-time filter change, for all three families.
    kubepkg_log_api::set_filter("info,noisy=off").unwrap();
    tracing::info!(target: "app::late", "tracing late after");
    log::info!(target: "app::late", "log late after");
    slog::info!(slog, # "app::late", "slog late after");
    tracing::warn!(target: "noisy", "tracing noisy off");
    let bad = kubepkg_log_api::set_filter("debug,kube=loud").unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::Invalid);
    guard.set_filter("warn").unwrap();
    tracing::info!("tracing info under warn");
    log::info!("log info under warn");
    slog::info!(slog, "slog info under warn");
    log::warn!(target: "app::log", "log warn under warn");

    guard.flush().unwrap();
    assert_eq!(guard.dropped(), 0);
    assert_eq!(guard.write_errors(), 0);
    drop(guard);
    let after = SystemTime::now();

    let raw = std::fs::read_to_string(&path).unwrap();
    assert!(!raw.contains("hunter2"), "secret leaked:\n{raw}");
    let lines = read_json_lines(&path);
    for line in &lines {
        assert_timestamp_between(&line["timestamp"], before, after);
        assert!(line["target"].is_string(), "{line}");
    }
    let messages: Vec<&str> = lines.iter().filter_map(|l| l["message"].as_str()).collect();
    for absent in [
        "tracing noisy info",
        "tracing late before",
        "log late before",
        "slog late before",
        "tracing noisy off",
        "tracing info under warn",
        "log info under warn",
        "slog info under warn",
    ] {
        assert!(
            !messages.contains(&absent),
            "{absent:?} should be filtered: {messages:?}"
        );
    }
    assert_eq!(by_message(&lines, "slog late after")["target"], "app::late");
    for present in [
        "tracing noisy warn",
        "tracing late after",
        "log late after",
        "slog late after",
        "log warn under warn",
    ] {
        by_message(&lines, present);
    }

    // tracing -> backend: 4 fields survive every bridge.
    let t = by_message(&lines, "tracing signed in");
    assert_eq!(t["level"], "INFO");
    assert_eq!(t["target"], "app::handler");
    assert_eq!(t["user"], "ada");
    assert_eq!(t["attempts"], 3);
    assert_eq!(t["ok"], true);
    assert_eq!(t["ratio"], 0.5);
    if backend == Backend::Tracing {
        assert_eq!(t["span"]["name"], "db");
        assert_eq!(t["span"]["table"], "users");
        let spans = t["spans"].as_array().expect("spans list");
        assert_eq!(spans.len(), 2);
        assert_eq!(spans[0]["name"], "request");
        assert_eq!(spans[0]["request_id"], 42);
        assert_eq!(spans[0]["method"], "GET");
        assert_eq!(spans[1]["name"], "db");
    }

    // slog -> backend: record and logger key-values survive.
    let s = by_message(&lines, "slog signed in");
    assert_eq!(s["level"], "WARN");
    assert_eq!(s["target"], module_path!());
    assert_eq!(s["user"], "ada");
    assert_eq!(s["attempts"], 3);
    assert_eq!(s["ok"], true);
    assert_eq!(s["ratio"], 0.5);
    assert_eq!(s["component"], "store");

    // log -> backend: message and target always; key-values only where the
    // backend is `log` (tracing-log carries no key-values).
    let l = by_message(&lines, "log signed in");
    assert_eq!(l["level"], "INFO");
    assert_eq!(l["target"], "app::log");
    if backend == Backend::Log {
        assert_eq!(l["user"], "ada");
        assert_eq!(l["attempts"], 3);
        assert_eq!(l["ok"], true);
        assert_eq!(l["ratio"], 0.5);
    }

    for (message, fields) in [
        ("tracing login", true),
        ("slog login", true),
        ("log login", backend == Backend::Log),
    ] {
        let line = by_message(&lines, message);
        if fields {
            assert_eq!(line["password"], "[redacted]", "{line}");
            assert_eq!(line["token"], "[redacted]", "{line}");
        }
    }

    // Nothing else slipped through.
    assert_eq!(lines.len(), 11, "{messages:?}");
}
