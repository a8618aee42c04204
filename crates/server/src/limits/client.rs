//! Which address an anonymous request comes from, for its throttling bucket. The TCP peer,
//! unless the peer is one of `limits.trusted_proxies`: then the address the proxy recorded in
//! `limits.trusted_proxy_header`, read `limits.trusted_proxy_hops` entries from the right. Proxies
//! (nginx, ALBs, Envoy) append the address they saw, so everything left of what our own proxies
//! wrote is the client's to invent, and the first entry, which earlier builds took, let every
//! request claim a fresh bucket.
//!
//! Buckets are per IPv4 address and per IPv6 /64 (one customer's allocation; per /128 a single
//! host could use 2^64 buckets); IPv4-mapped IPv6 addresses count as IPv4.
use axum::http::{HeaderMap, HeaderName};
use ipnet::IpNet;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

pub(crate) struct ClientAddress {
    header: Option<HeaderName>,
    proxies: Vec<IpNet>,
    hops: usize,
}

/// A CIDR (`10.0.0.0/8`, `2001:db8::/32`) or a single address.
pub(crate) fn parse_net(text: &str) -> Result<IpNet, String> {
    let t = text.trim();
    t.parse::<IpNet>()
        .or_else(|_| t.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("limits.trusted_proxies: {t:?} is not an address or a CIDR"))
}

impl ClientAddress {
    /// Settings were checked at load (`config::Settings::check`), so nothing here fails.
    pub(crate) fn new(settings: &super::LimitsSettings) -> Self {
        let header = settings.trusted_proxy_header.trim();
        Self {
            header: (!header.is_empty())
                .then(|| HeaderName::try_from(header.to_ascii_lowercase()).ok())
                .flatten(),
            proxies: settings
                .trusted_proxies
                .iter()
                .filter_map(|p| parse_net(p).ok())
                .collect(),
            hops: settings.trusted_proxy_hops.max(1),
        }
    }

    /// The client's address: the peer's, or what a trusted proxy recorded.
    pub(crate) fn of(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> Option<IpAddr> {
        let peer = peer.map(|p| canonical(p.ip()));
        let (Some(header), Some(ip)) = (&self.header, peer) else {
            return peer;
        };
        if !self.proxies.iter().any(|net| net.contains(&ip)) {
            return peer;
        }
        let forwarded = header == "forwarded";
        let entries: Vec<Option<IpAddr>> = headers
            .get_all(header)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|entry| {
                if forwarded {
                    forwarded_for(entry)
                } else {
                    address(entry)
                }
            })
            .collect();
        // Fewer entries than hops: the leftmost is still one a proxy of ours wrote.
        let index = entries.len().saturating_sub(self.hops);
        entries
            .get(index)
            .copied()
            .flatten()
            .map(canonical)
            .or(peer)
    }
}

/// `for=` of one `Forwarded` element (RFC 7239): `for=192.0.2.60`, `for="[2001:db8::1]:4711"`.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element
        .split(';')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
        .and_then(|(_, v)| address(v))
}

/// An address as proxies write it: bare, bracketed IPv6, with or without a port, quoted.
fn address(text: &str) -> Option<IpAddr> {
    let t = text.trim().trim_matches('"');
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = t.strip_prefix('[') {
        return rest.split(']').next().and_then(|ip| ip.parse().ok());
    }
    t.parse::<SocketAddr>().ok().map(|s| s.ip())
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The bucket of an address: the IPv4 address, or the IPv6 /64.
pub(crate) fn bucket_key(ip: Option<IpAddr>) -> String {
    match ip {
        None => "ip:unknown".to_owned(),
        Some(IpAddr::V4(v4)) => format!("ip:{v4}"),
        Some(IpAddr::V6(v6)) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            format!("ip:{}/64", Ipv6Addr::from(prefix))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn client(header: &str, proxies: &[&str], hops: usize) -> ClientAddress {
        let mut settings = crate::config::Settings::load(Default::default())
            .expect("settings")
            .limits;
        settings.trusted_proxy_header = header.into();
        settings.trusted_proxies = proxies.iter().map(|p| (*p).to_owned()).collect();
        settings.trusted_proxy_hops = hops;
        ClientAddress::new(&settings)
    }

    fn peer(ip: &str) -> Option<SocketAddr> {
        Some(SocketAddr::new(ip.parse().expect("ip"), 40000))
    }

    fn headers(name: &'static str, values: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(name, HeaderValue::from_static(v));
        }
        h
    }

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    #[test]
    fn the_entry_our_proxy_wrote_counts_not_what_the_client_prepended() {
        let c = client("x-forwarded-for", &["10.0.0.0/8"], 1);
        let h = headers("x-forwarded-for", &["6.6.6.6, 203.0.113.9"]);
        assert_eq!(c.of(&h, peer("10.1.2.3")), ip("203.0.113.9"));
        // Two proxies (a CDN, then the balancer): two hops from the right.
        let c2 = client("x-forwarded-for", &["10.0.0.0/8"], 2);
        let h = headers("x-forwarded-for", &["6.6.6.6", "203.0.113.9, 198.51.100.7"]);
        assert_eq!(c2.of(&h, peer("10.1.2.3")), ip("203.0.113.9"));
    }

    #[test]
    fn the_header_is_ignored_from_a_peer_that_is_not_a_trusted_proxy() {
        let c = client("x-forwarded-for", &["10.0.0.0/8"], 1);
        let h = headers("x-forwarded-for", &["203.0.113.9"]);
        assert_eq!(c.of(&h, peer("198.51.100.1")), ip("198.51.100.1"));
        // No header at all, or garbage, from a proxy: the proxy's own address.
        assert_eq!(c.of(&HeaderMap::new(), peer("10.0.0.1")), ip("10.0.0.1"));
        let h = headers("x-forwarded-for", &["not an address"]);
        assert_eq!(c.of(&h, peer("10.0.0.1")), ip("10.0.0.1"));
    }

    #[test]
    fn forwarded_and_x_real_ip_are_read_as_proxies_write_them() {
        let c = client("Forwarded", &["127.0.0.1"], 1);
        let h = headers(
            "forwarded",
            &["for=6.6.6.6, for=\"[2001:db8:cafe::17]:4711\";proto=https"],
        );
        assert_eq!(c.of(&h, peer("127.0.0.1")), ip("2001:db8:cafe::17"));
        let c = client("x-real-ip", &["127.0.0.1/32"], 1);
        let h = headers("x-real-ip", &["192.0.2.44:5000"]);
        assert_eq!(c.of(&h, peer("127.0.0.1")), ip("192.0.2.44"));
    }

    #[test]
    fn ipv6_buckets_are_per_64_and_mapped_ipv4_is_ipv4() {
        assert_eq!(
            bucket_key(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            "ip:2001:db8:1:2::/64"
        );
        assert_eq!(
            bucket_key(ip("2001:db8:1:2::1")),
            bucket_key(ip("2001:db8:1:2:ffff::9"))
        );
        let c = client("", &[], 1);
        assert_eq!(
            bucket_key(c.of(&HeaderMap::new(), peer("::ffff:192.0.2.1"))),
            "ip:192.0.2.1"
        );
    }
}
