//! `pb image`: the files a Raspberry Pi boots patchbay from: `kernel8.img` (the raw image, symbol
//! table filled in) and a matching `config.txt` (`make BSP=rpi4 image`, `make chainloader`).
//!
//! The board comes from the facts the kernel's BSP wrote into its ELF; an ELF without them (the
//! chainloader, which serves both boards) needs `--board`.

use std::fs;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use crate::board::{self, Pi};
use crate::directives;
use crate::image;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The kernel (or chainloader) ELF, built for aarch64-unknown-none-softfloat
    #[arg(value_name = "ELF")]
    pub elf: PathBuf,
    /// Directory to write kernel8.img and config.txt into (created if needed)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The board, for an ELF that does not name one (the chainloader)
    #[arg(long, value_enum)]
    pub board: Option<Pi>,
}

pub fn main(args: Args) -> Result<ExitCode> {
    let img = image::load(&args.elf)?;
    let facts = match &img.directives {
        Some(raw) => {
            directives::parse(raw)
                .with_context(|| {
                    format!("{}: section {}", args.elf.display(), directives::SECTION)
                })?
                .board
        }
        None => board::Facts::default(),
    };
    let pi = match (&facts.name, args.board) {
        (Some(name), given) => {
            let Some(pi) = Pi::from_name(name) else {
                bail!(
                    "{} is built for {name}, not a Raspberry Pi: build it with BSP=rpi3 or \
                     BSP=rpi4",
                    args.elf.display()
                );
            };
            if given.is_some_and(|g| g != pi) {
                bail!(
                    "{} is built for {name}, not for --board",
                    args.elf.display()
                );
            }
            pi
        }
        (None, Some(pi)) => pi,
        (None, None) => bail!(
            "{} does not say which board it is for: pass --board rpi3 or --board rpi4",
            args.elf.display()
        ),
    };
    let what = if facts.name.is_some() {
        "kernel"
    } else {
        "chainloader"
    };
    let load = facts.kernel_load.unwrap_or(pi.board().board.kernel_load);
    if facts.name.is_some() && img.load_addr != load {
        bail!(
            "{} is linked at {:#x}, but the {} firmware loads kernel8.img at {load:#x}",
            args.elf.display(),
            img.load_addr,
            pi.name()
        );
    }
    let clock = facts
        .uart_clock_hz
        .unwrap_or(pi.board().board.uart_clock_hz.into());
    fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let kernel = args.out.join(board::KERNEL_IMG);
    fs::write(&kernel, &img.bytes).with_context(|| format!("cannot write {}", kernel.display()))?;
    let config = args.out.join(board::CONFIG_TXT);
    fs::write(&config, board::config_txt(pi, clock, load, what))
        .with_context(|| format!("cannot write {}", config.display()))?;
    eprintln!(
        "pb: wrote {} ({} bytes, patchbay {what} for {}) and {}",
        kernel.display(),
        img.bytes.len(),
        pi.name(),
        config.display()
    );
    Ok(ExitCode::SUCCESS)
}
