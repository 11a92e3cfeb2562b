//! Parsing any string as a Go duration must not panic; whatever parses must
//! format and read back to the same number of nanoseconds.
#![no_main]

use kubepkg_util::duration::{self, GoDuration};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(d) = GoDuration::parse(input) {
        let text = d.to_string();
        assert_eq!(
            GoDuration::parse(&text).ok(),
            Some(d),
            "{input:?} -> {text:?}"
        );
    }
    if let Ok(d) = duration::parse(input) {
        let text = duration::format(d);
        assert_eq!(
            duration::parse(&text).ok(),
            Some(d),
            "{input:?} -> {text:?}"
        );
    }
});
