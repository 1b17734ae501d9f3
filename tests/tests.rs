//! The integration tests: one binary, modules listed here.

mod support;

/// The binary as a process: exit codes, flags, stderr safety, pipelining, memory.
mod cli;
/// swaks and Python smtplib through ucspi-tcp's tcpserver.
mod clients;
/// The same transcripts through Perl qpsmtpd: reply codes must agree.
mod differential;
/// tcpserver, xinetd, systemd-socket-activate, runit and daemontools for real; the
/// privilege drop; `--check`.
mod supervision;
/// Every transcript under tests/transcripts, in-process and through the binary.
mod transcripts;
