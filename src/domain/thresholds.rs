//! Threshold policy: which thresholds apply to a resource and what level its usage is at.

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::crd::{Level, Thresholds};
use crate::domain::model::{Limit, Quota};

/// Points below a threshold usage must drop before its level is left, so usage that hovers
/// around a threshold does not flood Events.
pub const HYSTERESIS_POINTS: i64 = 2;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("invalid glob {glob:?} in {field}: {reason}")]
    Glob {
        field: &'static str,
        glob: String,
        reason: String,
    },
    #[error(
        "{field}: warning {warning} must be between 1 and critical {critical}, critical at most 100"
    )]
    Range {
        field: String,
        warning: i64,
        critical: i64,
    },
}

/// Warning and critical percentages for one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair {
    pub warning: i64,
    pub critical: i64,
}

/// The spec's thresholds, compiled.
#[derive(Debug, Clone)]
pub struct Policy {
    default: Pair,
    overrides: Vec<(GlobSet, Pair)>,
    ignore: GlobSet,
}

fn compile(field: &'static str, globs: &[String]) -> Result<GlobSet, PolicyError> {
    let mut b = GlobSetBuilder::new();
    for g in globs {
        let glob = Glob::new(g).map_err(|e| PolicyError::Glob {
            field,
            glob: g.clone(),
            reason: e.kind().to_string(),
        })?;
        b.add(glob);
    }
    b.build().map_err(|e| PolicyError::Glob {
        field,
        glob: globs.join(","),
        reason: e.to_string(),
    })
}

fn pair(field: String, warning: i64, critical: i64) -> Result<Pair, PolicyError> {
    // The CRD validates this too; the operator re-checks because objects may predate the rule.
    if warning < 1 || warning > critical || critical > 100 {
        return Err(PolicyError::Range {
            field,
            warning,
            critical,
        });
    }
    Ok(Pair { warning, critical })
}

impl Policy {
    pub fn new(t: &Thresholds) -> Result<Policy, PolicyError> {
        let default = pair("thresholds".into(), t.warning, t.critical)?;
        let overrides = t
            .overrides
            .iter()
            .enumerate()
            .map(|(i, o)| {
                Ok((
                    compile("thresholds.overrides.resources", &o.resources)?,
                    pair(format!("thresholds.overrides[{i}]"), o.warning, o.critical)?,
                ))
            })
            .collect::<Result<_, PolicyError>>()?;
        Ok(Policy {
            default,
            overrides,
            ignore: compile("thresholds.ignore", &t.ignore)?,
        })
    }

    /// The thresholds for a resource, or `None` when it is ignored.
    pub fn for_resource(&self, name: &str) -> Option<Pair> {
        if self.ignore.is_match(name) {
            return None;
        }
        Some(
            self.overrides
                .iter()
                .find(|(globs, _)| globs.is_match(name))
                .map(|(_, p)| *p)
                .unwrap_or(self.default),
        )
    }
}

/// `used >= pct% of limit`, in exact integer arithmetic.
fn at_least(used: i64, limit: i64, pct: i64) -> bool {
    (used as i128) * 100 >= (pct as i128) * (limit as i128)
}

/// The level a quota is at, given the level it was at before (for hysteresis).
///
/// Going up is immediate. Going down, a level is kept while usage stays within
/// [`HYSTERESIS_POINTS`] of its threshold; `Exhausted` counts as a threshold of 100%.
pub fn level(quota: &Quota, pair: Pair, previous: Option<Level>) -> Level {
    let limit = match quota.limit {
        Limit::Unlimited => return Level::Unlimited,
        Limit::Limited(l) => l,
    };
    let threshold = |level: Level| match level {
        Level::Exhausted => 100,
        Level::Critical => pair.critical,
        Level::Warning => pair.warning,
        Level::Ok | Level::Unlimited => 0,
    };
    let used = quota.consumed();
    let raw = if used >= limit {
        Level::Exhausted
    } else if at_least(used, limit, pair.critical) {
        Level::Critical
    } else if at_least(used, limit, pair.warning) {
        Level::Warning
    } else {
        Level::Ok
    };
    let Some(prev) = previous.filter(|p| *p > raw && p.is_alerting()) else {
        return raw;
    };
    // Limit 0 is exhausted for good: no band to hold.
    if limit == 0 {
        return raw;
    }
    [Level::Exhausted, Level::Critical, Level::Warning]
        .into_iter()
        .filter(|l| *l <= prev && *l > raw)
        // The band never reaches 0%: a threshold of 1 or 2 must still be left at zero usage.
        .find(|l| at_least(used, limit, (threshold(*l) - HYSTERESIS_POINTS).max(1)))
        .unwrap_or(raw)
}

/// `used / limit` in percent, rounded to two decimals. A limit of 0 counts as 100% used.
pub fn usage_percent(used: i64, limit: i64) -> f64 {
    if limit <= 0 {
        return 100.0;
    }
    let pct = used as f64 * 100.0 / limit as f64;
    (pct * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::ThresholdOverride;

    const P: Pair = Pair {
        warning: 80,
        critical: 95,
    };

    fn q(used: i64, limit: i64) -> Quota {
        Quota::new("r", used, Limit::from_wire(limit).unwrap())
    }

    #[test]
    fn levels_without_history() {
        use Level::*;
        let cases = [
            (0, 100, Ok),
            (79, 100, Ok),
            (80, 100, Warning), // exact boundary enters
            (94, 100, Warning),
            (95, 100, Critical), // exact boundary enters
            (99, 100, Critical),
            (100, 100, Exhausted),
            (120, 100, Exhausted), // used > limit
            (0, 0, Exhausted),     // limit 0: nothing can be created
            (5, -1, Unlimited),
            (4, 5, Warning),    // 80% of a small limit
            (28, 30, Warning),  // 93.3%
            (29, 30, Critical), // 96.7%
        ];
        for (used, limit, want) in cases {
            assert_eq!(level(&q(used, limit), P, None), want, "{used}/{limit}");
        }
    }

    #[test]
    fn hysteresis_table() {
        use Level::*;
        // (used of 100, previous level, expected)
        let cases = [
            (79, Some(Warning), Warning), // within 2 points below 80: stays
            (78, Some(Warning), Warning), // exactly 2 below: stays
            (77, Some(Warning), Ok),      // more than 2 below: leaves
            (93, Some(Critical), Critical),
            (92, Some(Critical), Warning),
            (70, Some(Critical), Ok), // straight down through both bands
            (98, Some(Exhausted), Exhausted),
            (97, Some(Exhausted), Critical),
            (79, Some(Critical), Warning), // leaves critical, held in warning's band
            (79, Some(Ok), Ok),            // going up is not affected
            (81, Some(Ok), Warning),
            (96, Some(Warning), Critical),
            (79, Some(Unlimited), Ok), // limit introduced
            (79, None, Ok),
        ];
        for (used, prev, want) in cases {
            assert_eq!(level(&q(used, 100), P, prev), want, "{used} from {prev:?}");
        }
    }

    #[test]
    fn low_thresholds_can_still_be_left() {
        let low = Pair {
            warning: 1,
            critical: 50,
        };
        assert_eq!(level(&q(0, 100), low, Some(Level::Warning)), Level::Ok);
        assert_eq!(level(&q(1, 100), low, Some(Level::Warning)), Level::Warning);
    }

    #[test]
    fn limit_zero_never_holds_a_band() {
        assert_eq!(level(&q(0, 0), P, Some(Level::Exhausted)), Level::Exhausted);
    }

    #[test]
    fn no_overflow_on_huge_numbers() {
        let big = q(i64::MAX - 1, i64::MAX);
        assert_eq!(level(&big, P, None), Level::Critical);
    }

    #[test]
    fn usage_percent_rounds() {
        assert_eq!(usage_percent(28, 30), 93.33);
        assert_eq!(usage_percent(2, 3), 66.67);
        assert_eq!(usage_percent(0, 0), 100.0);
        assert_eq!(usage_percent(150, 100), 150.0);
    }

    fn policy(overrides: Vec<ThresholdOverride>, ignore: &[&str]) -> Result<Policy, PolicyError> {
        Policy::new(&Thresholds {
            warning: 80,
            critical: 95,
            overrides,
            ignore: ignore.iter().map(|s| s.to_string()).collect(),
        })
    }

    #[test]
    fn overrides_first_match_wins_and_ignore_beats_overrides() {
        let p = policy(
            vec![
                ThresholdOverride {
                    resources: vec!["snapshots*".into()],
                    warning: 50,
                    critical: 60,
                },
                ThresholdOverride {
                    resources: vec!["snapshots_SSD".into(), "image".into()],
                    warning: 10,
                    critical: 20,
                },
            ],
            &["backup_*", "volumes_SATA"],
        )
        .unwrap();
        assert_eq!(
            p.for_resource("snapshots_SSD"),
            Some(Pair {
                warning: 50,
                critical: 60
            })
        );
        assert_eq!(
            p.for_resource("image"),
            Some(Pair {
                warning: 10,
                critical: 20
            })
        );
        assert_eq!(p.for_resource("gigabytes"), Some(P));
        assert_eq!(p.for_resource("backup_gigabytes"), None);
        assert_eq!(p.for_resource("volumes_SATA"), None);
        assert_eq!(p.for_resource("volumes_SAS"), Some(P));
    }

    #[test]
    fn invalid_policies_are_specific() {
        let e = policy(vec![], &["[unclosed"]).unwrap_err();
        assert!(e.to_string().contains("thresholds.ignore"), "{e}");
        let e = Policy::new(&Thresholds {
            warning: 96,
            critical: 95,
            ..Thresholds::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("warning 96"), "{e}");
        let e = policy(
            vec![ThresholdOverride {
                resources: vec!["x".into()],
                warning: 0,
                critical: 10,
            }],
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().contains("overrides[0]"), "{e}");
    }

    #[test]
    fn reserved_counts_against_the_limit() {
        // 70 in use + 15 reserved of 100: Cinder/EVS refuses the 16th new volume.
        let mut quota = q(70, 100);
        assert_eq!(level(&quota, P, None), Level::Ok);
        quota.reserved = Some(15);
        assert_eq!(level(&quota, P, None), Level::Warning);
        quota.reserved = Some(30);
        assert_eq!(level(&quota, P, None), Level::Exhausted);
    }
}
