//! Go-style durations: `1h30m`, `250ms`, `1.5h`, `-2s`, `1µs`, `0`.
//!
//! The syntax is that of Go's `time.ParseDuration`: an optional sign, then
//! one or more decimal numbers (with an optional fraction), each followed by
//! a unit — `ns`, `us` (or `µs` / `μs`), `ms`, `s`, `m`, `h`. A bare `0` is
//! allowed. Formatting follows Go's `time.Duration.String()`: `1h30m0s`,
//! `250ms`, `1.5µs`, `0s`.
//!
//! - [`parse`] / [`format()`] work with [`std::time::Duration`] (negative
//!   inputs are an error);
//! - [`GoDuration`] is the signed variant (Go's `time.Duration`, a signed
//!   64-bit count of nanoseconds), with `FromStr`, `Display` and serde as a
//!   string;
//! - the [`self::serde`] module serialises a `std::time::Duration`
//!   field as a Go duration string: `#[serde(with = "kubepkg_util::duration::serde")]`,
//!   and [`self::serde::option`] does the same for
//!   `Option<Duration>`.
//!
//! Like Go, a value must fit 2⁶³−1 nanoseconds (about 292 years) and
//! fractional parts are computed the way Go computes them, so both sides
//! agree on every input.
//!
//! ```
//! use std::time::Duration;
//! use kubepkg_util::duration::{self, GoDuration};
//!
//! assert_eq!(duration::parse("1h30m")?, Duration::from_secs(5400));
//! assert_eq!(duration::parse("1.5h")?, Duration::from_secs(5400));
//! assert_eq!(duration::format(Duration::from_millis(250)), "250ms");
//! assert_eq!(duration::format(Duration::from_secs(5400)), "1h30m0s");
//! let neg: GoDuration = "-2s".parse()?;
//! assert_eq!(neg.as_nanos(), -2_000_000_000);
//! assert_eq!(neg.to_string(), "-2s");
//! # Ok::<(), kubepkg_util::Error>(())
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::error::{Error, Result};

const WHAT: &str = "duration";

const NANOSECOND: u64 = 1;
const MICROSECOND: u64 = 1_000 * NANOSECOND;
const MILLISECOND: u64 = 1_000 * MICROSECOND;
const SECOND: u64 = 1_000 * MILLISECOND;
const MINUTE: u64 = 60 * SECOND;
const HOUR: u64 = 60 * MINUTE;

/// A signed duration with nanosecond resolution, like Go's `time.Duration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct GoDuration(i64);

impl GoDuration {
    /// Zero.
    pub const ZERO: GoDuration = GoDuration(0);

    /// From a signed count of nanoseconds.
    pub const fn from_nanos(nanos: i64) -> GoDuration {
        GoDuration(nanos)
    }

    /// The signed count of nanoseconds.
    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// Whether the duration is below zero.
    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// The `std` duration, or `None` when negative.
    pub fn to_std(self) -> Option<Duration> {
        u64::try_from(self.0).ok().map(Duration::from_nanos)
    }

    /// From a `std` duration, or `None` beyond 2⁶³−1 nanoseconds.
    pub fn from_std(d: Duration) -> Option<GoDuration> {
        i64::try_from(d.as_nanos()).ok().map(GoDuration)
    }

    /// Parses Go duration syntax (see the [module docs](self)).
    pub fn parse(s: &str) -> Result<GoDuration> {
        parse_signed(s).map(GoDuration)
    }
}

impl fmt::Display for GoDuration {
    /// Go's `Duration.String()`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_go(f, self.0 < 0, u128::from(self.0.unsigned_abs()))
    }
}

impl FromStr for GoDuration {
    type Err = Error;

    fn from_str(s: &str) -> Result<GoDuration> {
        GoDuration::parse(s)
    }
}

impl ::serde::Serialize for GoDuration {
    fn serialize<S: ::serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> ::serde::Deserialize<'de> for GoDuration {
    fn deserialize<D: ::serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(deserializer)?;
        GoDuration::parse(&s).map_err(::serde::de::Error::custom)
    }
}

/// Parses a Go duration string into a non-negative [`Duration`].
///
/// Negative durations (`-2s`) are rejected; use [`GoDuration`] for those.
pub fn parse(s: &str) -> Result<Duration> {
    let nanos = parse_signed(s)?;
    u64::try_from(nanos)
        .map(Duration::from_nanos)
        .map_err(|_| invalid(s, "negative durations are not allowed here"))
}

/// Formats a [`Duration`] like Go's `time.Duration.String()`.
///
/// Durations beyond Go's range (about 292 years) are printed with the same
/// rules, with more hours.
pub fn format(d: Duration) -> String {
    FormatGo(d.as_nanos()).to_string()
}

struct FormatGo(u128);

impl fmt::Display for FormatGo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_go(f, false, self.0)
    }
}

fn invalid(s: &str, why: &str) -> Error {
    let shown: String = s.chars().take(64).collect();
    Error::invalid(WHAT, format!("{shown:?}: {why}"))
}

/// Go's `time.ParseDuration`, returning signed nanoseconds.
fn parse_signed(input: &str) -> Result<i64> {
    let bad = || {
        invalid(
            input,
            "expected a number followed by a unit, e.g. \"1h30m\" or \"250ms\"",
        )
    };
    let mut s = input.as_bytes();
    let mut negative = false;
    if let [sign @ (b'-' | b'+'), rest @ ..] = s {
        negative = *sign == b'-';
        s = rest;
    }
    if s == b"0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        // Integer part; Go's `leadingInt` fails past 2^63.
        let start_len = s.len();
        let mut v: u64 = 0;
        let mut i = 0;
        while i < s.len() && s[i].is_ascii_digit() {
            if v > (1u64 << 63) / 10 {
                return Err(invalid(input, "out of range"));
            }
            v = v * 10 + u64::from(s[i] - b'0');
            if v > 1u64 << 63 {
                return Err(invalid(input, "out of range"));
            }
            i += 1;
        }
        let pre = i > 0;
        s = &s[i..];
        // Fraction; Go's `leadingFraction` stops accumulating on overflow.
        let mut frac: u64 = 0;
        let mut scale: f64 = 1.0;
        let mut post = false;
        if let [b'.', rest @ ..] = s {
            s = rest;
            let mut overflow = false;
            let mut j = 0;
            while j < s.len() && s[j].is_ascii_digit() {
                if !overflow {
                    if frac > (1u64 << 63) / 10 {
                        overflow = true;
                    } else {
                        let y = frac * 10 + u64::from(s[j] - b'0');
                        if y > 1u64 << 63 {
                            overflow = true;
                        } else {
                            frac = y;
                            scale *= 10.0;
                        }
                    }
                }
                j += 1;
            }
            post = j > 0;
            s = &s[j..];
        }
        if !pre && !post {
            return Err(bad());
        }
        // Unit: everything up to the next '.' or digit.
        let mut k = 0;
        while k < s.len() && s[k] != b'.' && !s[k].is_ascii_digit() {
            k += 1;
        }
        if k == 0 {
            return Err(invalid(input, "missing unit"));
        }
        let unit = match &s[..k] {
            b"ns" => NANOSECOND,
            // "µs" (U+00B5) and "μs" (U+03BC) in UTF-8.
            b"us" | b"\xc2\xb5s" | b"\xce\xbcs" => MICROSECOND,
            b"ms" => MILLISECOND,
            b"s" => SECOND,
            b"m" => MINUTE,
            b"h" => HOUR,
            other => {
                let unit = String::from_utf8_lossy(other);
                return Err(invalid(input, &format!("unknown unit {unit:?}")));
            }
        };
        s = &s[k..];
        if v > (1u64 << 63) / unit {
            return Err(invalid(input, "out of range"));
        }
        v *= unit;
        if frac > 0 {
            // Same float arithmetic as Go, so both round identically.
            v += (frac as f64 * (unit as f64 / scale)) as u64;
            if v > 1u64 << 63 {
                return Err(invalid(input, "out of range"));
            }
        }
        total += v;
        if total > 1u64 << 63 {
            return Err(invalid(input, "out of range"));
        }
        debug_assert!(s.len() < start_len);
    }
    if negative {
        // -(2^63) is representable.
        Ok(0i64.wrapping_sub_unsigned(total))
    } else if total > i64::MAX as u64 {
        Err(invalid(input, "out of range"))
    } else {
        Ok(total as i64)
    }
}

/// Go's `Duration.String()` for a magnitude in nanoseconds.
fn write_go(f: &mut fmt::Formatter<'_>, negative: bool, nanos: u128) -> fmt::Result {
    if nanos == 0 {
        return f.write_str("0s");
    }
    if negative {
        f.write_str("-")?;
    }
    let second = u128::from(SECOND);
    if nanos < second {
        let (unit, per) = if nanos < u128::from(MICROSECOND) {
            return write!(f, "{nanos}ns");
        } else if nanos < u128::from(MILLISECOND) {
            ("µs", u128::from(MICROSECOND))
        } else {
            ("ms", u128::from(MILLISECOND))
        };
        write_fraction(f, nanos / per, nanos % per, per)?;
        return f.write_str(unit);
    }
    let hours = nanos / u128::from(HOUR);
    let minutes = (nanos / u128::from(MINUTE)) % 60;
    let rest = nanos % u128::from(MINUTE);
    if hours > 0 {
        write!(f, "{hours}h")?;
    }
    if hours > 0 || minutes > 0 {
        write!(f, "{minutes}m")?;
    }
    write_fraction(f, rest / second, rest % second, second)?;
    f.write_str("s")
}

/// Writes `whole.fraction` where `fraction / per` is the fractional part,
/// without trailing zeros (and without the dot when it is zero).
fn write_fraction(
    f: &mut fmt::Formatter<'_>,
    whole: u128,
    fraction: u128,
    per: u128,
) -> fmt::Result {
    write!(f, "{whole}")?;
    if fraction == 0 {
        return Ok(());
    }
    let mut digits = per.ilog10() as usize;
    let mut frac = fraction;
    while frac.is_multiple_of(10) {
        frac /= 10;
        digits -= 1;
    }
    write!(f, ".{frac:0digits$}")
}

/// Serde helpers for a [`Duration`] field stored as a Go duration string.
///
/// ```
/// use std::time::Duration;
///
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Config {
///     #[serde(with = "kubepkg_util::duration::serde")]
///     timeout: Duration,
///     #[serde(default, with = "kubepkg_util::duration::serde::option")]
///     resync: Option<Duration>,
/// }
///
/// let c: Config = serde_json::from_str(r#"{"timeout":"1m30s"}"#)?;
/// assert_eq!(c.timeout, Duration::from_secs(90));
/// assert_eq!(c.resync, None);
/// assert_eq!(serde_json::to_string(&c)?, r#"{"timeout":"1m30s","resync":null}"#);
/// # Ok::<(), serde_json::Error>(())
/// ```
pub mod serde {
    use std::time::Duration;

    /// Serialises as a Go duration string.
    pub fn serialize<S: ::serde::Serializer>(
        d: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&super::FormatGo(d.as_nanos()))
    }

    /// Deserialises from a Go duration string (negative values are rejected).
    pub fn deserialize<'de, D: ::serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        let s = <std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(deserializer)?;
        super::parse(&s).map_err(::serde::de::Error::custom)
    }

    /// The same for `Option<Duration>` (`null` is `None`); combine with
    /// `#[serde(default)]` so a missing field is `None` too.
    pub mod option {
        use std::time::Duration;

        /// Serialises `Some` as a Go duration string and `None` as null.
        pub fn serialize<S: ::serde::Serializer>(
            d: &Option<Duration>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => serializer.collect_str(&super::super::FormatGo(d.as_nanos())),
                None => serializer.serialize_none(),
            }
        }

        /// Deserialises null as `None` and a string as a Go duration.
        pub fn deserialize<'de, D: ::serde::Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<Duration>, D::Error> {
            let s = <Option<std::borrow::Cow<'de, str>> as ::serde::Deserialize>::deserialize(
                deserializer,
            )?;
            s.map(|s| super::super::parse(&s).map_err(::serde::de::Error::custom))
                .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nanos(s: &str) -> i64 {
        match GoDuration::parse(s) {
            Ok(d) => d.as_nanos(),
            Err(e) => panic!("{s}: {e}"),
        }
    }

    #[test]
    fn parses_go_syntax() {
        for (s, want) in [
            ("0", 0),
            ("-0", 0),
            ("+0", 0),
            ("5s", 5 * SECOND as i64),
            ("1h30m", 90 * MINUTE as i64),
            ("1.5h", 90 * MINUTE as i64),
            ("250ms", 250 * MILLISECOND as i64),
            ("-2s", -2 * SECOND as i64),
            ("1us", 1_000),
            ("1µs", 1_000),
            ("1μs", 1_000),
            ("1ns", 1),
            (".5s", 500 * MILLISECOND as i64),
            ("1.s", SECOND as i64),
            ("1h1m1s1ms1us1ns", 3_661_001_001_001),
            ("9223372036854775807ns", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
            ("0.3333333333333333333h", 1_200_000_000_000),
        ] {
            assert_eq!(nanos(s), want, "{s}");
        }
    }

    #[test]
    fn rejects_bad_syntax() {
        for bad in [
            "",
            "-",
            "1",
            "s",
            ".s",
            "1d",
            "1.5",
            "3000000h",
            "9223372036854775808ns",
            "1h-1m",
            "1 s",
            " 1s",
            "1s ",
            "+-1s",
        ] {
            let err = GoDuration::parse(bad).expect_err(bad);
            assert!(
                matches!(
                    err,
                    Error::Invalid {
                        what: "duration",
                        ..
                    }
                ),
                "{bad}"
            );
        }
        assert!(parse("-1s").is_err());
    }

    #[test]
    fn formats_like_go() {
        for (n, want) in [
            (0i64, "0s"),
            (1, "1ns"),
            (1_100, "1.1µs"),
            (2_200_000, "2.2ms"),
            (3_300_000_000, "3.3s"),
            (4 * MINUTE as i64 + 5 * SECOND as i64, "4m5s"),
            (4 * MINUTE as i64 + 5_001 * MILLISECOND as i64, "4m5.001s"),
            (
                5 * HOUR as i64 + 6 * MINUTE as i64 + 7_001 * MILLISECOND as i64,
                "5h6m7.001s",
            ),
            (8 * MINUTE as i64 + 1, "8m0.000000001s"),
            (HOUR as i64, "1h0m0s"),
            (-(SECOND as i64), "-1s"),
            (i64::MAX, "2562047h47m16.854775807s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
        ] {
            assert_eq!(GoDuration::from_nanos(n).to_string(), want, "{n}");
        }
        assert_eq!(
            format(Duration::from_secs(u64::MAX)),
            "5124095576030431h0m15s"
        );
    }

    #[test]
    fn std_conversions() {
        assert_eq!(GoDuration::from_nanos(-1).to_std(), None);
        assert_eq!(
            GoDuration::from_std(Duration::from_secs(1)),
            Some(GoDuration::from_nanos(1_000_000_000))
        );
        assert_eq!(GoDuration::from_std(Duration::from_secs(u64::MAX)), None);
        let d: GoDuration = serde_json::from_str("\"-1m\"").expect("de");
        assert_eq!(serde_json::to_string(&d).expect("ser"), "\"-1m0s\"");
    }
}
