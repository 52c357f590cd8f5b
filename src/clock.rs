//! Wall-clock time as Kafka records it (milliseconds since the Unix epoch), and the rate limiter
//! that keeps repeated log lines to one per period.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// [`unix_ms`] at the kernel tick's resolution (1–10 ms): a memory read instead of a hardware
/// clock read, for the per-record latency metrics (MM2's are in milliseconds too), where reading
/// the precise clock for every acknowledged record cost a measurable share of the CPU.
pub fn unix_ms_coarse() -> i64 {
    use rustix::time::{clock_gettime, ClockId};
    let now = clock_gettime(ClockId::RealtimeCoarse);
    now.tv_sec * 1000 + now.tv_nsec / 1_000_000
}

/// True at most once per `period_s` seconds for the limiter `last_s` (which holds the last time
/// it returned true, in Unix seconds).
pub fn once_per(last_s: &AtomicI64, period_s: i64) -> bool {
    let now = unix_ms() / 1000;
    let last = last_s.load(Ordering::Acquire);
    now - last >= period_s
        && last_s
            .compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_allows_one_per_period() {
        let last = AtomicI64::new(0);
        assert!(once_per(&last, 10));
        assert!(
            !once_per(&last, 10),
            "a second call in the same period is suppressed"
        );
        assert!(unix_ms() > 1_600_000_000_000);
    }

    #[test]
    fn the_coarse_clock_is_within_a_tick_of_the_precise_one() {
        let precise = unix_ms();
        let coarse = unix_ms_coarse();
        assert!(
            (precise - coarse).abs() <= 20,
            "precise {precise} ms, coarse {coarse} ms"
        );
    }
}
