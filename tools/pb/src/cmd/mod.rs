//! The subcommands, one module each. To add one: write `cmd/<name>.rs` with an `Args` struct
//! (`clap::Args`) and `pub fn main(args: Args) -> anyhow::Result<ExitCode>`, then add a variant
//! below and its arm in [`Command::execute`].

use std::process::ExitCode;

use clap::Subcommand;

pub mod objcopy;
pub mod run;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Boot a kernel ELF under QEMU and judge the run (also cargo's target runner).
    Run(run::Args),
    /// Write the raw, bootable image of a kernel ELF (symbol table filled in).
    Objcopy(objcopy::Args),
}

impl Command {
    /// Runs the subcommand; `Ok` carries the process exit code.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        match self {
            Command::Run(args) => run::main(args),
            Command::Objcopy(args) => objcopy::main(args),
        }
    }
}
