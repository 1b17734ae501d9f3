//! Whether a stored hash is well formed (so that a malformed one never matches), and what
//! a clear-text entry that is really a hash without `$id$` looks like.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::{Encoding, Hash, Kind, MAX_MEMORY, Salted, Stored};

/// The hash if it is well formed, else why not.
pub(super) fn checked(hash: Hash<'_>) -> Stored<'_> {
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
pub(super) fn yescrypt_params(text: &str) -> Result<yescrypt::Params, String> {
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

pub(super) fn decode(text: &str, encoding: Encoding) -> Option<Vec<u8>> {
    match encoding {
        Encoding::Base64 => B64.decode(text.trim()).ok(),
        Encoding::Hex => crate::auth::unhex(&text.trim().to_ascii_lowercase()),
    }
}

/// `$5$[rounds=N$]salt$hash` with a hash of 43 characters, `$6$...` with 86.
pub(super) fn sha_crypt_shape(text: &str) -> bool {
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
pub(super) fn md5_crypt_parts(text: &str) -> Option<(&'static str, &str, &str)> {
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

pub(super) const ITOA64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
