//! Test-only plumbing for checking generated code against LLVM's assembler and disassembler
//! (`llvm-mc`, from Debian's `llvm` package; `make deps` installs it). One process handles a
//! whole batch of words, so thousands of checks stay fast.

use std::{
    format,
    io::Write,
    process::{Command, Stdio},
    string::{String, ToString},
    sync::OnceLock,
    thread,
    vec::Vec,
};

// llvm-mc plumbing ------------------------------------------------------------------

/// The llvm-mc binary: `$LLVM_MC`, else the first of a few usual names that runs.
pub(crate) fn llvm_mc() -> &'static str {
    static FOUND: OnceLock<String> = OnceLock::new();
    FOUND.get_or_init(|| {
        let mut candidates: Vec<String> = Vec::new();
        if let Ok(path) = std::env::var("LLVM_MC") {
            candidates.push(path);
        }
        for name in [
            "llvm-mc",
            "/usr/bin/llvm-mc",
            "llvm-mc-14",
            "llvm-mc-15",
            "llvm-mc-16",
        ] {
            candidates.push(name.to_string());
        }
        candidates
            .into_iter()
            .find(|c| {
                Command::new(c)
                    .arg("--version")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            })
            .unwrap_or_else(|| {
                panic!("llvm-mc not found: run `make deps` (installs Debian's llvm package)")
            })
    })
}

/// Run one llvm-mc process with `args`, feeding `input` on stdin; returns stdout.
/// Any diagnostic on stderr (invalid or "potentially undefined" encodings, syntax errors)
/// fails the test.
pub(crate) fn run_llvm_mc(args: &[&str], input: String) -> String {
    let mut child = Command::new(llvm_mc())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning llvm-mc");
    let mut stdin = child.stdin.take().expect("llvm-mc stdin");
    // Feed stdin from another thread so a large output cannot deadlock against our input.
    let writer = thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("waiting for llvm-mc");
    writer
        .join()
        .expect("writer thread")
        .expect("writing to llvm-mc");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "llvm-mc {args:?} complained (status {}):\n{stderr}",
        out.status
    );
    String::from_utf8(out.stdout).expect("llvm-mc output is UTF-8")
}

/// Disassemble `words` with a single llvm-mc process; one normalised line per word
/// (comments dropped, whitespace runs collapsed to one space).
pub(crate) fn disassemble(words: &[u32]) -> Vec<String> {
    let mut input = String::with_capacity(words.len() * 20);
    for w in words {
        let [a, b, c, d] = w.to_le_bytes();
        input.push_str(&format!("0x{a:02x},0x{b:02x},0x{c:02x},0x{d:02x}\n"));
    }
    let text = run_llvm_mc(
        &["--disassemble", "-triple=aarch64", "-mattr=+bti,+v8.5a"],
        input,
    );
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            l.split("//")
                .next()
                .unwrap_or("")
                .split_whitespace()
                .collect::<Vec<_>>()
        })
        .filter(|toks| !toks.is_empty() && !toks[0].starts_with('.'))
        .map(|toks| toks.join(" "))
        .collect();
    assert_eq!(
        lines.len(),
        words.len(),
        "llvm-mc printed a different number of lines"
    );
    lines
}

/// Assemble `lines` with llvm-mc -show-encoding; one word per line.
pub(crate) fn assemble(lines: &[&str]) -> Vec<u32> {
    let text = run_llvm_mc(
        &["-triple=aarch64", "-mattr=+bti", "-show-encoding"],
        lines.join("\n") + "\n",
    );
    let words: Vec<u32> = text
        .lines()
        .filter_map(|l| l.split_once("encoding: [").map(|(_, rest)| rest))
        .map(|rest| {
            let bytes: Vec<u8> = rest
                .trim_end_matches(']')
                .split(',')
                .map(|b| u8::from_str_radix(b.trim().trim_start_matches("0x"), 16).unwrap())
                .collect();
            u32::from_le_bytes(bytes.try_into().expect("4-byte encoding"))
        })
        .collect();
    assert_eq!(words.len(), lines.len(), "llvm-mc output:\n{text}");
    words
}
