//! MD5-crypt (`$1$`, Apache's `$apr1$`) as FreeBSD's crypt(3) defines it (Poul-Henning
//! Kamp's algorithm); the digest is the RustCrypto `md-5` crate's. No maintained crate
//! publishes this scheme.

use md5::{Digest as _, Md5};

use super::shape::ITOA64;

type Digest16 = [u8; 16];

/// The crypt string for a password, magic (`$1$`, `$apr1$`) and salt.
pub(super) fn md5_crypt(pw: &[u8], magic: &str, salt: &str) -> String {
    let salt = salt.as_bytes();
    let digest = stretch(initial(pw, magic.as_bytes(), salt), pw, salt);
    encode(&digest, magic, salt)
}

/// The first digest: password, magic and salt, the "alternate" digest, and the odd
/// bit-by-bit mix of the password's length.
fn initial(pw: &[u8], magic: &[u8], salt: &[u8]) -> Digest16 {
    let alternate = Md5::new()
        .chain_update(pw)
        .chain_update(salt)
        .chain_update(pw)
        .finalize();
    let mut ctx = Md5::new().chain_update(pw).chain_update(magic).chain_update(salt);
    let mut left = pw.len();
    while left > 0 {
        let n = left.min(16);
        ctx.update(&alternate[..n]);
        left -= n;
    }
    let mut i = pw.len();
    while i != 0 {
        if i & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(&pw[..1]);
        }
        i >>= 1;
    }
    ctx.finalize().into()
}

/// The 1000 rounds that make each guess cost something.
fn stretch(mut fin: Digest16, pw: &[u8], salt: &[u8]) -> Digest16 {
    for round in 0..1000 {
        let mut c = Md5::new();
        if round & 1 == 1 {
            c.update(pw);
        } else {
            c.update(fin);
        }
        if round % 3 != 0 {
            c.update(salt);
        }
        if round % 7 != 0 {
            c.update(pw);
        }
        if round & 1 == 1 {
            c.update(fin);
        } else {
            c.update(pw);
        }
        fin = c.finalize().into();
    }
    fin
}

/// `<magic><salt>$` and the digest in crypt's base64, bytes in its odd order.
fn encode(fin: &Digest16, magic: &str, salt: &[u8]) -> String {
    let f = |i: usize| u32::from(fin[i]);
    let mut out = format!("{magic}{}$", String::from_utf8_lossy(salt));
    let mut put = |mut v: u32, n: usize| {
        for _ in 0..n {
            out.push(char::from(ITOA64[(v & 0x3f) as usize]));
            v >>= 6;
        }
    };
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        put((f(a) << 16) | (f(b) << 8) | f(c), 4);
    }
    put(f(11), 2);
    out
}
