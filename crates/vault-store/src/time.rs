//! Instants as microseconds since the Unix epoch (what the database keeps)
//! and as RFC 3339 text (what the API shows), without a date library.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in microseconds since the epoch.
pub(crate) fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `2026-12-04T22:58:19.123456Z`.
pub(crate) fn format_rfc3339(micros: i64) -> String {
    let seconds = micros.div_euclid(1_000_000);
    let fraction = micros.rem_euclid(1_000_000);
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{fraction:06}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// Parses RFC 3339 / ISO 8601 date-time text (`Z` or a `+hh:mm` offset,
/// any fraction of a second, `T` or a space) into microseconds. `None`
/// for anything else.
pub(crate) fn parse_rfc3339(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = bytes.get(range)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let year = number(0..4)?;
    let month = number(5..7)?;
    let day = number(8..10)?;
    let hour = number(11..13)?;
    let minute = number(14..16)?;
    let second = number(17..19)?;
    if bytes.get(4) != Some(&b'-')
        || bytes.get(7) != Some(&b'-')
        || !matches!(bytes.get(10), Some(b'T' | b't' | b' '))
        || bytes.get(13) != Some(&b':')
        || bytes.get(16) != Some(&b':')
    {
        return None;
    }
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &text[19..];
    let mut micros = 0i64;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        for (i, digit) in fraction.bytes().take(digits).enumerate() {
            if i < 6 {
                micros = micros * 10 + i64::from(digit - b'0');
            }
        }
        micros *= 10i64.pow(6u32.saturating_sub(u32::try_from(digits).ok()?));
        rest = &fraction[digits..];
    }
    let offset_seconds = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let offset = rest.get(1..)?;
            let (h, m) = offset.split_once(':')?;
            if h.len() != 2
                || m.len() != 2
                || !(h.bytes().chain(m.bytes())).all(|b| b.is_ascii_digit())
            {
                return None;
            }
            let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
            if h > 23 || m > 59 {
                return None;
            }
            sign * (h * 3600 + m * 60)
        }
    };
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset_seconds;
    seconds.checked_mul(1_000_000)?.checked_add(micros)
}

/// Parses JavaScript's `Date.prototype.toString()` text, such as
/// `Wed Jan 01 2020 00:00:00 GMT+0000 (Coordinated Universal Time)`: what
/// `@workos-inc/node` 11 sends for a `Date` in `updatedAfter` (it puts the
/// `Date` in a query string without `toISOString`). Seconds precision.
pub(crate) fn parse_js_date(text: &str) -> Option<i64> {
    let mut parts = text.split(' ');
    let _weekday = parts.next().filter(|w| w.len() == 3)?;
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month_text = parts.next()?;
    let month = MONTHS.iter().position(|m| *m == month_text)?;
    let day = parts.next()?;
    let year = parts.next()?;
    let clock = parts.next()?;
    let zone = parts.next()?.strip_prefix("GMT")?;
    if day.len() != 2 || year.len() != 4 || zone.len() != 5 {
        return None;
    }
    let iso = format!(
        "{year}-{:02}-{day}T{clock}{}:{}",
        month + 1,
        &zone[..3],
        &zone[3..]
    );
    parse_rfc3339(&iso)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_and_reads_offsets() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000000Z");
        let micros = 1_796_425_099_123_456;
        let text = format_rfc3339(micros);
        assert_eq!(text, "2026-12-04T22:58:19.123456Z");
        assert_eq!(parse_rfc3339(&text), Some(micros));
        assert_eq!(
            parse_rfc3339("2026-12-04T23:58:19.123456+01:00"),
            Some(micros)
        );
        assert_eq!(
            parse_rfc3339("2026-12-04T22:58:19.123Z"),
            Some(1_796_425_099_123_000)
        );
        assert_eq!(
            parse_rfc3339("2026-12-04 22:58:19Z"),
            Some(1_796_425_099_000_000)
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T00:00:00Z")
                .map(format_rfc3339)
                .as_deref(),
            Some("2024-02-29T00:00:00.000000Z")
        );
        assert_eq!(
            parse_js_date("Fri Dec 04 2026 23:58:19 GMT+0100 (Central European Standard Time)"),
            Some(1_796_425_099_000_000)
        );
        assert_eq!(
            parse_js_date("Fri Dec 04 2026 22:58:19 GMT+0000"),
            Some(1_796_425_099_000_000)
        );
        assert_eq!(parse_js_date("Fri Dec 4 2026 22:58:19 GMT+0000"), None);
        assert_eq!(parse_js_date("2026-12-04T22:58:19Z"), None);
        for bad in [
            "",
            "2026-12-04",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-12-04T22:58:19",
            "2026-12-04T22:58:19.Z",
            "2026-12-04T22:58:19+1:00",
            "yesterday",
            "2026-12-04T22:58:19Zjunk",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
