//! Splitting any text must not panic, and the documents must be honest
//! slices of the input with increasing indices and lines; parsing each one
//! may fail but must not panic either.
#![no_main]

use kubepkg_util::yaml::{DocumentFormat, split_documents};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let docs = split_documents(input);
    let mut last_line = 0;
    for (i, doc) in docs.iter().enumerate() {
        assert_eq!(doc.index, i);
        assert!(doc.line >= 1 && doc.line >= last_line, "lines go forward");
        last_line = doc.line;
        let end = doc.offset + doc.text.len();
        assert!(end <= input.len());
        assert_eq!(
            &input[doc.offset..end],
            doc.text,
            "text is the slice at offset"
        );
        let before = &input[..doc.offset];
        let breaks = match doc.format {
            DocumentFormat::Json => before.matches('\n').count(),
            // YAML line breaks: LF, CRLF, CR, NEL, LS, PS.
            DocumentFormat::Yaml => before
                .replace("\r\n", "\n")
                .matches(['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}'])
                .count(),
        };
        assert_eq!(doc.line, breaks + 1, "line matches offset");
        assert!(
            doc.text.chars().any(|c| !matches!(
                c,
                ' ' | '\t' | '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}'
            )),
            "empty documents are skipped"
        );
        let _ = doc.to_value();
    }
});
