//! Exponential back-off for a call that keeps failing, such as a report to
//! an engine that is down.

use std::time::Duration;

/// The delays between attempts of one failing call: `base` after the first
/// failure, twice the previous delay after each further one, and never more
/// than `max`. A success starts the sequence again.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    /// Creates a back-off from `base` up to `max`; a `max` below `base` is
    /// raised to `base`.
    pub fn new(base: Duration, max: Duration) -> Backoff {
        Backoff {
            base,
            max: max.max(base),
            failures: 0,
        }
    }

    /// Returns the number of failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Records a failure and returns the delay before the next attempt.
    pub fn fail(&mut self) -> Duration {
        let doublings = self.failures.min(31);
        self.failures = self.failures.saturating_add(1);
        self.base
            .checked_mul(1 << doublings)
            .map_or(self.max, |delay| delay.min(self.max))
    }

    /// Records a success and returns the number of failures before it.
    pub fn succeed(&mut self) -> u32 {
        std::mem::take(&mut self.failures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_max() {
        let mut backoff = Backoff::new(Duration::from_secs(2), Duration::from_secs(10));

        let delays: Vec<_> = (0..5).map(|_| backoff.fail()).collect();

        let seconds: Vec<_> = delays.iter().map(Duration::as_secs).collect();
        assert_eq!(seconds, [2, 4, 8, 10, 10]);
        assert_eq!(backoff.failures(), 5);
    }

    #[test]
    fn success_restarts_from_base() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        backoff.fail();
        backoff.fail();

        assert_eq!(backoff.succeed(), 2);

        assert_eq!(backoff.failures(), 0);
        assert_eq!(backoff.fail(), Duration::from_millis(100));
    }

    #[test]
    fn many_failures_stay_at_max() {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));

        for _ in 0..100 {
            backoff.fail();
        }

        assert_eq!(backoff.fail(), Duration::from_secs(30));
    }

    #[test]
    fn max_below_base_raised() {
        let mut backoff = Backoff::new(Duration::from_secs(5), Duration::from_secs(1));

        assert_eq!(backoff.fail(), Duration::from_secs(5));
        assert_eq!(backoff.fail(), Duration::from_secs(5));
    }
}
