//! DNS through the configured resolver (`BULWARK_DNS_RESOLVER`) or the system's: TXT
//! lookups that verify sending domains, and the addresses of a webhook's host (which the SSRF
//! guard checks before the connection goes to exactly those addresses).

use std::net::{IpAddr, SocketAddr};

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;

#[derive(Clone)]
pub struct Resolver(Option<TokioResolver>);

impl Resolver {
    pub fn new(server: Option<SocketAddr>) -> Resolver {
        let built = match server {
            Some(addr) => {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                let server = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
                let config = ResolverConfig::from_name_servers(vec![server]);
                let mut builder =
                    TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
                uncached(builder.options_mut());
                builder.build()
            }
            None => TokioResolver::builder_tokio().and_then(|mut builder| {
                uncached(builder.options_mut());
                builder.build()
            }),
        };
        match built {
            Ok(resolver) => Resolver(Some(resolver)),
            Err(err) => {
                tracing::warn!(error = %err, "no DNS resolver: domain checks will find nothing");
                Resolver(None)
            }
        }
    }

    /// The TXT values at `name` (each record's strings joined); none when the name does not
    /// resolve or the resolver fails (a check then reads as not yet published).
    pub async fn txt(&self, name: &str) -> Vec<String> {
        let Some(resolver) = &self.0 else { return vec![] };
        // A fully qualified name: no search domains appended.
        match resolver.txt_lookup(format!("{name}.")).await {
            Ok(lookup) => lookup
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    RData::TXT(txt) => Some(
                        txt.txt_data.iter().map(|part| String::from_utf8_lossy(part)).collect(),
                    ),
                    _ => None,
                })
                .collect(),
            Err(err) => {
                tracing::debug!(error = %err, "TXT lookup found nothing");
                vec![]
            }
        }
    }

    /// Every address of `name` (A and AAAA), or why there is none.
    pub async fn ips(&self, name: &str) -> Result<Vec<IpAddr>, String> {
        let Some(resolver) = &self.0 else { return Err("no DNS resolver".into()) };
        let fqdn = if name.ends_with('.') { name.to_owned() } else { format!("{name}.") };
        match resolver.lookup_ip(fqdn).await {
            Ok(lookup) => Ok(lookup.iter().collect()),
            Err(err) => Err(format!("{name} does not resolve: {err}")),
        }
    }
}

/// Every lookup asks the resolver afresh: a sending domain's owner publishes a record and
/// checks again, and an answer this process kept from the last check (a missing record, or
/// the value before the change) would keep failing them for the record's TTL. The resolver
/// the lookups go to keeps its own cache; webhook deliveries resolve once per attempt anyway.
fn uncached(options: &mut hickory_resolver::config::ResolverOpts) {
    options.positive_max_ttl = Some(std::time::Duration::ZERO);
    options.negative_max_ttl = Some(std::time::Duration::ZERO);
}
