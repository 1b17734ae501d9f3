//! The integration tests: one binary, modules listed here.

mod support;

/// AUTH through the binary: password schemes, hostile credentials, the one failure
/// reply, Dovecot's canonical names, the shipped submission configs.
mod auth;
/// The binary as a process: exit codes, flags, stderr safety, pipelining, memory.
mod cli;
/// swaks and Python smtplib through ucspi-tcp's tcpserver.
mod clients;
/// Message data and header integrity: DATA edge cases, our headers, memory, deadlines.
mod data;
/// The same transcripts through Perl qpsmtpd: reply codes must agree.
mod differential;
/// The resolver through the binary against the test DNS server: no socket without DNS
/// plugins (strace), five zones in one round trip, an IPv6 server.
mod dns;
/// `250` only after the hand-off is durable, read from the system calls under strace.
mod durability;
/// External plugins under a super-server's fd layout, and the cost of each mode.
mod external;
/// The transcript checks fail when what they claim is not so.
mod harness;
/// The repository's consistency: plugin READMEs, registry, docs, sample config.
mod layout;
/// Third-party probes under tcpserver: nmap's smtp-open-relay, SMTP smuggling payloads.
mod probes;
/// Queue hand-off: real backends (Postfix, Dovecot LMTP, Exim, a qmail-queue stand-in)
/// and faults.
mod queue;
/// Debian's stock /etc/qpsmtpd: `--check`, a delivery through tcpserver, its DNS
/// plugins against the test DNS server.
mod stock;
/// tcpserver, xinetd, systemd-socket-activate, runit and daemontools for real; the
/// privilege drop; `--check`.
mod supervision;
/// A FIFO as a config file, SIGTERM at any point of a session, config numbers refused at
/// start, `$include` when serving as root.
mod termination;
/// STARTTLS, implicit TLS, UCSPI-TLS and AUTH with real clients and password stores.
mod tls;
/// Every transcript under tests/transcripts, in-process and through the binary.
mod transcripts;
