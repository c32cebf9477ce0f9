//! `domain::duration::parse`: never panics; accepted durations format and parse back.
#![no_main]

use std::time::Duration;

use cloudquota::domain::duration;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|s: &str| {
    let Ok(d) = duration::parse(s) else {
        return;
    };
    // Negative durations never parse.
    assert!(!s.contains('-'), "{s:?} parsed as {d:?}");
    // The overflow guard keeps every accepted value within Go's range, so adding it to an
    // Instant cannot overflow.
    assert!(d <= duration::MAX, "{s:?} -> {d:?}");
    assert!(
        std::time::Instant::now().checked_add(d).is_some(),
        "{s:?} -> {d:?}"
    );
    let text = duration::format(d);
    let back = duration::parse(&text).unwrap_or_else(|e| panic!("{d:?} formats as {text:?}: {e}"));
    if d.as_secs() == 0 {
        // Below a second, format shows whole milliseconds.
        assert_eq!(
            back,
            Duration::from_millis(d.as_millis() as u64),
            "{s:?} -> {text:?}"
        );
    } else {
        // Whole seconds (format drops sub-seconds) round-trip exactly: below Go's maximum
        // (< 2^34 s) f64 holds them exactly.
        assert_eq!(back, Duration::from_secs(d.as_secs()), "{s:?} -> {text:?}");
    }
});
