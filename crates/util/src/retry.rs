//! Retrying async operations with exponential backoff and full jitter.
//!
//! [`retry`] runs an operation until it succeeds, until a [`Classifier`]
//! says an error is not worth retrying, until [`RetryPolicy::max_attempts`]
//! attempts were made, or until the next wait would cross the policy's
//! overall [`deadline`](RetryPolicy::deadline). It returns the operation's
//! value or its last error, unchanged.
//!
//! **Backoff.** Before retry number *n* (1-based) the ceiling is
//! `min(max_delay, initial_delay × multiplier^(n−1))`; with
//! [`Jitter::Full`] (the default) the actual wait is uniformly random in
//! `[0, ceiling]`, which spreads out clients that failed together (the "full
//! jitter" scheme). When the classifier answers
//! [`RetryDecision::RetryAfter`] (a server's `Retry-After`), that wait is
//! used instead — unless it exceeds [`RetryPolicy::max_retry_after`], in
//! which case retrying stops rather than hammering the server early.
//!
//! **Classifiers.** [`DefaultClassifier`] retries errors whose
//! [`HasErrorKind::kind`] is `Unavailable` or `Timeout` and never the others
//! (`Invalid`, `Forbidden`, `NotFound`, ...), and honours
//! [`HasErrorKind::retry_after`]. Any `Fn(&E) -> RetryDecision` closure is a
//! classifier too.
//!
//! **Deadline.** The deadline bounds the time spent *waiting*: no wait
//! starts that would end after it. An attempt already running is not
//! interrupted; wrap the operation in `tokio::time::timeout` for that.
//!
//! Waiting uses `tokio::time::sleep`, so it needs a Tokio runtime with the
//! time driver, and tests can use Tokio's paused clock.
//!
//! ```
//! use std::time::Duration;
//! use kubepkg_util::retry::{retry, DefaultClassifier, RetryPolicy};
//! use kubepkg_util::{Error, ErrorKind, HasErrorKind};
//!
//! # #[derive(Debug)] struct Flaky;
//! # impl HasErrorKind for Flaky { fn kind(&self) -> ErrorKind { ErrorKind::Unavailable } }
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let policy = RetryPolicy::default()
//!     .initial_delay(Duration::from_millis(50))
//!     .max_attempts(4);
//! let mut calls = 0;
//! let out: Result<&str, Flaky> = retry(&policy, DefaultClassifier, || {
//!     calls += 1;
//!     let ok = calls == 3;
//!     async move { if ok { Ok("done") } else { Err(Flaky) } }
//! })
//! .await;
//! assert_eq!(out.unwrap(), "done");
//! assert_eq!(calls, 3);
//! # }
//! ```

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::HasErrorKind;

/// What to do after an attempt failed with a given error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Retry after the policy's backoff delay.
    Retry,
    /// Retry after this delay (a server's `Retry-After`).
    RetryAfter(Duration),
    /// Do not retry; return this error.
    Stop,
}

/// Decides, per error, whether an operation is retried.
pub trait Classifier<E> {
    /// The decision for `error`.
    fn classify(&self, error: &E) -> RetryDecision;
}

impl<E, F> Classifier<E> for F
where
    F: Fn(&E) -> RetryDecision,
{
    fn classify(&self, error: &E) -> RetryDecision {
        self(error)
    }
}

/// Retries `Unavailable` and `Timeout` errors (honouring
/// [`HasErrorKind::retry_after`]) and stops on every other kind.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultClassifier;

impl<E: HasErrorKind> Classifier<E> for DefaultClassifier {
    fn classify(&self, error: &E) -> RetryDecision {
        if !error.kind().is_retryable() {
            return RetryDecision::Stop;
        }
        match error.retry_after() {
            Some(wait) => RetryDecision::RetryAfter(wait),
            None => RetryDecision::Retry,
        }
    }
}

/// How the backoff ceiling is turned into an actual wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Jitter {
    /// Uniformly random in `[0, ceiling]` (recommended).
    #[default]
    Full,
    /// Exactly the ceiling (deterministic; for tests and special cases).
    None,
}

/// The knobs of [`retry`]. Build with the setter methods:
///
/// ```
/// use std::time::Duration;
/// use kubepkg_util::retry::RetryPolicy;
///
/// let p = RetryPolicy::default()
///     .initial_delay(Duration::from_millis(200))
///     .max_delay(Duration::from_secs(5))
///     .multiplier(3.0)
///     .max_attempts(6)
///     .deadline(Duration::from_secs(30));
/// assert_eq!(p.get_max_attempts(), Some(6));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    initial_delay: Duration,
    max_delay: Duration,
    multiplier: f64,
    max_attempts: Option<u32>,
    deadline: Option<Duration>,
    max_retry_after: Duration,
    jitter: Jitter,
    seed: Option<u64>,
}

impl Default for RetryPolicy {
    /// 100 ms initial delay, ×2 per retry, at most 10 s per wait, 5 attempts,
    /// no overall deadline, `Retry-After` honoured up to 5 minutes, full jitter.
    fn default() -> Self {
        RetryPolicy {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
            multiplier: 2.0,
            max_attempts: Some(5),
            deadline: None,
            max_retry_after: Duration::from_secs(300),
            jitter: Jitter::Full,
            seed: None,
        }
    }
}

impl RetryPolicy {
    /// The ceiling of the first wait.
    #[must_use]
    pub fn initial_delay(mut self, d: Duration) -> Self {
        self.initial_delay = d;
        self
    }

    /// The largest ceiling of any backoff wait.
    #[must_use]
    pub fn max_delay(mut self, d: Duration) -> Self {
        self.max_delay = d;
        self
    }

    /// The growth factor of the ceiling per retry (values below 1 and
    /// non-finite values are treated as 1).
    #[must_use]
    pub fn multiplier(mut self, m: f64) -> Self {
        self.multiplier = m;
        self
    }

    /// The most attempts in total, the first one included (0 is treated as 1).
    #[must_use]
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = Some(n.max(1));
        self
    }

    /// No limit on the number of attempts (set a [`deadline`](Self::deadline)!).
    #[must_use]
    pub fn unlimited_attempts(mut self) -> Self {
        self.max_attempts = None;
        self
    }

    /// An overall time budget measured from the first attempt.
    #[must_use]
    pub fn deadline(mut self, d: Duration) -> Self {
        self.deadline = Some(d);
        self
    }

    /// The longest `Retry-After` honoured; a longer one stops retrying.
    #[must_use]
    pub fn max_retry_after(mut self, d: Duration) -> Self {
        self.max_retry_after = d;
        self
    }

    /// The jitter mode.
    #[must_use]
    pub fn jitter(mut self, j: Jitter) -> Self {
        self.jitter = j;
        self
    }

    /// Seeds the jitter's random generator (for reproducible waits); by
    /// default it is seeded from the clock and a per-process counter.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The configured attempt limit (`None` = unlimited).
    pub fn get_max_attempts(&self) -> Option<u32> {
        self.max_attempts
    }

    /// The configured overall deadline.
    pub fn get_deadline(&self) -> Option<Duration> {
        self.deadline
    }

    /// The backoff ceiling before retry number `retry` (1-based).
    pub fn ceiling(&self, retry: u32) -> Duration {
        let multiplier = if self.multiplier.is_finite() && self.multiplier >= 1.0 {
            self.multiplier
        } else {
            1.0
        };
        let exp = i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX);
        let secs = self.initial_delay.as_secs_f64() * multiplier.powi(exp);
        let max = self.max_delay.as_secs_f64();
        if !secs.is_finite() || secs >= max {
            self.max_delay
        } else {
            Duration::from_secs_f64(secs)
        }
    }

    /// The sequence of backoff waits this policy would use (ignoring
    /// `Retry-After` and the deadline), one per retry.
    pub fn backoff(&self) -> Backoff {
        Backoff {
            policy: self.clone(),
            retry: 0,
            rng: SplitMix64::new(self.seed.unwrap_or_else(entropy)),
        }
    }
}

/// The waits of a [`RetryPolicy`]; an endless iterator when attempts are
/// unlimited, otherwise one item per allowed retry.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: RetryPolicy,
    retry: u32,
    rng: SplitMix64,
}

impl Iterator for Backoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if let Some(max) = self.policy.max_attempts
            && self.retry + 1 >= max
        {
            return None;
        }
        self.retry = self.retry.saturating_add(1);
        let ceiling = self.policy.ceiling(self.retry);
        Some(match self.policy.jitter {
            Jitter::None => ceiling,
            Jitter::Full => {
                let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
                Duration::from_nanos(self.rng.below_inclusive(nanos))
            }
        })
    }
}

/// Runs `op` until it succeeds or the policy / classifier says stop, and
/// returns its value or its last error. See the [module docs](self).
pub async fn retry<T, E, C, F, Fut>(policy: &RetryPolicy, classifier: C, mut op: F) -> Result<T, E>
where
    C: Classifier<E>,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let start = tokio::time::Instant::now();
    let deadline = policy.deadline.and_then(|d| start.checked_add(d));
    let mut backoff = policy.backoff();
    loop {
        let error = match op().await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        let Some(backoff_wait) = backoff.next() else {
            return Err(error);
        };
        let wait = match classifier.classify(&error) {
            RetryDecision::Stop => return Err(error),
            RetryDecision::Retry => backoff_wait,
            RetryDecision::RetryAfter(wait) if wait <= policy.max_retry_after => wait,
            RetryDecision::RetryAfter(_) => return Err(error),
        };
        if let Some(deadline) = deadline {
            match tokio::time::Instant::now().checked_add(wait) {
                Some(wake) if wake <= deadline => {}
                _ => return Err(error),
            }
        }
        tokio::time::sleep(wait).await;
    }
}

/// A seed from the wall clock, the address of a stack slot and a counter.
fn entropy() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let time = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let local = 0u8;
    let addr = std::ptr::addr_of!(local) as usize as u64;
    time ^ addr.rotate_left(32) ^ COUNTER.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
}

/// SplitMix64: tiny, fast, good enough for jitter (not for secrets).
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, max]` (the tiny modulo bias is irrelevant for jitter).
    fn below_inclusive(&mut self, max: u64) -> u64 {
        match max.checked_add(1) {
            Some(n) => ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64,
            None => self.next_u64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use std::cell::Cell;

    #[derive(Debug, PartialEq)]
    struct TestError {
        kind: ErrorKind,
        retry_after: Option<Duration>,
    }

    impl HasErrorKind for TestError {
        fn kind(&self) -> ErrorKind {
            self.kind
        }
        fn retry_after(&self) -> Option<Duration> {
            self.retry_after
        }
    }

    fn err(kind: ErrorKind) -> TestError {
        TestError {
            kind,
            retry_after: None,
        }
    }

    #[test]
    fn ceilings_grow_and_cap() {
        let p = RetryPolicy::default()
            .initial_delay(Duration::from_millis(100))
            .max_delay(Duration::from_millis(1000))
            .multiplier(2.0);
        let got: Vec<_> = (1..=6).map(|n| p.ceiling(n).as_millis()).collect();
        assert_eq!(got, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(
            p.clone().multiplier(f64::NAN).ceiling(5),
            Duration::from_millis(100)
        );
        assert_eq!(p.ceiling(u32::MAX), Duration::from_millis(1000));
    }

    #[test]
    fn full_jitter_stays_below_ceiling_and_is_seeded() {
        let p = RetryPolicy::default().unlimited_attempts().seed(42);
        let a: Vec<_> = p.backoff().take(50).collect();
        let b: Vec<_> = p.backoff().take(50).collect();
        assert_eq!(a, b, "same seed, same waits");
        for (i, wait) in a.iter().enumerate() {
            assert!(*wait <= p.ceiling(i as u32 + 1), "retry {i}: {wait:?}");
        }
        assert!(a.windows(2).any(|w| w[0] != w[1]), "jitter varies");
        assert_eq!(RetryPolicy::default().max_attempts(3).backoff().count(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_transient_errors_then_succeeds() {
        let p = RetryPolicy::default().jitter(Jitter::None).max_attempts(5);
        let calls = Cell::new(0);
        let start = tokio::time::Instant::now();
        let out = retry(&p, DefaultClassifier, || {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move {
                if n < 4 {
                    Err(err(ErrorKind::Unavailable))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(out, Ok(4));
        // 100 + 200 + 400 ms of backoff on the paused clock.
        assert_eq!(start.elapsed(), Duration::from_millis(700));
    }

    #[tokio::test(start_paused = true)]
    async fn stops_on_permanent_errors() {
        for kind in [
            ErrorKind::Invalid,
            ErrorKind::Forbidden,
            ErrorKind::NotFound,
            ErrorKind::Unauthorized,
        ] {
            let calls = Cell::new(0);
            let out: Result<(), _> = retry(&RetryPolicy::default(), DefaultClassifier, || {
                calls.set(calls.get() + 1);
                async move { Err(err(kind)) }
            })
            .await;
            assert_eq!(out, Err(err(kind)));
            assert_eq!(calls.get(), 1, "{kind}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_max_attempts_with_last_error() {
        let calls = Cell::new(0);
        let out: Result<(), _> = retry(
            &RetryPolicy::default().max_attempts(3),
            DefaultClassifier,
            || {
                calls.set(calls.get() + 1);
                async move { Err(err(ErrorKind::Timeout)) }
            },
        )
        .await;
        assert_eq!(out, Err(err(ErrorKind::Timeout)));
        assert_eq!(calls.get(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn honours_retry_after() {
        let p = RetryPolicy::default().jitter(Jitter::None);
        let calls = Cell::new(0);
        let start = tokio::time::Instant::now();
        let out = retry(&p, DefaultClassifier, || {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move {
                if n == 1 {
                    Err(TestError {
                        kind: ErrorKind::Unavailable,
                        retry_after: Some(Duration::from_secs(7)),
                    })
                } else {
                    Ok(())
                }
            }
        })
        .await;
        assert_eq!(out, Ok(()));
        assert_eq!(start.elapsed(), Duration::from_secs(7));

        // A Retry-After beyond the cap stops instead of waiting.
        let calls = Cell::new(0);
        let p = p.max_retry_after(Duration::from_secs(1));
        let out: Result<(), _> = retry(&p, DefaultClassifier, || {
            calls.set(calls.get() + 1);
            async {
                Err(TestError {
                    kind: ErrorKind::Unavailable,
                    retry_after: Some(Duration::from_secs(60)),
                })
            }
        })
        .await;
        assert!(out.is_err());
        assert_eq!(calls.get(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn deadline_bounds_total_waiting() {
        let p = RetryPolicy::default()
            .jitter(Jitter::None)
            .unlimited_attempts()
            .initial_delay(Duration::from_secs(1))
            .multiplier(1.0)
            .deadline(Duration::from_millis(3500));
        let calls = Cell::new(0);
        let start = tokio::time::Instant::now();
        let out: Result<(), _> = retry(&p, DefaultClassifier, || {
            calls.set(calls.get() + 1);
            async { Err(err(ErrorKind::Unavailable)) }
        })
        .await;
        assert!(out.is_err());
        // Attempts at 0, 1, 2 and 3 s; a fifth would start after the deadline.
        assert_eq!(calls.get(), 4);
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn closures_are_classifiers() {
        let calls = Cell::new(0);
        let classify = |e: &&str| {
            if *e == "again" {
                RetryDecision::Retry
            } else {
                RetryDecision::Stop
            }
        };
        let out: Result<(), &str> = retry(&RetryPolicy::default(), classify, || {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move { Err(if n < 3 { "again" } else { "fatal" }) }
        })
        .await;
        assert_eq!(out, Err("fatal"));
        assert_eq!(calls.get(), 3);
    }
}
