//! When to poll: a pure function of what the operator remembers about an object, what the
//! object asks for, and the time. No clock is read here; `now` is always passed in.

use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;

use crate::crd::CloudQuotaStatus;
use crate::domain::status;

/// Shortest poll interval honoured (the CRD enforces it too).
pub const MIN_INTERVAL: Duration = Duration::from_secs(30);
/// First retry after a failed reconcile (status write, Event publish, API server trouble).
pub const ERROR_BACKOFF_MIN: Duration = Duration::from_secs(5);
/// Longest wait between retries of a failing reconcile: a persistent 403 on
/// `cloudquotas/status` costs one attempt per object every 5 minutes, not every 7 seconds.
pub const ERROR_BACKOFF_MAX: Duration = Duration::from_secs(300);

/// The polling memory of one object.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// When the next poll is due; `None` before the first decision.
    pub next_due: Option<Instant>,
    /// When the sample last evaluated was received from upstream.
    pub evaluated_at: Option<Instant>,
    /// The generation last polled.
    pub observed_generation: Option<i64>,
    /// Consecutive failed polls, counted once per upstream answer.
    pub failures: u32,
    /// When the last failed answer was received: a shared cached failure is not counted twice.
    pub failed_at: Option<Instant>,
}

/// What the object asks for this round.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub interval: Duration,
    pub generation: Option<i64>,
    /// The status as stored (the operator's last write, else the watch's copy).
    pub stored: Option<&'a CloudQuotaStatus>,
    /// A refresh annotation not yet recorded in `status.observedRefresh`.
    pub refresh_requested: bool,
    /// The target (provider, service, region, endpoint, project, zones) is not the one last
    /// polled.
    pub target_changed: bool,
}

/// The decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Poll now. `newer_than`: the answer must have been received after this instant (a
    /// refresh request bypasses answers this object already saw).
    Now { newer_than: Option<Instant> },
    /// Nothing to do until then (unless a fresher shared answer arrives).
    Wait(Duration),
}

impl Schedule {
    /// Is a poll due? Resets what belonged to a previous target.
    pub fn decide(&mut self, req: &Request<'_>, now: Instant, wall: Timestamp) -> Due {
        if req.target_changed {
            // Another account: nothing remembered about the old one applies.
            *self = Schedule::default();
        }
        if self.next_due.is_none() && !req.target_changed {
            self.next_due = resume(req.stored, req.interval, now, wall);
        }
        let generation_changed = req.generation
            != self
                .observed_generation
                .or(req.stored.and_then(|s| s.observed_generation));
        if generation_changed || req.refresh_requested || self.next_due.is_none_or(|d| now >= d) {
            let newer_than = if req.refresh_requested {
                self.evaluated_at
            } else {
                None
            };
            return Due::Now { newer_than };
        }
        Due::Wait(
            self.next_due
                .map(|d| d.saturating_duration_since(now))
                .unwrap_or(req.interval),
        )
    }

    /// Records a successful poll.
    pub fn succeeded(&mut self, received: Instant, interval: Duration, now: Instant) {
        self.failures = 0;
        self.failed_at = None;
        self.evaluated_at = Some(received);
        self.next_due = Some(now + interval);
    }

    /// Records a failed poll; returns the delay before the next try. A failure shared through
    /// the fetch cache counts once however many times it is evaluated.
    pub fn failed(
        &mut self,
        received: Option<Instant>,
        interval: Duration,
        retry_after: Option<Duration>,
        now: Instant,
    ) -> Duration {
        if received.is_none() || received != self.failed_at {
            self.failures = self.failures.saturating_add(1);
        }
        self.failed_at = received;
        if received.is_some() {
            self.evaluated_at = received;
        }
        let delay = failure_backoff(self.failures, interval, retry_after);
        self.next_due = Some(now + delay);
        delay
    }
}

/// First sight since start: honour the stored attempt time so restarts and fail-overs don't
/// poll the whole fleet at once. Only a healthy stored status is trusted to wait.
pub fn resume(
    stored: Option<&CloudQuotaStatus>,
    interval: Duration,
    now: Instant,
    wall: Timestamp,
) -> Option<Instant> {
    let stored = stored?;
    let ready = stored
        .conditions
        .iter()
        .any(|c| c.type_ == status::READY && c.status == "True");
    let at = stored.last_attempt_time.as_ref().filter(|_| ready)?;
    let age = wall.duration_since(at.0);
    if age.is_negative() {
        return Some(now);
    }
    Some(now + interval.saturating_sub(age.unsigned_abs()))
}

/// Delay after the n-th consecutive failed poll: 5 s doubling, capped at the interval, and
/// never shorter than the provider's Retry-After.
pub fn failure_backoff(
    failures: u32,
    interval: Duration,
    retry_after: Option<Duration>,
) -> Duration {
    let exp = Duration::from_secs(5).saturating_mul(1 << failures.min(10).saturating_sub(1));
    exp.min(interval).max(retry_after.unwrap_or_default())
}

/// Delay after the n-th consecutive failed reconcile (n >= 1): 5 s doubling, capped at 5 min.
pub fn error_backoff(errors: u32) -> Duration {
    ERROR_BACKOFF_MIN
        .saturating_mul(1 << errors.clamp(1, 16).saturating_sub(1))
        .min(ERROR_BACKOFF_MAX)
}

/// `d` plus up to `jitter` of itself, from a random fraction in `0.0..1.0`.
pub fn jittered(d: Duration, jitter: f64, random: f64) -> Duration {
    if jitter <= 0.0 {
        return d;
    }
    d + d.mul_f64(jitter * random.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    const FIVE_MIN: Duration = Duration::from_secs(300);

    fn req(stored: Option<&CloudQuotaStatus>) -> Request<'_> {
        Request {
            interval: FIVE_MIN,
            generation: Some(1),
            stored,
            refresh_requested: false,
            target_changed: false,
        }
    }

    fn ready_status(attempt: Timestamp) -> CloudQuotaStatus {
        CloudQuotaStatus {
            observed_generation: Some(1),
            last_attempt_time: Some(Time(attempt)),
            conditions: vec![Condition {
                type_: status::READY.into(),
                status: "True".into(),
                reason: "Synced".into(),
                message: String::new(),
                observed_generation: Some(1),
                last_transition_time: Time(attempt),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn a_new_object_is_due_and_then_waits_its_interval() {
        let (now, wall) = (Instant::now(), Timestamp::now());
        let mut s = Schedule::default();
        assert_eq!(
            s.decide(&req(None), now, wall),
            Due::Now { newer_than: None }
        );
        s.observed_generation = Some(1);
        s.succeeded(now, FIVE_MIN, now);
        assert_eq!(s.decide(&req(None), now, wall), Due::Wait(FIVE_MIN));
        let later = now + FIVE_MIN;
        assert!(matches!(s.decide(&req(None), later, wall), Due::Now { .. }));
    }

    #[test]
    fn a_restart_resumes_from_the_stored_attempt() {
        let (now, wall) = (Instant::now(), Timestamp::now());
        let stored = ready_status(wall - Duration::from_secs(60));
        let mut s = Schedule::default();
        let Due::Wait(d) = s.decide(&req(Some(&stored)), now, wall) else {
            panic!("a healthy stored status is not polled again at once");
        };
        assert!(
            d <= Duration::from_secs(240) && d >= Duration::from_secs(239),
            "{d:?}"
        );
        // An edited spec is polled at once all the same.
        let mut edited = req(Some(&stored));
        edited.generation = Some(2);
        assert!(matches!(s.decide(&edited, now, wall), Due::Now { .. }));
    }

    #[test]
    fn a_target_change_forgets_the_old_target() {
        let (now, wall) = (Instant::now(), Timestamp::now());
        let mut s = Schedule {
            observed_generation: Some(1),
            ..Default::default()
        };
        s.failed(Some(now), FIVE_MIN, None, now);
        s.failed(Some(now + Duration::from_secs(1)), FIVE_MIN, None, now);
        assert_eq!(s.failures, 2);
        let mut moved = req(None);
        moved.target_changed = true;
        assert_eq!(s.decide(&moved, now, wall), Due::Now { newer_than: None });
        assert_eq!(
            s.failures, 0,
            "backoff of the old account does not carry over"
        );
        assert_eq!(s.evaluated_at, None);
    }

    #[test]
    fn a_refresh_asks_for_a_newer_answer() {
        let (now, wall) = (Instant::now(), Timestamp::now());
        let mut s = Schedule {
            observed_generation: Some(1),
            ..Default::default()
        };
        s.succeeded(now, FIVE_MIN, now);
        let mut r = req(None);
        r.refresh_requested = true;
        assert_eq!(
            s.decide(&r, now, wall),
            Due::Now {
                newer_than: Some(now)
            }
        );
    }

    #[test]
    fn one_shared_failure_counts_once() {
        let now = Instant::now();
        let mut s = Schedule::default();
        s.failed(Some(now), FIVE_MIN, None, now);
        s.failed(Some(now), FIVE_MIN, None, now);
        assert_eq!(s.failures, 1, "the same cached answer evaluated twice");
        s.failed(Some(now + Duration::from_secs(5)), FIVE_MIN, None, now);
        assert_eq!(s.failures, 2);
        // A failure before any upstream request (bad Secret) counts every time.
        s.failed(None, FIVE_MIN, None, now);
        s.failed(None, FIVE_MIN, None, now);
        assert_eq!(s.failures, 4);
    }

    #[test]
    fn backoff_grows_is_capped_and_honours_retry_after() {
        let i = FIVE_MIN;
        assert_eq!(failure_backoff(1, i, None), Duration::from_secs(5));
        assert_eq!(failure_backoff(3, i, None), Duration::from_secs(20));
        assert_eq!(failure_backoff(30, i, None), i);
        assert_eq!(
            failure_backoff(1, i, Some(Duration::from_secs(60))),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn reconcile_errors_back_off_exponentially_to_five_minutes() {
        let waits: Vec<u64> = (1..=9).map(|n| error_backoff(n).as_secs()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(error_backoff(0), ERROR_BACKOFF_MIN);
        assert_eq!(error_backoff(u32::MAX), ERROR_BACKOFF_MAX);
    }

    #[test]
    fn jitter_adds_at_most_its_fraction() {
        let d = Duration::from_secs(100);
        assert_eq!(jittered(d, 0.1, 0.0), d);
        assert_eq!(jittered(d, 0.1, 1.0), Duration::from_secs(110));
        assert_eq!(jittered(d, 0.0, 0.7), d);
    }
}
