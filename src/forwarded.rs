//! Requests relayed by a reverse proxy or load balancer (`serve --trusted-proxy`).
//!
//! Behind a proxy that terminates TLS, every connection comes from the proxy, over plain HTTP: without
//! its `X-Forwarded-*` headers, pagination links would say `http://` and name the proxy's upstream
//! host, and per-address throttling would count every client as one. Those headers are believed only
//! from the proxies named, since anyone else could send them to pose as another address.

use std::net::IpAddr;

use axum::http::{HeaderMap, HeaderValue, header};
use ipnet::IpNet;

/// The addresses whose `X-Forwarded-*` headers are believed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Trusts these networks.
    pub fn new(networks: Vec<IpNet>) -> TrustedProxies {
        TrustedProxies(networks)
    }

    /// An address (`10.0.0.5`) or a network (`10.0.0.0/8`), as given to `--trusted-proxy`.
    pub fn parse_network(value: &str) -> Result<IpNet, String> {
        let value = value.trim();
        value
            .parse::<IpNet>()
            .or_else(|_| value.parse::<IpAddr>().map(IpNet::from))
            .map_err(|_| format!("{value:?} is neither an IP address nor a network such as 10.0.0.0/8"))
    }

    /// Whether `address` (IPv4-mapped IPv6 included) is a trusted proxy.
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.0.iter().any(|network| network.contains(&address))
    }
}

/// What a trusted proxy says about the request it relays.
#[derive(Debug, PartialEq, Eq)]
pub struct Origin {
    /// The client: the nearest address in `X-Forwarded-For` that is not itself a trusted proxy.
    pub client: IpAddr,
    /// `X-Forwarded-Proto`, when it is `http` or `https`.
    pub scheme: Option<&'static str>,
    /// `X-Forwarded-Host`, when it is a valid Host value.
    pub host: Option<HeaderValue>,
}

/// The origin of a request from `peer`, or `None` if `peer` is not a trusted proxy.
pub fn resolve(trusted: &TrustedProxies, peer: IpAddr, headers: &HeaderMap) -> Option<Origin> {
    if !trusted.contains(peer) {
        return None;
    }
    // Each proxy appends the address it received from, so the list is read from the right; the first
    // address no trusted proxy claims is the client. Anything left of it was written by the client.
    let mut client = peer;
    let hops = headers.get_all("x-forwarded-for").iter().filter_map(|value| value.to_str().ok());
    let mut addresses: Vec<&str> = hops.flat_map(|value| value.split(',')).collect();
    while let Some(hop) = addresses.pop() {
        let Ok(address) = hop.trim().parse::<IpAddr>() else { break };
        client = address.to_canonical();
        if !trusted.contains(client) {
            break;
        }
    }
    let first_value = |name: &str| {
        headers.get(name).and_then(|value| value.to_str().ok()).and_then(|value| value.split(',').next()).map(str::trim)
    };
    let scheme = first_value("x-forwarded-proto").and_then(|proto| match proto.to_ascii_lowercase().as_str() {
        "https" => Some("https"),
        "http" => Some("http"),
        _ => None,
    });
    let host = first_value("x-forwarded-host")
        .filter(|host| !host.is_empty() && host.parse::<axum::http::uri::Authority>().is_ok())
        .and_then(|host| HeaderValue::from_str(host).ok());
    Some(Origin { client, scheme, host })
}

/// Applies an origin to the request's headers: the forwarded host becomes its Host.
pub fn apply_host(origin: &Origin, headers: &mut HeaderMap) {
    if let Some(host) = &origin.host {
        headers.insert(header::HOST, host.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(networks: &[&str]) -> TrustedProxies {
        TrustedProxies::new(networks.iter().map(|n| TrustedProxies::parse_network(n).unwrap()).collect())
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn ip(address: &str) -> IpAddr {
        address.parse().unwrap()
    }

    #[test]
    fn networks_and_bare_addresses_parse() {
        assert!(trusted(&["10.0.0.0/8"]).contains(ip("10.1.2.3")));
        assert!(trusted(&["192.0.2.7"]).contains(ip("192.0.2.7")));
        assert!(!trusted(&["192.0.2.7"]).contains(ip("192.0.2.8")));
        assert!(trusted(&["127.0.0.1"]).contains(ip("::ffff:127.0.0.1")), "IPv4-mapped IPv6 is the same address");
        assert!(trusted(&["::1"]).contains(ip("::1")));
        assert!(TrustedProxies::parse_network("proxy.local").unwrap_err().contains("proxy.local"));
    }

    #[test]
    fn only_trusted_peers_are_believed() {
        let forwarded = headers(&[("x-forwarded-for", "203.0.113.9"), ("x-forwarded-proto", "https")]);
        assert_eq!(resolve(&trusted(&["10.0.0.1"]), ip("10.0.0.2"), &forwarded), None);
        assert_eq!(resolve(&TrustedProxies::default(), ip("10.0.0.1"), &forwarded), None);
        let origin = resolve(&trusted(&["10.0.0.1"]), ip("10.0.0.1"), &forwarded).unwrap();
        assert_eq!(origin, Origin { client: ip("203.0.113.9"), scheme: Some("https"), host: None });
    }

    #[test]
    fn the_client_is_the_nearest_untrusted_hop() {
        let proxies = trusted(&["10.0.0.0/8"]);
        // The client wrote the first address itself; two proxies of ours appended the rest.
        let chain = headers(&[("x-forwarded-for", "198.51.100.1, 203.0.113.9"), ("x-forwarded-for", "10.0.0.7")]);
        assert_eq!(resolve(&proxies, ip("10.0.0.1"), &chain).unwrap().client, ip("203.0.113.9"));
        // Only trusted hops: the farthest one is as near the client as is known.
        let internal = headers(&[("x-forwarded-for", "10.0.0.9, 10.0.0.7")]);
        assert_eq!(resolve(&proxies, ip("10.0.0.1"), &internal).unwrap().client, ip("10.0.0.9"));
        // Garbage stops the walk: the last address that parsed stands.
        let garbage = headers(&[("x-forwarded-for", "203.0.113.9, not-an-ip, 10.0.0.7")]);
        assert_eq!(resolve(&proxies, ip("10.0.0.1"), &garbage).unwrap().client, ip("10.0.0.7"));
        // No header: the proxy itself.
        assert_eq!(resolve(&proxies, ip("10.0.0.1"), &HeaderMap::new()).unwrap().client, ip("10.0.0.1"));
    }

    #[test]
    fn scheme_and_host_are_taken_only_when_valid() {
        let proxies = trusted(&["10.0.0.1"]);
        let origin = |pairs: &[(&'static str, &str)]| resolve(&proxies, ip("10.0.0.1"), &headers(pairs)).unwrap();
        assert_eq!(origin(&[("x-forwarded-proto", "HTTPS, http")]).scheme, Some("https"));
        assert_eq!(origin(&[("x-forwarded-proto", "gopher")]).scheme, None);
        let host = origin(&[("x-forwarded-host", "footfall.example.com:8443")]).host.unwrap();
        assert_eq!(host, "footfall.example.com:8443");
        assert_eq!(origin(&[("x-forwarded-host", "bad host/")]).host, None);
    }
}
