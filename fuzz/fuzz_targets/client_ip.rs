//! Rate-limit key extraction: the client address from the peer and `X-Forwarded-For`. An
//! untrusted peer's header is ignored; otherwise the answer is the peer or one of the hops.
//!
//! A panic here (`assert!`, `expect`) is the finding: libFuzzer reports it as a crash and
//! keeps the input, so `expect` states a property, not an unhandled error.
#![no_main]

use std::net::{IpAddr, SocketAddr};

use arbitrary::Arbitrary;
use bulwark::ratelimit::client::{TrustedProxies, client_ip};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Address {
    V4([u8; 4]),
    V6([u8; 16]),
}

impl Address {
    fn ip(&self) -> IpAddr {
        match self {
            Address::V4(octets) => IpAddr::from(*octets),
            Address::V6(octets) => IpAddr::from(*octets),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Hop {
    Ip(Address),
    WithPort(Address, u16),
    Text(String),
}

#[derive(Arbitrary, Debug)]
struct Input {
    peer: Address,
    trust_peer: bool,
    trusted: Vec<(Address, u8)>,
    headers: Vec<Vec<Hop>>,
}

fn parses_to(hop: &str, ip: IpAddr) -> bool {
    hop.parse::<IpAddr>().ok() == Some(ip)
        || hop.parse::<SocketAddr>().ok().map(|a| a.ip()) == Some(ip)
}

fuzz_target!(|input: Input| {
    let peer = input.peer.ip();
    let mut nets: Vec<String> =
        input.trusted.iter().map(|(a, bits)| format!("{}/{}", a.ip(), bits % 129)).collect();
    if input.trust_peer {
        nets.push(peer.to_string());
    }
    let Ok(trusted) = nets.join(",").parse::<TrustedProxies>() else { return };
    let headers: Vec<String> = input
        .headers
        .iter()
        .map(|hops| {
            hops.iter()
                .map(|hop| match hop {
                    Hop::Ip(a) => a.ip().to_string(),
                    Hop::WithPort(a, port) => SocketAddr::new(a.ip(), *port).to_string(),
                    Hop::Text(text) => text.clone(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect();
    let ip = client_ip(peer, headers.iter().map(String::as_str), &trusted);
    if !trusted.contains(peer) {
        assert_eq!(ip, peer, "an untrusted peer chose its address");
        return;
    }
    let from_a_hop =
        headers.iter().flat_map(|h| h.split(',')).map(str::trim).any(|hop| parses_to(hop, ip));
    assert!(ip == peer || from_a_hop, "{ip} is neither the peer nor a hop");
});
