//! `cloudquota check`: will N more of a resource fit? Evaluated from a CloudQuota's status.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

use crate::crd::CloudQuotaStatus;
use crate::domain::status::{READY, resource_label};

/// Below this share of the limit left after the need, the verdict is `AvailableButLow`.
pub const LOW_PERCENT: i64 = 20;

/// One `RESOURCE[@ZONE]=N` argument.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Need {
    pub resource: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    pub amount: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid need {0:?}: expected RESOURCE[@ZONE]=N with N a whole number >= 0, e.g. volumes_SSD=10 or image@sa-jeddah-1a=1"
)]
pub struct NeedError(pub String);

impl std::str::FromStr for Need {
    type Err = NeedError;
    fn from_str(s: &str) -> Result<Need, NeedError> {
        let err = || NeedError(s.to_string());
        let (lhs, n) = s.rsplit_once('=').ok_or_else(err)?;
        let amount: i64 = n.trim().parse().map_err(|_| err())?;
        if amount < 0 {
            return Err(err());
        }
        let (resource, zone) = match lhs.split_once('@') {
            Some((r, z)) if !z.is_empty() => (r, Some(z.to_string())),
            Some(_) => return Err(err()),
            None => (lhs, None),
        };
        if resource.is_empty() {
            return Err(err());
        }
        Ok(Need {
            resource: resource.to_string(),
            zone,
            amount,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Verdict {
    Available,
    AvailableButLow,
    NotAvailable,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NeedResult {
    #[serde(flatten)]
    pub need: Need,
    pub verdict: Verdict,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    /// What would be left after the need; absent when unlimited or unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub left_after: Option<i64>,
}

/// Why the whole status can't be trusted, if it can't.
fn untrusted(
    status: Option<&CloudQuotaStatus>,
    max_age: Option<Duration>,
    now: Timestamp,
) -> Option<String> {
    let Some(status) = status else {
        return Some("the CloudQuota has no status yet".into());
    };
    match status.conditions.iter().find(|c| c.type_ == READY) {
        Some(c) if c.status == "True" => {}
        Some(c) => {
            return Some(format!(
                "the CloudQuota is not Ready ({}: {})",
                c.reason, c.message
            ));
        }
        None => return Some("the CloudQuota has not been polled yet".into()),
    }
    if let Some(max_age) = max_age {
        let Some(sync) = &status.last_sync_time else {
            return Some("the CloudQuota has never synced".into());
        };
        let age = now.duration_since(sync.0);
        if age.is_positive() && age.unsigned_abs() > max_age {
            return Some(format!(
                "the status is {} old, more than --max-age {}",
                crate::domain::duration::format(age.unsigned_abs()),
                crate::domain::duration::format(max_age)
            ));
        }
    }
    None
}

/// What `check` knows about an object besides its status.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    pub status: Option<&'a CloudQuotaStatus>,
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// The object's poll interval.
    pub interval: Duration,
    /// When the operator last renewed the Lease named in `status.operatorLease` while holding
    /// it; `None` when there is none or it could not be read.
    pub lease_renewed: Option<Timestamp>,
}

/// `--max-age` when none is given: three intervals (the chart's staleness alert fires after
/// the same number of missed polls).
pub fn default_max_age(interval: Duration) -> Duration {
    interval.saturating_mul(3)
}

/// How late a poll may be against its interval (jitter, the poll itself) before the operator's
/// heartbeat stops vouching for it.
fn slack(interval: Duration) -> Duration {
    interval / 4 + Duration::from_secs(30)
}

/// How old the status's data may be at most. Status is written on change only (plus a
/// heartbeat every 10 minutes), so `lastSyncTime` alone overstates the age of data that simply
/// did not change. The operator's Lease says more, as a Node's Lease does beside change-only
/// Node status: while the operator held and renewed it, it polled the object every interval
/// and would have written any change. So the data is at most as old as the last renewal plus
/// one interval (with slack), and never older than `lastSyncTime` says.
pub fn data_age(o: &Observed<'_>, now: Timestamp) -> Option<Duration> {
    let sync = o.status?.last_sync_time.as_ref()?;
    let since = |t: Timestamp| {
        let d = now.duration_since(t);
        if d.is_negative() {
            Duration::ZERO
        } else {
            d.unsigned_abs()
        }
    };
    let by_sync = since(sync.0);
    let ready = o
        .status?
        .conditions
        .iter()
        .any(|c| c.type_ == READY && c.status == "True");
    match o.lease_renewed.filter(|_| ready) {
        Some(renewed) => Some(by_sync.min(since(renewed) + o.interval + slack(o.interval))),
        None => Some(by_sync),
    }
}

/// A verdict per need for an object: its status must be for the current generation, Ready, and
/// no older than `max_age` (default: [`default_max_age`]), judged by [`data_age`].
pub fn evaluate_observed(
    o: &Observed<'_>,
    needs: &[Need],
    max_age: Option<Duration>,
    now: Timestamp,
) -> Vec<NeedResult> {
    let max_age = max_age.unwrap_or_else(|| default_max_age(o.interval));
    let distrust = untrusted(o.status, None, now).or_else(|| {
        let status = o.status?;
        if status.observed_generation != o.generation {
            return Some(format!(
                "the status is for generation {}, the CloudQuota is at {} (edited since its last poll)",
                status
                    .observed_generation
                    .map(|g| g.to_string())
                    .unwrap_or_else(|| "none".into()),
                o.generation.map(|g| g.to_string()).unwrap_or_else(|| "none".into())
            ));
        }
        let Some(age) = data_age(o, now) else {
            return Some("the CloudQuota has never synced".into());
        };
        (age > max_age).then(|| {
            format!(
                "the data may be {} old, more than the max age {}{}",
                crate::domain::duration::format(age),
                crate::domain::duration::format(max_age),
                if o.lease_renewed.is_some() {
                    ""
                } else {
                    " (no fresh operator Lease vouches for it)"
                }
            )
        })
    });
    verdicts(o.status, needs, distrust)
}

/// A verdict per need.
pub fn evaluate(
    status: Option<&CloudQuotaStatus>,
    needs: &[Need],
    max_age: Option<Duration>,
    now: Timestamp,
) -> Vec<NeedResult> {
    verdicts(status, needs, untrusted(status, max_age, now))
}

fn verdicts(
    status: Option<&CloudQuotaStatus>,
    needs: &[Need],
    distrust: Option<String>,
) -> Vec<NeedResult> {
    needs
        .iter()
        .map(|need| {
            let unknown = |reason: String| NeedResult {
                need: need.clone(),
                verdict: Verdict::Unknown,
                reason,
                used: None,
                limit: None,
                left_after: None,
            };
            if let Some(why) = &distrust {
                return unknown(why.clone());
            }
            let resources = status.map(|s| s.resources.as_slice()).unwrap_or_default();
            let matches: Vec<_> = resources
                .iter()
                .filter(|r| r.name == need.resource && (need.zone.is_none() || r.zone == need.zone))
                .collect();
            let r = match matches.as_slice() {
                [] => {
                    return unknown(format!(
                        "no resource {} in status",
                        resource_label(&need.resource, need.zone.as_deref())
                    ));
                }
                [r] => *r,
                _ => {
                    return unknown(format!(
                        "{} is reported per zone: name one as {}@ZONE",
                        need.resource, need.resource
                    ));
                }
            };
            let Some(limit) = r.limit.filter(|_| !r.unlimited) else {
                return NeedResult {
                    need: need.clone(),
                    verdict: Verdict::Available,
                    reason: "unlimited".into(),
                    used: Some(r.used),
                    limit: None,
                    left_after: None,
                };
            };
            // Reserved amounts are held against the limit too (EVS/Cinder).
            let consumed = r.used as i128 + r.reserved.unwrap_or(0).max(0) as i128;
            let left = limit as i128 - consumed - need.amount as i128;
            let left_after =
                i64::try_from(left).unwrap_or(if left < 0 { i64::MIN } else { i64::MAX });
            let (verdict, reason) = if left < 0 {
                (
                    Verdict::NotAvailable,
                    format!(
                        "needs {} but only {} left",
                        need.amount,
                        (limit as i128 - consumed).max(0)
                    ),
                )
            } else if left * 100 <= (LOW_PERCENT as i128) * (limit as i128) {
                (
                    Verdict::AvailableButLow,
                    format!("fits, leaving {left_after} of {limit} ({LOW_PERCENT}% or less)"),
                )
            } else {
                (
                    Verdict::Available,
                    format!("fits, leaving {left_after} of {limit}"),
                )
            };
            NeedResult {
                need: need.clone(),
                verdict,
                reason,
                used: Some(r.used),
                limit: Some(limit),
                left_after: Some(left_after),
            }
        })
        .collect()
}

/// 0 if every need fits, 1 if any does not, 2 if any is unknown (unknown wins: it is the one
/// a caller can't act on safely).
pub fn exit_code(results: &[NeedResult]) -> u8 {
    if results.iter().any(|r| r.verdict == Verdict::Unknown) {
        2
    } else if results.iter().any(|r| r.verdict == Verdict::NotAvailable) {
        1
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::Thresholds;
    use crate::domain::model::{Limit, Quota, Sample};
    use crate::domain::status::{Failure, PollOutcome, next};
    use crate::domain::thresholds::Policy;

    fn now() -> Timestamp {
        Timestamp::from_second(1_700_000_000).unwrap()
    }

    fn status(quotas: Vec<Quota>) -> CloudQuotaStatus {
        let s = Sample {
            endpoint: "x".into(),
            quotas,
        };
        let p = Policy::new(&Thresholds::default()).unwrap();
        next(
            None,
            PollOutcome::Synced {
                sample: &s,
                policy: &p,
            },
            None,
            now(),
        )
        .status
    }

    fn need(s: &str) -> Need {
        s.parse().unwrap()
    }

    #[test]
    fn parses_needs() {
        assert_eq!(
            need("volumes_SSD=10"),
            Need {
                resource: "volumes_SSD".into(),
                zone: None,
                amount: 10
            }
        );
        assert_eq!(
            need("image@sa-jeddah-1a=1").zone.as_deref(),
            Some("sa-jeddah-1a")
        );
        for bad in ["x", "=3", "x=-1", "x=a", "x@=1", "x=1.5"] {
            assert!(bad.parse::<Need>().is_err(), "{bad}");
        }
    }

    #[test]
    fn verdicts() {
        let mut zoned = Quota::new("image", 4, Limit::Limited(5));
        zoned.zone = Some("z1".into());
        let mut zoned2 = zoned.clone();
        zoned2.zone = Some("z2".into());
        zoned2.used = 0;
        let s = status(vec![
            Quota::new("volumes", 70, Limit::Limited(100)),
            Quota::new("snapshots", 3, Limit::Unlimited),
            zoned,
            zoned2,
        ]);
        let cases = [
            ("volumes=9", Verdict::Available),        // 21 of 100 left
            ("volumes=10", Verdict::AvailableButLow), // exactly 20% left counts as low
            ("volumes=30", Verdict::AvailableButLow), // 0 left
            ("volumes=0", Verdict::Available),
            ("snapshots=1000000", Verdict::Available), // unlimited
            ("volumes=31", Verdict::NotAvailable),
            ("image@z1=1", Verdict::AvailableButLow),
            ("image@z1=2", Verdict::NotAvailable),
            ("image@z2=2", Verdict::Available),
            ("image=1", Verdict::Unknown), // ambiguous without a zone
            ("nosuch=1", Verdict::Unknown),
        ];
        let needs: Vec<Need> = cases.iter().map(|(n, _)| need(n)).collect();
        let got = evaluate(Some(&s), &needs, None, now());
        for (i, (n, want)) in cases.iter().enumerate() {
            assert_eq!(got[i].verdict, *want, "{n}: {}", got[i].reason);
        }
        assert_eq!(got[5].left_after, Some(-1));
        assert_eq!(exit_code(&got), 2);
        assert_eq!(exit_code(&got[..6]), 1);
        assert_eq!(exit_code(&got[..5]), 0);
    }

    #[test]
    fn reserved_counts_against_the_limit() {
        let mut volumes = Quota::new("volumes", 70, Limit::Limited(100));
        volumes.reserved = Some(25);
        let s = status(vec![volumes]);
        let r = &s.resources[0];
        assert_eq!(
            (r.used, r.available, r.usage_percent),
            (70, Some(5), Some(95.0))
        );
        let got = evaluate(
            Some(&s),
            &[need("volumes=5"), need("volumes=6")],
            None,
            now(),
        );
        assert_eq!(
            got[0].verdict,
            Verdict::AvailableButLow,
            "{}",
            got[0].reason
        );
        assert_eq!(got[1].verdict, Verdict::NotAvailable, "{}", got[1].reason);
        assert!(got[1].reason.contains("only 5 left"), "{}", got[1].reason);
    }

    #[test]
    fn distrusts_stale_or_failing_status() {
        let s = status(vec![Quota::new("volumes", 1, Limit::Limited(100))]);
        let n = [need("volumes=1")];
        let later = now()
            .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(3600))
            .unwrap();
        let r = evaluate(Some(&s), &n, Some(Duration::from_secs(600)), later);
        assert_eq!(r[0].verdict, Verdict::Unknown);
        assert!(r[0].reason.contains("1h old"), "{}", r[0].reason);
        let r = evaluate(Some(&s), &n, Some(Duration::from_secs(7200)), later);
        assert_eq!(r[0].verdict, Verdict::Available);
        let failing = next(
            Some(&s),
            PollOutcome::Failed(Failure {
                reason: "AuthFailed".into(),
                message: "bad key".into(),
                permanent: true,
            }),
            None,
            now(),
        )
        .status;
        let r = evaluate(Some(&failing), &n, None, now());
        assert_eq!(r[0].verdict, Verdict::Unknown);
        assert!(r[0].reason.contains("AuthFailed"));
        assert_eq!(evaluate(None, &n, None, now())[0].verdict, Verdict::Unknown);
    }

    fn observed(s: &CloudQuotaStatus, lease_renewed: Option<Timestamp>) -> Observed<'_> {
        Observed {
            status: Some(s),
            generation: s.observed_generation,
            interval: Duration::from_secs(120),
            lease_renewed,
        }
    }

    fn after(secs: i64) -> Timestamp {
        now()
            .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(secs))
            .unwrap()
    }

    #[test]
    fn a_fresh_operator_lease_vouches_for_unchanged_data() {
        // interval 2m; status last written 9 minutes ago (no change since, heartbeat 10m).
        let s = status(vec![Quota::new("volumes", 1, Limit::Limited(100))]);
        let n = [need("volumes=1")];
        let five_min = Some(Duration::from_secs(300));
        let r = evaluate_observed(&observed(&s, Some(after(530))), &n, five_min, after(540));
        assert_eq!(r[0].verdict, Verdict::Available, "{}", r[0].reason);
        // Without the Lease, lastSyncTime is all there is: 9 minutes is too old.
        let r = evaluate_observed(&observed(&s, None), &n, five_min, after(540));
        assert_eq!(r[0].verdict, Verdict::Unknown);
        assert!(
            r[0].reason.contains("no fresh operator Lease"),
            "{}",
            r[0].reason
        );
        // The operator stopped 3 minutes ago: vouched data is 3m + 2m + slack old.
        let r = evaluate_observed(&observed(&s, Some(after(360))), &n, five_min, after(540));
        assert_eq!(r[0].verdict, Verdict::Unknown, "{}", r[0].reason);
    }

    #[test]
    fn an_edited_object_is_unknown_until_polled_again() {
        let s = status(vec![Quota::new("volumes", 1, Limit::Limited(100))]);
        let mut o = observed(&s, Some(now()));
        o.generation = Some(2);
        let r = evaluate_observed(&o, &[need("volumes=1")], None, now());
        assert_eq!(r[0].verdict, Verdict::Unknown);
        assert!(
            r[0].reason.contains("edited since its last poll"),
            "{}",
            r[0].reason
        );
    }

    #[test]
    fn the_default_max_age_is_three_intervals() {
        let s = status(vec![Quota::new("volumes", 1, Limit::Limited(100))]);
        let n = [need("volumes=1")];
        assert_eq!(
            default_max_age(Duration::from_secs(120)),
            Duration::from_secs(360)
        );
        let r = evaluate_observed(&observed(&s, None), &n, None, after(350));
        assert_eq!(r[0].verdict, Verdict::Available, "{}", r[0].reason);
        let r = evaluate_observed(&observed(&s, None), &n, None, after(370));
        assert_eq!(r[0].verdict, Verdict::Unknown, "{}", r[0].reason);
    }
}
