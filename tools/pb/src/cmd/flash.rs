//! `pb flash`: copy `kernel8.img` and `config.txt` (from `pb image`) onto a mounted Raspberry Pi
//! OS boot partition, keeping what they replace (`make BSP=rpi4 flash BOOT=...`); `--restore`
//! puts the card's original files back.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::board;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
The boot partition must hold the VideoCore firmware (start*.elf, fixup*.dat): anything else is \
refused. A replaced file is kept as NAME.orig the first time (the card's own, never \
overwritten) and as NAME.prev afterwards. --restore copies the .orig files back, so the card \
boots Raspberry Pi OS again.")]
pub struct Args {
    /// The mounted boot (FAT) partition, e.g. /media/$USER/bootfs
    #[arg(long, value_name = "DIR")]
    pub boot: PathBuf,
    /// The directory `pb image` wrote (kernel8.img, config.txt)
    #[arg(long, value_name = "DIR", required_unless_present = "restore")]
    pub from: Option<PathBuf>,
    /// Put the card's original kernel8.img and config.txt back instead
    #[arg(long, conflicts_with = "from")]
    pub restore: bool,
}

pub fn main(args: Args) -> Result<ExitCode> {
    let names = [board::KERNEL_IMG, board::CONFIG_TXT];
    if args.restore {
        let restored = board::restore(&args.boot, &names)?;
        if restored.is_empty() {
            eprintln!(
                "pb: nothing to restore: no *.orig files in {}",
                args.boot.display()
            );
        }
        for path in restored {
            eprintln!("pb: restored {}", path.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let from = args.from.context("--from is required")?;
    let mut files = Vec::new();
    for name in names {
        let path = from.join(name);
        let contents = std::fs::read(&path)
            .with_context(|| format!("cannot read {} (run `make image` first)", path.display()))?;
        files.push((name, contents));
    }
    for f in board::flash(&args.boot, &files)? {
        match f.backup {
            Some(b) => eprintln!(
                "pb: wrote {} (kept the old one as {})",
                f.path.display(),
                b.display()
            ),
            None => eprintln!("pb: wrote {}", f.path.display()),
        }
    }
    eprintln!(
        "pb: done; sync and unmount the card (e.g. `sync; umount {}`)",
        args.boot.display()
    );
    Ok(ExitCode::SUCCESS)
}
