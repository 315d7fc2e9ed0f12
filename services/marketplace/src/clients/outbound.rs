//! Where the marketplace may send requests on staff's say-so: vendor provision and health
//! URLs are typed in by staff, so without a rule they could point at the platform's own
//! network (`http://billing:8003/readyz`, a cloud metadata address) and the marketplace would
//! call it, signed, with customers' bot tokens in the body.
//!
//! The rule: a vendor URL must reach a public address. Loopback, private, link-local,
//! carrier-grade NAT, unspecified, multicast and other special-purpose ranges are refused,
//! IPv4 addresses hidden in IPv6 forms (mapped, NAT64, 6to4, compatible) included, and so are
//! host names that resolve to any of them. It is applied when staff save a URL (422) and
//! again on every call: the HTTP client resolves through [`GuardedResolver`], which checks
//! the addresses and hands exactly those to the connector, so a name that changes its answer
//! after the check (DNS rebinding) still cannot reach an internal address. IP literals, which
//! never go through a resolver, are checked before each call.
//!
//! Local development runs vendors on 127.0.0.1, so `VENDOR_URL_ALLOW_PRIVATE` (default: on
//! in development, off in production) lets internal addresses through, and
//! `VENDOR_URL_ALLOWLIST` names hosts, addresses or CIDR blocks allowed in any environment
//! (a vendor deliberately run inside a private network).

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use reqwest::{
    Url,
    dns::{Addrs, Name, Resolve, Resolving},
};
use zimmer_config::{ConfigError, Env};

/// Longest a name lookup may take, at save time and per call.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a vendor URL may not be called; the text is shown to staff and logged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// A CIDR block of the allow-list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    fn parse(raw: &str) -> Option<Self> {
        let (addr, prefix) = match raw.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (raw.parse::<IpAddr>().ok()?, None),
        };
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Self { addr, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The rule for vendor URLs (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct OutboundPolicy {
    /// Internal addresses allowed too (local development).
    pub allow_private: bool,
    allowed_hosts: Vec<String>,
    allowed_nets: Vec<Net>,
}

fn normal_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

impl OutboundPolicy {
    /// `VENDOR_URL_ALLOW_PRIVATE` (bool; default on only in development) and
    /// `VENDOR_URL_ALLOWLIST` (comma-separated host names, IP addresses, CIDR blocks).
    pub fn from_env(env: &Env, production: bool) -> Result<Self, ConfigError> {
        let allow_private = env.bool("VENDOR_URL_ALLOW_PRIVATE", !production)?;
        Self::new(allow_private, &env.list("VENDOR_URL_ALLOWLIST", ""))
            .map_err(|e| ConfigError(format!("VENDOR_URL_ALLOWLIST: {e}")))
    }

    pub fn new(allow_private: bool, allowlist: &[String]) -> Result<Self, String> {
        let mut policy = Self {
            allow_private,
            ..Self::default()
        };
        for entry in allowlist {
            if entry.contains('/') || entry.parse::<IpAddr>().is_ok() {
                let net = Net::parse(entry)
                    .ok_or_else(|| format!("`{entry}` is not an IP address or CIDR block"))?;
                policy.allowed_nets.push(net);
            } else if !entry.is_empty()
                && entry
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
            {
                policy.allowed_hosts.push(normal_host(entry));
            } else {
                return Err(format!("`{entry}` is not a host name"));
            }
        }
        Ok(policy)
    }

    fn host_allowed(&self, host: &str) -> bool {
        let host = normal_host(host);
        self.allowed_hosts.contains(&host)
    }

    /// One address `host` stands for (or is).
    pub fn check_ip(&self, host: &str, ip: IpAddr) -> Result<(), Refused> {
        if self.allow_private
            || !is_internal(ip)
            || self.allowed_nets.iter().any(|n| n.contains(ip))
        {
            return Ok(());
        }
        let ip = ip.to_canonical();
        if host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok() {
            Err(Refused(format!(
                "{ip} is an internal address (loopback, private, link-local or reserved); \
                 vendor URLs must point at a public address"
            )))
        } else {
            Err(Refused(format!(
                "{host} resolves to {ip}, an internal address (loopback, private, link-local \
                 or reserved); vendor URLs must point at a public address"
            )))
        }
    }

    /// What can be said without DNS: the scheme and host, and the address when the host is
    /// one. `Ok(Some(name))`: a host name, to be resolved and checked.
    pub fn check_literal(&self, url: &Url) -> Result<Option<String>, Refused> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refused("must be an http(s) URL".to_owned()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refused("must not carry a user name or password".to_owned()));
        }
        let host = url
            .host_str()
            .ok_or_else(|| Refused("must name a host".to_owned()))?;
        // The URL parser has already normalised odd IPv4 spellings (`2130706433`, `0x7f.1`).
        match host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            Ok(ip) => self.check_ip(host, ip).map(|()| None),
            Err(_) => Ok(Some(host.to_owned())),
        }
    }

    /// Resolves `host` and checks every address it has: all must be allowed (one internal
    /// answer among public ones is how rebinding attacks hedge their bets).
    pub async fn resolve(&self, host: &str) -> Result<Vec<SocketAddr>, Refused> {
        let lookup = tokio::net::lookup_host((host, 0));
        let addrs: Vec<SocketAddr> = match tokio::time::timeout(LOOKUP_TIMEOUT, lookup).await {
            Ok(Ok(addrs)) => addrs.collect(),
            Ok(Err(_)) | Err(_) => {
                return Err(Refused(format!("{host} could not be resolved")));
            }
        };
        if addrs.is_empty() {
            return Err(Refused(format!("{host} could not be resolved")));
        }
        if !self.host_allowed(host) {
            for a in &addrs {
                self.check_ip(host, a.ip())?;
            }
        }
        Ok(addrs)
    }

    /// The save-time check of a URL staff typed in. A name that does not resolve is refused
    /// too (it cannot be judged, and is most likely a typo), except where internal addresses
    /// are allowed anyway (development), which needs no lookup.
    pub async fn check_url(&self, raw: &str) -> Result<(), Refused> {
        let url = Url::parse(raw).map_err(|_| Refused("must be an http(s) URL".to_owned()))?;
        match self.check_literal(&url)? {
            Some(name) if !self.allow_private && !self.host_allowed(&name) => {
                self.resolve(&name).await.map(|_| ())
            }
            _ => Ok(()),
        }
    }
}

/// The HTTP client's resolver: resolves once, checks, and returns exactly the checked
/// addresses, which are the ones connected to.
pub struct GuardedResolver(pub Arc<OutboundPolicy>);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.0);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = policy.resolve(&host).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The refusal behind a failed request, if the guard caused it (it travels as the source of
/// reqwest's connect error).
pub fn refusal_in(e: &(dyn std::error::Error + 'static)) -> Option<Refused> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<Refused>() {
            return Some(r.clone());
        }
        cur = err.source();
    }
    None
}

/// Not a public unicast address: what a vendor URL must never reach.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_internal(v4),
        IpAddr::V6(v6) => v6_internal(v6),
    }
}

fn v4_internal(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    a == 0 // "this network", 0.0.0.0 included
        || ip.is_loopback() // 127/8
        || ip.is_private() // 10/8, 172.16/12, 192.168/16
        || ip.is_link_local() // 169.254/16, cloud metadata
        || (a == 100 && (b & 0xc0) == 64) // 100.64/10 carrier-grade NAT
        || (a == 192 && b == 0 && c == 0) // 192.0.0/24 IETF protocol assignments
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast
        || ip.is_documentation()
        || (a == 198 && (b & 0xfe) == 18) // 198.18/15 benchmarking
        || a >= 224 // multicast, reserved, broadcast
}

fn v6_internal(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let embedded =
        |hi: u16, lo: u16| v4_internal(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_internal(v4); // ::ffff:a.b.c.d
    }
    if s[..6] == [0; 6] {
        return true; // ::, ::1 and the deprecated IPv4-compatible ::a.b.c.d
    }
    if s[0] == 0x64 && s[1] == 0xff9b {
        // NAT64 (64:ff9b::/96 and the local-use 64:ff9b:1::/48): the gateway would connect
        // to the embedded IPv4 address.
        return s[2] != 0 || embedded(s[6], s[7]);
    }
    if s[0] == 0x2002 {
        return embedded(s[1], s[2]); // 6to4
    }
    (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // deprecated site-local
        || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (s[0] & 0xff00) == 0xff00 // multicast
        || (s[0] == 0x2001 && s[1] < 0x0200) // 2001::/23 IETF special purpose (Teredo incl.)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // discard-only 100::/64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn internal_ranges_are_recognised_in_every_disguise() {
        for s in [
            "0.0.0.0",
            "127.0.0.1",
            "127.255.0.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "192.0.0.8",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fe80::1",
            "febf::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "2001:db8::1",
            "2001::1",
        ] {
            assert!(is_internal(ip(s)), "{s} must be internal");
        }
        for s in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "192.169.0.1",
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::",
        ] {
            assert!(!is_internal(ip(s)), "{s} is public");
        }
    }

    #[test]
    fn literals_are_refused_unless_allowed() {
        let strict = OutboundPolicy::new(false, &[]).unwrap();
        for url in [
            "http://127.0.0.1:8003/readyz",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://0.0.0.0:80/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[fe80::1]/",
        ] {
            let parsed = Url::parse(url).unwrap();
            let err = strict.check_literal(&parsed).unwrap_err();
            assert!(err.0.contains("internal address"), "{url}: {err}");
        }
        let ok = Url::parse("https://vendor.example.com/provision").unwrap();
        assert_eq!(
            strict.check_literal(&ok).unwrap().as_deref(),
            Some("vendor.example.com")
        );
        assert!(
            strict
                .check_literal(&Url::parse("https://u:p@vendor.example.com/").unwrap())
                .is_err()
        );
        assert!(
            strict
                .check_literal(&Url::parse("ftp://vendor.example.com/").unwrap())
                .is_err()
        );

        let listed =
            OutboundPolicy::new(false, &["127.0.0.1".to_owned(), "10.20.0.0/16".to_owned()])
                .unwrap();
        assert!(listed.check_ip("127.0.0.1", ip("127.0.0.1")).is_ok());
        assert!(listed.check_ip("x", ip("::ffff:127.0.0.1")).is_ok());
        assert!(listed.check_ip("x", ip("127.0.0.2")).is_err());
        assert!(listed.check_ip("x", ip("10.20.5.5")).is_ok());
        assert!(listed.check_ip("x", ip("10.21.0.1")).is_err());
        let dev = OutboundPolicy::new(true, &[]).unwrap();
        assert!(dev.check_ip("x", ip("127.0.0.1")).is_ok());
        assert!(OutboundPolicy::new(false, &["10.0.0.0/40".to_owned()]).is_err());
        assert!(OutboundPolicy::new(false, &["bad host!".to_owned()]).is_err());
    }

    #[tokio::test]
    async fn names_are_judged_by_what_they_resolve_to() {
        let strict = OutboundPolicy::new(false, &[]).unwrap();
        let err = strict
            .check_url("http://localhost:8003/readyz")
            .await
            .unwrap_err();
        assert!(err.0.contains("localhost resolves to"), "{err}");
        assert!(err.0.contains("internal address"), "{err}");
        let err = strict
            .check_url("http://no-such-host.invalid/")
            .await
            .unwrap_err();
        assert!(err.0.contains("could not be resolved"), "{err}");
        let named = OutboundPolicy::new(false, &["LocalHost.".to_owned()]).unwrap();
        assert!(named.check_url("http://localhost:8003/").await.is_ok());
    }

    #[test]
    fn defaults_follow_the_environment() {
        let dev = OutboundPolicy::from_env(&Env::from_pairs::<_, &str, &str>([]), false).unwrap();
        assert!(dev.allow_private);
        let prod = OutboundPolicy::from_env(&Env::from_pairs::<_, &str, &str>([]), true).unwrap();
        assert!(!prod.allow_private);
        let off = OutboundPolicy::from_env(
            &Env::from_pairs([("VENDOR_URL_ALLOW_PRIVATE", "false")]),
            false,
        )
        .unwrap();
        assert!(!off.allow_private);
    }
}
