//! Which webhook addresses are off limits unless private webhooks are allowed: one pure
//! classification, used by ingest when a subscription is created and by the consumer when it
//! connects (where every address a host name resolves to is checked).
//!
//! An address is refused when it reaches this host, a private or shared network, a cloud metadata
//! service, or a range that translates or tunnels to one of those: loopback, RFC 1918 and unique
//! local, link-local (with the metadata services `169.254.169.254` and `fd00:ec2::254`), CGNAT
//! `100.64.0.0/10`, unspecified, broadcast, multicast, `0.0.0.0/8`, benchmarking `198.18.0.0/15`,
//! reserved `240.0.0.0/4`, the IETF protocol block `192.0.0.0/24`, NAT64 `64:ff9b::/96` (and the
//! local-use `64:ff9b:1::/48`), 6to4 `2002::/16`, Teredo `2001::/32`, site-local `fec0::/10`, and
//! IPv4-mapped or IPv4-compatible IPv6 forms of any refused IPv4 address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether `host` (as written in a URL) is known to be off limits without resolving it: a literal
/// address that [`is_forbidden_ip`] refuses, or a name every resolver maps to loopback
/// (`localhost`, `*.localhost`, `localhost.localdomain`, `ip6-localhost`, `ip6-loopback`).
///
/// Every spelling a resolver accepts for a literal address counts: brackets, a trailing dot, IPv4
/// inside IPv6 (`::ffff:127.0.0.1`) and the legacy IPv4 forms (`2130706433`, `0x7f.1`,
/// `0177.0.0.1`, `127.1`) all reach the same address. Other names can only be judged by the
/// addresses they resolve to, at connection time.
pub fn is_private_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    let host = host.strip_suffix('.').unwrap_or(&host);
    if matches!(host, "localhost" | "localhost.localdomain" | "ip6-localhost" | "ip6-loopback")
        || host.ends_with(".localhost")
    {
        return true;
    }
    literal_ip(host).is_some_and(is_forbidden_ip)
}

/// The address `host` names literally (in any spelling a resolver accepts), if it is one.
pub fn literal_ip(host: &str) -> Option<IpAddr> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = host.strip_suffix('.').unwrap_or(host);
    host.parse::<IpAddr>().ok().or_else(|| legacy_ipv4(&host.to_ascii_lowercase()).map(IpAddr::V4))
}

/// Whether a webhook may not connect to `ip` unless private webhooks are allowed.
pub fn is_forbidden_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_forbidden_ipv4(ip),
        IpAddr::V6(ip) => is_forbidden_ipv6(ip),
    }
}

fn is_forbidden_ipv4(ip: Ipv4Addr) -> bool {
    let [first, second, third, _] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        // 0.0.0.0/8 reaches the local host on Linux.
        || first == 0
        // 100.64.0.0/10, shared address space (CGNAT); some clouds serve metadata there.
        || (first == 100 && (64..128).contains(&second))
        // 198.18.0.0/15, benchmarking; routed inside some networks.
        || (first == 198 && (18..20).contains(&second))
        // 192.0.0.0/24, IETF protocol assignments (DS-Lite, NAT64 discovery).
        || (first == 192 && second == 0 && third == 0)
        // 240.0.0.0/4, reserved.
        || first >= 240
}

fn is_forbidden_ipv6(ip: Ipv6Addr) -> bool {
    // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d) addresses reach the IPv4
    // address inside; `::1` and `::` land here too, as 0.0.0.1 and 0.0.0.0.
    if let Some(inner) = ip.to_ipv4() {
        return is_forbidden_ipv4(inner);
    }
    let segments = ip.segments();
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // fc00::/7, unique local (holds the metadata service fd00:ec2::254).
        || (segments[0] & 0xfe00) == 0xfc00
        // fe80::/10, link-local; fec0::/10, the deprecated site-local.
        || (segments[0] & 0xffc0) == 0xfe80
        || (segments[0] & 0xffc0) == 0xfec0
        // 64:ff9b::/96 and 64:ff9b:1::/48, NAT64: translated to any IPv4 address.
        || (segments[0] == 0x64 && segments[1] == 0xff9b && (segments[2..6] == [0; 4] || segments[2] == 1))
        // 2002::/16, 6to4, and 2001::/32, Teredo: tunnelled to an IPv4 address.
        || segments[0] == 0x2002
        || (segments[0] == 0x2001 && segments[1] == 0)
}

/// The IPv4 address `text` names in the forms `inet_aton` (and so most resolvers) still accept:
/// one to four parts, each decimal, octal (leading `0`) or hex (`0x`), the last filling the bytes
/// that remain.
pub fn legacy_ipv4(text: &str) -> Option<Ipv4Addr> {
    let parts = text.split('.').map(legacy_part).collect::<Option<Vec<u32>>>()?;
    let (last, leading) = parts.split_last()?;
    if leading.len() > 3 || leading.iter().any(|part| *part > 255) {
        return None;
    }
    let remaining_bits = 32 - 8 * leading.len() as u32;
    if remaining_bits < 32 && *last >= 1 << remaining_bits {
        return None;
    }
    let address = leading.iter().enumerate().fold(*last, |address, (i, part)| address | part << (24 - 8 * i as u32));
    Some(Ipv4Addr::from(address))
}

fn legacy_part(part: &str) -> Option<u32> {
    let (digits, radix) = match part.strip_prefix("0x") {
        Some(hex) => (hex, 16),
        None if part.len() > 1 && part.starts_with('0') => (&part[1..], 8),
        None => (part, 10),
    };
    // from_str_radix would take a sign; an address part has none.
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u32::from_str_radix(digits, radix).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_ipv4_forms_name_the_address_a_resolver_would_reach() {
        let loopback = Some(Ipv4Addr::LOCALHOST);
        for text in ["2130706433", "0x7f000001", "0x7f.1", "0177.0.0.1", "127.1", "127.0.1", "127.0.0.1"] {
            assert_eq!(legacy_ipv4(text), loopback, "{text}");
        }
        for text in ["", "example", "1..2", "256.0.0.1", "1.2.3.4.5", "08.0.0.1", "0x", "+1", "1.2.3.256", "1.16777216"]
        {
            assert_eq!(legacy_ipv4(text), None, "{text}");
        }
    }

    #[test]
    fn private_hosts_are_recognised_in_every_literal_spelling() {
        for host in [
            "localhost.",
            "LOCALHOST.localdomain",
            "api.localhost",
            "ip6-localhost",
            "[::ffff:7f00:1]",
            "[::ffff:169.254.169.254]",
            "100.64.0.1",
            "0.1.2.3",
            "017700000001",
            "[fd00:ec2::254]",
        ] {
            assert!(is_private_host(host), "{host}");
        }
        for host in
            ["example.com", "8.8.8.8", "[2606:4700:4700::1111]", "100.128.0.1", "1e100.net", "localhost.example"]
        {
            assert!(!is_private_host(host), "{host}");
        }
    }

    #[test]
    fn every_refused_range_is_refused_at_its_edges_and_its_neighbours_are_not() {
        let refused = [
            "127.0.0.1",
            "127.255.255.255",
            "10.0.0.0",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.0.1",
            "169.254.0.1",
            "169.254.169.254",
            "100.64.0.0",
            "100.127.255.255",
            "0.0.0.0",
            "0.255.255.255",
            "224.0.0.1",
            "239.255.255.255",
            "240.0.0.1",
            "255.255.255.255",
            "198.18.0.0",
            "198.19.255.255",
            "192.0.0.8",
            "::1",
            "::",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "fc00::1",
            "fdff::1",
            "fd00:ec2::254",
            "ff02::1",
            "64:ff9b::808:808",
            "64:ff9b::7f00:1",
            "64:ff9b:1::1",
            "2002:7f00:1::",
            "2002:808:808::1",
            "2001:0:4136:e378::1",
            "::ffff:10.0.0.1",
            "::ffff:198.18.0.1",
            "::ffff:240.0.0.1",
            "::127.0.0.1",
            "::ffff:100.64.0.1",
        ];
        for text in refused {
            let ip: IpAddr = text.parse().unwrap();
            assert!(is_forbidden_ip(ip), "{text} must be refused");
        }
        let allowed = [
            "8.8.8.8",
            "1.1.1.1",
            "11.0.0.1",
            "172.15.255.255",
            "172.32.0.0",
            "192.169.0.1",
            "169.253.255.255",
            "100.63.255.255",
            "100.128.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "192.0.1.1",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
            "2001:1::1",
            "64:ff9a::1",
            "64:ff9b:2::1",
            "2003::1",
            "::ffff:8.8.8.8",
        ];
        for text in allowed {
            let ip: IpAddr = text.parse().unwrap();
            assert!(!is_forbidden_ip(ip), "{text} must be allowed");
        }
    }

    #[test]
    fn literal_ips_are_read_in_every_spelling() {
        assert_eq!(literal_ip("[::1]"), Some("::1".parse().unwrap()));
        assert_eq!(literal_ip("127.1."), Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert_eq!(literal_ip("0X7F.1"), Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert_eq!(literal_ip("example.com"), None);
    }
}
