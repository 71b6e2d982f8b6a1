//! Per-connection rate limits: two token buckets (messages and bytes) and
//! the rule that turns sustained abuse into a closed connection.

use std::time::Duration;

use tokio::time::Instant;

use crate::config::Config;

/// A token bucket.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    rate: f64,
    burst: f64,
}

impl Bucket {
    fn refill(&mut self, elapsed: Duration) {
        self.tokens = (self.tokens + elapsed.as_secs_f64() * self.rate).min(self.burst);
    }
}

/// What to do with a message.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Within the limits: handle it.
    Allow,
    /// Over the limit: drop it; answer `rate_limited` if `notify`.
    Drop {
        /// Whether to answer with an error (at most once a second).
        notify: bool,
    },
    /// Over the limit for too long: close the connection (1008).
    Close,
}

/// Message and byte rate of one connection.
#[derive(Debug)]
pub struct RateLimiter {
    messages: Bucket,
    bytes: Bucket,
    last: Instant,
    /// Start of the current run of rejections, each less than a second after the last.
    over_since: Option<Instant>,
    last_rejection: Option<Instant>,
    last_notice: Option<Instant>,
    abuse_after: Duration,
}

impl RateLimiter {
    /// A full limiter for a new connection.
    pub fn new(config: &Config, now: Instant) -> Self {
        RateLimiter {
            messages: Bucket {
                tokens: config.msg_burst,
                rate: config.msg_rate,
                burst: config.msg_burst,
            },
            bytes: Bucket {
                tokens: config.byte_burst,
                rate: config.byte_rate,
                burst: config.byte_burst,
            },
            last: now,
            over_since: None,
            last_rejection: None,
            last_notice: None,
            abuse_after: config.abuse_after,
        }
    }

    /// Accounts a message of `len` bytes arriving at `now`.
    pub fn check(&mut self, len: usize, now: Instant) -> Verdict {
        let elapsed = now.saturating_duration_since(self.last);
        self.last = now;
        self.messages.refill(elapsed);
        self.bytes.refill(elapsed);
        let len = len as f64;
        if self.messages.tokens >= 1.0 && self.bytes.tokens >= len.min(self.bytes.burst) {
            self.messages.tokens -= 1.0;
            self.bytes.tokens -= len;
            if self
                .last_rejection
                .is_some_and(|t| now.saturating_duration_since(t) > Duration::from_secs(1))
            {
                self.over_since = None;
            }
            return Verdict::Allow;
        }
        let second = Duration::from_secs(1);
        let continuing = self
            .last_rejection
            .is_some_and(|t| now.saturating_duration_since(t) <= second);
        let since = match self.over_since {
            Some(since) if continuing => since,
            _ => now,
        };
        self.over_since = Some(since);
        self.last_rejection = Some(now);
        if now.saturating_duration_since(since) >= self.abuse_after {
            return Verdict::Close;
        }
        let notify = self
            .last_notice
            .is_none_or(|t| now.saturating_duration_since(t) >= second);
        if notify {
            self.last_notice = Some(now);
        }
        Verdict::Drop { notify }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_sustained_rate_then_close() {
        let config = Config::default();
        let start = Instant::now();
        let mut limiter = RateLimiter::new(&config, start);
        for _ in 0..256 {
            assert_eq!(
                limiter.check(100, start),
                Verdict::Allow,
                "a burst of 256 is always allowed"
            );
        }
        assert_eq!(limiter.check(100, start), Verdict::Drop { notify: true });
        assert_eq!(
            limiter.check(100, start),
            Verdict::Drop { notify: false },
            "one error a second"
        );
        // Sending at twice the sustained rate keeps it over the limit...
        let mut now = start;
        let mut verdict = Verdict::Allow;
        for _ in 0..2000 {
            now += Duration::from_secs_f64(1.0 / (2.0 * config.msg_rate));
            verdict = limiter.check(100, now);
            if verdict == Verdict::Close {
                break;
            }
        }
        assert_eq!(verdict, Verdict::Close);
        let over = now - start;
        assert!(
            over >= Duration::from_secs(10) && over < Duration::from_secs(11),
            "closed after {over:?}"
        );
    }

    #[test]
    fn a_pause_forgives() {
        let config = Config::default();
        let start = Instant::now();
        let mut limiter = RateLimiter::new(&config, start);
        for _ in 0..300 {
            limiter.check(10, start);
        }
        let later = start + Duration::from_secs(9);
        assert_eq!(limiter.check(10, later), Verdict::Allow);
        let much_later = later + Duration::from_secs(5);
        for _ in 0..300 {
            assert_ne!(
                limiter.check(10, much_later),
                Verdict::Close,
                "a new run of rejections starts its own clock"
            );
        }
    }

    #[test]
    fn bytes_are_limited_too() {
        let config = Config::default();
        let start = Instant::now();
        let mut limiter = RateLimiter::new(&config, start);
        let big = 700 * 1024;
        let fits = (config.byte_burst / big as f64) as usize;
        for _ in 0..fits {
            assert_eq!(limiter.check(big, start), Verdict::Allow);
        }
        assert_eq!(limiter.check(big, start), Verdict::Drop { notify: true });
    }
}
