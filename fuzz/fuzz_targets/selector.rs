//! Parsing any string as a label or field selector must not panic; a parsed
//! label selector must render to a string that parses back to it.
#![no_main]

use std::collections::BTreeMap;

use kubepkg_util::selector::{FieldSelector, Selector};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(selector) = Selector::parse(input) {
        let text = selector.to_string();
        let back = match Selector::parse(&text) {
            Ok(back) => back,
            Err(e) => panic!("rendered {text:?} of {input:?} does not parse: {e}"),
        };
        assert_eq!(back, selector);
        let labels: BTreeMap<String, String> = selector
            .requirements()
            .iter()
            .filter_map(|r| r.values().first().map(|v| (r.key().to_owned(), v.clone())))
            .collect();
        assert_eq!(back.matches(&labels), selector.matches(&labels));
    }
    if let Ok(fields) = FieldSelector::parse(input) {
        let text = fields.to_string();
        assert!(
            FieldSelector::parse(&text).is_ok(),
            "rendered {text:?} parses"
        );
    }
});
