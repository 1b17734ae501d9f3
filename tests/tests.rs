//! The integration tests: one binary, modules listed here.

mod support;

/// The same transcripts through Perl qpsmtpd: reply codes must agree.
mod differential;
/// Every transcript under tests/transcripts, in-process and through the binary.
mod transcripts;
