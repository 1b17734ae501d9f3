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
    assert_eq!(r.read_data(&mut s, T).unwrap(), (&b"line one\r\n"[..], true));
    assert_eq!(r.read_data(&mut s, T).unwrap(), (&b"line two\r\n"[..], false));
    assert!(matches!(r.read_data(&mut s, T), Err(ReadError::Timeout)));
}

#[test]
fn very_long_data_line_comes_in_buffer_sized_pieces() {
    let mut data = vec![b'a'; BUFFER + 10];
    data.extend_from_slice(b"\r\n");
    let mut s = Scripted::new(vec![data]);
    let mut r = LineReader::new();
    assert_eq!(r.read_data(&mut s, T).unwrap().0.len(), BUFFER);
    assert_eq!(r.read_data(&mut s, T).unwrap().0, b"aaaaaaaaaa\r\n");
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
        r.read_data(&mut s, Duration::from_millis(200)),
        Err(ReadError::Timeout)
    ));
    assert!(start.elapsed() < Duration::from_secs(1));
    assert!(s.reads <= 10, "{} reads", s.reads);
    // No time at all: what is already read ahead still comes, nothing more is read.
    let mut s = t(&[b"line\r\nrest"]);
    let mut r = LineReader::new();
    assert_eq!(r.read_data(&mut s, T).unwrap().0, b"line\r\n");
    assert!(matches!(
        r.read_data(&mut s, Duration::ZERO),
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
