//! Run directives: how a kernel image wants to be booted and judged.
//!
//! The kernel ELF may carry a non-allocated section `.patchbay.qemu` holding UTF-8 text, one
//! `key=value` per line (the keys and the line format: `patchbay_wire::directives`). Several statics may be concatenated into that section, so NUL bytes
//! (padding) are treated as line breaks; blank lines and lines starting with `#` are ignored;
//! whitespace around keys and values is trimmed.
//!
//! | key | value | default |
//! |---|---|---|
//! | `machine` | QEMU machine, e.g. `virt`, `virt,virtualization=on`, `raspi3b` | `virt` |
//! | `cpu` | QEMU CPU model | `cortex-a72` on `virt`, none otherwise |
//! | `smp` | number of CPUs (≥ 1) | 1 on `virt`, none otherwise |
//! | `memory` | QEMU memory size, e.g. `1G` | `1G` on `virt`, none otherwise |
//! | `icount` | `1`/`0` (or `true`/`false`): deterministic instruction counting | `0` |
//! | `timeout` | seconds before QEMU is killed; `0` disables | 60 |
//! | `expect_exit` | expected semihosting exit code (0..=255) | 0 |
//! | `expect_console` | substring that must appear in the console output (repeatable) | |
//! | `reject_console` | substring that must not appear (repeatable) | |
//! | `repeat` | boot this many times (≥ 1) | 1 |
//! | `same_lines` | line prefix: those lines must be present in, and identical across, all boots | |
//! | `bootargs` | extra kernel arguments (repeatable; appended in order) | |
//! | `gic` | `2` or `3`: the interrupt controller of QEMU `virt` (`-M virt,gic-version=N`); `virt` only | QEMU's (2) |
//! | `tcg` | `multi`: one host thread per vCPU (real parallel races; not with `icount`); `single`: all vCPUs round-robin in one thread (what `icount` implies) | QEMU's (multi without icount, single with) |
//! | `boot` | `kernel`: QEMU's `-kernel` (a DTB in x0, entered at EL2 or EL1); `el3`: loaded raw at the board's load address and entered at EL3 with no DTB, as with a Raspberry Pi without the firmware's armstub (raspi machines) | `kernel` |
//!
//! The kernel's BSP adds its board's facts (`board=rpi3`, `board_*` keys; see [`board::Facts`]):
//! they choose the QEMU machine when no `machine` is given, and `pb image` reads them.
//!
//! A scalar key given twice keeps the last value.

use anyhow::{Context, Result, bail};
pub use patchbay_wire::directives::SECTION;
use patchbay_wire::directives::{self as keys, KEYS, key_value, lines};

use crate::board;

/// How QEMU starts the kernel (directive `boot`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BootMode {
    /// `-kernel`: as a boot loader would (DTB in x0).
    #[default]
    Kernel,
    /// Raw at the load address, entered at EL3 with no DTB.
    El3,
}

/// How TCG runs the vCPUs (`-accel tcg,thread=…`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tcg {
    /// One host thread per vCPU: CPUs really run at the same time (races show up).
    Multi,
    /// All vCPUs round-robin in one host thread (deterministic with `-icount`, which needs it).
    Single,
}

impl Tcg {
    pub fn name(self) -> &'static str {
        match self {
            Tcg::Multi => "multi",
            Tcg::Single => "single",
        }
    }

    pub fn from_name(name: &str) -> Option<Tcg> {
        [Tcg::Multi, Tcg::Single]
            .into_iter()
            .find(|t| t.name() == name)
    }
}

/// Parsed directives; `None` / empty means "not given" (the defaults live in `cmd::run`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Directives {
    pub machine: Option<String>,
    pub cpu: Option<String>,
    pub smp: Option<u32>,
    pub memory: Option<String>,
    pub icount: Option<bool>,
    pub timeout: Option<u64>,
    pub expect_exit: Option<u8>,
    pub expect_console: Vec<String>,
    pub reject_console: Vec<String>,
    pub repeat: Option<u32>,
    pub same_lines: Option<String>,
    pub bootargs: Vec<String>,
    pub boot: BootMode,
    pub gic: Option<u8>,
    pub tcg: Option<Tcg>,
    /// The board the kernel was built for (written by its BSP).
    pub board: board::Facts,
}

impl Directives {
    /// Whether the image asks for a verdict (anything beyond "exit with the kernel's code").
    pub fn has_expectations(&self) -> bool {
        self.expect_exit.is_some()
            || !self.expect_console.is_empty()
            || !self.reject_console.is_empty()
            || self.repeat.is_some_and(|n| n > 1)
            || self.same_lines.is_some()
    }
}

/// Parses directive text (the raw bytes of the `.patchbay.qemu` section).
pub fn parse(raw: &[u8]) -> Result<Directives> {
    let text = std::str::from_utf8(raw).context("the text is not UTF-8")?;
    let mut d = Directives::default();
    for (number, line) in lines(text) {
        parse_line(&mut d, line).with_context(|| format!("line {number}: `{line}`"))?;
    }
    Ok(d)
}

fn parse_line(d: &mut Directives, line: &str) -> Result<()> {
    let Some((key, value)) = key_value(line) else {
        bail!("expected `key=value`");
    };
    let nonempty = || -> Result<String> {
        if value.is_empty() {
            bail!("`{key}` needs a value");
        }
        Ok(value.to_string())
    };
    match key {
        keys::MACHINE => d.machine = Some(nonempty()?),
        keys::CPU => d.cpu = Some(nonempty()?),
        keys::MEMORY => d.memory = Some(nonempty()?),
        keys::SMP => d.smp = Some(positive(key, value)?),
        keys::REPEAT => d.repeat = Some(positive(key, value)?),
        keys::ICOUNT => d.icount = Some(boolean(key, value)?),
        keys::TIMEOUT => {
            d.timeout = Some(value.parse().with_context(|| {
                format!("`timeout` must be a whole number of seconds, not `{value}`")
            })?)
        }
        keys::EXPECT_EXIT => {
            d.expect_exit = Some(value.parse().with_context(|| {
                format!("`expect_exit` must be an exit code 0..=255, not `{value}`")
            })?)
        }
        keys::EXPECT_CONSOLE => d.expect_console.push(nonempty()?),
        keys::REJECT_CONSOLE => d.reject_console.push(nonempty()?),
        keys::SAME_LINES => d.same_lines = Some(nonempty()?),
        keys::BOOTARGS => {
            if !value.is_empty() {
                d.bootargs.push(value.to_string());
            }
        }
        keys::BOOT => {
            d.boot = match value {
                "kernel" => BootMode::Kernel,
                "el3" => BootMode::El3,
                _ => bail!("`boot` must be `kernel` or `el3`, not `{value}`"),
            }
        }
        keys::GIC => {
            d.gic = Some(match value {
                "2" => 2,
                "3" => 3,
                _ => bail!("`gic` must be 2 or 3, not `{value}`"),
            })
        }
        keys::TCG => {
            d.tcg = Some(
                Tcg::from_name(value)
                    .with_context(|| format!("`tcg` must be `multi` or `single`, not `{value}`"))?,
            )
        }
        _ if d.board.set(key, value)? => {}
        _ => bail!(
            "unknown key `{key}` (known keys: {}, board, board_*)",
            KEYS.join(", ")
        ),
    }
    Ok(())
}

fn positive(key: &str, value: &str) -> Result<u32> {
    match value.parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => bail!("`{key}` must be a whole number ≥ 1, not `{value}`"),
    }
}

fn boolean(key: &str, value: &str) -> Result<bool> {
    match value {
        "1" | "true" | "on" | "yes" => Ok(true),
        "0" | "false" | "off" | "no" => Ok(false),
        _ => bail!("`{key}` must be 1 or 0, not `{value}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_comments() {
        assert_eq!(parse(b"").unwrap(), Directives::default());
        assert_eq!(
            parse(b"\n\n# a comment\n   # indented comment\n\0\0\0").unwrap(),
            Directives::default()
        );
        assert!(!Directives::default().has_expectations());
    }

    #[test]
    fn all_keys() {
        let text = "\
machine=virt,virtualization=on
cpu = cortex-a53
smp=4
memory=2G
icount=1
timeout=30
expect_exit=3
expect_console=hello world
expect_console=test result: ok
reject_console=panicked
reject_console=FAILED
repeat=3
same_lines=@det
bootargs=a=1 b
bootargs=c
boot=el3
gic=3
tcg=single
board=rpi3
board_kernel_load=0x80000
";
        let d = parse(text.as_bytes()).unwrap();
        assert_eq!(
            d,
            Directives {
                machine: Some("virt,virtualization=on".into()),
                cpu: Some("cortex-a53".into()),
                smp: Some(4),
                memory: Some("2G".into()),
                icount: Some(true),
                timeout: Some(30),
                expect_exit: Some(3),
                expect_console: vec!["hello world".into(), "test result: ok".into()],
                reject_console: vec!["panicked".into(), "FAILED".into()],
                repeat: Some(3),
                same_lines: Some("@det".into()),
                bootargs: vec!["a=1 b".into(), "c".into()],
                boot: BootMode::El3,
                gic: Some(3),
                tcg: Some(Tcg::Single),
                board: crate::board::Facts {
                    name: Some("rpi3".into()),
                    kernel_load: Some(0x80000),
                    ..Default::default()
                },
            }
        );
        assert!(d.has_expectations());
    }

    #[test]
    fn nul_padding_between_concatenated_statics() {
        // Two statics, the first without a trailing newline, padded to 8 bytes with NULs.
        let raw = b"icount=0\0\0\0\0\0\0\0\0repeat=2\nsame_lines=@det\n\0\0\0\0\0\0\0\0\0";
        let d = parse(raw).unwrap();
        assert_eq!(d.icount, Some(false));
        assert_eq!(d.repeat, Some(2));
        assert_eq!(d.same_lines.as_deref(), Some("@det"));
        let glued = b"timeout=5\0expect_exit=7\0";
        let d = parse(glued).unwrap();
        assert_eq!((d.timeout, d.expect_exit), (Some(5), Some(7)));
    }

    #[test]
    fn crlf_and_last_value_wins() {
        let d = parse(b"machine=virt\r\nmachine=raspi3b\r\ntimeout=0\r\n").unwrap();
        assert_eq!(d.machine.as_deref(), Some("raspi3b"));
        assert_eq!(d.timeout, Some(0));
    }

    #[test]
    fn unknown_key_is_named() {
        let err = parse(b"machine=virt\n# ok\nmachnie=virt\n").unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("line 3"), "{msg}");
        assert!(msg.contains("unknown key `machnie`"), "{msg}");
        assert!(msg.contains("known keys: machine,"), "{msg}");
    }

    #[test]
    fn bad_values() {
        for (text, needle) in [
            ("smp=0", "`smp` must be a whole number ≥ 1"),
            ("smp=two", "`smp` must be a whole number ≥ 1"),
            ("repeat=0", "`repeat` must be a whole number ≥ 1"),
            ("icount=maybe", "`icount` must be 1 or 0"),
            ("timeout=1.5", "`timeout` must be a whole number of seconds"),
            ("expect_exit=256", "`expect_exit` must be an exit code"),
            ("expect_exit=-1", "`expect_exit` must be an exit code"),
            ("expect_console=", "`expect_console` needs a value"),
            ("same_lines=  ", "`same_lines` needs a value"),
            ("machine", "expected `key=value`"),
            ("boot=el2", "`boot` must be `kernel` or `el3`"),
            ("gic=4", "`gic` must be 2 or 3"),
            ("tcg=mttcg", "`tcg` must be `multi` or `single`"),
            ("board_uart_base=x", "`x` is not a number"),
        ] {
            let msg = format!("{:#}", parse(text.as_bytes()).unwrap_err());
            assert!(msg.contains(needle), "{text}: {msg}");
        }
        assert!(parse(b"\xff\xfe=1").is_err());
    }

    #[test]
    fn repeat_and_same_lines() {
        let d = parse(b"repeat=1\n").unwrap();
        assert_eq!(d.repeat, Some(1));
        assert!(
            !d.has_expectations(),
            "a single boot with no checks is a plain run"
        );
        let d = parse(b"repeat=2\n").unwrap();
        assert!(d.has_expectations());
        let d = parse(b"same_lines=@det =x\n").unwrap();
        assert_eq!(d.same_lines.as_deref(), Some("@det =x"));
        assert!(d.has_expectations());
        // An empty bootargs line is allowed and adds nothing.
        assert!(parse(b"bootargs=\n").unwrap().bootargs.is_empty());
    }
}
