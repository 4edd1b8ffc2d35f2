//! `pb dtb`: write the DTB `pb run` gives QEMU `raspi3b` or `raspi4b` (QEMU makes none for
//! them), e.g. to boot a kernel by hand: `qemu-system-aarch64 -M raspi4b -kernel ... -dtb FILE`.

use std::fs;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::fdt;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write the DTB
    #[arg(short, long = "output", value_name = "FILE")]
    pub output: PathBuf,
    /// The Raspberry Pi machine: raspi3b or raspi4b
    #[arg(long, value_name = "MACHINE", default_value = "raspi3b", value_parser = parse_machine)]
    pub machine: fdt::Raspi,
    /// The kernel's boot arguments (/chosen/bootargs)
    #[arg(long, value_name = "ARGS", default_value = "patchbay.clock=qemu")]
    pub bootargs: String,
}

pub fn main(args: Args) -> Result<ExitCode> {
    let blob = fdt::raspi(args.machine, &args.bootargs).context("cannot write the DTB")?;
    fs::write(&args.output, blob)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    Ok(ExitCode::SUCCESS)
}

fn parse_machine(s: &str) -> Result<fdt::Raspi, String> {
    fdt::Raspi::from_machine(s).ok_or_else(|| format!("{s} is not raspi3b or raspi4b"))
}
