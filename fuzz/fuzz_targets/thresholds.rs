//! Threshold policy: `Policy::new` with arbitrary globs and values never panics and only
//! accepts valid pairs; `thresholds::level` is monotone in usage without history and its
//! hysteresis only ever holds a level between the raw level and the previous one.
#![no_main]

use arbitrary::Arbitrary;
use cloudquota::domain::model::{Limit, Quota};
use cloudquota::domain::thresholds::{self, HYSTERESIS_POINTS, Pair, Policy};
use cloudquota::crd::{Level, ThresholdOverride, Thresholds};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    warning: i64,
    critical: i64,
    overrides: Vec<(Vec<String>, i64, i64)>,
    ignore: Vec<String>,
    names: Vec<String>,
    used: i64,
    more: u32,
    limit: i64,
    previous: Option<u8>,
}

const LEVELS: [Level; 5] = [
    Level::Unlimited,
    Level::Ok,
    Level::Warning,
    Level::Critical,
    Level::Exhausted,
];

fn valid(p: Pair) -> bool {
    p.warning >= 1 && p.warning <= p.critical && p.critical <= 100
}

fn check_levels(pair: Pair, used: i64, more: u32, limit: Limit, previous: Option<Level>) {
    let q = |used| Quota::new("r", used, limit);
    let raw = thresholds::level(&q(used), pair, None);
    let higher = thresholds::level(&q(used.saturating_add(more as i64)), pair, None);
    assert!(
        raw <= higher,
        "{used}+{more} of {limit:?} at {pair:?}: {raw:?} > {higher:?}"
    );
    match limit {
        Limit::Unlimited => assert_eq!(raw, Level::Unlimited),
        Limit::Limited(l) => {
            assert_ne!(raw, Level::Unlimited);
            assert_eq!(raw == Level::Exhausted, used >= l, "{used}/{l}");
            if used >= 0 && l > 0 {
                let pct = used as f64 * 100.0 / l as f64;
                if raw == Level::Ok {
                    assert!(pct < pair.warning as f64 + 1e-6, "{used}/{l} is Ok");
                }
            }
        }
    }
    let held = thresholds::level(&q(used), pair, previous);
    // Hysteresis never raises above the previous level nor goes below the raw level.
    assert!(held >= raw, "{held:?} < raw {raw:?}");
    if held != raw {
        let prev = previous.expect("only history holds a level");
        assert!(held <= prev, "{held:?} above previous {prev:?}");
        assert!(held.is_alerting());
        // Held only within the band below the held level's threshold.
        if let Limit::Limited(l) = limit {
            let threshold = match held {
                Level::Exhausted => 100,
                Level::Critical => pair.critical,
                Level::Warning => pair.warning,
                _ => unreachable!(),
            };
            assert!(
                (used as i128) * 100 >= ((threshold - HYSTERESIS_POINTS) as i128) * (l as i128),
                "{used}/{l} held at {held:?}"
            );
        }
    }
    let _ = thresholds::usage_percent(used, limit.value().unwrap_or(0));
}

fuzz_target!(|input: Input| {
    let t = Thresholds {
        warning: input.warning,
        critical: input.critical,
        overrides: input
            .overrides
            .iter()
            .take(8)
            .map(|(resources, w, c)| ThresholdOverride {
                resources: resources.iter().take(8).cloned().collect(),
                warning: *w,
                critical: *c,
            })
            .collect(),
        ignore: input.ignore.iter().take(8).cloned().collect(),
    };
    let previous = input.previous.map(|b| LEVELS[b as usize % LEVELS.len()]);
    let limit = Limit::from_wire(input.limit)
        .unwrap_or(Limit::Limited(input.limit.unsigned_abs() as i64 & i64::MAX));
    // Parsers never return negative usage.
    let used = input.used & i64::MAX;
    match Policy::new(&t) {
        Ok(policy) => {
            assert!(valid(Pair {
                warning: t.warning,
                critical: t.critical
            }));
            for name in input.names.iter().take(8) {
                if let Some(pair) = policy.for_resource(name) {
                    assert!(valid(pair), "{name}: {pair:?}");
                    check_levels(pair, used, input.more, limit, previous);
                }
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    // Any valid pair, whether a policy produced it or not.
    let w = 1 + (input.warning.unsigned_abs() % 100) as i64;
    let c = w + (input.critical.unsigned_abs() % (101 - w as u64)) as i64;
    check_levels(
        Pair {
            warning: w,
            critical: c,
        },
        used,
        input.more,
        limit,
        previous,
    );
});
