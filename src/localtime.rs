//! The local time zone, loaded cheaply.
//!
//! `jiff::Zoned::now()` resolves the system zone through jiff's zone database, which walks
//! all of `/usr/share/zoneinfo` first: about three million instructions, three quarters
//! of a whole SMTP session. Reading `/etc/localtime` (a TZif file) directly costs a few
//! thousand. `TZ` is honoured when set, as C's localtime does.

use std::sync::OnceLock;

use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

/// The current time in the local zone.
pub fn now() -> Zoned {
    Timestamp::now().to_zoned(zone().clone())
}

/// A time in the local zone (a time outside what a timestamp can hold, thousands of years
/// away, is taken as now).
pub fn at(time: std::time::SystemTime) -> Zoned {
    Timestamp::try_from(time)
        .unwrap_or_else(|_| Timestamp::now())
        .to_zoned(zone().clone())
}

/// The local zone: `TZ` if set (a zone name, `:name`, a path or a POSIX TZ string), else
/// `/etc/localtime`, else UTC.
pub fn zone() -> &'static TimeZone {
    static ZONE: OnceLock<TimeZone> = OnceLock::new();
    ZONE.get_or_init(|| match std::env::var("TZ") {
        Ok(tz) if !tz.is_empty() => from_tz(&tz),
        _ => from_file("/etc/localtime").unwrap_or(TimeZone::UTC),
    })
}

fn from_tz(tz: &str) -> TimeZone {
    let name = tz.strip_prefix(':').unwrap_or(tz);
    if name == "UTC" || name == "UTC0" || name == "GMT" {
        return TimeZone::UTC;
    }
    if name.starts_with('/') {
        return from_file(name).unwrap_or(TimeZone::UTC);
    }
    from_file(&format!("/usr/share/zoneinfo/{name}"))
        .or_else(|| TimeZone::posix(name).ok())
        .unwrap_or(TimeZone::UTC)
}

fn from_file(path: &str) -> Option<TimeZone> {
    if path.contains("..") {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    TimeZone::tzif("localtime", &bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tz_forms() {
        assert_eq!(from_tz("UTC"), TimeZone::UTC);
        assert!(from_tz("EST5EDT,M3.2.0,M11.1.0").to_offset(Timestamp::UNIX_EPOCH) != jiff::tz::Offset::UTC);
        assert_eq!(from_tz("../../etc/passwd"), TimeZone::UTC);
    }
}
