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

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::Digest;

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

/// Scheme names a `{SCHEME}` prefix starts with: ours and the rest of Dovecot's list.
const SCHEME_NAMES: &[&str] = &[
    "PLAIN",
    "CLEAR",
    "CRYPT",
    "MD5",
    "SHA",
    "SSHA",
    "SMD5",
    "BLF-CRYPT",
    "ARGON2",
    "LDAP-MD5",
    "CRAM-MD5",
    "DIGEST-MD5",
    "SCRAM-",
    "PBKDF2",
    "LANMAN",
    "NTLM",
    "OTP",
    "RPA",
    "SKEY",
];

/// Not a well-formed `{SCHEME}` prefix, but meant as one: `{` and, after blanks, a known
/// scheme name (`{SSHA512...` without its `}`, `{ SSHA512}`), or braces around a scheme
/// word with blanks (`{ FOO }`). `{}x` and braces further in are clear text.
fn looks_like_a_scheme(entry: &str) -> bool {
    let Some(after) = entry.strip_prefix('{') else {
        return false;
    };
    let after = after.trim_start();
    let named = SCHEME_NAMES.iter().any(|name| {
        after
            .get(..name.len())
            .is_some_and(|start| start.eq_ignore_ascii_case(name))
    });
    let word = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
    let braced = after
        .split_once('}')
        .is_some_and(|(inner, _)| !inner.trim().is_empty() && inner.trim().chars().all(word));
    named || braced
}

/// Not a well-formed `$id$`, but meant as one: `$`, an id of up to 24 characters with
/// blanks around it or a `.`, `/` or `=` in it, and `$` again (`$ 6$...`, `$6.x$...`).
/// `$$`, `$,`, `$abc` and `$1.50 or $2` are clear text.
fn looks_like_an_mcf_id(entry: &str) -> bool {
    let Some((id, _)) = entry.strip_prefix('$').and_then(|rest| rest.split_once('$')) else {
        return false;
    };
    let id = id.trim();
    let id_char = |c: char| c.is_ascii_alphanumeric() || "-,=./".contains(c);
    !id.is_empty()
        && id.len() <= 24
        && id.chars().all(id_char)
        && id.chars().any(|c| c.is_ascii_alphanumeric())
}

/// `{SCHEME}rest`, where SCHEME is letters, digits, `-`, `_` and `.`.
fn scheme_prefix(entry: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = entry.strip_prefix('{')?.split_once('}')?;
    let word = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
    (!scheme.is_empty() && scheme.chars().all(word)).then_some((scheme, rest))
}

/// The `id` of `$id$...` or `$id,params$...` (letters, digits and `-`; SunMD5 writes
/// `$md5,rounds=5000$`, which must not pass for clear text).
fn mcf_id(text: &str) -> Option<&str> {
    let rest = text.strip_prefix('$')?;
    let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))?;
    let id = &rest[..end];
    (!id.is_empty() && rest[end..].starts_with(['$', ','])).then_some(id)
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

/// The hash if it is well formed, else why not.
fn checked(hash: Hash<'_>) -> Stored<'_> {
    match well_formed(&hash) {
        Ok(()) => Stored::Hash(hash),
        Err(why) => Stored::Unusable(why),
    }
}

fn well_formed(hash: &Hash<'_>) -> Result<(), String> {
    let text = hash.text;
    let bad = |what: &str| Err(format!("malformed {what} hash"));
    match hash.kind {
        Kind::Md5Crypt => match md5_crypt_parts(text) {
            Some(_) => Ok(()),
            None => bad("MD5-crypt"),
        },
        Kind::ShaCrypt => {
            if sha_crypt_shape(text) {
                Ok(())
            } else {
                bad("SHA-crypt")
            }
        }
        Kind::Bcrypt => {
            // $2b$NN$ + 22 characters of salt + 31 of hash.
            let ok = text.len() == 60
                && text.as_bytes().get(6) == Some(&b'$')
                && text[4..6].parse::<u32>().is_ok_and(|c| (4..=31).contains(&c));
            if ok { Ok(()) } else { bad("bcrypt") }
        }
        Kind::Argon2 => match argon2::password_hash::phc::PasswordHash::new(text) {
            // `m` is in KiB.
            Ok(h)
                if h.params
                    .get_decimal("m")
                    .is_some_and(|m| u64::from(m) << 10 > MAX_MEMORY) =>
            {
                Err("argon2 parameters need more than 1 GiB of memory".into())
            }
            Ok(_) => Ok(()),
            Err(_) => bad("argon2"),
        },
        Kind::Yescrypt => yescrypt_params(text).map(|_| ()),
        Kind::Digest(alg, salted, encoding) => {
            let Some(raw) = decode(text, encoding) else {
                return bad("digest (encoding)");
            };
            let ok = match salted {
                Salted::Yes => raw.len() > alg.len(),
                Salted::No => raw.len() == alg.len(),
            };
            if ok { Ok(()) } else { bad("digest (length)") }
        }
    }
}

/// The parameters of a `$y$` hash, refused when they need too much memory.
fn yescrypt_params(text: &str) -> Result<yescrypt::Params, String> {
    let parsed = yescrypt::PasswordHashRef::new(text).map_err(|_| "malformed $y$ hash".to_string())?;
    let hash = text.rsplit('$').next().unwrap_or_default();
    if hash.len() != 43 || !hash.bytes().all(|b| ITOA64.contains(&b)) {
        return Err("malformed $y$ hash".into());
    }
    let params: yescrypt::Params = parsed
        .fields()
        .next()
        .and_then(|f| f.as_str().parse().ok())
        .ok_or("malformed $y$ parameters")?;
    let memory = 128u64
        .saturating_mul(u64::from(params.r()))
        .saturating_mul(params.n())
        .saturating_mul(u64::from(params.p().max(1)));
    if memory > MAX_MEMORY {
        return Err(format!("$y$ parameters need {} MiB of memory", memory >> 20));
    }
    Ok(params)
}

fn decode(text: &str, encoding: Encoding) -> Option<Vec<u8>> {
    match encoding {
        Encoding::Base64 => B64.decode(text.trim()).ok(),
        Encoding::Hex => super::unhex(&text.trim().to_ascii_lowercase()),
    }
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

/// `$5$[rounds=N$]salt$hash` with a hash of 43 characters, `$6$...` with 86.
fn sha_crypt_shape(text: &str) -> bool {
    let (len, rest) = match (text.strip_prefix("$5$"), text.strip_prefix("$6$")) {
        (Some(rest), _) => (43, rest),
        (_, Some(rest)) => (86, rest),
        _ => return false,
    };
    let rest = match rest.strip_prefix("rounds=") {
        Some(r) => match r.split_once('$') {
            Some((n, after)) if n.parse::<u32>().is_ok() => after,
            _ => return false,
        },
        None => rest,
    };
    matches!(rest.split_once('$'), Some((salt, hash))
        if salt.len() <= 16 && !salt.contains('$') && hash.len() == len
            && hash.bytes().all(|b| ITOA64.contains(&b)))
}

/// `$1$salt$hash` or `$apr1$salt$hash` → (magic, salt, hash); the salt is at most 8
/// characters (longer ones are cut, as crypt(3) does, so the stored string then cannot
/// match and the entry is malformed).
fn md5_crypt_parts(text: &str) -> Option<(&'static str, &str, &str)> {
    let (magic, rest) = ["$1$", "$apr1$"]
        .into_iter()
        .find_map(|m| Some((m, text.strip_prefix(m)?)))?;
    let (salt, hash) = rest.split_once('$')?;
    (salt.len() <= 8 && hash.len() == 22 && hash.bytes().all(|b| ITOA64.contains(&b)))
        .then_some((magic, salt, hash))
}

/// What a clear-text entry looks like when it is really a crypt(3) hash without a `$id$`,
/// which this module cannot check: traditional DES (`htpasswd -d`, `mkpasswd -m
/// descrypt`, old /etc/shadow files), BSDi's `_` form, AIX's MD5 (`openssl passwd
/// -aixmd5`). Such an entry is compared as clear text, so the hash string itself is the
/// password. For `--check` only: a clear password may have that shape too (it can be
/// written `{PLAIN}...` to say so).
pub fn looks_like_a_hash(entry: &str) -> Option<&'static str> {
    let crypt_chars = |s: &str| !s.is_empty() && s.bytes().all(|b| ITOA64.contains(&b));
    if entry.len() == 13 && crypt_chars(entry) {
        return Some("a traditional DES crypt hash");
    }
    if entry.len() == 20 && entry.strip_prefix('_').is_some_and(crypt_chars) {
        return Some("a BSDi crypt hash");
    }
    match entry.split_once('$') {
        Some((salt, hash))
            if salt.len() <= 8 && crypt_chars(salt) && hash.len() == 22 && crypt_chars(hash) =>
        {
            Some("an AIX MD5 crypt hash")
        }
        _ => None,
    }
}

const ITOA64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// MD5-crypt as FreeBSD's crypt(3) defines it (Poul-Henning Kamp's algorithm, `$1$`, or
/// with Apache's magic `$apr1$`); the digest is the RustCrypto `md-5` crate's. No
/// maintained crate publishes this scheme.
fn md5_crypt(pw: &[u8], magic: &str, salt: &str) -> String {
    use md5::{Digest as _, Md5};
    let salt = salt.as_bytes();
    let alternate = Md5::new()
        .chain_update(pw)
        .chain_update(salt)
        .chain_update(pw)
        .finalize();
    let mut ctx = Md5::new()
        .chain_update(pw)
        .chain_update(magic.as_bytes())
        .chain_update(salt);
    let mut left = pw.len();
    while left > 0 {
        let n = left.min(16);
        ctx.update(&alternate[..n]);
        left -= n;
    }
    let mut i = pw.len();
    while i != 0 {
        if i & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(&pw[..1]);
        }
        i >>= 1;
    }
    let mut fin = ctx.finalize();
    for round in 0..1000 {
        let mut c = Md5::new();
        if round & 1 == 1 {
            c.update(pw);
        } else {
            c.update(fin);
        }
        if round % 3 != 0 {
            c.update(salt);
        }
        if round % 7 != 0 {
            c.update(pw);
        }
        if round & 1 == 1 {
            c.update(fin);
        } else {
            c.update(pw);
        }
        fin = c.finalize();
    }
    let f = |i: usize| u32::from(fin[i]);
    let mut out = format!("{magic}{}$", String::from_utf8_lossy(salt));
    let mut put = |mut v: u32, n: usize| {
        for _ in 0..n {
            out.push(char::from(ITOA64[(v & 0x3f) as usize]));
            v >>= 6;
        }
    };
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        put((f(a) << 16) | (f(b) << 8) | f(c), 4);
    }
    put(f(11), 2);
    out
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
