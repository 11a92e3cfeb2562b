//! Compares kubepkg-util with the behaviour recorded from
//! `k8s.io/apimachinery` v0.35.4 and Go's `time` package.
//!
//! The tables in `tests/data/*.jsonl` are written by
//! `benches/peers/quantity/gentables` (run it with
//! `go run ./gentables ../../../crates/util/tests/data` from
//! `benches/peers/quantity`); each line is what the Go code answered for one
//! input. Quantities outside kubepkg-util's documented range (|v| ≥ 1.7e29,
//! and decimal-SI values ≥ 1e21 that Go prints without a suffix) are left
//! out by the generator.

use kubepkg_util::duration::GoDuration;
use kubepkg_util::names;
use kubepkg_util::quantity::Quantity;
use kubepkg_util::selector::Selector;
use serde::Deserialize;

fn rows<T: for<'de> Deserialize<'de>>(text: &str) -> Vec<T> {
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("table line {}: {e}", i + 1))
        })
        .collect()
}

#[derive(Deserialize)]
struct QuantityRow {
    input: String,
    #[serde(default)]
    canonical: String,
    #[serde(default)]
    format: String,
    milli: Option<i64>,
    #[serde(default)]
    err: bool,
}

#[test]
fn quantities_match_apimachinery() {
    let table: Vec<QuantityRow> = rows(include_str!("data/quantity.jsonl"));
    assert!(table.len() > 1000, "table too small: {}", table.len());
    let mut failures = Vec::new();
    for row in &table {
        match (Quantity::parse(&row.input), row.err) {
            (Err(_), true) => {}
            (Ok(q), true) => failures.push(format!("{:?}: Go rejects, we parsed {q:?}", row.input)),
            (Err(e), false) => failures.push(format!(
                "{:?}: Go accepts ({}), we fail: {e}",
                row.input, row.canonical
            )),
            (Ok(q), false) => {
                let got = q.to_string();
                if got != row.canonical || q.format().as_str() != row.format {
                    failures.push(format!(
                        "{:?}: Go {} {}, we {got} {}",
                        row.input,
                        row.canonical,
                        row.format,
                        q.format()
                    ));
                }
                if let Some(milli) = row.milli
                    && q.as_milli() != i128::from(milli)
                {
                    failures.push(format!(
                        "{:?}: Go milli {milli}, we {}",
                        row.input,
                        q.as_milli()
                    ));
                }
                // The canonical string reads back as the same value and format.
                match Quantity::parse(&got) {
                    Ok(back) if back == q && back.to_string() == got => {}
                    other => failures.push(format!(
                        "{:?}: canonical {got} reads back as {other:?}",
                        row.input
                    )),
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[derive(Deserialize)]
struct NameRow {
    kind: String,
    input: String,
    errors: Vec<String>,
}

#[test]
fn name_validation_matches_the_api_server() {
    let table: Vec<NameRow> = rows(include_str!("data/names.jsonl"));
    let mut accepted = 0;
    let mut failures = Vec::new();
    for row in &table {
        let (messages, fast): (Vec<String>, bool) = match row.kind.as_str() {
            "dns1123_label" => (
                names::dns1123_label_messages(&row.input),
                names::is_dns1123_label(&row.input),
            ),
            "dns1123_subdomain" => (
                names::dns1123_subdomain_messages(&row.input),
                names::is_dns1123_subdomain(&row.input),
            ),
            "dns1035_label" => (
                names::dns1035_label_messages(&row.input),
                names::is_dns1035_label(&row.input),
            ),
            "qualified_name" => (
                names::qualified_name_messages(&row.input),
                names::is_qualified_name(&row.input),
            ),
            "label_value" => (
                names::label_value_messages(&row.input),
                names::is_label_value(&row.input),
            ),
            other => panic!("unknown kind {other}"),
        };
        if messages != row.errors {
            failures.push(format!(
                "{} {:?}:\n  Go: {:?}\n  we: {messages:?}",
                row.kind, row.input, row.errors
            ));
        }
        if fast != row.errors.is_empty() {
            failures.push(format!(
                "{} {:?}: fast check says {fast}",
                row.kind, row.input
            ));
        }
        accepted += usize::from(row.errors.is_empty());
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The table exercises both outcomes.
    assert!(
        accepted > 100 && accepted < table.len() - 100,
        "accepted {accepted} of {}",
        table.len()
    );
}

/// Hand-picked rows of the name table, readable at a glance.
#[test]
fn name_validation_examples() {
    let label_msg = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
    for ok in ["a", "0", "my-name", "123-abc", "a--b"] {
        assert!(names::dns1123_label_messages(ok).is_empty(), "{ok}");
    }
    for bad in ["", "-a", "a-", "My-Name", "a_b", "a b", "ünïcode"] {
        assert_eq!(names::dns1123_label_messages(bad), [label_msg], "{bad}");
    }
    assert_eq!(
        names::dns1123_label_messages("a.b"),
        ["must not contain dots"]
    );
    assert_eq!(
        names::dns1123_label_messages(&"a".repeat(64)),
        ["must be no more than 63 characters"]
    );
    assert!(names::is_dns1123_subdomain("example.com"));
    assert!(!names::is_dns1123_subdomain("a..b"));
    assert!(names::is_dns1035_label("abc-123"));
    assert!(!names::is_dns1035_label("1abc"));
    assert!(names::is_qualified_name("app.kubernetes.io/name"));
    assert!(names::is_qualified_name("My_Key.x"));
    assert!(!names::is_qualified_name("Example.com/name"));
    assert!(!names::is_qualified_name("a/b/c"));
    assert_eq!(
        names::qualified_name_messages(&format!("p/{}", "n".repeat(64))),
        ["name part must be no more than 63 bytes"]
    );
    assert!(names::is_label_value(""));
    assert!(names::is_label_value("v1.2_beta"));
    assert!(!names::is_label_value("-v"));
}

#[derive(Deserialize)]
struct SelectorRow {
    input: String,
    #[serde(default)]
    canonical: String,
    #[serde(default)]
    err: bool,
}

#[test]
fn selectors_match_labels_parse() {
    let table: Vec<SelectorRow> = rows(include_str!("data/selectors.jsonl"));
    let mut failures = Vec::new();
    for row in &table {
        match (Selector::parse(&row.input), row.err) {
            (Err(_), true) => {}
            (Ok(s), true) => failures.push(format!("{:?}: Go rejects, we parsed {s}", row.input)),
            (Err(e), false) => failures.push(format!(
                "{:?}: Go gives {:?}, we fail: {e}",
                row.input, row.canonical
            )),
            (Ok(s), false) => {
                if s.to_string() != row.canonical {
                    failures.push(format!(
                        "{:?}: Go {:?}, we {:?}",
                        row.input,
                        row.canonical,
                        s.to_string()
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[derive(Deserialize)]
struct DurationRow {
    input: Option<String>,
    nanos: Option<i64>,
    #[serde(default)]
    err: bool,
    #[serde(default)]
    string: String,
}

#[test]
fn durations_match_go_time() {
    let table: Vec<DurationRow> = rows(include_str!("data/durations.jsonl"));
    let mut failures = Vec::new();
    for row in &table {
        match (&row.input, row.nanos) {
            (Some(input), _) => match (GoDuration::parse(input), row.err) {
                (Err(_), true) => {}
                (Ok(d), true) => failures.push(format!("{input:?}: Go rejects, we parsed {d:?}")),
                (Err(e), false) => failures.push(format!("{input:?}: Go accepts, we fail: {e}")),
                (Ok(d), false) => {
                    if Some(d.as_nanos()) != row.nanos || d.to_string() != row.string {
                        failures.push(format!(
                            "{input:?}: Go {:?} {}, we {} {d}",
                            row.nanos,
                            row.string,
                            d.as_nanos()
                        ));
                    }
                }
            },
            (None, Some(n)) => {
                let got = GoDuration::from_nanos(n).to_string();
                if got != row.string {
                    failures.push(format!("{n}: Go {}, we {got}", row.string));
                }
            }
            (None, None) => panic!("bad table row"),
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
