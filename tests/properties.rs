//! Property tests of the pure core: threshold levels and hysteresis, the status state machine,
//! `needs_write`, the provider parsers on arbitrary JSON, durations and `check` verdicts.
//!
//! Every property runs a bounded number of cases so the whole file stays fast in debug builds
//! (a few seconds; `PROPTEST_CASES=20000 cargo test --test properties` for a deeper run). Failing cases are shrunk by proptest and printed; add them to the unit tests
//! of the module concerned once fixed.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use cloudquota::crd::{CloudQuotaStatus, Level, ThresholdOverride, Thresholds};
use cloudquota::domain::check::{self, Need, Verdict};
use cloudquota::domain::duration;
use cloudquota::domain::model::{Limit, Quota, Sample};
use cloudquota::domain::status::{
    self, EventSpec, Failure, PollOutcome, READY, THRESHOLD_EXCEEDED, needs_write, next, reasons,
};
use cloudquota::domain::thresholds::{self, HYSTERESIS_POINTS, Pair, Policy};
use cloudquota::providers::{huawei_dws, huawei_evs, huawei_ims, parse, zenlayer_vm};

/// `cases` per property; `PROPTEST_CASES` overrides it for a longer local run.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(cases),
        // Shrinking is bounded too, so a failure reports quickly.
        max_shrink_iters: 2048,
        ..ProptestConfig::default()
    }
}

fn t0() -> Timestamp {
    Timestamp::from_second(1_700_000_000).unwrap()
}

fn at(secs: i64) -> Timestamp {
    t0().checked_add(SignedDuration::from_secs(secs)).unwrap()
}

/// A valid warning/critical pair, as the CRD and `Policy::new` allow them.
fn pair() -> impl Strategy<Value = Pair> {
    (1i64..=100)
        .prop_flat_map(|w| (Just(w), w..=100))
        .prop_map(|(warning, critical)| Pair { warning, critical })
}

/// A limit as the parsers produce it: unlimited, or any non-negative number (small ones are
/// where the rounding edges are, huge ones where overflow would be).
fn limit() -> impl Strategy<Value = Limit> {
    prop_oneof![
        1 => Just(Limit::Unlimited),
        1 => Just(Limit::Limited(0)),
        6 => (1i64..=1_000).prop_map(Limit::Limited),
        2 => (0i64..=i64::MAX).prop_map(Limit::Limited),
    ]
}

/// Usage as the parsers produce it (never negative).
fn used() -> impl Strategy<Value = i64> {
    prop_oneof![4 => 0i64..=1_200, 1 => 0i64..=i64::MAX]
}

const NAMES: &[&str] = &["image", "volumes", "volumes_SSD", "gigabytes", "snapshots"];
const ZONES: &[&str] = &["z1", "z2"];

fn quota() -> impl Strategy<Value = Quota> {
    (
        prop::sample::select(NAMES),
        prop::option::of(prop::sample::select(ZONES)),
        used(),
        limit(),
    )
        .prop_map(|(name, zone, used, limit)| {
            let mut q = Quota::new(name, used, limit);
            q.zone = zone.map(str::to_string);
            q
        })
}

fn sample() -> impl Strategy<Value = Sample> {
    prop::collection::vec(quota(), 0..8).prop_map(|quotas| Sample {
        endpoint: "https://evs.example/v2/p/os-quota-sets/p?usage=True".into(),
        quotas,
    })
}

fn policy() -> impl Strategy<Value = Policy> {
    (pair(), prop::option::of(pair()), any::<bool>()).prop_map(|(default, over, ignore)| {
        Policy::new(&Thresholds {
            warning: default.warning,
            critical: default.critical,
            overrides: over
                .map(|p| ThresholdOverride {
                    resources: vec!["volumes*".into()],
                    warning: p.warning,
                    critical: p.critical,
                })
                .into_iter()
                .collect(),
            ignore: if ignore {
                vec!["snapshots".into()]
            } else {
                vec![]
            },
        })
        .expect("valid pairs make a valid policy")
    })
}

fn synced(prev: Option<&CloudQuotaStatus>, s: &Sample, p: &Policy, now: Timestamp) -> status::Next {
    next(
        prev,
        PollOutcome::Synced {
            sample: s,
            policy: p,
        },
        Some(1),
        now,
    )
}

fn condition<'a>(
    s: &'a CloudQuotaStatus,
    type_: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    s.conditions.iter().find(|c| c.type_ == type_)
}

fn is_threshold_event(e: &EventSpec) -> bool {
    e.reason == reasons::THRESHOLD_EXCEEDED || e.reason == reasons::THRESHOLD_RECOVERED
}

// --- levels -------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(512))]

    /// Without history, more usage never gives a lower level (same limit and thresholds).
    #[test]
    fn levels_are_monotone_in_usage(p in pair(), limit in limit(), a in used(), b in used()) {
        let (lo, hi) = (a.min(b), a.max(b));
        let level = |u| thresholds::level(&Quota::new("r", u, limit), p, None);
        prop_assert!(level(lo) <= level(hi), "{lo} -> {:?}, {hi} -> {:?}", level(lo), level(hi));
        // And the raw level is exactly the documented comparison.
        if let Limit::Limited(l) = limit {
            let pct_at_least = |pct: i64| (hi as i128) * 100 >= (pct as i128) * (l as i128);
            let want = if hi >= l {
                Level::Exhausted
            } else if pct_at_least(p.critical) {
                Level::Critical
            } else if pct_at_least(p.warning) {
                Level::Warning
            } else {
                Level::Ok
            };
            prop_assert_eq!(level(hi), want);
        } else {
            prop_assert_eq!(level(hi), Level::Unlimited);
        }
    }

    /// History only ever holds a level between the raw level and the previous level, and only
    /// within the band below the held level's threshold.
    #[test]
    fn hysteresis_holds_only_inside_the_band(
        p in pair(),
        l in 1i64..=100_000,
        u in 0i64..=120_000,
        prev in prop::sample::select(vec![
            Level::Unlimited, Level::Ok, Level::Warning, Level::Critical, Level::Exhausted,
        ]),
    ) {
        let q = Quota::new("r", u, Limit::Limited(l));
        let raw = thresholds::level(&q, p, None);
        let held = thresholds::level(&q, p, Some(prev));
        prop_assert!(held >= raw);
        if held != raw {
            prop_assert!(held <= prev && held.is_alerting());
            let threshold = match held {
                Level::Exhausted => 100,
                Level::Critical => p.critical,
                _ => p.warning,
            };
            prop_assert!((u as i128) * 100 >= ((threshold - HYSTERESIS_POINTS) as i128) * (l as i128));
        }
    }
}

/// Thresholds far enough apart that a band around one never reaches another, a limit, which
/// of the two thresholds usage oscillates around, and the in-band usages.
fn oscillation() -> impl Strategy<Value = (Pair, i64, i64, Vec<i64>)> {
    (3i64..=85, 100i64..=50_000, any::<bool>())
        .prop_flat_map(|(w, l, around_critical)| {
            (Just(w), w + 5..=97, Just(l), Just(around_critical))
        })
        .prop_flat_map(|(w, c, l, around_critical)| {
            let t = if around_critical { c } else { w };
            // Usages u with (t - band)% <= u/l < (t + band)%: "less than the band" either side.
            let lo = ((t - HYSTERESIS_POINTS) * l + 99) / 100;
            let hi = ((t + HYSTERESIS_POINTS) * l - 1) / 100;
            (
                Just(Pair {
                    warning: w,
                    critical: c,
                }),
                Just(l),
                Just(t),
                prop::collection::vec(lo..=hi, 2..120),
            )
        })
}

proptest! {
    #![proptest_config(config(256))]

    /// Usage oscillating within the hysteresis band around a threshold changes the level at
    /// most once after the first poll, and never recovers (so Events don't flap).
    #[test]
    fn hysteresis_never_flaps((p, l, t, usages) in oscillation()) {
        let policy = Policy::new(&Thresholds {
            warning: p.warning,
            critical: p.critical,
            overrides: vec![],
            ignore: vec![],
        })
        .unwrap();
        let sample = |u: i64| Sample {
            endpoint: "https://x/".into(),
            quotas: vec![Quota::new("volumes", u, Limit::Limited(l))],
        };
        let first = synced(None, &sample(usages[0]), &policy, at(0));
        let mut status = first.status;
        let mut level = status.resources[0].level;
        let mut transitions = 0;
        let mut threshold_events = 0;
        for (i, u) in usages.iter().enumerate().skip(1) {
            let n = synced(Some(&status), &sample(*u), &policy, at(i as i64 * 60));
            let now = n.status.resources[0].level;
            if now != level {
                transitions += 1;
            }
            for e in &n.events {
                prop_assert_ne!(e.reason, reasons::THRESHOLD_RECOVERED, "recovered inside the band around {}%: {:?}", t, e);
                if is_threshold_event(e) {
                    threshold_events += 1;
                }
            }
            level = now;
            status = n.status;
        }
        prop_assert!(transitions <= 1, "{} transitions around {}% of {}: {:?}", transitions, t, l, usages);
        prop_assert!(threshold_events <= 1, "{} threshold events", threshold_events);
    }
}

// --- status state machine ------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Step {
    Synced(Sample),
    Failed(&'static str, String),
    Suspended,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => sample().prop_map(Step::Synced),
        2 => (
            prop::sample::select(vec!["AuthFailed", "Throttled", "EndpointUnreachable", "InvalidResponse"]),
            ".{0,40}",
        )
            .prop_map(|(r, m)| Step::Failed(r, m)),
        1 => Just(Step::Suspended),
    ]
}

proptest! {
    #![proptest_config(config(256))]

    /// `next` never panics on any sequence of outcomes; a failure or suspension keeps the last
    /// good resources (and everything derived from them) and only changes the Ready condition.
    #[test]
    fn next_keeps_last_good_resources_on_failure(
        policy in policy(),
        steps in prop::collection::vec(step(), 1..24),
        generation in prop::option::of(1i64..5),
    ) {
        let mut prev: Option<CloudQuotaStatus> = None;
        for (i, s) in steps.iter().enumerate() {
            let now = at(i as i64 * 30);
            let outcome = match s {
                Step::Synced(sample) => PollOutcome::Synced { sample, policy: &policy },
                Step::Failed(reason, message) => PollOutcome::Failed(Failure {
                    reason: (*reason).into(),
                    message: message.clone(),
                    permanent: false,
                }),
                Step::Suspended => PollOutcome::Suspended,
            };
            let n = next(prev.as_ref(), outcome, generation, now);
            let st = &n.status;
            prop_assert_eq!(st.observed_generation, generation);
            let ready: Vec<_> = st.conditions.iter().filter(|c| c.type_ == READY).collect();
            prop_assert_eq!(ready.len(), 1, "exactly one Ready condition");
            prop_assert!(st.conditions.iter().filter(|c| c.type_ == THRESHOLD_EXCEEDED).count() <= 1);
            match s {
                Step::Synced(sample) => {
                    prop_assert_eq!(ready[0].status.as_str(), "True");
                    prop_assert_eq!(st.last_sync_time.as_ref().map(|t| t.0), Some(now));
                    prop_assert_eq!(st.endpoint.as_deref(), Some(sample.endpoint.as_str()));
                    prop_assert!(st.resources.windows(2).all(|w| (&w[0].name, &w[0].zone) < (&w[1].name, &w[1].zone)), "sorted, no duplicates");
                    for r in &st.resources {
                        prop_assert!(r.name != "snapshots" || policy.for_resource("snapshots").is_some());
                        prop_assert!(r.available.is_none_or(|a| a >= 0));
                        prop_assert_eq!(r.unlimited, r.limit.is_none());
                    }
                    let worst = st.resources.iter().map(|r| r.level).max().unwrap_or(Level::Ok);
                    prop_assert_eq!(st.level, Some(worst));
                    prop_assert!(condition(st, THRESHOLD_EXCEEDED).is_some());
                }
                Step::Failed(..) | Step::Suspended if prev.is_some() => {
                    let p = prev.as_ref().unwrap();
                    prop_assert_eq!(&st.resources, &p.resources, "last good resources kept");
                    prop_assert_eq!(&st.level, &p.level);
                    prop_assert_eq!(&st.worst, &p.worst);
                    prop_assert_eq!(&st.endpoint, &p.endpoint);
                    prop_assert_eq!(&st.last_sync_time, &p.last_sync_time);
                    // Kept as it was, but for the generation it now speaks for.
                    let kept = |c: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>| c.map(|c| (c.status.clone(), c.reason.clone(), c.message.clone(), c.last_transition_time.clone()));
                    prop_assert_eq!(kept(condition(st, THRESHOLD_EXCEEDED)), kept(condition(p, THRESHOLD_EXCEEDED)));
                    if let Step::Failed(reason, _) = s {
                        prop_assert_eq!(ready[0].status.as_str(), "False");
                        prop_assert_eq!(ready[0].reason.as_str(), *reason);
                    } else {
                        // Suspended: paused as asked.
                        prop_assert_eq!(ready[0].status.as_str(), "True");
                        prop_assert_eq!(ready[0].reason.as_str(), "Suspended");
                    }
                    prop_assert!(n.events.iter().all(|e| !is_threshold_event(e)));
                }
                _ => {
                    prop_assert!(st.resources.is_empty());
                    let want = if matches!(s, Step::Suspended) { "True" } else { "False" };
                    prop_assert_eq!(ready[0].status.as_str(), want);
                }
            }
            // A repeated failure with the same reason publishes no second Event.
            if let Step::Failed(reason, message) = s {
                let again = next(
                    Some(st),
                    PollOutcome::Failed(Failure { reason: (*reason).into(), message: message.clone(), permanent: false }),
                    generation,
                    now,
                );
                prop_assert!(again.events.is_empty(), "{:?}", again.events);
            }
            prev = Some(n.status);
        }
    }

    /// The same sample evaluated again within the heartbeat needs no write and publishes no
    /// Events, whatever status came before it.
    #[test]
    fn same_sample_within_heartbeat_needs_no_write(
        policy in policy(),
        before in prop::option::of(sample()),
        s in sample(),
        heartbeat_secs in 1i64..=3600,
        frac in 0.0f64..1.0,
    ) {
        let prev0 = before.as_ref().map(|b| synced(None, b, &policy, at(0)).status);
        let t1 = at(60);
        let first = synced(prev0.as_ref(), &s, &policy, t1);
        let dt = ((heartbeat_secs as f64 * frac) as i64).min(heartbeat_secs - 1);
        let t2 = t1.checked_add(SignedDuration::from_secs(dt)).unwrap();
        let second = synced(Some(&first.status), &s, &policy, t2);
        let heartbeat = Duration::from_secs(heartbeat_secs as u64);
        prop_assert!(second.events.is_empty(), "{:?}", second.events);
        prop_assert!(!needs_write(Some(&first.status), &second.status, heartbeat, t2));
        // ... and once the heartbeat has passed, it does (so readers see the operator alive).
        let t3 = t1.checked_add(SignedDuration::from_secs(heartbeat_secs)).unwrap();
        let third = synced(Some(&first.status), &s, &policy, t3);
        prop_assert!(needs_write(Some(&first.status), &third.status, heartbeat, t3));
    }
}

// --- parsers --------------------------------------------------------------------------------

/// Keys the parsers look at, so arbitrary documents often have the right shape somewhere.
const KEYS: &[&str] = &[
    "quotas",
    "resources",
    "type",
    "used",
    "quota",
    "min",
    "max",
    "unit",
    "quota_set",
    "id",
    "in_use",
    "limit",
    "reserved",
    "gigabytes_SSD",
    "volumes",
    "response",
    "images",
    "imageRegionQuota",
    "zoneId",
    "regionId",
    "count",
    "maxCount",
    "error_code",
    "error_msg",
    "code",
    "message",
    "error",
    "x",
];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-3i64..=30).prop_map(|n| json!(n)),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        any::<u64>().prop_map(|n| json!(n)),
        prop::sample::select(vec![
            "",
            "null",
            "GB",
            "-1",
            "3",
            " 42 ",
            "1e400",
            "9.0e15",
            "2.0",
            "\u{1}",
            "\u{7} \u{85}",
            "image"
        ])
        .prop_map(|s| json!(s)),
        ".{0,12}".prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|kv| {
                Value::Object(
                    kv.into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

/// Documents shaped like the real answers, with arbitrary values in every field.
fn shaped() -> impl Strategy<Value = Value> {
    let item = prop::collection::vec((prop::sample::select(KEYS), scalar()), 0..8)
        .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()));
    prop::collection::vec(item, 0..5).prop_flat_map(|items| {
        let evs: Map<String, Value> = items
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("{}_{i}", NAMES[i % NAMES.len()]), v.clone()))
            .collect();
        prop::sample::select(vec![
            json!({"quotas": {"resources": items}}),
            json!({"quota_set": evs}),
            json!({"response": {"images": items}}),
            json!({"imageRegionQuota": items}),
        ])
    })
}

fn check_parsed(
    result: Result<Vec<Quota>, cloudquota::providers::ProviderError>,
) -> Result<(), TestCaseError> {
    match result {
        Ok(quotas) => {
            for q in &quotas {
                prop_assert!(q.used >= 0, "negative used: {:?}", q);
                prop_assert!(matches!(q.limit, Limit::Unlimited) || q.limit.value().unwrap() >= 0);
                prop_assert!(
                    [q.reserved, q.min, q.max].iter().flatten().all(|n| *n >= 0),
                    "{:?}",
                    q
                );
                prop_assert!(!q.name.is_empty(), "empty name: {:?}", q);
                prop_assert!(
                    q.zone.as_ref().is_none_or(|z| !z.is_empty()),
                    "empty zone: {:?}",
                    q
                );
                prop_assert!(
                    q.unit.as_ref().is_none_or(|u| !u.is_empty()),
                    "empty unit: {:?}",
                    q
                );
            }
        }
        Err(e) => prop_assert_eq!(e.reason(), "InvalidResponse"),
    }
    Ok(())
}

fn all_parsers(body: &[u8]) -> Result<(), TestCaseError> {
    check_parsed(huawei_ims::parse(body))?;
    check_parsed(huawei_dws::parse(body))?;
    check_parsed(huawei_evs::parse(body))?;
    check_parsed(zenlayer_vm::parse(body, &[]))?;
    check_parsed(zenlayer_vm::parse(body, &["z1".to_string()]))?;
    let (_, message) = parse::error_body(body);
    prop_assert!(message.chars().count() <= 301);
    Ok(())
}

proptest! {
    #![proptest_config(config(512))]

    /// No parser panics on any JSON value, and what they accept keeps the model's invariants.
    #[test]
    fn parsers_never_panic_on_arbitrary_json(v in json_value()) {
        all_parsers(&serde_json::to_vec(&v).unwrap())?;
    }

    #[test]
    fn parsers_never_panic_on_shaped_json(v in shaped()) {
        all_parsers(&serde_json::to_vec(&v).unwrap())?;
    }

    /// ... nor on bytes that are not JSON at all.
    #[test]
    fn parsers_never_panic_on_bytes(body in prop::collection::vec(any::<u8>(), 0..256)) {
        all_parsers(&body)?;
    }
}

// --- durations ------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(512))]

    /// Whole seconds format and parse back exactly.
    #[test]
    fn duration_roundtrip_whole_seconds(
        secs in prop_oneof![0u64..=100_000, 0u64..=duration::MAX.as_secs()],
    ) {
        let d = Duration::from_secs(secs);
        let text = duration::format(d);
        prop_assert_eq!(duration::parse(&text), Ok(d), "{}", text);
    }

    /// Beyond Go's maximum duration nothing parses (it could not be added to an Instant).
    #[test]
    fn duration_beyond_go_max_overflows(secs in duration::MAX.as_secs() + 1..=u64::MAX / 4) {
        let text = duration::format(Duration::from_secs(secs));
        prop_assert!(
            matches!(duration::parse(&text), Err(duration::DurationError::Overflow(_))),
            "{}",
            text
        );
    }

    /// Go-style `XhYmZs` strings parse to their sum.
    #[test]
    fn duration_parses_go_style(h in 0u64..1000, m in 0u64..1000, s in 0u64..1000, ms in 0u64..1000) {
        let text = format!("{h}h{m}m{s}s{ms}ms");
        let want = Duration::from_millis(((h * 60 + m) * 60 + s) * 1000 + ms);
        prop_assert_eq!(duration::parse(&text), Ok(want));
    }

    /// Nothing negative ever parses.
    #[test]
    fn duration_rejects_negatives(s in "-[0-9]{1,5}(s|m|h)") {
        prop_assert!(duration::parse(&s).is_err());
    }
}

// --- check ------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(256))]

    /// NotAvailable exactly when `used + need > limit` for a limited resource; unlimited
    /// resources are always Available; a current Ready status never gives Unknown for a
    /// resource it reports once.
    #[test]
    fn check_verdicts_are_consistent(
        resources in prop::collection::vec((used(), limit()), 1..5),
        amounts in prop::collection::vec(prop_oneof![0i64..2_000, 0i64..=i64::MAX], 1..5),
    ) {
        let sample = Sample {
            endpoint: "https://x/".into(),
            quotas: resources
                .iter()
                .enumerate()
                .map(|(i, (u, l))| Quota::new(format!("r{i}"), *u, *l))
                .collect(),
        };
        let policy = Policy::new(&Thresholds::default()).unwrap();
        let st = synced(None, &sample, &policy, t0()).status;
        let needs: Vec<Need> = amounts
            .iter()
            .enumerate()
            .map(|(i, a)| format!("r{}={a}", i % resources.len()).parse().unwrap())
            .collect();
        let results = check::evaluate(Some(&st), &needs, Some(Duration::from_secs(60)), t0());
        for (r, need) in results.iter().zip(&needs) {
            let i: usize = need.resource[1..].parse().unwrap();
            let (used, limit) = resources[i];
            match limit {
                Limit::Unlimited => prop_assert_eq!(r.verdict, Verdict::Available),
                Limit::Limited(l) => {
                    let over = used as i128 + need.amount as i128 > l as i128;
                    prop_assert_eq!(r.verdict == Verdict::NotAvailable, over, "{:?}", r);
                    prop_assert_ne!(r.verdict, Verdict::Unknown);
                    if !over {
                        let left = l as i128 - used as i128 - need.amount as i128;
                        prop_assert_eq!(r.verdict == Verdict::AvailableButLow, left * 100 <= 20 * l as i128);
                    }
                }
            }
        }
        let code = check::exit_code(&results);
        prop_assert_eq!(code == 1, results.iter().any(|r| r.verdict == Verdict::NotAvailable));
    }

    /// `RESOURCE[@ZONE]=N` round-trips through its text form.
    #[test]
    fn needs_roundtrip(resource in "[a-zA-Z0-9_=.-]{1,12}", zone in prop::option::of("[a-z0-9@=-]{1,12}"), amount in 0i64..=i64::MAX) {
        let text = match &zone {
            Some(z) => format!("{resource}@{z}={amount}"),
            None => format!("{resource}={amount}"),
        };
        let need: Need = text.parse().unwrap();
        prop_assert_eq!(need, Need { resource, zone, amount });
    }
}
