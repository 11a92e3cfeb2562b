//! Splitting any text must not panic, and the documents must be honest
//! slices of the input with increasing indices and lines; parsing each one
//! may fail but must not panic either.
#![no_main]

use kubepkg_util::yaml::split_documents;
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
        let newlines_before = input.as_bytes()[..doc.offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        assert_eq!(doc.line, newlines_before + 1, "line matches offset");
        assert!(
            doc.text
                .bytes()
                .any(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n')),
            "empty documents are skipped"
        );
        let _ = doc.to_value();
    }
});
