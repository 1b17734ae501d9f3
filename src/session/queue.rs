//! After the final dot: `data_post_headers`, trace headers, `data_post`, then the queue
//! hooks (qpsmtpd's `data_respond` after a complete, in-limit message).
//!
//! `250` is only ever sent for a queue verdict of `OK`, which a queue plugin gives only
//! once the message is durably handed off. Everything else is a 4xx or 5xx.

use super::refusals::{Answer, DATA_POST, QUEUE, QUEUE_PRE, answer};
use super::summary::Ending;
use super::{Session, State};
use crate::log::Level;
use crate::plugin::{Args, Hook, Verdict};

impl Session {
    /// A complete message is in the transaction. `read_ahead`: the client pipelined more
    /// after the dot.
    pub(super) fn message_received(&mut self, read_ahead: bool) {
        self.run(Hook::DataPostHeaders, Args::None);
        self.add_trace_headers();
        let out = self.run(Hook::DataPost, Args::None);
        if self.respond(&DATA_POST, out, "").is_none() {
            return;
        }
        // A client that pipelined more commands after the dot (QUIT) and then shut its
        // sending side still reads our answer: it is not asked about.
        if read_ahead {
            return self.queue();
        }
        self.enter(State::Queueing);
    }

    /// The driver's answer to "is the client still there?". A client gone before our
    /// answer gets nothing queued: queueing now could only make a duplicate of the
    /// message it will send again (qpsmtpd 1.01 does the same).
    pub(super) fn queue_if_alive(&mut self, alive: bool) {
        if !matches!(self.state, State::Queueing) {
            return;
        }
        self.enter(State::Commands);
        if alive {
            return self.queue();
        }
        self.log.log(
            Level::Notice,
            format_args!("client gone before queueing; message discarded"),
        );
        self.summary.end(Ending::GoneBeforeQueueing);
        self.reset_transaction();
        self.disconnect();
    }

    /// `queue_pre`, `queue`, reset, reply, `queue_post`.
    fn queue(&mut self) {
        let pre = self.run(Hook::QueuePre, Args::None);
        if self.respond(&QUEUE_PRE, pre, "").is_none() {
            return;
        }
        let out = self.run(Hook::Queue, Args::None);
        let size = self.txn.data_size;
        self.reset_transaction();
        if out.verdict == Verdict::Ok {
            self.summary.queued += 1;
        }
        if let Answer::Reply(reply, _) = answer(&QUEUE, out, "") {
            let ending = match reply.code {
                250 => Ending::Queued,
                code => Ending::NotQueued(code),
            };
            self.summary.end(ending);
            self.log.log(
                Level::Info,
                format_args!(
                    "message of {size} bytes: {} {}",
                    reply.code,
                    reply.lines.join(" ")
                ),
            );
            self.reply(reply);
        }
        let post = self.run(Hook::QueuePost, Args::None);
        if post.verdict != Verdict::Ok && post.verdict != Verdict::Declined {
            self.log.log(
                Level::Error,
                format_args!("queue_post returned {}: {}", post.verdict, post.msg.join(" ")),
            );
        }
    }
}
