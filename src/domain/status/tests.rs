use super::*;
use crate::crd::{ThresholdOverride, Thresholds};

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + secs).unwrap()
}

fn policy() -> Policy {
    Policy::new(&Thresholds::default()).unwrap()
}

fn sample(quotas: &[(&str, i64, i64)]) -> Sample {
    Sample {
        endpoint: "https://evs.example/v2/p/os-quota-sets/p?usage=True".into(),
        quotas: quotas
            .iter()
            .map(|(n, u, l)| Quota::new(*n, *u, Limit::from_wire(*l).unwrap()))
            .collect(),
    }
}

fn synced(prev: Option<&CloudQuotaStatus>, quotas: &[(&str, i64, i64)], now: i64) -> Next {
    let s = sample(quotas);
    let p = policy();
    next(
        prev,
        PollOutcome::Synced {
            sample: &s,
            policy: &p,
        },
        Some(1),
        t(now),
    )
}

fn failed(prev: Option<&CloudQuotaStatus>, reason: &str, now: i64) -> Next {
    next(
        prev,
        PollOutcome::Failed(Failure {
            reason: reason.into(),
            message: format!("{reason} happened"),
            permanent: reason == "AuthFailed",
        }),
        Some(1),
        t(now),
    )
}

fn reasons_of(n: &Next) -> Vec<&'static str> {
    n.events.iter().map(|e| e.reason).collect()
}

fn cond<'a>(s: &'a CloudQuotaStatus, type_: &str) -> &'a Condition {
    find(&s.conditions, type_).unwrap_or_else(|| panic!("no {type_} condition"))
}

#[test]
fn first_poll_builds_full_status() {
    let n = synced(
        None,
        &[
            ("volumes_SSD", 28, 30),
            ("volumes", 108, -1),
            ("snapshots", 6, 10),
        ],
        0,
    );
    let s = &n.status;
    assert_eq!(s.observed_generation, Some(1));
    assert_eq!(s.resources.len(), 3);
    let names: Vec<_> = s.resources.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["snapshots", "volumes", "volumes_SSD"], "sorted");
    let ssd = &s.resources[2];
    assert_eq!(
        (ssd.used, ssd.limit, ssd.available, ssd.level),
        (28, Some(30), Some(2), Level::Warning)
    );
    assert_eq!(ssd.usage_percent, Some(93.33));
    let vol = &s.resources[1];
    assert!(vol.unlimited);
    assert_eq!(
        (vol.limit, vol.usage_percent, vol.available, vol.level),
        (None, None, None, Level::Unlimited)
    );
    assert_eq!(s.level, Some(Level::Warning));
    assert_eq!(s.worst.as_deref(), Some("volumes_SSD 28/30 (93.33%)"));
    assert_eq!(s.last_sync_time, Some(Time(t(0))));
    assert_eq!(cond(s, READY).status, "True");
    assert_eq!(cond(s, THRESHOLD_EXCEEDED).status, "True");
    assert_eq!(cond(s, THRESHOLD_EXCEEDED).reason, "Warning");
    // A resource already over a threshold on the first poll is announced once.
    assert_eq!(reasons_of(&n), [reasons::THRESHOLD_EXCEEDED]);
    assert!(
        n.events[0]
            .note
            .contains("volumes_SSD is Warning: 28/30 (93.33%)"),
        "{}",
        n.events[0].note
    );
    assert_eq!(n.events[0].action, "Evaluate/volumes_SSD/Warning");
}

#[test]
fn crossings_up_and_down_emit_once_each() {
    let steps: &[(i64, &[&str], Level)] = &[
        (50, &[], Level::Ok),
        (80, &[reasons::THRESHOLD_EXCEEDED], Level::Warning),
        (85, &[], Level::Warning),
        (95, &[reasons::THRESHOLD_EXCEEDED], Level::Critical),
        (96, &[], Level::Critical),
        (100, &[reasons::THRESHOLD_EXCEEDED], Level::Exhausted),
        (99, &[], Level::Exhausted), // hysteresis holds
        (90, &[reasons::THRESHOLD_RECOVERED], Level::Warning),
        (79, &[], Level::Warning), // within 2 points
        (77, &[reasons::THRESHOLD_RECOVERED], Level::Ok),
        (77, &[], Level::Ok),
    ];
    let mut prev: Option<CloudQuotaStatus> = None;
    for (i, (used, want, level)) in steps.iter().enumerate() {
        let n = synced(prev.as_ref(), &[("image", *used, 100)], i as i64);
        assert_eq!(reasons_of(&n), *want, "step {i}: used {used}");
        assert_eq!(n.status.resources[0].level, *level, "step {i}");
        prev = Some(n.status);
    }
}

#[test]
fn flapping_inside_the_band_is_silent() {
    let mut prev = synced(None, &[("image", 80, 100)], 0).status;
    for (i, used) in [79, 80, 78, 81, 79, 80].iter().enumerate() {
        let n = synced(Some(&prev), &[("image", *used, 100)], i as i64 + 1);
        assert!(n.events.is_empty(), "used {used}: {:?}", n.events);
        prev = n.status;
    }
}

#[test]
fn limit_changes_are_reported() {
    let a = synced(None, &[("image", 19, 20)], 0).status;
    let b = synced(Some(&a), &[("image", 19, 50)], 1);
    assert_eq!(
        reasons_of(&b),
        [reasons::THRESHOLD_RECOVERED, reasons::LIMIT_CHANGED]
    );
    assert!(b.events[1].note.contains("from 20 to 50"));
    let c = synced(Some(&b.status), &[("image", 19, -1)], 2);
    assert_eq!(reasons_of(&c), [reasons::LIMIT_CHANGED]);
    assert!(c.events[0].note.contains("from 50 to unlimited"));
}

#[test]
fn failure_keeps_last_good_data_and_reports_once_per_reason() {
    let good = synced(None, &[("image", 5, 20)], 0).status;
    let f1 = failed(Some(&good), "Throttled", 10);
    assert_eq!(reasons_of(&f1), [reasons::QUOTA_FETCH_FAILED]);
    assert_eq!(f1.status.resources, good.resources, "last good data kept");
    assert_eq!(f1.status.last_sync_time, good.last_sync_time);
    assert_eq!(f1.status.last_attempt_time, Some(Time(t(10))));
    let ready = cond(&f1.status, READY);
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "Throttled")
    );
    assert_eq!(ready.last_transition_time, Time(t(10)));
    assert!(
        find(&f1.status.conditions, THRESHOLD_EXCEEDED).is_some(),
        "threshold condition kept"
    );

    let f2 = failed(Some(&f1.status), "Throttled", 20);
    assert!(f2.events.is_empty(), "same reason again is quiet");
    assert_eq!(cond(&f2.status, READY).last_transition_time, Time(t(10)));

    let f3 = failed(Some(&f2.status), "AuthFailed", 30);
    assert_eq!(
        reasons_of(&f3),
        [reasons::QUOTA_FETCH_FAILED],
        "a new reason is news"
    );
    assert_eq!(
        cond(&f3.status, READY).last_transition_time,
        Time(t(10)),
        "still False"
    );

    let ok = synced(Some(&f3.status), &[("image", 5, 20)], 40);
    assert_eq!(reasons_of(&ok), [reasons::QUOTA_FETCH_RECOVERED]);
    assert_eq!(cond(&ok.status, READY).status, "True");
    assert_eq!(cond(&ok.status, READY).last_transition_time, Time(t(40)));
}

#[test]
fn first_poll_failure_reports() {
    let f = failed(None, "CredentialsMissing", 0);
    assert_eq!(reasons_of(&f), [reasons::QUOTA_FETCH_FAILED]);
    assert!(f.status.resources.is_empty());
    assert_eq!(f.status.last_sync_time, None);
}

#[test]
fn suspend_says_so_and_recovery_is_not_a_fetch_recovery() {
    let good = synced(None, &[("image", 5, 20)], 0).status;
    let s = next(Some(&good), PollOutcome::Suspended, Some(2), t(5));
    assert!(s.events.is_empty());
    assert_eq!(cond(&s.status, READY).reason, REASON_SUSPENDED);
    assert_eq!(
        cond(&s.status, READY).status,
        "True",
        "paused as asked: kstatus Current"
    );
    assert_eq!(s.status.observed_generation, Some(2));
    assert_eq!(s.status.resources, good.resources);
    let resumed = synced(Some(&s.status), &[("image", 5, 20)], 10);
    assert!(resumed.events.is_empty(), "{:?}", resumed.events);
}

#[test]
fn ignored_and_overridden_resources() {
    let p = Policy::new(&Thresholds {
        overrides: vec![ThresholdOverride {
            resources: vec!["snapshots*".into()],
            warning: 50,
            critical: 60,
        }],
        ignore: vec!["backup_*".into()],
        ..Thresholds::default()
    })
    .unwrap();
    let s = sample(&[
        ("snapshots", 6, 10),
        ("backup_gigabytes", 5100, 5120),
        ("gigabytes", 10, 100),
    ]);
    let n = next(
        None,
        PollOutcome::Synced {
            sample: &s,
            policy: &p,
        },
        None,
        t(0),
    );
    let names: Vec<_> = n
        .status
        .resources
        .iter()
        .map(|r| (r.name.as_str(), r.level))
        .collect();
    assert_eq!(
        names,
        [("gigabytes", Level::Ok), ("snapshots", Level::Critical)]
    );
    assert_eq!(reasons_of(&n), [reasons::THRESHOLD_EXCEEDED]);
}

#[test]
fn zones_are_separate_resources() {
    let mut s = sample(&[]);
    for (zone, used) in [("b", 4), ("a", 1)] {
        let mut q = Quota::new("image", used, Limit::Limited(5));
        q.zone = Some(zone.into());
        s.quotas.push(q);
    }
    let p = policy();
    let n = next(
        None,
        PollOutcome::Synced {
            sample: &s,
            policy: &p,
        },
        None,
        t(0),
    );
    assert_eq!(n.status.resources[0].zone.as_deref(), Some("a"));
    assert_eq!(n.status.worst.as_deref(), Some("image@b 4/5 (80%)"));
    assert!(n.events[0].note.starts_with("image@b is Warning"));
}

#[test]
fn all_unlimited_and_empty() {
    let n = synced(None, &[("volumes", 3, -1)], 0);
    assert_eq!(n.status.level, Some(Level::Unlimited));
    assert_eq!(n.status.worst, None);
    let e = synced(None, &[], 0);
    assert_eq!(e.status.level, Some(Level::Ok));
    assert_eq!(cond(&e.status, THRESHOLD_EXCEEDED).status, "False");
}

#[test]
fn unchanged_status_is_not_rewritten_until_heartbeat() {
    let hb = Duration::from_secs(600);
    let a = synced(None, &[("image", 5, 20)], 0).status;
    assert!(needs_write(None, &a, hb, t(0)));
    let b = synced(Some(&a), &[("image", 5, 20)], 300).status;
    assert_ne!(a.last_sync_time, b.last_sync_time);
    assert!(
        !needs_write(Some(&a), &b, hb, t(300)),
        "only timestamps changed"
    );
    let c = synced(Some(&a), &[("image", 5, 20)], 600).status;
    assert!(needs_write(Some(&a), &c, hb, t(600)), "heartbeat due");
    let d = synced(Some(&a), &[("image", 6, 20)], 301).status;
    assert!(needs_write(Some(&a), &d, hb, t(301)), "usage changed");
    let e = next(Some(&a), PollOutcome::Suspended, Some(1), t(10_000)).status;
    assert!(
        needs_write(Some(&a), &e, hb, t(10_000)),
        "condition changed"
    );
    let f = next(Some(&e), PollOutcome::Suspended, Some(1), t(20_000)).status;
    assert!(
        !needs_write(Some(&e), &f, hb, t(20_000)),
        "suspended objects need no heartbeat"
    );
}

#[test]
fn restart_reemits_nothing() {
    // Events are derived from the stored status, so evaluating the same data against the status
    // it produced (what an operator sees after a restart) yields nothing.
    let a = synced(None, &[("image", 19, 20), ("image_shared", 20, 20)], 0);
    assert_eq!(a.events.len(), 2);
    let b = synced(
        Some(&a.status),
        &[("image", 19, 20), ("image_shared", 20, 20)],
        1,
    );
    assert!(b.events.is_empty());
}

fn published(ev: &EventSpec, at: i64) -> PublishedEvent {
    PublishedEvent {
        reason: ev.reason.to_string(),
        action: ev.action.clone(),
        at: t(at),
    }
}

#[test]
fn a_predecessors_unrecorded_event_is_not_published_again() {
    // Stored: image at 50% (Ok), written at t=0.
    let stored = synced(None, &[("image", 10, 20)], 0).status;
    // t=300: image at 95% is a crossing. A predecessor published its Event at t=300 and died
    // before writing status; the successor computes the same crossing from the same status.
    let crossing = synced(Some(&stored), &[("image", 19, 20)], 330);
    assert_eq!(reasons_of(&crossing), ["ThresholdExceeded"]);
    let theirs = published(&crossing.events[0], 300);
    let left = unpublished(
        crossing.events.clone(),
        std::slice::from_ref(&theirs),
        Some(&stored),
    );
    assert!(left.is_empty(), "{left:?}");

    // The same kind of Event from before the stored write is an earlier, recorded crossing.
    let old = published(&crossing.events[0], -100);
    assert_eq!(
        unpublished(crossing.events.clone(), &[old], Some(&stored)),
        crossing.events
    );
    // Within the second of the stored write (status times are whole seconds) it is recorded too.
    let same_second = published(&crossing.events[0], 0);
    assert_eq!(
        unpublished(crossing.events.clone(), &[same_second], Some(&stored)),
        crossing.events
    );
    // Other reasons or actions (another resource or level) do not suppress it.
    let mut other = theirs.clone();
    other.action = other.action.replace("image", "image_shared");
    let mut recovered = theirs.clone();
    recovered.reason = "ThresholdRecovered".into();
    assert_eq!(
        unpublished(crossing.events.clone(), &[other, recovered], Some(&stored)),
        crossing.events
    );
    // No stored status yet: any matching Event is a predecessor's.
    let first = synced(None, &[("image", 19, 20)], 5);
    assert!(
        unpublished(
            first.events.clone(),
            &[published(&first.events[0], 1)],
            None
        )
        .is_empty()
    );
}

#[test]
fn a_second_genuine_crossing_is_published() {
    let a = synced(None, &[("image", 19, 20)], 0);
    let first = published(&a.events[0], 0);
    // Recovered and written at t=300, then crossing again at t=600.
    let b = synced(Some(&a.status), &[("image", 5, 20)], 300);
    assert_eq!(reasons_of(&b), ["ThresholdRecovered"]);
    let c = synced(Some(&b.status), &[("image", 19, 20)], 600);
    assert_eq!(c.events[0].action, a.events[0].action);
    let recovered = published(&b.events[0], 300);
    assert_eq!(
        unpublished(c.events.clone(), &[first, recovered], Some(&b.status)),
        c.events
    );
}

fn types(s: &CloudQuotaStatus) -> Vec<&str> {
    let mut t: Vec<&str> = s.conditions.iter().map(|c| c.type_.as_str()).collect();
    t.sort();
    t
}

#[test]
fn permanent_failures_stall_and_transient_ones_do_not() {
    let ok = synced(None, &[("image", 1, 20)], 0);
    let auth = failed(Some(&ok.status), "AuthFailed", 30);
    let stalled = find(&auth.status.conditions, STALLED).expect("Stalled on AuthFailed");
    assert_eq!(
        (stalled.status.as_str(), stalled.reason.as_str()),
        ("True", "AuthFailed")
    );
    let throttled = failed(Some(&ok.status), "Throttled", 30);
    assert_eq!(types(&throttled.status), ["Ready", "ThresholdExceeded"]);
    // Fixed credentials: Stalled goes away (left out of the apply, so SSA removes it).
    let fixed = synced(Some(&auth.status), &[("image", 1, 20)], 60);
    assert_eq!(types(&fixed.status), ["Ready", "ThresholdExceeded"]);
}

#[test]
fn every_condition_carries_the_handled_generation() {
    let ok = synced(None, &[("image", 1, 20)], 0);
    let edited = next(
        Some(&ok.status),
        PollOutcome::Failed(Failure {
            reason: "Throttled".into(),
            message: "slow down".into(),
            permanent: false,
        }),
        Some(2),
        t(30),
    );
    assert_eq!(edited.status.observed_generation, Some(2));
    assert!(
        edited
            .status
            .conditions
            .iter()
            .all(|c| c.observed_generation == Some(2)),
        "{:?}",
        edited.status.conditions
    );
}

#[test]
fn conditions_of_other_tools_are_neither_written_nor_compared() {
    let ok = synced(None, &[("image", 1, 20)], 0);
    let mut stored = ok.status.clone();
    stored.conditions.insert(
        0,
        Condition {
            type_: "argocd.argoproj.io/Healthy".into(),
            status: "True".into(),
            reason: "Custom".into(),
            message: String::new(),
            observed_generation: None,
            last_transition_time: Time(t(0)),
        },
    );
    let again = synced(Some(&stored), &[("image", 1, 20)], 30);
    assert_eq!(types(&again.status), ["Ready", "ThresholdExceeded"]);
    assert!(
        !needs_write(
            Some(&stored),
            &again.status,
            Duration::from_secs(600),
            t(30)
        ),
        "another tool's condition is no change of ours"
    );
}

#[test]
fn a_new_object_is_reconciling_until_polled() {
    let p = polling(None, Some(1), t(0));
    let r = find(&p.conditions, RECONCILING).unwrap();
    assert_eq!(
        (r.status.as_str(), r.observed_generation),
        ("True", Some(1))
    );
    assert_eq!(find(&p.conditions, READY).unwrap().status, "Unknown");
    assert_eq!(p.observed_generation, None, "not polled yet");
    let done = synced(Some(&p), &[("image", 1, 20)], 1);
    assert!(find(&done.status.conditions, RECONCILING).is_none());
    assert_eq!(done.status.observed_generation, Some(1));
    assert!(
        !reasons_of(&done).contains(&"QuotaFetchRecovered"),
        "Unknown is not a failure"
    );
}

#[test]
fn a_new_target_compares_with_nothing() {
    // The old account was exhausted and failing; the new one is at 50%.
    let old = synced(None, &[("image", 20, 20)], 0);
    let old = failed(Some(&old.status), "Throttled", 30);
    let fresh = for_new_target(&old.status);
    let moved = synced(Some(&fresh), &[("image", 10, 20)], 60);
    assert!(
        moved.events.is_empty(),
        "no Recovered/LimitChanged/FetchRecovered across accounts: {:?}",
        moved.events
    );
    // Hysteresis does not carry the old account's level: 79% is Ok, not a held Warning.
    let warn = synced(None, &[("image", 17, 20)], 0);
    let moved = synced(
        Some(&for_new_target(&warn.status)),
        &[("image", 79, 100)],
        30,
    );
    assert_eq!(moved.status.resources[0].level, Level::Ok);
}

#[test]
fn a_transient_blip_of_a_healthy_object_waits_for_a_second_answer() {
    let ok = synced(None, &[("image", 1, 20)], 0);
    let blip = Failure {
        reason: "UpstreamError".into(),
        message: "503".into(),
        permanent: false,
    };
    assert!(!report_failure(Some(&ok.status), &blip, 1));
    assert!(report_failure(Some(&ok.status), &blip, 2));
    assert!(
        report_failure(None, &blip, 1),
        "never polled: say so at once"
    );
    let auth = Failure {
        permanent: true,
        ..blip.clone()
    };
    assert!(report_failure(Some(&ok.status), &auth, 1));
    let failing = failed(Some(&ok.status), "Throttled", 30);
    assert!(report_failure(Some(&failing.status), &blip, 1));
}
