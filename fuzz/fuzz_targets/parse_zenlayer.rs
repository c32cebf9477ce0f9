//! Zenlayer `DescribeImageQuota` bodies, with and without a zone filter: never panic; what
//! parses keeps the quota invariants and honours the filter.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // First byte: which zone filter to apply.
    let (filter, body): (Vec<String>, &[u8]) = match data.split_first() {
        Some((b, rest)) if b % 3 == 1 => (vec!["sa-jeddah-1a".into()], rest),
        Some((b, rest)) if b % 3 == 2 => (vec!["asia-east-1a".into(), "z".into()], rest),
        Some((_, rest)) => (vec![], rest),
        None => (vec![], data),
    };
    let result = cloudquota::providers::zenlayer_vm::parse(body, &filter);
    // The filter only ever removes zones: an unfiltered parse succeeds whenever a filtered one
    // does... not quite (a filtered-out item is not validated further), so only the other way:
    if let Ok(all) = cloudquota::providers::zenlayer_vm::parse(body, &[]) {
        let filtered = result
            .as_ref()
            .expect("a body valid for all zones is valid for some");
        let want = all
            .iter()
            .filter(|q| filter.is_empty() || filter.contains(q.zone.as_ref().unwrap()))
            .count();
        assert_eq!(filtered.len(), want);
    }
    if let Ok(quotas) = result {
        cloudquota_fuzz::assert_quotas(&quotas, true);
        for q in &quotas {
            assert_eq!(q.name, cloudquota::providers::zenlayer_vm::RESOURCE);
            let zone = q.zone.as_ref().expect("zenlayer quotas are per zone");
            assert!(
                filter.is_empty() || filter.contains(zone),
                "{zone} not in {filter:?}"
            );
        }
        cloudquota_fuzz::assert_status_builds(quotas);
    }
});
