//! The Public Suffix List (https://publicsuffix.org/list/): which part of a host name is
//! the registrable domain (`www.example.co.uk` → `example.co.uk`), which is what URI
//! blocklists list.

use std::collections::HashSet;

/// The list shipped with uribl (used when `public_suffix_list` is not set).
pub const DEFAULT: &str = include_str!("public_suffix_list.dat");

/// Rules of a public suffix list.
#[derive(Debug, Default)]
pub struct Psl {
    /// Plain rules (`co.uk`).
    rules: HashSet<String>,
    /// Wildcard rules without their `*.` (`*.ck` → `ck`).
    wild: HashSet<String>,
    /// Exception rules without their `!` (`!www.ck` → `www.ck`).
    except: HashSet<String>,
    /// The last label of every rule: the top-level domains the list knows.
    tlds: HashSet<String>,
}

impl Psl {
    /// Reads the list's format: one rule per line (its first word), `//` comments.
    pub fn parse<'a>(lines: impl Iterator<Item = &'a str>) -> Psl {
        let mut psl = Psl::default();
        for line in lines {
            let Some(rule) = line.split_whitespace().next() else {
                continue;
            };
            if rule.starts_with("//") {
                continue;
            }
            // Rules for internationalized names are written in Unicode; host names in
            // messages in their ASCII form (RFC 5890 A-labels).
            let Some(rule) = ascii_rule(&rule.trim_end_matches('.').to_lowercase()) else {
                continue;
            };
            if let Some(tld) = rule.rsplit('.').next() {
                psl.tlds.insert(tld.to_string());
            }
            if let Some(r) = rule.strip_prefix("*.") {
                psl.wild.insert(r.to_string());
            } else if let Some(r) = rule.strip_prefix('!') {
                psl.except.insert(r.to_string());
            } else {
                psl.rules.insert(rule);
            }
        }
        psl
    }

    /// Is this a top-level domain the list has rules for?
    pub fn knows_tld(&self, tld: &str) -> bool {
        self.tlds.contains(tld)
    }

    /// The registrable domain of a host name (lower case, no final dot): its public
    /// suffix and one more label; `None` when the host is itself a public suffix. The
    /// prevailing rule is an exception, else the longest match, else `*` (the list's
    /// algorithm).
    pub fn registrable(&self, host: &str) -> Option<String> {
        let labels: Vec<&str> = host.split('.').collect();
        let n = labels.len();
        let mut suffix = 1;
        for i in 0..n {
            let candidate = labels[i..].join(".");
            if self.except.contains(&candidate) {
                suffix = n - i - 1;
                break;
            }
            let parent = labels.get(i + 1..).map(|l| l.join("."));
            if self.rules.contains(&candidate)
                || parent.is_some_and(|p| !p.is_empty() && self.wild.contains(&p))
            {
                suffix = n - i;
                break;
            }
        }
        (n > suffix).then(|| labels[n - suffix - 1..].join("."))
    }
}

/// A rule with every Unicode label written as its A-label (`рф` → `xn--p1ai`).
fn ascii_rule(rule: &str) -> Option<String> {
    let labels: Option<Vec<String>> = rule
        .split('.')
        .map(|l| {
            if l.is_ascii() {
                Some(l.to_string())
            } else {
                punycode(l).map(|p| format!("xn--{p}"))
            }
        })
        .collect();
    labels.map(|l| l.join("."))
}

/// Punycode (RFC 3492 §6.3) of one label.
fn punycode(label: &str) -> Option<String> {
    const BASE: u32 = 36;
    const TMIN: u32 = 1;
    const TMAX: u32 = 26;
    let input: Vec<u32> = label.chars().map(u32::from).collect();
    let mut out: String = label.chars().filter(char::is_ascii).collect();
    let basic = out.len() as u32;
    if basic > 0 {
        out.push('-');
    }
    // 0..=25 are `a`..`z`, 26..=35 are `0`..`9`.
    let digit = |d: u32| char::from_digit(if d < 26 { d + 10 } else { d - 26 }, 36);
    let (mut n, mut delta, mut bias, mut h) = (128u32, 0u32, 72u32, basic);
    while (h as usize) < input.len() {
        let m = input.iter().copied().filter(|&c| c >= n).min()?;
        delta = delta.checked_add((m - n).checked_mul(h + 1)?)?;
        n = m;
        for &c in &input {
            if c < n {
                delta = delta.checked_add(1)?;
            }
            if c == n {
                let mut q = delta;
                let mut k = BASE;
                loop {
                    let t = if k <= bias { TMIN } else { (k - bias).min(TMAX) };
                    if q < t {
                        break;
                    }
                    out.push(digit(t + (q - t) % (BASE - t))?);
                    q = (q - t) / (BASE - t);
                    k += BASE;
                }
                out.push(digit(q)?);
                bias = adapt(delta, h + 1, h == basic);
                delta = 0;
                h += 1;
            }
        }
        delta += 1;
        n += 1;
    }
    Some(out)
}

fn adapt(delta: u32, points: u32, first: bool) -> u32 {
    let mut delta = if first { delta / 700 } else { delta / 2 };
    delta += delta / points;
    let mut k = 0;
    while delta > (35 * 26) / 2 {
        delta /= 35;
        k += 36;
    }
    k + (36 * delta) / (delta + 38)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_labels() {
        assert_eq!(super::ascii_rule("рф").as_deref(), Some("xn--p1ai"));
        assert_eq!(
            super::ascii_rule("bücher.example").as_deref(),
            Some("xn--bcher-kva.example")
        );
        assert_eq!(super::ascii_rule("中国").as_deref(), Some("xn--fiqs8s"));
        assert_eq!(super::ascii_rule("公司.cn").as_deref(), Some("xn--55qx5d.cn"));
    }

    use super::*;

    #[test]
    fn registrable_domains_by_the_lists_rules() {
        let psl =
            Psl::parse("// comment\ncom\nuk\nco.uk\n*.ck\n!www.ck\njp\n*.kobe.jp\n!city.kobe.jp\n".lines());
        let r = |h: &str| psl.registrable(h);
        assert_eq!(r("www.example.com").as_deref(), Some("example.com"));
        assert_eq!(r("example.com").as_deref(), Some("example.com"));
        assert_eq!(r("com"), None);
        assert_eq!(r("a.b.example.co.uk").as_deref(), Some("example.co.uk"));
        assert_eq!(r("co.uk"), None);
        assert_eq!(r("shop.example.ck").as_deref(), Some("shop.example.ck"));
        assert_eq!(r("example.ck"), None, "*.ck: example.ck is a public suffix");
        assert_eq!(r("a.www.ck").as_deref(), Some("www.ck"));
        assert_eq!(r("a.city.kobe.jp").as_deref(), Some("city.kobe.jp"));
        assert_eq!(r("a.b.other.kobe.jp").as_deref(), Some("b.other.kobe.jp"));
        assert_eq!(
            r("host.unknown").as_deref(),
            Some("host.unknown"),
            "the * default"
        );
        assert!(psl.knows_tld("uk") && psl.knows_tld("ck") && !psl.knows_tld("unknown"));
    }

    #[test]
    fn the_shipped_list() {
        let psl = Psl::parse(DEFAULT.lines());
        assert_eq!(
            psl.registrable("www.example.co.uk").as_deref(),
            Some("example.co.uk")
        );
        assert_eq!(
            psl.registrable("mail.example.com.au").as_deref(),
            Some("example.com.au")
        );
        assert_eq!(
            psl.registrable("spam.example.xyz").as_deref(),
            Some("example.xyz")
        );
        for tld in ["com", "net", "org", "de", "io", "top", "click", "xn--p1ai"] {
            assert!(psl.knows_tld(tld), "{tld}");
        }
        assert!(!psl.knows_tld("txt") && !psl.knows_tld("smith"));
    }
}
