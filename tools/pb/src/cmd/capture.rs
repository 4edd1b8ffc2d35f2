//! `pb capture`: record a board's console to a file, e.g. a benchmark run for `pb parse`.
//!
//! Streams the UART to the terminal and, line by line (`\r` and NUL bytes dropped), to the
//! output file, until the kernel's final line (`patchbay: halted with exit code N`), the end of
//! the link, `--timeout`, or Ctrl-C (the file holds every complete line received so far).

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use patchbay_chainloader::CONSOLE_BAUD;

use crate::link::{self, Lines, Target};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Start it, then reset or power the board (or chainload a kernel with `pb chainload --log`, which \
captures the same way). Afterwards: `pb parse FILE` makes the tables, JSON lines, CSV and plot, \
exactly as for a QEMU run; the records say clock mode `hardware`, unit `cycles`.

Exit status: the kernel's exit code (from its final line); 1 if the link closed before it; \
124 on --timeout; 2 if pb itself failed.")]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    /// Where to write the console
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// The console's baud rate
    #[arg(long, value_name = "BAUD", default_value_t = CONSOLE_BAUD)]
    pub baud: u32,
    /// Stop after this many seconds; 0: at the kernel's final line only
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    pub timeout: u64,
    /// Seconds to keep trying to connect (--tcp)
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub wait: u64,
}

pub fn main(args: Args) -> Result<ExitCode> {
    link::check_loopback(&args.target)?;
    let mut link = link::open(&args.target, args.baud, Duration::from_secs(args.wait))?;
    let mut file =
        File::create(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    eprintln!(
        "pb: capturing {} to {} (reset the board to start; Ctrl-C stops)",
        link.describe(),
        args.out.display()
    );
    let timeout = (args.timeout > 0).then(|| Duration::from_secs(args.timeout));
    let end = link::stream_console(
        link.as_mut(),
        Vec::new(),
        &mut Lines::default(),
        &mut io::stdout(),
        Some(&mut file),
        timeout,
    )?;
    eprintln!(
        "pb: console saved to {}; `pb parse {}` turns its records into tables",
        args.out.display(),
        args.out.display()
    );
    Ok(ExitCode::from(link::exit_code(end, "capture")))
}
