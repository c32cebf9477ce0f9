//! `cloudquota check`: `"RESOURCE[@ZONE]=N".parse::<Need>()` never panics, accepts only what
//! it documents and round-trips; `check::evaluate` gives NotAvailable exactly when
//! `used + need > limit` for a limited resource, whatever the status holds.
#![no_main]

use arbitrary::Arbitrary;
use cloudquota::domain::check::{self, Need, Verdict};
use cloudquota::domain::model::{Limit, Quota, Sample};
use cloudquota::domain::status::{PollOutcome, next};
use cloudquota::domain::thresholds::Policy;
use cloudquota::crd::{CloudQuotaStatus, Thresholds};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    need: &'a str,
    resources: Vec<(u8, Option<u8>, i64, i64)>,
    /// Raw status numbers as a hand-edited (or hostile) status could hold them.
    tamper: Option<(i64, Option<i64>, bool)>,
    max_age_secs: Option<u32>,
    age_secs: i32,
}

const NAMES: [&str; 4] = ["image", "volumes_SSD", "gigabytes", "x"];
const ZONES: [&str; 3] = ["z1", "z2", "sa-jeddah-1a"];

fn check_parse(s: &str) -> Option<Need> {
    let need = s.parse::<Need>().ok()?;
    assert!(need.amount >= 0);
    assert!(!need.resource.is_empty());
    assert!(!need.resource.contains('@'), "{need:?}");
    if let Some(z) = &need.zone {
        assert!(!z.is_empty());
    }
    let text = match &need.zone {
        Some(z) => format!("{}@{z}={}", need.resource, need.amount),
        None => format!("{}={}", need.resource, need.amount),
    };
    assert_eq!(
        text.parse::<Need>().as_ref(),
        Ok(&need),
        "{s:?} -> {text:?}"
    );
    Some(need)
}

fuzz_target!(|input: Input| {
    let parsed = check_parse(input.need);
    let now = jiff::Timestamp::from_second(1_700_000_000).unwrap();
    let quotas: Vec<Quota> = input
        .resources
        .iter()
        .take(16)
        .map(|(n, z, used, limit)| {
            let mut q = Quota::new(
                NAMES[*n as usize % NAMES.len()],
                used & i64::MAX,
                Limit::from_wire(*limit).unwrap_or(Limit::Limited(limit & i64::MAX)),
            );
            q.zone = z.map(|z| ZONES[z as usize % ZONES.len()].to_string());
            q
        })
        .collect();
    let sample = Sample {
        endpoint: "https://fuzz.invalid/".into(),
        quotas,
    };
    let policy = Policy::new(&Thresholds::default()).unwrap();
    let synced_at = now
        .checked_sub(jiff::SignedDuration::from_secs(input.age_secs as i64))
        .unwrap();
    let mut status: CloudQuotaStatus = next(
        None,
        PollOutcome::Synced {
            sample: &sample,
            policy: &policy,
        },
        Some(1),
        synced_at,
    )
    .status;
    if let (Some((used, limit, unlimited)), Some(r)) = (input.tamper, status.resources.first_mut())
    {
        r.used = used;
        r.limit = limit;
        r.unlimited = unlimited;
    }
    let mut needs: Vec<Need> = parsed.into_iter().collect();
    for n in NAMES {
        needs.push(Need {
            resource: n.into(),
            zone: None,
            amount: (input.age_secs as i64).abs(),
        });
        for z in ZONES {
            needs.push(Need {
                resource: n.into(),
                zone: Some(z.into()),
                amount: 1,
            });
        }
    }
    let max_age = input
        .max_age_secs
        .map(|s| std::time::Duration::from_secs(s as u64));
    let results = check::evaluate(Some(&status), &needs, max_age, now);
    assert_eq!(results.len(), needs.len());
    let stale = max_age.is_some_and(|m| input.age_secs > 0 && input.age_secs as u64 > m.as_secs());
    for r in &results {
        let _ = serde_json::to_string(r).unwrap();
        if stale {
            assert_eq!(r.verdict, Verdict::Unknown, "{r:?}");
            continue;
        }
        let matches: Vec<_> = status
            .resources
            .iter()
            .filter(|s| {
                s.name == r.need.resource && (r.need.zone.is_none() || s.zone == r.need.zone)
            })
            .collect();
        match matches.as_slice() {
            [s] => match s.limit.filter(|_| !s.unlimited) {
                Some(limit) => {
                    let over = s.used as i128 + r.need.amount as i128 > limit as i128;
                    assert_eq!(r.verdict == Verdict::NotAvailable, over, "{r:?} vs {s:?}");
                    assert_ne!(r.verdict, Verdict::Unknown);
                    let left = limit as i128 - s.used as i128 - r.need.amount as i128;
                    let clamped = left.clamp(i64::MIN as i128, i64::MAX as i128) as i64;
                    assert_eq!(r.left_after, Some(clamped));
                }
                None => assert_eq!(r.verdict, Verdict::Available, "{r:?}"),
            },
            _ => assert_eq!(r.verdict, Verdict::Unknown, "{r:?}"),
        }
    }
    let code = check::exit_code(&results);
    assert!(code <= 2);
});
