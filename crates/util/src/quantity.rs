//! Kubernetes resource quantities (`100m`, `1.5Gi`, `2e3`, ...).
//!
//! A [`Quantity`] is a fixed-point number as used in `resources.requests`,
//! `resources.limits`, storage sizes and so on. This module follows the rules
//! of `k8s.io/apimachinery/pkg/api/resource.Quantity`:
//!
//! - **Syntax**: an optional sign, decimal digits with an optional fraction,
//!   and an optional suffix: a binary SI suffix (`Ki`, `Mi`, `Gi`, `Ti`, `Pi`,
//!   `Ei`), a decimal SI suffix (`n`, `u`, `m`, `k`, `M`, `G`, `T`, `P`, `E`)
//!   or a decimal exponent (`e3`, `E-6`).
//! - **Precision**: values are kept exactly, in nano-units (10⁻⁹). Anything
//!   finer is rounded *up* (away from zero) to the next nano-unit, as the API
//!   server does: `0.1n` becomes `1n`.
//! - **Format family**: each quantity remembers whether it was written with a
//!   binary suffix ([`Format::BinarySI`]), a decimal suffix
//!   ([`Format::DecimalSI`]) or an exponent ([`Format::DecimalExponent`]), and
//!   its canonical string stays in that family.
//! - **Canonical form** ([`Display`](std::fmt::Display)): the largest suffix
//!   of the family that represents the value with an integer mantissa, e.g.
//!   `1.5Gi` → `1536Mi`, `0.5` → `500m`, `1000m` → `1`, `1024Ki` → `1Mi`,
//!   `2e3` → `2e3`. A binary quantity that is smaller than 1024 in magnitude or
//!   not a whole number is printed in the decimal SI family (`0.5Ki` → `512`,
//!   `0.0001Ki` → `102400u`).
//! - **Comparison** is by value, whatever the format: `1000m == 1`,
//!   `1Gi > 1G`.
//!
//! # Range
//!
//! The value is an `i128` count of nano-units, so magnitudes up to about
//! 1.7 × 10²⁹ are exact. Larger inputs (which the Go implementation keeps as
//! arbitrary-precision decimals) are rejected with an "out of range" error
//! rather than being silently wrong. As in Go, a binary-SI input larger than
//! `i64::MAX` (e.g. `9Ei`) is clamped to `i64::MAX`.
//!
//! # Differences from the Go implementation
//!
//! - Go echoes the *original* spelling of some inputs that are already
//!   canonical up to cosmetics (`+1`, `01`, `1.`, `1e+3`, `1E3`); this type
//!   always prints the canonical spelling (`1`, `1`, `1`, `1e3`, `1e3`).
//! - Go prints decimal-SI values of 10²¹ and more with no suffix at all
//!   (`1000E` → `1`, changing the value); this type keeps the largest suffix
//!   (`1000E`), so formatting never changes a value.
//! - A binary-SI value above `i64::MAX` (reachable only through arithmetic,
//!   e.g. `4Ei + 4Ei`) is printed in decimal SI here, because its binary
//!   spelling (`8Ei`) would be clamped when read back.
//!
//! ```
//! use kubepkg_util::quantity::{Format, Quantity};
//!
//! let a: Quantity = "1.5Gi".parse()?;
//! let b: Quantity = "512Mi".parse()?;
//! let sum = a.checked_add(b).expect("in range");
//! assert_eq!(sum.to_string(), "2Gi");
//! assert_eq!(sum.format(), Format::BinarySI);
//! assert!("1Gi".parse::<Quantity>()? > "1G".parse::<Quantity>()?);
//! assert_eq!("1000m".parse::<Quantity>()?, "1".parse::<Quantity>()?);
//! assert_eq!("250m".parse::<Quantity>()?.as_milli(), 250);
//! # Ok::<(), kubepkg_util::Error>(())
//! ```

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::iter::Sum;
use std::ops::{Add, AddAssign, Neg, Sub, SubAssign};
use std::str::FromStr;

use crate::error::{Error, Result};

const WHAT: &str = "quantity";

/// Nano-units per unit.
const NANO: i128 = 1_000_000_000;
const NANO_U: u128 = 1_000_000_000;
const NANO_PER_MILLI: i128 = 1_000_000;

/// The largest binary-SI value the Go implementation keeps (`i64::MAX`
/// units), in nano-units.
const BINARY_MAX_NANO: u128 = (i64::MAX as u128) * NANO_U;

/// `10^i` for every power that fits a `u128`.
const POW10: [u128; 39] = {
    let mut table = [1u128; 39];
    let mut i = 1;
    while i < 39 {
        table[i] = table[i - 1] * 10;
        i += 1;
    }
    table
};

/// The message Go's `ErrFormatWrong` carries (the accepted shape).
const FORMAT_MESSAGE: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
const SUFFIX_MESSAGE: &str = "unable to parse quantity's suffix";
const NUMERIC_MESSAGE: &str = "unable to parse numeric part of quantity";
const RANGE_MESSAGE: &str = "out of range: the magnitude must be below about 1.7e29";

/// The notation family of a [`Quantity`]; the canonical string keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// Decimal exponent, e.g. `12e6`.
    DecimalExponent,
    /// Binary SI suffixes, e.g. `12Mi` (12 × 2²⁰).
    BinarySI,
    /// Decimal SI suffixes, e.g. `12M` (12 × 10⁶). The default.
    #[default]
    DecimalSI,
}

impl Format {
    /// The name apimachinery uses for this format (`"BinarySI"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Format::DecimalExponent => "DecimalExponent",
            Format::BinarySI => "BinarySI",
            Format::DecimalSI => "DecimalSI",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An exact Kubernetes resource quantity. See the [module docs](self).
///
/// Equality, ordering and hashing look at the value only; the [`Format`]
/// only affects how the quantity is printed.
#[derive(Clone, Copy, Default)]
pub struct Quantity {
    /// The value in nano-units (10⁻⁹).
    nano: i128,
    format: Format,
}

impl Quantity {
    /// Zero, in the decimal SI format.
    pub const ZERO: Quantity = Quantity {
        nano: 0,
        format: Format::DecimalSI,
    };

    /// Parses a quantity string such as `"100m"` or `"1.5Gi"`.
    ///
    /// Leading or trailing whitespace is rejected, as by the API server's
    /// parser (its JSON decoding trims the string first; so does this
    /// type's `Deserialize`).
    pub fn parse(s: &str) -> Result<Quantity> {
        parse_bytes(s.as_bytes()).map_err(|message| {
            let mut shown: String = s.chars().take(64).collect();
            if shown.len() < s.len() {
                shown.push_str("...");
            }
            Error::invalid(WHAT, format!("{shown:?}: {message}"))
        })
    }

    /// `value` whole units in the given format, e.g. `Quantity::new(5, Format::BinarySI)`.
    pub fn new(value: i64, format: Format) -> Quantity {
        Quantity {
            nano: i128::from(value) * NANO,
            format,
        }
    }

    /// A number of bytes, in the binary SI format.
    pub fn from_bytes(bytes: u64) -> Quantity {
        Quantity {
            nano: i128::from(bytes) * NANO,
            format: Format::BinarySI,
        }
    }

    /// A number of milli-units (e.g. millicores), in the decimal SI format.
    pub fn from_milli(milli: i64) -> Quantity {
        Quantity {
            nano: i128::from(milli) * NANO_PER_MILLI,
            format: Format::DecimalSI,
        }
    }

    /// A number of nano-units (10⁻⁹) in the given format.
    pub fn from_nano(nano: i128, format: Format) -> Quantity {
        Quantity { nano, format }
    }

    /// The exact value in nano-units (10⁻⁹).
    pub fn as_nano(&self) -> i128 {
        self.nano
    }

    /// The value in milli-units, rounded towards +∞ when it has finer
    /// precision (apimachinery's `MilliValue` is documented as the same
    /// ceiling): `1n` → `1`, `-1n` → `0`. Never overflows.
    pub fn as_milli(&self) -> i128 {
        let floor = self.nano.div_euclid(NANO_PER_MILLI);
        if self.nano.rem_euclid(NANO_PER_MILLI) != 0 {
            floor + 1
        } else {
            floor
        }
    }

    /// The value in whole units, rounded towards +∞; `None` when it does not
    /// fit an `i64`. For non-negative quantities this is apimachinery's
    /// `Value()`, e.g. the byte count of a memory request.
    pub fn as_i64_ceil(&self) -> Option<i64> {
        let floor = self.nano.div_euclid(NANO);
        let ceil = if self.nano.rem_euclid(NANO) != 0 {
            floor + 1
        } else {
            floor
        };
        i64::try_from(ceil).ok()
    }

    /// The value in whole units, rounded towards −∞; `None` when it does not
    /// fit an `i64`.
    pub fn as_i64_floor(&self) -> Option<i64> {
        i64::try_from(self.nano.div_euclid(NANO)).ok()
    }

    /// The value in whole units when it is a whole number that fits an `i64`.
    pub fn as_i64_exact(&self) -> Option<i64> {
        if self.nano % NANO == 0 {
            i64::try_from(self.nano / NANO).ok()
        } else {
            None
        }
    }

    /// The value as the nearest `f64` (approximate by nature).
    pub fn as_f64(&self) -> f64 {
        // Split so that both halves convert exactly for typical values.
        let units = (self.nano / NANO) as f64;
        let frac = (self.nano % NANO) as f64 / 1e9;
        units + frac
    }

    /// The notation family this quantity prints in.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The same value, printed in another format family.
    pub fn with_format(self, format: Format) -> Quantity {
        Quantity { format, ..self }
    }

    /// Whether the value is zero.
    pub fn is_zero(&self) -> bool {
        self.nano == 0
    }

    /// Whether the value is below zero.
    pub fn is_negative(&self) -> bool {
        self.nano < 0
    }

    /// `-1`, `0` or `1` according to the sign.
    pub fn signum(&self) -> i32 {
        self.nano.signum() as i32
    }

    /// `self + rhs`, or `None` on overflow. The result keeps `self`'s format,
    /// unless `self` is zero, in which case it takes `rhs`'s (as in Go).
    pub fn checked_add(self, rhs: Quantity) -> Option<Quantity> {
        Some(Quantity {
            nano: self.nano.checked_add(rhs.nano)?,
            format: self.sum_format(rhs),
        })
    }

    /// `self - rhs`, or `None` on overflow; formats as [`checked_add`](Self::checked_add).
    pub fn checked_sub(self, rhs: Quantity) -> Option<Quantity> {
        Some(Quantity {
            nano: self.nano.checked_sub(rhs.nano)?,
            format: self.sum_format(rhs),
        })
    }

    /// `self × factor`, or `None` on overflow; keeps the format.
    pub fn checked_mul(self, factor: i64) -> Option<Quantity> {
        Some(Quantity {
            nano: self.nano.checked_mul(i128::from(factor))?,
            format: self.format,
        })
    }

    /// `-self`, or `None` on overflow; keeps the format.
    pub fn checked_neg(self) -> Option<Quantity> {
        Some(Quantity {
            nano: self.nano.checked_neg()?,
            format: self.format,
        })
    }

    /// `self + rhs`, clamped to the representable range on overflow.
    pub fn saturating_add(self, rhs: Quantity) -> Quantity {
        Quantity {
            nano: self.nano.saturating_add(rhs.nano),
            format: self.sum_format(rhs),
        }
    }

    /// `self - rhs`, clamped to the representable range on overflow.
    pub fn saturating_sub(self, rhs: Quantity) -> Quantity {
        Quantity {
            nano: self.nano.saturating_sub(rhs.nano),
            format: self.sum_format(rhs),
        }
    }

    /// The absolute value (clamped at the top of the range); keeps the format.
    pub fn abs(self) -> Quantity {
        Quantity {
            nano: self.nano.saturating_abs(),
            format: self.format,
        }
    }

    fn sum_format(&self, rhs: Quantity) -> Format {
        if self.nano == 0 {
            rhs.format
        } else {
            self.format
        }
    }

    /// Writes the canonical form into `buf`, returning the used length.
    fn canonical(&self, buf: &mut [u8; 48]) -> usize {
        let mut len = 0;
        if self.nano == 0 {
            buf[0] = b'0';
            return 1;
        }
        if self.nano < 0 {
            buf[0] = b'-';
            len = 1;
        }
        let magnitude = self.nano.unsigned_abs();
        // Binary values beyond `i64::MAX` units (only reachable through
        // arithmetic) would be clamped when read back: print them as decimal.
        if self.format == Format::BinarySI
            && (1024 * NANO_U..=BINARY_MAX_NANO).contains(&magnitude)
            && magnitude.is_multiple_of(NANO_U)
        {
            let mut units = magnitude / NANO_U;
            let mut power = 0usize;
            while units >= 1024 && units.is_multiple_of(1024) {
                units /= 1024;
                power += 1;
            }
            len += write_u128(&mut buf[len..], units);
            let suffix: &[u8] = match power {
                0 => b"",
                1 => b"Ki",
                2 => b"Mi",
                3 => b"Gi",
                4 => b"Ti",
                5 => b"Pi",
                _ => b"Ei",
            };
            buf[len..len + suffix.len()].copy_from_slice(suffix);
            return len + suffix.len();
        }
        // Decimal: strip factors of ten, then lower the exponent to a
        // multiple of three.
        let (mut mantissa, mut exponent) = strip_tens(magnitude);
        while exponent.rem_euclid(3) != 0 {
            mantissa *= 10;
            exponent -= 1;
        }
        if self.format == Format::DecimalExponent {
            len += write_u128(&mut buf[len..], mantissa);
            if exponent != 0 {
                buf[len] = b'e';
                len += 1;
                if exponent < 0 {
                    buf[len] = b'-';
                    len += 1;
                }
                len += write_u128(&mut buf[len..], u128::from(exponent.unsigned_abs()));
            }
            return len;
        }
        if exponent > 18 {
            // Larger than the `E` suffix: keep `E` with a bigger mantissa.
            mantissa *= POW10[(exponent - 18) as usize];
            exponent = 18;
        }
        len += write_u128(&mut buf[len..], mantissa);
        let suffix: &[u8] = match exponent {
            -9 => b"n",
            -6 => b"u",
            -3 => b"m",
            0 => b"",
            3 => b"k",
            6 => b"M",
            9 => b"G",
            12 => b"T",
            15 => b"P",
            _ => b"E",
        };
        buf[len..len + suffix.len()].copy_from_slice(suffix);
        len + suffix.len()
    }
}

/// Removes trailing decimal zeros from a nano-unit magnitude, returning the
/// mantissa and its power-of-ten exponent in units.
fn strip_tens(magnitude: u128) -> (u128, i32) {
    let mut exponent = -9;
    if let Ok(mut small) = u64::try_from(magnitude) {
        while small >= 10 && small.is_multiple_of(10) {
            small /= 10;
            exponent += 1;
        }
        return (u128::from(small), exponent);
    }
    let mut m = magnitude;
    while m >= 10 && m.is_multiple_of(10) {
        m /= 10;
        exponent += 1;
    }
    (m, exponent)
}

/// Writes `v` in decimal to the start of `out`, returning the length.
fn write_u128(out: &mut [u8], mut v: u128) -> usize {
    let mut tmp = [0u8; 40];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let n = tmp.len() - i;
    out[..n].copy_from_slice(&tmp[i..]);
    n
}

/// Parses the syntax and computes the exact value. Errors are static
/// messages; the caller adds the input.
fn parse_bytes(b: &[u8]) -> std::result::Result<Quantity, &'static str> {
    if b.is_empty() {
        return Err("must not be empty");
    }
    let end = b.len();
    let mut pos = 0;
    let mut negative = false;
    match b[0] {
        b'-' => {
            negative = true;
            pos = 1;
        }
        b'+' => pos = 1,
        _ => {}
    }
    let digits_start = pos;
    while pos < end && b[pos] == b'0' {
        pos += 1;
    }
    let saw_zero = pos > digits_start;
    if pos == end {
        // Only a sign and zeros (or nothing after the sign).
        return Ok(Quantity::ZERO);
    }
    let int_start = pos;
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    let int_digits = &b[int_start..pos];
    let mut frac_digits: &[u8] = &[];
    if pos < end && b[pos] == b'.' {
        pos += 1;
        let frac_start = pos;
        while pos < end && b[pos].is_ascii_digit() {
            pos += 1;
        }
        frac_digits = &b[frac_start..pos];
    }
    let suffix_start = pos;
    while pos < end
        && matches!(
            b[pos],
            b'e' | b'E' | b'i' | b'n' | b'u' | b'm' | b'k' | b'K' | b'M' | b'G' | b'T' | b'P'
        )
    {
        pos += 1;
    }
    if pos < end && (b[pos] == b'+' || b[pos] == b'-') {
        pos += 1;
    }
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos != end {
        return Err(FORMAT_MESSAGE);
    }
    let (binary, exponent, format) = interpret_suffix(&b[suffix_start..]).ok_or(SUFFIX_MESSAGE)?;
    if !saw_zero && int_digits.is_empty() && frac_digits.is_empty() {
        // No digit at all (`Gi`, `-.`): Go reads this as zero on its
        // fixed-point path but fails on its arbitrary-precision path, which
        // it takes for `Pi`, `Ei` and exponents below -9.
        let slow_path = if binary {
            exponent >= 50
        } else {
            exponent < -9
        };
        if slow_path {
            return Err(NUMERIC_MESSAGE);
        }
    }

    let magnitude = if binary {
        binary_nano(int_digits, frac_digits, exponent)
    } else {
        decimal_nano(int_digits, frac_digits, exponent).ok_or(RANGE_MESSAGE)?
    };
    // A binary quantity strictly between zero and one prints as decimal.
    let format = if binary && magnitude != 0 && magnitude < NANO_U {
        Format::DecimalSI
    } else {
        format
    };
    let nano = if negative {
        0i128.checked_sub_unsigned(magnitude).ok_or(RANGE_MESSAGE)?
    } else {
        i128::try_from(magnitude).map_err(|_| RANGE_MESSAGE)?
    };
    Ok(Quantity { nano, format })
}

/// Maps a suffix to (is binary, exponent, format).
fn interpret_suffix(s: &[u8]) -> Option<(bool, i32, Format)> {
    let decimal = |e| Some((false, e, Format::DecimalSI));
    let binary = |e| Some((true, e, Format::BinarySI));
    match s {
        b"" => decimal(0),
        b"n" => decimal(-9),
        b"u" => decimal(-6),
        b"m" => decimal(-3),
        b"k" => decimal(3),
        b"M" => decimal(6),
        b"G" => decimal(9),
        b"T" => decimal(12),
        b"P" => decimal(15),
        b"E" => decimal(18),
        b"Ki" => binary(10),
        b"Mi" => binary(20),
        b"Gi" => binary(30),
        b"Ti" => binary(40),
        b"Pi" => binary(50),
        b"Ei" => binary(60),
        [b'e' | b'E', rest @ ..] if !rest.is_empty() => {
            // Like Go: a 64-bit parse, then truncation to 32 bits.
            let parsed = parse_i64(rest)?;
            Some((false, parsed as i32, Format::DecimalExponent))
        }
        _ => None,
    }
}

/// Strict `[+-]?[0-9]+` to `i64`, `None` on overflow or bad syntax.
fn parse_i64(s: &[u8]) -> Option<i64> {
    let (negative, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, s),
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        let d = i64::from(d - b'0');
        v = v.checked_mul(10)?;
        v = if negative {
            v.checked_sub(d)?
        } else {
            v.checked_add(d)?
        };
    }
    Some(v)
}

/// `10^i` for every power that fits a `u64`.
const POW10_U64: [u64; 20] = {
    let mut table = [1u64; 20];
    let mut i = 1;
    while i < 20 {
        table[i] = table[i - 1] * 10;
        i += 1;
    }
    table
};

/// The value of at most 19 digits (which always fits a `u64`).
#[inline]
fn small_digits_value(a: &[u8], b: &[u8]) -> u64 {
    let mut v: u64 = 0;
    for &d in a {
        v = v * 10 + u64::from(d - b'0');
    }
    for &d in b {
        v = v * 10 + u64::from(d - b'0');
    }
    v
}

/// The integer value of the concatenated digit strings, `None` on overflow.
#[inline]
fn digits_value(a: &[u8], b: &[u8]) -> Option<u128> {
    if a.len() + b.len() <= 19 {
        return Some(u128::from(small_digits_value(a, b)));
    }
    let mut v: u128 = 0;
    for &d in a.iter().chain(b) {
        v = v.checked_mul(10)?.checked_add(u128::from(d - b'0'))?;
    }
    Some(v)
}

/// `int.frac × 10^exponent` in nano-units, rounded up; `None` on overflow.
fn decimal_nano(int: &[u8], frac: &[u8], exponent: i32) -> Option<u128> {
    // value = D × 10^shift nano-units, D being all the digits.
    let shift = i64::from(exponent) - frac.len() as i64 + 9;
    if (0..=19).contains(&shift) && int.len() + frac.len() <= 19 {
        // Fast path: both factors fit a u64, so the product fits a u128.
        let d = small_digits_value(int, frac);
        return Some(u128::from(d) * u128::from(POW10_U64[shift as usize]));
    }
    if shift >= 0 {
        let d = digits_value(int, frac)?;
        if d == 0 {
            return Some(0);
        }
        let scale = POW10.get(usize::try_from(shift).ok()?)?;
        return d.checked_mul(*scale);
    }
    // Drop the last `-shift` digits, remembering whether any was non-zero.
    let total = int.len() + frac.len();
    let dropped = usize::try_from(-shift).unwrap_or(usize::MAX);
    let keep = total.saturating_sub(dropped);
    let (kept_int, kept_frac, rest_int, rest_frac): (&[u8], &[u8], &[u8], &[u8]) =
        if keep <= int.len() {
            (&int[..keep], &[], &int[keep..], frac)
        } else {
            let k = keep - int.len();
            (int, &frac[..k], &[], &frac[k..])
        };
    let kept = digits_value(kept_int, kept_frac)?;
    let sticky = rest_int.iter().chain(rest_frac).any(|&d| d != b'0');
    kept.checked_add(u128::from(sticky))
}

/// `int.frac × 2^exponent` in nano-units, rounded up and clamped to
/// `i64::MAX` units (the API server's limit for binary quantities).
fn binary_nano(int: &[u8], frac: &[u8], exponent: i32) -> u128 {
    // factor = 2^exponent × 10^9 < 2^90.
    let factor: u128 = (1u128 << exponent) * NANO_U;
    let whole = if int.len() <= 19 && exponent <= 30 {
        // Fast path: both factors fit a u64, so the product fits a u128.
        u128::from(small_digits_value(int, &[])) * factor
    } else {
        digits_value(int, &[])
            .and_then(|i| i.checked_mul(factor))
            .unwrap_or(u128::MAX)
    };
    if whole > BINARY_MAX_NANO {
        return BINARY_MAX_NANO;
    }
    // ceil(0.frac × factor), digit by digit from the right: keep the
    // integer part of the partial value and whether a remainder was dropped.
    let mut q: u128 = 0;
    let mut inexact = false;
    for &d in frac.iter().rev() {
        let x = u128::from(d - b'0') * factor + q;
        if let Ok(small) = u64::try_from(x) {
            q = u128::from(small / 10);
            inexact |= small % 10 != 0;
        } else {
            q = x / 10;
            inexact |= !x.is_multiple_of(10);
        }
    }
    let total = whole + q + u128::from(inexact);
    total.min(BINARY_MAX_NANO)
}

impl FromStr for Quantity {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Quantity::parse(s)
    }
}

impl TryFrom<&str> for Quantity {
    type Error = Error;

    fn try_from(s: &str) -> Result<Self> {
        Quantity::parse(s)
    }
}

impl fmt::Display for Quantity {
    /// The canonical form, e.g. `1536Mi`; honours width and alignment.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 48];
        let len = self.canonical(&mut buf);
        // Only ASCII is ever written.
        f.pad(std::str::from_utf8(&buf[..len]).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Quantity({self}, {})", self.format)
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nano == other.nano
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nano.cmp(&other.nano)
    }
}

impl Hash for Quantity {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.nano.hash(state);
    }
}

impl Add for Quantity {
    type Output = Quantity;

    /// Saturating addition; use [`Quantity::checked_add`] to detect overflow
    /// (only possible beyond ±1.7 × 10²⁹).
    fn add(self, rhs: Quantity) -> Quantity {
        self.saturating_add(rhs)
    }
}

impl Sub for Quantity {
    type Output = Quantity;

    /// Saturating subtraction; use [`Quantity::checked_sub`] to detect overflow.
    fn sub(self, rhs: Quantity) -> Quantity {
        self.saturating_sub(rhs)
    }
}

impl AddAssign for Quantity {
    fn add_assign(&mut self, rhs: Quantity) {
        *self = self.saturating_add(rhs);
    }
}

impl SubAssign for Quantity {
    fn sub_assign(&mut self, rhs: Quantity) {
        *self = self.saturating_sub(rhs);
    }
}

impl Neg for Quantity {
    type Output = Quantity;

    /// Negation (saturating at the top of the range).
    fn neg(self) -> Quantity {
        Quantity {
            nano: self.nano.checked_neg().unwrap_or(i128::MAX),
            format: self.format,
        }
    }
}

impl Sum for Quantity {
    /// Saturating sum; the format follows [`Quantity::checked_add`].
    fn sum<I: Iterator<Item = Quantity>>(iter: I) -> Quantity {
        iter.fold(Quantity::ZERO, |acc, q| acc + q)
    }
}

impl<'a> Sum<&'a Quantity> for Quantity {
    fn sum<I: Iterator<Item = &'a Quantity>>(iter: I) -> Quantity {
        iter.copied().sum()
    }
}

impl serde::Serialize for Quantity {
    /// Serialises as the canonical string, e.g. `"1536Mi"`.
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Quantity {
    /// Accepts a string (trimmed of whitespace), an integer or a float, like
    /// the API server's JSON decoding; `null` is zero.
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_any(QuantityVisitor)
    }
}

struct QuantityVisitor;

impl serde::de::Visitor<'_> for QuantityVisitor {
    type Value = Quantity;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Kubernetes quantity such as \"100m\" or \"1.5Gi\"")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<Quantity, E> {
        Quantity::parse(v.trim()).map_err(E::custom)
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> std::result::Result<Quantity, E> {
        Ok(Quantity::new(v, Format::DecimalSI))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> std::result::Result<Quantity, E> {
        Ok(Quantity {
            nano: i128::from(v) * NANO,
            format: Format::DecimalSI,
        })
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> std::result::Result<Quantity, E> {
        if !v.is_finite() {
            return Err(E::custom("invalid quantity: not a finite number"));
        }
        // `Display` for f64 is the shortest exact round trip, never in
        // exponent notation, so it is valid quantity syntax.
        Quantity::parse(&v.to_string()).map_err(E::custom)
    }

    fn visit_unit<E: serde::de::Error>(self) -> std::result::Result<Quantity, E> {
        Ok(Quantity::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        match Quantity::parse(s) {
            Ok(q) => q,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    fn canon(s: &str) -> String {
        q(s).to_string()
    }

    #[test]
    fn canonical_examples_from_the_brief() {
        for (input, want) in [
            ("100m", "100m"),
            ("1.5Gi", "1536Mi"),
            ("2e3", "2e3"),
            ("1k", "1k"),
            ("0.5", "500m"),
            ("-1", "-1"),
            ("1E", "1E"),
            ("500Ki", "500Ki"),
            ("1000m", "1"),
            ("1024Ki", "1Mi"),
            ("0", "0"),
            ("1.5e3", "1500"),
            ("12e-1", "1200e-3"),
            ("0.1n", "1n"),
            ("-0.5n", "-1n"),
            ("0.0001Ki", "102400u"),
            ("1023.5Ki", "1048064"),
            ("8Ei", "9223372036854775807"),
            ("+1", "1"),
            ("01", "1"),
            ("1.", "1"),
            ("1000E", "1000E"),
        ] {
            assert_eq!(canon(input), want, "input {input}");
        }
    }

    #[test]
    fn formats_are_kept() {
        assert_eq!(q("1Ki").format(), Format::BinarySI);
        assert_eq!(q("0.5Ki").format(), Format::BinarySI);
        assert_eq!(q("0.0001Ki").format(), Format::DecimalSI);
        assert_eq!(q("1e3").format(), Format::DecimalExponent);
        assert_eq!(q("1k").format(), Format::DecimalSI);
        assert_eq!(q("Gi").format(), Format::BinarySI);
        assert_eq!(q("-").format(), Format::DecimalSI);
    }

    #[test]
    fn rejects_malformed_input() {
        for bad in [
            "",
            " 1",
            "1 ",
            "1.1.M",
            "1+1.0M",
            "0.1mi",
            "0.1am",
            "aoeu",
            ".5i",
            "1i",
            "-3.01i",
            "-3.01e-",
            "1e",
            "1Ki3",
            "1K",
            "1KI",
            "1ki",
            "1e+",
            "1m1",
            "0e9999999999999999999",
        ] {
            let err = Quantity::parse(bad).expect_err(bad);
            assert!(
                matches!(
                    err,
                    Error::Invalid {
                        what: "quantity",
                        ..
                    }
                ),
                "{bad}: {err:?}"
            );
        }
    }

    #[test]
    fn out_of_range_is_an_error_not_a_wrong_value() {
        let err = Quantity::parse("1234567890123456789012345678901234567890").expect_err("too big");
        assert!(err.to_string().contains("out of range"), "{err}");
        assert!(Quantity::parse("1e40").is_err());
        // Tiny and zero values with huge exponents are fine.
        assert_eq!(q("1e-40").as_nano(), 1);
        assert_eq!(q("0e99999999999").as_nano(), 0);
    }

    #[test]
    fn exponent_is_truncated_to_32_bits_like_go() {
        // 4294967296 = 2^32 truncates to exponent 0.
        assert_eq!(q("1e4294967296"), q("1"));
    }

    #[test]
    fn comparisons_are_by_value() {
        assert!(q("1Gi") > q("1G"));
        assert_eq!(q("1000m"), q("1"));
        assert_eq!(q("1Ki"), q("1024"));
        assert!(q("-1") < q("0"));
    }

    #[test]
    fn arithmetic_and_formats() {
        let sum = q("1.5Gi").checked_add(q("512Mi")).expect("in range");
        assert_eq!(sum.to_string(), "2Gi");
        assert_eq!((q("100m") + q("250m")).to_string(), "350m");
        // Zero takes the other side's format, as in Go.
        assert_eq!((Quantity::ZERO + q("1Ki")).to_string(), "1Ki");
        assert_eq!((q("1Ki") - q("1Ki")).to_string(), "0");
        let max = Quantity::from_nano(i128::MAX, Format::DecimalSI);
        assert!(max.checked_add(q("1n")).is_none());
        assert_eq!(max + q("1"), max);
        assert_eq!(
            q("2Mi").checked_mul(3).map(|x| x.to_string()),
            Some("6Mi".into())
        );
        let total: Quantity = ["100m", "200m", "700m"].iter().map(|s| q(s)).sum();
        assert_eq!(total.to_string(), "1");
    }

    #[test]
    fn conversions() {
        assert_eq!(q("1n").as_milli(), 1);
        assert_eq!(q("-1n").as_milli(), 0);
        assert_eq!(q("-1.5m").as_milli(), -1);
        assert_eq!(q("1.5").as_milli(), 1500);
        assert_eq!(q("1.5").as_i64_ceil(), Some(2));
        assert_eq!(q("-1.5").as_i64_ceil(), Some(-1));
        assert_eq!(q("1.5").as_i64_floor(), Some(1));
        assert_eq!(q("-1.5").as_i64_floor(), Some(-2));
        assert_eq!(q("1.5").as_i64_exact(), None);
        assert_eq!(q("1Gi").as_i64_exact(), Some(1 << 30));
        assert_eq!(q("1E").as_i64_ceil(), Some(1_000_000_000_000_000_000));
        assert_eq!(q("100E").as_i64_ceil(), None);
        assert!((q("1.25").as_f64() - 1.25).abs() < 1e-12);
        assert_eq!(Quantity::from_bytes(1 << 20).to_string(), "1Mi");
        assert_eq!(Quantity::from_milli(1500).to_string(), "1500m");
        assert_eq!(Quantity::new(3, Format::DecimalExponent).to_string(), "3");
    }

    #[test]
    fn display_pads() {
        assert_eq!(format!("[{:>6}]", q("1Ki")), "[   1Ki]");
        assert_eq!(format!("{:?}", q("1Ki")), "Quantity(1Ki, BinarySI)");
    }

    #[test]
    fn serde_round_trip() {
        let v: Quantity = serde_json::from_str("\" 1.5Gi \"").expect("string");
        assert_eq!(serde_json::to_string(&v).expect("ser"), "\"1536Mi\"");
        let n: Quantity = serde_json::from_str("2").expect("int");
        assert_eq!(n.to_string(), "2");
        let f: Quantity = serde_json::from_str("0.25").expect("float");
        assert_eq!(f.to_string(), "250m");
        let z: Quantity = serde_json::from_str("null").expect("null");
        assert!(z.is_zero());
        assert!(serde_json::from_str::<Quantity>("\"1Kx\"").is_err());
    }
}
