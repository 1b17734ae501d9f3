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
    if std::env::var_os("CARGO_FEATURE_NON_PIE").is_some() && var("CARGO_CFG_TARGET_OS") == "linux" {
        println!("cargo:rustc-link-arg-bin=qpsmtpd-rs=-no-pie");
    }
}
