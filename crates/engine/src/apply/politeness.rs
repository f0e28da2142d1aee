//! Being polite to the target: a token bucket per target, and when and how long to wait before
//! retrying a request that failed for a transient reason.

use std::time::{Duration, Instant, SystemTime};

use rand::Rng;
use tokio::sync::Mutex;

/// A token bucket: at most `rate` requests per second on average, bursts of up to `rate`
/// (at least one).
pub(crate) struct RateLimiter {
    rate: f64,
    capacity: f64,
    state: Mutex<Bucket>,
}

struct Bucket {
    tokens: f64,
    refilled: Instant,
}

impl RateLimiter {
    /// `None` for a rate of 0 (no limit).
    pub(crate) fn new(requests_per_second: f64) -> Option<RateLimiter> {
        (requests_per_second > 0.0).then(|| {
            let capacity = requests_per_second.max(1.0);
            RateLimiter {
                rate: requests_per_second,
                capacity,
                state: Mutex::new(Bucket {
                    tokens: capacity,
                    refilled: Instant::now(),
                }),
            }
        })
    }

    /// Waits until a request may be sent.
    pub(crate) async fn acquire(&self) {
        loop {
            let wait = {
                let mut bucket = self.state.lock().await;
                let now = Instant::now();
                let elapsed = now.duration_since(bucket.refilled).as_secs_f64();
                bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.capacity);
                bucket.refilled = now;
                if bucket.tokens >= 1.0 {
                    bucket.tokens -= 1.0;
                    return;
                }
                Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate)
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// How failed requests are retried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// The first backoff; each retry doubles it, up to `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// A `Retry-After` longer than this is not waited for: the record fails for this cycle.
    pub max_retry_after: Duration,
}

impl RetryPolicy {
    pub fn new(max_retries: u32) -> RetryPolicy {
        RetryPolicy {
            max_retries,
            base_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(120),
        }
    }

    /// Exponential backoff with jitter: between half and all of `base × 2^retry`, so that
    /// parallel workers do not retry in lockstep.
    pub fn backoff(&self, retry: u32) -> Duration {
        let full = self
            .base_backoff
            .saturating_mul(2u32.saturating_pow(retry.min(20)))
            .min(self.max_backoff);
        let factor = rand::rng().random_range(0.5..=1.0);
        full.mul_f64(factor)
    }
}

/// Reads a `Retry-After` header: delay seconds or an HTTP date (RFC 9110 §10.2.3).
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_784_000_000);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(30))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn backoff_grows_exponentially_with_jitter_and_a_cap() {
        let policy = RetryPolicy::new(5);
        for retry in 0..4 {
            let full = Duration::from_millis(250 * 2u64.pow(retry));
            let backoff = policy.backoff(retry);
            assert!(
                backoff >= full / 2 && backoff <= full,
                "{retry}: {backoff:?}"
            );
        }
        assert!(policy.backoff(30) <= Duration::from_secs(10));
    }

    #[tokio::test]
    async fn the_bucket_spaces_requests_beyond_the_burst() {
        let limiter = RateLimiter::new(20.0).unwrap();
        let started = Instant::now();
        // 20 in the burst, then 10 more at 20 per second: about half a second.
        for _ in 0..30 {
            limiter.acquire().await;
        }
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(450), "{elapsed:?}");
        assert!(RateLimiter::new(0.0).is_none());
    }
}
