//! Property tests: round trips and agreement with simple models.

use std::collections::BTreeMap;

use kubepkg_util::duration::{self, GoDuration};
use kubepkg_util::quantity::{Format, Quantity};
use kubepkg_util::selector::{Operator, Requirement, Selector};
use proptest::prelude::*;

// ------------------------------------------------------------------ quantity

fn format_strategy() -> impl Strategy<Value = Format> {
    prop_oneof![
        Just(Format::DecimalSI),
        Just(Format::BinarySI),
        Just(Format::DecimalExponent)
    ]
}

/// Quantity strings of every shape the grammar allows.
fn quantity_string() -> impl Strategy<Value = String> {
    let suffix = prop_oneof![
        prop::sample::select(vec![
            "", "n", "u", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei",
        ])
        .prop_map(str::to_owned),
        (prop::bool::ANY, -20i32..=18)
            .prop_map(|(upper, e)| format!("{}{e}", if upper { 'E' } else { 'e' })),
    ];
    (
        prop::sample::select(vec!["", "-", "+"]),
        "[0-9]{1,10}",
        prop::option::of("[0-9]{0,12}"),
        suffix,
    )
        .prop_map(|(sign, int, frac, suffix)| match frac {
            Some(frac) => format!("{sign}{int}.{frac}{suffix}"),
            None => format!("{sign}{int}{suffix}"),
        })
}

proptest! {
    #[test]
    fn quantity_format_then_parse_keeps_the_value(s in quantity_string()) {
        let q = Quantity::parse(&s).expect("grammar-valid input");
        let text = q.to_string();
        let back = Quantity::parse(&text).expect("canonical text parses");
        prop_assert_eq!(back, q, "{} -> {}", s, text);
        // Formatting is idempotent: canonical text prints as itself, unless
        // reading it back changed the format family (a binary quantity
        // printed without suffix, `62.5Ki` -> `64000`, reads back as decimal,
        // exactly as in apimachinery); then the next round is stable.
        let again = back.to_string();
        if back.format() == q.format() {
            prop_assert_eq!(&again, &text);
        }
        let third = Quantity::parse(&again).expect("parses").to_string();
        prop_assert_eq!(third, again);
    }

    #[test]
    fn quantity_binary_values_print_like_apimachinery(kib in 1u64..10_000_000, half in prop::bool::ANY) {
        // n.5Ki is an integer number of bytes; it keeps the Ki suffix only
        // when it is a multiple of 1024.
        let s = if half { format!("{kib}.5Ki") } else { format!("{kib}Ki") };
        let q = Quantity::parse(&s).expect("valid");
        let bytes = kib * 1024 + if half { 512 } else { 0 };
        prop_assert_eq!(q.as_i64_exact(), Some(bytes as i64));
        let text = q.to_string();
        if bytes.is_multiple_of(1024) {
            prop_assert!(text.ends_with("i"), "{}", text);
        } else {
            prop_assert_eq!(text, bytes.to_string());
        }
    }

    #[test]
    fn quantity_any_value_round_trips(nano in any::<i128>(), format in format_strategy()) {
        let q = Quantity::from_nano(nano, format);
        let text = q.to_string();
        let back = Quantity::parse(&text).expect("canonical text parses");
        prop_assert_eq!(back.as_nano(), nano, "{}", text);
        prop_assert_eq!(back.to_string(), text);
    }

    #[test]
    fn quantity_arithmetic_agrees_with_milli_units(
        a in -1_000_000_000_000_000i64..1_000_000_000_000_000,
        b in -1_000_000_000_000_000i64..1_000_000_000_000_000,
    ) {
        // Write the values the way users do: "1.5", "250m", "-3".
        let write = |m: i64| {
            let sign = if m < 0 { "-" } else { "" };
            let abs = m.unsigned_abs();
            if abs.is_multiple_of(1000) { format!("{sign}{}", abs / 1000) } else { format!("{sign}{}.{:03}", abs / 1000, abs % 1000) }
        };
        let qa = Quantity::parse(&write(a)).expect("valid");
        let qb = Quantity::parse(&format!("{b}m")).expect("valid");
        prop_assert_eq!(qa.as_milli(), i128::from(a));
        prop_assert_eq!(qb.as_milli(), i128::from(b));
        prop_assert_eq!(qa.checked_add(qb).map(|q| q.as_milli()), Some(i128::from(a) + i128::from(b)));
        prop_assert_eq!(qa.checked_sub(qb).map(|q| q.as_milli()), Some(i128::from(a) - i128::from(b)));
        prop_assert_eq!((qa + qb).as_milli(), i128::from(a) + i128::from(b));
        prop_assert_eq!(qa.checked_mul(3).map(|q| q.as_milli()), Some(3 * i128::from(a)));
        prop_assert_eq!(qa.cmp(&qb), a.cmp(&b));
        prop_assert_eq!(qa == qb, a == b);
        prop_assert_eq!(Quantity::from_milli(a), qa);
    }
}

// ------------------------------------------------------------------ selector

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]([a-z0-9-]{0,4}[a-z0-9])?",
        "[a-z]{1,3}\\.(io|com)/[A-Za-z]([A-Za-z0-9_.-]{0,4}[A-Za-z0-9])?",
        Just("in".to_owned()),
        Just("notin".to_owned()),
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9]([A-Za-z0-9_.-]{0,4}[A-Za-z0-9])?",
        Just(String::new()),
        Just("in".to_owned()),
        "[0-9]{1,3}",
    ]
}

fn requirement() -> impl Strategy<Value = Requirement> {
    let op = prop::sample::select(vec![
        Operator::Equals,
        Operator::DoubleEquals,
        Operator::NotEquals,
        Operator::In,
        Operator::NotIn,
        Operator::Exists,
        Operator::DoesNotExist,
        Operator::GreaterThan,
        Operator::LessThan,
    ]);
    (key(), op, prop::collection::vec(value(), 1..4), 0i64..1000).prop_map(|(k, op, values, n)| {
        let values: Vec<String> = match op {
            Operator::In | Operator::NotIn => values,
            Operator::Exists | Operator::DoesNotExist => Vec::new(),
            Operator::GreaterThan | Operator::LessThan => vec![n.to_string()],
            _ => values[..1].to_vec(),
        };
        Requirement::new(k, op, values).expect("generated requirements are valid")
    })
}

/// The meaning of a requirement, written out independently.
fn model_matches(r: &Requirement, labels: &BTreeMap<String, String>) -> bool {
    let v = labels.get(r.key());
    let contains = |v: &String| r.values().contains(v);
    match r.operator() {
        Operator::Equals | Operator::DoubleEquals | Operator::In => v.is_some_and(contains),
        Operator::NotEquals | Operator::NotIn => !v.is_some_and(contains),
        Operator::Exists => v.is_some(),
        Operator::DoesNotExist => v.is_none(),
        Operator::GreaterThan | Operator::LessThan => {
            let (Some(actual), Ok(bound)) = (
                v.and_then(|v| v.parse::<i64>().ok()),
                r.values()[0].parse::<i64>(),
            ) else {
                return false;
            };
            if r.operator() == Operator::GreaterThan {
                actual > bound
            } else {
                actual < bound
            }
        }
    }
}

proptest! {
    #[test]
    fn selector_render_then_parse_round_trips(reqs in prop::collection::vec(requirement(), 0..5)) {
        let selector = Selector::from_requirements(reqs);
        let text = selector.to_string();
        let back = Selector::parse(&text).expect("rendered selectors parse");
        prop_assert_eq!(&back, &selector, "{}", text);
        prop_assert_eq!(back.to_string(), text);
    }

    #[test]
    fn selector_matching_follows_the_model(
        reqs in prop::collection::vec(requirement(), 0..4),
        labels in prop::collection::btree_map(key(), value(), 0..5),
    ) {
        let selector = Selector::from_requirements(reqs);
        let want = selector.requirements().iter().all(|r| model_matches(r, &labels));
        prop_assert_eq!(selector.matches(&labels), want);
        let reparsed = Selector::parse(&selector.to_string()).expect("parses");
        prop_assert_eq!(reparsed.matches(&labels), want);
    }
}

// ------------------------------------------------------------------ duration

proptest! {
    #[test]
    fn go_duration_format_then_parse_round_trips(n in any::<i64>()) {
        let d = GoDuration::from_nanos(n);
        let text = d.to_string();
        prop_assert_eq!(GoDuration::parse(&text).expect("formatted durations parse"), d, "{}", text);
    }

    #[test]
    fn std_duration_format_then_parse_round_trips(n in 0u64..=i64::MAX as u64) {
        let d = std::time::Duration::from_nanos(n);
        let text = duration::format(d);
        prop_assert_eq!(duration::parse(&text).expect("formatted durations parse"), d, "{}", text);
    }
}

// ---------------------------------------------------------------------- yaml

/// JSON-like values whose strings are full of YAML syntax (`---`, quotes,
/// comments, block indicators, line breaks).
fn tricky_value() -> impl Strategy<Value = serde_json::Value> {
    let text = prop_oneof![
        "[a-z ]{0,8}",
        "(---|\\.\\.\\.|'|\"|#|: |- |\\||>|\\n|\\n---\\n| |x|\\{|\\[)*",
    ];
    let leaf = prop_oneof![
        text.clone().prop_map(serde_json::Value::from),
        any::<i32>().prop_map(serde_json::Value::from),
        any::<bool>().prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn yaml_documents_written_by_serde_yaml_split_back(values in prop::collection::vec(tricky_value(), 1..5)) {
        let mut input = String::new();
        for v in &values {
            input.push_str("---\n");
            input.push_str(&serde_yaml::to_string(v).expect("serialisable"));
        }
        let parsed = kubepkg_util::yaml::parse_documents(&input).expect("valid YAML splits and parses");
        let got: Vec<_> = parsed.into_iter().map(|d| d.value).collect();
        prop_assert_eq!(got, values, "{}", input);
    }
}
