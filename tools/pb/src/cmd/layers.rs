//! `pb layers`: check a crate's module import graph for circles and, given a layer order
//! (a ```` ```layers ```` block in a Markdown file), that every import runs downward. See
//! [`crate::layers`]. `make layers` runs it over every crate of the workspace.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::layers::{Graph, Layers};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The crate's source directory (the one holding lib.rs or main.rs).
    #[arg(value_name = "SRC_DIR")]
    pub src: PathBuf,
    /// A Markdown file whose ```layers block gives the layer order, bottom first.
    #[arg(long, value_name = "MARKDOWN")]
    pub layers: Option<PathBuf>,
    /// Print every edge of the graph (`from -> to`).
    #[arg(long)]
    pub graph: bool,
}

pub fn main(args: Args) -> Result<ExitCode> {
    let graph = Graph::read(&args.src)?;
    let layers = match &args.layers {
        Some(path) => {
            let md = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Some(Layers::from_markdown(&md).with_context(|| format!("in {}", path.display()))?)
        }
        None => None,
    };
    if args.graph {
        for e in &graph.edges {
            println!("{} -> {}", display(&e.from), display(&e.to));
        }
    }
    let violations = graph.check(layers.as_ref());
    let what = if layers.is_some() {
        "no circle, every import downward"
    } else {
        "no circle"
    };
    if violations.is_empty() {
        println!(
            "pb layers: {}: {} modules, {} edges: {what}",
            args.src.display(),
            graph.modules.len(),
            graph.edges.len()
        );
        return Ok(ExitCode::SUCCESS);
    }
    for v in &violations {
        println!("pb layers: {}: {v}", args.src.display());
    }
    println!(
        "pb layers: {}: {} violations",
        args.src.display(),
        violations.len()
    );
    Ok(ExitCode::from(1))
}

fn display(m: &str) -> &str {
    if m.is_empty() { "(crate root)" } else { m }
}
