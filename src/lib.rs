//! qpsmtpd-rs: qpsmtpd, the plugin-driven SMTP receiver, in Rust.
//!
//! One process serves one connection on stdin/stdout, started by a super-server
//! (tcpserver, s6-tcpserver, xinetd, systemd `Accept=yes`), and exits when it ends.
//!
//! ```text
//! main.rs    flags → peer facts → privileges (leave root) → startup::open (config, limits,
//!            logging, plugins) → server::serve; `--check` runs check.rs instead
//! server.rs  the driver: reads lines and message data with timeouts, writes replies
//! session/   the SMTP state machine (no I/O): check → hooks → reply, per command
//! plugin/    the hook contract, the chain, the registry of built-in plugins and the
//!            runner for external plugin programs (plugin/external/)
//! plugins/   (top level) one folder per built-in plugin: code and README side by side
//! child.rs   every program we start (queue programs, external plugins, checkpassword):
//!            chosen descriptors, one deadline, the process group killed, always reaped
//! ```
//!
//! The session is sans-I/O so that the same transcript runs in-process in tests and
//! through the real binary over a socket.
// Denied, not forbidden: src/durable/range.rs alone allows it, for the one system call
// no safe crate wraps (sync_file_range), with a SAFETY comment on the block.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod address;
pub mod addrlist;
pub mod auth;
pub mod bytes;
pub mod cdb;
pub mod check;
pub mod child;
pub mod command;
pub mod config;
pub mod connection;
pub mod durable;
pub mod handoff;
pub mod header;
pub mod host;
pub mod io;
pub mod localtime;
pub mod log;
pub mod names;
pub mod pattern;
pub mod peer;
pub mod plugin;
pub mod privileges;
pub mod reply;
pub mod server;
pub mod session;
pub mod startup;
pub mod tls;
pub mod transaction;

/// The version shown in the greeting, HELP and Received headers.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
