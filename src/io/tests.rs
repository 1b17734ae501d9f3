//! The line reader over scripted and dripping transports.

use super::*;

fn t(chunks: &[&[u8]]) -> Scripted {
    Scripted::new(chunks.iter().map(|c| c.to_vec()).collect())
}

const T: Duration = Duration::from_secs(1);

#[test]
fn lines_crlf_lf_and_last_without_end() {
    let mut s = t(&[b"EHLO a\r\nNOOP\nQU", b"IT"]);
    let mut r = LineReader::new();
    assert_eq!(r.read_line(&mut s, 100, T).unwrap(), Line::Text(b"EHLO a"));
    assert!(r.has_line());
    assert_eq!(r.read_line(&mut s, 100, T).unwrap(), Line::Text(b"NOOP"));
    assert!(!r.has_line());
    assert_eq!(r.read_line(&mut s, 100, T).unwrap(), Line::Text(b"QUIT"));
    assert!(matches!(r.read_line(&mut s, 100, T), Err(ReadError::Eof)));
}

#[test]
fn too_long_lines_are_skipped_whole() {
    let long = vec![b'x'; 300];
    let mut s = Scripted::new(vec![long.clone(), long, b"\r\nNOOP\r\n".to_vec()]);
    let mut r = LineReader::new();
    assert_eq!(r.read_line(&mut s, 100, T).unwrap(), Line::TooLong);
    assert_eq!(r.read_line(&mut s, 100, T).unwrap(), Line::Text(b"NOOP"));
}

/// Delivers one byte per read, each after `gap`.
struct Trickle {
    bytes: Vec<u8>,
    gap: Duration,
}

impl Transport for Trickle {
    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        if self.gap > timeout {
            std::thread::sleep(timeout);
            return Err(io::Error::from(io::ErrorKind::TimedOut));
        }
        std::thread::sleep(self.gap);
        if self.bytes.is_empty() {
            return Ok(0);
        }
        buf[0] = self.bytes.remove(0);
        Ok(1)
    }

    fn write_all(&mut self, _buf: &[u8], _timeout: Duration) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_trickled_line_times_out_as_a_whole() {
    let mut s = Trickle {
        bytes: b"NOOP\r\n".to_vec(),
        gap: Duration::from_millis(40),
    };
    let mut r = LineReader::new();
    let started = Instant::now();
    let got = r.read_line(&mut s, 100, Duration::from_millis(100));
    assert!(matches!(got, Err(ReadError::Timeout)), "{got:?}");
    assert!(started.elapsed() < Duration::from_millis(400));
    let mut s = Trickle {
        bytes: b"NOOP\r\n".to_vec(),
        gap: Duration::from_millis(1),
    };
    let mut r = LineReader::new();
    assert_eq!(r.read_line(&mut s, 100, T).unwrap(), Line::Text(b"NOOP"));
}

#[test]
fn data_pieces_and_timeout() {
    let mut s = t(&[b"line one\r\nline", b" two\r\n", b""]);
    let mut r = LineReader::new();
    assert_eq!(
        r.read_data(&mut s, T, None).unwrap(),
        (&b"line one\r\n"[..], true)
    );
    assert_eq!(
        r.read_data(&mut s, T, None).unwrap(),
        (&b"line two\r\n"[..], false)
    );
    assert!(matches!(r.read_data(&mut s, T, None), Err(ReadError::Timeout)));
}

#[test]
fn very_long_data_line_comes_in_buffer_sized_pieces() {
    let mut data = vec![b'a'; BUFFER + 10];
    data.extend_from_slice(b"\r\n");
    let mut s = Scripted::new(vec![data]);
    let mut r = LineReader::new();
    assert_eq!(r.read_data(&mut s, T, None).unwrap().0.len(), BUFFER);
    assert_eq!(r.read_data(&mut s, T, None).unwrap().0, b"aaaaaaaaaa\r\n");
}

/// A transport that hands out one byte per read, each after `every`, then (after 50)
/// ends the input.
struct ByteDrip {
    every: Duration,
    reads: usize,
}

impl Transport for ByteDrip {
    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        if timeout < self.every {
            std::thread::sleep(timeout);
            return Err(io::Error::from(io::ErrorKind::TimedOut));
        }
        if self.reads == 50 {
            return Ok(0);
        }
        std::thread::sleep(self.every);
        self.reads += 1;
        buf[0] = b'x';
        Ok(1)
    }

    fn write_all(&mut self, _buf: &[u8], _timeout: Duration) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn data_timeout_bounds_the_whole_piece() {
    let mut s = ByteDrip {
        every: Duration::from_millis(20),
        reads: 0,
    };
    let mut r = LineReader::new();
    let start = Instant::now();
    assert!(matches!(
        r.read_data(&mut s, Duration::from_millis(200), None),
        Err(ReadError::Timeout)
    ));
    assert!(start.elapsed() < Duration::from_secs(1));
    assert!(s.reads <= 10, "{} reads", s.reads);
    // No time at all: what is already read ahead still comes, nothing more is read.
    let mut s = t(&[b"line\r\nrest"]);
    let mut r = LineReader::new();
    assert_eq!(r.read_data(&mut s, T, None).unwrap().0, b"line\r\n");
    assert!(matches!(
        r.read_data(&mut s, Duration::ZERO, None),
        Err(ReadError::Timeout)
    ));
}

#[test]
fn discard_drops_read_ahead() {
    let mut s = t(&[b"STARTTLS\r\nMAIL FROM:<evil@x>\r\n"]);
    let mut r = LineReader::new();
    r.read_line(&mut s, 100, T).unwrap();
    assert_eq!(r.discard(), 20);
    assert!(matches!(r.read_line(&mut s, 100, T), Err(ReadError::Eof)));
}

#[test]
fn the_buffer_grows_for_lines_longer_than_it_starts() {
    // A 10,000-byte command line (an AUTH answer) fits under a 16 KiB limit; the
    // buffer starts smaller and must grow to hold it whole.
    let mut line = vec![b'a'; 10_000];
    line.extend_from_slice(b"\r\nNOOP\r\n");
    let mut s = Scripted::new(vec![line]);
    let mut r = LineReader::new();
    match r.read_line(&mut s, 16 * 1024, T).unwrap() {
        Line::Text(l) => assert_eq!(l.len(), 10_000),
        Line::TooLong => panic!("a line under the limit was refused"),
    }
    assert_eq!(r.read_line(&mut s, 16 * 1024, T).unwrap(), Line::Text(b"NOOP"));
}

#[test]
fn a_fast_stream_is_read_in_ever_larger_reads() {
    // Message data delivered faster than it is taken: lines come out in order and
    // whole, however the buffer grows underneath.
    let mut data = Vec::new();
    for i in 0..5000 {
        data.extend_from_slice(format!("line {i}\r\n").as_bytes());
    }
    let mut s = Scripted::new(vec![data.clone()]);
    let mut r = LineReader::new();
    let mut got = Vec::new();
    while let Ok((piece, _)) = r.read_data(&mut s, T, None) {
        got.extend_from_slice(piece);
    }
    assert_eq!(got, data);
}

#[test]
fn the_message_deadline_bounds_a_piece_but_not_one_read_ahead() {
    // Past the deadline, a line already read ahead is still handed over; the next one,
    // which would need a read, is a timeout at once, however long `timeout` is.
    let mut s = t(&[b"one\r\ntw", b"o\r\n"]);
    let mut r = LineReader::new();
    let gone = Some(Instant::now());
    assert_eq!(r.read_data(&mut s, T, None).unwrap(), (&b"one\r\n"[..], true));
    let started = Instant::now();
    assert!(matches!(
        r.read_data(&mut s, Duration::from_secs(60), gone),
        Err(ReadError::Timeout)
    ));
    assert!(started.elapsed() < Duration::from_secs(1));
    // A deadline in the future leaves the piece to its own timeout.
    let later = Instant::now().checked_add(Duration::from_secs(60));
    assert_eq!(r.read_data(&mut s, T, later).unwrap(), (&b"two\r\n"[..], false));
}
