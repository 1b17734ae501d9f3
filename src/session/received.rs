//! The headers the core adds to every accepted message, as qpsmtpd 1.00 does: `Received`
//! (replaceable through the `received_line` hook) and `Authentication-Results`, with
//! incoming `Authentication-Results` that could pass for ours renamed first.
//!
//! Client-supplied text in these fields (the HELO name, the AUTH user) is written so that
//! it cannot change their structure: quoted pairs in comments, a quoted string for a
//! property value, ASCII only unless the message is SMTPUTF8, and bounded in length.
//! [`crate::header::Header::add`] then cleans control characters and folds long lines
//! for every added field, ours and the plugins' alike.

use std::fmt::Write;

use super::Session;
use crate::VERSION;
use crate::plugin::{Args, Hook, Verdict};

/// The most bytes of one client-supplied name (HELO, remote host, AUTH user) in a comment:
/// a domain name has at most 253, so a longer one is cut and marked with `...`.
const MAX_NAME: usize = 255;

impl Session {
    /// Cleans old Authentication-Results, then puts A-R above Received at the top, as
    /// qpsmtpd 1.00 does (PR #50: before `data_post`, so content filters see them).
    pub(super) fn add_trace_headers(&mut self) {
        let auth_results_id = self.settings.auth_results_id.clone();
        if let Some(id) = &auth_results_id {
            self.rename_old_auth_results(id);
        }
        let received = self.received_value();
        self.txn.header.add("Received", &received, Some(0));
        if let Some(id) = auth_results_id {
            let value = self.auth_results_value(&id);
            self.txn.header.add("Authentication-Results", &value, Some(0));
        }
    }

    /// Incoming `Authentication-Results` become `Original-Authentication-Results` at the
    /// end of the header (all of them: qpsmtpd 1.00's loop skipped every other one, README
    /// Differences 18):
    ///
    /// - one that claims our authserv-id always (RFC 8601 §5: a reader downstream trusts
    ///   our id), even under a DKIM signature that lists the field in `h=`: anyone can add
    ///   such a signature. The one exception is the hook for a DKIM verifier: a field whose
    ///   value is in the transaction's `verified_auth_results` (covered by a signature that
    ///   verified, from a signer the site trusts) may stay, one at most;
    /// - one from another authserv-id unless a DKIM signature covers the field (renaming it
    ///   would break the signature, and the field vouches for nothing of ours).
    fn rename_old_auth_results(&mut self, our_id: &str) {
        let our_id = normal_id(our_id);
        let txn = &mut self.txn;
        let signed = txn
            .header
            .fields()
            .filter(|f| f.name.eq_ignore_ascii_case("DKIM-Signature"))
            .any(|sig| {
                dkim_tag(&sig.value(), "h").is_some_and(|h| {
                    h.split(':')
                        .any(|f| f.trim().eq_ignore_ascii_case("authentication-results"))
                })
            });
        let verified = &txn.verified_auth_results;
        let mut kept_ours = false;
        let renamed = txn.header.rename_to_end(
            |f| {
                if !f.name.eq_ignore_ascii_case("Authentication-Results") {
                    return false;
                }
                if !claims_id(f.raw, &our_id) {
                    return !signed;
                }
                if !kept_ours && verified.iter().any(|v| v.as_slice() == f.raw) {
                    kept_ours = true;
                    return false;
                }
                true
            },
            "Original-Authentication-Results",
        );
        if renamed > 0 {
            self.log.log(
                crate::log::Level::Info,
                format_args!("renamed {renamed} incoming Authentication-Results"),
            );
        }
    }

    /// The Received value: the `received_line` hook's text, or ours.
    fn received_value(&mut self) -> String {
        let esmtp = self.conn.hello.as_ref().is_some_and(|g| g.esmtp);
        let mut smtp = if esmtp { "ESMTP" } else { "SMTP" }.to_string();
        let mut tls = String::new();
        if let Some(t) = &self.conn.tls {
            if esmtp {
                smtp.push('S');
            }
            tls = format!("({} cipher {})", t.version, t.cipher);
        }
        let mut auth = String::new();
        if let Some(a) = &self.conn.auth {
            if esmtp {
                smtp.push('A');
            }
            auth = format!(
                "(smtp-auth username {}, mechanism {})",
                comment_text(&a.user, self.txn.smtputf8),
                a.mechanism
            );
        }
        let out = self.run(
            Hook::ReceivedLine,
            Args::ReceivedLine {
                smtp: &smtp,
                auth: &auth,
                tls: &tls,
            },
        );
        if out.verdict == Verdict::Ok && !out.msg.is_empty() {
            return out.msg.join("\n");
        }
        let tls_part = if tls.is_empty() {
            String::new()
        } else {
            format!(" {tls}")
        };
        // The client's port helps match the header with connection logs and NAT tables.
        let peer = match self.conn.remote_port {
            Some(port) => format!("{} port {port}", self.conn.remote_ip),
            None => self.conn.remote_ip.clone(),
        };
        // Sized once: format! would start from nothing and grow the string a piece at a
        // time.
        let mut value = String::with_capacity(256);
        let _ = write!(
            value,
            "from {} (HELO {}) ({peer})\n by {} (qpsmtpd-rs/{VERSION}) with {smtp}{tls_part} id {}; {}",
            comment_text(&self.conn.remote_info, false),
            comment_text(self.conn.hello_host(), self.txn.smtputf8),
            self.settings.me,
            self.txn.id,
            rfc5322(self.now()),
        );
        value
    }

    /// `<id>; auth=none` or `<id>; auth=pass (<mech>) smtp.auth=<user>`, then whatever
    /// plugins stored in the connection note `authentication_results`.
    fn auth_results_value(&self, id: &str) -> String {
        let mut v = match &self.conn.auth {
            Some(a) => format!(
                "{id}; auth=pass ({}) smtp.auth={}",
                a.mechanism,
                pvalue(&a.user, self.txn.smtputf8)
            ),
            None => format!("{id}; auth=none"),
        };
        if let Some(more) = self.conn.notes.get("authentication_results")
            && !more.is_empty()
        {
            v.push_str("; ");
            v.push_str(more);
        }
        v
    }
}

/// The value of a `tag=value` in a DKIM-Signature (RFC 6376 §3.2).
fn dkim_tag<'a>(sig: &'a str, tag: &str) -> Option<&'a str> {
    sig.split(';').find_map(|part| {
        let (k, v) = part.split_once('=')?;
        (k.trim() == tag).then(|| v.trim())
    })
}

/// An authserv-id compared as RFC 8601 §2.5 asks: case-insensitively, as a domain name
/// (a final dot does not count). Also folded as a lenient reader might: invisible format
/// characters dropped, full-width forms as ASCII, the full stops IDNA maps to a dot as a dot.
fn normal_id(id: &str) -> String {
    let folded: String = id
        .chars()
        .filter(|c| !invisible(*c))
        .map(|c| match c {
            '\u{3002}' | '\u{ff0e}' | '\u{ff61}' => '.',
            '\u{ff01}'..='\u{ff5e}' => char::from_u32(c as u32 - 0xfee0).unwrap_or(c),
            c => c,
        })
        .collect();
    folded.trim().trim_end_matches('.').to_lowercase()
}

/// Characters a reader shows as nothing (zero-width spaces and joiners, direction marks,
/// the byte-order mark, the soft hyphen).
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{feff}'
    )
}

/// Does an Authentication-Results value (the bytes after the colon) claim `our_id`
/// (normalised)? As written, or with its RFC 2047 encoded-words decoded: Python's email
/// package (`policy.default`) decodes them in this field, so `=?utf-8?q?<our id>?=` reads
/// as our id there.
fn claims_id(raw: &[u8], our_id: &str) -> bool {
    if authserv_id(&String::from_utf8_lossy(raw)) == our_id {
        return true;
    }
    if !raw.windows(2).any(|w| w == b"=?") {
        return false;
    }
    let mut line = raw.to_vec();
    line.push(b'\n');
    match mail_parser::parsers::MessageStream::new(&line).parse_unstructured() {
        mail_parser::HeaderValue::Text(text) => authserv_id(&text) == our_id,
        _ => false,
    }
}

/// The authserv-id an Authentication-Results value starts with (RFC 8601 §2.2: after
/// blanks and comments, a token or a quoted string), normalised. Read generously: anything
/// a reader downstream might take for our id counts as claiming it, so the token ends at
/// the first blank, control character, RFC 2045 special (`/`, `:`, `,`, `=`, ...) or
/// character that is not valid text, and invisible characters count for nothing.
fn authserv_id(text: &str) -> String {
    let text: String = text.chars().filter(|c| !invisible(*c)).collect();
    let rest = skip_cfws(&text);
    let id: String = match rest.strip_prefix('"') {
        Some(quoted) => {
            let mut out = String::new();
            let mut chars = quoted.chars();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => out.extend(chars.next()),
                    c => out.push(c),
                }
            }
            out
        }
        None => rest
            .chars()
            .take_while(|c| {
                !c.is_whitespace() && !c.is_control() && *c != '\u{fffd}' && !"()<>@,;:\\\"/[]?=".contains(*c)
            })
            .collect(),
    };
    normal_id(&id)
}

/// `s` without its leading blanks, line breaks and comments (nested, with quoted pairs).
fn skip_cfws(mut s: &str) -> &str {
    loop {
        s = s.trim_start();
        if !s.starts_with('(') {
            return s;
        }
        let mut depth = 0;
        let mut escaped = false;
        let mut end = s.len();
        for (i, c) in s.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        s = &s[end..];
    }
}

/// Client-supplied characters shown as `?` in our fields even in an SMTPUTF8 message:
/// control characters, U+FFFD left by invalid UTF-8, invisible and direction-changing
/// characters, and the Unicode line and paragraph separators.
fn hidden(c: char) -> bool {
    c.is_control() || invisible(c) || matches!(c, '\u{fffd}' | '\u{2028}' | '\u{2029}')
}

/// Client-supplied text for inside a comment of a trace field (RFC 5322 §3.2.2): `(`, `)`
/// and `\` as quoted pairs so the comment ends where ours does, and `;` too (the date
/// follows the last `;`, and some readers split at the first); [`hidden`] characters as
/// `?`; other non-ASCII text as `?` unless the message is SMTPUTF8 (RFC 6532); at most
/// [`MAX_NAME`] bytes, then `...`.
fn comment_text(s: &str, utf8: bool) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_NAME + 3));
    for c in s.chars() {
        let quoted = matches!(c, '(' | ')' | '\\' | ';');
        let shown = if hidden(c) || (!c.is_ascii() && !utf8) {
            '?'
        } else {
            c
        };
        if out.len() + usize::from(quoted) + shown.len_utf8() > MAX_NAME {
            out.push_str("...");
            break;
        }
        if quoted {
            out.push('\\');
        }
        out.push(shown);
    }
    out
}

/// A property value for Authentication-Results (RFC 8601 §2.2 `pvalue`): as it is when it
/// is a plain name or address, else a quoted string (RFC 5322 §3.2.4), so a `;`, blank or
/// comment in it cannot start a result of its own.
fn pvalue(s: &str, utf8: bool) -> String {
    let word = |w: &str| {
        !w.is_empty()
            && w.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-'))
    };
    let plain = match s.split_once('@') {
        Some((local, domain)) => word(local) && word(domain),
        None => word(s),
    };
    if plain {
        return s.to_string();
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if hidden(c) || (!c.is_ascii() && !utf8) => out.push('?'),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A time as local time with a numeric zone, as in RFC 5322 §3.3 (qpsmtpd's strftime
/// format).
pub fn rfc5322(time: std::time::SystemTime) -> String {
    crate::localtime::at(time)
        .strftime("%a, %d %b %Y %H:%M:%S %z")
        .to_string()
}

#[cfg(test)]
mod tests;
