//! SMTP AUTH helpers shared by the session and the auth plugins: SASL decoding (RFC 4954,
//! RFC 4616 PLAIN, LOGIN, RFC 2195 CRAM-MD5) and checking a password against a stored
//! entry (qpsmtpd's `Qpsmtpd::Auth::validate_password`, plus modern hashes).

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

/// A CRAM-MD5 challenge in qpsmtpd's form, `<random.time@me>`.
pub fn cram_challenge(me: &str) -> String {
    use ring::rand::SecureRandom;
    let mut r = [0u8; 4];
    let _ = ring::rand::SystemRandom::new().fill(&mut r);
    let secs = std::time::SystemTime::now()
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

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// How a stored password is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored<'a> {
    /// Clear text (usable for CRAM-MD5 too).
    Clear(&'a str),
    /// A crypt-style hash: `$6$`, `$5$` (SHA-crypt), `$2a$`/`$2b$`/`$2y$` (bcrypt),
    /// `$argon2id$`/`$argon2i$`/`$argon2d$`.
    Hash(&'a str),
}

/// Reads a stored entry. A Dovecot-style `{SCHEME}` prefix is understood: `{PLAIN}` and
/// `{CLEAR}` mean clear text, any other scheme is taken by the hash that follows.
pub fn stored(entry: &str) -> Stored<'_> {
    let mut rest = entry;
    if let Some(after) = entry.strip_prefix('{')
        && let Some((scheme, value)) = after.split_once('}')
    {
        if scheme.eq_ignore_ascii_case("PLAIN") || scheme.eq_ignore_ascii_case("CLEAR") {
            return Stored::Clear(value);
        }
        rest = value;
    }
    if is_hash(rest) {
        Stored::Hash(rest)
    } else {
        Stored::Clear(entry)
    }
}

fn is_hash(s: &str) -> bool {
    ["$6$", "$5$", "$2a$", "$2b$", "$2y$", "$argon2"]
        .iter()
        .any(|p| s.starts_with(p))
}

/// Does the attempt match the stored entry? Clear text is compared in constant time;
/// a malformed hash never matches.
pub fn password_matches(entry: &str, attempt: &str) -> bool {
    match stored(entry) {
        Stored::Clear(clear) => constant_time_eq(clear.as_bytes(), attempt.as_bytes()),
        Stored::Hash(hash) => hash_matches(hash, attempt),
    }
}

fn hash_matches(hash: &str, attempt: &str) -> bool {
    if hash.starts_with("$6$") || hash.starts_with("$5$") {
        use sha_crypt::{PasswordHashRef, PasswordVerifier, ShaCrypt};
        let Ok(parsed) = PasswordHashRef::new(hash) else {
            return false;
        };
        return ShaCrypt::default()
            .verify_password(attempt.as_bytes(), parsed)
            .is_ok();
    }
    if hash.starts_with("$2") {
        return bcrypt::verify(attempt, hash).unwrap_or(false);
    }
    if hash.starts_with("$argon2") {
        use argon2::password_hash::PasswordVerifier;
        return argon2::Argon2::default()
            .verify_password(attempt.as_bytes(), hash)
            .is_ok();
    }
    false
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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

    #[test]
    fn stored_entries() {
        assert!(password_matches("secret", "secret"));
        assert!(!password_matches("secret", "Secret"));
        assert!(password_matches("{PLAIN}secret", "secret"));
        // openssl passwd -6 -salt saltsalt secret
        let sha512 = "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1";
        assert_eq!(stored(sha512), Stored::Hash(sha512));
        assert!(password_matches(sha512, "secret"));
        assert!(password_matches(&format!("{{SHA512-CRYPT}}{sha512}"), "secret"));
        assert!(!password_matches(sha512, "wrong"));
        let bcrypt = bcrypt::hash("secret", 4).unwrap();
        assert!(password_matches(&bcrypt, "secret") && !password_matches(&bcrypt, "x"));
        assert!(!password_matches("$6$broken", "secret"));
        use argon2::password_hash::PasswordHasher;
        let argon = argon2::Argon2::default()
            .hash_password_with_salt(b"secret", b"saltsaltsaltsalt")
            .unwrap()
            .to_string();
        assert!(argon.starts_with("$argon2id$"), "{argon}");
        assert!(password_matches(&argon, "secret") && !password_matches(&argon, "x"));
    }
}
