//! The benchmark's floor: the least an SMTP responder started per connection can do.
//!
//! It answers every command with a fixed reply, reads DATA to the final dot and, with
//! `--maildir DIR`, writes the message to `DIR/new` with the same syncs qpsmtpd-rs's
//! maildir delivery does (the library's own publish step: one flush or two syncs, as the
//! file system allows). No config, no plugins, no parsing beyond the verb.

use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;

use qpsmtpd_rs::durable;

fn main() {
    let mut args = std::env::args().skip(1);
    let mut maildir: Option<PathBuf> = None;
    while let Some(a) = args.next() {
        if a == "--maildir" {
            maildir = args.next().map(PathBuf::from);
        }
    }
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let _ = out.write_all(b"220 floor.example ESMTP\r\n");
    let _ = out.flush();
    let mut line = Vec::new();
    let mut count = 0u32;
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
            return;
        }
        let verb: Vec<u8> = line.iter().take(4).map(u8::to_ascii_uppercase).collect();
        let reply: &[u8] = match &verb[..] {
            b"EHLO" => b"250-floor.example\r\n250 PIPELINING\r\n",
            b"DATA" => {
                let _ = out.write_all(b"354 go ahead\r\n");
                let _ = out.flush();
                let mut message = Vec::with_capacity(4096);
                loop {
                    line.clear();
                    if input.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    if line == b".\r\n" {
                        break;
                    }
                    message.extend_from_slice(&line);
                }
                if let Some(dir) = &maildir {
                    count += 1;
                    store(dir, &message, count);
                }
                b"250 ok\r\n"
            }
            b"QUIT" => {
                let _ = out.write_all(b"221 bye\r\n");
                let _ = out.flush();
                return;
            }
            _ => b"250 ok\r\n",
        };
        let _ = out.write_all(reply);
        let _ = out.flush();
    }
}

fn store(dir: &std::path::Path, message: &[u8], n: u32) {
    let name = format!("{}.{}.{n}", std::process::id(), line_time());
    let tmp = dir.join("tmp").join(&name);
    let Ok(mut f) = std::fs::File::create_new(&tmp) else {
        return;
    };
    if f.write_all(message).is_err() {
        let _ = std::fs::remove_file(&tmp);
        return;
    }
    let scheme = durable::choose(&f).scheme;
    let _ = durable::publish(&f, dir, &name, scheme);
}

fn line_time() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}
