//! SMTP AUTH helpers shared by the session and the auth plugins: SASL decoding (RFC 4954,
//! RFC 4616 PLAIN, LOGIN, RFC 2195 CRAM-MD5) and checking a password against a stored
//! entry (qpsmtpd's `Qpsmtpd::Auth::validate_password`, plus modern hashes).

mod passwords;

pub use passwords::{Hash, Stored, constant_time_eq, looks_like_a_hash, password_matches, stored};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{KeyInit, Mac};

/// Decodes one base64 client response; `=` alone is an empty response (RFC 4954 §4).
pub fn decode(line: &str) -> Option<Vec<u8>> {
    let line = line.trim();
    if line == "=" {
        return Some(Vec::new());
    }
    B64.decode(line).ok()
}

/// Encodes a server challenge.
pub fn encode(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// The three parts of a PLAIN response: authorization id, user, password (RFC 4616).
pub fn split_plain(blob: &[u8]) -> Option<(String, String, String)> {
    let mut parts = blob.split(|b| *b == 0);
    let authzid = parts.next()?;
    let user = parts.next()?;
    let pass = parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).ok();
    Some((text(authzid)?, text(user)?, text(pass)?))
}

/// The longest user name accepted, in bytes. An address has at most 254 (RFC 5321
/// §4.5.3.1); a longer name would make Authentication-Results longer than a header line
/// may be (RFC 5322 §2.1.1) and the 235 reply longer than a reply line (RFC 5321
/// §4.5.3.1.5).
pub const MAX_NAME: usize = 256;

/// The longest password accepted, in bytes: libxcrypt's limit for crypt(3) passphrases.
/// SHA-crypt and MD5-crypt hash the password once per round, so the cost of one attempt
/// grows with its length (a 12 KB password cost about 600 times a normal one, checked
/// against a known user's hash or the dummy for an unknown one).
pub const MAX_PASSWORD: usize = 512;

/// A user name as every mechanism must give it: not empty, at most [`MAX_NAME`] bytes, no
/// control characters (NUL included: RFC 4616 §2 excludes it from PLAIN's fields, and the
/// same rule holds for LOGIN and CRAM-MD5, where a NUL would shift checkpassword's fields
/// and a line break would reach logs and headers).
pub fn valid_name(user: &str) -> bool {
    !user.is_empty() && user.len() <= MAX_NAME && !user.chars().any(char::is_control)
}

/// A password as every mechanism must give it: not empty (so a back end never sees an
/// empty one), at most [`MAX_PASSWORD`] bytes, no control characters.
pub fn valid_password(password: &str) -> bool {
    !password.is_empty() && password.len() <= MAX_PASSWORD && !password.chars().any(char::is_control)
}

/// A CRAM-MD5 challenge in qpsmtpd's form, `<random.time@me>`, for the time `now`.
pub fn cram_challenge(me: &str, now: std::time::SystemTime) -> String {
    use ring::rand::SecureRandom;
    let mut r = [0u8; 4];
    let _ = ring::rand::SystemRandom::new().fill(&mut r);
    let secs = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("<{:x}.{secs:x}@{me}>", u32::from_be_bytes(r))
}

/// Does the client's CRAM-MD5 digest (hex) match HMAC-MD5(secret, challenge)? Constant time.
pub fn cram_md5_matches(secret: &str, challenge: &str, digest_hex: &str) -> bool {
    let Some(digest) = unhex(digest_hex) else {
        return false;
    };
    let Ok(mut mac) = hmac::Hmac::<md5::Md5>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(challenge.as_bytes());
    mac.verify_slice(&digest).is_ok()
}

pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_responses() {
        let blob = decode("AGdvb2RAZXhhbXBsZS5jb20AZ29vZF9wYXNz").unwrap();
        assert_eq!(
            split_plain(&blob),
            Some((String::new(), "good@example.com".into(), "good_pass".into()))
        );
        assert_eq!(decode("="), Some(vec![]));
        assert!(decode("not base64!").is_none());
        assert!(split_plain(b"only-one-part").is_none());
    }

    #[test]
    fn names_and_passwords() {
        assert!(valid_name("alice@example.com") && valid_name("a b"));
        for bad in [
            "",
            "alice@example.com\0pw",
            "a\rb",
            "a\nb",
            "a\tb",
            "\u{7f}",
            "\u{85}",
        ] {
            assert!(!valid_name(bad) && !valid_password(bad), "{bad:?}");
        }
        let name = format!("{}@example.com", "u".repeat(MAX_NAME - 12));
        assert!(valid_name(&name) && !valid_name(&format!("u{name}")));
        let password = "p".repeat(MAX_PASSWORD);
        assert!(valid_password(&password) && !valid_password(&format!("p{password}")));
    }

    /// RFC 2195 §2's example.
    #[test]
    fn cram_md5_rfc_vector() {
        let challenge = "<1896.697170952@postoffice.reston.mci.net>";
        assert!(cram_md5_matches(
            "tanstaaftanstaaf",
            challenge,
            "b913a602c7eda7a495b4e6e7334d3890"
        ));
        assert!(!cram_md5_matches(
            "wrong",
            challenge,
            "b913a602c7eda7a495b4e6e7334d3890"
        ));
        assert!(!cram_md5_matches("tanstaaftanstaaf", challenge, "zz"));
    }
}
