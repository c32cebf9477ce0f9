//! Endpoint allowlist: whoever can create a CloudQuota must not be able to make the operator
//! send signed requests or tokens to a host of their choice.

use std::net::IpAddr;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use url::{Host, Url};

/// The providers' official API domains.
pub const DEFAULT_ALLOWED_HOSTS: &[&str] = &[
    "*.myhuaweicloud.com",
    "*.myhuaweicloud.eu",
    "console.zenlayer.com",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotAllowed {
    #[error("endpoint {0:?} is not a valid absolute URL")]
    Malformed(String),
    #[error("endpoint {url}: scheme {scheme:?} is not allowed (https only{loopback})")]
    Scheme {
        url: String,
        scheme: String,
        loopback: &'static str,
    },
    #[error("endpoint {0}: credentials in the URL are not allowed")]
    UserInfo(String),
    #[error("endpoint {url}: host {host} is not in the endpoint allowlist")]
    Host { url: String, host: String },
    #[error(
        "endpoint {url}: address {addr} is link-local, unspecified, multicast or a cloud metadata service and is never contacted"
    )]
    Address { url: String, addr: IpAddr },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid allowlist glob {glob:?}: {reason}")]
pub struct BadGlob {
    pub glob: String,
    pub reason: String,
}

/// Compiled allowlist.
#[derive(Debug, Clone)]
pub struct Allowlist {
    globs: GlobSet,
    patterns: Vec<String>,
    insecure_loopback: bool,
}

/// Cloud metadata services outside the link-local ranges (which are refused as a whole).
const METADATA_V4: &[[u8; 4]] = [
    [100, 100, 100, 200], // Alibaba Cloud
    [192, 0, 0, 192],     // Oracle Cloud (classic)
    [168, 63, 129, 16],   // Azure WireServer
]
.as_slice();
const METADATA_V6: &[[u16; 8]] = [
    [0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254], // AWS IMDS over IPv6
    [0xfd20, 0x0ce, 0, 0, 0, 0, 0, 0x0254],  // Oracle Cloud IMDS over IPv6
]
.as_slice();

/// Addresses that are never a cloud API: link-local (where most cloud metadata services live,
/// 169.254.169.254 included), unspecified, multicast, broadcast and the known metadata
/// addresses elsewhere. IPv6 forms that embed an IPv4 address (mapped `::ffff:a.b.c.d`,
/// compatible `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`) are judged by that address. This holds
/// even with a `*` allowlist: no CloudQuota author may point the operator at a metadata service.
pub fn forbidden_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || METADATA_V4.contains(&v4.octets())
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let embedded = if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                Some(std::net::Ipv4Addr::new(
                    (s[6] >> 8) as u8,
                    s[6] as u8,
                    (s[7] >> 8) as u8,
                    s[7] as u8,
                ))
            } else if v6.is_loopback() || v6.is_unspecified() {
                None
            } else {
                // `to_ipv4` covers both the mapped and the (deprecated) compatible form.
                v6.to_ipv4()
            };
            if let Some(v4) = embedded {
                return forbidden_ip(IpAddr::V4(v4));
            }
            v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xffc0) == 0xfec0 // deprecated site-local, still routed by some stacks
                || METADATA_V6.contains(&s)
        }
    }
}

/// Whether a host is this machine.
pub fn is_loopback_host(host: &Host<&str>) -> bool {
    match host {
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback(),
        Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
    }
}

impl Allowlist {
    /// `insecure_loopback` lets plain `http://` reach loopback hosts (tests and the demo only);
    /// loopback hosts are then allowed without an allowlist entry.
    pub fn new<S: AsRef<str>>(
        patterns: &[S],
        insecure_loopback: bool,
    ) -> Result<Allowlist, BadGlob> {
        let mut b = GlobSetBuilder::new();
        for p in patterns {
            let p = p.as_ref().trim().to_ascii_lowercase();
            let glob = GlobBuilder::new(&p)
                .literal_separator(false)
                .build()
                .map_err(|e| BadGlob {
                    glob: p.clone(),
                    reason: e.kind().to_string(),
                })?;
            b.add(glob);
        }
        let globs = b.build().map_err(|e| BadGlob {
            glob: String::new(),
            reason: e.to_string(),
        })?;
        Ok(Allowlist {
            globs,
            patterns: patterns.iter().map(|p| p.as_ref().to_string()).collect(),
            insecure_loopback,
        })
    }

    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    pub fn insecure_loopback(&self) -> bool {
        self.insecure_loopback
    }

    /// Parses and checks an endpoint URL.
    pub fn check(&self, endpoint: &str) -> Result<Url, NotAllowed> {
        let url = Url::parse(endpoint).map_err(|_| NotAllowed::Malformed(endpoint.to_string()))?;
        let shown = || {
            let mut u = url.clone();
            let _ = u.set_password(None);
            let _ = u.set_username("");
            u.to_string()
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(NotAllowed::UserInfo(shown()));
        }
        let host = url.host().ok_or_else(|| NotAllowed::Malformed(shown()))?;
        let loopback = is_loopback_host(&host);
        match url.scheme() {
            "https" => {}
            "http" if loopback && self.insecure_loopback => {}
            other => {
                return Err(NotAllowed::Scheme {
                    url: shown(),
                    scheme: other.to_string(),
                    loopback: if self.insecure_loopback {
                        "; http for loopback hosts"
                    } else {
                        ""
                    },
                });
            }
        }
        let ip = match host {
            Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
            Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
            Host::Domain(_) => None,
        };
        if let Some(addr) = ip.filter(|ip| forbidden_ip(*ip)) {
            return Err(NotAllowed::Address { url: shown(), addr });
        }
        if loopback && self.insecure_loopback {
            return Ok(url);
        }
        let name = match host {
            Host::Domain(d) => d.trim_end_matches('.').to_ascii_lowercase(),
            Host::Ipv4(ip) => ip.to_string(),
            Host::Ipv6(ip) => ip.to_string(),
        };
        if !self.globs.is_match(&name) {
            return Err(NotAllowed::Host {
                url: shown(),
                host: name,
            });
        }
        Ok(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default(loopback: bool) -> Allowlist {
        Allowlist::new(DEFAULT_ALLOWED_HOSTS, loopback).unwrap()
    }

    #[test]
    fn official_domains_pass() {
        let a = default(false);
        for ok in [
            "https://ims.cn-north-4.myhuaweicloud.com",
            "https://evs.eu-west-101.myhuaweicloud.eu/",
            "https://DWS.AP-SOUTHEAST-1.MYHUAWEICLOUD.COM:443",
            "https://console.zenlayer.com/api/v2/vm",
            "https://ims.cn-north-4.myhuaweicloud.com./",
        ] {
            assert!(a.check(ok).is_ok(), "{ok}: {:?}", a.check(ok));
        }
    }

    #[test]
    fn everything_else_is_refused() {
        let a = default(false);
        for bad in [
            "http://ims.cn-north-4.myhuaweicloud.com", // plain http
            "https://myhuaweicloud.com.evil.example",  // suffix trick
            "https://evilmyhuaweicloud.com",           // no dot
            "https://console.zenlayer.com.evil.example",
            "https://169.254.169.254/latest/meta-data", // metadata
            "https://[fe80::1]/",
            "https://[::ffff:169.254.169.254]/",
            "https://0.0.0.0/",
            "https://kubernetes.default.svc", // internal names
            "https://metadata.google.internal",
            "http://127.0.0.1:8080", // loopback without the flag
            "https://user:pw@ims.cn-north-4.myhuaweicloud.com",
            "file:///etc/passwd",
            "not a url",
        ] {
            assert!(a.check(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn loopback_flag_allows_http_to_loopback_only() {
        let a = default(true);
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:1/",
            "http://[::1]:9/",
            "http://127.0.0.2:5",
        ] {
            assert!(a.check(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://10.0.0.1",
            "http://169.254.169.254",
            "http://example.com",
            "ftp://127.0.0.1",
        ] {
            assert!(a.check(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn errors_are_specific_and_hide_userinfo() {
        let a = default(false);
        let e = a.check("https://user:hunter2@example.com").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = a.check("https://example.com/x").unwrap_err();
        assert!(
            e.to_string()
                .contains("example.com is not in the endpoint allowlist"),
            "{e}"
        );
        assert!(Allowlist::new(&["[bad"], false).is_err());
    }

    #[test]
    fn metadata_addresses_are_refused_even_with_a_wildcard_allowlist() {
        let a = Allowlist::new(&["*"], false).unwrap();
        for bad in [
            "https://169.254.169.254/",
            "https://100.100.100.200/latest/meta-data",
            "https://192.0.0.192/",
            "https://168.63.129.16/",
            "https://[fec0::1]/",
            "https://[fd00:ec2::254]/",
            "https://[fd20:ce::254]/",
            "https://[::ffff:169.254.169.254]/",
            "https://[::169.254.169.254]/",
            "https://[64:ff9b::169.254.169.254]/",
            "https://[64:ff9b::100.100.100.200]/",
            "https://[fe80::a9fe:a9fe]/",
            "https://[ff02::1]/",
            "https://255.255.255.255/",
        ] {
            let e = a.check(bad).unwrap_err();
            assert!(matches!(e, NotAllowed::Address { .. }), "{bad}: {e}");
        }
        for ok in [
            "https://10.0.0.1/",
            "https://100.100.100.201/",
            "https://[2001:db8::1]/",
            "https://[64:ff9b::10.0.0.1]/",
            "https://ims.cn-north-4.myhuaweicloud.com/",
        ] {
            assert!(a.check(ok).is_ok(), "{ok}");
        }
        // Loopback stays loopback (it is refused elsewhere unless the flag allows it).
        assert!(!forbidden_ip("::1".parse().unwrap()));
    }

    #[test]
    fn custom_patterns() {
        let a = Allowlist::new(&["*.private-cloud.example", "10.1.2.3"], false).unwrap();
        assert!(a.check("https://ims.region.private-cloud.example").is_ok());
        assert!(a.check("https://10.1.2.3/").is_ok());
        assert!(a.check("https://10.1.2.4/").is_err());
    }
}
