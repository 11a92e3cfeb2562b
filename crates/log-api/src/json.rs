//! Small JSON writing helpers over `fmt::Write`, shared by the formatters
//! this crate owns (the `tracing` JSON event format, the `log` sink, the
//! writer's drop reports).

use std::fmt::{self, Write};

/// Writes `s` as a JSON string literal, quotes included.
pub(crate) fn write_str(out: &mut dyn Write, s: &str) -> fmt::Result {
    out.write_char('"')?;
    Escaper(out).write_str(s)?;
    out.write_char('"')
}

/// Writes the `Display` of `value` as a JSON string literal without an
/// intermediate allocation.
pub(crate) fn write_display(out: &mut dyn Write, value: &dyn fmt::Display) -> fmt::Result {
    out.write_char('"')?;
    write!(Escaper(out), "{value}")?;
    out.write_char('"')
}

/// Writes the `Debug` of `value` as a JSON string literal.
pub(crate) fn write_debug(out: &mut dyn Write, value: &dyn fmt::Debug) -> fmt::Result {
    out.write_char('"')?;
    write!(Escaper(out), "{value:?}")?;
    out.write_char('"')
}

/// Writes a float as a JSON number, or as a string for NaN and infinities.
pub(crate) fn write_f64(out: &mut dyn Write, value: f64) -> fmt::Result {
    if value.is_finite() {
        write!(out, "{value}")
    } else {
        write_display(out, &value)
    }
}

/// Writes `,"key":` (every object starts with a fixed first key).
pub(crate) fn write_key(out: &mut dyn Write, key: &str) -> fmt::Result {
    out.write_char(',')?;
    write_str(out, key)?;
    out.write_char(':')
}

/// Escapes everything written through it for the inside of a JSON string.
pub(crate) struct Escaper<'a>(pub(crate) &'a mut dyn Write);

impl Write for Escaper<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let bytes = s.as_bytes();
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let escape: Option<&str> = match b {
                b'"' => Some("\\\""),
                b'\\' => Some("\\\\"),
                b'\n' => Some("\\n"),
                b'\r' => Some("\\r"),
                b'\t' => Some("\\t"),
                0x00..=0x1f | 0x7f => None,
                _ => continue,
            };
            // `i` is at an ASCII byte, so both slices fall on char boundaries.
            self.0.write_str(&s[start..i])?;
            match escape {
                Some(e) => self.0.write_str(e)?,
                None => write!(self.0, "\\u{b:04x}")?,
            }
            start = i + 1;
        }
        self.0.write_str(&s[start..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_round_trip_through_serde_json() {
        let nasty = "quote\" back\\slash \n\r\t bell\u{7} del\u{7f} ünï 😀";
        let mut out = String::new();
        write_str(&mut out, nasty).unwrap();
        let back: String = serde_json::from_str(&out).unwrap();
        assert_eq!(back, nasty);

        let mut out = String::new();
        write_debug(&mut out, &"a\"b").unwrap();
        let back: String = serde_json::from_str(&out).unwrap();
        assert_eq!(back, "\"a\\\"b\"");

        let mut out = String::new();
        write_f64(&mut out, f64::NAN).unwrap();
        assert_eq!(out, "\"NaN\"");
    }
}
