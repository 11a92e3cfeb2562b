//! UTC calendar arithmetic and RFC 3339 timestamps, without a date crate.

use std::time::{SystemTime, UNIX_EPOCH};

/// A UTC civil time, to the microsecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub micros: u32,
}

impl Civil {
    pub(crate) fn from_system(time: SystemTime) -> Civil {
        // Times before 1970 are clamped to the epoch: log clocks are not
        // expected to be there, and the output stays well-formed.
        let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since.as_secs() as i64;
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem % 3600 / 60,
            second: rem % 60,
            micros: since.subsec_micros(),
        }
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// An RFC 3339 UTC timestamp with microseconds, formatted on the stack:
/// `2024-05-01T12:34:56.123456Z`.
#[derive(Clone, Copy)]
pub(crate) struct Timestamp {
    buf: [u8; 27],
}

impl Timestamp {
    pub(crate) fn now() -> Self {
        Self::at(SystemTime::now())
    }

    pub(crate) fn at(time: SystemTime) -> Self {
        let c = Civil::from_system(time);
        let mut buf = *b"0000-00-00T00:00:00.000000Z";
        let year = c.year.clamp(0, 9999) as u32;
        put(&mut buf[0..4], year);
        put(&mut buf[5..7], c.month);
        put(&mut buf[8..10], c.day);
        put(&mut buf[11..13], c.hour);
        put(&mut buf[14..16], c.minute);
        put(&mut buf[17..19], c.second);
        put(&mut buf[20..26], c.micros);
        Timestamp { buf }
    }

    pub(crate) fn as_str(&self) -> &str {
        // Only ASCII digits and separators are ever written into `buf`.
        std::str::from_utf8(&self.buf).unwrap_or("1970-01-01T00:00:00.000000Z")
    }
}

fn put(out: &mut [u8], mut value: u32) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_known_instants() {
        let t = UNIX_EPOCH + Duration::from_micros(1_714_566_896_123_456);
        assert_eq!(Timestamp::at(t).as_str(), "2024-05-01T12:34:56.123456Z");
        assert_eq!(
            Timestamp::at(UNIX_EPOCH).as_str(),
            "1970-01-01T00:00:00.000000Z"
        );
        // A leap day.
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(Timestamp::at(leap).as_str(), "2000-02-29T00:00:00.000000Z");
    }

    #[test]
    fn civil_matches_day_arithmetic_over_years() {
        // Walk day by day for ~30 years and check monotonic, valid dates.
        let mut prev = civil_from_days(0);
        for d in 1..11_000 {
            let next = civil_from_days(d);
            assert!(next > prev, "{d}: {next:?} after {prev:?}");
            assert!((1..=12).contains(&next.1) && (1..=31).contains(&next.2));
            prev = next;
        }
    }
}
