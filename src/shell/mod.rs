//! The serial console: a tracefs-like shell on the UART, for changing tracing at run time
//! without a rebuild (`make console`; on a board `make BSP=rpi4 console SERIAL=…`).
//!
//! ```text
//! patchbay> attach call-ops gen_00* record
//! attached #1: call-ops on 100 sites (gen_0000 … gen_0099), handler record
//! patchbay> call gen_0007 3
//! called patchbay::subjects::generated::gen_0007 3 time(s)
//! patchbay> trace
//! [000]     10371742: patchbay::subjects::generated::gen_0007 <- patchbay::shell::call_site+0x3c (call-ops)
//! ...
//! ```
//!
//! Everything that is not I/O — the parser, globs, the line editor, completion — is the pure
//! crate `patchbay-shell`, tested on the host. This module runs commands against the kernel
//! ([`Shell::execute`]) and feeds terminal bytes through the editor ([`Shell::feed`]); [`run`]
//! polls the UART. Output goes to any `fmt::Write`, so the kernel test `tests/console.rs` drives
//! the same shell with scripted bytes and reads what it printed.
//!
//! Bad input never changes state: a line that does not parse prints one `error:` line; a
//! command the kernel refuses (nothing matches, already attached, pool full, ...) prints one
//! `error:` line and leaves text byte-identical (the trace and patch layers validate before
//! writing).

pub mod attach;

use alloc::{string::String, vec::Vec};
use core::fmt::{self, Write};

use patchbay_shell::{
    BenchSuite, Command, DEFAULT_LIMIT, DetachTarget, Editor, Event, Glob, Mechanism, PROMPT,
    command::COMMANDS, complete, parse,
};

use crate::{
    bench::{
        clock,
        harness::Iters,
        ops_scaling, patch_latency, record,
        suite::{self, MECHANISMS},
    },
    boot_info, console, exit,
    patch::{batch, sites, text::text_hash},
    percpu, subjects, symbols,
    trace::{self, kprobe, pool, recorder, recursion, rethook},
};
use attach::Attachments;

/// What the caller does after a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// `exit [code]`: end the run with this code.
    Exit(i32),
}

/// One console session: the line editor and the attachments made from it.
pub struct Shell {
    editor: Editor,
    attachments: Attachments,
}

impl Default for Shell {
    fn default() -> Self {
        Self::new()
    }
}

impl Shell {
    pub fn new() -> Self {
        Shell {
            editor: Editor::new(PROMPT),
            attachments: Attachments::new(),
        }
    }

    pub fn attachments(&self) -> &Attachments {
        &self.attachments
    }

    /// One byte from the terminal: echo it, complete on Tab, run the line on Enter (then print
    /// the next prompt).
    pub fn feed(&mut self, b: u8, out: &mut dyn Write) -> Flow {
        let mut echo = Vec::new();
        let event = self.editor.feed(b, &mut echo);
        if let Some(Event::Complete) = event {
            let (line, cursor) = self.editor.line();
            let names: Vec<&str> = MECHANISMS.iter().map(|m| m.name).collect();
            let c = complete(&line[..cursor], sites::all().iter().map(|s| s.name), &names);
            self.editor.apply_completion(&c, DEFAULT_LIMIT, &mut echo);
        }
        let _ = out.write_str(core::str::from_utf8(&echo).unwrap_or(""));
        match event {
            Some(Event::Line(line)) => {
                let flow = self.execute(&line, out);
                if flow == Flow::Continue {
                    let _ = out.write_str(PROMPT);
                }
                flow
            }
            _ => Flow::Continue,
        }
    }

    /// Run one line: its output, or one `error:` line.
    pub fn execute(&mut self, line: &str, out: &mut dyn Write) -> Flow {
        let result = match parse(line) {
            Ok(cmd) => self.run(cmd, out),
            Err(e) => Err(alloc::format!("{e}")),
        };
        match result {
            Ok(flow) => flow,
            Err(msg) => {
                let _ = writeln!(out, "error: {msg}");
                Flow::Continue
            }
        }
    }

    fn run(&mut self, cmd: Command, out: &mut dyn Write) -> Result<Flow, String> {
        let fmt_err = |e: fmt::Error| alloc::format!("{e}");
        match cmd {
            Command::Empty => {}
            Command::Help => help(out).map_err(fmt_err)?,
            Command::Sites { glob, limit } => self.sites(glob.as_ref(), limit, out)?,
            Command::Attach {
                mechanism,
                glob,
                handler,
            } => {
                let a = self
                    .attachments
                    .attach(mechanism, &glob, handler)
                    .map_err(|e| alloc::format!("{e}"))?;
                let first = a.sites[0].short_name();
                let last = a.sites[a.sites.len() - 1].short_name();
                let span = if a.sites.len() == 1 {
                    String::from(first)
                } else {
                    alloc::format!("{first} … {last}")
                };
                writeln!(
                    out,
                    "attached #{}: {} on {} site(s) ({span}), handler {}",
                    a.id,
                    mechanism.name(),
                    a.sites.len(),
                    a.handler()
                )
                .map_err(fmt_err)?;
            }
            Command::Detach(DetachTarget::Id(id)) => {
                let a = self
                    .attachments
                    .detach(id)
                    .map_err(|e| alloc::format!("{e}"))?;
                writeln!(
                    out,
                    "detached #{id}: {} site(s) restored ({} hits)",
                    a.sites.len(),
                    a.hits()
                )
                .map_err(fmt_err)?;
            }
            Command::Detach(DetachTarget::All) => {
                let n = self
                    .attachments
                    .detach_all()
                    .map_err(|e| alloc::format!("{e}"))?;
                writeln!(out, "detached {n} attachment(s)").map_err(fmt_err)?;
            }
            Command::List => self.list(out).map_err(fmt_err)?,
            Command::Stats => stats(out).map_err(fmt_err)?,
            Command::Bench { suite, mechanism } => self.bench(suite, mechanism.as_deref(), out)?,
            Command::Trace { limit } => show_trace(limit, out).map_err(fmt_err)?,
            Command::TraceClear => {
                recorder::clear();
                writeln!(out, "trace: cleared").map_err(fmt_err)?;
            }
            Command::Call { glob, times } => call(&glob, times, out)?,
            Command::Cpus => cpus(out).map_err(fmt_err)?,
            Command::Exit(code) => return Ok(Flow::Exit(code)),
        }
        Ok(Flow::Continue)
    }

    /// `sites`: name, address, state, owners, mode.
    fn sites(
        &self,
        glob: Option<&Glob>,
        limit: Option<usize>,
        out: &mut dyn Write,
    ) -> Result<(), String> {
        let infos: Vec<trace::SiteInfo> = trace::sites()
            .into_iter()
            .filter(|i| glob.is_none_or(|g| g.matches(i.site.name)))
            .collect();
        if infos.is_empty() {
            let p = glob.map_or("", |g| g.as_str());
            return Err(alloc::format!("no patch site matches {p:?}"));
        }
        let probed = kprobe::probes();
        let shown = limit.unwrap_or(usize::MAX).min(infos.len());
        let w = |e: fmt::Error| alloc::format!("{e}");
        writeln!(
            out,
            "{:<42} {:<18} {:<28} {:<12} mode",
            "site", "address", "state", "owners"
        )
        .map_err(w)?;
        for info in &infos[..shown] {
            let s = info.site;
            let state = if probed.iter().any(|&(_, a)| a == s.func) {
                String::from("brk probe")
            } else {
                match batch::state(s).call() {
                    Some(t) => match symbols::lookup(t) {
                        Some(sym) => alloc::format!("bl {}", sym.name),
                        None => alloc::format!("bl {t:#x}"),
                    },
                    None => String::from("off"),
                }
            };
            let mut owners = String::new();
            for a in self.attachments.iter() {
                if info.owners.iter().any(|&o| a.owns_ops(o)) || a.probes(s.func) {
                    let _ = write!(owners, "#{} ", a.id);
                }
            }
            for o in &info.owners {
                if !self.attachments.iter().any(|a| a.owns_ops(*o)) {
                    let _ = write!(owners, "ops{} ", o.0);
                }
            }
            let owners = if owners.is_empty() {
                "-"
            } else {
                owners.trim_end()
            };
            writeln!(
                out,
                "{:<42} {:#018x} {:<28} {:<12} {}",
                s.name,
                s.func,
                state,
                owners,
                info.mode.map_or("-", |m| m.name())
            )
            .map_err(w)?;
        }
        if shown < infos.len() {
            writeln!(
                out,
                "... {} more of {} (sites <glob> all lists every one)",
                infos.len() - shown,
                infos.len()
            )
            .map_err(w)?;
        }
        Ok(())
    }

    fn list(&self, out: &mut dyn Write) -> fmt::Result {
        if self.attachments.is_empty() {
            return writeln!(
                out,
                "no attachments (attach <mechanism> <glob> [count|record|argN=V])"
            );
        }
        writeln!(
            out,
            "{:<4} {:<18} {:<24} {:<16} {:>6} {:>10} {:>10}",
            "id", "mechanism", "pattern", "handler", "sites", "hits", "returns"
        )?;
        for a in self.attachments.iter() {
            let handler = alloc::format!("{}", a.handler());
            let returns = a
                .returns()
                .map_or(String::from("-"), |r| alloc::format!("{r}"));
            writeln!(
                out,
                "#{:<3} {:<18} {:<24} {:<16} {:>6} {:>10} {:>10}",
                a.id,
                a.mechanism.name(),
                a.pattern,
                handler,
                a.sites.len(),
                a.hits(),
                returns
            )?;
            let names: Vec<&str> = a.sites.iter().map(|s| s.short_name()).collect();
            let more = names.len().saturating_sub(8);
            write!(out, "     sites: {}", names[..names.len() - more].join(" "))?;
            if more > 0 {
                write!(out, " ... {more} more")?;
            }
            writeln!(out)?;
        }
        Ok(())
    }

    fn bench(
        &self,
        which: BenchSuite,
        mechanism: Option<&str>,
        out: &mut dyn Write,
    ) -> Result<(), String> {
        if !self.attachments.is_empty() {
            return Err(String::from(
                "the suite measures sites with nothing else attached: detach all first",
            ));
        }
        // The mechanism and its baselines (their medians give the overhead).
        let mut keep: Vec<&str> = Vec::new();
        if let Some(name) = mechanism {
            if which != BenchSuite::Mechanisms {
                return Err(String::from(
                    "a mechanism narrows only the mechanisms suite: bench mechanisms <mechanism>",
                ));
            }
            let mut next = Some(name);
            while let Some(n) = next {
                let m = MECHANISMS.iter().find(|m| m.name == n).ok_or_else(|| {
                    let names: Vec<&str> = MECHANISMS.iter().map(|m| m.name).collect();
                    alloc::format!(
                        "unknown benchmark mechanism {n:?}; one of: {}",
                        names.join(", ")
                    )
                })?;
                keep.push(m.name);
                next = m.baseline;
            }
        }
        record::header();
        match which {
            BenchSuite::All => {
                suite::run_mechanisms(Iters::DEFAULT);
                ops_scaling::run(Iters::DEFAULT);
                patch_latency::run();
            }
            BenchSuite::Mechanisms => suite::run_mechanisms_where(Iters::DEFAULT, |m| {
                keep.is_empty() || keep.contains(&m.name)
            }),
            BenchSuite::OpsScaling => ops_scaling::run(Iters::DEFAULT),
            BenchSuite::PatchLatency => patch_latency::run(),
        }
        record::end();
        writeln!(out, "bench: {} result record(s)", record::emitted())
            .map_err(|e| alloc::format!("{e}"))
    }
}

fn help(out: &mut dyn Write) -> fmt::Result {
    writeln!(out, "commands:")?;
    for (name, args, what) in COMMANDS {
        let usage = alloc::format!("{name} {args}");
        writeln!(out, "  {usage:<58} {what}")?;
    }
    writeln!(out, "mechanisms: {}", mechanism_names())?;
    writeln!(
        out,
        "keys: Tab completes, Up/Down recall history, Left/Right/Home/End move, Ctrl-U clears, Ctrl-C abandons the line"
    )
}

fn mechanism_names() -> String {
    let names: Vec<&str> = Mechanism::ALL.iter().map(|m| m.name()).collect();
    names.join(", ")
}

/// `stats`: what the guards and limits refused, pools, patched sites, the trace rings.
fn stats(out: &mut dyn Write) -> fmt::Result {
    let (hooked, returned) = rethook::counts();
    writeln!(
        out,
        "recursion guard: {} traced call(s) refused",
        recursion::count()
    )?;
    writeln!(
        out,
        "rethook: {hooked} hooked, {returned} returned, {} not hooked (shadow stack full, {} entries per CPU)",
        rethook::overflows(),
        rethook::CAPACITY
    )?;
    for kind in [pool::PoolKind::Near, pool::PoolKind::Far] {
        let u = pool::usage(kind);
        writeln!(
            out,
            "{} pool: {} of {} KiB used in {} block(s), {} refused allocation(s)",
            kind.name(),
            u.used >> 10,
            u.total >> 10,
            u.blocks,
            u.failures
        )?;
    }
    let all = sites::all();
    let armed = all
        .iter()
        .filter(|s| batch::state(s).call().is_some())
        .count();
    let movs = all.iter().filter(|s| batch::state(s).entry_mov()).count();
    writeln!(
        out,
        "patch: {} site(s), {armed} armed (bl), {movs} with mov x9, x30, {} brk probe(s) ({} hits), {} ops attached",
        all.len(),
        kprobe::probes().len(),
        kprobe::hits(),
        trace::attach::attached()
    )?;
    let (events, lost) = (0..percpu::online() as usize)
        .map(recorder::usage)
        .fold((0, 0), |(e, w), (len, written)| (e + len, w + written));
    writeln!(
        out,
        "trace: {events} event(s) readable, {lost} written since boot ({} per CPU, clock {})",
        recorder::CAPACITY,
        recorder::clock_name()
    )
}

/// `trace`: the newest `limit` events, oldest first.
fn show_trace(limit: Option<usize>, out: &mut dyn Write) -> fmt::Result {
    let (events, stats) = recorder::read_all();
    if stats.lost > 0 {
        writeln!(
            out,
            "trace: {} event(s) lost (overwritten; {} per CPU are kept)",
            stats.lost,
            recorder::CAPACITY
        )?;
    }
    let shown = limit.unwrap_or(usize::MAX).min(events.len());
    for e in &events[events.len() - shown..] {
        let func = sites::by_addr(e.ip).map_or("?", |s| s.name);
        let mech = Mechanism::from_code(e.tag()).map_or("?", |m| m.name());
        let parent = match symbols::lookup(e.parent) {
            Some(s) => alloc::format!("{}+{:#x}", s.name, e.parent - s.addr),
            None => alloc::format!("{:#x}", e.parent),
        };
        writeln!(
            out,
            "[{:03}] {:>12}: {func} <- {parent} ({mech})",
            e.cpu(),
            e.ts
        )?;
    }
    writeln!(
        out,
        "trace: {} event(s), {shown} shown{}",
        events.len(),
        if shown < events.len() {
            " (trace all shows every one)"
        } else {
            ""
        }
    )
}

/// Functions the console may call: the subjects, whose arguments are all `u64`.
const CALLABLE: &str = "patchbay::subjects::";
/// Most calls one `call` makes.
const MAX_CALLS: u64 = 1_000_000;

/// `call`: run each matching subject `times` times.
fn call(glob: &Glob, times: u64, out: &mut dyn Write) -> Result<(), String> {
    if times > MAX_CALLS {
        return Err(alloc::format!("call: at most {MAX_CALLS} calls at a time"));
    }
    let matched: Vec<&sites::Site<'static>> = sites::all()
        .iter()
        .filter(|s| glob.matches(s.name))
        .collect();
    if matched.is_empty() {
        return Err(alloc::format!("no patch site matches {:?}", glob.as_str()));
    }
    if let Some(s) = matched.iter().find(|s| !s.name.starts_with(CALLABLE)) {
        return Err(alloc::format!(
            "{} is not a subject: only {CALLABLE}* take plain u64 arguments",
            s.name
        ));
    }
    // Functions of n plain words (x0..x(n-1), nothing else) encode as n.
    let words = |s: &sites::Site| s.arg_regs.bits();
    if let Some(s) = matched.iter().find(|s| !matches!(words(s), 0 | 1 | 8)) {
        return Err(alloc::format!(
            "{} takes {} arguments; call knows 0, 1 and 8",
            s.name,
            words(s)
        ));
    }
    for s in &matched {
        let mut last = 0;
        for _ in 0..times {
            last = call_site(s.func, words(s));
        }
        writeln!(out, "called {} {times} time(s): {last:#x}", s.name)
            .map_err(|e| alloc::format!("{e}"))?;
    }
    Ok(())
}

/// Call the subject at `func` with arguments 1, 2, ... (`nargs` of them: 0, 1 or 8).
#[inline(never)]
fn call_site(func: u64, nargs: u32) -> u64 {
    use core::hint::black_box as bb;
    match nargs {
        0 => {
            // SAFETY: a subject (checked by `call`) taking no arguments; a return value, if it
            // has one, is left in x0 and ignored.
            let f: extern "Rust" fn() = unsafe { core::mem::transmute(func as usize) };
            f();
            0
        }
        1 => {
            // SAFETY: a subject taking one u64 and returning a u64 (every 1-argument subject).
            let f: extern "Rust" fn(u64) -> u64 = unsafe { core::mem::transmute(func as usize) };
            f(bb(1))
        }
        _ => {
            type F8 = extern "Rust" fn(u64, u64, u64, u64, u64, u64, u64, u64) -> u64;
            // SAFETY: a subject taking eight u64 and returning a u64 (`args8`).
            let f: F8 = unsafe { core::mem::transmute(func as usize) };
            f(bb(1), bb(2), bb(3), bb(4), bb(5), bb(6), bb(7), bb(8))
        }
    }
}

/// `cpus`: each CPU and its trace ring.
fn cpus(out: &mut dyn Write) -> fmt::Result {
    let info = boot_info::get();
    writeln!(
        out,
        "{} CPU(s) in the DTB, {} online (SMP bring-up is not there yet)",
        info.cpus,
        percpu::online()
    )?;
    for cpu in 0..percpu::online() as usize {
        let (len, written) = recorder::usage(cpu);
        let here = if percpu::this().id as usize == cpu {
            ", this console"
        } else {
            ""
        };
        writeln!(
            out,
            "cpu{cpu}: online{here}, {} exception(s), trace ring {len}/{} event(s), {written} written",
            percpu::CPUS[cpu]
                .exceptions
                .load(core::sync::atomic::Ordering::Relaxed),
            recorder::CAPACITY
        )?;
    }
    Ok(())
}

/// What the console kernel checks before the prompt: every site can be traced and untraced
/// with text restored byte for byte, and a recorded call names its function and caller.
pub fn self_check() -> Result<(), &'static str> {
    let before = text_hash();
    let mut a = Attachments::new();
    let leaf = Glob::new("leaf").map_err(|_| "glob")?;
    a.attach(
        Mechanism::CallOps,
        &leaf,
        patchbay_shell::HandlerKind::Record,
    )
    .map_err(|_| "attach call-ops to leaf")?;
    recorder::clear();
    subjects::leaf();
    let (events, _) = recorder::read_all();
    let leaf_addr = sites::by_name("patchbay::subjects::leaf")
        .map_err(|_| "leaf is a site")?
        .func;
    if events.len() != 1 || events[0].ip != leaf_addr {
        return Err("one recorded event for one call of leaf");
    }
    a.detach_all().map_err(|_| "detach")?;
    recorder::clear();
    if text_hash() != before {
        return Err("text restored after detach");
    }
    Ok(())
}

/// `fmt::Write` onto the console.
struct ConsoleOut;

impl Write for ConsoleOut {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        crate::print!("{s}");
        Ok(())
    }
}

/// Run the console on the UART until `exit`.
pub fn run() -> ! {
    recorder::set_cycle_clock(clock::source() == clock::Source::Pmccntr);
    let mut shell = Shell::new();
    crate::println!(
        "console: type help for the commands; Tab completes, Up/Down recall, exit [code] ends the run"
    );
    crate::print!("{PROMPT}");
    loop {
        match console::try_read_byte() {
            Some(b) => {
                if let Flow::Exit(code) = shell.feed(b, &mut ConsoleOut) {
                    exit::exit_with(code as u32)
                }
            }
            None => core::hint::spin_loop(),
        }
    }
}
