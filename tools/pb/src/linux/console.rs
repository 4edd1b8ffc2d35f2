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
use serde::{Deserialize, Serialize};

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
    /// Repeated runs that are not runs of the same thing.
    Runs { reason: String },
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
            LinuxError::Runs { reason } => write!(f, "the repeated runs differ: {reason}"),
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
            "calls-per-sample" => match number(tail)? {
                0 => return Err("0 calls per sample".to_string()),
                n => self.calls_per_sample = Some(n),
            },
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
        // To what one sample resolves: one instruction over `calls` calls.
        mean: mean.round() / c,
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

/// `(total - base) / calls`: the overhead per call of a variant whose median sample is `total`
/// against a baseline whose median sample is `base`.
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

/// How far repeated runs of one kernel are apart: over every variant, the largest difference
/// between two runs' medians, in instructions per call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub runs: usize,
    /// `CLOCK_MONOTONIC` (metric `call`).
    pub call: f64,
    /// The PMU (metric `call-pmu`), if it counted.
    #[serde(rename = "call-pmu")]
    pub call_pmu: Option<f64>,
    /// `variant/metric` of the largest difference, if any differs.
    pub widest: Option<String>,
}

/// The spread of `runs` (at least one), which must be of the same kernel with the same variants
/// measured.
pub fn spread(runs: &[Measured]) -> Result<Spread, LinuxError> {
    let first = runs.first().ok_or_else(|| LinuxError::Runs {
        reason: "no run".to_string(),
    })?;
    let medians = |m: &Measured| -> Vec<(&'static str, u64, Option<u64>)> {
        m.outcomes
            .iter()
            .filter_map(|o| match o {
                Outcome::Measured {
                    variant,
                    clock,
                    pmu,
                    ..
                } => Some((
                    variant.name,
                    clock.median_total,
                    pmu.map(|p| p.median_total),
                )),
                Outcome::Unavailable { .. } => None,
            })
            .collect()
    };
    let reference = medians(first);
    let mut lowest = reference.clone();
    let mut highest = reference.clone();
    for m in &runs[1..] {
        let this = medians(m);
        let same = m.kernel == first.kernel
            && m.calls_per_sample == first.calls_per_sample
            && this.len() == reference.len()
            && this
                .iter()
                .zip(&reference)
                .all(|(a, b)| a.0 == b.0 && a.2.is_some() == b.2.is_some());
        if !same {
            return Err(LinuxError::Runs {
                reason: format!(
                    "{} and {} do not measure the same variants with the same clocks",
                    first.kernel, m.kernel
                ),
            });
        }
        for ((lo, hi), x) in lowest.iter_mut().zip(highest.iter_mut()).zip(this) {
            lo.1 = lo.1.min(x.1);
            hi.1 = hi.1.max(x.1);
            lo.2 = lo.2.zip(x.2).map(|(a, b)| a.min(b));
            hi.2 = hi.2.zip(x.2).map(|(a, b)| a.max(b));
        }
    }
    let per_call = |d: u64| d as f64 / first.calls_per_sample as f64;
    let mut spread = Spread {
        runs: runs.len(),
        call: 0.0,
        call_pmu: first.pmu.is_ok().then_some(0.0),
        widest: None,
    };
    let mut widest = 0;
    for (lo, hi) in lowest.iter().zip(&highest) {
        let clock = hi.1 - lo.1;
        let pmu = hi.2.zip(lo.2).map(|(h, l)| h - l);
        spread.call = spread.call.max(per_call(clock));
        if let (Some(p), Some(s)) = (pmu, spread.call_pmu.as_mut()) {
            *s = s.max(per_call(p));
        }
        for (metric, d) in [(METRIC_CLOCK, Some(clock)), (METRIC_PMU, pmu)] {
            if let Some(d) = d.filter(|&d| d > widest) {
                widest = d;
                spread.widest = Some(format!("{}/{metric}", lo.0));
            }
        }
    }
    Ok(spread)
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
    /// How far repeated runs were apart (absent after one run).
    #[serde(skip_serializing_if = "Option::is_none")]
    spread: Option<&'a Spread>,
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
/// (`call`: CLOCK_MONOTONIC, `call-pmu`: the PMU), the end record. `spread`: how far repeated
/// runs of which `m` is the first were apart.
pub fn records(m: &Measured, machine: &Machine, spread: Option<&Spread>) -> Vec<String> {
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
        spread,
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

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::records;

    /// The consoles of the real `make linux-compare REPEAT=3` run whose records are committed
    /// as `bench/linux-6.12.95+deb12-arm64.jsonl`: Debian's 6.12 kernel (CALL_OPS, no fprobe
    /// events), QEMU 10.0.2 virt, cortex-a72, -icount shift=0.
    pub const LOGS_612: [&str; 3] = [
        include_str!("../../tests/fixtures/linux/6.12.95+deb12-arm64/console-1.log"),
        include_str!("../../tests/fixtures/linux/6.12.95+deb12-arm64/console-2.log"),
        include_str!("../../tests/fixtures/linux/6.12.95+deb12-arm64/console-3.log"),
    ];
    pub const LOG_612: &str = LOGS_612[0];
    /// The same for Debian's 6.1 kernel (no CALL_OPS), `REPEAT=2`.
    pub const LOGS_61: [&str; 2] = [
        include_str!("../../tests/fixtures/linux/6.1.0-50-arm64/console-1.log"),
        include_str!("../../tests/fixtures/linux/6.1.0-50-arm64/console-2.log"),
    ];
    const LOG_61: &str = LOGS_61[0];
    /// [`LOG_612`] with kprobe-off's hit count edited to 0: a hook that did not fire.
    const NOT_FIRED: &str = include_str!("../../tests/fixtures/linux/not-fired.log");
    /// The committed results.
    pub const RESULTS_612: &str = include_str!("../../../../bench/linux-6.12.95+deb12-arm64.jsonl");
    pub const RESULTS_61: &str = include_str!("../../../../bench/linux-6.1.0-50-arm64.jsonl");

    pub fn machine() -> Machine {
        Machine {
            cpu: "cortex-a72".to_string(),
            qemu: "QEMU emulator version 10.0.2: -M virt -cpu cortex-a72".to_string(),
        }
    }

    fn checked(text: &str) -> Result<Measured, LinuxError> {
        check(&parse(text)?)
    }

    fn measured<'a>(m: &'a Measured, name: &str) -> (&'a PerCall, Option<&'a PerCall>, &'a str) {
        m.outcomes
            .iter()
            .find_map(|o| match o {
                Outcome::Measured {
                    variant,
                    clock,
                    pmu,
                    evidence,
                    ..
                } if variant.name == name => Some((clock, pmu.as_ref(), evidence.as_str())),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{name} not measured"))
    }

    /// `text` with every line of `variant` replaced by `lines`.
    fn replace_variant(text: &str, variant: &str, lines: &[&str]) -> String {
        let prefix = format!("{PREFIX}{variant} ");
        let mut out: Vec<String> = Vec::new();
        let mut done = false;
        for line in text.lines() {
            if line.starts_with(&prefix) {
                if !done {
                    out.extend(lines.iter().map(|l| l.to_string()));
                    done = true;
                }
            } else {
                out.push(line.to_string());
            }
        }
        assert!(done, "no lines of {variant}");
        out.join("\n")
    }

    #[test]
    fn real_612_run() {
        let m = checked(LOG_612).unwrap();
        assert_eq!(m.kernel, "6.12.95+deb12-arm64");
        assert_eq!(m.board(), "linux-6.12.95+deb12-arm64");
        assert_eq!(m.function, "__arm64_sys_getpid");
        assert_eq!((m.calls_per_sample, m.cntfrq), (1000, 62_500_000));
        assert_eq!(m.pmu, Ok(()));
        assert!(
            m.call_ops,
            "6.12 reaches the function tracer through CALL_OPS"
        );
        let names: Vec<&str> = m
            .outcomes
            .iter()
            .map(|o| match o {
                Outcome::Measured { variant, .. } | Outcome::Unavailable { variant, .. } => {
                    variant.name
                }
            })
            .collect();
        let all: Vec<&str> = VARIANTS.iter().map(|v| v.name).collect();
        assert_eq!(names, all);
        assert_eq!(
            m.outcomes.last(),
            Some(&Outcome::Unavailable {
                variant: &VARIANTS[9],
                reason: "tracefs README has no fprobe event syntax (kernel built without \
                         CONFIG_FPROBE_EVENTS)"
                    .to_string()
            })
        );
        let (base, base_pmu, evidence) = measured(&m, BASELINE);
        assert_eq!((base.n, base.median), (31, 439.392));
        assert_eq!(base_pmu.unwrap().median, 439.4);
        assert_eq!(evidence, "32000 calls");
        let (off, _, evidence) = measured(&m, "function-off");
        assert_eq!(
            off.median_total - base.median_total,
            176_000,
            "+176 per call, exactly"
        );
        assert_eq!(evidence, "enabled_functions: 1 ops, 32000 calls");
        for (name, want) in [
            ("function-x2-off", "enabled_functions: 2 ops, 32000 calls"),
            (
                "function",
                "enabled_functions: 1 ops, ring buffer: 32000 events, 32000 calls",
            ),
            // Entry and return, overwritten ones included.
            (
                "function-graph",
                "enabled_functions: 1 ops, ring buffer: 64000 events, 32000 calls",
            ),
            ("kprobe-off", "kprobe_profile: 32000 hits, 32000 calls"),
            (
                "kretprobe",
                "kprobe_profile: 32000 hits, ring buffer: 32000 events, 32000 calls",
            ),
        ] {
            assert_eq!(measured(&m, name).2, want, "{name}");
        }
    }

    #[test]
    fn real_61_run_has_no_call_ops() {
        let m = checked(LOG_61).unwrap();
        assert_eq!(m.kernel, "6.1.0-50-arm64");
        assert!(!m.call_ops);
        assert!(matches!(m.outcomes[9], Outcome::Unavailable { .. }));
    }

    #[test]
    fn a_hook_that_did_not_fire_is_an_error() {
        assert_eq!(
            checked(NOT_FIRED),
            Err(LinuxError::NotFired {
                variant: "kprobe-off".to_string(),
                expected: "kprobe_profile 32000 hits, 0 misses".to_string(),
                found: "0 hits, 0 misses (1 probes)".to_string(),
            })
        );
        let lost = LOG_612.replace(
            "@linux function file per_cpu/cpu0/stats: entries: 32000",
            "@linux function file per_cpu/cpu0/stats: entries: 31999",
        );
        assert_eq!(
            checked(&lost).unwrap_err().to_string(),
            "variant function: the hook did not fire once per call: expected 32000 ring-buffer \
             events, found 31999"
        );
        let one_tracer = LOG_612.replace("__arm64_sys_getpid (2)", "__arm64_sys_getpid (1)");
        assert!(matches!(
            checked(&one_tracer),
            Err(LinuxError::NotFired { variant, .. }) if variant == "function-x2-off"
        ));
        // The function tracer's only evidence while not recording is enabled_functions.
        let mut detached = LOG_612.lines().collect::<Vec<_>>();
        detached.retain(|l| !l.starts_with("@linux function-off file enabled_functions"));
        assert!(matches!(
            checked(&detached.join("\n")),
            Err(LinuxError::NotFired { variant, .. }) if variant == "function-off"
        ));
        let missed = LOG_612.replace(
            "getpid_exit                                            32000               0",
            "getpid_exit                                            32000               3",
        );
        assert!(matches!(
            checked(&missed),
            Err(LinuxError::NotFired { variant, .. }) if variant == "kretprobe-off"
        ));
    }

    #[test]
    fn a_hook_that_costs_nothing_is_an_error() {
        let base: Vec<&str> = LOG_612
            .lines()
            .filter(|l| l.starts_with("@linux baseline ") && l.contains("-"))
            .collect();
        let mut same: Vec<String> = base
            .iter()
            .map(|l| l.replace("@linux baseline ", "@linux function-off "))
            .collect();
        same.push("@linux function-off calls 32000".to_string());
        same.push(
            "@linux function-off file enabled_functions: __arm64_sys_getpid (1)       O   "
                .to_string(),
        );
        same.push("@linux function-off file per_cpu/cpu0/stats: entries: 0".to_string());
        let same: Vec<&str> = same.iter().map(String::as_str).collect();
        let log = replace_variant(LOG_612, "function-off", &same);
        assert_eq!(
            checked(&log),
            Err(LinuxError::NoOverhead {
                variant: "function-off".to_string(),
                overhead: 0.0
            })
        );
    }

    #[test]
    fn incomplete_logs_are_errors() {
        let cut = &LOG_612[..LOG_612.find("@linux kretprobe calls").unwrap()];
        assert_eq!(
            checked(cut),
            Err(LinuxError::Truncated {
                last: Some("kretprobe-off".to_string())
            })
        );
        assert_eq!(
            checked("[ 0.0] Booting Linux\n"),
            Err(LinuxError::NotStarted)
        );
        let no_kprobe = replace_variant(LOG_612, "kprobe", &[]);
        assert_eq!(
            checked(&no_kprobe),
            Err(LinuxError::MissingVariant("kprobe"))
        );
        let refused = replace_variant(
            LOG_612,
            "kprobe",
            &[
                "@linux kprobe error: write 'p:pb/getpid_entry x' to kprobe_events: Invalid argument",
            ],
        );
        assert_eq!(
            checked(&refused).unwrap_err().to_string(),
            "variant kprobe: the guest reports: write 'p:pb/getpid_entry x' to kprobe_events: \
             Invalid argument"
        );
        let unavailable = replace_variant(
            LOG_612,
            "kprobe",
            &["@linux kprobe unavailable: no kprobes"],
        );
        assert!(matches!(
            checked(&unavailable),
            Err(LinuxError::Unavailable { variant, .. }) if variant == "kprobe"
        ));
        let no_cntfrq = LOG_612.replace("@linux cntfrq 62500000\n", "");
        assert_eq!(checked(&no_cntfrq), Err(LinuxError::Missing("cntfrq")));
    }

    #[test]
    fn malformed_lines_are_errors_with_their_number() {
        let log = "noise\n@linux begin\r\n@linux calls-per-sample many\n";
        assert_eq!(
            parse(log),
            Err(LinuxError::Line {
                line_no: 3,
                text: "@linux calls-per-sample many".to_string(),
                reason: "\"many\" is not a count".to_string()
            })
        );
        let err = parse("@linux kprobe clock-sample 1 2 x\n").unwrap_err();
        assert!(err.to_string().contains("\"x\" is not a count"), "{err}");
        let err = parse("@linux uprobe calls 3\n").unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown variant or keyword \"uprobe\"")
        );
        let err = parse("@linux kprobe hits 3\n").unwrap_err();
        assert!(err.to_string().contains("unknown report \"hits\""));
        let err = parse("@linux calls-per-sample 0\n").unwrap_err();
        assert!(err.to_string().contains("0 calls per sample"), "{err}");
        let err = parse("@linux pmu maybe\n").unwrap_err();
        assert!(err.to_string().contains("unknown pmu state"));
        // Kernel messages and `@linux` inside other text are not the guest's.
        let log = parse("[ 1.0] x @linux end\n@linuxend\n").unwrap();
        assert!(!log.ended);
    }

    #[test]
    fn without_the_pmu_the_clock_alone_counts() {
        let mut lines: Vec<String> = LOG_612
            .lines()
            .filter(|l| !l.contains(" pmu-"))
            .map(str::to_string)
            .collect();
        for l in &mut lines {
            if l == "@linux pmu available" {
                *l = "@linux pmu unavailable: perf_event_open: No such device".to_string();
            }
        }
        let m = checked(&lines.join("\n")).unwrap();
        assert_eq!(m.pmu, Err("perf_event_open: No such device".to_string()));
        assert_eq!(measured(&m, BASELINE).1, None);
        let recs = records(&m, &machine(), None);
        assert!(recs[0].contains(r#""pmu":"unavailable: perf_event_open: No such device""#));
        assert!(!recs.iter().any(|r| r.contains(METRIC_PMU)));
        // PMU samples after "unavailable" contradict each other.
        let log = LOG_612.replace(
            "@linux pmu available",
            "@linux pmu unavailable: perf_event_open: No such device",
        );
        assert!(matches!(checked(&log), Err(LinuxError::Samples { .. })));
    }

    #[test]
    fn records_parse_back() {
        let m = checked(LOG_612).unwrap();
        let lines = records(&m, &machine(), None);
        let console: String = lines.iter().map(|l| format!("@bench {l}\r\n")).collect();
        let run = records::parse_log(&console);
        assert_eq!(run.failures(), Vec::<String>::new());
        let h = run.header.as_ref().unwrap();
        assert_eq!(
            (h.board.as_deref(), h.cpu.as_deref()),
            (Some("linux-6.12.95+deb12-arm64"), Some("cortex-a72"))
        );
        assert_eq!(
            (h.clock.as_str(), h.mode.as_str(), h.unit.as_str()),
            ("clock_monotonic", "qemu-icount", "instructions")
        );
        assert!(h.raw.contains(r#""call_ops":true"#));
        assert!(h.raw.contains(r#""unavailable":{"fprobe":"tracefs README"#));
        // Nine variants measured, two clocks each.
        assert_eq!(run.results.len(), 18);
        assert_eq!(run.end, Some(18));
        let off = run
            .results
            .iter()
            .find(|r| r.mechanism == "function-off" && r.metric == METRIC_CLOCK)
            .unwrap();
        assert_eq!(
            (off.suite.as_str(), off.subject.as_str()),
            (SUITE, "__arm64_sys_getpid")
        );
        assert_eq!(off.baseline.as_deref(), Some(BASELINE));
        assert_eq!(
            (off.median, off.overhead, off.iters),
            (615.392, Some(176.0), 31)
        );
        assert!(
            off.raw
                .contains(r#""evidence":"enabled_functions: 1 ops, 32000 calls""#)
        );
        let base = run
            .results
            .iter()
            .find(|r| r.mechanism == BASELINE)
            .unwrap();
        assert_eq!((base.baseline.as_ref(), base.overhead), (None, None));
    }
}

#[cfg(test)]
mod repeat_tests {
    use super::tests::{LOG_612, LOGS_61, LOGS_612, RESULTS_612};
    use super::*;

    fn all(logs: &[&str]) -> Vec<Measured> {
        logs.iter()
            .map(|l| check(&parse(l).unwrap()).unwrap())
            .collect()
    }

    #[test]
    fn spread_of_the_real_runs() {
        // Every variant that does not record is identical run to run (the clock to its 16 ns
        // resolution); the recording ones move with the ring buffer's timestamps.
        let s = spread(&all(&LOGS_612)).unwrap();
        assert_eq!(
            s,
            Spread {
                runs: 3,
                call: 2.48,
                call_pmu: Some(2.464),
                widest: Some("kretprobe/call".to_string()),
            }
        );
        let s = spread(&all(&LOGS_61)).unwrap();
        assert_eq!((s.runs, s.call, s.call_pmu), (2, 0.016, Some(0.0)));
        let one = spread(&all(&[LOG_612])).unwrap();
        assert_eq!((one.call, one.call_pmu, one.widest), (0.0, Some(0.0), None));
    }

    #[test]
    fn runs_of_different_kernels_have_no_spread() {
        let err = spread(&all(&[LOG_612, LOGS_61[0]])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the repeated runs differ: 6.12.95+deb12-arm64 and 6.1.0-50-arm64 do not measure \
             the same variants with the same clocks"
        );
        assert!(spread(&[]).is_err());
    }

    /// The committed results are exactly what the committed console logs give.
    fn reproduces(logs: &[&str], committed: &str) {
        #[derive(Deserialize)]
        struct Header {
            cpu: String,
            qemu: String,
        }
        let header: Header = serde_json::from_str(committed.lines().next().unwrap()).unwrap();
        let machine = Machine {
            cpu: header.cpu,
            qemu: header.qemu,
        };
        let runs = all(logs);
        let s = spread(&runs).unwrap();
        let lines = records(&runs[0], &machine, Some(&s));
        assert_eq!(lines, committed.lines().collect::<Vec<_>>());
    }

    #[test]
    fn committed_results_come_from_the_committed_logs() {
        reproduces(&LOGS_612, RESULTS_612);
        reproduces(&LOGS_61, super::tests::RESULTS_61);
    }
}
