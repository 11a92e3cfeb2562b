//! Splitting multi-document YAML and JSON manifests, and parsing them.
//!
//! [`split_documents`] cuts an input into its documents without parsing
//! them, returning each as a [`Document`]: a slice of the input with its
//! index and its 1-based starting line, so errors can point at the right
//! place in the file the user wrote.
//!
//! **YAML.** Documents are separated by `---` lines (a `---` at the start
//! of a line, followed by nothing, a space or a comment) and ended by
//! `...` lines; a `--- ` line with content (`--- a: 1`, `--- |`) starts a
//! document whose text includes that marker, so it parses as written. The splitter tracks enough of YAML's structure not to be fooled:
//! an indented `---` inside a block scalar (`|`, `>`) is text, and so is a
//! `---` line inside a multi-line quoted string; a `#` starts a comment only
//! after whitespace, and quotes count only where a scalar starts (so `it's`
//! is plain text). Documents that hold nothing but blank lines, comments
//! and directives (`%YAML`) are skipped. Line breaks (for separators and
//! line numbers) are those of the YAML parser: LF, CRLF, a lone CR, and the
//! Unicode NEL / LS / PS. A document's text starts at its
//! first content line (leading comments are left out) and runs to the next
//! separator.
//!
//! **JSON.** Input whose first non-blank character is `{` or `[` is read as
//! JSON if it parses as such: a single object is one document, an array
//! gives one document per element, a list object (`"kind"` ending in
//! `List`, with an `"items"` array, like `{"kind":"List","items":[...]}`)
//! gives one document per item, and several concatenated JSON values are
//! handled one after the other. Input that is not valid JSON is split as
//! YAML (of which JSON is a subset), so a syntax error is reported by the
//! parser with its position.
//!
//! [`parse_documents`] splits and parses every document into a
//! [`serde_json::Value`]; [`Document::parse`] parses one into any
//! deserialisable type. Errors are [`Error::Document`] with the document's
//! index and the error's line in the whole input.
//!
//! ```
//! use kubepkg_util::yaml::{split_documents, parse_documents};
//!
//! let input = "\
//! ## a comment-only document is skipped
//! ---
//! apiVersion: v1
//! kind: ConfigMap
//! data:
//!   script: |
//!     echo start
//!     ---
//!     echo still the same document
//! ---
//! apiVersion: v1
//! kind: Namespace
//! ";
//! let docs = split_documents(input);
//! assert_eq!(docs.len(), 2);
//! assert_eq!((docs[0].index, docs[0].line), (0, 3));
//! assert_eq!((docs[1].index, docs[1].line), (1, 11));
//!
//! let values = parse_documents(input)?;
//! assert_eq!(values[1].value["kind"], "Namespace");
//! assert!(values[0].value["data"]["script"].as_str().unwrap().contains("---"));
//! # Ok::<(), kubepkg_util::Error>(())
//! ```

use std::borrow::Cow;

use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::error::{Error, Result};

/// The syntax a [`Document`] was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocumentFormat {
    /// A YAML document (including JSON written as YAML).
    Yaml,
    /// A JSON value from a JSON input.
    Json,
}

/// One document of a multi-document input, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Document<'a> {
    /// The index among the non-empty documents, from 0.
    pub index: usize,
    /// The 1-based line of the input on which `text` starts.
    pub line: usize,
    /// The byte offset of `text` in the input.
    pub offset: usize,
    /// The document's text.
    pub text: &'a str,
    /// YAML or JSON.
    pub format: DocumentFormat,
}

impl Document<'_> {
    /// Parses this document into any deserialisable type.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T> {
        match self.format {
            DocumentFormat::Json => serde_json::from_str(self.text).map_err(|e| {
                let position = (e.line() > 0).then(|| (e.line(), e.column()));
                self.error(position, e.to_string())
            }),
            DocumentFormat::Yaml => serde_yaml::from_str(self.text).map_err(|e| {
                let position = e.location().map(|l| (l.line(), l.column()));
                self.error(position, e.to_string())
            }),
        }
    }

    /// Parses this document into a [`serde_json::Value`].
    pub fn to_value(&self) -> Result<serde_json::Value> {
        self.parse()
    }

    /// An [`Error::Document`] at `position` (1-based line and column within
    /// the document); line numbers inside the parser's message are made
    /// relative to the whole input too.
    fn error(&self, position: Option<(usize, usize)>, message: String) -> Error {
        let shift = self.line.saturating_sub(1);
        Error::Document {
            index: self.index,
            line: position.map_or(self.line, |(line, _)| line.max(1) + shift),
            message: shift_lines(&message, shift),
        }
    }
}

/// Adds `shift` to every number following `"line "` in a parser message.
fn shift_lines(message: &str, shift: usize) -> String {
    if shift == 0 {
        return message.to_owned();
    }
    let mut out = String::with_capacity(message.len() + 8);
    let mut rest = message;
    while let Some(at) = rest.find("line ") {
        let (head, tail) = rest.split_at(at + "line ".len());
        out.push_str(head);
        let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
        match tail[..digits].parse::<usize>() {
            Ok(n) => out.push_str(&n.saturating_add(shift).to_string()),
            Err(_) => out.push_str(&tail[..digits]),
        }
        rest = &tail[digits..];
    }
    out.push_str(rest);
    out
}

/// A parsed document: its index, its starting line and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedDocument {
    /// The index among the non-empty documents, from 0.
    pub index: usize,
    /// The 1-based line of the input on which the document starts.
    pub line: usize,
    /// The parsed value.
    pub value: serde_json::Value,
}

/// Splits and parses every document; the first error stops the parse.
pub fn parse_documents(input: &str) -> Result<Vec<ParsedDocument>> {
    split_documents(input)
        .into_iter()
        .map(|d| {
            Ok(ParsedDocument {
                index: d.index,
                line: d.line,
                value: d.to_value()?,
            })
        })
        .collect()
}

/// Splits a YAML or JSON input into its non-empty documents.
/// See the [module docs](self) for the rules.
pub fn split_documents(input: &str) -> Vec<Document<'_>> {
    let body = input.strip_prefix('\u{feff}').unwrap_or(input);
    let base = input.len() - body.len();
    if matches!(body.trim_start().as_bytes().first(), Some(b'{' | b'['))
        && let Some(docs) = split_json(input, base)
    {
        return docs;
    }
    split_yaml(input, base)
}

/// Counts lines up to increasing offsets without rescanning.
struct LineCounter<'a> {
    input: &'a [u8],
    pos: usize,
    line: usize,
}

impl LineCounter<'_> {
    fn line_at(&mut self, offset: usize) -> usize {
        let offset = offset.min(self.input.len());
        if offset < self.pos {
            self.pos = 0;
            self.line = 1;
        }
        self.line += self.input[self.pos..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.pos = offset;
        self.line
    }
}

// ---------------------------------------------------------------------------
// JSON

#[derive(serde::Deserialize)]
struct ListProbe<'a> {
    #[serde(borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    items: Option<Vec<&'a RawValue>>,
}

fn split_json(input: &str, base: usize) -> Option<Vec<Document<'_>>> {
    let body = &input[base..];
    let mut raws: Vec<&RawValue> = Vec::new();
    for value in serde_json::Deserializer::from_str(body).into_iter::<&RawValue>() {
        let value = value.ok()?;
        match value.get().as_bytes().first() {
            Some(b'[') => {
                let elements: Vec<&RawValue> = serde_json::from_str(value.get()).ok()?;
                raws.extend(elements);
            }
            Some(b'{') => {
                let probe: ListProbe<'_> = serde_json::from_str(value.get()).ok()?;
                match (probe.kind, probe.items) {
                    (Some(kind), Some(items)) if kind.ends_with("List") => raws.extend(items),
                    _ => raws.push(value),
                }
            }
            _ => raws.push(value),
        }
    }
    let mut lines = LineCounter {
        input: input.as_bytes(),
        pos: 0,
        line: 1,
    };
    let docs = raws
        .into_iter()
        .enumerate()
        .map(|(index, raw)| {
            let text = raw.get();
            // Every raw value borrows from `input`.
            let offset = (text.as_ptr() as usize)
                .wrapping_sub(input.as_ptr() as usize)
                .min(input.len());
            Document {
                index,
                line: lines.line_at(offset),
                offset,
                text,
                format: DocumentFormat::Json,
            }
        })
        .collect();
    Some(docs)
}

// ---------------------------------------------------------------------------
// YAML

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Normal,
    /// Inside a multi-line quoted scalar.
    Quoted {
        double: bool,
    },
    /// Inside a block scalar whose lines are indented more than `parent`.
    Block {
        parent: isize,
    },
}

struct Splitter<'a> {
    input: &'a str,
    docs: Vec<Document<'a>>,
    mode: Mode,
    flow_depth: usize,
    /// The previous line ended inside a plain scalar whose continuation
    /// lines are indented more than this column.
    plain_open: Option<isize>,
    /// Where the current document's content starts (offset, line).
    start: Option<(usize, usize)>,
    /// The line being scanned is the document's first content line, whose
    /// unindented nodes are the root (owned by column -1).
    root_line: bool,
}

/// Spaces and tabs separate tokens.
fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// The end of the line starting at `from` and the length of its line break
/// (0 at the end of the input). Line breaks are those of the YAML parser
/// (libyaml): LF, CRLF, a lone CR, and NEL, LS, PS.
fn next_break(bytes: &[u8], from: usize) -> (usize, usize) {
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => return (i, 1),
            b'\r' => {
                return (
                    i,
                    if bytes.get(i + 1) == Some(&b'\n') {
                        2
                    } else {
                        1
                    },
                );
            }
            0xC2 if bytes.get(i + 1) == Some(&0x85) => return (i, 2),
            0xE2 if bytes.get(i + 1) == Some(&0x80)
                && matches!(bytes.get(i + 2), Some(0xA8 | 0xA9)) =>
            {
                return (i, 3);
            }
            _ => i += 1,
        }
    }
    (bytes.len(), 0)
}

/// A document marker (`---` or `...`) at the start of the line.
fn marker(line: &[u8]) -> Option<u8> {
    if line.len() >= 3
        && (line.starts_with(b"---") || line.starts_with(b"..."))
        && line.get(3).is_none_or(|&b| is_blank(b))
    {
        Some(line[0])
    } else {
        None
    }
}

/// Finds the closing quote of a quoted scalar from `from`.
fn quote_end(line: &[u8], from: usize, double: bool) -> Option<usize> {
    let mut i = from;
    while i < line.len() {
        match line[i] {
            b'\\' if double => i += 2,
            b'"' if double => return Some(i),
            b'\'' if !double => {
                if line.get(i + 1) == Some(&b'\'') {
                    i += 2;
                } else {
                    return Some(i);
                }
            }
            _ => i += 1,
        }
    }
    None
}

impl<'a> Splitter<'a> {
    fn finish_document(&mut self, end: usize) {
        if let Some((offset, line)) = self.start.take() {
            let text = &self.input[offset..end.max(offset)];
            self.docs.push(Document {
                index: self.docs.len(),
                line,
                offset,
                text,
                format: DocumentFormat::Yaml,
            });
        }
    }

    fn mark_content(&mut self, offset: usize, line: usize) {
        if self.start.is_none() {
            self.start = Some((offset, line));
        }
    }

    fn reset(&mut self) {
        self.mode = Mode::Normal;
        self.flow_depth = 0;
        self.plain_open = None;
    }

    fn run(mut self, base: usize) -> Vec<Document<'a>> {
        let bytes = self.input.as_bytes();
        let mut line_start = base;
        let mut line_no = 1;
        while line_start < bytes.len() {
            let (line_end, break_len) = next_break(bytes, line_start);
            self.line(&bytes[line_start..line_end], line_start, line_no);
            line_start = line_end + break_len;
            line_no += 1;
        }
        self.finish_document(bytes.len());
        self.docs
    }

    fn line(&mut self, line: &[u8], line_start: usize, line_no: usize) {
        if !matches!(self.mode, Mode::Quoted { .. })
            && let Some(kind) = marker(line)
        {
            self.finish_document(line_start);
            self.reset();
            if kind == b'-' {
                // Content after `--- ` belongs to the new document, whose
                // text then starts with the marker (a single leading `---`
                // is valid YAML, and keeps the content's columns).
                let mut i = 3;
                while i < line.len() && is_blank(line[i]) {
                    i += 1;
                }
                if i < line.len() && line[i] != b'#' {
                    self.mark_content(line_start, line_no);
                    self.root_line = true;
                    self.scan(line, i, true, None, 0);
                }
            }
            return;
        }
        let indent = line.iter().take_while(|&&b| b == b' ').count();
        match self.mode {
            Mode::Quoted { double } => {
                // Still inside the string (its lines are content).
                if let Some(end) = quote_end(line, 0, double) {
                    self.mode = Mode::Normal;
                    self.scan(line, end + 1, false, None, indent);
                }
            }
            Mode::Block { parent } => {
                if line.iter().all(|&b| is_blank(b)) || indent as isize > parent {
                    return;
                }
                self.mode = Mode::Normal;
                self.normal_line(line, line_start, line_no, indent);
            }
            Mode::Normal => self.normal_line(line, line_start, line_no, indent),
        }
    }

    /// The owner column of a node that starts a line without an indicator:
    /// the root's (-1) on the document's first line, else just left of it.
    fn fallback_owner(&self, indent: usize) -> isize {
        if self.root_line {
            -1
        } else {
            indent as isize - 1
        }
    }

    fn normal_line(&mut self, line: &[u8], line_start: usize, line_no: usize, indent: usize) {
        let first = line.iter().position(|&b| !is_blank(b));
        let Some(first) = first else {
            return; // blank line
        };
        if line[first] == b'#' {
            return; // comment line (does not end a plain scalar's continuation)
        }
        if self.start.is_none() && first == 0 && line[0] == b'%' {
            return; // directive
        }
        self.root_line = self.start.is_none();
        self.mark_content(line_start, line_no);
        // A more indented line continues a plain scalar left open.
        let continued = self
            .plain_open
            .take()
            .filter(|&parent| self.flow_depth > 0 || indent as isize > parent);
        self.scan(line, 0, continued.is_none(), continued, indent);
    }

    /// Scans a line from `from` in normal mode, updating the mode for the
    /// following lines. `continued` is the owner column of a plain scalar
    /// that this line continues.
    fn scan(
        &mut self,
        line: &[u8],
        from: usize,
        mut expect_token: bool,
        continued: Option<isize>,
        indent: usize,
    ) {
        let n = line.len();
        let mut i = from;
        // Column of the node owning a block scalar or a plain continuation.
        let mut owner: Option<isize> = continued;
        let mut scalar_start = from;
        let mut in_plain = continued.is_some();
        loop {
            while i < n && is_blank(line[i]) {
                i += 1;
            }
            if i >= n {
                break;
            }
            let c = line[i];
            if c == b'#' && (i == 0 || is_blank(line[i - 1])) {
                // A comment ends a plain scalar for good.
                return;
            }
            let next_blank = line.get(i + 1).is_none_or(|&b| is_blank(b));
            if expect_token {
                match c {
                    b'"' | b'\'' => {
                        scalar_start = i;
                        let double = c == b'"';
                        match quote_end(line, i + 1, double) {
                            Some(end) => {
                                i = end + 1;
                                expect_token = false;
                                in_plain = false;
                                continue;
                            }
                            None => {
                                self.mode = Mode::Quoted { double };
                                return;
                            }
                        }
                    }
                    b'|' | b'>' if self.flow_depth == 0 => {
                        let mut j = i + 1;
                        while j < n
                            && (line[j].is_ascii_digit() || line[j] == b'+' || line[j] == b'-')
                        {
                            j += 1;
                        }
                        if j == n || is_blank(line[j]) {
                            let parent = owner.unwrap_or(self.fallback_owner(indent));
                            self.mode = Mode::Block { parent };
                            return;
                        }
                    }
                    b'-' | b'?' | b':' if next_blank && (c != b'-' || self.flow_depth == 0) => {
                        if c != b':' {
                            owner = Some(i as isize);
                        }
                        i += 1;
                        in_plain = false;
                        continue;
                    }
                    b'[' | b'{' => {
                        self.flow_depth += 1;
                        i += 1;
                        in_plain = false;
                        continue;
                    }
                    b']' | b'}' => {
                        self.flow_depth = self.flow_depth.saturating_sub(1);
                        i += 1;
                        expect_token = false;
                        in_plain = false;
                        continue;
                    }
                    b',' if self.flow_depth > 0 => {
                        i += 1;
                        in_plain = false;
                        continue;
                    }
                    b'&' | b'!' => {
                        // Anchor or tag: the node itself follows.
                        while i < n && !is_blank(line[i]) {
                            i += 1;
                        }
                        continue;
                    }
                    _ => {}
                }
                // A plain scalar (or an alias) starts here.
                scalar_start = i;
                expect_token = false;
                in_plain = true;
                i += 1;
                continue;
            }
            let flow_break =
                self.flow_depth > 0 && line.get(i + 1).is_some_and(|b| b",[]{}".contains(b));
            match c {
                b':' if next_blank || flow_break => {
                    owner = Some(scalar_start as isize);
                    expect_token = true;
                    in_plain = false;
                }
                b',' if self.flow_depth > 0 => {
                    expect_token = true;
                    in_plain = false;
                }
                b']' | b'}' if self.flow_depth > 0 => {
                    self.flow_depth -= 1;
                    in_plain = false;
                }
                _ => {}
            }
            i += 1;
        }
        if in_plain {
            self.plain_open = Some(owner.unwrap_or(self.fallback_owner(indent)));
        } else if self.flow_depth > 0 && expect_token {
            // Inside a flow collection after `[`, `{`, `,` or `:`.
            self.plain_open = None;
        }
    }
}

fn split_yaml(input: &str, base: usize) -> Vec<Document<'_>> {
    Splitter {
        input,
        docs: Vec::new(),
        mode: Mode::Normal,
        flow_depth: 0,
        plain_open: None,
        start: None,
        root_line: false,
    }
    .run(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(input: &str) -> Vec<(usize, &str)> {
        split_documents(input)
            .into_iter()
            .map(|d| (d.line, d.text))
            .collect()
    }

    #[test]
    fn splits_and_skips_empty_documents() {
        let input = "---\n# only a comment\n---\na: 1\n---\n\n---\nb: 2\n...\n# trailing\n";
        assert_eq!(texts(input), vec![(4, "a: 1\n"), (8, "b: 2\n")]);
        assert!(split_documents("").is_empty());
        assert!(split_documents("   \n# x\n---\n---\n").is_empty());
        let docs = split_documents("a: 1\n---\nb: 2");
        assert_eq!(docs.iter().map(|d| d.index).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(docs[1].text, "b: 2");
    }

    #[test]
    fn inline_content_after_marker() {
        assert_eq!(
            texts("--- a: 1\n--- # note\nb: 2\n"),
            vec![(1, "--- a: 1\n"), (3, "b: 2\n")]
        );
        assert_eq!(
            texts("--- |\n  text\n---\nx: 1\n"),
            vec![(1, "--- |\n  text\n"), (4, "x: 1\n")]
        );
        let docs = split_documents("--- ...\n--- --- x\n");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].to_value().expect("plain scalar"), "...");
        // Not markers: `----`, `---x`, indented `---`.
        assert_eq!(texts("a: ---x\n----\n").len(), 1);
    }

    #[test]
    fn block_scalars_and_quotes_hide_separators() {
        let input = "a: |\n  one\n  ---\n  two\nb: >-\n  ---\n---\nc: 'multi\n---\nline'\n---\nd: \"x\n---\ny\"\n---\ne: it's\n---\nf: 1 # it's\n---\ng: 2\n";
        let got = texts(input);
        assert_eq!(got.len(), 6, "{got:?}");
        assert_eq!(got[0].0, 1);
        assert_eq!(got[1], (8, "c: 'multi\n---\nline'\n"));
        assert_eq!(got[2], (12, "d: \"x\n---\ny\"\n"));
        assert_eq!(got[3], (16, "e: it's\n"));
        assert_eq!(got[5], (20, "g: 2\n"));
    }

    #[test]
    fn quotes_inside_block_scalars_do_not_open_strings() {
        let input = "script: |\n  echo \"unterminated\n  it's\n---\nnext: 1\n";
        assert_eq!(texts(input).len(), 2);
        let input = "- |\n  \"x\n- y\n---\nz: 1\n";
        assert_eq!(texts(input).len(), 2);
        let input = "a:\n  - key: |\n      'x\n    other: 1\n---\nz: 1\n";
        assert_eq!(texts(input).len(), 2);
    }

    #[test]
    fn plain_scalar_continuations_are_not_quotes() {
        let input = "key: a long\n  'continued plain\n---\nz: 1\n";
        assert_eq!(texts(input).len(), 2);
        let input = "root plain\n?\n\n'still plain\n---\nz: 1\n";
        assert_eq!(texts(input).len(), 2);
        let input = " indented root\n- 'still plain\n---\nz: 1\n";
        assert_eq!(texts(input).len(), 2);
    }

    #[test]
    fn every_yaml_line_break_counts() {
        let docs = split_documents("a: 1\r---\rb: 2\u{2028}---\u{85}c: 3\n");
        assert_eq!(
            docs.iter().map(|d| (d.line, d.text)).collect::<Vec<_>>(),
            vec![(1, "a: 1\r"), (3, "b: 2\u{2028}"), (5, "c: 3\n")]
        );
        assert_eq!(docs[2].to_value().expect("parse")["c"], 3);
    }

    #[test]
    fn crlf_and_bom() {
        let docs = split_documents("\u{feff}a: 1\r\n---\r\nb: 2\r\n");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].line, 3);
        assert_eq!(docs[1].to_value().expect("parse")["b"], 2);
    }

    #[test]
    fn json_inputs() {
        let object = "{\"kind\":\"Pod\"}";
        let docs = split_documents(object);
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].format, DocumentFormat::Json);

        let array = "[\n {\"a\":1},\n {\"b\":2}\n]";
        let docs = split_documents(array);
        assert_eq!(
            docs.iter().map(|d| (d.line, d.text)).collect::<Vec<_>>(),
            vec![(2, "{\"a\":1}"), (3, "{\"b\":2}")]
        );

        let list = "{\"apiVersion\":\"v1\",\"kind\":\"List\",\n\"items\":[{\"kind\":\"A\"},\n{\"kind\":\"B\"}]}";
        let values = parse_documents(list).expect("parse");
        assert_eq!(
            values.iter().map(|v| (v.index, v.line)).collect::<Vec<_>>(),
            vec![(0, 2), (1, 3)]
        );
        assert_eq!(values[1].value["kind"], "B");

        let typed_list = "{\"kind\":\"PodList\",\"items\":[]}";
        assert!(split_documents(typed_list).is_empty());

        let stream = "{\"a\":1}\n{\"b\":2}\n";
        assert_eq!(split_documents(stream).len(), 2);

        // Flow-style YAML is not JSON: it falls back to the YAML splitter.
        let flow = "{a: 1}\n---\n{b: 2}\n";
        let docs = split_documents(flow);
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].format, DocumentFormat::Yaml);
    }

    #[test]
    fn errors_carry_index_and_absolute_line() {
        let input = "a: 1\n---\nb: 2\nc: [unclosed\nd: 3\n";
        let err = parse_documents(input).expect_err("bad yaml");
        match &err {
            Error::Document {
                index,
                line,
                message,
            } => {
                assert_eq!(*index, 1);
                assert!((3..=6).contains(line), "line {line}");
                // Positions in the message are absolute too.
                assert!(message.contains(&format!("line {line}")), "{message}");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(err.kind(), crate::ErrorKind::Invalid);

        // Invalid JSON falls back to YAML, whose parser reports it...
        let json = "[{\"a\":1},\n{\"b\":1}}]";
        assert!(matches!(
            parse_documents(json),
            Err(Error::Document { index: 0, .. })
        ));
        // ...or accepts it when it happens to be valid YAML.
        let yamlish = "[{\"a\":1}, {\"b\": tru}]";
        assert_eq!(
            parse_documents(yamlish).expect("valid YAML")[0].value[1]["b"],
            "tru"
        );

        let doc = &split_documents("x: [1, 2]\n---\nname: 5\n")[1];
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Named {
            name: Vec<String>,
        }
        match doc.parse::<Named>() {
            Err(Error::Document {
                index: 1, line: 3, ..
            }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}
