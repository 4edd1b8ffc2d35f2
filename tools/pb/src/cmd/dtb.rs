//! `pb dtb`: write the DTB `pb run` gives QEMU `raspi3b` (QEMU makes none for it), e.g. to boot
//! the chainloader by hand: `qemu-system-aarch64 -M raspi3b -kernel ... -dtb FILE`.

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
    /// The kernel's boot arguments (/chosen/bootargs)
    #[arg(long, value_name = "ARGS", default_value = "patchbay.clock=qemu")]
    pub bootargs: String,
}

pub fn main(args: Args) -> Result<ExitCode> {
    let blob = fdt::raspi3b(&args.bootargs).context("cannot write the DTB")?;
    fs::write(&args.output, blob)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    Ok(ExitCode::SUCCESS)
}
