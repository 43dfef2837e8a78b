//! Counts probe runs and how late each one started, for metrics and
//! benchmarks.
//!
//! Lateness is the time from a run's scheduled start (its interval tick) to
//! the moment its task actually began the run. It grows when the runtime
//! cannot poll probe tasks fast enough, so it is the signal that a host runs
//! more checks than it can keep on schedule.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Values below this many microseconds get one bucket each.
const LINEAR_LIMIT: u64 = 16;
/// Each power of two above [`LINEAR_LIMIT`] is split into this many buckets,
/// so a bucket's bounds differ by at most 1/8 (12.5 %).
const SUB_BUCKETS: u64 = 8;
/// Covers lateness up to 2^40 µs (about 12 days). Longer values share the
/// last bucket.
const BUCKETS: usize = (LINEAR_LIMIT + (40 - 4) * SUB_BUCKETS) as usize;

/// Run count and a histogram of lateness in microseconds, updated by every
/// probe with relaxed atomics.
#[derive(Debug)]
pub struct RunStats {
    runs: AtomicU64,
    max_micros: AtomicU64,
    buckets: [AtomicU64; BUCKETS],
}

impl Default for RunStats {
    fn default() -> RunStats {
        RunStats {
            runs: AtomicU64::new(0),
            max_micros: AtomicU64::new(0),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl RunStats {
    /// Records one run that started `late` after its scheduled start.
    pub fn record(&self, late: Duration) {
        let micros = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
        self.runs.fetch_add(1, Ordering::Relaxed);
        self.max_micros.fetch_max(micros, Ordering::Relaxed);
        self.buckets[bucket_index(micros)].fetch_add(1, Ordering::Relaxed);
    }

    /// Copies the counters. Runs recorded during the copy may be counted in
    /// `runs` but not yet in the histogram, or the other way round.
    pub fn snapshot(&self) -> RunSnapshot {
        RunSnapshot {
            runs: self.runs.load(Ordering::Relaxed),
            max: Duration::from_micros(self.max_micros.load(Ordering::Relaxed)),
            buckets: self
                .buckets
                .iter()
                .map(|bucket| bucket.load(Ordering::Relaxed))
                .collect(),
        }
    }
}

/// A copy of [`RunStats`] at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunSnapshot {
    /// Runs started since the scheduler was created.
    pub runs: u64,
    /// The largest lateness since the scheduler was created.
    pub max: Duration,
    buckets: Vec<u64>,
}

impl RunSnapshot {
    /// Returns the runs between `earlier` and this snapshot. Its `max` is the
    /// upper bound of the highest non-empty bucket, because the exact maximum
    /// of a time window is not kept.
    pub fn since(&self, earlier: &RunSnapshot) -> RunSnapshot {
        let buckets: Vec<u64> = self
            .buckets
            .iter()
            .zip(&earlier.buckets)
            .map(|(now, before)| now.saturating_sub(*before))
            .collect();
        let max = buckets
            .iter()
            .rposition(|count| *count > 0)
            .map_or(Duration::ZERO, |index| {
                Duration::from_micros(bucket_upper_bound(index))
            });
        RunSnapshot {
            runs: self.runs.saturating_sub(earlier.runs),
            max,
            buckets,
        }
    }

    /// Returns the lateness that a fraction `quantile` (0 to 1) of the runs
    /// did not exceed, as the upper bound of its bucket. Returns zero when
    /// no run was recorded.
    pub fn quantile(&self, quantile: f64) -> Duration {
        let total: u64 = self.buckets.iter().sum();
        if total == 0 {
            return Duration::ZERO;
        }
        let rank = ((total as f64) * quantile.clamp(0.0, 1.0)).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (index, count) in self.buckets.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Duration::from_micros(bucket_upper_bound(index));
            }
        }
        Duration::from_micros(bucket_upper_bound(BUCKETS - 1))
    }
}

fn bucket_index(micros: u64) -> usize {
    if micros < LINEAR_LIMIT {
        return micros as usize;
    }
    let exponent = u64::from(63 - micros.leading_zeros());
    let sub = (micros >> (exponent - 3)) & (SUB_BUCKETS - 1);
    let index = LINEAR_LIMIT + (exponent - 4) * SUB_BUCKETS + sub;
    (index as usize).min(BUCKETS - 1)
}

/// Returns the largest value, in microseconds, that falls in `index`.
fn bucket_upper_bound(index: usize) -> u64 {
    let index = index as u64;
    if index < LINEAR_LIMIT {
        return index;
    }
    let exponent = (index - LINEAR_LIMIT) / SUB_BUCKETS + 4;
    let sub = (index - LINEAR_LIMIT) % SUB_BUCKETS;
    let width = 1u64 << (exponent - 3);
    (1u64 << exponent) + (sub + 1) * width - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_bounds_contain_value() {
        for micros in [0, 1, 15, 16, 17, 31, 32, 1000, 123_456, 9_999_999] {
            let index = bucket_index(micros);
            assert!(
                bucket_upper_bound(index) >= micros,
                "upper bound of {micros}"
            );
            if index > 0 {
                assert!(
                    bucket_upper_bound(index - 1) < micros,
                    "previous bucket of {micros}"
                );
            }
        }
    }

    #[test]
    fn quantiles_of_known_runs() {
        let stats = RunStats::default();
        for millis in 1..=100 {
            stats.record(Duration::from_millis(millis));
        }
        let snapshot = stats.snapshot();
        assert_eq!(snapshot.runs, 100);
        assert_eq!(snapshot.max, Duration::from_millis(100));

        let p50 = snapshot.quantile(0.5);
        assert!(p50 >= Duration::from_millis(50), "p50 {p50:?}");
        assert!(p50 <= Duration::from_micros(50_000 * 9 / 8), "p50 {p50:?}");
    }

    #[test]
    fn since_counts_only_new_runs() {
        let stats = RunStats::default();
        stats.record(Duration::from_secs(1));
        let earlier = stats.snapshot();
        stats.record(Duration::from_micros(3));

        let window = stats.snapshot().since(&earlier);
        assert_eq!(window.runs, 1);
        assert_eq!(window.max, Duration::from_micros(3));
        assert_eq!(window.quantile(0.99), Duration::from_micros(3));
    }
}
