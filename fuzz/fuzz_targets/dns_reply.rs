//! The DNS reply reader: any bytes, as a datagram from anyone may be. It must not panic;
//! what it reads must be bounded (at most 64 answers, TXT records of at most 4 KiB,
//! names of at most 255 wire bytes) and every name must be printable ASCII without a
//! blank, so that no PTR or MX name can carry a line end into a reply or a header; and
//! the typed answer the resolver makes from it must not panic either.

#![no_main]

use libfuzzer_sys::fuzz_target;
use qpsmtpd_rs::plugin::services::dns::wire::{self, Data, MAX_ANSWERS, MAX_TXT};
use qpsmtpd_rs::plugin::services::dns::{RecordType, answer_from};

fn printable(name: &str) {
    assert!(!name.is_empty() && name.len() <= 4 * 255, "{name:?}");
    assert!(name.bytes().all(|b| (b'!'..=b'~').contains(&b)), "{name:?}");
}

fuzz_target!(|data: &[u8]| {
    let header = wire::header(data);
    let Ok(reply) = wire::parse(data) else {
        return;
    };
    assert_eq!(header.ok(), Some((reply.id, reply.question.clone())));
    printable(&reply.question.name);
    assert!(reply.answers.len() <= MAX_ANSWERS);
    for record in &reply.answers {
        printable(&record.owner);
        match &record.data {
            Data::Mx(_, name) | Data::Ptr(name) | Data::Cname(name) => printable(name),
            Data::Txt(strings) => assert!(strings.iter().map(Vec::len).sum::<usize>() <= MAX_TXT),
            Data::A(_) | Data::Aaaa(_) | Data::Other => {}
        }
    }
    for rtype in [
        RecordType::A,
        RecordType::Aaaa,
        RecordType::Mx,
        RecordType::Txt,
        RecordType::Ptr,
    ] {
        let _ = answer_from(&reply, &reply.question.name, rtype);
    }
});
