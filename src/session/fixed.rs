//! The session's own replies with fixed texts, by name: the core's sequence, syntax and
//! limit checks and the events of the connection (qpsmtpd's texts where it has one). What
//! each verdict of a hook gives is in the table in `refusals.rs`. A `<placeholder>` is
//! filled in where the reply is sent ([`Fixed::about`], [`Fixed::with`]).

use crate::reply::Fixed;

// The greeting and HELO/EHLO (RFC 2034 §3: no enhanced status code).

/// The greeting from `smtpgreeting` (with ` ESMTP` added unless it says so).
pub const CONFIGURED_GREETING: Fixed = Fixed::plain(220, "<smtpgreeting>");
/// The greeting without `smtpgreeting`.
pub const GREETING: Fixed = Fixed::plain(
    220,
    concat!(
        "<me> ESMTP qpsmtpd-rs ",
        env!("CARGO_PKG_VERSION"),
        " ready; send us your mail, but not your spam."
    ),
);
/// HELO accepted.
pub const HELO_OK: Fixed = Fixed::plain(
    250,
    "<me> Hi <remote-info> [<remote-ip>]; I am so happy to meet you.",
);
/// The first line of EHLO accepted (the keywords follow).
pub const EHLO_OK: Fixed = Fixed::plain(250, "<me> Hi <remote-info> [<remote-ip>]");
/// HELO or EHLO without a name (`<verb>` is `helo` or `ehlo`).
pub const HELLO_NEEDS_DOMAIN: Fixed = Fixed::new(
    501,
    "5.5.4",
    "<verb> requires domain/address - see RFC-2821 4.1.1.1",
);

// Command lines.

/// A command line over 16 KiB.
pub const LINE_TOO_LONG: Fixed = Fixed::new(500, "5.5.2", "Line too long");
/// A `*_parse` plugin's refusal without a text, or a parser that found nothing.
pub const SYNTAX_ERROR: Fixed = Fixed::new(501, "5.5.2", "Syntax error in command");
/// A bad HELO/EHLO argument (a `helo_parse`/`ehlo_parse` plugin's refusal without text).
pub const HELLO_SYNTAX_ERROR: Fixed = Fixed::new(501, "5.5.2", "Syntax error");
/// A command line with control characters or bytes that are not UTF-8 (README
/// Differences 62); `<reason>` says which.
pub const LINE_REFUSED: Fixed = Fixed::new(501, "5.5.2", "<reason>");
/// RSET, and NOOP when no plugin minds.
pub const OK: Fixed = Fixed::new(250, "2.0.0", "OK");

// MAIL and RCPT.

/// MAIL before HELO/EHLO.
pub const HELLO_FIRST: Fixed = Fixed::new(503, "5.5.1", "please say hello first ...");
/// A sender that does not parse.
pub const SENDER_UNPARSEABLE: Fixed = Fixed::new(501, "5.1.7", "could not parse your mail from command");
/// A recipient that does not parse (or `<>`).
pub const RECIPIENT_UNPARSEABLE: Fixed = Fixed::new(501, "5.1.3", "could not parse recipient");
/// RCPT without a sender.
pub const MAIL_BEFORE_RCPT: Fixed = Fixed::new(503, "5.5.1", "Use MAIL before RCPT");
/// More than `max_recipients` (RFC 5321 §4.5.3.1.10).
pub const TOO_MANY_RECIPIENTS: Fixed = Fixed::new(452, "4.5.3", "Too many recipients");
/// Sender-specified routing from a client that may not relay (README Differences 63).
pub const ROUTING_REFUSED: Fixed = Fixed::new(
    550,
    "5.7.1",
    "<recipient>, sender-specified routing is not allowed",
);
/// A config file that cannot be read: a temporary failure, never a guess.
pub const CONFIG_PROBLEM: Fixed = Fixed::new(
    451,
    "4.3.0",
    "Local configuration problem; please try again later",
);
/// A MAIL parameter value that is not what its keyword allows.
pub const PARAMETER_SYNTAX: Fixed = Fixed::new(501, "5.5.4", "Syntax error in parameters");
/// `SIZE` over `databytes` (RFC 1870 §6.2).
pub const SIZE_OVER_LIMIT: Fixed = Fixed::new(
    552,
    "5.3.4",
    "Message size exceeds fixed maximum message size (<bytes> bytes)",
);
/// `SIZE` larger than any number, with no limit set.
pub const SIZE_OVER_ANY_LIMIT: Fixed =
    Fixed::new(552, "5.3.4", "Message size exceeds fixed maximum message size");
/// A parameter we do not implement (RFC 5321 §4.1.1.11).
pub const UNSUPPORTED_PARAMETER: Fixed = Fixed::new(555, "5.5.4", "Unsupported parameter: <keyword>");
/// A non-ASCII address without `SMTPUTF8` (RFC 6531 §3.4).
pub const UTF8_REQUIRED: Fixed = Fixed::new(553, "5.6.7", "Non-ASCII address requires SMTPUTF8");
/// MAIL accepted.
pub const SENDER_OK: Fixed = Fixed::new(
    250,
    "2.1.0",
    "<sender>, sender OK - how exciting to get mail from you!",
);
/// RCPT accepted.
pub const RECIPIENT_OK: Fixed = Fixed::new(250, "2.1.5", "<recipient>, recipient ok");

// DATA and the message.

/// DATA without a sender.
pub const MAIL_FIRST: Fixed = Fixed::new(503, "5.5.1", "MAIL first");
/// DATA without recipients.
pub const RCPT_FIRST: Fixed = Fixed::new(503, "5.5.1", "RCPT first");
/// DATA accepted.
pub const GO_AHEAD: Fixed = Fixed::plain(354, "go ahead; end with <CRLF>.<CRLF>");
/// A bare LF or CR in message data on a network connection (SMTP smuggling).
pub const BARE_NEWLINE: Fixed = Fixed::new(
    421,
    "4.5.0",
    "Lines must end with CRLF; bare LF or CR is not allowed (RFC 5321 2.3.8)",
);
/// Over `databytes` or `max_header_size`.
pub const MESSAGE_TOO_BIG: Fixed = Fixed::new(552, "5.3.4", "Message too big!");
/// A NUL byte in the message (README Differences 13).
pub const NUL_IN_MESSAGE: Fixed = Fixed::new(
    554,
    "5.6.0",
    "Message contains a NUL character; not accepted (RFC 5322 2.3)",
);
/// The spool file could not be written.
pub const SPOOL_FAILED: Fixed = Fixed::new(
    451,
    "4.3.0",
    "Temporary failure writing the message; try again later",
);
/// The input ended in the middle of a message.
pub const INCOMPLETE_DATA: Fixed = Fixed::new(451, "4.4.1", "Incomplete DATA");

// The connection.

/// Nothing arrived in time (README Differences 1).
pub const TIMEOUT: Fixed = Fixed::new(421, "4.4.2", "<me> Timeout; closing connection");
/// A termination signal.
pub const SHUTTING_DOWN: Fixed = Fixed::new(421, "4.3.2", "<me> Service shutting down; closing connection");

// AUTH (RFC 4954).

/// AUTH in clear text when it is offered only after STARTTLS (RFC 3207 §4).
pub const STARTTLS_FIRST: Fixed = Fixed::new(530, "5.7.0", "Must issue a STARTTLS command first");
/// A second AUTH.
pub const AUTH_ALREADY: Fixed = Fixed::new(503, "5.5.1", "but you already said AUTH ...");
/// AUTH during a mail transaction (RFC 4954 §4).
pub const AUTH_IN_TRANSACTION: Fixed =
    Fixed::new(503, "5.5.1", "AUTH not permitted during a mail transaction");
/// A challenge of the exchange (base64).
pub const AUTH_CHALLENGE: Fixed = Fixed::plain(334, "<challenge>");
/// A mechanism we do not offer.
pub const MECHANISM_UNKNOWN: Fixed = Fixed::new(
    504,
    "5.5.4",
    "Unimplemented authentication mechanism: <mechanism>",
);
/// The same, when the word sent as a mechanism may be a credential (not echoed).
pub const MECHANISM_UNKNOWN_UNNAMED: Fixed =
    Fixed::new(504, "5.5.4", "Unimplemented authentication mechanism");
/// `*` (RFC 4954 §4).
pub const AUTH_CANCELED: Fixed = Fixed::new(501, "5.0.0", "Authentication canceled");
/// A response that is not base64.
pub const AUTH_UNDECODABLE: Fixed = Fixed::new(501, "5.5.2", "Cannot decode response");
/// A CRAM-MD5 response without user and digest.
pub const AUTH_INVALID_STRING: Fixed = Fixed::new(504, "5.5.4", "Invalid authentication string");
/// A response line over the command limit (RFC 4954 §4).
pub const AUTH_LINE_TOO_LONG: Fixed = Fixed::new(500, "5.5.6", "Authentication Exchange line is too long");
/// AUTH succeeded (qpsmtpd's text; `<detail>` is ` - ` and the plugin's message, or nothing).
pub const AUTH_SUCCEEDED: Fixed = Fixed::new(
    235,
    "2.7.0",
    "<mechanism> authentication successful for <user><detail>",
);
/// Every refused credential (README Differences 56): nothing tells an unknown user from
/// a wrong password.
pub const CREDENTIALS_INVALID: Fixed = Fixed::new(535, "5.7.8", "Authentication credentials invalid");
/// The password store cannot answer now.
pub const AUTH_TEMPORARY: Fixed = Fixed::new(454, "4.7.0", "Temporary authentication failure");
/// `max_auth_failures` reached.
pub const TOO_MANY_AUTH_FAILURES: Fixed = Fixed::new(
    421,
    "4.7.0",
    "<me> Too many authentication failures; closing connection",
);

// STARTTLS (RFC 3207).

/// STARTTLS with parameters (RFC 3207 §4).
pub const STARTTLS_PARAMETERS: Fixed = Fixed::new(501, "5.5.4", "Syntax error (no parameters allowed)");
/// TLS cannot start (certificate unreadable, bad settings).
pub const TLS_UNAVAILABLE: Fixed = Fixed::new(454, "4.7.0", "TLS not available due to temporary reason");
/// The handshake may begin (qpsmtpd's text).
pub const TLS_GO_AHEAD: Fixed = Fixed::new(220, "2.0.0", "Go ahead with TLS");
