//! Huawei ECS `ShowServerLimits` bodies: never panic; what parses keeps the quota invariants.
#![no_main]

use cloudquota::providers::huawei_ecs::{PAIRS, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(quotas) = parse(data) {
        cloudquota_fuzz::assert_quotas(&quotas, true);
        // Names come from the fixed pair table, never from the body: at most one resource per
        // pair, each with the pair's unit.
        assert!(!quotas.is_empty() && quotas.len() <= PAIRS.len());
        for (i, q) in quotas.iter().enumerate() {
            let pair = PAIRS
                .iter()
                .find(|p| p.name == q.name)
                .unwrap_or_else(|| panic!("{} is not an ECS pair", q.name));
            assert_eq!(q.unit.as_deref(), pair.unit, "{q:?}");
            assert!(quotas[..i].iter().all(|o| o.name != q.name), "{q:?} twice");
            assert!(q.zone.is_none() && q.reserved.is_none());
        }
        cloudquota_fuzz::assert_status_builds(quotas);
    }
});
