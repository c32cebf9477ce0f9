//! Go-style duration strings (`90s`, `5m`, `1h30m`), the format the CRD's CEL rule accepts.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration")]
    Empty,
    #[error(
        "invalid duration {0:?}: expected a number followed by a unit (ns, us, ms, s, m, h), e.g. \"5m\" or \"90s\""
    )]
    Invalid(String),
    #[error("duration {0:?} is too large (at most 2562047h, about 292 years)")]
    Overflow(String),
}

/// The longest duration Go (and so Kubernetes' CEL `duration()`) can represent: `i64::MAX`
/// nanoseconds. Anything accepted here can be added to an `Instant` without overflow.
pub const MAX: Duration = Duration::from_nanos(i64::MAX as u64);

/// Parses a Go duration string. Negative durations are rejected: intervals and ages can't be.
pub fn parse(s: &str) -> Result<Duration, DurationError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let invalid = || DurationError::Invalid(s.to_string());
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        if num_len == 0 {
            return Err(invalid());
        }
        let (num, tail) = rest.split_at(num_len);
        if num.starts_with('.') || num.ends_with('.') || num.matches('.').count() > 1 {
            return Err(invalid());
        }
        let value: f64 = num.parse().map_err(|_| invalid())?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(invalid()),
        };
        total += value * scale;
        rest = next;
    }
    // Compared in f64 (where the sum was made); `>=` because MAX rounds up to a whole f64.
    if !total.is_finite() || total >= MAX.as_secs_f64() {
        return Err(DurationError::Overflow(s.to_string()));
    }
    Ok(Duration::from_secs_f64(total).min(MAX))
}

/// Formats a duration compactly for messages (`5m`, `1h30m`, `90s` stays `1m30s`).
pub fn format(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        let cases = [
            ("30s", 30_000),
            ("90s", 90_000),
            ("5m", 300_000),
            ("1h30m", 5_400_000),
            ("1.5h", 5_400_000),
            ("250ms", 250),
            ("2m30s", 150_000),
            ("0", 0),
            (" 5m ", 300_000),
        ];
        for (s, ms) in cases {
            assert_eq!(parse(s).unwrap().as_millis(), ms, "{s}");
        }
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "", "5", "m", "5x", "-5m", "5 m", "1..5s", ".5s", "5.s", "5min", "1e3s", "ms5",
        ] {
            assert!(parse(s).is_err(), "{s:?} should be rejected");
        }
        for s in [
            "99999999999999999999999h",
            "2562048h",
            // Found by fuzzing: just past u64::MAX / 2 seconds once rounding was added in.
            "5ms9223372036854775807s",
        ] {
            assert!(matches!(parse(s), Err(DurationError::Overflow(_))), "{s}");
        }
        // Go's largest duration, 2562047h47m16.854775807s, and a little under it are accepted.
        assert!(parse("2562047h").unwrap() <= MAX);
    }

    #[test]
    fn formats() {
        assert_eq!(format(Duration::from_secs(300)), "5m");
        assert_eq!(format(Duration::from_secs(90)), "1m30s");
        assert_eq!(format(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format(Duration::from_millis(250)), "250ms");
    }
}
