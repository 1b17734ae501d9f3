//! What an entry starts with: a `{SCHEME}` prefix, an `$id$`, or something meant as one
//! but malformed.

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
pub(super) fn looks_like_a_scheme(entry: &str) -> bool {
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
pub(super) fn looks_like_an_mcf_id(entry: &str) -> bool {
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
pub(super) fn scheme_prefix(entry: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = entry.strip_prefix('{')?.split_once('}')?;
    let word = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
    (!scheme.is_empty() && scheme.chars().all(word)).then_some((scheme, rest))
}

/// The `id` of `$id$...` or `$id,params$...` (letters, digits and `-`; SunMD5 writes
/// `$md5,rounds=5000$`, which must not pass for clear text).
pub(super) fn mcf_id(text: &str) -> Option<&str> {
    let rest = text.strip_prefix('$')?;
    let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))?;
    let id = &rest[..end];
    (!id.is_empty() && rest[end..].starts_with(['$', ','])).then_some(id)
}
