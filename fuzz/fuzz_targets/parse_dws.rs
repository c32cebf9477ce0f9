//! Huawei DWS `ListQuotas` bodies: never panic; what parses keeps the quota invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(quotas) = cloudquota::providers::huawei_dws::parse(data) {
        cloudquota_fuzz::assert_quotas(&quotas, true);
        cloudquota_fuzz::assert_status_builds(quotas);
    }
});
