//! DNS messages on the wire (RFC 1035 §4): a query we build, and a reply we read.
//!
//! The reader is the part of the resolver that sees hostile bytes: anyone who can get a
//! datagram to our port can send it anything. It reads only what the resolver needs (the
//! header, the question, the answer section's A, AAAA, MX, TXT, PTR and CNAME records),
//! never indexes past the end, never follows a compression pointer forwards or more than
//! [`MAX_JUMPS`] times, and keeps every size bounded: names to 255 bytes (RFC 1035
//! §2.3.4), at most [`MAX_ANSWERS`] answer records, TXT records to [`MAX_TXT`] bytes. It
//! answers `Err` for anything malformed and never panics (fuzzed: `fuzz/fuzz_targets/
//! dns_reply.rs`).
//!
//! Names read from a reply are written in presentation form, lower case, every byte
//! outside `!`..`~` (and `.` and `\` inside a label) as `\DDD` (RFC 1035 §5.1), so a PTR
//! or MX name can never carry a control character, a blank or a line end into a reply,
//! a header or a log line.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The largest name on the wire, length octets included (RFC 1035 §2.3.4).
pub const MAX_NAME: usize = 255;
/// Compression pointers followed in one name at most.
pub const MAX_JUMPS: usize = 32;
/// Answer records read from one reply; the rest are ignored.
pub const MAX_ANSWERS: usize = 64;
/// The text of one TXT record, at most (longer records are skipped).
pub const MAX_TXT: usize = 4096;
/// The UDP payload size we announce with EDNS (RFC 6891; the 2020 DNS flag day value).
pub const EDNS_SIZE: u16 = 1232;

/// Record type numbers (RFC 1035 §3.2.2, RFC 3596, RFC 6891).
pub mod rtype {
    /// An IPv4 address.
    pub const A: u16 = 1;
    /// An alias.
    pub const CNAME: u16 = 5;
    /// A name of an address.
    pub const PTR: u16 = 12;
    /// A mail exchanger.
    pub const MX: u16 = 15;
    /// Text.
    pub const TXT: u16 = 16;
    /// An IPv6 address.
    pub const AAAA: u16 = 28;
    /// EDNS options (RFC 6891).
    pub const OPT: u16 = 41;
}

/// Class IN.
pub const CLASS_IN: u16 = 1;

/// Response codes (RFC 1035 §4.1.1).
pub mod rcode {
    /// An answer (or none: NODATA).
    pub const NOERROR: u8 = 0;
    /// The name does not exist.
    pub const NXDOMAIN: u8 = 3;
}

/// Why a reply could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// It ends in the middle of something.
    Short,
    /// A name is too long, a pointer goes forwards or loops, a label type is unknown.
    BadName,
    /// A record's data does not fit its length or its type.
    BadRecord,
    /// Not a reply to a standard query (QR clear, another opcode, no single question).
    NotAReply,
}

/// The question of a message: name (presentation form, lower case, no final dot), type
/// and class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// The name.
    pub name: String,
    /// The type number.
    pub rtype: u16,
    /// The class number (1, IN).
    pub class: u16,
}

/// The data of an answer record the resolver uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    /// An IPv4 address.
    A(Ipv4Addr),
    /// An IPv6 address.
    Aaaa(Ipv6Addr),
    /// Preference and exchange name (`.` for a null MX, RFC 7505).
    Mx(u16, String),
    /// The character-strings, as they came.
    Txt(Vec<Vec<u8>>),
    /// A host name (reverse DNS).
    Ptr(String),
    /// The name this one is an alias of.
    Cname(String),
    /// Another type: read over, not kept.
    Other,
}

/// One answer record: owner name (presentation form, lower case) and data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The name the record belongs to.
    pub owner: String,
    /// What it says.
    pub data: Data,
}

/// A reply as far as the resolver reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The ID, copied from the query.
    pub id: u16,
    /// The response code ([`rcode`]).
    pub rcode: u8,
    /// TC: the answer did not fit; ask again over TCP.
    pub truncated: bool,
    /// The question, copied from the query.
    pub question: Question,
    /// The answer section's records of class IN (at most [`MAX_ANSWERS`]).
    pub answers: Vec<Record>,
}

/// The ID and question of a message, read without the rest: enough to tell whether a
/// datagram answers one of our queries before trusting anything else in it.
pub fn header(msg: &[u8]) -> Result<(u16, Question), WireError> {
    let (id, _, _, pos) = read_header(msg)?;
    let (question, _) = read_question(msg, pos)?;
    Ok((id, question))
}

/// Reads a reply.
pub fn parse(msg: &[u8]) -> Result<Reply, WireError> {
    let (id, flags, ancount, pos) = read_header(msg)?;
    let (question, mut pos) = read_question(msg, pos)?;
    let mut answers = Vec::new();
    for _ in 0..ancount.min(MAX_ANSWERS as u16) {
        let (record, next) = read_record(msg, pos)?;
        pos = next;
        if let Some(record) = record {
            answers.push(record);
        }
    }
    Ok(Reply {
        id,
        rcode: (flags & 0x000f) as u8,
        truncated: flags & 0x0200 != 0,
        question,
        answers,
    })
}

/// Builds a standard query with recursion desired and an EDNS OPT record. `name` must
/// already be checked: labels of 1 to 63 bytes, 253 bytes in all, no final dot.
pub fn query(id: u16, name: &str, rtype: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 30);
    out.extend_from_slice(&id.to_be_bytes());
    // RD set; one question, one additional record (OPT).
    out.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1]);
    for label in name.split('.') {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out.extend_from_slice(&rtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    // OPT: root owner, type 41, class = our UDP size, TTL 0 (version 0, DO clear), no data.
    out.push(0);
    out.extend_from_slice(&rtype::OPT.to_be_bytes());
    out.extend_from_slice(&EDNS_SIZE.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    out
}

fn u16_at(msg: &[u8], pos: usize) -> Result<u16, WireError> {
    match msg.get(pos..pos + 2) {
        Some(b) => Ok(u16::from_be_bytes([b[0], b[1]])),
        None => Err(WireError::Short),
    }
}

/// ID, flags, answer count and the position of the question.
fn read_header(msg: &[u8]) -> Result<(u16, u16, u16, usize), WireError> {
    if msg.len() < 12 {
        return Err(WireError::Short);
    }
    let id = u16_at(msg, 0)?;
    let flags = u16_at(msg, 2)?;
    let qdcount = u16_at(msg, 4)?;
    let ancount = u16_at(msg, 6)?;
    let is_reply = flags & 0x8000 != 0;
    let opcode = (flags >> 11) & 0x0f;
    if !is_reply || opcode != 0 || qdcount != 1 {
        return Err(WireError::NotAReply);
    }
    Ok((id, flags, ancount, 12))
}

fn read_question(msg: &[u8], pos: usize) -> Result<(Question, usize), WireError> {
    let (name, pos) = read_name(msg, pos)?;
    let rtype = u16_at(msg, pos)?;
    let class = u16_at(msg, pos + 2)?;
    Ok((Question { name, rtype, class }, pos + 4))
}

/// One resource record; `None` for a class other than IN or an over-long TXT record.
fn read_record(msg: &[u8], pos: usize) -> Result<(Option<Record>, usize), WireError> {
    let (owner, pos) = read_name(msg, pos)?;
    let rtype = u16_at(msg, pos)?;
    let class = u16_at(msg, pos + 2)?;
    let len = u16_at(msg, pos + 8)? as usize;
    let start = pos + 10;
    let end = start + len;
    let rdata = msg.get(start..end).ok_or(WireError::Short)?;
    let data = match rtype {
        rtype::A => Data::A(Ipv4Addr::from(
            <[u8; 4]>::try_from(rdata).map_err(|_| WireError::BadRecord)?,
        )),
        rtype::AAAA => Data::Aaaa(Ipv6Addr::from(
            <[u8; 16]>::try_from(rdata).map_err(|_| WireError::BadRecord)?,
        )),
        rtype::MX => {
            let preference = u16_at(rdata, 0).map_err(|_| WireError::BadRecord)?;
            Data::Mx(preference, name_filling(msg, start + 2, end)?)
        }
        rtype::PTR => Data::Ptr(name_filling(msg, start, end)?),
        rtype::CNAME => Data::Cname(name_filling(msg, start, end)?),
        rtype::TXT => match read_txt(rdata)? {
            Some(strings) => Data::Txt(strings),
            None => return Ok((None, end)),
        },
        _ => Data::Other,
    };
    let record = (class == CLASS_IN).then_some(Record { owner, data });
    Ok((record, end))
}

/// A name that must take exactly the rest of a record's data.
fn name_filling(msg: &[u8], pos: usize, end: usize) -> Result<String, WireError> {
    let (name, next) = read_name(msg, pos)?;
    if next != end {
        return Err(WireError::BadRecord);
    }
    Ok(name)
}

/// TXT data: character-strings filling it exactly (RFC 1035 §3.3.14); `None` when its
/// text is longer than [`MAX_TXT`].
fn read_txt(rdata: &[u8]) -> Result<Option<Vec<Vec<u8>>>, WireError> {
    if rdata.len() > MAX_TXT + MAX_TXT / 255 + 1 {
        return Ok(None);
    }
    let mut strings = Vec::new();
    let mut rest = rdata;
    while let Some((&len, tail)) = rest.split_first() {
        let s = tail.get(..len as usize).ok_or(WireError::BadRecord)?;
        strings.push(s.to_vec());
        rest = &tail[len as usize..];
    }
    if strings.iter().map(Vec::len).sum::<usize>() > MAX_TXT {
        return Ok(None);
    }
    Ok(Some(strings))
}

/// A possibly compressed name (RFC 1035 §4.1.4) in presentation form, and the position
/// after it where it starts. Pointers must point backwards from where they stand.
pub fn read_name(msg: &[u8], start: usize) -> Result<(String, usize), WireError> {
    let mut out = String::new();
    let mut pos = start;
    let mut after = None;
    let mut wire_len = 1;
    let mut jumps = 0;
    loop {
        let len = *msg.get(pos).ok_or(WireError::Short)?;
        match len >> 6 {
            0 if len == 0 => break,
            0 => {
                let label = msg.get(pos + 1..pos + 1 + len as usize).ok_or(WireError::Short)?;
                wire_len += 1 + label.len();
                if wire_len > MAX_NAME {
                    return Err(WireError::BadName);
                }
                if !out.is_empty() {
                    out.push('.');
                }
                push_label(&mut out, label);
                pos += 1 + len as usize;
            }
            3 => {
                let target = (u16_at(msg, pos)? & 0x3fff) as usize;
                jumps += 1;
                if target >= pos || jumps > MAX_JUMPS {
                    return Err(WireError::BadName);
                }
                after.get_or_insert(pos + 2);
                pos = target;
            }
            _ => return Err(WireError::BadName),
        }
    }
    if out.is_empty() {
        out.push('.');
    }
    Ok((out, after.unwrap_or(pos + 1)))
}

/// One label in presentation form, lower case, with `\DDD` for every other byte.
fn push_label(out: &mut String, label: &[u8]) {
    for &b in label {
        match b {
            b'.' | b'\\' => {
                let _ = write!(out, "\\{b:03}");
            }
            b'!'..=b'~' => out.push(b.to_ascii_lowercase() as char),
            _ => {
                let _ = write!(out, "\\{b:03}");
            }
        }
    }
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
