//! The subcommands, one module each. To add one: write `cmd/<name>.rs` with an `Args` struct
//! (`clap::Args`) and `pub fn main(args: Args) -> anyhow::Result<ExitCode>`, then add a variant
//! below and its arm in [`Command::execute`].

use std::process::ExitCode;

use clap::Subcommand;

pub mod bench;
pub mod capture;
pub mod chainload;
pub mod compare;
pub mod console;
pub mod dtb;
pub mod flash;
pub mod image;
pub mod layers;
pub mod linux;
pub mod objcopy;
pub mod parse;
pub mod run;
pub mod trace;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Boot a kernel ELF under QEMU and judge the run (also cargo's target runner).
    Run(run::Args),
    /// Write the raw, bootable image of a kernel ELF (symbol table filled in).
    Objcopy(objcopy::Args),
    /// Run the kernel's benchmarks (as `run --icount`), save and tabulate the results.
    Bench(bench::Args),
    /// Save and tabulate the results of a saved console log or JSON-lines file.
    Parse(parse::Args),
    /// Compare the medians of two runs; exit 1 on a regression or a missing record.
    Compare(compare::Args),
    /// Talk to the kernel's serial console (QEMU or a board), or run a script of commands.
    Console(console::Args),
    /// Write kernel8.img and config.txt for a Raspberry Pi from a kernel (or chainloader) ELF.
    Image(image::Args),
    /// Copy kernel8.img and config.txt onto a mounted Raspberry Pi boot partition.
    Flash(flash::Args),
    /// Push a kernel over the UART to the chainloader on a board, then stream its console.
    Chainload(chainload::Args),
    /// Record a board's console to a file (for `pb parse`).
    Capture(capture::Args),
    /// Write the DTB `pb run` gives QEMU raspi3b or raspi4b.
    Dtb(dtb::Args),
    /// The recording tracer's events from a console log: text, folded stacks, a timeline.
    Trace(trace::Args),
    /// Check a crate's module imports: no circle, and (with --layers) every import downward.
    Layers(layers::Args),
    /// Measure Linux's own ftrace, kprobes and return hooks on the same QEMU machine and print
    /// them beside patchbay's mechanisms.
    LinuxCompare(linux::CompareArgs),
    /// Print the Linux/patchbay table from saved records (no download).
    LinuxTable(linux::TableArgs),
}

impl Command {
    /// Runs the subcommand; `Ok` carries the process exit code.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        match self {
            Command::Run(args) => run::main(args),
            Command::Objcopy(args) => objcopy::main(args),
            Command::Bench(args) => bench::main(args),
            Command::Parse(args) => parse::main(args),
            Command::Compare(args) => compare::main(args),
            Command::Console(args) => console::main(args),
            Command::Image(args) => image::main(args),
            Command::Flash(args) => flash::main(args),
            Command::Chainload(args) => chainload::main(args),
            Command::Capture(args) => capture::main(args),
            Command::Dtb(args) => dtb::main(args),
            Command::Layers(args) => layers::main(args),
            Command::Trace(args) => trace::main(args),
            Command::LinuxCompare(args) => linux::compare_main(args),
            Command::LinuxTable(args) => linux::table_main(args),
        }
    }
}
