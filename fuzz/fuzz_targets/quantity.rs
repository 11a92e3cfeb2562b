//! Parsing any string as a quantity must not panic; whatever parses must
//! print canonically and read back as the same value, and arithmetic on it
//! must not panic.
#![no_main]

use kubepkg_util::quantity::Quantity;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(q) = Quantity::parse(input) else {
        return;
    };
    let text = q.to_string();
    let back = match Quantity::parse(&text) {
        Ok(back) => back,
        Err(e) => panic!("canonical {text:?} of {input:?} does not parse: {e}"),
    };
    assert_eq!(back, q, "{input:?} -> {text:?}");
    // Canonical text is stable once its format family is settled (a binary
    // quantity printed without suffix, e.g. `64000` for `62.5Ki`, reads
    // back as decimal and then prints as `64k`, as in apimachinery).
    let again = back.to_string();
    if back.format() == q.format() {
        assert_eq!(again, text, "formatting is idempotent");
    }
    assert_eq!(
        Quantity::parse(&again).map(|x| x.to_string()).ok(),
        Some(again.clone()),
        "stable after one round"
    );
    let _ = q.checked_add(back);
    let _ = q.checked_sub(back);
    let _ = q.checked_mul(-7);
    let _ = q + back;
    let _ = -q;
    let _ = (
        q.as_milli(),
        q.as_i64_ceil(),
        q.as_i64_floor(),
        q.as_i64_exact(),
        q.as_f64(),
    );
});
