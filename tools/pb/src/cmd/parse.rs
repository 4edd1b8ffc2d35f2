//! `pb parse`: the outputs of `pb bench` from a saved console log (e.g. captured from a real
//! board) or a `.jsonl` file. Same files, same checks, same exit status (0 or 1).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use crate::cmd::bench::DEFAULT_OUT;
use crate::outputs;
use crate::records;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Writes DIR/latest.jsonl, latest.csv and latest.svg and prints the tables, as `pb bench` does. A \
console log must end with its end record; a .jsonl file (as `pb bench` writes) needs none.

Exit status: 0 if the log is complete and clean; 1 if not (bad records, no header, truncated); \
2 if the file cannot be read.")]
pub struct Args {
    /// A console log (records are `@bench {...}` lines) or a JSON-lines file
    #[arg(value_name = "LOG")]
    pub log: PathBuf,
    /// Output directory
    #[arg(long, value_name = "DIR", default_value = DEFAULT_OUT)]
    pub out: PathBuf,
}

pub fn main(args: Args) -> Result<ExitCode> {
    let run = records::load(&args.log)?;
    outputs::finish(&run, &args.log.display().to_string(), &args.out)
}
