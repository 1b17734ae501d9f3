//! Byte search without run-time CPU feature detection.
//!
//! The `memchr` crate's top-level functions pick a SIMD routine on their first call by
//! asking the CPU what it supports, with several CPUID instructions. Every connection is
//! a new process, so that question is asked once per connection, and on a virtual
//! machine each CPUID traps to the hypervisor (microseconds each). The lines searched
//! here are short (commands, header fields, one line of message data at a time), where
//! the word-at-a-time routine is as fast as the vector ones.

use memchr::arch::all::memchr::One;

/// The position of the first `needle` in `haystack`.
pub fn find_byte(needle: u8, haystack: &[u8]) -> Option<usize> {
    One::new(needle).find(haystack)
}

/// Does `haystack` contain `needle`?
pub fn contains_byte(needle: u8, haystack: &[u8]) -> bool {
    find_byte(needle, haystack).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_occurrence_at_any_alignment() {
        let mut hay = vec![b'a'; 100];
        assert_eq!(find_byte(b'\n', &hay), None);
        for at in [0, 1, 7, 8, 9, 31, 32, 63, 99] {
            hay[at] = b'\n';
            assert_eq!(find_byte(b'\n', &hay), Some(at), "{at}");
            assert_eq!(find_byte(b'\n', &hay[at..]), Some(0));
            hay[at] = b'a';
        }
        assert!(contains_byte(0, b"a\0b"));
        assert!(!contains_byte(0, b""));
    }
}
