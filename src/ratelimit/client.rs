//! Who the client is, for rate limits, lockout and the audit log.
//!
//! The socket peer, unless the peer is a trusted proxy (`BULWARK_TRUSTED_PROXIES`, CIDRs):
//! then the right-most `X-Forwarded-For` entry that is not itself a trusted proxy. Entries
//! left of it were written by the client and prove nothing; an untrusted peer's header is
//! ignored entirely, so it cannot choose its own identity to dodge a limit.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use ipnet::IpNet;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromStr for TrustedProxies {
    type Err = String;

    /// `10.0.0.0/8, 192.168.1.7, fd00::/8`
    fn from_str(text: &str) -> Result<Self, String> {
        let mut nets = vec![];
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let net = part
                .parse::<IpNet>()
                .or_else(|_| part.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("`{part}` is not an IP address or CIDR"))?;
            nets.push(net);
        }
        Ok(TrustedProxies(nets))
    }
}

/// The part of a client address that names one client wherever an address is a key (rate
/// limits, the login throttle, signup throttling): the whole IPv4 address, and the first
/// `prefix` bits (default 64, `BULWARK_IPV6_PREFIX`) of an IPv6 address, because a single
/// subscriber is routed a whole /64 and picks any address of it at will. An IPv4-mapped IPv6
/// address counts as the IPv4 address it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientNet(IpNet);

impl ClientNet {
    pub fn of(ip: IpAddr, v6_prefix: u8) -> ClientNet {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let net = match ip {
            IpAddr::V4(v4) => IpNet::V4(ipnet::Ipv4Net::from(v4)),
            IpAddr::V6(v6) => {
                let prefix = v6_prefix.clamp(1, 128);
                ipnet::Ipv6Net::new(v6, prefix)
                    .map_or(IpNet::V6(ipnet::Ipv6Net::from(v6)), |n| IpNet::V6(n.trunc()))
            }
        };
        ClientNet(net)
    }

    /// For requests that arrived on no network (tests, CLI).
    pub const UNKNOWN: ClientNet =
        ClientNet(IpNet::V4(ipnet::Ipv4Net::new_assert(std::net::Ipv4Addr::UNSPECIFIED, 32)));
}

impl std::fmt::Display for ClientNet {
    /// `192.0.2.1` for IPv4, `2001:db8:1:2::/64` for IPv6.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpNet::V4(net) => net.addr().fmt(f),
            IpNet::V6(net) if net.prefix_len() == 128 => net.addr().fmt(f),
            IpNet::V6(net) => net.fmt(f),
        }
    }
}

/// Where a request came from, as Bulwark trusts it: the address (for the audit log) and the
/// network that keys limits. Set once per request by the outermost middleware.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress {
    pub ip: IpAddr,
    pub net: ClientNet,
}

/// The client address for a request from `peer` with these `X-Forwarded-For` values.
pub fn client_ip<'a>(
    peer: IpAddr,
    forwarded_for: impl IntoIterator<Item = &'a str>,
    trusted: &TrustedProxies,
) -> IpAddr {
    if !trusted.contains(peer) {
        return peer;
    }
    let hops: Vec<&str> =
        forwarded_for.into_iter().flat_map(|value| value.split(',')).map(str::trim).collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        match parse_hop(hop) {
            Some(ip) if trusted.contains(ip) => client = ip,
            Some(ip) => return ip,
            // A malformed entry ends the trusted part of the chain.
            None => return client,
        }
    }
    client
}

fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    hop.parse::<SocketAddr>().ok().map(|addr| addr.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn an_untrusted_peer_cannot_choose_its_address() {
        let trusted: TrustedProxies = "10.0.0.0/8".parse().expect("cidr");
        assert_eq!(client_ip(ip("203.0.113.9"), ["1.2.3.4"], &trusted), ip("203.0.113.9"));
        assert_eq!(client_ip(ip("203.0.113.9"), [], &TrustedProxies::default()), ip("203.0.113.9"));
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client() {
        let trusted: TrustedProxies = "10.0.0.0/8, 192.168.1.7".parse().expect("cidrs");
        // The client forged "6.6.6.6"; the proxy appended the real address.
        assert_eq!(
            client_ip(ip("10.0.0.2"), ["6.6.6.6, 198.51.100.4"], &trusted),
            ip("198.51.100.4")
        );
        assert_eq!(
            client_ip(ip("10.0.0.2"), ["6.6.6.6", "198.51.100.4, 192.168.1.7"], &trusted),
            ip("198.51.100.4")
        );
        assert_eq!(client_ip(ip("10.0.0.2"), ["198.51.100.4:5555"], &trusted), ip("198.51.100.4"));
        assert_eq!(client_ip(ip("10.0.0.2"), [], &trusted), ip("10.0.0.2"));
        assert_eq!(client_ip(ip("10.0.0.2"), ["garbage, 10.0.0.3"], &trusted), ip("10.0.0.3"));
    }

    #[test]
    fn an_ipv6_client_is_its_64_and_a_mapped_ipv4_is_its_ipv4() {
        let a = ClientNet::of(ip("2001:db8:1:2::1"), 64);
        let b = ClientNet::of(ip("2001:db8:1:2:ffff:1:2:3"), 64);
        let other = ClientNet::of(ip("2001:db8:1:3::1"), 64);
        assert_eq!(a, b, "one /64 is one client");
        assert_ne!(a, other);
        assert_eq!(a.to_string(), "2001:db8:1:2::/64");
        assert_eq!(ClientNet::of(ip("2001:db8:1:2::1"), 128).to_string(), "2001:db8:1:2::1");
        assert_eq!(ClientNet::of(ip("::ffff:192.0.2.7"), 64).to_string(), "192.0.2.7");
        assert_eq!(ClientNet::of(ip("192.0.2.7"), 64).to_string(), "192.0.2.7");
    }

    #[test]
    fn bad_proxy_lists_are_refused() {
        assert!("10.0.0.0/33".parse::<TrustedProxies>().is_err());
        assert!("localhost".parse::<TrustedProxies>().is_err());
        assert!("".parse::<TrustedProxies>().is_ok_and(|t| t.is_empty()));
    }
}
