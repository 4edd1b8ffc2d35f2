//! `pb`: patchbay's host tool.
//!
//! * `pb run [OPTIONS] <KERNEL_ELF> [BOOTARGS]...`: build the raw image (with the symbol
//!   table filled in), boot it under QEMU following the ELF's run directives, and judge the run.
//!   Also cargo's target runner for the kernel's QEMU-booted tests.
//!   With `--table`, also prints the tables of the benchmark records on the console.
//! * `pb objcopy <KERNEL_ELF> -o <OUT_BIN>`: only build the raw image.
//! * `pb bench [--kernel ELF] [--out DIR] [--timeout S]`: run the benchmarks as `pb run --icount`,
//!   write `DIR/latest.{log,jsonl,csv,svg}` and print the tables.
//! * `pb parse LOG [--out DIR]`: the same outputs from a saved console log or JSON-lines file.
//! * `pb compare A B [--threshold PCT]`: compare two runs' medians record by record.
//! * `pb linux-compare [--kernel RELEASE]`: Linux's own hooks on the same QEMU machine, beside
//!   patchbay's ([`linux`]); `pb linux-table LINUX PATCHBAY` redraws that table from records.
//!
//! Layout: one module per subcommand under `cmd/`; the shared pieces are [`image`] (ELF to raw
//! image and `.ksyms`), [`directives`] (`.patchbay.qemu`), [`qemu`] (command line, running),
//! [`verdict`] (judging boots), [`records`] (parsing `@bench` records), [`table`] (text tables),
//! [`plot`] (SVG) and [`outputs`] (the files `bench` and `parse` write).
#![forbid(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

use std::process::ExitCode;

use clap::Parser;

mod board;
mod cmd;
mod directives;
mod fdt;
mod image;
mod layers;
mod link;
mod linux;
mod outputs;
mod plot;
mod progress;
mod qemu;
mod records;
mod report;
mod table;
mod targets;
#[cfg(test)]
mod testelf;
mod verdict;

/// patchbay's host tool: build bootable kernel images and run them under QEMU.
#[derive(Debug, Parser)]
#[command(name = "pb", version)]
struct Cli {
    #[command(subcommand)]
    command: cmd::Command,
}

/// Exit code when `pb` itself fails (bad ELF, QEMU missing, I/O error).
pub const EXIT_ERROR: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.execute() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pb: error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
