//! The environment a qmail-spp plugin sees: qmail-smtpd's (the tcpserver variables,
//! `RELAYCLIENT`) plus qmail-spp's `SMTP*` variables, plus what earlier plugins set
//! with `S` and `U`.

use std::collections::BTreeMap;
use std::process::Command;

use crate::connection::Connection;

/// Variables for one run; `None` removes a variable inherited from our environment.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Vars(pub BTreeMap<String, Option<String>>);

impl Vars {
    /// Sets a variable.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.0.insert(name.to_string(), Some(value.into()));
    }

    /// Removes a variable.
    pub fn unset(&mut self, name: &str) {
        self.0.insert(name.to_string(), None);
    }

    /// Adds every variable to a command.
    pub fn apply(&self, cmd: &mut Command) {
        for (name, value) in &self.0 {
            match value {
                Some(v) => cmd.env(name, v),
                None => cmd.env_remove(name),
            };
        }
    }
}

/// tcpserver's variables from the connection facts, so plugins see them under every
/// super-server (systemd and xinetd set other names or none), and `RELAYCLIENT` as the
/// relay decision stands now (a plugin such as `relay` may have changed it).
pub fn connection(conn: &Connection, relayclient: Option<String>) -> Vars {
    let mut v = Vars::default();
    v.set(
        "PROTO",
        if conn.remote_ip.contains(':') {
            "TCP6"
        } else {
            "TCP"
        },
    );
    v.set("TCPREMOTEIP", conn.remote_ip.as_str());
    if let Some(port) = conn.remote_port {
        v.set("TCPREMOTEPORT", port.to_string());
    }
    if !conn.remote_host.starts_with('[') {
        v.set("TCPREMOTEHOST", conn.remote_host.as_str());
    }
    if !conn.local_ip.is_empty() {
        v.set("TCPLOCALIP", conn.local_ip.as_str());
    }
    if let Some(port) = conn.local_port {
        v.set("TCPLOCALPORT", port.to_string());
    }
    if !conn.local_host.is_empty() {
        v.set("TCPLOCALHOST", conn.local_host.as_str());
    }
    match (conn.relay_client, relayclient) {
        (true, Some(value)) => v.set("RELAYCLIENT", value),
        (true, None) => v.set("RELAYCLIENT", ""),
        (false, _) => v.unset("RELAYCLIENT"),
    }
    if let Some(auth) = &conn.auth {
        v.set("SMTPAUTHUSER", auth.user.as_str());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcpserver_variables_and_relay() {
        let mut conn = Connection::new("1", "192.0.2.9");
        conn.remote_port = Some(4000);
        conn.relay_client = true;
        let v = connection(&conn, None);
        assert_eq!(v.0["TCPREMOTEIP"], Some("192.0.2.9".into()));
        assert_eq!(v.0["TCPREMOTEPORT"], Some("4000".into()));
        assert_eq!(v.0["RELAYCLIENT"], Some(String::new()));
        assert!(!v.0.contains_key("TCPREMOTEHOST"));
        conn.relay_client = false;
        assert_eq!(connection(&conn, Some("x".into())).0["RELAYCLIENT"], None);
    }
}
