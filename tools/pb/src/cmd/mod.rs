//! The subcommands, one module each. To add one: write `cmd/<name>.rs` with an `Args` struct
//! (`clap::Args`) and `pub fn main(args: Args) -> anyhow::Result<ExitCode>`, then add a variant
//! below and its arm in [`Command::execute`].

use std::process::ExitCode;

use clap::Subcommand;

pub mod bench;
pub mod compare;
pub mod objcopy;
pub mod parse;
pub mod run;

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
        }
    }
}
