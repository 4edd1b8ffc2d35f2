//! `pb bench`: boot the kernel as `pb run --icount` does, count its benchmark records as they
//! arrive, then save and tabulate them.
//!
//! Writes into the output directory `latest.log` (the console, always), and for a complete,
//! clean run `latest.jsonl`, `latest.csv` and `latest.svg` (else it removes those of an earlier
//! run). Exit status: the run's (see `pb run`) if the kernel failed; 1 if the log has bad
//! records, no header or not as many results as the end record counts; 0 otherwise.

use std::fs;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use patchbay_wire::bootargs;

use crate::cmd::run::{self, Sink};
use crate::outputs;
use crate::records::{self, Record};

/// The kernel `make build` produces, relative to the workspace root.
pub const DEFAULT_KERNEL: &str = "target/qemu_virt/kernel";
/// Where the results go by default.
pub const DEFAULT_OUT: &str = "target/bench";
/// The console of the last run, in the output directory.
pub const LOG: &str = "latest.log";

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Boots the kernel as `pb run --icount` does (its run directives apply) and streams the console. \
Writes DIR/latest.log (the console) and, for a complete run, DIR/latest.jsonl, latest.csv and \
latest.svg; then prints the tables.

Exit status: 0 if the run succeeded and its log is complete and clean; 1 if the log has bad \
records, no header or fewer results than its end record counts; the `pb run` status if the \
kernel failed (124: timeout); 2 if pb itself fails.")]
pub struct Args {
    /// The kernel ELF
    #[arg(long, value_name = "ELF", default_value = DEFAULT_KERNEL)]
    pub kernel: PathBuf,
    /// Output directory
    #[arg(long, value_name = "DIR", default_value = DEFAULT_OUT)]
    pub out: PathBuf,
    /// Kill QEMU after this many seconds; 0: never [default: the ELF's `timeout` directive, else 60]
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// The QEMU binary [default: qemu-system-aarch64 from PATH]
    #[arg(long, value_name = "PATH")]
    pub qemu: Option<PathBuf>,
    /// Number of CPUs (the SMP suite's IPI and secondary-CPU rows need 2 or more)
    /// [default: the ELF's `smp` directive, else 1 on virt]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub smp: Option<u32>,
}

/// Forwards a console stream to `inner` without tearing the progress bar, and (if `count`)
/// advances the bar for every result record that passes by.
struct BarWriter<W> {
    bar: ProgressBar,
    inner: W,
    count: bool,
    /// The start of a line not yet complete.
    partial: Vec<u8>,
}

impl<W: Write> BarWriter<W> {
    fn new(bar: &ProgressBar, inner: W, count: bool) -> Self {
        BarWriter {
            bar: bar.clone(),
            inner,
            count,
            partial: Vec::new(),
        }
    }

    fn observe(&self, line: &[u8]) {
        let line = String::from_utf8_lossy(line);
        match records::parse_line(line.trim_end()) {
            Some(Ok(Record::Result(r))) => {
                self.bar.inc(1);
                self.bar
                    .set_message(format!("{} {} {}", r.suite, r.mechanism, r.subject));
            }
            Some(Ok(Record::Header(h))) => self.bar.set_message(format!("unit: {}", h.unit)),
            _ => {}
        }
    }
}

impl<W: Write> Write for BarWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.count {
            self.partial.extend_from_slice(buf);
            while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.partial.drain(..=end).collect();
                self.observe(&line);
            }
        }
        let inner = &mut self.inner;
        self.bar
            .suspend(|| inner.write_all(buf).and_then(|()| inner.flush()))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// How `pb bench` boots the kernel: as `pb run --icount` with the ELF's directives.
fn kernel_run_args(args: &Args) -> run::Args {
    run::Args {
        machine: None,
        cpu: None,
        smp: args.smp,
        gic: None,
        tcg: None,
        memory: None,
        icount: true,
        no_icount: false,
        timeout: args.timeout,
        gdb: false,
        print_cmd: false,
        qemu: args.qemu.clone(),
        table: false,
        records: None,
        icache: None,
        kernel: args.kernel.clone(),
        bootargs: Vec::new(),
    }
}

pub fn main(args: Args) -> Result<ExitCode> {
    let run_args = kernel_run_args(&args);
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {pos} result records  [{elapsed}]  {msg}")
            .context("progress bar template")?,
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let outcome = run::run(&run_args, &mut || {
        let out: Sink = Box::new(BarWriter::new(&bar, io::stdout(), true));
        let err: Sink = Box::new(BarWriter::new(&bar, io::stderr(), false));
        (out, err)
    });
    bar.finish_and_clear();
    let outcome = outcome?;

    fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let log = args.out.join(LOG);
    let console = outcome.console();
    fs::write(&log, format!("{console}\n"))
        .with_context(|| format!("cannot write {}", log.display()))?;
    if !outcome.succeeded() {
        eprintln!(
            "pb: the kernel run failed (status {}); its console is in {}",
            outcome.code,
            log.display()
        );
        outputs::remove_stale(&args.out)?;
        return Ok(ExitCode::from(outcome.code));
    }
    let mut parsed = records::parse_log(&console);
    // The patch-protocol records with more CPUs online: the same kernel, booted again (only a
    // kernel whose suite has them; only those records are kept).
    let has_protocols = parsed
        .results
        .iter()
        .any(|r| r.suite == bootargs::PROTOCOLS);
    if has_protocols && parsed.failures().is_empty() {
        for cpus in PROTOCOL_CPUS {
            let extra = protocol_boot(&args, cpus)?;
            if !extra.failures().is_empty() {
                eprintln!(
                    "pb: the {cpus}-CPU patch-protocol boot: {:?}",
                    extra.failures()
                );
                return Ok(ExitCode::FAILURE);
            }
            let kept: Vec<_> = extra
                .results
                .into_iter()
                .filter(|r| r.suite == bootargs::PROTOCOLS)
                .collect();
            parsed.end = parsed.end.map(|n| n + kept.len());
            parsed.results.extend(kept);
        }
    }
    outputs::finish(&parsed, &log.display().to_string(), &args.out)
}

/// The CPU counts of the extra boots for the `patch-protocol` records (the main boot has 1).
const PROTOCOL_CPUS: [u32; 2] = [2, 4];

/// Boot the kernel with `cpus` CPUs and `bench.only=patch-protocol`; its console goes to
/// `protocol-<cpus>cpu.log` in the output directory.
fn protocol_boot(args: &Args, cpus: u32) -> Result<records::Run> {
    let mut run_args = kernel_run_args(args);
    run_args.smp = Some(cpus);
    run_args
        .bootargs
        .push(bootargs::arg(bootargs::BENCH_ONLY, bootargs::PROTOCOLS).to_string());
    let outcome = run::run(&run_args, &mut || {
        let out: Sink = Box::new(io::sink());
        let err: Sink = Box::new(io::stderr());
        (out, err)
    })?;
    let console = outcome.console();
    let log = args.out.join(format!("protocol-{cpus}cpu.log"));
    fs::write(&log, format!("{console}\n"))
        .with_context(|| format!("cannot write {}", log.display()))?;
    if !outcome.succeeded() {
        anyhow::bail!(
            "the {cpus}-CPU patch-protocol boot failed (status {}); its console is in {}",
            outcome.code,
            log.display()
        );
    }
    Ok(records::parse_log(&console))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::tests::small_log;

    #[test]
    fn bar_writer_counts_results_and_forwards_everything() {
        let bar = ProgressBar::hidden();
        let mut out = Vec::new();
        let log = small_log();
        {
            let mut w = BarWriter::new(&bar, &mut out, true);
            // Arbitrary chunks, not lines.
            for chunk in log.as_bytes().chunks(7) {
                w.write_all(chunk).unwrap();
            }
        }
        assert_eq!(out, log.as_bytes());
        assert_eq!(bar.position(), 3);
        let mut w = BarWriter::new(&bar, io::sink(), false);
        w.write_all(log.as_bytes()).unwrap();
        assert_eq!(bar.position(), 3, "stderr is not counted");
    }
}
