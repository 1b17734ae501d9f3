//! Why the connection to a next hop cannot be used any more, and what our client hears.

/// Why the connection to the next hop cannot be used any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trouble {
    /// No connection could be made (name lookup, refused, unreachable, connect timeout).
    Unreachable,
    /// A reply (or a write) did not complete before its deadline.
    Timeout,
    /// The next hop closed or reset the connection.
    Closed,
    /// It said something that is not the protocol: garbage, a reply code the command
    /// cannot have, replies nobody asked for.
    Protocol,
    /// TLS could not be set up or broke.
    Tls,
    /// A termination signal arrived while we waited.
    Terminated,
    /// Our side failed (the spooled message could not be read).
    Local,
}

impl Trouble {
    /// The text our client gets (RFC 3463 codes; the details go to the log only).
    pub fn client_text(self) -> &'static str {
        match self {
            Trouble::Unreachable => "4.4.1 Next hop not reachable; try again later",
            Trouble::Timeout => "4.4.2 Next hop did not answer in time",
            Trouble::Closed => "4.4.2 Next hop closed the connection; try again later",
            Trouble::Protocol => "4.5.0 Next hop answered out of protocol; try again later",
            Trouble::Tls => "4.7.0 TLS with the next hop failed; try again later",
            Trouble::Terminated => "4.3.2 Shutting down; try again later",
            Trouble::Local => "4.3.0 Local error while forwarding; try again later",
        }
    }
}

/// A connection that broke, with what happened (for the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// The kind, which picks the client's text.
    pub trouble: Trouble,
    /// What happened, naming the next hop.
    pub detail: String,
}

impl Broken {
    /// A broken connection of this kind.
    pub fn new(trouble: Trouble, detail: impl Into<String>) -> Broken {
        Broken {
            trouble,
            detail: detail.into(),
        }
    }
}
