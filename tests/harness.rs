//! The transcript checks themselves: each must fail when what it claims is not so, or a
//! transcript could pass while checking nothing (a `lacks` on a message never delivered,
//! a count of files in the wrong maildir).

use std::path::Path;

use crate::support::transcript::Transcript;
use crate::support::{TestDir, run_in_process, verify};

/// Two messages, the first to alice@example.com and bob@example.net, the second to
/// carol@example.com, each recipient in its own maildir below `$DIR/mail/<domain>/<local>`.
const TWO_MESSAGES: &str = "\
! config plugins rcpt_ok
! config plugins queue/maildir $DIR/mail %d/%l
! config rcpthosts example.com
! config rcpthosts example.net
S: 220 *
C: HELO c.example
S: 250 *
C: MAIL FROM:<a@b.c>
S: 250 *
C: RCPT TO:<alice@example.com>
S: 250 *
C: RCPT TO:<bob@example.net>
S: 250 *
C: DATA
S: 354 *
C: Subject: first
C: 
C: one
C: .
S: 250 *
C: MAIL FROM:<a@b.c>
S: 250 *
C: RCPT TO:<carol@example.com>
S: 250 *
C: DATA
S: 354 *
C: Subject: second
C: 
C: two
C: .
S: 250 *
C: QUIT
S: 221 *
";

/// A refused message: no queue plugin, so DATA ends in 451 and nothing is delivered.
const NOTHING_DELIVERED: &str = "\
! config plugins rcpt_ok
! config rcpthosts example.com
S: 220 *
C: HELO c.example
S: 250 *
C: MAIL FROM:<a@b.c>
S: 250 *
C: RCPT TO:<x@example.com>
S: 250 *
C: DATA
S: 354 *
C: Subject: refused
C: 
C: y
C: .
S: 451 *
C: QUIT
S: 221 *
";

/// Runs a transcript in-process with extra lines appended; the verdict of the checks.
fn outcome(base: &str, extra: &str) -> Result<(), String> {
    let t = Transcript::parse(&format!("{base}{extra}"), Path::new("harness-test.smtp")).unwrap();
    let dir = TestDir::new(&t.config);
    let run = run_in_process(&t, &dir);
    verify(&t, &dir, &run, "in-process")
}

fn fails_with(base: &str, extra: &str, why: &str) {
    match outcome(base, extra) {
        Ok(()) => panic!("these checks passed but must fail ({why}):\n{extra}"),
        Err(e) => assert!(e.contains(why), "failed for another reason than {why:?}:\n{e}"),
    }
}

#[test]
fn correct_checks_pass() {
    let checks = "\
? messages 3
? maildir mail/example.com/alice has 1
? maildir mail/example.net/bob has 1
? maildir mail/example.com/carol has 1
? message 1 contains Subject: first
? message 2 contains Subject: first
? message 3 contains Subject: second
? message contains Subject: second
? message 3 lacks Subject: first
? message to bob@example.net contains Delivered-To: bob@example.net\\n
? message to bob@example.net lacks alice@
? message to carol@example.com contains \\ntwo\\n
? spool empty
";
    outcome(TWO_MESSAGES, checks).unwrap();
    outcome(NOTHING_DELIVERED, "? messages 0\n? spool empty\n").unwrap();
    // Without a `? messages` line, nothing may be delivered: this one delivers nothing.
    outcome(NOTHING_DELIVERED, "").unwrap();
}

#[test]
fn a_message_check_fails_when_no_message_was_delivered() {
    fails_with(
        NOTHING_DELIVERED,
        "? message lacks anything\n",
        "no message was delivered",
    );
    fails_with(
        NOTHING_DELIVERED,
        "? message contains y\n",
        "no message was delivered",
    );
    fails_with(
        NOTHING_DELIVERED,
        "? message 1 lacks x\n",
        "message 1 was not delivered",
    );
    fails_with(
        NOTHING_DELIVERED,
        "? message to x@example.com lacks x\n",
        "0 delivered messages have Delivered-To: x@example.com",
    );
}

#[test]
fn a_message_check_reads_the_message_it_names() {
    fails_with(
        TWO_MESSAGES,
        "? messages 3\n? message 4 lacks x\n",
        "message 4 was not delivered",
    );
    fails_with(
        TWO_MESSAGES,
        "? messages 3\n? message 1 contains second\n",
        "does not contain",
    );
    fails_with(
        TWO_MESSAGES,
        "? messages 3\n? message contains first\n",
        "does not contain",
    );
    fails_with(
        TWO_MESSAGES,
        "? messages 3\n? message 3 lacks two\n",
        "message 3 contains",
    );
    fails_with(
        TWO_MESSAGES,
        "? messages 3\n? message to alice@example.com lacks Subject: first\n",
        "the message to alice@example.com contains",
    );
    fails_with(
        TWO_MESSAGES,
        "? messages 3\n? message to dave@example.com contains first\n",
        "0 delivered messages have",
    );
}

#[test]
fn a_maildir_check_counts_only_that_maildir() {
    // The %l and %d swapped: the message is there, but not where the check looks.
    fails_with(
        TWO_MESSAGES,
        "? messages 3\n? maildir mail/alice/example.com has 1\n",
        "expected 1 messages in",
    );
    fails_with(
        TWO_MESSAGES,
        "? messages 3\n? maildir mail/example.com/alice has 2\n",
        "found 1",
    );
}

#[test]
fn an_undeclared_delivery_or_a_spool_file_fails_the_run() {
    fails_with(TWO_MESSAGES, "", "expected 0 delivered messages, found 3");
    fails_with(
        TWO_MESSAGES,
        "? messages 2\n",
        "expected 2 delivered messages, found 3",
    );
    // A file left in the spool directory (written there through a config name).
    let leftover = "! config ../spool/leftover x\n? messages 0\n";
    fails_with(NOTHING_DELIVERED, leftover, "spool not empty");
}
