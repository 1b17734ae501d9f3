//! After the final dot: `data_post_headers`, trace headers, `data_post`, then the queue
//! hooks (reference §4, "After a complete, in-limit message").
//!
//! `250` is only ever sent for a queue verdict of `OK`, which a queue plugin gives only
//! once the message is durably handed off. Everything else is a 4xx or 5xx.

use super::Session;
use crate::log::Level;
use crate::plugin::{Args, Hook, Outcome, Verdict};
use crate::reply::Reply;

impl Session {
    /// A complete message is in the transaction.
    pub(super) fn message_received(&mut self) {
        self.run(Hook::DataPostHeaders, Args::None);
        self.add_trace_headers();
        let out = self.run(Hook::DataPost, Args::None);
        match out.verdict {
            Verdict::Done => {}
            Verdict::Deny => {
                self.refuse_message(Reply::from_plugin(552, "5.7.1", &out.msg, "Message denied"))
            }
            Verdict::DenySoft => self.refuse_message(Reply::from_plugin(
                452,
                "4.7.1",
                &out.msg,
                "Message denied temporarily",
            )),
            Verdict::DenyDisconnect => {
                self.refuse_message(Reply::from_plugin(552, "5.7.1", &out.msg, "Message denied"));
                self.disconnect();
            }
            Verdict::DenySoftDisconnect => {
                self.refuse_message(Reply::from_plugin(
                    452,
                    "4.7.1",
                    &out.msg,
                    "Message denied temporarily",
                ));
                self.disconnect();
            }
            Verdict::Ok | Verdict::Declined => self.queue(),
        }
    }

    fn refuse_message(&mut self, reply: Reply) {
        self.summary.outcome = format!("{} message refused", reply.code);
        self.reply(reply);
        self.reset_transaction();
    }

    /// `queue_pre`, `queue`, reset, reply, `queue_post`.
    fn queue(&mut self) {
        let pipelined_more = self.read_ahead;
        if let Some(probe) = self.liveness.as_mut()
            && !pipelined_more
            && !probe()
        {
            // The client is gone before our answer: queueing now could only create a
            // duplicate of the message it will send again (qpsmtpd 1.01 does the same).
            // A client that pipelined more commands after the dot (QUIT) and then shut its
            // sending side still reads our answer, so it is not treated as gone.
            self.log.log(
                Level::Notice,
                format_args!("client gone before queueing; message discarded"),
            );
            self.summary.outcome = "client gone before queueing".into();
            self.reset_transaction();
            return self.disconnect();
        }
        let pre = self.run(Hook::QueuePre, Args::None);
        match pre.verdict {
            Verdict::Done => return,
            Verdict::Ok | Verdict::Declined => {}
            // Quirk 14 fixed: Perl sent no reply at all here and left the client waiting.
            Verdict::Deny | Verdict::DenySoft | Verdict::DenyDisconnect | Verdict::DenySoftDisconnect => {
                return self.refuse_message(Reply::from_plugin(
                    451,
                    "4.3.0",
                    &pre.msg,
                    "Queuing declined or disabled; try again later",
                ));
            }
        }
        let out = self.run(Hook::Queue, Args::None);
        let size = self.txn.data_size;
        self.reset_transaction();
        self.queue_respond(out, size);
        let post = self.run(Hook::QueuePost, Args::None);
        if post.verdict != Verdict::Ok && post.verdict != Verdict::Declined {
            self.log.log(
                Level::Error,
                format_args!("queue_post returned {}: {}", post.verdict, post.msg.join(" ")),
            );
        }
    }

    fn queue_respond(&mut self, out: Outcome, size: u64) {
        let reply = match out.verdict {
            Verdict::Done => None,
            Verdict::Ok => Some(Reply::from_plugin(250, "2.0.0", &out.msg, "Queued")),
            Verdict::Deny => Some(Reply::from_plugin(552, "5.3.0", &out.msg, "Message denied")),
            Verdict::DenySoft => Some(Reply::from_plugin(
                452,
                "4.3.0",
                &out.msg,
                "Message denied temporarily",
            )),
            Verdict::Declined | Verdict::DenyDisconnect | Verdict::DenySoftDisconnect => {
                Some(Reply::from_plugin(
                    451,
                    "4.3.0",
                    &out.msg,
                    "Queuing declined or disabled; try again later",
                ))
            }
        };
        if out.verdict == Verdict::Ok {
            self.summary.queued += 1;
        }
        if let Some(reply) = reply {
            self.summary.outcome = if reply.code == 250 {
                "queued".to_string()
            } else {
                format!("{} not queued", reply.code)
            };
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
    }
}
