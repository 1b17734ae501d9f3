//! qpsmtpd's `tls_ciphers` and `tls_protocols` (OpenSSL strings) mapped onto rustls.
//!
//! rustls only has strong AEAD suites and TLS 1.2/1.3, so OpenSSL's strength keywords
//! (`HIGH`, `DEFAULT`, `!aNULL`, `SSLv23`, ...) need no mapping and are ignored. What does
//! map: suite names (IANA, OpenSSL or rustls spelling) and a few OpenSSL aliases
//! (`CHACHA20`, `AES128`, `AES256`, `AESGCM`, `ECDSA`, `RSA`), with `!` or `-` to exclude;
//! and the protocol names `TLSv1.2` and `TLSv1.3`, with `!` or `-` to exclude.

use rustls::{CipherSuite, SupportedCipherSuite, SupportedProtocolVersion};

use super::TlsError;

/// OpenSSL's names for the TLS 1.2 suites rustls has (TLS 1.3 names are the IANA ones).
const OPENSSL_NAMES: &[(&str, &str)] = &[
    (
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        "ECDHE-ECDSA-AES128-GCM-SHA256",
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
    ),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        "ECDHE-RSA-CHACHA20-POLY1305",
    ),
];

/// OpenSSL aliases that select a family of suites, and the text the names contain.
const ALIASES: &[(&str, &str)] = &[
    ("CHACHA20", "CHACHA20"),
    ("AES128", "AES_128"),
    ("AES256", "AES_256"),
    ("AESGCM", "GCM"),
    ("AES", "AES"),
    ("ECDSA", "ECDSA"),
    ("RSA", "_RSA_"),
];

/// The IANA name (`TLS_AES_256_GCM_SHA384`, `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`).
pub fn iana_name(suite: CipherSuite) -> String {
    let name = suite
        .as_str()
        .map_or_else(|| format!("{suite:?}"), str::to_string);
    match name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => name,
    }
}

fn openssl_name(iana: &str) -> &str {
    OPENSSL_NAMES
        .iter()
        .find(|(i, _)| *i == iana)
        .map_or(iana, |(_, o)| o)
}

/// Does one token of `tls_ciphers` select this suite?
fn selects(token: &str, suite: &SupportedCipherSuite) -> bool {
    let iana = iana_name(suite.suite());
    let rustls_name = suite.suite().as_str().unwrap_or("");
    let t = token.to_ascii_uppercase();
    if t == iana || t == rustls_name || t == openssl_name(&iana) {
        return true;
    }
    ALIASES
        .iter()
        .any(|(alias, part)| t == *alias && iana.contains(part))
}

fn tokens(spec: &str) -> impl Iterator<Item = (bool, &str)> {
    spec.split([':', ',', ' ', '\t'])
        .filter(|t| !t.is_empty())
        .map(|t| match t.strip_prefix(['!', '-']) {
            Some(rest) => (false, rest),
            None => (true, t.trim_start_matches('+')),
        })
}

/// The suites `tls_ciphers` allows. As in OpenSSL, naming suites of one protocol version
/// restricts that version only (a TLS 1.2 list leaves TLS 1.3 alone); exclusions always
/// apply. A list that leaves nothing is an error.
pub fn cipher_suites(
    all: &[SupportedCipherSuite],
    spec: Option<&str>,
) -> Result<Vec<SupportedCipherSuite>, TlsError> {
    let Some(spec) = spec else {
        return Ok(all.to_vec());
    };
    let is13 = |s: &SupportedCipherSuite| matches!(s, SupportedCipherSuite::Tls13(_));
    let picked = |s: &SupportedCipherSuite| tokens(spec).any(|(on, t)| on && selects(t, s));
    let excluded = |s: &SupportedCipherSuite| tokens(spec).any(|(on, t)| !on && selects(t, s));
    let restrict13 = all.iter().any(|s| is13(s) && picked(s));
    let restrict12 = all.iter().any(|s| !is13(s) && picked(s));
    let out: Vec<_> = all
        .iter()
        .filter(|s| {
            let restricted = if is13(s) { restrict13 } else { restrict12 };
            (!restricted || picked(s)) && !excluded(s)
        })
        .copied()
        .collect();
    if out.is_empty() {
        return Err(TlsError::Setting {
            item: "tls_ciphers",
            problem: format!("{spec:?} leaves no cipher suite"),
        });
    }
    Ok(out)
}

fn version_of(token: &str) -> Option<&'static SupportedProtocolVersion> {
    match token.to_ascii_uppercase().replace('_', ".").as_str() {
        "TLSV1.2" | "TLS1.2" => Some(&rustls::version::TLS12),
        "TLSV1.3" | "TLS1.3" => Some(&rustls::version::TLS13),
        _ => None,
    }
}

/// The protocol versions `tls_protocols` allows: TLS 1.2 and 1.3 unless it names one of
/// them, minus those it excludes (`!TLSv1.2`). Older versions do not exist in rustls, so
/// `SSLv23:!SSLv2:!SSLv3` (qpsmtpd's default) means both.
pub fn versions(spec: Option<&str>) -> Result<Vec<&'static SupportedProtocolVersion>, TlsError> {
    let both = [&rustls::version::TLS13, &rustls::version::TLS12];
    let Some(spec) = spec else {
        return Ok(both.to_vec());
    };
    let named: Vec<_> = tokens(spec)
        .filter_map(|(on, t)| version_of(t).map(|v| (on, v)))
        .collect();
    let any_positive = named.iter().any(|(on, _)| *on);
    let out: Vec<_> = both
        .into_iter()
        .filter(|v| !any_positive || named.iter().any(|(on, n)| *on && n.version == v.version))
        .filter(|v| !named.iter().any(|(on, n)| !*on && n.version == v.version))
        .collect();
    if out.is_empty() {
        return Err(TlsError::Setting {
            item: "tls_protocols",
            problem: format!("{spec:?} leaves neither TLSv1.2 nor TLSv1.3"),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<SupportedCipherSuite> {
        rustls::crypto::ring::default_provider().cipher_suites
    }

    fn names(v: &[SupportedCipherSuite]) -> Vec<String> {
        v.iter().map(|s| iana_name(s.suite())).collect()
    }

    #[test]
    fn openssl_keywords_keep_everything() {
        for spec in ["HIGH", "DEFAULT", "HIGH:MEDIUM:!aNULL:!MD5", "ALL"] {
            assert_eq!(
                cipher_suites(&all(), Some(spec)).unwrap().len(),
                all().len(),
                "{spec}"
            );
        }
    }

    #[test]
    fn tls12_names_restrict_tls12_only() {
        let got = names(&cipher_suites(&all(), Some("ECDHE-RSA-AES256-GCM-SHA384")).unwrap());
        assert!(got.contains(&"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384".to_string()));
        assert!(got.contains(&"TLS_AES_256_GCM_SHA384".to_string()));
        assert!(!got.contains(&"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".to_string()));
    }

    #[test]
    fn exclusions_and_errors() {
        let got = names(&cipher_suites(&all(), Some("HIGH:!CHACHA20")).unwrap());
        assert!(got.iter().all(|n| !n.contains("CHACHA20")), "{got:?}");
        assert!(cipher_suites(&all(), Some("!AES:!CHACHA20")).is_err());
    }

    #[test]
    fn protocol_lists() {
        let v = |s| versions(Some(s)).map(|v| v.iter().map(|x| x.version).collect::<Vec<_>>());
        use rustls::ProtocolVersion::{TLSv1_2, TLSv1_3};
        assert_eq!(v("SSLv23:!SSLv2:!SSLv3").unwrap(), vec![TLSv1_3, TLSv1_2]);
        assert_eq!(v("TLSv1.3").unwrap(), vec![TLSv1_3]);
        assert_eq!(v("ALL:!TLSv1.3").unwrap(), vec![TLSv1_2]);
        assert!(v("!TLSv1.2:!TLSv1_3").is_err());
    }
}
