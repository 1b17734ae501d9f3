//! Stored passwords: which scheme an entry of a password file uses, and whether an attempt
//! matches it.
//!
//! An entry is one of three things, decided by its first characters only:
//!
//! * `{SCHEME}...`: a Dovecot/LDAP scheme prefix (`{SHA512-CRYPT}`, `{SSHA256}`, `{PLAIN}`,
//!   `{CRYPT}`, ...), optionally with an encoding suffix (`{SSHA256.HEX}`);
//! * `$id$...`: a crypt(3) hash in Modular Crypt Format (`$1$`, `$5$`, `$6$`, `$2b$`, `$y$`,
//!   `$argon2id$`);
//! * anything else: clear text.
//!
//! A `{SCHEME}` or `$id$` this module does not know, or a known one that is malformed, is
//! [`Stored::Unusable`]: it never matches, and `--check` names it with its line. So is an
//! entry meant as one that is not well formed (`{ SSHA512}`, `{SSHA512` without its `}`,
//! `$ 6$`). Before, such an entry was compared as clear text, so the hash string itself
//! was the password.

use sha2::Digest;

mod md5crypt;
mod prefix;
mod shape;

use md5crypt::md5_crypt;
use prefix::{looks_like_a_scheme, looks_like_an_mcf_id, mcf_id, scheme_prefix};
use shape::{checked, decode, md5_crypt_parts, yescrypt_params};

pub use shape::looks_like_a_hash;

/// How a stored password is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored<'a> {
    /// Clear text (usable for CRAM-MD5 too).
    Clear(&'a str),
    /// A hash this module can verify.
    Hash(Hash<'a>),
    /// A scheme that is not supported, or a malformed hash: never matches.
    Unusable(String),
}

/// A verifiable hash: its kind and its text (the crypt string, or the encoded digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hash<'a> {
    kind: Kind,
    text: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `$1$`: MD5-crypt (`openssl passwd -1`, Dovecot's `{MD5-CRYPT}`); `$apr1$`: Apache's
    /// variant (`htpasswd -m`, its default), the same with another magic string.
    Md5Crypt,
    /// `$5$`, `$6$`: SHA-crypt.
    ShaCrypt,
    /// `$2a$`, `$2b$`, `$2x$`, `$2y$`: bcrypt.
    Bcrypt,
    /// `$y$`: yescrypt (Debian's /etc/shadow default).
    Yescrypt,
    /// `$argon2i$`, `$argon2d$`, `$argon2id$`.
    Argon2,
    /// `{SHA}`, `{SSHA512}`, `{PLAIN-MD5}`, ...: a plain digest of password ‖ salt.
    Digest(Algorithm, Salted, Encoding),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algorithm {
    Md5,
    Sha1,
    Sha256,
    Sha512,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Salted {
    Yes,
    No,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Base64,
    Hex,
}

impl Algorithm {
    fn len(self) -> usize {
        match self {
            Algorithm::Md5 => 16,
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
            Algorithm::Sha512 => 64,
        }
    }

    fn digest(self, parts: &[&[u8]]) -> Vec<u8> {
        fn run<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
            let mut d = D::new();
            for p in parts {
                d.update(p);
            }
            d.finalize().to_vec()
        }
        match self {
            Algorithm::Md5 => run::<md5::Md5>(parts),
            Algorithm::Sha1 => run::<sha1::Sha1>(parts),
            Algorithm::Sha256 => run::<sha2::Sha256>(parts),
            Algorithm::Sha512 => run::<sha2::Sha512>(parts),
        }
    }
}

/// The yescrypt and argon2 parameters of a stored hash may ask for at most this much
/// memory; a larger entry (a typo, or a file from elsewhere) would end the session by
/// exhaustion.
const MAX_MEMORY: u64 = 1 << 30;

/// Reads a stored entry (see the module docs).
pub fn stored(entry: &str) -> Stored<'_> {
    if let Some((scheme, rest)) = scheme_prefix(entry) {
        return with_scheme(scheme, rest);
    }
    if looks_like_a_scheme(entry) {
        return Stored::Unusable(
            "malformed {SCHEME} prefix (a blank inside the braces, or no closing brace)".into(),
        );
    }
    if mcf_id(entry).is_some() {
        return crypt(entry, None);
    }
    if looks_like_an_mcf_id(entry) {
        return Stored::Unusable("malformed $id$ prefix (a blank or an odd character in it)".into());
    }
    Stored::Clear(entry)
}

fn with_scheme<'a>(scheme: &str, rest: &'a str) -> Stored<'a> {
    let (name, encoding) = match scheme.split_once('.') {
        Some((name, enc)) => (name, Some(enc)),
        None => (scheme, None),
    };
    let name = name.to_ascii_uppercase();
    let digest = |alg: Algorithm, salted: Salted, default: Encoding| {
        let encoding = match encoding.map(str::to_ascii_uppercase).as_deref() {
            None => default,
            Some("B64" | "BASE64") => Encoding::Base64,
            Some("HEX") => Encoding::Hex,
            Some(other) => return Stored::Unusable(format!("unknown encoding .{other} in {{{scheme}}}")),
        };
        checked(Hash {
            kind: Kind::Digest(alg, salted, encoding),
            text: rest,
        })
    };
    let crypt_only = |kind| {
        if encoding.is_some() {
            return Stored::Unusable(format!("{{{scheme}}}: a crypt scheme has no encoding suffix"));
        }
        crypt(rest, kind)
    };
    match name.as_str() {
        "PLAIN" | "CLEAR" | "CLEARTEXT" | "PLAINTEXT" if encoding.is_none() => Stored::Clear(rest),
        "CRYPT" => crypt_only(None),
        "MD5-CRYPT" => crypt_only(Some(Kind::Md5Crypt)),
        // Dovecot's {MD5} is MD5-crypt; LDAP's (slappasswd -h {MD5}) a base64 MD5 digest.
        "MD5" if rest.starts_with('$') => crypt_only(Some(Kind::Md5Crypt)),
        "MD5" => digest(Algorithm::Md5, Salted::No, Encoding::Base64),
        "SHA256-CRYPT" | "SHA512-CRYPT" => crypt_only(Some(Kind::ShaCrypt)),
        "BLF-CRYPT" => crypt_only(Some(Kind::Bcrypt)),
        "ARGON2I" | "ARGON2ID" => crypt_only(Some(Kind::Argon2)),
        "SHA" | "SHA1" => digest(Algorithm::Sha1, Salted::No, Encoding::Base64),
        "SSHA" => digest(Algorithm::Sha1, Salted::Yes, Encoding::Base64),
        "SHA256" => digest(Algorithm::Sha256, Salted::No, Encoding::Base64),
        "SSHA256" => digest(Algorithm::Sha256, Salted::Yes, Encoding::Base64),
        "SHA512" => digest(Algorithm::Sha512, Salted::No, Encoding::Base64),
        "SSHA512" => digest(Algorithm::Sha512, Salted::Yes, Encoding::Base64),
        "SMD5" => digest(Algorithm::Md5, Salted::Yes, Encoding::Base64),
        "LDAP-MD5" => digest(Algorithm::Md5, Salted::No, Encoding::Base64),
        "PLAIN-MD5" => digest(Algorithm::Md5, Salted::No, Encoding::Hex),
        _ => Stored::Unusable(format!("unsupported password scheme {{{scheme}}}")),
    }
}

/// A crypt(3) string; `expected` is the kind a `{SCHEME}` prefix promised.
fn crypt(text: &str, expected: Option<Kind>) -> Stored<'_> {
    let Some(id) = mcf_id(text) else {
        return Stored::Unusable(if text.is_empty() {
            "empty hash".to_string()
        } else {
            "traditional DES crypt is not supported (only $1$ $5$ $6$ $2?$ $y$ $argon2*$)".to_string()
        });
    };
    let kind = match id {
        "1" | "apr1" => Kind::Md5Crypt,
        "5" | "6" => Kind::ShaCrypt,
        "2a" | "2b" | "2x" | "2y" => Kind::Bcrypt,
        "y" => Kind::Yescrypt,
        "argon2i" | "argon2d" | "argon2id" => Kind::Argon2,
        _ => return Stored::Unusable(format!("unsupported hash type ${id}$")),
    };
    if expected.is_some_and(|e| e != kind) {
        return Stored::Unusable(format!("the scheme prefix does not match a ${id}$ hash"));
    }
    checked(Hash { kind, text })
}

/// Does the attempt match the stored entry? Clear text and digests are compared in
/// constant time; an unusable entry never matches.
pub fn password_matches(entry: &str, attempt: &str) -> bool {
    match stored(entry) {
        Stored::Clear(clear) => constant_time_eq(clear.as_bytes(), attempt.as_bytes()),
        Stored::Hash(hash) => hash.matches(attempt),
        Stored::Unusable(_) => false,
    }
}

impl Hash<'_> {
    /// Verifies an attempt (the full cost of the scheme is paid whatever the result).
    pub fn matches(&self, attempt: &str) -> bool {
        let pw = attempt.as_bytes();
        match self.kind {
            Kind::Md5Crypt => md5_crypt_parts(self.text).is_some_and(|(magic, salt, _)| {
                constant_time_eq(md5_crypt(pw, magic, salt).as_bytes(), self.text.as_bytes())
            }),
            Kind::ShaCrypt => {
                use sha_crypt::{PasswordHashRef, PasswordVerifier, ShaCrypt};
                PasswordHashRef::new(self.text)
                    .is_ok_and(|parsed| ShaCrypt::default().verify_password(pw, parsed).is_ok())
            }
            Kind::Bcrypt => bcrypt::verify(pw, self.text).unwrap_or(false),
            Kind::Argon2 => {
                use argon2::password_hash::PasswordVerifier;
                argon2::Argon2::default().verify_password(pw, self.text).is_ok()
            }
            Kind::Yescrypt => {
                use yescrypt::PasswordVerifier;
                yescrypt_params(self.text).is_ok()
                    && yescrypt::Yescrypt::default()
                        .verify_password(pw, self.text)
                        .is_ok()
            }
            Kind::Digest(alg, salted, encoding) => {
                let Some(raw) = decode(self.text, encoding) else {
                    return false;
                };
                let (expected, salt) = match salted {
                    Salted::Yes if raw.len() > alg.len() => raw.split_at(alg.len()),
                    Salted::No if raw.len() == alg.len() => (raw.as_slice(), &[][..]),
                    _ => return false,
                };
                constant_time_eq(&alg.digest(&[pw, salt]), expected)
            }
        }
    }

    /// A short name for logs (`bcrypt`, `SSHA512`).
    pub fn scheme(&self) -> &'static str {
        match self.kind {
            Kind::Md5Crypt => "MD5-crypt",
            Kind::ShaCrypt => "SHA-crypt",
            Kind::Bcrypt => "bcrypt",
            Kind::Yescrypt => "yescrypt",
            Kind::Argon2 => "argon2",
            Kind::Digest(..) => "digest",
        }
    }
}

/// Compares in time that depends only on the lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests;
