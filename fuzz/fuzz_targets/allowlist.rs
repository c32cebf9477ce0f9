//! Endpoint allowlist: `Allowlist::check` never panics and never accepts link-local, metadata,
//! unspecified, multicast or broadcast addresses (even when everything is allowlisted),
//! credentials in the URL, or a scheme other than https (http only to loopback, and only with
//! the explicit flag). With the default list only the providers' domains pass.
#![no_main]

use std::net::IpAddr;
use std::sync::LazyLock;

use cloudquota::domain::allowlist::{
    Allowlist, DEFAULT_ALLOWED_HOSTS, NotAllowed, forbidden_ip, is_loopback_host,
};
use libfuzzer_sys::fuzz_target;
use url::Host;

/// Input: one flag byte, then UTF-8 text `ENDPOINT[\nPATTERN]...`. Flag bits 0-2 pick a
/// prefix for the endpoint (so mutations keep a plausible scheme and host), bit 3 is
/// `--allow-insecure-loopback`, bit 7 also checks the endpoint against the given patterns.
struct Input<'a> {
    endpoint: &'a str,
    prefix: u8,
    loopback: bool,
    patterns: Vec<&'a str>,
}

fn input(data: &[u8]) -> Option<Input<'_>> {
    let (flags, rest) = data.split_first()?;
    let text = std::str::from_utf8(rest).ok()?;
    let mut lines = text.split('\n');
    Some(Input {
        endpoint: lines.next().unwrap_or_default(),
        prefix: *flags,
        loopback: flags & 0x08 != 0,
        patterns: lines.collect(),
    })
}

const PREFIXES: [&str; 8] = [
    "",
    "https://",
    "http://",
    "https://ims.cn-north-4.myhuaweicloud.com",
    "https://[",
    "https://169.254.",
    "http://127.0.0.1",
    "https://console.zenlayer.com",
];

fn check(list: &Allowlist, endpoint: &str, everything_allowed: bool, default_list: bool) {
    let result = list.check(endpoint);
    let url = match result {
        Ok(url) => url,
        Err(e) => {
            // Errors never echo a password from the URL (unless the same text is elsewhere in
            // the URL, e.g. in its query, which errors do show).
            if let Ok(u) = url::Url::parse(endpoint)
                && let Some(pw) = u.password()
                && pw.len() >= 8
                && !matches!(e, NotAllowed::Malformed(_))
            {
                let needle = format!(":{pw}@");
                let mut without = u.clone();
                let _ = without.set_password(None);
                let _ = without.set_username("");
                if !without.as_str().contains(&needle) {
                    let text = e.to_string();
                    assert!(!text.contains(&needle), "{text}");
                }
            }
            if everything_allowed
                && let Ok(u) = url::Url::parse(endpoint)
                && u.scheme() == "https"
                && u.username().is_empty()
                && u.password().is_none()
                && let Some(host) = u.host()
            {
                let ip = match host {
                    Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
                    Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
                    Host::Domain(_) => None,
                };
                assert!(
                    ip.is_some_and(forbidden_ip),
                    "{endpoint:?} refused by a match-all list: {e}"
                );
            }
            return;
        }
    };
    assert!(
        url.username().is_empty() && url.password().is_none(),
        "{url}"
    );
    let host = url.host().expect("accepted URLs have a host");
    let loopback = is_loopback_host(&host);
    match url.scheme() {
        "https" => {}
        "http" => assert!(loopback && list.insecure_loopback(), "plain http to {url}"),
        other => panic!("scheme {other} accepted: {url}"),
    }
    let ip = match &host {
        Host::Ipv4(ip) => Some(IpAddr::V4(*ip)),
        Host::Ipv6(ip) => Some(IpAddr::V6(*ip)),
        Host::Domain(_) => None,
    };
    if let Some(ip) = ip {
        assert!(!forbidden_ip(ip), "forbidden address accepted: {url}");
        if let IpAddr::V4(v4) = ip {
            assert!(!v4.is_link_local(), "{url}");
        }
        if let IpAddr::V6(v6) = ip {
            assert!((v6.segments()[0] & 0xffc0) != 0xfe80, "{url}");
            if let Some(v4) = v6.to_ipv4_mapped() {
                assert!(!v4.is_link_local(), "{url}");
            }
        }
    }
    if default_list && !(loopback && list.insecure_loopback()) {
        let name = url
            .host_str()
            .unwrap()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        assert!(
            name.ends_with(".myhuaweicloud.com")
                || name.ends_with(".myhuaweicloud.eu")
                || name == "console.zenlayer.com",
            "default allowlist accepted {url}"
        );
    }
}

/// Compiled once: building glob sets dominates the run time otherwise.
/// Index: `[insecure_loopback as usize]`.
static DEFAULT: LazyLock<[Allowlist; 2]> =
    LazyLock::new(|| [false, true].map(|l| Allowlist::new(DEFAULT_ALLOWED_HOSTS, l).unwrap()));
static EVERYTHING: LazyLock<[Allowlist; 2]> =
    LazyLock::new(|| [false, true].map(|l| Allowlist::new(&["*"], l).unwrap()));

fuzz_target!(|data: &[u8]| {
    let Some(input) = input(data) else {
        return;
    };
    let endpoint = format!(
        "{}{}",
        PREFIXES[input.prefix as usize % PREFIXES.len()],
        input.endpoint
    );
    let l = input.loopback as usize;
    check(&DEFAULT[l], &endpoint, false, true);
    check(&EVERYTHING[l], &endpoint, true, false);
    // Custom lists are compiled per input (slow), so only for some of them.
    if !input.patterns.is_empty() && input.prefix & 0x80 != 0 {
        let patterns: Vec<&str> = input.patterns.iter().take(4).copied().collect();
        if let Ok(custom) = Allowlist::new(&patterns, input.loopback) {
            check(&custom, &endpoint, false, false);
        }
    }
});
