//! The Raspberry Pi path end to end, without a board: the rpi4 image and its facts, `pb flash`,
//! the chainloader in QEMU `raspi3b` (over TCP and over a pty), and `pb capture` + `pb parse` of
//! a board-style console.
//!
//! These need images built for aarch64, so they are `#[ignore]`d in a plain `cargo test`;
//! `make test-boards` builds the images and runs them with `--ignored`, passing their paths:
//! `PB_RPI4_ELF`, `PB_RPI4_BOOT` (the `pb image` output), `PB_CHAINLOADER_IMG` (the loader's
//! kernel8.img) and `PB_RPI3_KERNEL` (the rpi3 kernel ELF).

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use std::{env, fs};

mod common;
use common::{emit, image_header, patch_adr_x1, pb_command, print_loop, word};

use object::{Object, ObjectSegment, ObjectSymbol};
use patchbay_board::{ClockMode, ExitMethod, RPI3, RPI4};
use patchbay_pure::insn::{self, X2};
use patchbay_wire::{directives, facts::Fact, halt};

const WHY: &str = "needs the board images: run `make test-boards`";

fn input(var: &str) -> PathBuf {
    let path = env::var_os(var).unwrap_or_else(|| panic!("{var} is not set: {WHY}"));
    let path = PathBuf::from(path);
    assert!(path.exists(), "{var}={} does not exist", path.display());
    path
}

fn pb(args: &[&str]) -> Output {
    pb_command().args(args).output().expect("run pb")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The directive section's text, where the BSP wrote its facts.
fn directive_text(elf: &object::File) -> String {
    let section = elf
        .section_by_name(directives::SECTION)
        .expect("directives");
    text(object::ObjectSection::data(&section).unwrap())
}

#[test]
#[ignore = "needs the board images: run `make test-boards`"]
fn rpi4_image_load_address_entry_and_bsp_constants() {
    let elf_path = input("PB_RPI4_ELF");
    let data = fs::read(&elf_path).unwrap();
    let elf = object::File::parse(&*data).unwrap();
    // Entry and load address: where the firmware puts kernel8.img and jumps.
    assert_eq!(elf.entry(), 0x8_0000);
    let start = elf.symbols().find(|s| s.name() == Ok("_start")).unwrap();
    assert_eq!(start.address(), 0x8_0000);
    let first = elf.segments().map(|s| s.address()).min().unwrap();
    assert_eq!(first, 0x8_0000);
    let cntfrq = elf
        .symbols()
        .find(|s| s.name() == Ok("__board_counter_hz"))
        .unwrap();
    assert_eq!(cntfrq.address(), 54_000_000, "CNTFRQ for an EL3 entry");
    // The BSP's constants, as the kernel states them (read with pb's parser).
    let text = directive_text(&elf);
    let facts: Vec<Fact> = patchbay_wire::facts::parse_text(&text)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        facts,
        [
            Fact::Board("rpi4"),
            Fact::Machine("raspi4b"),
            Fact::KernelLoad(0x8_0000),
            Fact::UartBase(0xfe20_1000),
            Fact::UartClockHz(48_000_000),
            Fact::CounterHz(54_000_000),
            Fact::Exit(ExitMethod::Halt),
            Fact::Clock(ClockMode::Hardware),
            Fact::Mmio(0xfc00_0000..0x1_0000_0000),
        ]
    );
    // kernel8.img: the raw image with an arm64 Image header (text_offset 0x80000).
    let boot = input("PB_RPI4_BOOT");
    let img = fs::read(boot.join("kernel8.img")).unwrap();
    assert_eq!(&img[56..60], b"ARM\x64");
    assert_eq!(u64::from_le_bytes(img[8..16].try_into().unwrap()), 0x8_0000);
    assert_eq!(img[3] & 0xfc, 0x14, "first instruction: a branch");
    let config = fs::read_to_string(boot.join("config.txt")).unwrap();
    for line in [
        "arm_64bit=1",
        "kernel=kernel8.img",
        "kernel_address=0x80000",
        "enable_uart=1",
        "init_uart_clock=48000000",
        "arm_peri_high=0",
    ] {
        assert!(config.lines().any(|l| l == line), "{line} in\n{config}");
    }
}

#[test]
#[ignore = "needs the board images: run `make test-boards`"]
fn flash_into_a_boot_partition_and_refuse_anything_else() {
    let from = input("PB_RPI4_BOOT");
    let dir = tempfile::tempdir().unwrap();
    let boot = dir.path().join("bootfs");
    fs::create_dir(&boot).unwrap();
    let not_boot = pb(&[
        "flash",
        "--boot",
        boot.to_str().unwrap(),
        "--from",
        from.to_str().unwrap(),
    ]);
    assert_eq!(not_boot.status.code(), Some(2));
    assert!(
        text(&not_boot.stderr).contains("does not look like a Raspberry Pi boot partition"),
        "{}",
        text(&not_boot.stderr)
    );
    assert!(!boot.join("kernel8.img").exists());
    for (name, contents) in [
        ("start4.elf", "firmware"),
        ("fixup4.dat", "fixup"),
        ("kernel8.img", "linux"),
        ("config.txt", "# Raspberry Pi OS"),
    ] {
        fs::write(boot.join(name), contents).unwrap();
    }
    let ok = pb(&[
        "flash",
        "--boot",
        boot.to_str().unwrap(),
        "--from",
        from.to_str().unwrap(),
    ]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert_eq!(
        fs::read(boot.join("kernel8.img")).unwrap(),
        fs::read(from.join("kernel8.img")).unwrap()
    );
    assert_eq!(
        fs::read_to_string(boot.join("kernel8.img.orig")).unwrap(),
        "linux"
    );
    assert_eq!(
        fs::read_to_string(boot.join("config.txt.orig")).unwrap(),
        "# Raspberry Pi OS"
    );
    let restore = pb(&["flash", "--restore", "--boot", boot.to_str().unwrap()]);
    assert!(restore.status.success());
    assert_eq!(
        fs::read_to_string(boot.join("kernel8.img")).unwrap(),
        "linux"
    );
}

// ---------------------------------------------------------------------------------------------
// QEMU raspi3b

/// A QEMU that is killed when the test ends.
struct Qemu(Child);

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `wfe` (no encoder in `insn`: patch sites never hold it).
const WFE: u32 = 0xd503_205f; // wfe

/// A raw image that prints `msg` and the board's final line on the PL011 at `uart`, then parks.
fn tiny_kernel(uart: u64, msg: &str) -> Vec<u8> {
    let mut t = image_header();
    let at = |t: &Vec<u8>| t.len() as u64;
    emit(&mut t, |_| insn::movz(X2, (uart >> 16) as u16, 16).unwrap()); // movz x2, #hi, lsl #16
    emit(&mut t, |_| insn::movk(X2, uart as u16, 0).unwrap()); // movk x2, #lo
    let adr_msg = print_loop(&mut t);
    let done = at(&t);
    word(&mut t, WFE); // done: wfe
    emit(&mut t, |pc| insn::b(pc, done).unwrap()); //       b done
    let msg_at = at(&t);
    t.extend_from_slice(msg.as_bytes());
    t.extend_from_slice(format!("\r\n{}\r\n\0", halt::Halted(0)).as_bytes());
    patch_adr_x1(&mut t, adr_msg, msg_at);
    t
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The Raspberry Pi machines QEMU emulates: the chainloader and board runs are tested on both.
const MACHINES: [&str; 2] = ["raspi3b", "raspi4b"];

fn dtb(dir: &Path, machine: &str, bootargs: &str) -> PathBuf {
    let path = dir.join(format!("{machine}.dtb"));
    let out = pb(&[
        "dtb",
        "--machine",
        machine,
        "-o",
        path.to_str().unwrap(),
        "--bootargs",
        bootargs,
    ]);
    assert!(out.status.success());
    path
}

/// QEMU `machine` (raspi3b or raspi4b) booting `kernel` with the DTB, its UART on `serial`.
fn raspi(machine: &str, kernel: &Path, dtb: &Path, serial: &str) -> Qemu {
    let child = Command::new("qemu-system-aarch64")
        .args([
            "-M", machine, "-display", "none", "-monitor", "none", "-serial", serial,
        ])
        .arg("-kernel")
        .arg(kernel)
        .arg("-dtb")
        .arg(dtb)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("qemu-system-aarch64 (make deps installs it)");
    Qemu(child)
}

#[test]
#[ignore = "needs the board images: run `make test-boards`"]
fn chainload_over_tcp_refuses_bad_transfers_then_runs_the_kernel() {
    let loader = input("PB_CHAINLOADER_IMG");
    for (machine, pi) in MACHINES.into_iter().zip([RPI3, RPI4]) {
        chainload_over_tcp(&loader, machine, pi.board.description, pi.board.uart_base);
    }
}

/// One loader image serves both Pis (it finds its board from MIDR_EL1): bad transfers refused,
/// then the kernel runs, on `machine`.
fn chainload_over_tcp(loader: &Path, machine: &str, board: &str, uart: u64) {
    let dir = tempfile::tempdir().unwrap();
    let kernel = dir.path().join("tiny.img");
    fs::write(
        &kernel,
        tiny_kernel(uart, "hello from a chainloaded kernel"),
    )
    .unwrap();
    let port = free_port();
    let _qemu = raspi(
        machine,
        loader,
        &dtb(dir.path(), machine, "patchbay.clock=qemu"),
        &format!("tcp:127.0.0.1:{port},server=on,wait=on"),
    );
    let log = dir.path().join("console.log");
    let t0 = Instant::now();
    let out = pb(&[
        "chainload",
        "--tcp",
        &format!("127.0.0.1:{port}"),
        "--wait",
        "30",
        "--timeout",
        "60",
        "--inject",
        "oversize",
        "--inject",
        "corrupt",
        "--log",
        log.to_str().unwrap(),
        kernel.to_str().unwrap(),
    ]);
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{machine}: stdout:\n{so}\nstderr:\n{se}"
    );
    assert!(
        so.contains("patchbay chainloader") && so.contains(&format!("on {board}")),
        "{machine}: {so}"
    );
    // Attempt 1: the header claims more room than the loader has.
    assert!(
        se.contains("refused the header: image too large"),
        "{machine}: {se}"
    );
    // Attempt 2: one payload byte flipped: the CRC32 check refuses the image.
    assert!(
        se.contains("refused the image: image checksum mismatch"),
        "{machine}: {se}"
    );
    // Attempt 3: verified, and the kernel runs.
    assert!(se.contains("verified the image"), "{machine}: {se}");
    let console = fs::read_to_string(&log).unwrap();
    assert!(
        console.contains("hello from a chainloaded kernel"),
        "{machine}: {console}"
    );
    assert!(console.ends_with(&format!("{}\n", halt::Halted(0))));
    assert!(t0.elapsed() < Duration::from_secs(60), "{machine}");
}

#[test]
#[ignore = "needs the board images: run `make test-boards`"]
fn chainload_over_a_serial_device() {
    // QEMU's pty stands in for /dev/ttyUSB0: the serial code path, baud switching included.
    let loader = input("PB_CHAINLOADER_IMG");
    let dir = tempfile::tempdir().unwrap();
    let kernel = dir.path().join("tiny.img");
    fs::write(
        &kernel,
        tiny_kernel(RPI3.board.uart_base, "hello over a pty"),
    )
    .unwrap();
    let mut qemu = raspi(
        "raspi3b",
        &loader,
        &dtb(dir.path(), "raspi3b", "patchbay.clock=qemu"),
        "pty",
    );
    // QEMU says "char device redirected to /dev/pts/N (label serial0)" on its stdout.
    let stdout = qemu.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("QEMU names its pty");
    let pty = line
        .split_whitespace()
        .find(|w| w.starts_with("/dev/"))
        .unwrap_or_else(|| panic!("no pty in {line:?}"))
        .to_string();
    let out = pb(&[
        "chainload",
        "--serial",
        &pty,
        "--wait",
        "30",
        "--timeout",
        "60",
        kernel.to_str().unwrap(),
    ]);
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "stdout:\n{so}\nstderr:\n{se}");
    assert!(so.contains("hello over a pty"), "{so}");
}

#[test]
#[ignore = "needs the board images: run `make test-boards`"]
fn capture_a_board_run_then_parse_it() {
    for (var, machine, board, name) in [
        ("PB_RPI3_KERNEL", "raspi3b", "rpi3", "Raspberry Pi 3"),
        ("PB_RPI4_ELF", "raspi4b", "rpi4", "Raspberry Pi 4"),
    ] {
        capture_then_parse(&input(var), machine, board, name);
    }
}

/// A whole board kernel run on `machine`, recorded by `pb capture` as from a serial line, then
/// parsed like a QEMU run.
fn capture_then_parse(elf: &Path, machine: &str, board: &str, name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("kernel8.img");
    assert!(
        pb(&[
            "objcopy",
            elf.to_str().unwrap(),
            "-o",
            img.to_str().unwrap()
        ])
        .status
        .success()
    );
    let port = free_port();
    let _qemu = raspi(
        machine,
        &img,
        &dtb(dir.path(), machine, "patchbay.clock=qemu"),
        &format!("tcp:127.0.0.1:{port},server=on,wait=on"),
    );
    let log = dir.path().join("run.log");
    let out = pb(&[
        "capture",
        "--tcp",
        &format!("127.0.0.1:{port}"),
        "--out",
        log.to_str().unwrap(),
        "--timeout",
        "120",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let console = fs::read_to_string(&log).unwrap();
    assert!(console.contains(&format!("on {name}")), "{console}");
    assert!(!console.contains('\r'), "line ends normalised");

    // Good: the same outputs as a QEMU run.
    let parsed = dir.path().join("parsed");
    let out = pb(&[
        "parse",
        log.to_str().unwrap(),
        "--out",
        parsed.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let jsonl = fs::read_to_string(parsed.join("latest.jsonl")).unwrap();
    assert!(
        jsonl
            .lines()
            .next()
            .unwrap()
            .contains(&format!(r#""board":"{board}""#)),
        "{jsonl}"
    );
    assert!(parsed.join("latest.svg").exists());

    // Garbage lines (line noise, a reset's junk, a half-received line) are ignored.
    let mut noisy = String::from("\u{fffd}\u{fffd}x\n@@@@\n");
    for (i, line) in console.lines().enumerate() {
        noisy.push_str(line);
        noisy.push('\n');
        if i % 7 == 0 {
            noisy.push_str("~~ garbage ~~ @ben\n");
        }
    }
    let noisy_log = dir.path().join("noisy.log");
    fs::write(&noisy_log, &noisy).unwrap();
    let out = pb(&[
        "parse",
        noisy_log.to_str().unwrap(),
        "--out",
        parsed.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // Truncated (the board was reset mid-run): refused, and says so.
    let cut = console.find(r#"@bench {"type":"end""#).unwrap();
    let truncated = dir.path().join("truncated.log");
    fs::write(&truncated, &console[..cut]).unwrap();
    let out = pb(&[
        "parse",
        truncated.to_str().unwrap(),
        "--out",
        parsed.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("truncated"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !parsed.join("latest.jsonl").exists(),
        "stale results removed"
    );
}
