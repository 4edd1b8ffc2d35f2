//! `pb console`: talk to the kernel's serial console — QEMU's (booting a kernel ELF, by default
//! `target/qemu_virt/console`) or a board's serial port — interactively, or by running a script
//! of commands with expected-output checks (how `make test` tests the console).
//!
//! Interactive: the terminal is put in raw mode and every key goes to the kernel (its line
//! editor does the editing); `Ctrl-]` leaves. The run ends when the kernel exits (`exit [code]`)
//! and `pb` exits with the kernel's code.
//!
//! A script is a text file of steps:
//!
//! ```text
//! # a comment
//! > attach call-ops gen_00* record    send the line, then Enter; wait for the next prompt
//! ? attached #1                       the last command's output contains this text
//! ! error:                            ... and not this
//! > exit 3
//! = 3                                 the kernel ended with this exit code
//! ```
//!
//! `>` lines may carry keys as escapes: `\t` (Tab), `\e` (Escape: `\e[A` is Up), `\b` (Backspace,
//! 0x7f), `\xNN`, `\\`. Each `?`, `!` and `=` is one check; the last line is
//! `console script: N passed, M failed` and the exit status is 0 only if none failed.

use std::fs;
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::board;
use crate::cmd::run;
use crate::directives::{self, Directives};
use crate::image;
use crate::link::{self, Link, Target};
use crate::qemu;

/// What the kernel prints before every command (`patchbay_shell::PROMPT`).
pub const PROMPT: &str = patchbay_shell::PROMPT;
/// The console kernel `make console` builds.
pub const DEFAULT_KERNEL: &str = "target/qemu_virt/console";
/// The key that leaves an interactive session (Ctrl-]).
const QUIT: u8 = 0x1d;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Script steps: `> LINE` sends a line (escapes \\t \\e \\b \\xNN \\\\) and Enter and waits for the \
next prompt; `? TEXT` / `! TEXT`: its output contains / does not contain TEXT; `= N`: the kernel \
ended with exit code N; `#` starts a comment.

Exit status: interactive, the kernel's exit code (0 when left with Ctrl-]); with --script, 0 if \
every check passed, 1 otherwise; 2 if pb itself fails.")]
pub struct Args {
    /// A serial device wired to a board's UART (instead of booting QEMU)
    #[arg(long, value_name = "DEVICE", conflicts_with_all = ["kernel", "tcp"])]
    pub serial: Option<PathBuf>,
    /// A TCP address speaking the UART (QEMU -serial tcp:HOST:PORT,server=on), loopback
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "kernel")]
    pub tcp: Option<String>,
    /// Baud rate of --serial
    #[arg(long, value_name = "BAUD", default_value_t = 115_200)]
    pub baud: u32,
    /// Run this script of commands and checks instead of an interactive session
    #[arg(long, value_name = "FILE")]
    pub script: Option<PathBuf>,
    /// Seconds a script step may wait for the prompt (the boot, a `bench`)
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub timeout: u64,
    /// Also write everything the console printed to this file
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Run QEMU with -icount (instruction counts in `bench`, deterministic timestamps)
    #[arg(long)]
    pub icount: bool,
    /// The console kernel to boot under QEMU virt
    #[arg(value_name = "KERNEL_ELF", default_value = DEFAULT_KERNEL)]
    pub kernel: PathBuf,
}

/// One script step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Bytes to send (Enter is added).
    Send(Vec<u8>),
    Contains(String),
    Lacks(String),
    ExitCode(i32),
}

/// Parse a script; errors name the line.
pub fn parse_script(text: &str) -> Result<Vec<Step>> {
    let mut steps = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim_end();
        if line.trim_start().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let at = || format!("script line {}: {line:?}", n + 1);
        let (kind, rest) = line.split_at(1);
        let rest = rest.strip_prefix(' ').unwrap_or(rest);
        steps.push(match kind {
            ">" => Step::Send(unescape(rest).with_context(at)?),
            "?" if !rest.is_empty() => Step::Contains(rest.into()),
            "!" if !rest.is_empty() => Step::Lacks(rest.into()),
            "=" => Step::ExitCode(
                rest.trim()
                    .parse()
                    .with_context(|| format!("{}: not an exit code", at()))?,
            ),
            _ => bail!("{}: a step starts with >, ?, !, = or #", at()),
        });
    }
    Ok(steps)
}

/// `\t`, `\e`, `\b`, `\r`, `\xNN`, `\\` in a `>` line.
fn unescape(s: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match bytes.next() {
            Some(b't') => out.push(b'\t'),
            Some(b'e') => out.push(0x1b),
            Some(b'b') => out.push(0x7f),
            Some(b'r') => out.push(b'\r'),
            Some(b'\\') => out.push(b'\\'),
            Some(b'x') => {
                let hex: Vec<u8> = bytes.by_ref().take(2).collect();
                let hex = std::str::from_utf8(&hex).unwrap_or("");
                let v = u8::from_str_radix(hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 2)
                    .with_context(|| format!("\\x{hex}: two hex digits expected"))?;
                out.push(v);
            }
            Some(c) => bail!("unknown escape \\{}", c as char),
            None => bail!("a lone \\ at the end"),
        }
    }
    Ok(out)
}

/// What the console showed, for checks: without `\r`, bells and VT100 escape sequences.
pub fn plain(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            0x1b => {
                // ESC [ params final-byte
                i += 1;
                if bytes.get(i) == Some(&b'[') {
                    i += 1;
                    while i < bytes.len() && !(0x40..=0x7e).contains(&bytes[i]) {
                        i += 1;
                    }
                }
            }
            b'\r' | 0x07 | 0 => {}
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// QEMU's serial on its stdin/stdout, as a [`Link`].
struct ChildLink {
    stdin: ChildStdin,
    rx: Receiver<Vec<u8>>,
    /// Received but not yet handed out.
    pending: Vec<u8>,
}

impl ChildLink {
    fn new(child: &mut Child) -> Result<Self> {
        let stdin = child.stdin.take().context("QEMU stdin")?;
        let mut stdout = child.stdout.take().context("QEMU stdout")?;
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Ok(ChildLink {
            stdin,
            rx,
            pending: Vec::new(),
        })
    }
}

impl Link for ChildLink {
    fn read_some(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        if self.pending.is_empty() {
            match self.rx.recv_timeout(timeout) {
                Ok(bytes) => self.pending = bytes,
                Err(RecvTimeoutError::Timeout) => return Ok(0),
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
            }
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        Ok(n)
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.stdin.write_all(data)?;
        self.stdin.flush()
    }

    fn set_baud(&mut self, _: u32) -> io::Result<bool> {
        Ok(false)
    }

    fn describe(&self) -> String {
        "QEMU serial (stdio)".into()
    }
}

/// The kernel behind the console: a QEMU we started, or a board.
struct Peer {
    link: Box<dyn Link>,
    child: Option<Child>,
    /// The raw image we wrote for QEMU, removed at the end.
    bin: Option<PathBuf>,
    log: Option<fs::File>,
}

impl Peer {
    fn open(args: &Args) -> Result<Peer> {
        let log = match &args.log {
            Some(p) => Some(
                fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
            ),
            None => None,
        };
        if args.serial.is_some() || args.tcp.is_some() {
            let target = Target {
                serial: args.serial.clone(),
                tcp: args.tcp.clone(),
            };
            let mut link = link::open(&target, args.baud, Duration::from_secs(10))?;
            // Ask for a fresh prompt: the kernel may have printed its own long ago.
            link.write_all(b"\r")?;
            return Ok(Peer {
                link,
                child: None,
                bin: None,
                log,
            });
        }
        let (argv, bin) = qemu_argv(&args.kernel, args.icount)?;
        let (program, rest) = argv.split_first().context("empty QEMU command line")?;
        let mut child = Command::new(program)
            .args(rest)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {}", program.display()))?;
        let link = Box::new(ChildLink::new(&mut child)?);
        Ok(Peer {
            link,
            child: Some(child),
            bin: Some(bin),
            log,
        })
    }

    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        let n = self.link.read_some(buf, timeout)?;
        if let Some(log) = &mut self.log {
            log.write_all(&buf[..n])?;
        }
        Ok(n)
    }

    /// The kernel's exit code once it ended: QEMU's status (waiting up to 10 s).
    fn exit_code(&mut self) -> Option<i32> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(bin) = &self.bin {
            let _ = fs::remove_file(bin);
        }
    }
}

/// The QEMU command line for `kernel` with the serial on stdio, and the raw image it boots.
fn qemu_argv(kernel: &Path, icount: bool) -> Result<(Vec<std::ffi::OsString>, PathBuf)> {
    let image = image::load(kernel)?;
    let d = match &image.directives {
        Some(raw) => directives::parse(raw)
            .with_context(|| format!("{}: section {}", kernel.display(), directives::SECTION))?,
        None => Directives::default(),
    };
    let run_args = run::Args {
        machine: None,
        cpu: None,
        smp: None,
        memory: None,
        icount,
        no_icount: !icount,
        timeout: Some(0),
        gdb: false,
        print_cmd: false,
        qemu: None,
        table: false,
        records: None,
        icache: None,
        gic: None,
        tcg: None,
        kernel: kernel.to_path_buf(),
        bootargs: Vec::new(),
    };
    let mut plan = run::plan(&run_args, &d);
    if plan.qemu.machine.split(',').next() != Some("virt") {
        bail!(
            "{} is built for {}: pb console boots QEMU virt kernels; for a board, chainload the \
             console kernel and use --serial (make BSP=rpi4 console SERIAL=/dev/ttyUSB0)",
            kernel.display(),
            plan.qemu.machine
        );
    }
    plan.qemu.qemu = qemu::locate(None)?;
    let mut bin = kernel.as_os_str().to_owned();
    bin.push(".console.bin");
    let bin = PathBuf::from(bin);
    fs::write(&bin, &image.bytes).with_context(|| format!("cannot write {}", bin.display()))?;
    plan.qemu.kernel = bin.clone();
    Ok((plan.qemu.argv(), bin))
}

pub fn main(args: Args) -> Result<ExitCode> {
    let mut peer = Peer::open(&args)?;
    match &args.script {
        Some(path) => {
            let text = fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let steps = parse_script(&text)?;
            let (passed, failed) = run_script(
                &mut peer,
                &steps,
                Duration::from_secs(args.timeout),
                &mut io::stdout(),
            )?;
            println!("console script: {passed} passed, {failed} failed");
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        None => interactive(&mut peer),
    }
}

/// How waiting for the prompt ended.
#[derive(Debug, PartialEq, Eq)]
enum Wait {
    Prompt,
    /// The link closed (QEMU exited) or the board printed its final line (with its code).
    Ended(Option<i32>),
    TimedOut,
}

/// Read until the console shows a fresh prompt (after a line break: the editor's redraws also
/// print the prompt, after a carriage return only), the kernel ends, or `timeout`. Everything read is appended to `seen` and echoed to `echo`.
fn wait_prompt(
    peer: &mut Peer,
    seen: &mut Vec<u8>,
    echo: &mut dyn Write,
    timeout: Duration,
) -> Result<Wait> {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    loop {
        let text = plain(seen);
        if text.ends_with(&format!("\n{PROMPT}")) {
            return Ok(Wait::Prompt);
        }
        if let Some(code) = text.lines().find_map(board::halt_code) {
            return Ok(Wait::Ended(Some(code)));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(Wait::TimedOut);
        }
        match peer.read(&mut buf, left.min(Duration::from_millis(100))) {
            Ok(n) => {
                seen.extend_from_slice(&buf[..n]);
                echo.write_all(&buf[..n])?;
                echo.flush()?;
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Ok(Wait::Ended(peer.exit_code()));
            }
            Err(e) => return Err(e).context("reading the console"),
        }
    }
}

/// Run `steps`; returns (passed, failed) checks. Progress and the console go to `echo`.
fn run_script(
    peer: &mut Peer,
    steps: &[Step],
    timeout: Duration,
    echo: &mut dyn Write,
) -> Result<(usize, usize)> {
    let mut seen = Vec::new();
    let mut ended: Option<Option<i32>> = None;
    match wait_prompt(peer, &mut seen, echo, timeout)? {
        Wait::Prompt => {}
        other => bail!("the console never showed its prompt ({other:?})"),
    }
    let (mut passed, mut failed) = (0, 0);
    let mut output = String::new();
    let mut check = |ok: bool, what: String, echo: &mut dyn Write| -> Result<()> {
        if ok {
            passed += 1;
        } else {
            failed += 1;
        }
        writeln!(echo, "\npb: {} {what}", if ok { "ok:" } else { "FAILED:" })?;
        Ok(())
    };
    for step in steps {
        match step {
            Step::Send(bytes) => {
                if ended.is_some() {
                    bail!("the kernel has ended; nothing more can be sent");
                }
                seen.clear();
                let mut line = bytes.clone();
                line.push(b'\r');
                peer.link.write_all(&line)?;
                match wait_prompt(peer, &mut seen, echo, timeout)? {
                    Wait::Prompt => {}
                    Wait::Ended(code) => ended = Some(code),
                    Wait::TimedOut => {
                        check(
                            false,
                            format!("no prompt within {} s", timeout.as_secs()),
                            echo,
                        )?;
                        break;
                    }
                }
                output = plain(&seen);
            }
            Step::Contains(text) => check(
                output.contains(text.as_str()),
                format!("output contains {text:?}"),
                echo,
            )?,
            Step::Lacks(text) => check(
                !output.contains(text.as_str()),
                format!("output lacks {text:?}"),
                echo,
            )?,
            Step::ExitCode(want) => {
                // Output still arriving (e.g. the exit's own line) is read until the end.
                while ended.is_none() {
                    seen.clear();
                    match wait_prompt(peer, &mut seen, echo, timeout)? {
                        Wait::Ended(code) => ended = Some(code),
                        Wait::Prompt => {}
                        Wait::TimedOut => break,
                    }
                }
                let got = ended.flatten();
                check(
                    got == Some(*want),
                    format!("exit code {want} (got {got:?})"),
                    echo,
                )?;
            }
        }
    }
    Ok((passed, failed))
}

/// The terminal in raw mode (no line buffering, no echo) until dropped.
struct RawTerminal {
    saved: Option<String>,
}

impl RawTerminal {
    fn enter() -> RawTerminal {
        if !io::stdin().is_terminal() {
            return RawTerminal { saved: None };
        }
        let stty = |args: &[&str]| -> Option<String> {
            let tty = fs::File::open("/dev/tty").ok()?;
            let out = Command::new("stty").args(args).stdin(tty).output().ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        };
        let saved = stty(&["-g"]);
        if saved.is_some() {
            stty(&["raw", "-echo"]);
        }
        RawTerminal { saved }
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved
            && let Ok(tty) = fs::File::open("/dev/tty")
        {
            let _ = Command::new("stty").arg(saved).stdin(tty).status();
        }
    }
}

/// Keys to the kernel, its output to the terminal, until it ends or Ctrl-].
fn interactive(peer: &mut Peer) -> Result<ExitCode> {
    eprintln!("pb: console on {}; Ctrl-] leaves", peer.link.describe());
    let raw = RawTerminal::enter();
    let (tx, keys) = mpsc::channel::<u8>();
    thread::spawn(move || {
        let mut byte = [0u8; 1];
        let mut stdin = io::stdin().lock();
        while let Ok(1) = stdin.read(&mut byte) {
            if tx.send(byte[0]).is_err() {
                break;
            }
        }
    });
    let mut out = io::stdout();
    let mut lines = link::Lines::default();
    let mut buf = [0u8; 4096];
    let code = loop {
        match peer.read(&mut buf, Duration::from_millis(20)) {
            Ok(n) => {
                out.write_all(&buf[..n])?;
                out.flush()?;
                if let Some(code) = lines
                    .push(&buf[..n])
                    .iter()
                    .find_map(|l| board::halt_code(l))
                {
                    break code;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                break peer.exit_code().unwrap_or(1);
            }
            Err(e) => return Err(e).context("reading the console"),
        }
        let typed: Vec<u8> = keys.try_iter().collect();
        if let Some(end) = typed.iter().position(|&b| b == QUIT) {
            peer.link.write_all(&typed[..end])?;
            drop(raw);
            eprintln!("\r\npb: left the console (Ctrl-])");
            return Ok(ExitCode::SUCCESS);
        }
        if !typed.is_empty() {
            peer.link.write_all(&typed)?;
        }
    };
    drop(raw);
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_parse() {
        let steps = parse_script(
            "# comment\n\n> attach call-ops leaf\n? attached #1\n! error:\n>   \n> att\\t\\e[A\\b\\x41\\\\\n= 3\n",
        )
        .unwrap();
        assert_eq!(
            steps,
            [
                Step::Send(b"attach call-ops leaf".to_vec()),
                Step::Contains("attached #1".into()),
                Step::Lacks("error:".into()),
                Step::Send(b"".to_vec()),
                Step::Send(b"att\t\x1b[A\x7fA\\".to_vec()),
                Step::ExitCode(3),
            ]
        );
    }

    #[test]
    fn bad_scripts_name_the_line() {
        for (text, why) in [
            ("list\n", "line 1"),
            ("> ok\n?\n", "line 2"),
            ("= x\n", "not an exit code"),
            ("> \\q\n", "unknown escape"),
            ("> \\x4\n", "two hex digits"),
            ("> a\\\n", "lone"),
        ] {
            let e = format!("{:#}", parse_script(text).unwrap_err());
            assert!(e.contains(why), "{text:?}: {e}");
        }
    }

    #[test]
    fn plain_drops_escapes_and_carriage_returns() {
        assert_eq!(
            plain(b"\x1b[2Dab\r\ncd\x07\x1b[K\r> x\x1b[12;3H"),
            "ab\ncd> x"
        );
    }
}
