//! Leadership as a fence: every write (status, Event) first asks [`Leadership::ensure`].
//!
//! kube-lease-manager renews the Lease but only logs a failed renewal, and says "lost" only
//! once it has seen another holder. A leader cut off from the API server would go on believing
//! it leads after its Lease has expired and a standby has taken over. So the fence has a renew
//! deadline, as client-go's leader election has: leadership counts only while the Lease, read
//! back from the API server, shows this replica as holder with a renewal younger than the
//! deadline (shorter than the Lease duration, so the fence closes before anyone else may
//! acquire it).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;

/// This replica may not write: it does not hold a confirmed Lease.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("not the leader (lease lost or not renewed within the renew deadline)")]
pub struct NotLeader;

#[derive(Debug)]
pub struct Leadership {
    /// `None`: no leader election (a single replica always writes).
    fence: Option<Mutex<Fence>>,
    renew_deadline: Duration,
}

#[derive(Debug, Default, Clone, Copy)]
struct Fence {
    /// The lease manager says this replica holds the Lease.
    holder: bool,
    /// Leadership is confirmed until then (last confirmed renewal + renew deadline).
    until: Option<Instant>,
}

impl Leadership {
    /// No election: every check passes.
    pub fn always() -> Leadership {
        Leadership {
            fence: None,
            renew_deadline: Duration::MAX,
        }
    }

    /// Elected, with a renew deadline: starts closed.
    pub fn fenced(renew_deadline: Duration) -> Leadership {
        Leadership {
            fence: Some(Mutex::new(Fence::default())),
            renew_deadline,
        }
    }

    fn lock(&self) -> Option<std::sync::MutexGuard<'_, Fence>> {
        self.fence
            .as_ref()
            .map(|f| f.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Ok while this replica may write.
    pub fn ensure(&self) -> Result<(), NotLeader> {
        self.ensure_at(Instant::now())
    }

    fn ensure_at(&self, now: Instant) -> Result<(), NotLeader> {
        match self.lock() {
            None => Ok(()),
            Some(f) if f.holder && f.until.is_some_and(|u| now < u) => Ok(()),
            Some(_) => Err(NotLeader),
        }
    }

    /// The lease manager's view: acquired (true) or lost (false).
    pub fn set_holder(&self, holder: bool) {
        if let Some(mut f) = self.lock() {
            f.holder = holder;
            if !holder {
                f.until = None;
            }
        }
    }

    /// The Lease was read back showing this replica as holder, renewed `age` ago.
    pub fn confirm(&self, age: Duration) {
        self.confirm_at(age, Instant::now());
    }

    fn confirm_at(&self, age: Duration, now: Instant) {
        if let Some(mut f) = self.lock()
            && f.holder
        {
            let until = now
                .checked_sub(age)
                .unwrap_or(now)
                .checked_add(self.renew_deadline);
            // Never moves back: a read that arrives late with an older renewal must not
            // shorten what a newer one confirmed.
            f.until = match (f.until, until) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => b.or(a),
            };
        }
    }

    /// The Lease no longer shows this replica as holder.
    pub fn revoke(&self) {
        self.set_holder(false);
    }

    pub fn renew_deadline(&self) -> Duration {
        self.renew_deadline
    }
}

/// How long ago `lease` was renewed by `identity`, or `None` if it is not the holder.
pub fn renewed_by(lease: &Lease, identity: &str, now: Timestamp) -> Option<Duration> {
    let spec = lease.spec.as_ref()?;
    if spec.holder_identity.as_deref() != Some(identity) {
        return None;
    }
    let renewed = spec.renew_time.as_ref()?.0;
    let age = now.duration_since(renewed);
    // A renewal "in the future" (clock step) counts as just now.
    Some(if age.is_negative() {
        Duration::ZERO
    } else {
        age.unsigned_abs()
    })
}

/// Reads the Lease back every `period` and confirms or revokes the fence. Runs until dropped.
pub async fn confirm_loop(
    leadership: &Leadership,
    api: Api<Lease>,
    lease_name: &str,
    identity: &str,
    period: Duration,
    mut tick: impl FnMut(),
) {
    loop {
        match api.get_opt(lease_name).await {
            Ok(Some(lease)) => match renewed_by(&lease, identity, Timestamp::now()) {
                Some(age) => leadership.confirm(age),
                None => leadership.revoke(),
            },
            Ok(None) => leadership.revoke(),
            // Unconfirmed: the fence closes by itself at the renew deadline.
            Err(e) => tracing::warn!(error = %e, "reading the leader Lease failed"),
        }
        tick();
        tokio::time::sleep(period).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

    const DEADLINE: Duration = Duration::from_secs(10);

    #[test]
    fn without_election_everything_may_write() {
        assert!(Leadership::always().ensure().is_ok());
    }

    #[test]
    fn the_fence_opens_only_on_a_confirmed_renewal_and_closes_at_the_deadline() {
        let l = Leadership::fenced(DEADLINE);
        let now = Instant::now();
        assert!(l.ensure_at(now).is_err(), "closed before acquiring");
        l.set_holder(true);
        assert!(l.ensure_at(now).is_err(), "acquired but not read back yet");
        l.confirm_at(Duration::from_secs(2), now);
        assert!(l.ensure_at(now + Duration::from_secs(7)).is_ok());
        // No renewal confirmed for longer than the deadline (cut off, 429s on the Lease...).
        assert!(l.ensure_at(now + Duration::from_secs(8)).is_err());
        // A late, older read does not shorten a newer confirmation.
        l.confirm_at(Duration::ZERO, now);
        l.confirm_at(Duration::from_secs(9), now);
        assert!(l.ensure_at(now + Duration::from_secs(9)).is_ok());
        l.revoke();
        assert!(l.ensure_at(now).is_err());
        l.confirm_at(Duration::ZERO, now);
        assert!(
            l.ensure_at(now).is_err(),
            "no confirmation without the holder flag"
        );
    }

    #[test]
    fn renewals_are_read_from_the_lease() {
        let now = Timestamp::now();
        let lease = |holder: &str, age: i64| Lease {
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.into()),
                renew_time: Some(MicroTime(now - Duration::from_secs(age as u64))),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            renewed_by(&lease("a", 3), "a", now),
            Some(Duration::from_secs(3))
        );
        assert_eq!(renewed_by(&lease("b", 3), "a", now), None);
        assert_eq!(renewed_by(&Lease::default(), "a", now), None);
    }
}
