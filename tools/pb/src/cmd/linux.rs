//! `pb linux-compare`: fetch a Debian arm64 kernel and busybox, build the guest program and its
//! initramfs, boot it under the QEMU configuration `make qemu` uses, check that every hook fired,
//! write `bench/linux-<release>.jsonl` and print the side-by-side table.
//!
//! `pb linux-table LINUX.jsonl [PATCHBAY.jsonl]`: the same table from saved records.
//!
//! Everything downloaded or built is cached under `--cache` (`target/linux`):
//! `apt/` (the private apt state), `debs/`, `busybox/`, `<release>/Image` and the console log of
//! the last run of that kernel, `hookbench`, `initramfs.cpio`.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;

use crate::cmd::run;
use crate::directives::Directives;
use crate::linux::console::{self, Machine};
use crate::linux::{apt, initramfs, side};
use crate::qemu::{self, Ending};
use crate::records;

#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// Which Debian kernel: a release or its start, e.g. 6.1 or 6.1.0-47 [default: the newest
    /// in bookworm and bookworm-backports]
    #[arg(long, value_name = "RELEASE")]
    pub kernel: Option<String>,
    /// patchbay's records for the table [default: target/bench/latest.jsonl if present, else
    /// bench/baseline.jsonl]
    #[arg(long, value_name = "JSONL")]
    pub patchbay: Option<PathBuf>,
    /// Downloads and builds are cached here
    #[arg(long, value_name = "DIR", default_value = "target/linux")]
    pub cache: PathBuf,
    /// The results are written here as linux-<release>.jsonl
    #[arg(long, value_name = "DIR", default_value = "bench")]
    pub results: PathBuf,
    /// Boot this many times: the records are the first run's, their header gives the spread of
    /// all (identical runs: 0)
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
    /// Kill QEMU after this many seconds (each boot)
    #[arg(long, value_name = "SECONDS", default_value_t = 900)]
    pub timeout: u64,
    /// The QEMU binary [default: qemu-system-aarch64 from PATH]
    #[arg(long, value_name = "PATH")]
    pub qemu: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct TableArgs {
    /// Linux's records, as `pb linux-compare` writes them (bench/linux-<release>.jsonl)
    #[arg(value_name = "LINUX_JSONL")]
    pub linux: PathBuf,
    /// patchbay's records [default: target/bench/latest.jsonl if present, else
    /// bench/baseline.jsonl]
    #[arg(value_name = "PATCHBAY_JSONL")]
    pub patchbay: Option<PathBuf>,
}

/// patchbay's records when none are named: the latest `make bench`, else the committed baseline.
fn default_patchbay() -> PathBuf {
    let latest = PathBuf::from("target/bench/latest.jsonl");
    if latest.exists() {
        latest
    } else {
        PathBuf::from("bench/baseline.jsonl")
    }
}

/// The table of two record files.
fn table(linux: &records::Run, linux_name: &Path, patchbay: Option<&Path>) -> Result<String> {
    let patchbay = patchbay.map_or_else(default_patchbay, Path::to_path_buf);
    let pb_run = records::load(&patchbay)?;
    if let Some(failure) = pb_run.failures().first() {
        bail!("{}: {failure}", patchbay.display());
    }
    Ok(side::render(
        linux,
        &linux_name.display().to_string(),
        &pb_run,
        &patchbay.display().to_string(),
    )?)
}

pub fn table_main(args: TableArgs) -> Result<ExitCode> {
    let linux = records::load(&args.linux)?;
    if let Some(failure) = linux.failures().first() {
        bail!("{}: {failure}", args.linux.display());
    }
    print!("{}", table(&linux, &args.linux, args.patchbay.as_deref())?);
    Ok(ExitCode::SUCCESS)
}

/// `make qemu`'s QEMU configuration: `pb run --icount` with no directives.
fn qemu_config(args: &CompareArgs) -> Result<qemu::QemuConfig> {
    #[derive(Parser)]
    struct RunCli {
        #[command(flatten)]
        run: run::Args,
    }
    let cli = RunCli::try_parse_from(["pb", "--icount", "linux"])?;
    let mut config = run::plan(&cli.run, &Directives::default()).qemu;
    config.qemu = qemu::locate(args.qemu.as_deref())?;
    Ok(config)
}

/// `Machine` for the records: the CPU model and QEMU's version and flags.
fn machine(config: &qemu::QemuConfig, argv: &[OsString]) -> Machine {
    let version = Command::new(&config.qemu)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or_else(|| "QEMU (version unknown)".to_string());
    // The flags that decide what is measured: up to the boot files.
    let flags: Vec<String> = argv[1..]
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .take_while(|a| a != "-kernel")
        .filter(|a| !a.is_empty())
        .collect();
    Machine {
        cpu: config.cpu.clone().unwrap_or_default(),
        qemu: format!("{version}: {}", flags.join(" ")),
    }
}

/// The kernel Image, busybox and the initramfs, downloaded and built as needed.
struct Guest {
    release: String,
    image: PathBuf,
    initramfs: PathBuf,
    dir: PathBuf,
}

fn prepare(args: &CompareArgs) -> Result<Guest> {
    let cache = &args.cache;
    let apt = apt::Apt::new(&cache.join("apt"))?;
    apt.update_once()?;
    let packages = apt::kernel_packages(&apt.kernel_names()?);
    let package = apt::choose(&packages, args.kernel.as_deref())?;
    println!("linux: kernel {} ({})", package.release, package.name);
    let debs = cache.join("debs");
    let dir = cache.join(&package.release);
    let image = dir.join("Image");
    if !image.exists() {
        let deb = apt.download(&package.name, &debs)?;
        let unpacked = dir.join("deb");
        apt::extract(&deb, &unpacked, &["./boot/vmlinuz-*", "./boot/config-*"])?;
        let vmlinuz = unpacked
            .join("boot")
            .join(format!("vmlinuz-{}", package.release));
        apt::write_image(&vmlinuz, &image)?;
    }
    let busybox = cache.join("busybox/bin/busybox");
    if !busybox.exists() {
        let deb = apt.download(apt::BUSYBOX, &debs)?;
        apt::extract(&deb, &cache.join("busybox"), &["./bin/busybox"])?;
    }
    let hookbench = cache.join("hookbench");
    initramfs::build_hookbench(&hookbench)?;
    let entries = initramfs::guest(fs::read(&busybox)?, fs::read(&hookbench)?);
    let initramfs = cache.join("initramfs.cpio");
    fs::write(&initramfs, initramfs::newc(&entries))?;
    Ok(Guest {
        release: package.release.clone(),
        image,
        initramfs,
        dir,
    })
}

/// The kernel's command line: the serial console, no address randomisation (runs repeat
/// exactly), boot messages off (they cost time, not numbers), our /init.
const CMDLINE: [&str; 4] = ["console=ttyAMA0", "nokaslr", "quiet", "rdinit=/init"];

/// Boots the guest once; the checked measurements. The console goes to `log`.
fn boot_once(
    argv: &[OsString],
    args: &CompareArgs,
    guest: &Guest,
    log: &Path,
) -> Result<console::Measured> {
    let boot = qemu::boot(
        argv,
        Some(Duration::from_secs(args.timeout)),
        io::stdout(),
        io::stderr(),
    )?;
    let text = boot.stdout.join("\n") + "\n";
    fs::write(log, &text).with_context(|| format!("cannot write {}", log.display()))?;
    let checked = console::parse(&text).and_then(|log| console::check(&log));
    let measured = match (checked, boot.ending) {
        (Ok(m), Ending::Exited(0)) => m,
        (Ok(_), ending) => bail!(
            "QEMU ended with {ending:?} after a complete run (console: {})",
            log.display()
        ),
        (Err(e), ending) => bail!("{e} (QEMU: {ending:?}; console: {})", log.display()),
    };
    if measured.kernel != guest.release {
        bail!(
            "the guest runs kernel {}, but {} was booted",
            measured.kernel,
            guest.release
        );
    }
    Ok(measured)
}

pub fn compare_main(args: CompareArgs) -> Result<ExitCode> {
    let guest = prepare(&args)?;
    let mut config = qemu_config(&args)?;
    config.kernel = guest.image.clone();
    config.bootargs = CMDLINE.map(String::from).to_vec();
    let mut argv = config.argv();
    argv.extend(["-initrd".into(), guest.initramfs.clone().into()]);
    let machine = machine(&config, &argv);
    let shown: Vec<String> = argv.iter().map(|a| qemu::shell_quote(a)).collect();
    println!("linux: {}", shown.join(" "));
    let mut runs = Vec::new();
    for i in 1..=args.repeat {
        let log = match i {
            1 => guest.dir.join("console.log"),
            i => guest.dir.join(format!("console-{i}.log")),
        };
        println!("linux: boot {i} of {}", args.repeat);
        runs.push(boot_once(&argv, &args, &guest, &log)?);
    }
    let spread = (runs.len() > 1)
        .then(|| console::spread(&runs))
        .transpose()?;
    let jsonl = console::records(&runs[0], &machine, spread.as_ref()).join("\n") + "\n";
    fs::create_dir_all(&args.results)?;
    let out = args.results.join(format!("{}.jsonl", runs[0].board()));
    fs::write(&out, &jsonl).with_context(|| format!("cannot write {}", out.display()))?;
    println!("linux: wrote {}\n", out.display());
    let run = records::parse_jsonl(&jsonl);
    print!("{}", table(&run, &out, args.patchbay.as_deref())?);
    Ok(ExitCode::SUCCESS)
}
