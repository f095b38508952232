//! Go-style duration strings (`1h`, `90m`, `2h0m0s`, `1h30m`, `45s`), as ESC and the Pulumi CLI
//! write them, parsed into [`std::time::Duration`] and formatted back for the API.

use std::time::Duration;

/// The longest duration esc-hook accepts anywhere (a `ttl`, a server's `duration`, a margin or
/// a timeout): far beyond any credential's life, and far from any arithmetic overflow.
pub const MAX: Duration = Duration::from_secs(366 * 86_400);

/// Parses `1h30m`, `45s`, `2h0m0s`, `500ms`; a bare number counts as seconds. At most [`MAX`].
pub fn parse(text: &str) -> Result<Duration, String> {
    let parsed = parse_unbounded(text)?;
    if parsed > MAX {
        return Err(format!(
            "`{}` is longer than a year",
            crate::ground::names::printable(text.trim(), 40)
        ));
    }
    Ok(parsed)
}

fn parse_unbounded(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    let mut total_ms: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!(
                "`{text}` is not a duration (examples: 45s, 90m, 1h30m)"
            ));
        }
        let number: u128 = rest[..digits]
            .parse()
            .map_err(|_| format!("`{text}` is too large"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit_ms = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => {
                return Err(format!(
                    "`{text}` is not a duration (units: ms, s, m, h, d; examples: 45s, 90m, 1h30m)"
                ));
            }
        };
        rest = &rest[unit_len..];
        total_ms = number
            .checked_mul(unit_ms)
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or_else(|| format!("`{text}` is too large"))?;
    }
    u64::try_from(total_ms)
        .map(Duration::from_millis)
        .map_err(|_| format!("`{text}` is too large"))
}

/// Formats whole seconds the way Go does for the ESC `duration` query: `2h0m0s`, `1m30s`, `45s`.
pub fn to_go(duration: Duration) -> String {
    let secs = duration.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

/// A short human form for messages: `52m`, `1h05m`, `30s`; minutes rounded to the nearest one,
/// the same everywhere (an hour's credentials read `1h00m` a second after they were opened).
pub fn human(duration: Duration) -> String {
    let secs = duration.as_secs();
    if secs < 60 {
        return format!("{secs}s");
    }
    let minutes = (secs + 30) / 60;
    match minutes {
        0..=59 => format!("{minutes}m"),
        _ => format!("{}h{:02}m", minutes / 60, minutes % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse("90m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("2h0m0s").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse("1h30m15s").unwrap(), Duration::from_secs(5415));
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("20").unwrap(), Duration::from_secs(20));
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        for bad in [
            "",
            "h",
            "1x",
            "1 h",
            "-1h",
            "1.5h",
            "99999999999999999999999h",
            "367d",
            "9999999999h",
            "18446744073709551615",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn formats_for_go_and_for_people() {
        assert_eq!(to_go(Duration::from_secs(7200)), "2h0m0s");
        assert_eq!(to_go(Duration::from_secs(90)), "1m30s");
        assert_eq!(to_go(Duration::from_secs(5)), "5s");
        assert_eq!(human(Duration::from_secs(3900)), "1h05m");
        assert_eq!(human(Duration::from_secs(3120)), "52m");
        assert_eq!(human(Duration::from_secs(3599)), "1h00m");
        assert_eq!(human(Duration::from_secs(89)), "1m");
    }
}
