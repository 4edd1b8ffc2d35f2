//! `pb run`: boot a kernel ELF under QEMU and judge the run.
//!
//! Used by hand (`make qemu`) and as cargo's target runner for the kernel's QEMU-booted tests:
//! cargo invokes `pb run <elf> [test args...]`, and the trailing arguments become kernel boot
//! arguments.
//!
//! With `--table`, a successful run is followed by the tables of the benchmark records (`@bench`
//! lines) found on the console; nothing is written to disk (`pb bench` does that).
//!
//! Exit status: with no expectations (no `expect_*`, `reject_console`, `same_lines` directive and
//! at most one boot), the kernel's own exit code (QEMU's); otherwise 0 when every expectation
//! holds and 1 when one fails. A timeout exits 124; an error of `pb` itself exits 2.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::ValueEnum;

use crate::directives::{self, BootMode, Directives};
use crate::fdt;
use crate::image;
use crate::outputs;
use crate::progress::Progress;
use crate::qemu::{self, Ending, QemuConfig};
use crate::records;
use crate::table;
use crate::targets;
use crate::verdict::{self, Expectations};

/// Exit code of a run that timed out (as `timeout(1)`).
pub const EXIT_TIMEOUT: u8 = 124;
/// Default `timeout` directive, in seconds.
pub const DEFAULT_TIMEOUT_S: u64 = 60;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Options override the ELF's run directives (section .patchbay.qemu). Everything after \
KERNEL_ELF is passed to the kernel as boot arguments, so options must come before it.

Exit status: the kernel's exit code when the ELF states no expectations; else 0 if all hold, \
1 if one fails; 124 on timeout; 2 if pb itself fails.")]
pub struct Args {
    /// QEMU machine [directive `machine`; default: virt]
    #[arg(long, value_name = "MACHINE")]
    pub machine: Option<String>,
    /// QEMU CPU model [directive `cpu`; default: cortex-a72 on virt]
    #[arg(long, value_name = "CPU")]
    pub cpu: Option<String>,
    /// Number of CPUs [directive `smp`; default: 1 on virt]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub smp: Option<u32>,
    /// GIC version of QEMU virt: 2 or 3 [directive `gic`; default: QEMU's, 2]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(2..=3))]
    pub gic: Option<u8>,
    /// TCG threading: multi (one host thread per vCPU, not with icount) or single [directive
    /// `tcg`; default: QEMU's]
    #[arg(long, value_name = "MODE", value_parser = ["multi", "single"])]
    pub tcg: Option<String>,
    /// Guest memory, e.g. 1G [directive `memory`; default: 1G on virt]
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// Deterministic instruction counting (-icount shift=0) [directive `icount`]
    #[arg(long, overrides_with = "no_icount")]
    pub icount: bool,
    /// No instruction counting, whatever the directives say
    #[arg(long, overrides_with = "icount")]
    pub no_icount: bool,
    /// Kill QEMU after this many seconds; 0: never [directive `timeout`; default: 60]
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// Wait for a debugger on :1234 (QEMU -s -S); disables the timeout
    #[arg(long)]
    pub gdb: bool,
    /// Print the QEMU command line before running it
    #[arg(long)]
    pub print_cmd: bool,
    /// The QEMU binary [default: qemu-system-aarch64 from PATH]
    #[arg(long, value_name = "PATH")]
    pub qemu: Option<PathBuf>,
    /// After a successful run, print the tables of the console's @bench records and the verdict
    /// against the targets
    #[arg(long)]
    pub table: bool,
    /// Show benchmark progress suite by suite instead of the @bench lines, and keep every record
    /// in DIR/latest.jsonl (the console in DIR/latest.log)
    #[arg(long, value_name = "DIR")]
    pub records: Option<PathBuf>,
    /// Run under the stale-I-cache model (tools/icache-plugin): strict fails the run on any
    /// violation [default with no MODE; env PB_ICACHE]
    #[arg(
        long,
        value_name = "MODE",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "strict"
    )]
    pub icache: Option<IcacheMode>,
    /// The kernel ELF (built for aarch64-unknown-none-softfloat)
    #[arg(value_name = "KERNEL_ELF")]
    pub kernel: PathBuf,
    /// Kernel boot arguments, after those of the directives (cargo passes test arguments here)
    #[arg(
        value_name = "BOOTARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub bootargs: Vec<String>,
}

/// How the stale-I-cache model watches a run (README, "Stale-I-cache model").
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum IcacheMode {
    /// Report every violation; the run fails if there was one.
    Report,
    /// QEMU stops at the first violation; the run fails.
    Strict,
    /// No model (overrides PB_ICACHE).
    Off,
}

/// The plugin, built by `make icache-plugin` next to `pb` (both in target/release).
pub const ICACHE_PLUGIN: &str = "libpatchbay_icache_plugin.so";
/// Environment variable read when `--icache` is not given (`make test` sets it).
pub const ICACHE_ENV: &str = "PB_ICACHE";

/// The `-plugin` option value that runs the model on `kernel`.
fn icache_plugin(mode: IcacheMode, kernel: &Path) -> Result<String> {
    let exe = std::env::current_exe().context("locating pb")?;
    let plugin = exe.with_file_name(ICACHE_PLUGIN);
    if !plugin.is_file() {
        bail!(
            "{} not found: build it with `make icache-plugin`",
            plugin.display()
        );
    }
    let mode = if mode == IcacheMode::Report {
        "report"
    } else {
        "strict"
    };
    Ok(format!(
        "{},elf={},mode={mode}",
        qemu::option_path(&plugin),
        qemu::option_path(kernel)
    ))
}

/// What the model's `icache: ` lines on QEMU's stderr say about one boot: its violations and
/// errors, and, for a boot that ended with QEMU's exit, a missing summary (the model never ran).
pub fn icache_failures(stderr: &[String], exited: bool) -> Vec<String> {
    let mut failures: Vec<String> = stderr
        .iter()
        .filter_map(|l| {
            let l = l.strip_prefix("icache: ")?;
            (l.starts_with("VIOLATION") || l.starts_with("ERROR"))
                .then(|| format!("stale-I-cache model: {l}"))
        })
        .collect();
    if exited && failures.is_empty() && !stderr.iter().any(|l| l.starts_with("icache: summary: ")) {
        failures.push("stale-I-cache model: no summary from the plugin (did it load?)".into());
    }
    failures
}

/// Everything a run does, resolved from the directives and the options.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    /// The QEMU configuration, with `qemu` and `kernel` still to be filled in.
    pub qemu: QemuConfig,
    pub timeout: Option<Duration>,
    pub repeat: u32,
    /// `None`: no expectations; `pb` exits with the kernel's exit code.
    pub expect: Option<Expectations>,
    /// The stale-I-cache model's mode (`None`: from PB_ICACHE at run time).
    pub icache: Option<IcacheMode>,
}

/// Resolves the run: options override directives, which override the defaults.
pub fn plan(args: &Args, d: &Directives) -> Plan {
    // The board the kernel was built for picks the machine unless told otherwise.
    let machine = args
        .machine
        .clone()
        .or_else(|| d.machine.clone())
        .or_else(|| d.board.machine.clone())
        .unwrap_or("virt".into());
    let is_virt = machine.split(',').next() == Some("virt");
    let default = |value: &str| is_virt.then(|| value.to_string());
    let icount = if args.icount {
        true
    } else if args.no_icount {
        false
    } else {
        d.icount.unwrap_or(false)
    };
    let timeout_s = args.timeout.or(d.timeout).unwrap_or(DEFAULT_TIMEOUT_S);
    let timeout = (!args.gdb && timeout_s > 0).then(|| Duration::from_secs(timeout_s));
    let expect = d.has_expectations().then(|| Expectations {
        exit: i32::from(d.expect_exit.unwrap_or(0)),
        console: d.expect_console.clone(),
        reject: d.reject_console.clone(),
        same_lines: d.same_lines.clone(),
    });
    Plan {
        qemu: QemuConfig {
            qemu: PathBuf::new(),
            cpu: args
                .cpu
                .clone()
                .or_else(|| d.cpu.clone())
                .or_else(|| default("cortex-a72")),
            smp: args.smp.or(d.smp).or(is_virt.then_some(1)),
            memory: args
                .memory
                .clone()
                .or_else(|| d.memory.clone())
                .or_else(|| default("1G")),
            machine,
            icount,
            gic: args.gic.or(d.gic),
            tcg: args
                .tcg
                .as_deref()
                .and_then(directives::Tcg::from_name)
                .or(d.tcg),
            gdb: args.gdb,
            kernel: PathBuf::new(),
            emulator: None,
            bootargs: d.bootargs.iter().chain(&args.bootargs).cloned().collect(),
            dtb: None,
            boot: d.boot,
            load_addr: d.board.kernel_load.unwrap_or(0x8_0000),
            park: None,
            plugins: Vec::new(),
        },
        timeout,
        repeat: d.repeat.unwrap_or(1),
        expect,
        icache: args.icache,
    }
}

/// Refuse QEMU options that cannot go together: a GIC version on a machine other than `virt`,
/// multi-threaded TCG with icount.
fn check_accelerator(q: &QemuConfig) -> Result<()> {
    if q.gic.is_some() && q.machine.split(',').next() != Some("virt") {
        bail!(
            "`gic` chooses the interrupt controller of QEMU virt; {} has its own",
            q.machine
        );
    }
    if q.icount && q.tcg == Some(directives::Tcg::Multi) {
        bail!(
            "`tcg=multi` cannot run with icount: QEMU counts instructions only with all vCPUs \
             in one thread (`tcg=single`)"
        );
    }
    Ok(())
}

/// `<elf>.bin`, next to the ELF.
fn bin_path(elf: &Path) -> PathBuf {
    with_suffix(elf, ".bin")
}

/// `<path><suffix>`.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name: OsString = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Where one boot's console goes while it runs: QEMU's stdout, then its stderr.
pub type Sink = Box<dyn Write + Send>;

/// Streams a boot live to our own stdout and stderr.
pub fn terminal() -> (Sink, Sink) {
    (Box::new(io::stdout()), Box::new(io::stderr()))
}

/// What a run produced.
#[derive(Debug)]
pub struct Outcome {
    /// What `pb run` exits with (see the module documentation).
    pub code: u8,
    /// Each boot's console (QEMU stdout) lines, without terminators; also those of a boot that
    /// failed or timed out.
    pub consoles: Vec<Vec<String>>,
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        self.code == 0
    }

    /// The last boot's console as one text.
    pub fn console(&self) -> String {
        self.consoles
            .last()
            .map(|c| c.join("\n"))
            .unwrap_or_default()
    }
}

pub fn main(args: Args) -> Result<ExitCode> {
    let outcome = match &args.records {
        Some(_) => run(&args, &mut || {
            let out: Sink = Box::new(Progress::new(io::stdout()));
            (out, Box::new(io::stderr()))
        })?,
        None => run(&args, &mut terminal)?,
    };
    if args.table && outcome.succeeded() {
        print_tables(&outcome.console());
    }
    if let Some(dir) = &args.records {
        keep_records(&outcome.console(), dir)?;
    }
    Ok(ExitCode::from(outcome.code))
}

/// `--records DIR`: every record in `DIR/latest.jsonl` (header first, as the kernel wrote
/// them) and the console in `DIR/latest.log`; says where.
fn keep_records(console: &str, dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let log = dir.join("latest.log");
    fs::write(&log, format!("{console}\n"))
        .with_context(|| format!("cannot write {}", log.display()))?;
    let run = records::parse_log(console);
    let jsonl = dir.join(outputs::JSONL);
    fs::write(&jsonl, outputs::jsonl(&run))
        .with_context(|| format!("cannot write {}", jsonl.display()))?;
    eprintln!(
        "pb: all {} result records are in {} (the console in {})",
        run.results.len(),
        jsonl.display(),
        log.display()
    );
    Ok(())
}

/// `--table`: the tables of the `@bench` records on the console.
fn print_tables(console: &str) {
    let run = records::parse_log(console);
    outputs::print_problems(&run, "console");
    if run.results.is_empty() {
        eprintln!("pb: --table: no @bench result records on the console");
        return;
    }
    print!("{}", table::render(&run));
    print!("{}", targets::section(&run).text());
    for failure in run.failures() {
        eprintln!("pb: warning: {failure}");
    }
}

/// Runs a kernel as `pb run` does: loads the ELF and its directives, writes the raw image, boots
/// it (streaming each boot's console to the sinks that `sinks` makes, one pair per boot) and
/// judges the run.
pub fn run(args: &Args, sinks: &mut dyn FnMut() -> (Sink, Sink)) -> Result<Outcome> {
    let image = image::load(&args.kernel)?;
    let directives = match &image.directives {
        Some(raw) => directives::parse(raw).with_context(|| {
            format!("{}: section {}", args.kernel.display(), directives::SECTION)
        })?,
        None => Directives::default(),
    };
    let mut plan = plan(args, &directives);
    if plan.qemu.machine == "none" {
        let board = directives.board.name.as_deref().unwrap_or("this board");
        bail!(
            "{} is built for {board}, and QEMU has no machine for it. Run it on the board \
             (`make BSP={board} image`, `flash` or `chainboot`; see docs/boards.md)",
            args.kernel.display()
        );
    }
    check_accelerator(&plan.qemu)?;
    plan.qemu.qemu = qemu::locate(args.qemu.as_deref())?;
    plan.qemu.emulator = qemu::version(&plan.qemu.qemu);
    if plan.icache.is_none()
        && let Some(v) = std::env::var_os(ICACHE_ENV)
    {
        let v = v.to_string_lossy();
        plan.icache =
            Some(IcacheMode::from_str(&v, true).map_err(|_| {
                anyhow::anyhow!("{ICACHE_ENV}={v}: expected strict, report or off")
            })?);
    }
    if let Some(mode @ (IcacheMode::Strict | IcacheMode::Report)) = plan.icache {
        plan.qemu.plugins.push(icache_plugin(mode, &args.kernel)?);
    }
    let bin = bin_path(&args.kernel);
    fs::write(&bin, &image.bytes).with_context(|| format!("cannot write {}", bin.display()))?;
    plan.qemu.kernel = bin.clone();
    let mut extra = Vec::new();
    if let Some(pi) = fdt::Raspi::from_machine(&plan.qemu.machine) {
        match plan.qemu.boot {
            // QEMU makes no DTB for the raspi machines: give the kernel the one the firmware
            // would (memory, CPUs, bootargs).
            BootMode::Kernel => {
                let dtb = with_suffix(&args.kernel, ".dtb");
                let blob =
                    fdt::raspi(pi, &plan.qemu.kernel_cmdline()).context("cannot write the DTB")?;
                fs::write(&dtb, blob).with_context(|| format!("cannot write {}", dtb.display()))?;
                plan.qemu.dtb = Some(dtb.clone());
                extra.push(dtb);
            }
            // Every CPU starts at 0: park the others there.
            BootMode::El3 => {
                let park = with_suffix(&args.kernel, ".park");
                fs::write(&park, qemu::PARK_CODE)
                    .with_context(|| format!("cannot write {}", park.display()))?;
                plan.qemu.park = Some(park.clone());
                extra.push(park);
            }
        }
    }
    let result = execute(&plan, args, sinks);
    let _ = fs::remove_file(&bin);
    for path in extra {
        let _ = fs::remove_file(path);
    }
    result
}

/// Boots `plan.repeat` times and judges the result.
fn execute(plan: &Plan, args: &Args, sinks: &mut dyn FnMut() -> (Sink, Sink)) -> Result<Outcome> {
    let argv = plan.qemu.argv();
    if args.print_cmd {
        let line: Vec<String> = argv.iter().map(|a| qemu::shell_quote(a)).collect();
        eprintln!("pb: {}", line.join(" "));
    }
    if plan.qemu.gdb {
        eprintln!(
            "pb: QEMU waits for a debugger; attach with: gdb-multiarch {} -ex 'target remote :1234'",
            qemu::shell_quote(args.kernel.as_os_str())
        );
    }
    let mut consoles = Vec::new();
    let mut failures = Vec::new();
    for n in 1..=plan.repeat {
        if plan.repeat > 1 {
            eprintln!("pb: boot {n} of {}", plan.repeat);
        }
        let (out, err) = sinks();
        let boot = qemu::boot(&argv, plan.timeout, out, err)?;
        let ending = boot.ending;
        let icache = if plan.qemu.plugins.is_empty() {
            Vec::new()
        } else {
            icache_failures(&boot.stderr, matches!(ending, Ending::Exited(_)))
        };
        let signal = boot.signal.clone();
        let console = boot.console();
        consoles.push(boot.stdout);
        let code = match ending {
            Ending::TimedOut => {
                let secs = plan.timeout.map_or(0, |t| t.as_secs());
                eprintln!("pb: timeout: the kernel did not exit within {secs} s (QEMU killed)");
                return Ok(Outcome {
                    code: EXIT_TIMEOUT,
                    consoles,
                });
            }
            Ending::Killed => {
                let how = signal.as_deref().unwrap_or("by a signal");
                eprintln!("pb: QEMU died without an exit code ({how})");
                return Ok(Outcome { code: 1, consoles });
            }
            Ending::Exited(code) | Ending::Halted(code) => code,
        };
        let Some(expect) = &plan.expect else {
            // No expectations (hence one boot): the kernel's verdict is ours, unless the
            // stale-I-cache model found a violation.
            for failure in &icache {
                eprintln!("pb: {failure}");
            }
            let code = if icache.is_empty() {
                u8::try_from(code).unwrap_or(1)
            } else {
                1
            };
            return Ok(Outcome { code, consoles });
        };
        for failure in verdict::check_boot(expect, code, &console)
            .into_iter()
            .chain(icache)
        {
            failures.push(if plan.repeat > 1 {
                format!("boot {n}: {failure}")
            } else {
                failure
            });
        }
    }
    let Some(expect) = &plan.expect else {
        // Unreachable: without expectations the first boot returned.
        return Ok(Outcome { code: 0, consoles });
    };
    if let Some(prefix) = &expect.same_lines
        && let Err(failure) = verdict::compare_same_lines(prefix, &consoles)
    {
        failures.push(failure);
    }
    let code = if failures.is_empty() {
        // Every judged boot says so: `make test` counts a kernel without a test harness (an
        // expected fault, a probe) as one test by this line.
        eprintln!("pb: exited with {} as expected", expect.exit);
        0
    } else {
        for failure in &failures {
            eprintln!("pb: {failure}");
        }
        1
    };
    Ok(Outcome { code, consoles })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cli;
    use clap::Parser;

    fn args(argv: &[&str]) -> Args {
        let cli = Cli::try_parse_from(["pb", "run"].iter().chain(argv)).unwrap();
        match cli.command {
            crate::cmd::Command::Run(a) => a,
            other => panic!("parsed {other:?}"),
        }
    }

    #[test]
    fn cli_trailing_args_are_bootargs() {
        let a = args(&[
            "--timeout",
            "5",
            "k.elf",
            "--nocapture",
            "--timeout",
            "x",
            "-q",
        ]);
        assert_eq!(a.timeout, Some(5));
        assert_eq!(a.kernel, PathBuf::from("k.elf"));
        assert_eq!(a.bootargs, ["--nocapture", "--timeout", "x", "-q"]);
        let a = args(&["k.elf", "tests::one", "--exact"]);
        assert_eq!(a.bootargs, ["tests::one", "--exact"]);
        let a = args(&["--icount", "--no-icount", "k.elf"]);
        assert!(a.no_icount && !a.icount);
        assert!(Cli::try_parse_from(["pb", "run", "--smp", "0", "k.elf"]).is_err());
        assert!(Cli::try_parse_from(["pb", "run"]).is_err());
    }

    #[test]
    fn defaults_for_virt() {
        let p = plan(&args(&["k.elf"]), &Directives::default());
        assert_eq!(p.qemu.machine, "virt");
        assert_eq!(p.qemu.cpu.as_deref(), Some("cortex-a72"));
        assert_eq!(p.qemu.smp, Some(1));
        assert_eq!(p.qemu.memory.as_deref(), Some("1G"));
        assert!(!p.qemu.icount && !p.qemu.gdb);
        assert_eq!(p.timeout, Some(Duration::from_secs(60)));
        assert_eq!(p.repeat, 1);
        assert_eq!(p.expect, None, "no directives: exit with the kernel's code");
        assert!(p.qemu.bootargs.is_empty());
    }

    #[test]
    fn raspi_has_no_virt_defaults() {
        let d = directives::parse(b"machine=raspi3b\n").unwrap();
        let p = plan(&args(&["k.elf"]), &d);
        assert_eq!(p.qemu.machine, "raspi3b");
        assert_eq!((p.qemu.cpu, p.qemu.smp, p.qemu.memory), (None, None, None));
        let p = plan(&args(&["--machine", "virt,virtualization=on", "k.elf"]), &d);
        assert_eq!(p.qemu.cpu.as_deref(), Some("cortex-a72"));
    }

    #[test]
    fn the_board_picks_the_machine() {
        let d =
            directives::parse(b"board=rpi3\nboard_machine=raspi3b\nboard_kernel_load=0x80000\n")
                .unwrap();
        let p = plan(&args(&["k.elf"]), &d);
        assert_eq!(p.qemu.machine, "raspi3b");
        assert_eq!((p.qemu.cpu, p.qemu.smp, p.qemu.memory), (None, None, None));
        assert_eq!(p.qemu.load_addr, 0x80000);
        let p = plan(&args(&["--machine", "virt", "k.elf"]), &d);
        assert_eq!(p.qemu.machine, "virt", "the command line still wins");
        let d = directives::parse(b"board=rpi4\nboard_machine=none\nboot=el3\n").unwrap();
        let p = plan(&args(&["k.elf"]), &d);
        assert_eq!(p.qemu.machine, "none");
        assert_eq!(p.qemu.boot, BootMode::El3);
    }

    #[test]
    fn options_override_directives() {
        let d = directives::parse(
            b"machine=virt\ncpu=cortex-a53\nsmp=2\nmemory=512M\nicount=1\ntimeout=10\n\
              bootargs=from=elf\nexpect_exit=3\nexpect_console=ok\nrepeat=2\nsame_lines=@det\n",
        )
        .unwrap();
        let p = plan(&args(&["k.elf"]), &d);
        assert_eq!(p.qemu.cpu.as_deref(), Some("cortex-a53"));
        assert_eq!(
            (p.qemu.smp, p.qemu.memory.as_deref()),
            (Some(2), Some("512M"))
        );
        assert!(p.qemu.icount);
        assert_eq!(p.timeout, Some(Duration::from_secs(10)));
        assert_eq!(p.repeat, 2);
        assert_eq!(
            p.expect,
            Some(Expectations {
                exit: 3,
                console: vec!["ok".into()],
                reject: vec![],
                same_lines: Some("@det".into())
            })
        );

        let p = plan(
            &args(&[
                "--cpu",
                "max",
                "--smp",
                "4",
                "--memory",
                "2G",
                "--no-icount",
                "--timeout",
                "3",
                "k.elf",
                "from=cli",
            ]),
            &d,
        );
        assert_eq!(p.qemu.cpu.as_deref(), Some("max"));
        assert_eq!(
            (p.qemu.smp, p.qemu.memory.as_deref()),
            (Some(4), Some("2G"))
        );
        assert!(!p.qemu.icount);
        assert_eq!(p.timeout, Some(Duration::from_secs(3)));
        assert_eq!(p.qemu.bootargs, ["from=elf", "from=cli"]);

        let p = plan(&args(&["--icount", "k.elf"]), &Directives::default());
        assert!(p.qemu.icount);
    }

    #[test]
    fn gic_and_tcg_from_directives_and_options() {
        let d = directives::parse(b"smp=4\ngic=3\ntcg=multi\n").unwrap();
        let p = plan(&args(&["k.elf"]), &d);
        assert_eq!(
            (p.qemu.gic, p.qemu.tcg),
            (Some(3), Some(directives::Tcg::Multi))
        );
        assert!(check_accelerator(&p.qemu).is_ok());
        let p = plan(&args(&["--gic", "2", "--tcg", "single", "k.elf"]), &d);
        assert_eq!(
            (p.qemu.gic, p.qemu.tcg),
            (Some(2), Some(directives::Tcg::Single))
        );
        let p = plan(&args(&["--icount", "k.elf"]), &d);
        let msg = format!("{:#}", check_accelerator(&p.qemu).unwrap_err());
        assert!(msg.contains("`tcg=multi` cannot run with icount"), "{msg}");
        let p = plan(&args(&["--machine", "raspi3b", "k.elf"]), &d);
        let msg = format!("{:#}", check_accelerator(&p.qemu).unwrap_err());
        assert!(msg.contains("raspi3b has its own"), "{msg}");
        assert!(Cli::try_parse_from(["pb", "run", "--gic", "4", "k.elf"]).is_err());
    }

    #[test]
    fn icache_option_and_verdict() {
        assert_eq!(plan(&args(&["k.elf"]), &Directives::default()).icache, None);
        let p = plan(&args(&["--icache", "k.elf"]), &Directives::default());
        assert_eq!(p.icache, Some(IcacheMode::Strict));
        let p = plan(&args(&["--icache=report", "k.elf"]), &Directives::default());
        assert_eq!(p.icache, Some(IcacheMode::Report));
        assert!(p.qemu.plugins.is_empty(), "the plugin is added at run time");
        let a = args(&["--icache", "k.elf", "icache.break=isb"]);
        assert_eq!(a.bootargs, ["icache.break=isb"], "no MODE without '='");

        let lines = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let clean = lines(&[
            "icache: model on (strict)",
            "icache: summary: 3 stores to code",
        ]);
        assert!(icache_failures(&clean, true).is_empty());
        assert_eq!(
            icache_failures(&lines(&["qemu: something"]), true),
            ["stale-I-cache model: no summary from the plugin (did it load?)"]
        );
        assert!(
            icache_failures(&lines(&[]), false).is_empty(),
            "killed: no summary expected"
        );
        let bad = lines(&[
            "icache: VIOLATION cpu 0 executed ...; missing: ISB",
            "icache: summary: 1 violations",
        ]);
        assert_eq!(
            icache_failures(&bad, true),
            ["stale-I-cache model: VIOLATION cpu 0 executed ...; missing: ISB"]
        );
    }

    #[test]
    fn gdb_and_zero_disable_the_timeout() {
        let d = directives::parse(b"timeout=10\n").unwrap();
        assert_eq!(plan(&args(&["--gdb", "k.elf"]), &d).timeout, None);
        assert!(plan(&args(&["--gdb", "k.elf"]), &d).qemu.gdb);
        assert_eq!(plan(&args(&["--timeout", "0", "k.elf"]), &d).timeout, None);
        let d = directives::parse(b"timeout=0\n").unwrap();
        assert_eq!(plan(&args(&["k.elf"]), &d).timeout, None);
    }

    #[test]
    fn bin_next_to_elf() {
        assert_eq!(
            bin_path(Path::new(
                "target/aarch64-unknown-none-softfloat/release/deps/boot-0123abcd"
            )),
            PathBuf::from("target/aarch64-unknown-none-softfloat/release/deps/boot-0123abcd.bin")
        );
        assert_eq!(
            bin_path(Path::new("kernel.elf")),
            PathBuf::from("kernel.elf.bin")
        );
    }
}
