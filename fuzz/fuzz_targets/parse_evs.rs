//! Huawei EVS `ShowQuotaSets` bodies: never panic; what parses keeps the quota invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(quotas) = cloudquota::providers::huawei_evs::parse(data) {
        // EVS resource names are the JSON keys, cleaned and bounded like every upstream name.
        cloudquota_fuzz::assert_quotas(&quotas, true);
        for q in &quotas {
            assert_ne!(q.name, "id", "the id field is not a resource");
            if q.name.starts_with("gigabytes") {
                assert_eq!(q.unit.as_deref(), Some("GB"));
            }
        }
        cloudquota_fuzz::assert_status_builds(quotas);
    }
});
