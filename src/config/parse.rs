//! The parsers of setting values: each returns the value or the reason it is refused
//! (never echoing a secret).

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use url::Url;

use super::{MIN_SECRET_BYTES, MasterKey, Profile};
use crate::crypto::Secret;

pub(super) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub(super) fn parse_profile(value: &str) -> Result<Profile, String> {
    match value {
        "development" => Ok(Profile::Development),
        "staging" => Ok(Profile::Staging),
        "production" => Ok(Profile::Production),
        _ => Err("must be development, staging or production".into()),
    }
}

pub(super) fn parse_addr(value: &str) -> Result<SocketAddr, String> {
    value.parse().map_err(|_| format!("`{value}` is not an ip:port address"))
}

pub(super) fn parse_optional_addr(value: &str) -> Result<Option<SocketAddr>, String> {
    if value == "off" { Ok(None) } else { parse_addr(value).map(Some) }
}

pub(super) fn parse_public_url(value: &str) -> Result<Url, String> {
    let url = Url::parse(value).map_err(|_| format!("`{value}` is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err("must be an http:// or https:// URL with a host".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not carry a query or fragment".into());
    }
    Ok(url)
}

pub fn parse_switch(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "on" | "true" | "1" | "yes" => Ok(true),
        "off" | "false" | "0" | "no" => Ok(false),
        _ => Err("must be on or off".into()),
    }
}

pub(super) fn parse_signup(value: &str) -> Result<bool, String> {
    match value {
        "open" => Ok(true),
        "closed" => Ok(false),
        _ => Err("must be open or closed".into()),
    }
}

pub(super) fn parse_range(value: &str, min: u32, max: u32) -> Result<u32, String> {
    match value.parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("must be a whole number from {min} to {max}")),
    }
}

pub(super) fn parse_workers(value: &str) -> Result<usize, String> {
    if value == "auto" {
        return Ok(std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)));
    }
    parse_range(value, 1, 256).map(|n| n as usize)
}

pub(super) fn parse_u64(value: &str) -> Result<u64, String> {
    value.parse().map_err(|_| "must be a whole number".into())
}

pub(super) fn parse_pool_size(value: &str) -> Result<u32, String> {
    match value.parse::<u32>() {
        Ok(n) if (1..=1000).contains(&n) => Ok(n),
        _ => Err("must be between 1 and 1000".into()),
    }
}

pub(super) fn parse_pooler(value: &str) -> Result<super::Pooler, String> {
    match value {
        "none" => Ok(super::Pooler::None),
        "transaction" => Ok(super::Pooler::Transaction),
        _ => Err("must be `none` or `transaction`".into()),
    }
}

pub(super) fn parse_body_limit(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if (1024..=(1 << 30)).contains(&n) => Ok(n),
        _ => Err("must be a number of bytes between 1024 and 1073741824".into()),
    }
}

/// `30s`, `500ms`, `2m`, `1h`, or a bare number of seconds.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let split = value.find(|c: char| !c.is_ascii_digit()).unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let n: u64 = number.parse().map_err(|_| format!("`{value}` is not a duration like 30s"))?;
    let duration = match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        "d" => Duration::from_secs(n.saturating_mul(86_400)),
        _ => return Err(format!("`{value}`: the unit must be ms, s, m, h or d")),
    };
    if duration.is_zero() {
        return Err("must be longer than zero".into());
    }
    Ok(duration)
}

pub(super) fn parse_retention(value: &str) -> Result<Option<Duration>, String> {
    if value == "off" { Ok(None) } else { parse_duration(value).map(Some) }
}

pub(super) fn parse_xss(value: &str) -> Result<&'static str, String> {
    match value {
        "0" => Ok("0"),
        "1; mode=block" | "1;mode=block" => Ok("1; mode=block"),
        _ => Err("must be `0` or `1; mode=block`".into()),
    }
}

pub(super) fn parse_origins(value: &str) -> Result<Vec<String>, String> {
    let mut origins = vec![];
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if part.contains('*') {
            return Err(
                "`*` is refused: credentials are allowed for listed origins, so every origin must be named"
                    .into(),
            );
        }
        let url = Url::parse(part).map_err(|_| format!("`{part}` is not an origin"))?;
        let origin = url.origin().ascii_serialization();
        if !matches!(url.scheme(), "http" | "https") || origin != part.trim_end_matches('/') {
            return Err(format!("`{part}` is not an origin like https://app.example.com"));
        }
        origins.push(origin);
    }
    Ok(origins)
}

pub(super) fn parse_redis_url(value: &str) -> Result<(), String> {
    if value.starts_with("redis://") || value.starts_with("rediss://") {
        Url::parse(value).map(|_| ()).map_err(|_| "is not a valid URL".into())
    } else {
        Err("must start with redis:// or rediss://".into())
    }
}

pub fn parse_master_keys(value: &str) -> Result<Vec<MasterKey>, String> {
    let mut keys: Vec<MasterKey> = vec![];
    for (index, part) in value.split(',').map(str::trim).enumerate() {
        let n = index + 1;
        let (id, encoded) =
            part.split_once(':').ok_or_else(|| format!("entry {n} is not `id:base64-32-bytes`"))?;
        if id.is_empty()
            || id.len() > 32
            || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!("entry {n}: the id must be 1-32 letters, digits, - or _"));
        }
        if keys.iter().any(|k| k.id == id) {
            return Err(format!("entry {n}: the id `{id}` is used twice"));
        }
        let bytes = zeroize::Zeroizing::new(
            BASE64
                .decode(encoded)
                .map_err(|_| format!("entry {n} (`{id}`): the key is not valid base64"))?,
        );
        let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            format!("entry {n} (`{id}`): the key must be exactly {MIN_SECRET_BYTES} bytes")
        })?;
        keys.push(MasterKey { id: id.to_owned(), key: Secret::new(key) });
    }
    Ok(keys)
}

/// Shannon entropy of the byte frequencies, times the length: an upper estimate of a
/// secret's entropy that is low for repetitive text.
pub(super) fn estimated_entropy_bits(bytes: &[u8]) -> f64 {
    let mut counts = [0u32; 256];
    for b in bytes {
        counts[usize::from(*b)] += 1;
    }
    let n = bytes.len() as f64;
    let per_byte: f64 = counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = f64::from(*c) / n;
            -p * p.log2()
        })
        .sum();
    per_byte * n
}

/// Whether `host` is this machine: loopback addresses, `localhost`, or a Unix socket path.
fn is_local_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.is_empty()
        || host.starts_with('/')
        || host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A PostgreSQL URL to another machine must verify the server's certificate and name
/// (`sslmode=verify-full`): anything less lets whoever sits on the path read every row.
pub(super) fn remote_postgres_is_verified(url: &str) -> Result<(), String> {
    let parsed = Url::parse(url).map_err(|_| "is not a valid URL".to_owned())?;
    let mut hosts: Vec<String> = parsed.host_str().map(str::to_owned).into_iter().collect();
    let mut sslmode = None;
    for (key, value) in parsed.query_pairs() {
        match key.as_ref() {
            "host" => hosts.push(value.into_owned()),
            "sslmode" => sslmode = Some(value.into_owned()),
            _ => {}
        }
    }
    if hosts.iter().all(|h| is_local_host(h)) || sslmode.as_deref() == Some("verify-full") {
        Ok(())
    } else {
        Err("a server on another machine needs `?sslmode=verify-full` (and `sslrootcert=` for a private CA)".into())
    }
}

/// A Redis URL to another machine must use TLS (`rediss://`): session revocations and
/// lockout counters travel over it.
pub(super) fn remote_redis_is_tls(url: &str) -> Result<(), String> {
    let parsed = Url::parse(url).map_err(|_| "is not a valid URL".to_owned())?;
    if parsed.scheme() == "rediss" || parsed.host_str().is_none_or(is_local_host) {
        Ok(())
    } else {
        Err("a server on another machine needs TLS: use rediss://".into())
    }
}

/// Every reason the configuration cannot be used, in one list.
#[derive(Debug)]
pub struct ConfigProblems(pub Vec<String>);

impl std::fmt::Display for ConfigProblems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "the configuration has {} problem(s):", self.0.len())?;
        for problem in &self.0 {
            writeln!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigProblems {}
