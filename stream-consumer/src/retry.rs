//! What follows a delivery attempt: pure decisions.

use std::time::Duration;

/// What an attempt's answer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: delivered.
    Delivered,
    /// 410: the workflow's subscription is disabled; the event counts as resolved.
    Gone,
    /// Anything else: try again, no sooner than `retry_after` if the endpoint asked.
    Retry {
        /// The endpoint's `Retry-After`, honoured on 429 and 503.
        retry_after: Option<Duration>,
    },
}

/// The verdict on an HTTP answer (`None` when there was no answer in time).
pub fn verdict(status: Option<u16>, retry_after: Option<Duration>) -> Verdict {
    match status {
        Some(200..=299) => Verdict::Delivered,
        Some(410) => Verdict::Gone,
        Some(429 | 503) => Verdict::Retry { retry_after },
        _ => Verdict::Retry { retry_after: None },
    }
}

/// The delay before the next attempt after `attempts_made` failed ones, or `None` when retries
/// are used up and the delivery goes to the dead-letter queue. `jitter` in `[0, 1)` stretches the
/// delay by up to 20% so that endpoints that failed together are not retried together.
pub fn next_delay(
    schedule: &[Duration],
    attempts_made: usize,
    retry_after: Option<Duration>,
    jitter: f64,
) -> Option<Duration> {
    let scheduled = *schedule.get(attempts_made.checked_sub(1)?)?;
    let stretched = scheduled.mul_f64(1.0 + 0.2 * jitter.clamp(0.0, 1.0));
    Some(retry_after.map_or(stretched, |asked| asked.max(stretched)))
}

/// Parses a schedule such as `5s,30s,2m,10m,30m,1h,3h,6h` (units ms, s, m, h).
pub fn parse_schedule(text: &str) -> Result<Vec<Duration>, String> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    text.split(',').map(|part| parse_duration(part.trim())).collect()
}

/// Parses one duration such as `250ms`, `10s`, `2m` or `3h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(|| format!("duration {text:?} has no unit"))?;
    let (number, unit) = text.split_at(split);
    let value: u64 = number.parse().map_err(|_| format!("duration {text:?} does not start with a number"))?;
    let millis = match unit {
        "ms" => value,
        "s" => value * 1_000,
        "m" => value * 60_000,
        "h" => value * 3_600_000,
        _ => return Err(format!("duration {text:?} has unknown unit {unit:?} (use ms, s, m or h)")),
    };
    Ok(Duration::from_millis(millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_map_to_verdicts() {
        let wait = Some(Duration::from_secs(7));
        assert_eq!(verdict(Some(204), None), Verdict::Delivered);
        assert_eq!(verdict(Some(410), None), Verdict::Gone);
        assert_eq!(verdict(Some(429), wait), Verdict::Retry { retry_after: wait });
        assert_eq!(verdict(Some(500), wait), Verdict::Retry { retry_after: None });
        assert_eq!(verdict(None, None), Verdict::Retry { retry_after: None });
    }

    #[test]
    fn delays_follow_the_schedule_then_give_up() {
        let schedule = parse_schedule("5s,30s").unwrap();
        assert_eq!(next_delay(&schedule, 1, None, 0.0), Some(Duration::from_secs(5)));
        assert_eq!(next_delay(&schedule, 2, None, 0.0), Some(Duration::from_secs(30)));
        assert_eq!(next_delay(&schedule, 3, None, 0.0), None);
        assert_eq!(next_delay(&schedule, 1, None, 0.5), Some(Duration::from_millis(5_500)));
        assert_eq!(next_delay(&schedule, 1, Some(Duration::from_secs(60)), 0.0), Some(Duration::from_secs(60)));
        assert_eq!(next_delay(&[], 1, None, 0.0), None);
    }

    #[test]
    fn schedules_parse_and_bad_ones_are_explained() {
        assert_eq!(
            parse_schedule("250ms, 2m,1h").unwrap(),
            vec![Duration::from_millis(250), Duration::from_secs(120), Duration::from_secs(3600)]
        );
        assert!(parse_schedule("5").unwrap_err().contains("no unit"));
        assert!(parse_schedule("5d").unwrap_err().contains("unknown unit"));
        assert!(parse_schedule("").unwrap().is_empty());
    }
}
