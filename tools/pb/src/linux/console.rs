//! The guest's console: `hookbench`'s `@linux ` lines (see `tools/linux-guest/hookbench.c` for
//! their grammar) parsed into a [`GuestLog`], checked by [`check`] — every hook must have fired
//! exactly as often as the guest called the function — and turned into `@bench` records by
//! [`records`].
//!
//! Pure: text in, values out. A hook that did not fire, a tracefs write the kernel refused or a
//! log that stops early is a [`LinuxError`], never a number.

use std::collections::BTreeMap;
use std::fmt;

use patchbay_pure::stats::{self, Summary};
use serde::Serialize;

/// What starts one of the guest program's lines on the console.
pub const PREFIX: &str = "@linux ";

/// The variant every other one is compared with: the function, not hooked at all.
pub const BASELINE: &str = "baseline";

/// One way of hooking the function through tracefs, as `hookbench` names it, and the evidence
/// that proves it fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Variant {
    /// `hookbench`'s name, the `mechanism` of its `@bench` record.
    pub name: &'static str,
    /// What it is, in Linux's words.
    pub label: &'static str,
    /// ftrace ops on the function while it ran: the count `enabled_functions` shows (`None`: not
    /// checked, the count depends on the kernel version).
    pub attached: Option<u64>,
    /// Whether `kprobe_profile` must count one hit per call (and no miss).
    pub probe_hits: bool,
    /// Ring-buffer events per call, written and kept or overwritten (0: nothing may be recorded).
    pub events_per_call: u64,
    /// Whether the kernel may lack it (reported unavailable rather than measured).
    pub optional: bool,
}

/// Every variant, in the order `hookbench` runs them.
pub const VARIANTS: [Variant; 10] = [
    Variant {
        name: BASELINE,
        label: "no tracing",
        attached: Some(0),
        probe_hits: false,
        events_per_call: 0,
        optional: false,
    },
    Variant {
        name: "function-off",
        label: "function tracer, tracing_on=0",
        attached: Some(1),
        probe_hits: false,
        events_per_call: 0,
        optional: false,
    },
    Variant {
        name: "function",
        label: "function tracer, recording",
        attached: Some(1),
        probe_hits: false,
        events_per_call: 1,
        optional: false,
    },
    Variant {
        name: "function-x2-off",
        label: "two function tracers, tracing_on=0",
        attached: Some(2),
        probe_hits: false,
        events_per_call: 0,
        optional: false,
    },
    Variant {
        name: "function-graph",
        label: "function_graph, recording",
        attached: Some(1),
        probe_hits: false,
        events_per_call: 2,
        optional: false,
    },
    Variant {
        name: "kprobe-off",
        label: "kprobe event, tracing_on=0",
        attached: Some(0),
        probe_hits: true,
        events_per_call: 0,
        optional: false,
    },
    Variant {
        name: "kprobe",
        label: "kprobe event, recording",
        attached: Some(0),
        probe_hits: true,
        events_per_call: 1,
        optional: false,
    },
    Variant {
        name: "kretprobe-off",
        label: "kretprobe event, tracing_on=0",
        attached: Some(0),
        probe_hits: true,
        events_per_call: 0,
        optional: false,
    },
    Variant {
        name: "kretprobe",
        label: "kretprobe event, recording",
        attached: Some(0),
        probe_hits: true,
        events_per_call: 1,
        optional: false,
    },
    Variant {
        name: "fprobe",
        label: "fprobe events entry+exit, recording",
        attached: None,
        probe_hits: false,
        events_per_call: 2,
        optional: true,
    },
];

/// The variant called `name`.
pub fn variant(name: &str) -> Option<&'static Variant> {
    VARIANTS.iter().find(|v| v.name == name)
}

/// Per-sample totals: empty brackets (the cost of reading the clock around nothing) and samples
/// (the same bracket around `calls_per_sample` calls).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Samples {
    pub bracket: Vec<u64>,
    pub sample: Vec<u64>,
}

/// Everything the guest printed about one variant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VariantLog {
    pub name: String,
    /// Why the kernel cannot do it, if it cannot.
    pub unavailable: Option<String>,
    /// What went wrong (a tracefs write refused, ...).
    pub errors: Vec<String>,
    /// Calls made while the hook was on.
    pub calls: Option<u64>,
    /// `CLOCK_MONOTONIC` nanoseconds.
    pub clock: Samples,
    /// PMU instructions (`perf_event_open`), if the PMU counts.
    pub pmu: Samples,
    /// `(tracefs file, line)`: what was attached and recorded.
    pub files: Vec<(String, String)>,
}

/// Everything the guest printed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GuestLog {
    pub begun: bool,
    pub ended: bool,
    /// The kernel's release (`uname -r`).
    pub kernel: Option<String>,
    /// The hooked kernel function.
    pub function: Option<String>,
    pub calls_per_sample: Option<u64>,
    /// The generic timer's frequency (`CLOCK_MONOTONIC`'s resolution).
    pub cntfrq: Option<u64>,
    /// `Ok` if the PMU instruction counter counts, else why not.
    pub pmu: Option<Result<(), String>>,
    /// In the order they appeared.
    pub variants: Vec<VariantLog>,
}

/// Why a Linux run gives no numbers.
#[derive(Clone, Debug, PartialEq)]
pub enum LinuxError {
    /// An `@linux ` line that does not follow the grammar.
    Line {
        line_no: usize,
        text: String,
        reason: String,
    },
    /// The guest program never started (the kernel did not boot, or init failed).
    NotStarted,
    /// The log stops before `@linux end` (the guest crashed or QEMU was stopped).
    Truncated { last: Option<String> },
    /// A line every run has (`kernel`, `function`, ...) is missing.
    Missing(&'static str),
    /// The guest reported an error for a variant.
    Guest { variant: String, what: String },
    /// A variant pb knows was neither measured nor reported unavailable.
    MissingVariant(&'static str),
    /// A variant that every kernel must have was reported unavailable.
    Unavailable { variant: String, reason: String },
    /// A variant's samples are missing or inconsistent.
    Samples { variant: String, reason: String },
    /// The evidence says the hook did not fire once per call.
    NotFired {
        variant: String,
        expected: String,
        found: String,
    },
    /// A hook that costs nothing did not run.
    NoOverhead { variant: String, overhead: f64 },
}

impl fmt::Display for LinuxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinuxError::Line {
                line_no,
                text,
                reason,
            } => write!(f, "console line {line_no}: {reason}: {text}"),
            LinuxError::NotStarted => f.write_str(
                "the guest program never started (no `@linux begin`): did the kernel boot and \
                 find /init? See the console log",
            ),
            LinuxError::Truncated { last: Some(last) } => write!(
                f,
                "the guest stopped during or after variant {last} (no `@linux end`): see the \
                 console log for a kernel oops or a timeout"
            ),
            LinuxError::Truncated { last: None } => f.write_str(
                "the guest stopped before its first variant (no `@linux end`): see the console log",
            ),
            LinuxError::Missing(what) => write!(f, "the guest never printed its `{what}` line"),
            LinuxError::Guest { variant, what } => {
                write!(f, "variant {variant}: the guest reports: {what}")
            }
            LinuxError::MissingVariant(name) => {
                write!(
                    f,
                    "variant {name} was neither measured nor reported unavailable"
                )
            }
            LinuxError::Unavailable { variant, reason } => write!(
                f,
                "variant {variant} is reported unavailable ({reason}), but every kernel pb \
                 compares must have it"
            ),
            LinuxError::Samples { variant, reason } => write!(f, "variant {variant}: {reason}"),
            LinuxError::NotFired {
                variant,
                expected,
                found,
            } => write!(
                f,
                "variant {variant}: the hook did not fire once per call: expected {expected}, \
                 found {found}"
            ),
            LinuxError::NoOverhead { variant, overhead } => write!(
                f,
                "variant {variant}: costs {overhead} instructions over the baseline, so the hook \
                 cannot have run"
            ),
        }
    }
}

impl std::error::Error for LinuxError {}

/// Parses `n n n ...`.
fn numbers(text: &str) -> Result<Vec<u64>, String> {
    text.split_whitespace()
        .map(|w| w.parse().map_err(|_| format!("{w:?} is not a count")))
        .collect()
}

fn number(text: &str) -> Result<u64, String> {
    match numbers(text)?.as_slice() {
        [n] => Ok(*n),
        _ => Err(format!("expected one number, found {text:?}")),
    }
}

impl GuestLog {
    fn variant_mut(&mut self, name: &str) -> &mut VariantLog {
        if let Some(i) = self.variants.iter().position(|v| v.name == name) {
            return &mut self.variants[i];
        }
        self.variants.push(VariantLog {
            name: name.to_string(),
            ..VariantLog::default()
        });
        self.variants.last_mut().expect("just pushed")
    }

    /// Applies one line (without the prefix).
    fn line(&mut self, rest: &str) -> Result<(), String> {
        let (word, tail) = rest.split_once(' ').unwrap_or((rest, ""));
        let tail = tail.trim();
        match word {
            "begin" => self.begun = true,
            "end" => self.ended = true,
            // init's report of hookbench's exit status; `end` already says it finished.
            "exit" => {}
            "kernel" => self.kernel = Some(tail.to_string()),
            "hooked" => self.function = Some(tail.to_string()),
            "calls-per-sample" => self.calls_per_sample = Some(number(tail)?),
            "cntfrq" => self.cntfrq = Some(number(tail)?),
            "pmu" => {
                self.pmu = Some(match tail.split_once(':') {
                    _ if tail == "available" => Ok(()),
                    Some(("unavailable", why)) => Err(why.trim().to_string()),
                    _ => return Err(format!("unknown pmu state {tail:?}")),
                })
            }
            name if variant(name).is_some() => self.variant_line(name, tail)?,
            other => return Err(format!("unknown variant or keyword {other:?}")),
        }
        Ok(())
    }

    fn variant_line(&mut self, name: &str, tail: &str) -> Result<(), String> {
        let v = self.variant_mut(name);
        let (what, rest) = tail.split_once(' ').unwrap_or((tail, ""));
        match what {
            "unavailable:" => v.unavailable = Some(rest.trim().to_string()),
            "error:" => v.errors.push(rest.trim().to_string()),
            "calls" => v.calls = Some(number(rest)?),
            "clock-bracket" => v.clock.bracket = numbers(rest)?,
            "clock-sample" => v.clock.sample = numbers(rest)?,
            "pmu-bracket" => v.pmu.bracket = numbers(rest)?,
            "pmu-sample" => v.pmu.sample = numbers(rest)?,
            "file" => {
                let (file, line) = rest
                    .split_once(": ")
                    .ok_or_else(|| format!("file line without `: `: {rest:?}"))?;
                v.files.push((file.to_string(), line.to_string()));
            }
            other => return Err(format!("unknown report {other:?} for variant {name}")),
        }
        Ok(())
    }
}

/// Parses a console log: `@linux ` lines are the guest's, everything else (the kernel's own
/// messages, QEMU's) is ignored. `\r\n` endings are fine.
pub fn parse(text: &str) -> Result<GuestLog, LinuxError> {
    let mut log = GuestLog::default();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        let Some(rest) = line.strip_prefix(PREFIX) else {
            continue;
        };
        log.line(rest).map_err(|reason| LinuxError::Line {
            line_no: i + 1,
            text: line.to_string(),
            reason,
        })?;
    }
    Ok(log)
}

/// Statistics of one variant's samples, per call, with the bracket's median subtracted.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PerCall {
    /// Samples, each of `calls_per_sample` calls.
    pub n: usize,
    pub min: f64,
    pub median: f64,
    pub mean: f64,
    pub p99: f64,
    pub max: f64,
    /// The median sample minus the median bracket, for `calls_per_sample` calls: exact, so
    /// overheads are computed from it.
    pub median_total: u64,
}

/// Per-call statistics of `s`, or why there are none.
fn per_call(s: &Samples, calls: u64) -> Result<PerCall, String> {
    if s.sample.is_empty() || s.bracket.is_empty() {
        return Err("no samples".to_string());
    }
    let mut bracket = s.bracket.clone();
    let bracket = stats::summarize(&mut bracket).expect("not empty").median;
    let mut net: Vec<u64> = Vec::with_capacity(s.sample.len());
    for &x in &s.sample {
        net.push(x.checked_sub(bracket).ok_or_else(|| {
            format!("a sample ({x}) is shorter than the median empty bracket ({bracket})")
        })?);
    }
    let Summary {
        n,
        min,
        median,
        mean,
        p99,
        max,
    } = stats::summarize(&mut net).expect("not empty");
    let c = calls as f64;
    Ok(PerCall {
        n,
        min: min as f64 / c,
        median: median as f64 / c,
        // To what one sample resolves: a thousandth of an instruction for 1000 calls.
        mean: (mean * 1000.0 / c).round() / 1000.0,
        p99: p99 as f64 / c,
        max: max as f64 / c,
        median_total: median,
    })
}

/// One variant after the checks.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Measured {
        variant: &'static Variant,
        /// Calls made while the hook was on.
        calls: u64,
        clock: PerCall,
        pmu: Option<PerCall>,
        /// What proves the hook fired once per call, in words.
        evidence: String,
    },
    Unavailable {
        variant: &'static Variant,
        reason: String,
    },
}

/// A checked run: every variant measured (or, if optional, unavailable), every hook fired.
#[derive(Clone, Debug, PartialEq)]
pub struct Measured {
    pub kernel: String,
    pub function: String,
    pub calls_per_sample: u64,
    pub cntfrq: u64,
    pub pmu: Result<(), String>,
    /// Whether the function tracer reached the function through its call-site ops literal
    /// (flag `O` in `enabled_functions`): the kernel has CALL_OPS.
    pub call_ops: bool,
    /// In [`VARIANTS`] order.
    pub outcomes: Vec<Outcome>,
}

/// The lines of `file` the guest printed for a variant.
fn lines<'a>(v: &'a VariantLog, file: &'a str) -> impl Iterator<Item = &'a str> {
    v.files
        .iter()
        .filter(move |(f, _)| f == file)
        .map(|(_, l)| l.as_str())
}

/// `enabled_functions`' line for `function`: `name (count) FLAGS \t...`, as (count, flags).
fn enabled(line: &str, function: &str) -> Option<(u64, String)> {
    let rest = line.strip_prefix(function)?.strip_prefix(" (")?;
    let (count, rest) = rest.split_once(')')?;
    let flags = rest.split('\t').next().unwrap_or("");
    Some((count.parse().ok()?, flags.split_whitespace().collect()))
}

/// `kprobe_profile`'s line: `name hits misses`, as (hits, misses).
fn profile(line: &str) -> Option<(u64, u64)> {
    match line.split_whitespace().collect::<Vec<_>>().as_slice() {
        [_, hits, misses] => Some((hits.parse().ok()?, misses.parse().ok()?)),
        _ => None,
    }
}

/// Events the ring buffer took (kept + overwritten), summed over every CPU.
fn events(v: &VariantLog) -> Result<u64, String> {
    let mut total = 0;
    let mut seen = false;
    for (file, line) in &v.files {
        if !file.ends_with("/stats") {
            continue;
        }
        for key in ["entries:", "overrun:"] {
            if let Some(n) = line.strip_prefix(key) {
                total += number(n)?;
                seen = true;
            }
        }
    }
    if seen {
        Ok(total)
    } else {
        Err("no ring-buffer statistics (per_cpu/*/stats)".to_string())
    }
}

/// Checks one variant's evidence against what it must show; the evidence in words.
fn evidence(
    variant: &Variant,
    v: &VariantLog,
    function: &str,
    calls: u64,
) -> Result<String, LinuxError> {
    let not_fired = |expected: String, found: String| LinuxError::NotFired {
        variant: variant.name.to_string(),
        expected,
        found,
    };
    let mut words = Vec::new();
    let attached: Vec<(u64, String)> = lines(v, "enabled_functions")
        .filter_map(|l| enabled(l, function))
        .collect();
    let count = attached.iter().map(|(n, _)| n).sum::<u64>();
    if let Some(want) = variant.attached
        && count != want
    {
        return Err(not_fired(
            format!("{want} ftrace ops on {function}"),
            format!("{count} (enabled_functions)"),
        ));
    }
    if count > 0 {
        words.push(format!("enabled_functions: {count} ops"));
    }
    let profiles: Vec<(u64, u64)> = lines(v, "kprobe_profile").filter_map(profile).collect();
    if variant.probe_hits {
        let hits: u64 = profiles.iter().map(|p| p.0).sum();
        let misses: u64 = profiles.iter().map(|p| p.1).sum();
        if profiles.is_empty() || hits != calls || misses != 0 {
            return Err(not_fired(
                format!("kprobe_profile {calls} hits, 0 misses"),
                format!("{hits} hits, {misses} misses ({} probes)", profiles.len()),
            ));
        }
        words.push(format!("kprobe_profile: {hits} hits"));
    } else if !profiles.is_empty() {
        return Err(not_fired(
            "no kprobe".to_string(),
            format!("{} kprobe_profile lines", profiles.len()),
        ));
    }
    let events = events(v).map_err(|reason| LinuxError::Samples {
        variant: variant.name.to_string(),
        reason,
    })?;
    let expected = variant.events_per_call * calls;
    if events != expected {
        return Err(not_fired(
            format!("{expected} ring-buffer events"),
            events.to_string(),
        ));
    }
    if expected > 0 {
        words.push(format!("ring buffer: {events} events"));
    }
    words.push(format!("{calls} calls"));
    Ok(words.join(", "))
}

/// Checks a parsed log: it is complete, every variant pb knows is there, every hook fired once
/// per call and costs something. The first problem is the error.
pub fn check(log: &GuestLog) -> Result<Measured, LinuxError> {
    if !log.begun {
        return Err(LinuxError::NotStarted);
    }
    if !log.ended {
        return Err(LinuxError::Truncated {
            last: log.variants.last().map(|v| v.name.clone()),
        });
    }
    let kernel = log.kernel.clone().ok_or(LinuxError::Missing("kernel"))?;
    let function = log.function.clone().ok_or(LinuxError::Missing("hooked"))?;
    let calls_per_sample = log
        .calls_per_sample
        .ok_or(LinuxError::Missing("calls-per-sample"))?;
    let cntfrq = log.cntfrq.ok_or(LinuxError::Missing("cntfrq"))?;
    let pmu = log.pmu.clone().ok_or(LinuxError::Missing("pmu"))?;
    let mut outcomes = Vec::new();
    let mut call_ops = false;
    for variant in &VARIANTS {
        let name = variant.name.to_string();
        let v = log
            .variants
            .iter()
            .find(|v| v.name == variant.name)
            .ok_or(LinuxError::MissingVariant(variant.name))?;
        if let Some(what) = v.errors.first() {
            return Err(LinuxError::Guest {
                variant: name,
                what: what.clone(),
            });
        }
        if let Some(reason) = &v.unavailable {
            if !variant.optional {
                return Err(LinuxError::Unavailable {
                    variant: name,
                    reason: reason.clone(),
                });
            }
            outcomes.push(Outcome::Unavailable {
                variant,
                reason: reason.clone(),
            });
            continue;
        }
        let samples = |reason: String| LinuxError::Samples {
            variant: name.clone(),
            reason,
        };
        let calls = v
            .calls
            .ok_or_else(|| samples("no `calls` line".to_string()))?;
        let clock =
            per_call(&v.clock, calls_per_sample).map_err(|r| samples(format!("clock: {r}")))?;
        let pmu = match (&pmu, v.pmu.sample.is_empty()) {
            (Ok(()), _) => {
                Some(per_call(&v.pmu, calls_per_sample).map_err(|r| samples(format!("pmu: {r}")))?)
            }
            (Err(_), true) => None,
            (Err(_), false) => {
                return Err(samples(
                    "PMU samples, but the PMU was reported unavailable".to_string(),
                ));
            }
        };
        let evidence = evidence(variant, v, &function, calls)?;
        if variant.name == "function-off" {
            call_ops = lines(v, "enabled_functions")
                .filter_map(|l| enabled(l, &function))
                .any(|(_, flags)| flags.contains('O'));
        }
        outcomes.push(Outcome::Measured {
            variant,
            calls,
            clock,
            pmu,
            evidence,
        });
    }
    let measured = Measured {
        kernel,
        function,
        calls_per_sample,
        cntfrq,
        pmu,
        call_ops,
        outcomes,
    };
    let base = measured.baseline_total();
    for o in &measured.outcomes {
        if let Outcome::Measured { variant, clock, .. } = o
            && variant.name != BASELINE
            && clock.median_total <= base
        {
            return Err(LinuxError::NoOverhead {
                variant: variant.name.to_string(),
                overhead: overhead(clock.median_total, base, calls_per_sample),
            });
        }
    }
    Ok(measured)
}

/// `(total - base) / calls`, rounded to what `calls` calls can resolve.
fn overhead(total: u64, base: u64, calls: u64) -> f64 {
    (total as f64 - base as f64) / calls as f64
}

impl Measured {
    /// The baseline's median total over `calls_per_sample` calls (clock).
    fn baseline_total(&self) -> u64 {
        self.outcomes
            .iter()
            .find_map(|o| match o {
                Outcome::Measured { variant, clock, .. } if variant.name == BASELINE => {
                    Some(clock.median_total)
                }
                _ => None,
            })
            .expect("check() requires the baseline")
    }

    fn baseline_pmu_total(&self) -> Option<u64> {
        self.outcomes.iter().find_map(|o| match o {
            Outcome::Measured { variant, pmu, .. } if variant.name == BASELINE => {
                pmu.map(|p| p.median_total)
            }
            _ => None,
        })
    }

    /// The `board` of the records: `linux-<release>`.
    pub fn board(&self) -> String {
        format!("linux-{}", self.kernel)
    }
}

/// The `@bench` header of a Linux run. Beyond the fields every header has, it says how the run
/// was made and which variants the kernel could not do (pb's record parser ignores unknown
/// fields; [`super::side`] reads them from the raw JSON).
#[derive(Serialize)]
struct HeaderRecord<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    version: u64,
    board: String,
    cpu: &'a str,
    clock: &'static str,
    mode: &'static str,
    unit: &'static str,
    /// The QEMU command's machine flags.
    qemu: &'a str,
    function: &'a str,
    calls_per_sample: u64,
    cntfrq: u64,
    call_ops: bool,
    pmu: String,
    unavailable: BTreeMap<&'static str, &'a str>,
}

/// One `@bench` result of a Linux run.
#[derive(Serialize)]
struct ResultRecord<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    suite: &'static str,
    mechanism: &'static str,
    subject: &'a str,
    metric: &'static str,
    unit: &'static str,
    iters: usize,
    min: f64,
    median: f64,
    mean: f64,
    p99: f64,
    max: f64,
    baseline: Option<&'static str>,
    overhead: Option<f64>,
    calls: u64,
    evidence: &'a str,
}

/// The suite of Linux's records.
pub const SUITE: &str = "linux-hooks";
/// The metric of `CLOCK_MONOTONIC` results; [`METRIC_PMU`] for the PMU's.
pub const METRIC_CLOCK: &str = "call";
pub const METRIC_PMU: &str = "call-pmu";

/// Where the run was made, for the header: the CPU model and QEMU's machine flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Machine {
    pub cpu: String,
    pub qemu: String,
}

/// The run as `@bench` JSON lines: the header, one result per measured variant and clock
/// (`call`: CLOCK_MONOTONIC, `call-pmu`: the PMU), the end record.
pub fn records(m: &Measured, machine: &Machine) -> Vec<String> {
    let unavailable = m
        .outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Unavailable { variant, reason } => Some((variant.name, reason.as_str())),
            Outcome::Measured { .. } => None,
        })
        .collect();
    let header = HeaderRecord {
        kind: "header",
        version: crate::records::VERSION,
        board: m.board(),
        cpu: &machine.cpu,
        clock: "clock_monotonic",
        mode: "qemu-icount",
        unit: "instructions",
        qemu: &machine.qemu,
        function: &m.function,
        calls_per_sample: m.calls_per_sample,
        cntfrq: m.cntfrq,
        call_ops: m.call_ops,
        pmu: match &m.pmu {
            Ok(()) => "perf_event_open PERF_COUNT_HW_INSTRUCTIONS".to_string(),
            Err(why) => format!("unavailable: {why}"),
        },
        unavailable,
    };
    let mut out = vec![serde_json::to_string(&header).expect("serializable")];
    let bases = [
        (METRIC_CLOCK, Some(m.baseline_total())),
        (METRIC_PMU, m.baseline_pmu_total()),
    ];
    for o in &m.outcomes {
        let Outcome::Measured {
            variant,
            calls,
            clock,
            pmu,
            evidence,
        } = o
        else {
            continue;
        };
        for ((metric, base), stats) in bases.iter().zip([Some(clock), pmu.as_ref()]) {
            let (Some(base), Some(s)) = (base, stats) else {
                continue;
            };
            let is_base = variant.name == BASELINE;
            let result = ResultRecord {
                kind: "result",
                suite: SUITE,
                mechanism: variant.name,
                subject: &m.function,
                metric,
                unit: "instructions",
                iters: s.n,
                min: s.min,
                median: s.median,
                mean: s.mean,
                p99: s.p99,
                max: s.max,
                baseline: (!is_base).then_some(BASELINE),
                overhead: (!is_base).then(|| overhead(s.median_total, *base, m.calls_per_sample)),
                calls: *calls,
                evidence,
            };
            out.push(serde_json::to_string(&result).expect("serializable"));
        }
    }
    let results = out.len() - 1;
    out.push(format!(r#"{{"type":"end","records":{results}}}"#));
    out
}
