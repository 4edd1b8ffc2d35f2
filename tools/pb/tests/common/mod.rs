//! Helpers shared by pb's integration tests (each test file uses some of them).
#![allow(dead_code)]

use std::process::{Command, Output};

use patchbay_pure::insn;

/// A `Command` for the `pb` binary under test.
pub fn pb_command() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pb"))
}

/// Run `cmd` and echo its status and output on stderr (shown when a test fails).
pub fn output_logged(cmd: &mut Command, what: &str) -> Output {
    let out = cmd.output().expect("run pb");
    eprintln!(
        "--- pb {what}: {}\n--- stdout:\n{}--- stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

// Tiny raw arm64 images for QEMU, built from `insn`'s encoders.

pub fn word(out: &mut Vec<u8>, w: u32) {
    out.extend_from_slice(&w.to_le_bytes());
}

/// Appends the word `encode` makes for the current offset (the instruction's PC, relative to the
/// image start, which is all a PC-relative encoding needs).
pub fn emit(out: &mut Vec<u8>, encode: impl FnOnce(u64) -> u32) {
    let pc = out.len() as u64;
    word(out, encode(pc));
}

// Byte loads and stores have no encoder in `insn` (patch sites never hold them), so they are
// spelled out once here.
/// `ldrb w3, [x1], #1`
pub const LDRB_W3_X1_POST1: u32 = 0x3840_1423; // ldrb w3, [x1], #1
/// `strb w3, [x2]`
pub const STRB_W3_X2: u32 = 0x3900_0043; // strb w3, [x2]

/// The 64-byte arm64 Image header, its first instruction branching to offset 0x40.
pub fn image_header() -> Vec<u8> {
    let mut h = Vec::new();
    emit(&mut h, |pc| insn::b(pc, 0x40).unwrap()); // b +0x40
    word(&mut h, 0);
    h.extend_from_slice(&0x80000u64.to_le_bytes()); // text_offset
    h.extend_from_slice(&0x2000u64.to_le_bytes()); // image_size (nonzero: text_offset valid)
    h.extend_from_slice(&2u64.to_le_bytes()); // flags: LE, 4 KiB pages
    h.extend_from_slice(&[0; 24]);
    h.extend_from_slice(b"ARM\x64");
    word(&mut h, 0);
    assert_eq!(h.len(), 0x40);
    h
}

/// Appends `adr x1, msg` (a placeholder: fill it in with [`patch_adr_x1`] once the message's
/// offset is known) and a loop that stores each byte of the NUL-terminated string at x1 into the
/// UART data register at x2, falling through at the NUL. Returns the placeholder's offset.
pub fn print_loop(t: &mut Vec<u8>) -> u64 {
    use insn::{X3, cbz};
    let adr_msg = t.len() as u64;
    word(t, 0); // adr x1, msg (patched by patch_adr_x1)
    let lp = t.len() as u64;
    let done = lp + 16;
    word(t, LDRB_W3_X1_POST1); // loop: ldrb w3, [x1], #1
    emit(t, |pc| cbz(X3, pc, done).unwrap()); //       cbz x3, done
    word(t, STRB_W3_X2); //       strb w3, [x2]
    emit(t, |pc| insn::b(pc, lp).unwrap()); //       b loop
    assert_eq!(t.len() as u64, done);
    adr_msg
}

/// Writes `adr x1, target` at offset `at` (a placeholder left by [`print_loop`] or by hand).
pub fn patch_adr_x1(t: &mut [u8], at: u64, target: u64) {
    let w = insn::adr(insn::X1, at, target).unwrap();
    t[at as usize..at as usize + 4].copy_from_slice(&w.to_le_bytes());
}
