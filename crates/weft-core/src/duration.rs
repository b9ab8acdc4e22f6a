//! Go duration strings (`90s`, `1m30s`, `1h`, `500ms`), as Tekton's `timeout` uses them.

use std::time::Duration;

/// Parses a Go duration. Negative durations and unknown units are refused.
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let unsigned = text.strip_prefix('+').unwrap_or(text);
    if unsigned.starts_with('-') {
        return Err(format!("`{text}` is negative; a timeout must be positive"));
    }
    if unsigned == "0" {
        return Ok(Duration::ZERO);
    }
    if unsigned.is_empty() {
        return Err("empty duration".to_string());
    }
    let mut total_nanos: u128 = 0;
    let mut rest = unsigned;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after_number) = rest.split_at(number_len);
        if number.is_empty() || number == "." {
            return Err(format!(
                "`{text}` is not a duration like `90s`, `1m30s` or `1h`"
            ));
        }
        let unit_len = after_number
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after_number.len());
        let (unit, after_unit) = after_number.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(format!("`{text}` is missing a unit (ns, us, ms, s, m, h)")),
            other => {
                return Err(format!(
                    "`{text}` has an unknown unit `{other}` (use ns, us, ms, s, m, h)"
                ));
            }
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole
                .parse()
                .map_err(|_| format!("`{text}` is too large"))?
        };
        let mut nanos = whole
            .checked_mul(unit_nanos)
            .ok_or_else(|| format!("`{text}` is too large"))?;
        let mut scale = unit_nanos;
        for digit in fraction.chars() {
            scale /= 10;
            nanos += u128::from(digit.to_digit(10).unwrap_or(0)) * scale;
        }
        total_nanos = total_nanos
            .checked_add(nanos)
            .ok_or_else(|| format!("`{text}` is too large"))?;
        rest = after_unit;
    }
    let seconds =
        u64::try_from(total_nanos / 1_000_000_000).map_err(|_| format!("`{text}` is too large"))?;
    let subsec = u32::try_from(total_nanos % 1_000_000_000).unwrap_or(0);
    Ok(Duration::new(seconds, subsec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        let table = [
            ("90s", Duration::from_secs(90)),
            ("1m30s", Duration::from_secs(90)),
            ("1h", Duration::from_secs(3600)),
            ("500ms", Duration::from_millis(500)),
            ("1.5s", Duration::from_millis(1500)),
            ("0", Duration::ZERO),
            ("2h45m", Duration::from_secs(9900)),
            ("10us", Duration::from_micros(10)),
        ];
        for (text, expected) in table {
            assert_eq!(parse_go_duration(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn refuses_bad_durations() {
        for text in ["", "10", "1x", "-1s", "s", "1h-2m", "ten seconds"] {
            assert!(parse_go_duration(text).is_err(), "{text}");
        }
    }
}
