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
    fn bad_proxy_lists_are_refused() {
        assert!("10.0.0.0/33".parse::<TrustedProxies>().is_err());
        assert!("localhost".parse::<TrustedProxies>().is_err());
        assert!("".parse::<TrustedProxies>().is_ok_and(|t| t.is_empty()));
    }
}
