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
    if let Err(e) = crate::discovery::check_api_version(d.api_version()) {
        return Err(fail(match e {
            Error::Invalid(m) => m,
            other => other.to_string(),
        }));
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

/// Parses a bundle. See the module docs. Splitting (YAML separators, JSON
/// arrays and lists, line numbers) is `kubepkg_util::yaml`'s.
pub fn parse(input: &str) -> Vec<Result<Doc>> {
    let mut out = Vec::new();
    let mut next_index = 0;
    for d in kubepkg_util::yaml::split_documents(input) {
        match d.to_value() {
            Ok(Value::Null) => {}
            Ok(v) => expand(v, (next_index, d.line), &mut out, &mut next_index),
            Err(e) => {
                let (line, message) = match e {
                    kubepkg_util::Error::Document { line, message, .. } => (line, message),
                    other => (d.line, other.to_string()),
                };
                out.push(Err(Error::Parse {
                    index: next_index,
                    line,
                    message,
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
    fn api_versions_that_would_escape_the_url_path_are_rejected_per_document() {
        let y = "apiVersion: \"../../api/v1\"\nkind: Secret\nmetadata: {name: a}\n---\n\
                 apiVersion: apps/v1?x=1\nkind: Deployment\nmetadata: {name: b}\n---\n\
                 apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: c}\n";
        let docs = parse(y);
        assert_eq!(docs.len(), 3);
        for (i, d) in docs[..2].iter().enumerate() {
            match d {
                Err(e @ Error::Parse { index, message, .. }) => {
                    assert_eq!(*index, i);
                    assert_eq!(e.kind(), kubepkg_util::ErrorKind::Invalid);
                    assert!(message.contains("apiVersion"), "{message}");
                }
                other => panic!("document {i} accepted: {other:?}"),
            }
        }
        assert_eq!(docs[2].as_ref().expect("valid").name(), "c");
    }

    #[test]
    fn non_mappings_are_rejected() {
        let docs = parse("- just\n- a list of strings\n");
        assert_eq!(docs.len(), 2);
        assert!(docs.iter().all(|d| d.is_err()));
    }
}
