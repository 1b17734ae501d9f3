//! Postfix's XCLIENT extension, sent by queue/smtp-forward when configured.

use super::smtp::{Client, Error, Options, xtext};
use super::wire::{Broken, Trouble};
use crate::connection::Connection;
use crate::plugin::Context;

/// Postfix's XCLIENT (XCLIENT_README): the next hop logs and checks the original client.
/// Attributes the server did not list are left out; values are xtext.
pub fn xclient(cx: &Context<'_>, client: &mut Client, opts: &Options) -> Result<(), Error> {
    let Some(wanted) = client.keyword("XCLIENT").map(str::to_string) else {
        return Err(Error::Broken(Broken::new(
            Trouble::Protocol,
            format!("{}: the next hop does not offer XCLIENT", client.target()),
        )));
    };
    let wanted: Vec<&str> = wanted.split(' ').collect();
    // Postfix answers with a new greeting (220); 250 is accepted from others.
    for g in groups(attributes(cx.conn, &wanted)) {
        client.command(&format!("XCLIENT {g}"), &[220, 250])?;
    }
    // XCLIENT restarts the session: say hello again, with the client's name as qpsmtpd
    // did, so the next hop's Received header shows what our client said.
    let mut again = opts.clone();
    if !cx.conn.hello_host().is_empty() {
        again.helo = cx.conn.hello_host().to_string();
    }
    client.hello(&again)
}

/// `NAME=...`, `ADDR=...` and the others the server listed, in that order.
fn attributes(conn: &Connection, wanted: &[&str]) -> Vec<String> {
    let has = |name: &str| wanted.contains(&name);
    let unavailable = |s: &str| {
        if s.is_empty() {
            "[UNAVAILABLE]".to_string()
        } else {
            s.to_string()
        }
    };
    let mut attrs = Vec::new();
    if has("NAME") {
        let host = &conn.remote_host;
        let known = !(host.is_empty() || host == "Unknown" || host.starts_with('['));
        let name = if known { host.as_str() } else { "" };
        attrs.push(format!("NAME={}", xtext(&unavailable(name))));
    }
    if has("ADDR") {
        let ip = &conn.remote_ip;
        let ip = if ip.contains(':') {
            format!("IPV6:{ip}")
        } else {
            ip.clone()
        };
        attrs.push(format!("ADDR={}", xtext(&ip)));
    }
    if has("PORT")
        && let Some(port) = conn.remote_port
    {
        attrs.push(format!("PORT={port}"));
    }
    if has("HELO") {
        attrs.push(format!("HELO={}", xtext(&unavailable(conn.hello_host()))));
    }
    if has("PROTO")
        && let Some(g) = &conn.hello
    {
        attrs.push(format!("PROTO={}", if g.esmtp { "ESMTP" } else { "SMTP" }));
    }
    attrs
}

/// Postfix limits a command line to 2048 bytes: the attributes go in groups of ~500.
fn groups(attrs: Vec<String>) -> Vec<String> {
    let mut groups: Vec<String> = Vec::new();
    for a in attrs {
        match groups.last_mut() {
            Some(g) if g.len() + a.len() < 500 => {
                g.push(' ');
                g.push_str(&a);
            }
            _ => groups.push(a),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_go_in_groups_of_under_500_bytes() {
        let short: Vec<String> = ["NAME=a.example", "ADDR=192.0.2.1", "PORT=25"]
            .map(String::from)
            .to_vec();
        assert_eq!(groups(short), ["NAME=a.example ADDR=192.0.2.1 PORT=25"]);
        let long: Vec<String> = (0..4).map(|i| format!("HELO={i}{}", "x".repeat(200))).collect();
        let want = [
            format!("{} {}", long[0], long[1]),
            format!("{} {}", long[2], long[3]),
        ];
        assert_eq!(groups(long), want);
    }
}
