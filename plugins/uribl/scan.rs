//! Finding host names and IPv4 addresses of URIs in message text, undoing the usual
//! disguises first, as qpsmtpd's uribl does: quoted-printable soft line breaks joined,
//! `%XX` and `=XX` escapes and `&#NN;` entities decoded, inserted `;` removed.
//!
//! Host names are taken wherever they stand (`www.example.com`, `user@example.com`,
//! `http://example.com/`); addresses only in URIs (`http://192.0.2.1/`, also in octal
//! or hex octets, `http://3221225985/`). Everything is bounded: the text read, a line,
//! the names kept.

use std::io::{BufRead, BufReader, Read};
use std::net::Ipv4Addr;

/// Bytes of message text scanned at most.
pub const MAX_SCAN: u64 = 2 * 1024 * 1024;
/// A line (with its soft-broken continuations) is scanned in pieces of this size.
pub const MAX_LINE: usize = 64 * 1024;
/// Distinct names kept at most.
pub const MAX_NAMES: usize = 100;

/// What a text holds, each once, in order of appearance.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Found {
    /// Host names, lower case (not yet checked against the public suffix list).
    pub hosts: Vec<String>,
    /// IPv4 addresses from URIs.
    pub ips: Vec<Ipv4Addr>,
}

impl Found {
    fn full(&self) -> bool {
        self.hosts.len() + self.ips.len() >= MAX_NAMES
    }

    fn host(&mut self, h: String) {
        if !self.full() && !self.hosts.contains(&h) {
            self.hosts.push(h);
        }
    }

    fn ip(&mut self, ip: Ipv4Addr) {
        if !self.full() && !self.ips.contains(&ip) {
            self.ips.push(ip);
        }
    }
}

/// Scans text (at most [`MAX_SCAN`] bytes of it).
pub fn scan(text: impl Read, found: &mut Found) {
    let mut reader = BufReader::new(text.take(MAX_SCAN));
    let mut pending: Vec<u8> = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        // A quoted-printable soft line break: the line goes on in the next one.
        if let Some(body) = line.strip_suffix(b"=")
            && pending.len() + body.len() < MAX_LINE
        {
            pending.extend_from_slice(body);
            continue;
        }
        pending.extend_from_slice(&line);
        for piece in pending.chunks(MAX_LINE) {
            scan_line(piece, found);
        }
        pending.clear();
    }
    scan_line(&pending, found);
}

/// One logical line.
pub fn scan_line(raw: &[u8], found: &mut Found) {
    let line = decode(raw);
    uri_addresses(&line, found);
    for run in line.split(|b| !(b.is_ascii_alphanumeric() || *b == b'.' || *b == b'-')) {
        if let Some(host) = host_name(run) {
            found.host(host);
        }
    }
}

/// `%XX`/`=XX` escapes and `&#NN;`/`&#NNN;` entities decoded (ASCII only), `;` removed.
fn decode(raw: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if (b == b'%' || b == b'=')
            && let (Some(h), Some(l)) = (
                raw.get(i + 1).and_then(|&c| hex(c)),
                raw.get(i + 2).and_then(|&c| hex(c)),
            )
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        if b == b'&' && raw.get(i + 1) == Some(&b'#') {
            let digits = raw[i + 2..]
                .iter()
                .take(3)
                .take_while(|c| c.is_ascii_digit())
                .count();
            if digits >= 2 {
                let n: u32 =
                    std::str::from_utf8(&raw[i + 2..i + 2 + digits]).map_or(0, |s| s.parse().unwrap_or(0));
                if n < 128 {
                    out.push(n as u8);
                }
                i += 2 + digits;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out.retain(|&b| b != b';');
    out
}

/// A host name in a run of letters, digits, dots and hyphens: at least two labels of 1
/// to 63 bytes, 253 bytes in all, the last one letters (or an `xn--` label).
fn host_name(run: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(run)
        .ok()?
        .trim_matches(|c| c == '.' || c == '-');
    if s.len() > 253 || !s.contains('.') {
        return None;
    }
    let s = s.to_ascii_lowercase();
    let labels_ok = s.split('.').all(|l| (1..=63).contains(&l.len()));
    let tld = s.rsplit('.').next()?;
    let tld_ok = (tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_lowercase()))
        || (tld.starts_with("xn--") && tld.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    (labels_ok && tld_ok).then_some(s)
}

/// IPv4 addresses as URI hosts: `scheme://[user@]HOST[:port]` where HOST is a dotted
/// address (octets in decimal, octal `0NN` or hex `0xNN`) or one number of 7 digits or
/// more.
fn uri_addresses(line: &[u8], found: &mut Found) {
    let mut i = 0;
    while let Some(at) = line[i..].windows(2).position(|w| w == b":/") {
        let colon = i + at;
        i = colon + 2;
        let scheme = line[..colon]
            .iter()
            .rev()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
            .count();
        if !(3..=16).contains(&scheme) {
            continue;
        }
        let rest = &line[colon + 1..];
        let rest = &rest[rest.iter().take_while(|&&b| b == b'/').count()..];
        let end = rest
            .iter()
            .position(|b| b.is_ascii_whitespace() || b"/?#<>\"'".contains(b))
            .unwrap_or(rest.len());
        let authority = &rest[..end];
        let host = match authority.iter().rposition(|&b| b == b'@') {
            Some(p) => &authority[p + 1..],
            None => authority,
        };
        let host = match host.iter().rposition(|&b| b == b':') {
            Some(p) if host[p + 1..].iter().all(u8::is_ascii_digit) => &host[..p],
            _ => host,
        };
        if let Some(ip) = std::str::from_utf8(host).ok().and_then(address) {
            found.ip(ip);
        }
    }
}

/// `192.0.2.1`, `0300.0.02.1`, `0xc0.0.2.1`, or `3221225985`.
fn address(host: &str) -> Option<Ipv4Addr> {
    if host.len() >= 7 && host.bytes().all(|b| b.is_ascii_digit()) {
        return host.parse::<u32>().ok().map(Ipv4Addr::from);
    }
    let parts: Vec<&str> = host.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut octets = [0u8; 4];
    for (o, p) in octets.iter_mut().zip(parts) {
        let n = if let Some(h) = p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")) {
            u32::from_str_radix(h, 16).ok()?
        } else if p.len() > 1 && p.starts_with('0') {
            u32::from_str_radix(&p[1..], 8).ok()?
        } else {
            p.parse::<u32>().ok()?
        };
        *o = u8::try_from(n).ok()?;
    }
    Some(Ipv4Addr::from(octets))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Found {
        let mut f = Found::default();
        scan(text.as_bytes(), &mut f);
        f
    }

    #[test]
    fn host_names_wherever_they_stand() {
        let f =
            found("Visit www.Example.com/offer or mail sales@shop.example.net.\r\nsee file.tar, e.g. x\n");
        assert_eq!(
            f.hosts,
            ["www.example.com", "shop.example.net", "file.tar", "e.g"].map(String::from)[..3]
        );
        assert!(f.ips.is_empty());
    }

    #[test]
    fn disguises_are_undone() {
        let f = found(
            "http://www.exa=\r\nmple.com/ and http%3A%2F%2Fspam%2Eexample%2Eorg &#119;&#119;&#119;.evil.example;.com x;y.ex;ample.org\n",
        );
        let want = [
            "www.example.com",
            "spam.example.org",
            "www.evil.example.com",
            "xy.example.org",
        ];
        assert_eq!(f.hosts, want.map(String::from));
    }

    #[test]
    fn addresses_in_uris_only() {
        let f = found(
            "http://192.0.2.10/x https://user:pw@0300.0.02.011:8080/ ftp://0xc0.0.2.12 http://3221225997/ 192.0.2.99 http://999.1.1.1/",
        );
        let want: Vec<Ipv4Addr> = ["192.0.2.10", "192.0.2.9", "192.0.2.12", "192.0.2.13"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(f.ips, want);
    }

    #[test]
    fn bounded() {
        let many: String = (0..500).map(|i| format!("h{i}.example.com ")).collect();
        assert_eq!(found(&many).hosts.len(), MAX_NAMES);
        let long = format!("{}.example.com", "a".repeat(300));
        assert!(found(&long).hosts.is_empty());
        let soft = "x=\n".repeat(100_000) + "www.example.com";
        let _ = found(&soft);
    }
}
