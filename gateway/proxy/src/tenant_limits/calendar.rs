//! UTC days and months from Unix seconds, for the spend budgets' windows
//! (no calendar crate: the civil-from-days arithmetic is a few lines,
//! after Howard Hinnant's `civil_from_days`).

use tokio::time::Instant;

/// Wall-clock time read off tokio's clock: the Unix time at one instant,
/// plus what tokio measured since. Tests pause tokio's time and move the
/// budgets' days and months with it; in production the drift from the
/// system clock is NTP's slew since the gateway started.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    unix: u64,
    at: Instant,
}

impl Clock {
    /// A clock reading `unix` now.
    pub fn starting_at(unix: u64) -> Self {
        Self {
            unix,
            at: Instant::now(),
        }
    }

    /// The system's time now: read once, to anchor the UTC calendar the
    /// budgets' days and months follow; durations come from tokio's clock.
    #[allow(
        clippy::disallowed_methods,
        reason = "budgets renew at UTC midnight: a calendar needs the wall clock once"
    )]
    pub fn system() -> Self {
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Self::starting_at(unix)
    }

    /// Unix seconds at `now`.
    pub fn unix(&self, now: Instant) -> u64 {
        self.unix + now.saturating_duration_since(self.at).as_secs()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

/// Days since 1970-01-01 (UTC).
pub(super) fn day(unix: u64) -> u32 {
    (unix / 86_400) as u32
}

/// Months since January 1970 (UTC).
pub(super) fn month(unix: u64) -> u32 {
    let (y, m) = year_month(day(unix));
    (y - 1970) * 12 + (m - 1)
}

/// Seconds until the next UTC midnight.
pub(super) fn to_next_day(unix: u64) -> u64 {
    86_400 - unix % 86_400
}

/// Seconds until the first of next month, 00:00 UTC.
pub(super) fn to_next_month(unix: u64) -> u64 {
    let (y, m) = year_month(day(unix));
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    days_from_civil(ny, nm) * 86_400 - unix
}

/// (year, month 1..=12) of day `days` since the epoch.
fn year_month(days: u32) -> (u32, u32) {
    let z = u64::from(days) + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y as u32, m as u32)
}

/// Days since the epoch of the first of month `m` of year `y`.
fn days_from_civil(y: u32, m: u32) -> u64 {
    let y = u64::from(y) - u64::from(m <= 2);
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * u64::from(mp) + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_months_roll_at_utc_midnight() {
        // 2024-02-29T23:59:59Z, a leap day.
        let t = 1_709_251_199;
        assert_eq!(year_month(day(t)), (2024, 2));
        assert_eq!(to_next_day(t), 1);
        assert_eq!(to_next_month(t), 1);
        assert_eq!(month(t + 1), month(t) + 1);
        assert_eq!(year_month(day(t + 1)), (2024, 3));
        // 2026-12-06T18:00:00Z: 25 days and 6 hours to January.
        let t = 1_796_580_000;
        assert_eq!(year_month(day(t)), (2026, 12));
        assert_eq!(to_next_month(t), 25 * 86_400 + 6 * 3600);
        assert_eq!(month(0), 0);
        assert_eq!(days_from_civil(1970, 1), 0);
    }
}
