//! Running QEMU: the command line (a pure function of [`QemuConfig`]), finding the binary, and
//! one boot with live streaming, capture and a timeout.

use std::ffi::{OsStr, OsString};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use anyhow::{Context, Result, bail};

use patchbay_board::ClockMode;
use patchbay_wire::bootargs;

use crate::board;
use crate::directives::{BootMode, Tcg};

/// The QEMU binary looked up on `PATH` when `--qemu` is not given.
pub const DEFAULT_QEMU: &str = "qemu-system-aarch64";

/// Everything the QEMU command line depends on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QemuConfig {
    pub qemu: PathBuf,
    pub machine: String,
    pub cpu: Option<String>,
    pub smp: Option<u32>,
    pub memory: Option<String>,
    pub icount: bool,
    /// `virt`'s GIC version (appended to the machine as `gic-version=N`).
    pub gic: Option<u8>,
    /// `-accel tcg,thread=…`; `None`: QEMU's choice.
    pub tcg: Option<Tcg>,
    /// Wait for a debugger on TCP port 1234 (`-s -S`).
    pub gdb: bool,
    /// The raw image to boot.
    pub kernel: PathBuf,
    /// The emulator and its version (`qemu-10.0.2`), passed as `patchbay.emulator=` so every
    /// `@bench` header names it; `None` if unknown.
    pub emulator: Option<String>,
    /// Kernel arguments after the `patchbay.clock=` (and `patchbay.emulator=`) ones.
    pub bootargs: Vec<String>,
    /// A DTB to pass (`-dtb`): machines that make none (raspi).
    pub dtb: Option<PathBuf>,
    /// How the kernel is started.
    pub boot: BootMode,
    /// Where `BootMode::El3` places the raw image (the board's load address).
    pub load_addr: u64,
    /// `BootMode::El3`: a tiny image at address 0 that parks the other CPUs (they start there).
    pub park: Option<PathBuf>,
    /// TCG plugins to load: each a `-plugin` option value (`path,arg=value,...`).
    pub plugins: Vec<String>,
}

/// `wfe; b .-4`: what the secondary CPUs run when QEMU starts them all at address 0.
pub const PARK_CODE: [u8; 8] = [0x5f, 0x20, 0x03, 0xd5, 0xff, 0xff, 0xff, 0x17];

/// A path inside a QEMU `-device` or `-plugin` option value (commas are doubled).
pub fn option_path(p: &Path) -> String {
    p.display().to_string().replace(',', ",,")
}

impl QemuConfig {
    /// The kernel command line: the clock mode first, the emulator, then the extra arguments.
    pub fn kernel_cmdline(&self) -> String {
        let mode = if self.icount {
            ClockMode::QemuIcount
        } else {
            ClockMode::Qemu
        };
        let mut args = vec![bootargs::arg(bootargs::CLOCK, mode.name()).to_string()];
        if let Some(emulator) = &self.emulator {
            args.push(bootargs::arg(bootargs::EMULATOR, emulator).to_string());
        }
        args.extend(self.bootargs.iter().cloned());
        args.join(" ")
    }

    /// The full argv, program first.
    pub fn argv(&self) -> Vec<OsString> {
        let mut argv: Vec<OsString> = vec![self.qemu.clone().into(), "-M".into()];
        match self.gic {
            Some(v) => argv.push(format!("{},gic-version={v}", self.machine).into()),
            None => argv.push(self.machine.clone().into()),
        }
        if let Some(tcg) = self.tcg {
            argv.extend(["-accel".into(), format!("tcg,thread={}", tcg.name()).into()]);
        }
        if let Some(cpu) = &self.cpu {
            argv.extend(["-cpu".into(), cpu.into()]);
        }
        if let Some(smp) = self.smp {
            argv.extend(["-smp".into(), smp.to_string().into()]);
        }
        if let Some(memory) = &self.memory {
            argv.extend(["-m".into(), memory.into()]);
        }
        for fixed in [
            "-display",
            "none",
            "-monitor",
            "none",
            "-serial",
            "stdio",
            "-semihosting-config",
            "enable=on,target=native",
        ] {
            argv.push(fixed.into());
        }
        if self.icount {
            argv.extend(["-icount".into(), "shift=0,align=off,sleep=off".into()]);
        }
        if self.gdb {
            argv.extend(["-s".into(), "-S".into()]);
        }
        for plugin in &self.plugins {
            argv.extend(["-plugin".into(), plugin.into()]);
        }
        match self.boot {
            BootMode::Kernel => {
                argv.extend(["-kernel".into(), self.kernel.clone().into()]);
                if let Some(dtb) = &self.dtb {
                    argv.extend(["-dtb".into(), dtb.clone().into()]);
                }
                argv.extend(["-append".into(), self.kernel_cmdline().into()]);
            }
            BootMode::El3 => {
                if let Some(park) = &self.park {
                    argv.push("-device".into());
                    argv.push(format!("loader,file={},addr=0", option_path(park)).into());
                }
                argv.push("-device".into());
                argv.push(
                    format!(
                        "loader,file={},addr={:#x},cpu-num=0,force-raw=on",
                        option_path(&self.kernel),
                        self.load_addr
                    )
                    .into(),
                );
            }
        }
        argv
    }
}

/// The QEMU to run: `explicit` if given, else [`DEFAULT_QEMU`] from `PATH`.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(DEFAULT_QEMU))
            .find(|p| p.is_file())
    });
    match found {
        Some(path) => Ok(path),
        None => {
            bail!("{DEFAULT_QEMU} not found: run `make deps` (apt-get install qemu-system-arm)")
        }
    }
}

/// `qemu-<version>` from `<qemu> --version` ("QEMU emulator version 10.0.2 (Debian …)"), or
/// `None` if it does not run or says something else.
pub fn version(qemu: &Path) -> Option<String> {
    let out = Command::new(qemu)
        .arg("--version")
        .stderr(Stdio::null())
        .output()
        .ok()?;
    parse_version(&String::from_utf8_lossy(&out.stdout))
}

fn parse_version(text: &str) -> Option<String> {
    let rest = text
        .lines()
        .next()?
        .strip_prefix("QEMU emulator version ")?;
    let v: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    (!v.is_empty()).then(|| format!("qemu-{v}"))
}

/// Quotes `arg` for a POSIX shell (for `--print-cmd`).
pub fn shell_quote(arg: &OsStr) -> String {
    let s = arg.to_string_lossy();
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./=:,+@%".contains(&b));
    if plain {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// How a boot ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// QEMU exited with this status: the kernel's semihosting exit code.
    Exited(i32),
    /// The kernel printed the board's final line with this exit code and halted; we stopped
    /// QEMU (how a run ends on a board without semihosting).
    Halted(i32),
    /// QEMU died without an exit code (a signal); the text says which.
    Killed,
    /// We killed QEMU after the timeout.
    TimedOut,
}

/// The result of one boot.
#[derive(Debug)]
pub struct Boot {
    pub ending: Ending,
    /// Console (QEMU stdout) lines, without line terminators.
    pub stdout: Vec<String>,
    /// QEMU stderr lines.
    pub stderr: Vec<String>,
    /// Description of a signal death, if any.
    pub signal: Option<String>,
}

impl Boot {
    /// Everything QEMU printed, stdout then stderr, for substring checks.
    pub fn console(&self) -> String {
        let mut s = self.stdout.join("\n");
        if !self.stderr.is_empty() {
            s.push('\n');
            s.push_str(&self.stderr.join("\n"));
        }
        s
    }
}

/// Copies `from` to `to` line by line as it arrives, returning the lines (lossy UTF-8, without
/// `\n` / `\r\n`). A last line without newline is forwarded too.
fn tee_lines(from: impl Read, mut to: impl Write, mut on_line: impl FnMut(&str)) -> Vec<String> {
    let mut reader = BufReader::new(from);
    let mut lines = Vec::new();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                // A closed stdout (e.g. `pb run ... | head`) must not stop the capture.
                let _ = to.write_all(&buf).and_then(|()| to.flush());
                let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                let line = String::from_utf8_lossy(line).into_owned();
                on_line(&line);
                lines.push(line);
            }
        }
    }
    lines
}

/// Runs QEMU once with `argv` (program first), stdin from `/dev/null`, streaming its stdout to
/// `out_sink` and its stderr to `err_sink` line by line as they arrive while capturing them;
/// kills it after `timeout` if given.
pub fn boot(
    argv: &[OsString],
    timeout: Option<Duration>,
    out_sink: impl Write + Send + 'static,
    err_sink: impl Write + Send + 'static,
) -> Result<Boot> {
    let (program, args) = argv.split_first().context("empty QEMU command line")?;
    let mut child = match Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            bail!(
                "QEMU not found at {}: check --qemu, or run `make deps`",
                program.display()
            )
        }
        Err(e) => {
            return Err(e).with_context(|| format!("cannot start {}", program.display()));
        }
    };
    let out = child.stdout.take().context("QEMU stdout")?;
    let err = child.stderr.take().context("QEMU stderr")?;
    // A board's final line ends the run with its code (-1: not seen).
    let halted = Arc::new(AtomicI64::new(-1));
    let seen = Arc::clone(&halted);
    let out_thread = thread::spawn(move || {
        tee_lines(out, out_sink, |line| {
            if let Some(code) = board::halt_code(line) {
                seen.store(i64::from(code), Ordering::SeqCst);
            }
        })
    });
    let err_thread = thread::spawn(move || tee_lines(err, err_sink, |_| {}));

    let deadline = timeout.map(|t| Instant::now() + t);
    let mut halt: Option<i32> = None;
    let status: Option<ExitStatus> = loop {
        if let Some(status) = child.try_wait().context("waiting for QEMU")? {
            break Some(status);
        }
        let code = halted.load(Ordering::SeqCst);
        if code >= 0 {
            halt = Some(code as i32);
            let _ = child.kill();
            child.wait().context("reaping QEMU")?;
            break None;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            // Already exited in between is fine; the wait below reaps it either way.
            let _ = child.kill();
            child.wait().context("reaping QEMU")?;
            break None;
        }
        thread::sleep(Duration::from_millis(10));
    };
    let stdout = out_thread.join().unwrap_or_default();
    let stderr = err_thread.join().unwrap_or_default();
    let (ending, signal) = match status {
        None if halt.is_some() => (Ending::Halted(halt.unwrap_or(1)), None),
        None => (Ending::TimedOut, None),
        Some(s) => match s.code() {
            Some(code) => (Ending::Exited(code), None),
            None => (Ending::Killed, Some(s.to_string())),
        },
    };
    Ok(Boot {
        ending,
        stdout,
        stderr,
        signal,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(argv: &[OsString]) -> Vec<String> {
        argv.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    fn virt() -> QemuConfig {
        QemuConfig {
            qemu: "qemu-system-aarch64".into(),
            machine: "virt".into(),
            cpu: Some("cortex-a72".into()),
            smp: Some(1),
            memory: Some("1G".into()),
            icount: false,
            gic: None,
            tcg: None,
            gdb: false,
            kernel: "target/kernel.elf.bin".into(),
            emulator: None,
            bootargs: vec![],
            dtb: None,
            boot: BootMode::Kernel,
            load_addr: 0x4008_0000,
            park: None,
            plugins: vec![],
        }
    }

    #[test]
    fn argv_virt() {
        assert_eq!(
            strings(&virt().argv()),
            [
                "qemu-system-aarch64",
                "-M",
                "virt",
                "-cpu",
                "cortex-a72",
                "-smp",
                "1",
                "-m",
                "1G",
                "-display",
                "none",
                "-monitor",
                "none",
                "-serial",
                "stdio",
                "-semihosting-config",
                "enable=on,target=native",
                "-kernel",
                "target/kernel.elf.bin",
                "-append",
                "patchbay.clock=qemu",
            ]
        );
    }

    #[test]
    fn argv_virt_icount_bootargs_gdb() {
        let cfg = QemuConfig {
            machine: "virt,virtualization=on".into(),
            smp: Some(4),
            icount: true,
            gdb: true,
            plugins: vec!["lib.so,elf=k,,1,mode=strict".into()],
            bootargs: vec!["bench=all".into(), "--exact".into(), "tests::a".into()],
            ..virt()
        };
        assert_eq!(
            strings(&cfg.argv()),
            [
                "qemu-system-aarch64",
                "-M",
                "virt,virtualization=on",
                "-cpu",
                "cortex-a72",
                "-smp",
                "4",
                "-m",
                "1G",
                "-display",
                "none",
                "-monitor",
                "none",
                "-serial",
                "stdio",
                "-semihosting-config",
                "enable=on,target=native",
                "-icount",
                "shift=0,align=off,sleep=off",
                "-s",
                "-S",
                "-plugin",
                "lib.so,elf=k,,1,mode=strict",
                "-kernel",
                "target/kernel.elf.bin",
                "-append",
                "patchbay.clock=qemu-icount bench=all --exact tests::a",
            ]
        );
    }

    #[test]
    fn argv_gic_and_tcg() {
        let cfg = QemuConfig {
            gic: Some(3),
            tcg: Some(Tcg::Multi),
            smp: Some(4),
            ..virt()
        };
        let argv = strings(&cfg.argv());
        assert_eq!(
            argv[..9],
            [
                "qemu-system-aarch64",
                "-M",
                "virt,gic-version=3",
                "-accel",
                "tcg,thread=multi",
                "-cpu",
                "cortex-a72",
                "-smp",
                "4"
            ]
        );
        assert_eq!(Tcg::from_name("single"), Some(Tcg::Single));
        assert_eq!(Tcg::from_name("mttcg"), None);
    }

    #[test]
    fn the_emulator_is_named_in_the_kernel_cmdline() {
        let cfg = QemuConfig {
            emulator: Some("qemu-10.0.2".into()),
            icount: true,
            ..virt()
        };
        assert_eq!(
            cfg.kernel_cmdline(),
            "patchbay.clock=qemu-icount patchbay.emulator=qemu-10.0.2"
        );
        assert_eq!(
            parse_version(
                "QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)\nCopyright"
            ),
            Some("qemu-10.0.2".into())
        );
        assert_eq!(
            parse_version("QEMU emulator version 7.2.0\n"),
            Some("qemu-7.2.0".into())
        );
        assert_eq!(parse_version("qemu-system-aarch64: fake\n"), None);
    }

    #[test]
    fn argv_raspi3b() {
        let cfg = QemuConfig {
            qemu: "/opt/qemu/bin/qemu-system-aarch64".into(),
            machine: "raspi3b".into(),
            cpu: None,
            smp: None,
            memory: None,
            kernel: "kernel8.img".into(),
            dtb: Some("k.dtb".into()),
            ..virt()
        };
        assert_eq!(
            strings(&cfg.argv()),
            [
                "/opt/qemu/bin/qemu-system-aarch64",
                "-M",
                "raspi3b",
                "-display",
                "none",
                "-monitor",
                "none",
                "-serial",
                "stdio",
                "-semihosting-config",
                "enable=on,target=native",
                "-kernel",
                "kernel8.img",
                "-dtb",
                "k.dtb",
                "-append",
                "patchbay.clock=qemu",
            ]
        );
        let el3 = QemuConfig {
            boot: BootMode::El3,
            load_addr: 0x80000,
            park: Some("a,b.park".into()),
            ..cfg
        };
        let argv = strings(&el3.argv());
        assert_eq!(
            argv[argv.len() - 4..],
            [
                "-device",
                "loader,file=a,,b.park,addr=0",
                "-device",
                "loader,file=kernel8.img,addr=0x80000,cpu-num=0,force-raw=on"
            ]
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote(OsStr::new("-M")), "-M");
        assert_eq!(
            shell_quote(OsStr::new("enable=on,target=native")),
            "enable=on,target=native"
        );
        assert_eq!(shell_quote(OsStr::new("a b")), "'a b'");
        assert_eq!(shell_quote(OsStr::new("it's")), r"'it'\''s'");
        assert_eq!(shell_quote(OsStr::new("")), "''");
    }

    #[test]
    fn tee_forwards_and_captures() {
        let input: &[u8] = b"one\r\ntwo\n\nlast without newline";
        let mut forwarded = Vec::new();
        let mut seen = Vec::new();
        let lines = tee_lines(input, &mut forwarded, |l| seen.push(l.to_string()));
        assert_eq!(seen, lines);
        assert_eq!(forwarded, input);
        assert_eq!(lines, ["one", "two", "", "last without newline"]);
    }

    #[test]
    fn explicit_qemu_is_used_as_is() {
        assert_eq!(
            locate(Some(Path::new("/x/qemu"))).unwrap(),
            PathBuf::from("/x/qemu")
        );
    }

    #[test]
    fn boot_reports_exit_code_and_output() {
        // Any POSIX shell stands in for QEMU here.
        let argv: Vec<OsString> = ["sh", "-c", "echo console line; echo oops >&2; exit 3"]
            .map(Into::into)
            .to_vec();
        let boot = boot(&argv, Some(Duration::from_secs(20)), io::sink(), io::sink()).unwrap();
        assert_eq!(boot.ending, Ending::Exited(3));
        assert_eq!(boot.stdout, ["console line"]);
        assert_eq!(boot.stderr, ["oops"]);
        assert_eq!(boot.console(), "console line\noops");
    }

    #[test]
    fn boot_ends_at_the_halt_line() {
        // A "board" that prints its final line and then hangs, as the Pi BSPs do.
        let argv: Vec<OsString> = [
            "sh",
            "-c",
            "echo tests ok; echo 'patchbay: halted with exit code 3 (reset the board to run again)'; exec sleep 30",
        ]
        .map(Into::into)
        .to_vec();
        let t0 = Instant::now();
        let boot = boot(&argv, Some(Duration::from_secs(20)), io::sink(), io::sink()).unwrap();
        assert_eq!(boot.ending, Ending::Halted(3));
        assert_eq!(boot.stdout[0], "tests ok");
        assert!(t0.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn boot_times_out() {
        let argv: Vec<OsString> = ["sh", "-c", "echo started; exec sleep 30"]
            .map(Into::into)
            .to_vec();
        let t0 = Instant::now();
        let boot = boot(
            &argv,
            Some(Duration::from_millis(300)),
            io::sink(),
            io::sink(),
        )
        .unwrap();
        assert_eq!(boot.ending, Ending::TimedOut);
        assert_eq!(boot.stdout, ["started"]);
        assert!(t0.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn missing_program_is_a_clear_error() {
        let argv: Vec<OsString> = vec!["/nonexistent/qemu-system-aarch64".into()];
        let msg = format!(
            "{:#}",
            boot(&argv, None, io::sink(), io::sink()).unwrap_err()
        );
        assert!(
            msg.contains("QEMU not found at /nonexistent/qemu-system-aarch64"),
            "{msg}"
        );
    }
}
