//! Where a webhook may go (SSRF): an endpoint's URL is `https` with a host
//! and no credentials, at most [`MAX_URL`] characters; every address its
//! host resolves to must be a public unicast one — never private, shared
//! (CGNAT), loopback, link-local (so never the instance metadata address),
//! multicast, broadcast, unspecified, documentation or reserved, IPv4
//! inside IPv6 judged as the IPv4 it carries (mapped `::ffff:a.b.c.d` and
//! 6to4 `2002:AABB:CCDD::/48`); Teredo (2001::/32, two IPv4 addresses in
//! one) never. Loopback alone may be
//! allowed (`WebhookAllowLoopback`, for the local stack and tests; off in
//! the template). Redirects are never followed (the HTTP client's part).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const MAX_URL: usize = 2048;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlRefusal {
    TooLong,
    NotAUrl,
    NotHttps,
    Credentials,
    NoHost,
}

impl UrlRefusal {
    pub fn describe(self) -> &'static str {
        match self {
            Self::TooLong => "url: at most 2048 characters",
            Self::NotAUrl => "url: not an absolute URL",
            Self::NotHttps => "url: https only",
            Self::Credentials => "url: no user or password in it",
            Self::NoHost => "url: a host name or address",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressRefusal {
    Private,
    Loopback,
    LinkLocal,
    Multicast,
    Unspecified,
    Reserved,
}

impl AddressRefusal {
    pub fn describe(self) -> &'static str {
        match self {
            Self::Private => "a private or shared address",
            Self::Loopback => "a loopback address",
            Self::LinkLocal => "a link-local address (the metadata service lives there)",
            Self::Multicast => "a multicast or broadcast address",
            Self::Unspecified => "an unspecified address",
            Self::Reserved => "a reserved or documentation address",
        }
    }
}

/// The endpoint URL's host and port, if the URL may be one. `plain_http`
/// (only with loopback allowed: the local stack and tests) also takes
/// `http://`, whose host must then resolve to loopback alone.
pub fn check_url(raw: &str, plain_http: bool) -> Result<(String, u16), UrlRefusal> {
    if raw.len() > MAX_URL {
        return Err(UrlRefusal::TooLong);
    }
    let (scheme, rest) = raw.split_once("://").ok_or(UrlRefusal::NotAUrl)?;
    let https = scheme.eq_ignore_ascii_case("https");
    let http_allowed = plain_http && scheme.eq_ignore_ascii_case("http");
    if !(https || http_allowed) {
        return Err(if scheme.is_empty() { UrlRefusal::NotAUrl } else { UrlRefusal::NotHttps });
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(UrlRefusal::Credentials);
    }
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(UrlRefusal::NotAUrl);
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']').ok_or(UrlRefusal::NotAUrl)?;
            let port = after.strip_prefix(':').map(str::parse).transpose().map_err(|_| UrlRefusal::NotAUrl)?;
            (host.to_owned(), port)
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host.to_owned(), Some(port.parse().map_err(|_| UrlRefusal::NotAUrl)?)),
            None => (authority.to_owned(), None),
        },
    };
    if host.is_empty() {
        return Err(UrlRefusal::NoHost);
    }
    Ok((host.to_ascii_lowercase(), port.unwrap_or(if https { 443 } else { 80 })))
}

/// Whether a delivery may connect to `ip`.
pub fn check_address(ip: IpAddr, allow_loopback: bool) -> Result<(), AddressRefusal> {
    let refusal = match ip {
        IpAddr::V4(v4) => v4_refusal(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped().or_else(|| six_to_four(v6)) {
            Some(v4) => v4_refusal(v4),
            None => v6_refusal(v6),
        },
    };
    match refusal {
        Some(AddressRefusal::Loopback) if allow_loopback => Ok(()),
        Some(r) => Err(r),
        None => Ok(()),
    }
}

fn v4_refusal(ip: Ipv4Addr) -> Option<AddressRefusal> {
    let [a, b, c, _] = ip.octets();
    Some(if ip.is_unspecified() || a == 0 {
        AddressRefusal::Unspecified
    } else if ip.is_loopback() {
        AddressRefusal::Loopback
    } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
        // RFC 1918, and RFC 6598's shared address space (carrier NAT).
        AddressRefusal::Private
    } else if ip.is_link_local() {
        AddressRefusal::LinkLocal
    } else if ip.is_multicast() || ip.is_broadcast() {
        AddressRefusal::Multicast
    } else if ip.is_documentation()
        || a >= 240
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b))
        || (a == 192 && b == 88 && c == 99)
    {
        AddressRefusal::Reserved
    } else {
        return None;
    })
}

/// The IPv4 address a 6to4 address (2002::/16, RFC 3056) routes to.
fn six_to_four(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    (s[0] == 0x2002).then(|| Ipv4Addr::from((u32::from(s[1]) << 16) | u32::from(s[2])))
}

fn v6_refusal(ip: Ipv6Addr) -> Option<AddressRefusal> {
    let first = ip.segments()[0];
    Some(if ip.is_unspecified() {
        AddressRefusal::Unspecified
    } else if ip.is_loopback() {
        AddressRefusal::Loopback
    } else if first & 0xfe00 == 0xfc00 {
        // Unique local (fc00::/7), AWS's metadata fd00:ec2::254 among them.
        AddressRefusal::Private
    } else if first & 0xffc0 == 0xfe80 || first & 0xffc0 == 0xfec0 {
        AddressRefusal::LinkLocal
    } else if ip.is_multicast() {
        AddressRefusal::Multicast
    } else if first == 0x2001 && matches!(ip.segments()[1], 0x0db8 | 0x0000)
        || first == 0x0064
        || first == 0x0100
        || first & 0xe000 != 0x2000
    {
        // Documentation, Teredo (a relay to the IPv4 addresses inside),
        // NAT64 (it would reach IPv4 inside), discard-only, and anything
        // outside global unicast 2000::/3.
        AddressRefusal::Reserved
    } else {
        return None;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_public_unicast_addresses_are_reached() {
        for (addr, why) in [
            ("10.1.2.3", AddressRefusal::Private),
            ("172.16.0.1", AddressRefusal::Private),
            ("192.168.1.1", AddressRefusal::Private),
            ("100.64.0.1", AddressRefusal::Private),
            ("127.0.0.1", AddressRefusal::Loopback),
            ("169.254.169.254", AddressRefusal::LinkLocal),
            ("224.0.0.1", AddressRefusal::Multicast),
            ("255.255.255.255", AddressRefusal::Multicast),
            ("0.0.0.0", AddressRefusal::Unspecified),
            ("198.51.100.7", AddressRefusal::Reserved),
            ("240.0.0.1", AddressRefusal::Reserved),
            ("::1", AddressRefusal::Loopback),
            ("::", AddressRefusal::Unspecified),
            ("fd00:ec2::254", AddressRefusal::Private),
            ("fe80::1", AddressRefusal::LinkLocal),
            ("ff02::1", AddressRefusal::Multicast),
            ("2001:db8::1", AddressRefusal::Reserved),
            ("64:ff9b::a9fe:a9fe", AddressRefusal::Reserved),
            ("::ffff:169.254.169.254", AddressRefusal::LinkLocal),
            ("::ffff:10.0.0.1", AddressRefusal::Private),
            ("2002:a9fe:a9fe::1", AddressRefusal::LinkLocal),
            ("2002:0a00:0001::", AddressRefusal::Private),
            ("2002:7f00:0001:1::1", AddressRefusal::Loopback),
            ("2002:c000:0201::1", AddressRefusal::Reserved),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", AddressRefusal::Reserved),
            ("2001::1", AddressRefusal::Reserved),
        ] {
            assert_eq!(check_address(ip(addr), false), Err(why), "{addr}");
        }
        for public in [
            "93.184.215.14",
            "8.8.8.8",
            "2606:4700::6810:85e5",
            "::ffff:93.184.215.14",
            "2002:5db8:d70e::1",
            "2001:4860::1",
        ] {
            assert_eq!(check_address(ip(public), false), Ok(()), "{public}");
        }
        assert_eq!(check_address(ip("127.0.0.1"), true), Ok(()), "loopback only where allowed");
        assert_eq!(check_address(ip("::1"), true), Ok(()));
        assert_eq!(check_address(ip("10.0.0.1"), true), Err(AddressRefusal::Private), "and nothing else");
    }

    fn check_url_(raw: &str) -> Result<(String, u16), UrlRefusal> {
        check_url(raw, false)
    }

    #[test]
    fn urls_are_https_with_a_host_and_no_credentials() {
        assert_eq!(check_url("http://127.0.0.1:8080/hook", true), Ok(("127.0.0.1".into(), 8080)));
        assert_eq!(check_url_("https://ehr.clinic.example/hooks/vcare"), Ok(("ehr.clinic.example".into(), 443)));
        assert_eq!(check_url_("https://EHR.example:8443/x?y=1"), Ok(("ehr.example".into(), 8443)));
        assert_eq!(check_url_("https://[2606:4700::1]/x"), Ok(("2606:4700::1".into(), 443)));
        assert_eq!(check_url_("http://ehr.example/"), Err(UrlRefusal::NotHttps));
        assert_eq!(check_url_("ftp://ehr.example/"), Err(UrlRefusal::NotHttps));
        assert_eq!(check_url_("https://user:pw@ehr.example/"), Err(UrlRefusal::Credentials));
        assert_eq!(check_url_("https:///path"), Err(UrlRefusal::NoHost));
        assert_eq!(check_url_("ehr.example/hook"), Err(UrlRefusal::NotAUrl));
        assert_eq!(check_url_("https://ehr.example:99999/"), Err(UrlRefusal::NotAUrl));
        assert_eq!(check_url_("https://ehr.example/a b"), Err(UrlRefusal::NotAUrl));
        assert_eq!(check_url_(&format!("https://ehr.example/{}", "a".repeat(2048))), Err(UrlRefusal::TooLong));
    }
}
