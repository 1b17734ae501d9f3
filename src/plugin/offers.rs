//! What a plugin offers the session besides its hooks: EHLO keywords, the files that make
//! TLS possible, AUTH mechanisms. Asked once, when the plugin is loaded.

use std::time::Duration;

use super::Hook;
use crate::tls::TlsFiles;

/// A SASL mechanism of AUTH (RFC 4954).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AuthMechanism {
    /// `PLAIN` (RFC 4616).
    Plain,
    /// `LOGIN` (the de-facto one).
    Login,
    /// `CRAM-MD5` (RFC 2195).
    CramMd5,
}

impl AuthMechanism {
    /// Every mechanism, in the order EHLO lists them.
    pub const ALL: [AuthMechanism; 3] = [AuthMechanism::Plain, AuthMechanism::Login, AuthMechanism::CramMd5];

    /// The name in EHLO and AUTH.
    pub fn name(self) -> &'static str {
        match self {
            AuthMechanism::Plain => "PLAIN",
            AuthMechanism::Login => "LOGIN",
            AuthMechanism::CramMd5 => "CRAM-MD5",
        }
    }

    /// The hook that checks it.
    pub fn hook(self) -> Hook {
        match self {
            AuthMechanism::Plain => Hook::AuthPlain,
            AuthMechanism::Login => Hook::AuthLogin,
            AuthMechanism::CramMd5 => Hook::AuthCramMd5,
        }
    }

    /// The mechanisms a plugin with these hooks checks: those whose hook it registers, or
    /// all of them with the generic `auth` hook (as in qpsmtpd).
    pub fn from_hooks(hooks: &[Hook]) -> Vec<AuthMechanism> {
        let all = hooks.contains(&Hook::Auth);
        AuthMechanism::ALL
            .into_iter()
            .filter(|m| all || hooks.contains(&m.hook()))
            .collect()
    }
}

/// What one plugin offers, or (from [`super::Chain::offers`]) what all of them offer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Offers {
    /// EHLO keywords to list after the core's (`XCLIENT NAME ADDR`). Keywords that depend
    /// on the client are added by an `ehlo` hook instead (`cx.txn.capabilities`).
    pub ehlo: Vec<String>,
    /// The certificate files that make STARTTLS possible (the `tls` plugin); read only
    /// when a client asks for TLS.
    pub tls: Option<TlsFiles>,
    /// The AUTH mechanisms it checks. Left empty, they follow from its hooks
    /// ([`AuthMechanism::from_hooks`], applied by [`super::Chain::offers`]).
    pub auth: Vec<AuthMechanism>,
    /// How long to wait for the client to speak first before the connect hooks (the
    /// `earlytalker` plugin); what arrived is in `Connection::early_input` while they run.
    pub greeting_wait: Option<Duration>,
    /// The same wait after DATA, before the `data` hooks and `354`.
    pub data_wait: Option<Duration>,
}

impl Offers {
    /// Adds what a later plugin offers: keywords after the earlier ones, the first TLS
    /// files, every mechanism once, in EHLO order.
    pub fn add(&mut self, other: &Offers) {
        for keyword in &other.ehlo {
            if !self.ehlo.contains(keyword) {
                self.ehlo.push(keyword.clone());
            }
        }
        if self.tls.is_none() {
            self.tls.clone_from(&other.tls);
        }
        self.auth.extend(&other.auth);
        self.auth.sort();
        self.auth.dedup();
        self.greeting_wait = self.greeting_wait.max(other.greeting_wait);
        self.data_wait = self.data_wait.max(other.data_wait);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::plugin::Chain;

    fn chain(plugins: &str) -> Chain {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("plugins"), plugins).unwrap();
        Chain::load(&Config::open(dir.path(), None).unwrap()).unwrap()
    }

    #[test]
    fn the_chain_adds_up_what_its_plugins_offer() {
        let c = chain("auth/auth_checkpassword checkpw /bin/false true /bin/true\ntls\ntls:2 other.crt\n");
        let offers = c.offers();
        assert_eq!(offers.auth, vec![AuthMechanism::Plain, AuthMechanism::Login]);
        let tls = offers.tls.expect("the tls plugin makes TLS possible");
        assert!(tls.cert.ends_with("ssl/qpsmtpd-server.crt"), "{tls:?}");
        assert!(offers.ehlo.is_empty());
    }

    #[test]
    fn a_generic_auth_hook_checks_every_mechanism() {
        let offers = chain("auth/authdeny\n").offers();
        assert_eq!(offers.auth, AuthMechanism::ALL.to_vec());
        assert_eq!(chain("rcpt_ok\n").offers(), Offers::default());
    }

    #[test]
    fn keywords_keep_their_order_and_come_once() {
        let mut all = Offers::default();
        let one = Offers {
            ehlo: vec!["XCLIENT NAME ADDR".into(), "XFORWARD NAME".into()],
            ..Offers::default()
        };
        let two = Offers {
            ehlo: vec!["XFORWARD NAME".into(), "X-ONE".into()],
            auth: vec![AuthMechanism::CramMd5, AuthMechanism::Plain],
            ..Offers::default()
        };
        all.add(&one);
        all.add(&two);
        assert_eq!(all.ehlo, vec!["XCLIENT NAME ADDR", "XFORWARD NAME", "X-ONE"]);
        assert_eq!(all.auth, vec![AuthMechanism::Plain, AuthMechanism::CramMd5]);
        assert_eq!(AuthMechanism::CramMd5.name(), "CRAM-MD5");
    }
}
