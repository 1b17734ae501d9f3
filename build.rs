//! Link settings for the one-process-per-connection shape, where every connection pays
//! for the program's start (README "Performance", "The build").
//!
//! On glibc targets the unwinder comes from libgcc_eh.a, linked in, instead of from
//! libgcc_s.so.1: one shared object fewer to find, map and relocate per connection, and
//! no run of libgcc_s's constructor, which queries the CPU with a dozen CPUID
//! instructions (each one traps to the hypervisor on a virtual machine). Panics still
//! unwind (a failing plugin is caught and the session goes on). Rust puts its own
//! `-lgcc_s` after the libraries of this crate, so with the symbols already resolved from
//! the archive, `--as-needed` leaves libgcc_s out. Not for fuzzing builds (libFuzzer is
//! C++ and brings libgcc_s anyway; one unwinder per process).
//!
//! Feature `non-pie`: the qpsmtpd-rs binary is linked at a fixed address. Its start skips
//! about 10,000 load-time relocations and the pages they dirty, and the binary's own
//! code and data lose address-space layout randomization (libc, stack, heap and mmap
//! stay randomized). Off by default.
//!
//! Release builds for x86_64-unknown-linux-gnu, linked by rust-lld (the toolchain's
//! default there since Rust 1.90), put the functions a session runs next to each other,
//! in the order of packaging/hot-symbols.txt (made by packaging/hot-symbols): the few
//! hundred functions of a session then share a few dozen pages instead of being spread
//! over the whole 4 MB of code, so each connection faults in and maps fewer pages (about
//! 20 fewer page faults per session). The names are the shipped build's (packaging/build):
//! they carry Cargo's hash of version, dependencies and target, so a new version needs
//! the list recorded again (tests/package checks). A name the list has and the program
//! does not is skipped without a word, so a stale list costs only speed. Not when
//! another linker is configured: only lld knows the option.

/// The functions a session runs, one linker symbol per line.
const HOT_SYMBOLS: &str = "packaging/hot-symbols.txt";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let linux_gnu = var("CARGO_CFG_TARGET_OS") == "linux" && var("CARGO_CFG_TARGET_ENV") == "gnu";
    let fuzzing =
        std::env::var_os("CARGO_CFG_FUZZING").is_some() || std::env::var_os("CARGO_CFG_SANITIZE").is_some();
    if linux_gnu && !fuzzing {
        // Not bundled into the rlib: the C compiler driver finds libgcc_eh.a in its own
        // library directory at the final link, as it does for -static-libgcc.
        println!("cargo:rustc-link-lib=static:-bundle=gcc_eh");
    }
    println!("cargo:rerun-if-changed={HOT_SYMBOLS}");
    // RUSTC_LINKER: a linker chosen in the environment or in a Cargo config file.
    let other_linker =
        var("CARGO_ENCODED_RUSTFLAGS").contains("linker") || std::env::var_os("RUSTC_LINKER").is_some();
    if var("TARGET") == "x86_64-unknown-linux-gnu" && var("PROFILE") == "release" && !fuzzing && !other_linker
    {
        let list = std::path::Path::new(&var("CARGO_MANIFEST_DIR")).join(HOT_SYMBOLS);
        println!(
            "cargo:rustc-link-arg-bin=qpsmtpd-rs=-Wl,--symbol-ordering-file={}",
            list.display()
        );
        println!("cargo:rustc-link-arg-bin=qpsmtpd-rs=-Wl,--no-warn-symbol-ordering");
    }
    if std::env::var_os("CARGO_FEATURE_NON_PIE").is_some() && var("CARGO_CFG_TARGET_OS") == "linux" {
        println!("cargo:rustc-link-arg-bin=qpsmtpd-rs=-no-pie");
    }
}
