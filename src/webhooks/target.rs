//! Where a tenant's webhook may point (the SSRF guard). A subscription's URL is checked when
//! it is created or changed: `https://` outside development, no credentials in it, and a host
//! that is an IP literal must not be in a refused range. At delivery the host is resolved and
//! every address checked the same way, and the connection goes to the checked address, so a
//! DNS answer that changes between check and connect gets nowhere.
//!
//! Refused: loopback, private (RFC 1918), link-local (169.254/16 with the cloud metadata
//! address, fe80::/10), unique-local (fc00::/7), CGNAT (100.64/10), multicast, unspecified,
//! broadcast, documentation and benchmarking ranges, and IPv4 addresses mapped or
//! translated into IPv6 when their IPv4 form is refused. `BULWARK_WEBHOOK_ALLOW_PRIVATE` is
//! the only exception.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use url::Url;

/// The operator's exceptions: ranges a webhook may reach although they are private.
#[derive(Debug, Clone, Default)]
pub struct AllowPrivate(pub Vec<IpNet>);

impl std::str::FromStr for AllowPrivate {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        text.split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| part.parse::<IpNet>().map_err(|_| format!("`{part}` is not a CIDR")))
            .collect::<Result<Vec<_>, _>>()
            .map(AllowPrivate)
    }
}

impl AllowPrivate {
    fn allows(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }
}

fn refused_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // CGNAT, RFC 6598
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking, RFC 2544
        || a >= 240 // reserved
}

fn refused_v6(ip: Ipv6Addr) -> bool {
    // An IPv4 address carried in IPv6 (mapped ::ffff:a.b.c.d, or the NAT64 prefix) is judged
    // as the IPv4 address it reaches.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return refused_v4(v4);
    }
    let segments = ip.segments();
    let v4 = |high: u16, low: u16| {
        let [a, b] = high.to_be_bytes();
        let [c, d] = low.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    // NAT64, well-known (64:ff9b::/96) and local-use (64:ff9b:1::/48): the last 32 bits.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || segments[..3] == [0x64, 0xff9b, 1] {
        return refused_v4(v4(segments[6], segments[7]));
    }
    // 6to4 (2002::/16): the IPv4 address in bits 16-47.
    if segments[0] == 0x2002 {
        return refused_v4(v4(segments[1], segments[2]));
    }
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (segments[0] & 0xfe00) == 0xfc00 // unique local
        || (segments[0] & 0xffc0) == 0xfe80 // link local
        || (segments[0] == 0x2001 && segments[1] == 0x0db8) // documentation
        || segments[..5] == [0, 0, 0, 0, 0] // IPv4-compatible and other ::/80 forms
}

/// Whether a webhook may connect to `ip`.
pub fn reachable(ip: IpAddr, allow: &AllowPrivate) -> bool {
    if allow.allows(ip) {
        return true;
    }
    match ip {
        IpAddr::V4(v4) => !refused_v4(v4),
        IpAddr::V6(v6) => !refused_v6(v6),
    }
}

/// Checks a subscription's URL as written; the normalised URL, or why not (safe to show).
pub fn check_url(text: &str, https_only: bool, allow: &AllowPrivate) -> Result<Url, &'static str> {
    if text.len() > 2048 {
        return Err("must be at most 2048 characters");
    }
    let url = Url::parse(text.trim()).map_err(|_| "must be an absolute URL")?;
    match url.scheme() {
        "https" => {}
        "http" if !https_only => {}
        _ => return Err("must be https://"),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials");
    }
    if url.fragment().is_some() {
        return Err("must not have a fragment");
    }
    let ip = match url.host() {
        None => return Err("must name a host"),
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        Some(url::Host::Domain(name)) => {
            if name.eq_ignore_ascii_case("localhost") || name.ends_with(".localhost") {
                Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
            } else {
                None
            }
        }
    };
    if let Some(ip) = ip
        && !reachable(ip, allow)
    {
        return Err("must not point at a private, loopback or link-local address");
    }
    Ok(url)
}

/// The resolver of the webhook client: resolves a host once and refuses it unless every
/// address is one a webhook may reach. reqwest connects to exactly the addresses returned
/// here (the port comes from the URL), so there is no second lookup a rebinding DNS server
/// could answer differently. IP literals never reach a resolver: `deliverable` checks them.
struct Guarded {
    dns: crate::dns::Resolver,
    allow: AllowPrivate,
}

impl reqwest::dns::Resolve for Guarded {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let (dns, allow) = (self.dns.clone(), self.allow.clone());
        Box::pin(async move {
            let ips = dns.ips(name.as_str()).await?;
            if ips.is_empty() {
                return Err("the host has no address".into());
            }
            if ips.iter().any(|ip| !reachable(*ip, &allow)) {
                return Err(Refused.into());
            }
            let addrs: reqwest::dns::Addrs =
                Box::new(ips.into_iter().map(|ip| std::net::SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// A host resolved to an address a webhook may not reach.
#[derive(Debug, thiserror::Error)]
#[error("the host resolves to a private, loopback or link-local address")]
pub struct Refused;

/// The client every delivery goes through: the guarded resolver, no redirects followed, no
/// proxy from the environment (a proxy would connect where the guard never looked), and one
/// deadline for the whole attempt.
pub fn client(
    dns: crate::dns::Resolver,
    allow: AllowPrivate,
    timeout: std::time::Duration,
) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .dns_resolver(std::sync::Arc::new(Guarded { dns, allow }))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("Bulwark-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|err| format!("webhook client: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> bool {
        check_url(text, true, &AllowPrivate::default()).is_err()
    }

    #[test]
    fn inward_addresses_are_refused_and_the_allowlist_is_the_only_way_in() {
        for inward in [
            "https://127.0.0.1/hook",
            "https://10.0.0.1/hook",
            "https://172.16.5.4/hook",
            "https://192.168.1.1/hook",
            "https://169.254.169.254/latest/meta-data",
            "https://100.64.0.1/hook",
            "https://0.0.0.0/hook",
            "https://[::1]/hook",
            "https://[::ffff:127.0.0.1]/hook",
            "https://[::ffff:169.254.169.254]/hook",
            "https://[64:ff9b::a00:1]/hook",
            "https://[64:ff9b:1::a00:1]/hook",
            "https://[2002:7f00:1::1]/hook",
            "https://[2002:a9fe:a9fe::1]/hook",
            "https://[fd00::1]/hook",
            "https://[fe80::1]/hook",
            "https://[::]/hook",
            "https://localhost/hook",
            "https://api.localhost/hook",
            "https://224.0.0.1/hook",
        ] {
            assert!(refused(inward), "{inward}");
        }
        for outward in [
            "https://hooks.example.com/in",
            "https://93.184.216.34/in",
            "https://[2606:4700::1]/in",
        ] {
            assert!(!refused(outward), "{outward}");
        }
        // Outside development only https; never credentials.
        assert!(refused("http://hooks.example.com/in"));
        assert!(check_url("http://hooks.example.com/in", false, &AllowPrivate::default()).is_ok());
        assert!(refused("https://user:pass@hooks.example.com/in"));
        assert!(refused("ftp://hooks.example.com/in"));
        assert!(refused("/relative"));
        // The operator's allowlist, and nothing more.
        let allow: AllowPrivate = "127.0.0.0/8".parse().unwrap_or_default();
        assert!(check_url("https://127.0.0.1:8443/in", true, &allow).is_ok());
        assert!(check_url("https://10.0.0.1/in", true, &allow).is_err());
        assert!(!reachable(
            "::ffff:10.0.0.1".parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            &allow
        ));
        assert!("10.0.0.0/8, nonsense".parse::<AllowPrivate>().is_err());
    }
}
