//! The headers the core adds to every accepted message (reference §5): `Received`
//! (replaceable through the `received_line` hook) and `Authentication-Results`, with
//! forged `Authentication-Results` from the client renamed first.

use super::Session;
use crate::VERSION;
use crate::plugin::{Args, Hook, Verdict};

impl Session {
    /// Cleans old Authentication-Results, then puts A-R above Received at the top, as
    /// qpsmtpd 1.00 does (PR #50: before `data_post`, so content filters see them).
    pub(super) fn add_trace_headers(&mut self) {
        let auth_results_id = self.settings.auth_results_id.clone();
        if auth_results_id.is_some() {
            self.rename_old_auth_results();
        }
        let received = self.received_value();
        self.txn.header.add("Received", &received, Some(0));
        if let Some(id) = auth_results_id {
            let value = self.auth_results_value(&id);
            self.txn.header.add("Authentication-Results", &value, Some(0));
        }
    }

    /// Every `Authentication-Results` the message arrived with becomes
    /// `Original-Authentication-Results` at the end of the header, unless a DKIM
    /// signature covers that field (renaming it would break the signature). Unlike
    /// qpsmtpd 1.00 (quirk 19), all of them are renamed, not every other one.
    fn rename_old_auth_results(&mut self) {
        let signed = self.txn.header.get_all("DKIM-Signature").iter().any(|sig| {
            dkim_tag(sig, "h").is_some_and(|h| {
                h.split(':')
                    .any(|f| f.trim().eq_ignore_ascii_case("authentication-results"))
            })
        });
        if signed {
            return;
        }
        let old = self
            .txn
            .header
            .take(|f| f.name.eq_ignore_ascii_case("Authentication-Results"));
        for mut field in old {
            field.name = "Original-Authentication-Results".to_string();
            self.txn.header.push_field(field);
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
                crate::auth::comment_text(&a.user),
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
        format!(
            "from {} (HELO {}) ({peer})\n by {} (qpsmtpd-rs/{VERSION}) with {smtp}{tls_part} id {}; {}",
            self.conn.remote_info,
            header_safe(self.conn.hello_host()),
            self.settings.me,
            self.txn.id,
            rfc5322_now(),
        )
    }

    /// `<id>; auth=none` or `<id>; auth=pass (<mech>) smtp.auth=<user>`, then whatever
    /// plugins stored in the connection note `authentication_results`.
    fn auth_results_value(&self, id: &str) -> String {
        let mut v = match &self.conn.auth {
            Some(a) => format!(
                "{id}; auth=pass ({}) smtp.auth={}",
                a.mechanism,
                crate::auth::results_value(&a.user)
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

/// The client's HELO name as it may appear in a header: printable ASCII and UTF-8 kept,
/// anything else (control characters) replaced, so no header can be injected.
fn header_safe(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// Local time with a numeric zone, as in RFC 5322 §3.3 (qpsmtpd's strftime format).
pub fn rfc5322_now() -> String {
    crate::localtime::now()
        .strftime("%a, %d %b %Y %H:%M:%S %z")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dkim_h_tag() {
        let sig = "v=1; a=rsa-sha256; h=From:Subject:Authentication-Results; bh=x";
        assert_eq!(dkim_tag(sig, "h"), Some("From:Subject:Authentication-Results"));
        assert_eq!(dkim_tag(sig, "z"), None);
    }

    #[test]
    fn date_format() {
        let d = rfc5322_now();
        // e.g. "Sun, 22 Nov 2026 02:12:51 +0000"
        assert_eq!(d.len(), 31, "{d}");
        assert!(d[26..].starts_with('+') || d[26..].starts_with('-'), "{d}");
    }

    #[test]
    fn helo_cannot_inject() {
        assert_eq!(header_safe("a\u{1}b"), "a?b");
    }
}
