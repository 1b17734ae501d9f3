//! The reply reader on good and hostile messages.

use std::net::Ipv4Addr;

use super::super::fake::{push_name, reply};
use super::*;

fn question(name: &str, rtype: u16) -> Question {
    Question {
        name: name.into(),
        rtype,
        class: CLASS_IN,
    }
}

/// A reply header with one question `a.test A`, then `rest` as the answer section
/// holding `ancount` records.
fn with_answers(ancount: u16, rest: &[u8]) -> Vec<u8> {
    let mut msg = vec![0x12, 0x34, 0x81, 0x80, 0, 1];
    msg.extend_from_slice(&ancount.to_be_bytes());
    msg.extend_from_slice(&[0, 0, 0, 0]);
    push_name(&mut msg, "a.test");
    msg.extend_from_slice(&[0, 1, 0, 1]);
    msg.extend_from_slice(rest);
    msg
}

/// An answer record: owner pointer to the question name (offset 12), type, data.
fn record(rtype: u16, rdata: &[u8]) -> Vec<u8> {
    let mut r = vec![0xc0, 12];
    r.extend_from_slice(&rtype.to_be_bytes());
    r.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
    r.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    r.extend_from_slice(rdata);
    r
}

#[test]
fn a_query_reads_back_as_its_question() {
    let q = query(0xbeef, "10.2.0.192.dnsbl.test", rtype::TXT);
    let mut as_reply = q.clone();
    as_reply[2] |= 0x80;
    let (id, question) = header(&as_reply).unwrap();
    assert_eq!(
        (id, question),
        (0xbeef, self::question("10.2.0.192.dnsbl.test", rtype::TXT))
    );
    assert_eq!(header(&q), Err(WireError::NotAReply), "a query is not a reply");
}

#[test]
fn records_of_every_type() {
    let q = question("a.test", rtype::A);
    let answers = [
        ("a.test", Data::A(Ipv4Addr::new(127, 0, 0, 2))),
        ("a.test", Data::Aaaa("2001:db8::1".parse().unwrap())),
        ("a.test", Data::Mx(0, ".".into())),
        ("a.test", Data::Mx(10, "mx.a.test".into())),
        ("a.test", Data::Txt(vec![b"x".to_vec(), Vec::new()])),
        ("a.test", Data::Ptr("host.a.test".into())),
        ("a.test", Data::Cname("b.test".into())),
        ("a.test", Data::Other),
    ];
    let msg = reply(7, &q, 0, false, &answers);
    let r = parse(&msg).unwrap();
    assert_eq!((r.id, r.rcode, r.truncated), (7, 0, false));
    let data: Vec<Data> = r.answers.into_iter().map(|a| a.data).collect();
    let want: Vec<Data> = answers.into_iter().map(|(_, d)| d).collect();
    assert_eq!(data, want);
}

#[test]
fn compressed_names_are_followed_backwards_only() {
    let ptr = [3, b'f', b'o', b'o', 0xc0, 12];
    let msg = with_answers(1, &record(rtype::PTR, &ptr));
    assert_eq!(
        parse(&msg).unwrap().answers[0].data,
        Data::Ptr("foo.a.test".into())
    );
    // A pointer to itself, and one pointing forwards.
    let mut msg = with_answers(1, &[0xc0, 0]);
    let at = msg.len() - 2;
    msg[at + 1] = at as u8;
    assert_eq!(parse(&msg), Err(WireError::BadName));
    let msg = with_answers(1, &[0xc0, 0xff]);
    assert_eq!(parse(&msg), Err(WireError::BadName));
    // Labels that point back at each other forever end at the length limit.
    let mut msg = with_answers(1, &[]);
    let at = msg.len();
    msg.extend_from_slice(&[1, b'x', 0xc0, at as u8]);
    assert!(parse(&msg).is_err());
}

#[test]
fn hostile_names_are_escaped_and_bounded() {
    let evil = [6, b'a', b'\r', b'\n', b' ', b'.', b'\\', 0];
    let msg = with_answers(1, &record(rtype::PTR, &evil));
    assert_eq!(
        parse(&msg).unwrap().answers[0].data,
        Data::Ptr("a\\013\\010\\032\\046\\092".into())
    );
    let mut long = Vec::new();
    for _ in 0..5 {
        long.push(63);
        long.extend_from_slice(&[b'x'; 63]);
    }
    long.push(0);
    let msg = with_answers(1, &record(rtype::PTR, &long));
    assert_eq!(parse(&msg), Err(WireError::BadName));
    let msg = with_answers(1, &record(rtype::PTR, &[0x40, 0]));
    assert_eq!(parse(&msg), Err(WireError::BadName), "extended label types");
}

#[test]
fn record_data_must_fit_its_length_and_type() {
    assert_eq!(
        parse(&with_answers(1, &record(rtype::A, &[127, 0, 0]))),
        Err(WireError::BadRecord)
    );
    assert_eq!(
        parse(&with_answers(1, &record(rtype::AAAA, &[0; 4]))),
        Err(WireError::BadRecord)
    );
    assert_eq!(
        parse(&with_answers(1, &record(rtype::TXT, &[5, b'a']))),
        Err(WireError::BadRecord)
    );
    let ptr_and_more = [1, b'x', 0, 9];
    assert_eq!(
        parse(&with_answers(1, &record(rtype::PTR, &ptr_and_more))),
        Err(WireError::BadRecord)
    );
    assert_eq!(
        parse(&with_answers(1, &record(rtype::MX, &[0]))),
        Err(WireError::BadRecord)
    );
    let mut cut = record(rtype::A, &[127, 0, 0, 2]);
    cut.pop();
    assert_eq!(parse(&with_answers(1, &cut)), Err(WireError::Short));
    assert_eq!(
        parse(&with_answers(2, &record(rtype::A, &[127, 0, 0, 2]))),
        Err(WireError::Short)
    );
}

#[test]
fn sizes_are_bounded() {
    let mut big = Vec::new();
    for _ in 0..17 {
        big.push(255);
        big.extend_from_slice(&[b'x'; 255]);
    }
    let msg = with_answers(1, &record(rtype::TXT, &big));
    assert!(
        parse(&msg).unwrap().answers.is_empty(),
        "a TXT record over 4 KiB is skipped"
    );
    let one = record(rtype::A, &[127, 0, 0, 2]);
    let msg = with_answers(100, &one.repeat(100));
    assert_eq!(parse(&msg).unwrap().answers.len(), MAX_ANSWERS);
}

#[test]
fn not_replies() {
    assert_eq!(parse(&[]), Err(WireError::Short));
    assert_eq!(parse(&[0; 11]), Err(WireError::Short));
    let mut msg = with_answers(0, &[]);
    msg[5] = 2;
    assert_eq!(parse(&msg), Err(WireError::NotAReply), "two questions");
    let mut msg = with_answers(0, &[]);
    msg[2] |= 0x10;
    assert_eq!(parse(&msg), Err(WireError::NotAReply), "another opcode");
    let mut msg = with_answers(0, &[]);
    msg[2] |= 0x02;
    msg[3] = 0x83;
    let r = parse(&msg).unwrap();
    assert!(r.truncated && r.rcode == rcode::NXDOMAIN);
}

#[test]
fn other_classes_are_skipped() {
    let mut r = record(rtype::A, &[127, 0, 0, 2]);
    r[5] = 3;
    assert!(parse(&with_answers(1, &r)).unwrap().answers.is_empty());
}
