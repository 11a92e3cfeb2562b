//! Parsing a bundle: multi-document YAML, a JSON object, a JSON array or a
//! `kind: List`, into objects that each remember the document index and the
//! line they came from. A document that does not parse becomes an
//! [`Error::Parse`] in its slot; the others are unaffected.

use crate::{Error, Result};
use serde_json::Value;

/// One object of a bundle.
#[derive(Debug, Clone, PartialEq)]
pub struct Doc {
    /// Zero-based index among the bundle's non-empty documents.
    pub index: usize,
    /// One-based line where the document starts.
    pub line: usize,
    /// The object (JSON form).
    pub object: Value,
}

impl Doc {
    /// `apiVersion`.
    pub fn api_version(&self) -> &str {
        self.object["apiVersion"].as_str().unwrap_or_default()
    }
    /// `kind`.
    pub fn kind(&self) -> &str {
        self.object["kind"].as_str().unwrap_or_default()
    }
    /// `metadata.name`.
    pub fn name(&self) -> &str {
        self.object["metadata"]["name"].as_str().unwrap_or_default()
    }
    /// `metadata.namespace`, if set.
    pub fn namespace(&self) -> Option<&str> {
        self.object["metadata"]["namespace"]
            .as_str()
            .filter(|s| !s.is_empty())
    }
}

/// Splits multi-document YAML on `---` lines; returns `(start line, text)`
/// for every document that is not blank or comments only.
fn split_yaml(input: &str) -> Vec<(usize, String)> {
    let mut docs = Vec::new();
    let mut cur = String::new();
    let mut start = 1;
    for (i, line) in input.lines().enumerate() {
        let is_sep =
            line == "---" || line.starts_with("--- ") || line.starts_with("---\t") || line == "...";
        if is_sep {
            docs.push((start, std::mem::take(&mut cur)));
            start = i + 2;
            // `--- {inline}` documents keep their content.
            if let Some(rest) = line.strip_prefix("--- ") {
                cur.push_str(rest);
                cur.push('\n');
                start = i + 1;
            }
            continue;
        }
        cur.push_str(line);
        cur.push('\n');
    }
    docs.push((start, cur));
    docs.into_iter()
        .filter(|(_, d)| {
            d.lines().any(|l| {
                let t = l.trim();
                !t.is_empty() && !t.starts_with('#')
            })
        })
        .collect()
}

/// Expands `kind: List` / arrays into their items.
fn expand(
    v: Value,
    index_line: (usize, usize),
    out: &mut Vec<Result<Doc>>,
    next_index: &mut usize,
) {
    let (_, line) = index_line;
    let items = match v {
        Value::Array(items) => items,
        Value::Object(ref m)
            if m.get("kind")
                .and_then(Value::as_str)
                .is_some_and(|k| k == "List" || k.ends_with("List"))
                && m.get("items").is_some_and(Value::is_array) =>
        {
            match v {
                Value::Object(mut m) => match m.remove("items") {
                    Some(Value::Array(items)) => items,
                    _ => Vec::new(),
                },
                _ => Vec::new(),
            }
        }
        other => vec![other],
    };
    for item in items {
        let index = *next_index;
        *next_index += 1;
        out.push(check_object(Doc {
            index,
            line,
            object: item,
        }));
    }
}

fn check_object(d: Doc) -> Result<Doc> {
    let fail = |msg: String| Error::Parse {
        index: d.index,
        line: d.line,
        message: msg,
    };
    if !d.object.is_object() {
        return Err(fail("a document must be a mapping (an object)".into()));
    }
    if d.api_version().is_empty() {
        return Err(fail("apiVersion is missing".into()));
    }
    if d.kind().is_empty() {
        return Err(fail("kind is missing".into()));
    }
    if d.name().is_empty() {
        return Err(fail(format!(
            "{} has no metadata.name (generateName cannot be applied)",
            d.kind()
        )));
    }
    Ok(d)
}

/// Parses a bundle. See the module docs.
pub fn parse(input: &str) -> Vec<Result<Doc>> {
    let mut out = Vec::new();
    let mut next_index = 0;
    let trimmed = input.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let skipped = input.len() - trimmed.len();
        let first_line = input[..skipped].matches('\n').count() + 1;
        // A stream of JSON values (one or more).
        let mut de = serde_json::Deserializer::from_str(input).into_iter::<Value>();
        loop {
            let offset = de.byte_offset();
            match de.next() {
                None => break,
                Some(Ok(v)) => {
                    let line = input[..offset.min(input.len())].matches('\n').count() + 1;
                    let line = line.max(first_line);
                    expand(v, (next_index, line), &mut out, &mut next_index);
                }
                Some(Err(e)) => {
                    out.push(Err(Error::Parse {
                        index: next_index,
                        line: e.line(),
                        message: e.to_string(),
                    }));
                    break;
                }
            }
        }
        return out;
    }
    for (line, text) in split_yaml(input) {
        match serde_yaml::from_str::<Value>(&text) {
            Ok(Value::Null) => {}
            Ok(v) => expand(v, (next_index, line), &mut out, &mut next_index),
            Err(e) => {
                let at = e
                    .location()
                    .map(|l| line + l.line().saturating_sub(1))
                    .unwrap_or(line);
                out.push(Err(Error::Parse {
                    index: next_index,
                    line: at,
                    message: e.to_string(),
                }));
                next_index += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_doc_yaml_keeps_index_and_line() {
        let y = "# comment only\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n  namespace: x\n";
        let docs = parse(y);
        assert_eq!(docs.len(), 2);
        let a = docs[0].as_ref().unwrap();
        assert_eq!((a.index, a.line, a.name()), (0, 3, "a"));
        let b = docs[1].as_ref().unwrap();
        assert_eq!(
            (b.index, b.line, b.name(), b.namespace()),
            (1, 9, "b", Some("x"))
        );
    }

    #[test]
    fn bad_docs_do_not_hide_good_ones() {
        let y = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n---\napiVersion: v1\nkind: [unclosed\n---\nkind: ConfigMap\nmetadata: {name: x}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok2}\n";
        let docs = parse(y);
        assert_eq!(docs.len(), 4);
        assert!(docs[0].is_ok());
        match &docs[1] {
            Err(Error::Parse { index, line, .. }) => {
                assert_eq!(*index, 1);
                assert!(*line >= 5, "line {line}");
            }
            other => panic!("expected a parse error, got {other:?}"),
        }
        match &docs[2] {
            Err(Error::Parse {
                index: 2,
                line: 8,
                message,
            }) => assert!(message.contains("apiVersion")),
            other => panic!("expected missing apiVersion, got {other:?}"),
        }
        assert_eq!(docs[3].as_ref().unwrap().index, 3);
    }

    #[test]
    fn json_arrays_and_lists_expand() {
        let j = r#"[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}},
                   {"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"b"}}]"#;
        let docs = parse(j);
        assert_eq!(docs.len(), 2);
        let l = "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n- {apiVersion: v1, kind: Secret, metadata: {name: s}}\n";
        let docs = parse(l);
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].as_ref().unwrap().kind(), "Secret");
        let bad = parse("{\"apiVersion\": ");
        assert!(matches!(bad[0], Err(Error::Parse { .. })));
    }

    #[test]
    fn non_mappings_are_rejected() {
        let docs = parse("- just\n- a list of strings\n");
        assert_eq!(docs.len(), 2);
        assert!(docs.iter().all(|d| d.is_err()));
    }
}
