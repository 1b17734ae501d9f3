//! helo's checks of the name alone, without DNS: localhost, address literals and bare
//! addresses, the shape of a host name.

use std::net::IpAddr;

use super::Fail;

/// `localhost` from anywhere but the loopback addresses.
pub(super) fn invalid_localhost(host: &str, ip: Option<IpAddr>) -> Option<Fail> {
    (host.eq_ignore_ascii_case("localhost") && !ip.is_some_and(|ip| ip.is_loopback()))
        .then(|| Fail::new("You are not localhost", "invalid localhost"))
}

/// An address literal that is not the client's address.
pub(super) fn forged_literal(literal: Option<IpAddr>, ip: Option<IpAddr>) -> Option<Fail> {
    let literal = literal?.to_canonical();
    (Some(literal) != ip).then(|| Fail::new("Forged IPs not accepted here", "forged IP literal"))
}

/// A bare address: neither a name nor an address literal.
pub(super) fn plain_ip(host: &str) -> Option<Fail> {
    let ipv4_shape = host.split('.').count() == 4
        && host
            .split('.')
            .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    (ipv4_shape || host.parse::<std::net::Ipv6Addr>().is_ok())
        .then(|| Fail::new("Plain IP is invalid HELO hostname (RFC 2821)", "plain IP"))
}

/// A name without a dot, or with characters a host name cannot have (literals pass).
pub(super) fn not_fqdn(host: &str, literal: Option<IpAddr>) -> Option<Fail> {
    if literal.is_some() {
        return None;
    }
    if !host.contains('.') {
        return Some(Fail::new(
            "HELO name is not fully qualified. Read RFC 2821",
            "not FQDN",
        ));
    }
    if !host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Some(Fail::new(
            "HELO name contains invalid FQDN characters. Read RFC 1035",
            "invalid FQDN chars",
        ));
    }
    None
}
