//! The kernel's benchmark records: parsing a console log (or a JSON-lines file) into a [`Run`].
//!
//! Every record is one console line, the literal prefix [`PREFIX`] followed by one JSON object
//! whose `type` is `header`, `result` or `end`. Everything else on the console is ignored. A
//! record that cannot be understood becomes a [`Problem`] (never a panic), so a report can say
//! exactly which line is wrong. The prefix, the version, the record types and the field names
//! are `patchbay_wire::bench`'s, the same the kernel writes with.
//!
//! Pure: no I/O except [`load`].

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use anyhow::{Context, Result};
pub use patchbay_wire::bench::PREFIX;
use patchbay_wire::bench::{field, kind};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// The only header `version` this parser understands.
pub const VERSION: u64 = patchbay_wire::bench::VERSION as u64;

/// The run's first record: what was measured, where and how.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    pub version: u64,
    /// `pmccntr` or `cntvct`.
    pub clock: String,
    /// `qemu-icount`, `qemu` or `hardware`.
    pub mode: String,
    /// `instructions` (icount), `cycles` (hardware) or `ticks`.
    pub unit: String,
    pub git: Option<String>,
    pub board: Option<String>,
    pub cpu: Option<String>,
    pub midr: Option<String>,
    pub ctr_el0: Option<String>,
    /// The cost of one clock read, already subtracted from every measurement.
    pub read_cost: Option<f64>,
    /// `qemu-<version>` or `none` (a board); absent in records older than the field.
    pub emulator: Option<String>,
    /// CPUs online while the suite ran.
    pub cpus: Option<u64>,
    /// The build variant (`plain`, …).
    pub build: Option<String>,
    /// The JSON object exactly as the kernel wrote it.
    pub raw: String,
    /// 1-based line number in the parsed text.
    pub line_no: usize,
}

/// One measurement: statistics over `iters` iterations of one (mechanism, subject, metric).
#[derive(Clone, Debug, PartialEq)]
pub struct BenchResult {
    pub suite: String,
    pub mechanism: String,
    pub subject: String,
    pub metric: String,
    pub unit: String,
    pub iters: u64,
    pub min: f64,
    pub median: f64,
    pub mean: f64,
    pub p99: f64,
    pub max: f64,
    /// The mechanism `overhead` is measured against, if any.
    pub baseline: Option<String>,
    /// `median` minus the baseline's median (same unit), if there is a baseline.
    pub overhead: Option<f64>,
    /// Suite `ops-scaling`: how many ops apply to the traced function.
    pub relevant: Option<u64>,
    /// Suite `ops-scaling`: how many ops are registered for other functions.
    pub irrelevant: Option<u64>,
    /// Suite `patch-latency`: sites patched at once (statistics are per site).
    pub batch: Option<u64>,
    /// The JSON object exactly as the kernel wrote it.
    pub raw: String,
    /// 1-based line number in the parsed text.
    pub line_no: usize,
}

/// A field of a record: `missing field` if absent, serde's message if of the wrong type.
fn required<T: DeserializeOwned>(object: &Map<String, Value>, name: &str) -> Result<T, String> {
    let value = object
        .get(name)
        .ok_or_else(|| format!("missing field `{name}`"))?;
    T::deserialize(value).map_err(|e| e.to_string())
}

/// An optional field of a record: `None` if absent or `null`.
fn optional<T: DeserializeOwned>(
    object: &Map<String, Value>,
    name: &str,
) -> Result<Option<T>, String> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => T::deserialize(value).map(Some).map_err(|e| e.to_string()),
    }
}

impl Header {
    fn from_object(o: &Map<String, Value>, raw: String) -> Result<Self, String> {
        Ok(Header {
            version: required(o, field::VERSION)?,
            clock: required(o, field::CLOCK)?,
            mode: required(o, field::MODE)?,
            unit: required(o, field::UNIT)?,
            git: optional(o, field::GIT)?,
            board: optional(o, field::BOARD)?,
            cpu: optional(o, field::CPU)?,
            midr: optional(o, field::MIDR)?,
            ctr_el0: optional(o, field::CTR_EL0)?,
            read_cost: optional(o, field::READ_COST)?,
            emulator: optional(o, field::EMULATOR)?,
            cpus: optional(o, field::CPUS)?,
            build: optional(o, field::BUILD)?,
            raw,
            line_no: 0,
        })
    }
}

/// What identifies a result across runs.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub suite: String,
    pub mechanism: String,
    pub subject: String,
    pub metric: String,
    pub relevant: Option<u64>,
    pub irrelevant: Option<u64>,
    pub batch: Option<u64>,
}

impl BenchResult {
    fn from_object(o: &Map<String, Value>, raw: String) -> Result<Self, String> {
        Ok(BenchResult {
            suite: required(o, field::SUITE)?,
            mechanism: required(o, field::MECHANISM)?,
            subject: required(o, field::SUBJECT)?,
            metric: required(o, field::METRIC)?,
            unit: required(o, field::UNIT)?,
            iters: required(o, field::ITERS)?,
            min: required(o, field::MIN)?,
            median: required(o, field::MEDIAN)?,
            mean: required(o, field::MEAN)?,
            p99: required(o, field::P99)?,
            max: required(o, field::MAX)?,
            baseline: optional(o, field::BASELINE)?,
            overhead: optional(o, field::OVERHEAD)?,
            relevant: optional(o, field::RELEVANT)?,
            irrelevant: optional(o, field::IRRELEVANT)?,
            batch: optional(o, field::BATCH)?,
            raw,
            line_no: 0,
        })
    }

    pub fn key(&self) -> Key {
        Key {
            suite: self.suite.clone(),
            mechanism: self.mechanism.clone(),
            subject: self.subject.clone(),
            metric: self.metric.clone(),
            relevant: self.relevant,
            irrelevant: self.irrelevant,
            batch: self.batch,
        }
    }
}

impl fmt::Display for Key {
    /// `suite/mechanism/subject/metric`, then the optional fields that are set, e.g.
    /// `ops-scaling/list/leaf/call relevant=1 irrelevant=8`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.suite, self.mechanism, self.subject, self.metric
        )?;
        for (name, value) in [
            ("relevant", self.relevant),
            ("irrelevant", self.irrelevant),
            ("batch", self.batch),
        ] {
            if let Some(v) = value {
                write!(f, " {name}={v}")?;
            }
        }
        Ok(())
    }
}

/// One parsed record line.
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    Header(Header),
    Result(BenchResult),
    /// The number of result records the kernel emitted.
    End(usize),
}

/// A record line that could not be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line number in the parsed text.
    pub line_no: usize,
    /// The line, without its terminator.
    pub text: String,
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 160;
        let text: String = self.text.chars().take(SHOWN).collect();
        let more = if self.text.chars().count() > SHOWN {
            "..."
        } else {
            ""
        };
        write!(f, "line {}: {}: {text}{more}", self.line_no, self.reason)
    }
}

/// Where a run was parsed from; decides whether a missing end record means truncation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A console log: records are `@bench ` lines and must close with an end record.
    Console,
    /// A JSON-lines file as `pb bench` writes it (header, then results; no end record needed).
    JsonLines,
}

/// Everything found in one log.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    pub header: Option<Header>,
    pub results: Vec<BenchResult>,
    /// The end record's count, if the log has one.
    pub end: Option<usize>,
    pub problems: Vec<Problem>,
    pub format: Format,
}

impl Run {
    fn new(format: Format) -> Self {
        Run {
            header: None,
            results: Vec::new(),
            end: None,
            problems: Vec::new(),
            format,
        }
    }

    /// Whether records are missing: a console log without end record, or fewer results than
    /// the end record counts.
    pub fn truncated(&self) -> bool {
        match self.end {
            None => self.format == Format::Console,
            Some(n) => self.results.len() < n,
        }
    }

    /// What makes this run unusable as a benchmark result, one message each; empty if none.
    pub fn failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        if !self.problems.is_empty() {
            let n = self.problems.len();
            failures.push(format!(
                "{n} bad record line{} in the log",
                if n == 1 { "" } else { "s" }
            ));
        }
        if self.header.is_none() {
            failures.push("no header record".to_string());
        }
        let parsed = self.results.len();
        match self.end {
            None if self.truncated() => failures.push(format!(
                "no end record: the log is truncated ({parsed} result records parsed)"
            )),
            Some(n) if self.truncated() => failures.push(format!(
                "the log is truncated: the end record counts {n} result records, {parsed} parsed"
            )),
            Some(n) if parsed > n => failures.push(format!(
                "the end record counts {n} result records, but {parsed} were parsed"
            )),
            _ => {}
        }
        failures
    }
}

/// Decodes one JSON object (the text after the prefix).
pub fn parse_record(json: &str) -> Result<Record, String> {
    let value: Value = serde_json::from_str(json).map_err(|e| format!("invalid JSON: {e}"))?;
    let Value::Object(object) = &value else {
        return Err("not a JSON object".to_string());
    };
    let kind = match object.get(field::TYPE) {
        Some(Value::String(kind)) => kind.clone(),
        Some(_) => return Err(format!("field `{}` is not a string", field::TYPE)),
        None => return Err(format!("missing field `{}`", field::TYPE)),
    };
    let raw = json.trim().to_string();
    match kind.as_str() {
        kind::HEADER => {
            let header = Header::from_object(object, raw).map_err(|e| format!("header: {e}"))?;
            if header.version != VERSION {
                return Err(format!(
                    "header: unsupported version {} (pb reads version {VERSION})",
                    header.version
                ));
            }
            Ok(Record::Header(header))
        }
        kind::RESULT => {
            let result =
                BenchResult::from_object(object, raw).map_err(|e| format!("result: {e}"))?;
            Ok(Record::Result(result))
        }
        kind::END => {
            let records = required(object, field::RECORDS).map_err(|e| format!("end: {e}"))?;
            Ok(Record::End(records))
        }
        other => Err(format!("unknown record type {other:?}")),
    }
}

/// The record on one console line: `None` if the line is not a record line (no prefix).
/// Leading whitespace and a trailing `\r` are tolerated.
pub fn parse_line(line: &str) -> Option<Result<Record, String>> {
    let json = line.trim_start().strip_prefix(PREFIX)?;
    Some(parse_record(json))
}

/// Collects records into a run, checking their order.
struct Builder {
    run: Run,
    /// Where each key was first seen.
    seen: HashMap<Key, usize>,
}

impl Builder {
    fn new(format: Format) -> Self {
        Builder {
            run: Run::new(format),
            seen: HashMap::new(),
        }
    }

    fn problem(&mut self, line_no: usize, text: &str, reason: String) {
        self.run.problems.push(Problem {
            line_no,
            text: text.to_string(),
            reason,
        });
    }

    fn add(&mut self, line_no: usize, text: &str, parsed: Result<Record, String>) {
        match parsed {
            Err(reason) => self.problem(line_no, text, reason),
            Ok(Record::Header(mut header)) => {
                if let Some(first) = &self.run.header {
                    let reason =
                        format!("a second header (the first is on line {})", first.line_no);
                    self.problem(line_no, text, reason);
                } else {
                    header.line_no = line_no;
                    self.run.header = Some(header);
                }
            }
            Ok(Record::Result(mut result)) => {
                result.line_no = line_no;
                let key = result.key();
                if let Some(first) = self.seen.get(&key) {
                    let reason = format!("duplicate result {key} (first on line {first})");
                    self.problem(line_no, text, reason);
                } else {
                    self.seen.insert(key, line_no);
                    self.run.results.push(result);
                }
            }
            Ok(Record::End(n)) => {
                if self.run.end.is_some() {
                    self.problem(line_no, text, "a second end record".to_string());
                } else {
                    self.run.end = Some(n);
                }
            }
        }
    }
}

/// Parses a console log: `@bench ` lines are records, any other line is ignored. Handles `\n`
/// and `\r\n` line endings.
pub fn parse_log(text: &str) -> Run {
    let mut builder = Builder::new(Format::Console);
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if let Some(parsed) = parse_line(line) {
            builder.add(i + 1, line, parsed);
        }
    }
    builder.run
}

/// Parses a JSON-lines file: every non-blank line is one record (bare, or with the `@bench `
/// prefix).
pub fn parse_jsonl(text: &str) -> Run {
    let mut builder = Builder::new(Format::JsonLines);
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        let json = line.trim_start();
        if json.trim_end().is_empty() {
            continue;
        }
        let json = json.strip_prefix(PREFIX).unwrap_or(json);
        builder.add(i + 1, line, parse_record(json));
    }
    builder.run
}

/// Parses either kind: a console log if any line carries the `@bench ` prefix, else a JSON-lines
/// file if the first non-blank line is a JSON object, else a console log (with no records).
pub fn parse_any(text: &str) -> Run {
    let has_prefix = text.lines().any(|l| l.trim_start().starts_with(PREFIX));
    let first = text.lines().map(str::trim).find(|l| !l.is_empty());
    if !has_prefix && first.is_some_and(|l| l.starts_with('{')) {
        parse_jsonl(text)
    } else {
        parse_log(text)
    }
}

/// Reads and parses a saved console log or JSON-lines file (`.jsonl` is always JSON lines).
pub fn load(path: &Path) -> Result<Run> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    let jsonl = path.extension().is_some_and(|e| e == "jsonl");
    Ok(if jsonl {
        parse_jsonl(&text)
    } else {
        parse_any(&text)
    })
}

/// Formats a number as the records spell it: integers without a fractional part.
pub fn num(x: f64) -> String {
    if x == 0.0 {
        "0".to_string() // no "-0"
    } else {
        x.to_string()
    }
}

/// The distinct values of `f` over `items`, in order of first appearance.
pub fn distinct<'a, T, K: PartialEq>(
    items: impl IntoIterator<Item = &'a T>,
    f: impl Fn(&T) -> K,
) -> Vec<K>
where
    T: 'a,
{
    let mut out: Vec<K> = Vec::new();
    for item in items {
        let k = f(item);
        if !out.contains(&k) {
            out.push(k);
        }
    }
    out
}

#[cfg(test)]
pub mod tests {
    use super::*;

    pub const HEADER: &str = r#"{"type":"header","version":1,"git":"7e91686","board":"qemu_virt","cpu":"Cortex-A72","midr":"0x410fd083","ctr_el0":"0x8444c004","clock":"pmccntr","mode":"qemu-icount","unit":"instructions","read_cost":6}"#;

    /// A result line's JSON with the given fields.
    pub fn result(suite: &str, mechanism: &str, subject: &str, median: u64, extra: &str) -> String {
        format!(
            r#"{{"type":"result","suite":"{suite}","mechanism":"{mechanism}","subject":"{subject}","metric":"call","unit":"instructions","iters":1000,"min":{median},"median":{median},"mean":{median}.0,"p99":{median},"max":{median}{extra}}}"#
        )
    }

    /// A small, complete console log: noise, header, three results, end; `\r\n` endings.
    pub fn small_log() -> String {
        [
            "patchbay booting\r".to_string(),
            format!("@bench {HEADER}\r"),
            "bench: running suite mechanisms\r".to_string(),
            format!(
                "@bench {}\r",
                result(
                    "mechanisms",
                    "twin",
                    "leaf",
                    7,
                    r#","baseline":null,"overhead":null"#
                )
            ),
            format!(
                "@bench {}\r",
                result(
                    "mechanisms",
                    "off",
                    "leaf",
                    9,
                    r#","baseline":"twin","overhead":2"#
                )
            ),
            format!(
                "@bench {}\r",
                result(
                    "ops-scaling",
                    "list",
                    "leaf",
                    40,
                    r#","baseline":null,"overhead":null,"relevant":1,"irrelevant":8"#
                )
            ),
            r#"@bench {"type":"end","records":3}"#.to_string(),
            "bye".to_string(),
        ]
        .join("\n")
    }

    #[test]
    fn good_log_with_crlf() {
        let run = parse_log(&small_log());
        assert_eq!(run.problems, []);
        let h = run.header.as_ref().unwrap();
        assert_eq!(
            (h.clock.as_str(), h.mode.as_str(), h.unit.as_str()),
            ("pmccntr", "qemu-icount", "instructions")
        );
        assert_eq!(h.git.as_deref(), Some("7e91686"));
        assert_eq!(h.read_cost, Some(6.0));
        assert_eq!(h.raw, HEADER, "raw is verbatim, without the \\r");
        assert_eq!(h.line_no, 2);
        assert_eq!(run.results.len(), 3);
        let off = &run.results[1];
        assert_eq!(off.mechanism, "off");
        assert_eq!((off.median, off.mean, off.iters), (9.0, 9.0, 1000));
        assert_eq!(off.baseline.as_deref(), Some("twin"));
        assert_eq!(off.overhead, Some(2.0));
        assert_eq!(off.line_no, 5);
        assert_eq!(run.results[0].baseline, None);
        assert_eq!(run.results[0].overhead, None);
        let ops = &run.results[2];
        assert_eq!(
            (ops.relevant, ops.irrelevant, ops.batch),
            (Some(1), Some(8), None)
        );
        assert_eq!(run.end, Some(3));
        assert!(!run.truncated());
        assert_eq!(run.failures(), Vec::<String>::new());
    }

    /// The kernel's writers (`patchbay_wire::bench`) into a console log, then this parser: every
    /// field comes back.
    #[test]
    fn round_trip_with_the_kernel_writer() {
        use patchbay_board::ClockMode;
        use patchbay_pure::stats::Summary;
        use patchbay_wire::bench::{self as wire, End};

        let header = wire::Header {
            git: "7e91686-dirty",
            board: "rpi4",
            cpu: "Cortex-A72",
            midr: 0x410f_d083,
            ctr_el0: 0x8444_c004,
            clock: "pmccntr",
            mode: ClockMode::Hardware,
            unit: "cycles",
            read_cost: 6,
            emulator: "none",
            cpus: 4,
            build: "plain",
        };
        let summary = Summary {
            n: 201,
            min: 8,
            median: 9,
            mean: 9.126,
            p99: 12,
            max: 40,
        };
        let plain = wire::BenchResult::new("mechanisms", "twin", "leaf", "call", summary);
        let mut full = wire::BenchResult::new("ops-scaling", "list \"q\"", "leaf", "call", summary);
        full.baseline = Some(("twin", 11));
        (full.relevant, full.irrelevant, full.batch) = (Some(1), Some(8), Some(64));
        let log = format!(
            "noise\r\n{PREFIX}{header}\r\n{PREFIX}{}\r\n{PREFIX}{}\r\n{PREFIX}{}\r\n",
            plain.record("cycles"),
            full.record("cycles"),
            End { records: 2 }
        );
        let run = parse_log(&log);
        assert_eq!(run.problems, []);
        assert_eq!(run.end, Some(2));
        let h = run.header.unwrap();
        assert_eq!(
            (
                h.version,
                h.git.as_deref(),
                h.board.as_deref(),
                h.cpu.as_deref()
            ),
            (
                VERSION,
                Some("7e91686-dirty"),
                Some("rpi4"),
                Some("Cortex-A72")
            )
        );
        assert_eq!(
            (h.midr.as_deref(), h.ctr_el0.as_deref()),
            (Some("0x410fd083"), Some("0x8444c004"))
        );
        assert_eq!(
            (
                h.clock.as_str(),
                h.mode.as_str(),
                h.unit.as_str(),
                h.read_cost
            ),
            ("pmccntr", "hardware", "cycles", Some(6.0))
        );
        assert_eq!(
            (h.emulator.as_deref(), h.cpus, h.build.as_deref()),
            (Some("none"), Some(4), Some("plain"))
        );
        let [p, f] = &run.results[..] else {
            panic!("{:?}", run.results)
        };
        for (r, mechanism) in [(p, "twin"), (f, "list \"q\"")] {
            assert_eq!(
                (r.suite.as_str(), r.mechanism.as_str(), r.subject.as_str()),
                (
                    if mechanism == "twin" {
                        "mechanisms"
                    } else {
                        "ops-scaling"
                    },
                    mechanism,
                    "leaf"
                )
            );
            assert_eq!(
                (r.metric.as_str(), r.unit.as_str(), r.iters),
                ("call", "cycles", 201)
            );
            assert_eq!(
                (r.min, r.median, r.mean, r.p99, r.max),
                (8.0, 9.0, 9.13, 12.0, 40.0),
                "the mean is written with two decimals"
            );
        }
        assert_eq!(
            (
                p.baseline.as_deref(),
                p.overhead,
                p.relevant,
                p.irrelevant,
                p.batch
            ),
            (None, None, None, None, None)
        );
        assert_eq!(
            (
                f.baseline.as_deref(),
                f.overhead,
                f.relevant,
                f.irrelevant,
                f.batch
            ),
            (Some("twin"), Some(-2.0), Some(1), Some(8), Some(64))
        );
    }

    #[test]
    fn other_lines_are_ignored() {
        let run = parse_log("hello\n@benchmark {}\nx @bench {\"type\":\"end\"}\n@bench{}\n");
        assert_eq!(run.problems, []);
        assert_eq!(run.end, None);
        assert!(run.results.is_empty());
    }

    #[test]
    fn optional_fields_may_be_missing() {
        let run = parse_log(&format!(
            "@bench {}\n@bench {}\n@bench {{\"type\":\"end\",\"records\":1}}\n",
            r#"{"type":"header","version":1,"clock":"cntvct","mode":"hardware","unit":"ticks"}"#,
            result("mechanisms", "off", "gen", 3, r#","future_field":[1,2]"#)
        ));
        assert_eq!(run.problems, []);
        let h = run.header.unwrap();
        assert_eq!((h.git, h.read_cost), (None, None));
        assert_eq!(run.results[0].baseline, None);
        assert_eq!(run.results[0].overhead, None);
    }

    fn only_problem(line: &str) -> Problem {
        let run = parse_log(&format!("noise\n{line}\n"));
        assert_eq!(run.problems.len(), 1, "{:?}", run.problems);
        assert!(run.results.is_empty() && run.header.is_none() && run.end.is_none());
        let p = run.problems[0].clone();
        assert_eq!(p.line_no, 2);
        assert_eq!(p.text, line);
        p
    }

    #[test]
    fn truncated_line() {
        let p = only_problem(r#"@bench {"type":"result","suite":"mechanisms","mecha"#);
        assert!(p.reason.starts_with("invalid JSON: EOF"), "{}", p.reason);
    }

    #[test]
    fn garbage_json() {
        let p = only_problem("@bench hello world");
        assert!(p.reason.starts_with("invalid JSON"), "{}", p.reason);
        let p = only_problem(r#"@bench {"type":"end","records":1} trailing"#);
        assert!(p.reason.contains("trailing characters"), "{}", p.reason);
        let p = only_problem("@bench [1,2]");
        assert_eq!(p.reason, "not a JSON object");
        let p = only_problem("@bench ");
        assert!(p.reason.starts_with("invalid JSON"), "{}", p.reason);
        let p = only_problem("@bench {\"type\":\"header\",\"clock\":\"\u{fffd}\"");
        assert!(p.reason.starts_with("invalid JSON"), "{}", p.reason);
    }

    #[test]
    fn wrong_field_types() {
        let p = only_problem(&format!(
            "@bench {}",
            result("mechanisms", "off", "leaf", 9, "").replace("\"median\":9", "\"median\":\"9\"")
        ));
        assert!(
            p.reason.starts_with("result: invalid type: string \"9\""),
            "{}",
            p.reason
        );
        let p = only_problem(&format!(
            "@bench {}",
            result("mechanisms", "off", "leaf", 9, "").replace("\"iters\":1000", "\"iters\":-1")
        ));
        assert!(
            p.reason.starts_with("result: invalid value"),
            "{}",
            p.reason
        );
        let p = only_problem(&format!(
            "@bench {}",
            result("ops-scaling", "off", "leaf", 9, r#","relevant":1.5"#)
        ));
        assert!(p.reason.starts_with("result: invalid type"), "{}", p.reason);
        let p = only_problem(r#"@bench {"type":"end","records":"3"}"#);
        assert!(p.reason.starts_with("end: invalid type"), "{}", p.reason);
        let p = only_problem(r#"@bench {"type":7}"#);
        assert_eq!(p.reason, "field `type` is not a string");
        let p = only_problem(
            &HEADER
                .replace("\"version\":1", "\"version\":2")
                .replace("{", "@bench {"),
        );
        assert!(p.reason.contains("unsupported version 2"), "{}", p.reason);
    }

    #[test]
    fn missing_fields() {
        let p = only_problem(&format!(
            "@bench {}",
            result("mechanisms", "off", "leaf", 9, "").replace(",\"median\":9", "")
        ));
        assert_eq!(p.reason, "result: missing field `median`");
        let p = only_problem(&format!(
            "@bench {}",
            HEADER.replace(",\"unit\":\"instructions\"", "")
        ));
        assert_eq!(p.reason, "header: missing field `unit`");
        let p = only_problem(r#"@bench {"records":3}"#);
        assert_eq!(p.reason, "missing field `type`");
    }

    #[test]
    fn unknown_type() {
        let p = only_problem(r#"@bench {"type":"footer","records":3}"#);
        assert_eq!(p.reason, "unknown record type \"footer\"");
    }

    #[test]
    fn second_header_and_end_and_duplicates() {
        let dup = result("mechanisms", "off", "leaf", 9, "");
        let log = format!(
            "@bench {HEADER}\n@bench {dup}\n@bench {HEADER}\n@bench {dup}\n\
             @bench {{\"type\":\"end\",\"records\":1}}\n@bench {{\"type\":\"end\",\"records\":1}}\n"
        );
        let run = parse_log(&log);
        assert_eq!(run.header.as_ref().unwrap().line_no, 1);
        assert_eq!(run.results.len(), 1);
        let reasons: Vec<_> = run
            .problems
            .iter()
            .map(|p| (p.line_no, p.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            [
                (3, "a second header (the first is on line 1)"),
                (
                    4,
                    "duplicate result mechanisms/off/leaf/call (first on line 2)"
                ),
                (6, "a second end record"),
            ]
        );
        assert_eq!(run.failures(), ["3 bad record lines in the log"]);
    }

    #[test]
    fn missing_end_means_truncated() {
        let log = small_log();
        let cut = &log[..log.find("@bench {\"type\":\"end\"").unwrap()];
        let run = parse_log(cut);
        assert_eq!(run.problems, []);
        assert_eq!(run.end, None);
        assert!(run.truncated());
        assert_eq!(
            run.failures(),
            ["no end record: the log is truncated (3 result records parsed)"]
        );
    }

    #[test]
    fn end_count_mismatch() {
        let log = small_log().replace("\"records\":3", "\"records\":5");
        let run = parse_log(&log);
        assert!(run.truncated());
        assert_eq!(
            run.failures(),
            ["the log is truncated: the end record counts 5 result records, 3 parsed"]
        );
        let run = parse_log(&small_log().replace("\"records\":3", "\"records\":2"));
        assert!(!run.truncated());
        assert_eq!(
            run.failures(),
            ["the end record counts 2 result records, but 3 were parsed"]
        );
    }

    #[test]
    fn no_header() {
        let run = parse_log("@bench {\"type\":\"end\",\"records\":0}\n");
        assert_eq!(run.failures(), ["no header record"]);
    }

    #[test]
    fn jsonl() {
        let text = format!(
            "{HEADER}\n\n{}\n@bench {}\r\nnot json\n",
            result("mechanisms", "off", "leaf", 9, ""),
            result("mechanisms", "twin", "leaf", 7, "")
        );
        let run = parse_jsonl(&text);
        assert_eq!(run.format, Format::JsonLines);
        assert!(run.header.is_some());
        assert_eq!(run.results.len(), 2);
        assert_eq!(run.results[1].line_no, 4);
        assert_eq!(run.problems.len(), 1);
        assert_eq!(run.problems[0].line_no, 5);
        assert!(!run.truncated(), "JSON lines need no end record");
        let pure = format!("{HEADER}\n{}\n", result("mechanisms", "off", "leaf", 9, ""));
        assert_eq!(parse_any(&pure).format, Format::JsonLines);
        assert_eq!(parse_any(&pure).results.len(), 1);
        assert_eq!(parse_any(&small_log()).format, Format::Console);
        assert_eq!(parse_any("").format, Format::Console);
    }

    #[test]
    fn key_display() {
        let run = parse_log(&small_log());
        assert_eq!(
            run.results[0].key().to_string(),
            "mechanisms/twin/leaf/call"
        );
        assert_eq!(
            run.results[2].key().to_string(),
            "ops-scaling/list/leaf/call relevant=1 irrelevant=8"
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(num(9.0), "9");
        assert_eq!(num(-0.0), "0");
        assert_eq!(num(2.5), "2.5");
        assert_eq!(num(-3.0), "-3");
    }

    #[test]
    fn problem_display_is_short() {
        let p = Problem {
            line_no: 3,
            text: "x".repeat(200),
            reason: "bad".into(),
        };
        let s = p.to_string();
        assert!(
            s.starts_with("line 3: bad: xxx") && s.ends_with("x..."),
            "{s}"
        );
        assert_eq!(s.len(), "line 3: bad: ".len() + 160 + 3);
    }
}
