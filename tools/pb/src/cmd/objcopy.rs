//! `pb objcopy`: the raw image of a kernel ELF with its symbol table filled in (`make image`).

use std::fs;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::image;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The kernel ELF (built for aarch64-unknown-none-softfloat).
    #[arg(value_name = "KERNEL_ELF")]
    pub kernel: PathBuf,
    /// Where to write the raw image.
    #[arg(short, long = "output", value_name = "OUT_BIN")]
    pub output: PathBuf,
}

pub fn main(args: Args) -> Result<ExitCode> {
    let image = image::load(&args.kernel)?;
    fs::write(&args.output, &image.bytes)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    let symbols = match image.ksyms {
        Some(k) => format!(
            "; {} symbols in {} of {} .ksyms bytes",
            k.symbols, k.used, k.capacity
        ),
        None => "; no .ksyms section".to_string(),
    };
    eprintln!(
        "pb: wrote {}: {} bytes to load at {:#x}{symbols}",
        args.output.display(),
        image.bytes.len(),
        image.load_addr
    );
    Ok(ExitCode::SUCCESS)
}
