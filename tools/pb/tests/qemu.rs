//! End-to-end tests of the `pb` binary: tiny hand-assembled aarch64 kernels (an arm64 Image
//! header, a PL011 "hello", a semihosting exit) booted under the real QEMU.
//!
//! The tests that need `qemu-system-aarch64` fail with a clear message when it is not on PATH:
//! `make test` installs it first (`make deps`).

#[allow(dead_code)]
#[path = "../src/testelf.rs"]
mod testelf;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::{
    emit, image_header, output_logged, patch_adr_x1, pb_command, print_loop, stderr, stdout, word,
};

use patchbay_pure::{
    insn::{self, X0, X2},
    ksyms::Ksyms,
};
use testelf::{ElfSpec, Placement, SectionSpec, SegmentSpec, SymbolSpec};

/// Where QEMU `virt` loads an arm64 Image with text_offset 0x80000.
const BASE: u64 = 0x4008_0000;
/// Second segment (rodata with `.ksyms`), after a gap.
const RODATA: u64 = BASE + 0x1000;
const KSYMS_LEN: usize = 0x200;

/// Panics (failing the test, never skipping it) when QEMU is missing.
fn require_qemu() {
    let found = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|d| d.join("qemu-system-aarch64").is_file())
    });
    assert!(
        found,
        "qemu-system-aarch64 is not installed: run `make deps` (or `make test`)"
    );
}

// `hlt #0xf000` has no encoder in `insn` (patch sites never hold it), so it is spelled out once.
/// `hlt #0xf000`: the A64 semihosting call
const HLT_SEMIHOSTING: u32 = 0xd45e_0000; // hlt #0xf000

/// Prints `msg` on the PL011 at 0x0900_0000, then semihosting SYS_EXIT with `code`.
fn hello_and_exit(msg: &str, code: u64) -> Vec<u8> {
    let mut t = image_header();
    let at = |t: &Vec<u8>| t.len() as u64;
    emit(&mut t, |_| insn::movz(X2, 0x0900, 16).unwrap()); // movz x2, #0x0900, lsl #16
    let adr_msg = print_loop(&mut t);
    emit(&mut t, |_| insn::movz(X0, 0x18, 0).unwrap()); // done: movz x0, #0x18 (SYS_EXIT)
    let adr_block = at(&t);
    word(&mut t, 0); // adr x1, block (patched below)
    word(&mut t, HLT_SEMIHOSTING); // hlt #0xf000
    emit(&mut t, |pc| insn::b(pc, pc).unwrap()); // b .
    assert_eq!(t.len() % 8, 0);
    let block = at(&t);
    t.extend_from_slice(&0x20026u64.to_le_bytes()); // ADP_Stopped_ApplicationExit
    t.extend_from_slice(&code.to_le_bytes());
    let msg_at = at(&t);
    t.extend_from_slice(msg.as_bytes());
    t.push(0);
    patch_adr_x1(&mut t, adr_msg, msg_at); // adr x1, msg
    patch_adr_x1(&mut t, adr_block, block); // adr x1, block
    t
}

/// Spins forever.
fn spin() -> Vec<u8> {
    let mut t = image_header();
    emit(&mut t, |pc| insn::b(pc, pc).unwrap()); // b .
    t
}

/// A kernel ELF: `text` at BASE, a rodata segment holding `.ksyms` after a gap, the
/// `directives` (if any) in a non-loaded `.patchbay.qemu`.
fn kernel_elf(text: Vec<u8>, directives: Option<&str>) -> Vec<u8> {
    let text_len = text.len() as u64;
    let mut sections = vec![
        SectionSpec::alloc(".text", 0, 0, text_len, testelf::SHF_AX),
        SectionSpec::alloc(".ksyms", 1, 0, KSYMS_LEN as u64, testelf::SHF_A),
    ];
    if let Some(d) = directives {
        // Two "statics", NUL-padded.
        let mut raw = d.as_bytes().to_vec();
        raw.extend_from_slice(b"\0\0\0\0# padding\n\0\0");
        sections.push(SectionSpec {
            name: ".patchbay.qemu".into(),
            placement: Placement::NonAlloc(raw),
            flags: 0,
        });
    }
    testelf::build(&ElfSpec {
        machine: 183, // EM_AARCH64
        entry: BASE,
        segments: vec![
            SegmentSpec {
                paddr: BASE,
                vaddr: BASE,
                data: text,
                memsz: text_len,
                flags: 5,
            },
            SegmentSpec {
                paddr: RODATA,
                vaddr: RODATA,
                data: vec![0; KSYMS_LEN],
                memsz: 0x1000,
                flags: 4,
            },
        ],
        sections,
        symbols: vec![
            SymbolSpec::func("_start", BASE, 0x40, Some(0)),
            SymbolSpec::func(
                "_ZN8patchbay4boot17h0011223344556677E",
                BASE + 0x40,
                0x28,
                Some(0),
            ),
        ],
    })
}

/// Writes `elf` to a fresh path for test `name`.
fn write_elf(name: &str, elf: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pb-qemu-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.elf"));
    std::fs::write(&path, elf).unwrap();
    path
}

fn pb(args: &[&str], elf: &Path) -> Output {
    pb_with(args, elf, &[], |_| {})
}

fn pb_with(args: &[&str], elf: &Path, after: &[&str], f: impl FnOnce(&mut Command)) -> Output {
    let mut cmd = pb_command();
    cmd.arg("run").args(args).arg(elf).args(after);
    f(&mut cmd);
    output_logged(&mut cmd, &format!("{args:?} {} {after:?}", elf.display()))
}

#[test]
fn exit_code_passes_through_without_directives() {
    require_qemu();
    let elf = write_elf(
        "passthrough",
        &kernel_elf(hello_and_exit("hello from pb\n", 3), None),
    );
    let out = pb(&[], &elf);
    assert_eq!(out.status.code(), Some(3));
    assert!(stdout(&out).contains("hello from pb"));
    assert!(
        !elf.with_extension("elf.bin").exists(),
        "the temporary image is removed"
    );

    let elf = write_elf("passthrough0", &kernel_elf(hello_and_exit("ok\n", 0), None));
    let out = pb(&[], &elf);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stderr(&out), "", "nothing extra on success");
}

#[test]
fn expectations_hold() {
    require_qemu();
    let d = "expect_exit=3\nexpect_console=hello from pb\nreject_console=panicked\n";
    let elf = write_elf(
        "hold",
        &kernel_elf(hello_and_exit("hello from pb\n", 3), Some(d)),
    );
    let out = pb(&[], &elf);
    assert_eq!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("pb: exited with 3 as expected"));
}

#[test]
fn expectations_fail() {
    require_qemu();
    let d = "expect_console=goodbye\nreject_console=hello\n";
    let elf = write_elf(
        "fail",
        &kernel_elf(hello_and_exit("hello from pb\n", 3), Some(d)),
    );
    let out = pb(&[], &elf);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("pb: expected exit 0, got 3"), "{err}");
    assert!(err.contains("pb: console lacks \"goodbye\""), "{err}");
    assert!(
        err.contains("pb: console contains rejected \"hello\""),
        "{err}"
    );
}

#[test]
fn timeout_kills_qemu() {
    require_qemu();
    let elf = write_elf("spin", &kernel_elf(spin(), Some("timeout=1\n")));
    let t0 = std::time::Instant::now();
    let out = pb(&[], &elf);
    assert_eq!(out.status.code(), Some(124));
    assert!(stderr(&out).contains("pb: timeout: the kernel did not exit within 1 s (QEMU killed)"));
    assert!(t0.elapsed().as_secs() < 30);
    // The option overrides the directive.
    let out = pb(&["--timeout", "2"], &elf);
    assert_eq!(out.status.code(), Some(124));
    assert!(stderr(&out).contains("within 2 s"));
}

#[test]
fn repeat_with_same_lines() {
    require_qemu();
    let d = "repeat=2\nsame_lines=@det\nexpect_exit=5\n";
    let elf = write_elf(
        "repeat",
        &kernel_elf(hello_and_exit("@det value=42\n", 5), Some(d)),
    );
    let out = pb(&["--icount"], &elf);
    assert_eq!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(
        err.contains("pb: boot 1 of 2") && err.contains("pb: boot 2 of 2"),
        "{err}"
    );
    assert_eq!(stdout(&out).matches("@det value=42").count(), 2);

    let d = "repeat=2\nsame_lines=@missing\n";
    let elf = write_elf(
        "repeat-missing",
        &kernel_elf(hello_and_exit("@det\n", 0), Some(d)),
    );
    let out = pb(&[], &elf);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("pb: boot 1 printed no \"@missing\" lines"));
}

#[test]
fn print_cmd_shows_icount_and_bootargs() {
    require_qemu();
    let d = "bootargs=from.elf=1\n";
    let elf = write_elf("printcmd", &kernel_elf(hello_and_exit("hi\n", 0), Some(d)));
    let out = pb_with(
        &["--print-cmd", "--icount"],
        &elf,
        &["--nocapture", "t::x"],
        |_| {},
    );
    assert_eq!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(
        err.contains(" -M virt -cpu cortex-a72 -smp 1 -m 1G "),
        "{err}"
    );
    assert!(
        err.contains(" -icount shift=0,align=off,sleep=off "),
        "{err}"
    );
    // The emulator's version (from `qemu --version`) rides along for the @bench header.
    let append = err
        .split("-append '")
        .nth(1)
        .expect("an -append")
        .split('\'')
        .next()
        .unwrap();
    let args: Vec<&str> = append.split(' ').collect();
    assert_eq!(args[0], "patchbay.clock=qemu-icount", "{err}");
    assert!(args[1].starts_with("patchbay.emulator=qemu-1"), "{err}");
    assert_eq!(args[2..], ["from.elf=1", "--nocapture", "t::x"], "{err}");
}

#[test]
fn objcopy_writes_image_with_symbols() {
    let text = hello_and_exit("x\n", 0);
    let elf = write_elf("objcopy", &kernel_elf(text.clone(), None));
    let bin = elf.with_extension("img");
    let out = Command::new(env!("CARGO_BIN_EXE_pb"))
        .arg("objcopy")
        .arg(&elf)
        .arg("-o")
        .arg(&bin)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("2 symbols"), "{}", stderr(&out));
    let image = std::fs::read(&bin).unwrap();
    assert_eq!(image.len(), (RODATA - BASE) as usize + KSYMS_LEN);
    assert_eq!(image[..text.len()], text[..]);
    assert!(
        image[text.len()..(RODATA - BASE) as usize]
            .iter()
            .all(|&b| b == 0)
    );
    let k = Ksyms::parse(&image[(RODATA - BASE) as usize..]).unwrap();
    let boot = k.lookup(BASE + 0x48).unwrap();
    assert_eq!(
        (boot.name, boot.offset_of(BASE + 0x48)),
        ("patchbay::boot", 8)
    );
}

#[test]
fn missing_qemu_is_explained() {
    let elf = write_elf("noqemu", &kernel_elf(spin(), None));
    let out = pb_with(&[], &elf, &[], |c| {
        c.env("PATH", "");
    });
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains(
        "qemu-system-aarch64 not found: run `make deps` (apt-get install qemu-system-arm)"
    ));
    let out = pb(&["--qemu", "/nonexistent/qemu"], &elf);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("QEMU not found at /nonexistent/qemu"));
}

#[test]
fn refuses_a_non_aarch64_elf() {
    let mut elf = kernel_elf(spin(), None);
    elf[18..20].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    let elf = write_elf("x86", &elf);
    let out = pb(&[], &elf);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not an aarch64 ELF"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn unknown_directive_is_named() {
    let elf = write_elf(
        "baddirective",
        &kernel_elf(spin(), Some("machine=virt\ncolour=blue\n")),
    );
    let out = pb(&["--qemu", "/bin/false"], &elf);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown key `colour`"),
        "{}",
        stderr(&out)
    );
}

/// A benchmark log as the kernel prints it: a header, two results, the end record.
fn bench_log(records: usize) -> String {
    let header = r#"{"type":"header","version":1,"git":"7e91686","board":"qemu_virt","cpu":"Cortex-A72","midr":"0x410fd083","ctr_el0":"0x8444c004","clock":"pmccntr","mode":"qemu-icount","unit":"instructions","read_cost":6}"#;
    let result = |m: &str, median: u64, extra: &str| {
        format!(
            r#"@bench {{"type":"result","suite":"mechanisms","mechanism":"{m}","subject":"leaf","metric":"call","unit":"instructions","iters":1000,"min":{median},"median":{median},"mean":{median}.0,"p99":{median},"max":{median}{extra}}}"#
        )
    };
    format!(
        "bench: starting\n@bench {header}\n{}\n{}\n@bench {{\"type\":\"end\",\"records\":{records}}}\nbench: done\n",
        result("twin", 7, r#","baseline":null,"overhead":null"#),
        result("off", 9, r#","baseline":"twin","overhead":2"#),
    )
}

/// A stand-in for QEMU: a shell script that prints `console` and exits with `code`.
fn fake_qemu(name: &str, console: &str, code: i32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pb-qemu-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.sh"));
    let script = format!("#!/bin/sh\ncat <<'EOF'\n{console}EOF\nexit {code}\n");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn pb_bench(elf: &Path, out_dir: &Path, extra: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_pb"))
        .arg("bench")
        .arg("--kernel")
        .arg(elf)
        .arg("--out")
        .arg(out_dir)
        .args(extra)
        .output()
        .unwrap();
    eprintln!(
        "--- pb bench: {}\n--- stdout:\n{}--- stderr:\n{}",
        out.status,
        stdout(&out),
        stderr(&out)
    );
    out
}

#[test]
fn bench_under_qemu_writes_results() {
    require_qemu();
    let elf = write_elf("bench", &kernel_elf(hello_and_exit(&bench_log(2), 0), None));
    let dir = tempfile::tempdir().unwrap();
    let out = pb_bench(&elf, dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(
        text.contains("bench: done"),
        "the console is streamed: {text}"
    );
    assert!(
        text.contains(
            "unit: instructions (qemu-icount, pmccntr) — medians; (+n) = over baseline twin"
        ),
        "{text}"
    );
    assert!(text.contains("off        9 (+2)"), "{text}");
    assert!(
        stderr(&out).contains("pb: 2 result records; wrote"),
        "{}",
        stderr(&out)
    );
    for name in ["latest.log", "latest.jsonl", "latest.csv", "latest.svg"] {
        let len = std::fs::metadata(dir.path().join(name)).unwrap().len();
        assert!(len > 0, "{name} is empty");
    }
    let jsonl = std::fs::read_to_string(dir.path().join("latest.jsonl")).unwrap();
    assert_eq!(jsonl.lines().count(), 3);
    assert!(jsonl.starts_with(r#"{"type":"header","version":1,"#));
}

#[test]
fn run_table_prints_the_tables() {
    require_qemu();
    let elf = write_elf(
        "runtable",
        &kernel_elf(hello_and_exit(&bench_log(2), 0), None),
    );
    let out = pb(&["--icount", "--table"], &elf);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.contains("[mechanisms] metric call\n"), "{text}");
    assert!(text.contains("twin       7\n"), "{text}");
    // Without --table: the console only.
    let out = pb(&["--icount"], &elf);
    assert!(!stdout(&out).contains("[mechanisms]"));
    // A failed run prints no tables.
    let elf = write_elf(
        "runtable-fail",
        &kernel_elf(hello_and_exit(&bench_log(2), 4), None),
    );
    let out = pb(&["--table"], &elf);
    assert_eq!(out.status.code(), Some(4));
    assert!(!stdout(&out).contains("[mechanisms]"));
}

#[test]
fn bench_fails_on_a_truncated_log_or_a_failed_kernel() {
    let elf = write_elf("bench-fake", &kernel_elf(spin(), None));
    let dir = tempfile::tempdir().unwrap();

    // A good run first, so that there are outputs to go stale.
    let qemu = fake_qemu("bench-good", &bench_log(2), 0);
    let out = pb_bench(&elf, dir.path(), &["--qemu", qemu.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(dir.path().join("latest.csv").exists());

    // The end record counts three results, two arrived.
    let qemu = fake_qemu("bench-truncated", &bench_log(3), 0);
    let out = pb_bench(&elf, dir.path(), &["--qemu", qemu.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("the log is truncated: the end record counts 3 result records, 2 parsed"),
        "{err}"
    );
    assert!(
        !dir.path().join("latest.csv").exists(),
        "stale outputs removed"
    );
    let log = std::fs::read_to_string(dir.path().join("latest.log")).unwrap();
    assert!(log.contains("\"records\":3"), "the console is kept");

    // The kernel failed: its exit status, nothing but the log.
    let qemu = fake_qemu("bench-exit3", &bench_log(2), 3);
    let out = pb_bench(&elf, dir.path(), &["--qemu", qemu.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("pb: the kernel run failed (status 3)"));
    assert!(!dir.path().join("latest.jsonl").exists());
}
