//! The address parser: any bytes. Whatever parses must render, in every hand-off format,
//! to text without a control character or line separator, that parses back to the same
//! address; its argument form must be one address for an RFC 822 list parser.

#![no_main]

use libfuzzer_sys::fuzz_target;
use qpsmtpd_rs::address::{Address, forbidden};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for path in [text.to_string(), format!("<{text}>")] {
        let Some(a) = Address::parse(&path) else {
            continue;
        };
        for rendered in [a.address(), a.mailbox(), a.smtp_path(), a.to_string()] {
            assert!(!rendered.chars().any(forbidden), "{path:?} -> {rendered:?}");
        }
        assert_eq!(Address::parse(&a.smtp_path()), Some(a.clone()), "{path:?}");
        assert_eq!(
            Address::parse(&format!("<{}>", a.mailbox())),
            Some(a.clone()),
            "{path:?}"
        );
        if !a.is_null() {
            assert_eq!(list_items(&a.mailbox()), 1, "{path:?} -> {}", a.mailbox());
        }
        assert_eq!(a.is_null(), a.mailbox().is_empty(), "{path:?}");
    }
});

/// How many addresses an RFC 822 address-list parser (Postfix's tok822, Exim's
/// parse_find_address_end) sees: top-level commas outside quotes, comments, brackets.
fn list_items(s: &str) -> usize {
    let (mut items, mut quoted, mut escaped, mut depth, mut square) = (1, false, false, 0u32, false);
    for c in s.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted || depth > 0 => escaped = true,
            '"' if depth == 0 => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => depth -= 1,
            '[' if !quoted && depth == 0 => square = true,
            ']' if !quoted && depth == 0 => square = false,
            ',' | ';' if !quoted && depth == 0 && !square => items += 1,
            _ => {}
        }
    }
    items
}
