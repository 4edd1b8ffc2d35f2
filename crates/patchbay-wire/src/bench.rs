//! Benchmark records: one console line each, [`PREFIX`] followed by one JSON object whose `type`
//! is `header`, `result` or `end`. The kernel writes them (`src/bench/record.rs`, with the types
//! here); `pb bench` / `pb parse` / `pb compare` read them (`tools/pb/src/records.rs`, with the
//! field names here). The README's record-format section documents every field.
//!
//! ```text
//! @bench {"type":"header","version":1,"git":"…","board":"qemu_virt","cpu":"Cortex-A72","midr":"0x410fd083","ctr_el0":"0x8444c004","clock":"pmccntr","mode":"qemu-icount","unit":"instructions","read_cost":6}
//! @bench {"type":"result","suite":"mechanisms","mechanism":"off","subject":"leaf","metric":"call","unit":"instructions","iters":201,"min":9,"median":9,"mean":9.00,"p99":9,"max":9,"baseline":"twin","overhead":2}
//! @bench {"type":"end","records":42}
//! ```
//!
//! Writing needs no allocation: each record is a [`fmt::Display`] that writes the object.

use core::fmt::{self, Display, Write};

use patchbay_board::ClockMode;
use patchbay_pure::stats::Summary;

/// What starts a record line on the console.
pub const PREFIX: &str = "@bench ";

/// The header's `version`: bump it when a field changes meaning or disappears.
pub const VERSION: u32 = 1;

/// The `type` of each record.
pub mod kind {
    pub const HEADER: &str = "header";
    pub const RESULT: &str = "result";
    pub const END: &str = "end";
}

/// Field names, in the order the kernel writes them.
pub mod field {
    pub const TYPE: &str = "type";
    // header
    pub const VERSION: &str = "version";
    pub const GIT: &str = "git";
    pub const BOARD: &str = "board";
    pub const CPU: &str = "cpu";
    pub const MIDR: &str = "midr";
    pub const CTR_EL0: &str = "ctr_el0";
    pub const CLOCK: &str = "clock";
    pub const MODE: &str = "mode";
    /// Header and result.
    pub const UNIT: &str = "unit";
    pub const READ_COST: &str = "read_cost";
    /// Header: the emulator and its version (`qemu-10.0.2`), or `none` on a board.
    pub const EMULATOR: &str = "emulator";
    /// Header: CPUs online while the suite ran.
    pub const CPUS: &str = "cpus";
    /// Header: the build variant (`plain`; hardened builds say what they enforce).
    pub const BUILD: &str = "build";
    // result
    pub const SUITE: &str = "suite";
    pub const MECHANISM: &str = "mechanism";
    pub const SUBJECT: &str = "subject";
    pub const METRIC: &str = "metric";
    pub const ITERS: &str = "iters";
    pub const MIN: &str = "min";
    pub const MEDIAN: &str = "median";
    pub const MEAN: &str = "mean";
    pub const P99: &str = "p99";
    pub const MAX: &str = "max";
    pub const BASELINE: &str = "baseline";
    pub const OVERHEAD: &str = "overhead";
    pub const RELEVANT: &str = "relevant";
    pub const IRRELEVANT: &str = "irrelevant";
    pub const BATCH: &str = "batch";
    // end
    pub const RECORDS: &str = "records";
}

/// The header record: where and with which clock the numbers were produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header<'a> {
    /// The kernel's revision (`git describe`-style).
    pub git: &'a str,
    pub board: &'a str,
    pub cpu: &'a str,
    pub midr: u64,
    pub ctr_el0: u64,
    /// The clock source: `pmccntr` or `cntvct`.
    pub clock: &'a str,
    pub mode: ClockMode,
    /// What one tick is: `instructions`, `cycles` or `ticks`.
    pub unit: &'a str,
    /// The cost of one clock read, already subtracted from every measurement.
    pub read_cost: u64,
    /// `qemu-<version>` as the runner told the kernel, or `none` (a board).
    pub emulator: &'a str,
    /// CPUs online while the suite ran.
    pub cpus: u32,
    /// The build variant.
    pub build: &'a str,
}

impl Display for Header<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut o = Object::open(f, kind::HEADER)?;
        o.field(field::VERSION, VERSION)?;
        o.field(field::GIT, Str(self.git))?;
        o.field(field::BOARD, Str(self.board))?;
        o.field(field::CPU, Str(self.cpu))?;
        o.field(field::MIDR, format_args!("\"{:#010x}\"", self.midr))?;
        o.field(field::CTR_EL0, format_args!("\"{:#010x}\"", self.ctr_el0))?;
        o.field(field::CLOCK, Str(self.clock))?;
        o.field(field::MODE, Str(self.mode.name()))?;
        o.field(field::UNIT, Str(self.unit))?;
        o.field(field::READ_COST, self.read_cost)?;
        o.field(field::EMULATOR, Str(self.emulator))?;
        o.field(field::CPUS, self.cpus)?;
        o.field(field::BUILD, Str(self.build))?;
        o.close()
    }
}

/// One result: statistics over the iterations of one (suite, mechanism, subject, metric).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BenchResult<'a> {
    pub suite: &'a str,
    pub mechanism: &'a str,
    pub subject: &'a str,
    pub metric: &'a str,
    pub summary: Summary,
    /// The mechanism this one is compared with, and its median.
    pub baseline: Option<(&'a str, u64)>,
    /// Suite `ops-scaling`: ops that apply to the traced function / registered for others.
    pub relevant: Option<u32>,
    pub irrelevant: Option<u32>,
    /// Suite `patch-latency`: sites patched at once (the statistics are per site).
    pub batch: Option<u32>,
}

impl<'a> BenchResult<'a> {
    pub fn new(
        suite: &'a str,
        mechanism: &'a str,
        subject: &'a str,
        metric: &'a str,
        summary: Summary,
    ) -> Self {
        BenchResult {
            suite,
            mechanism,
            subject,
            metric,
            summary,
            baseline: None,
            relevant: None,
            irrelevant: None,
            batch: None,
        }
    }

    /// The record, its numbers in `unit`.
    pub fn record(&self, unit: &'a str) -> ResultRecord<'_> {
        ResultRecord { result: self, unit }
    }
}

/// A [`BenchResult`] with its unit: the `result` record.
pub struct ResultRecord<'a> {
    result: &'a BenchResult<'a>,
    unit: &'a str,
}

impl Display for ResultRecord<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.result;
        let s = &r.summary;
        let mut o = Object::open(f, kind::RESULT)?;
        o.field(field::SUITE, Str(r.suite))?;
        o.field(field::MECHANISM, Str(r.mechanism))?;
        o.field(field::SUBJECT, Str(r.subject))?;
        o.field(field::METRIC, Str(r.metric))?;
        o.field(field::UNIT, Str(self.unit))?;
        o.field(field::ITERS, s.n)?;
        o.field(field::MIN, s.min)?;
        o.field(field::MEDIAN, s.median)?;
        o.field(field::MEAN, format_args!("{:.2}", s.mean))?;
        o.field(field::P99, s.p99)?;
        o.field(field::MAX, s.max)?;
        o.field(field::BASELINE, Null(r.baseline.map(|(name, _)| Str(name))))?;
        let overhead = r
            .baseline
            .map(|(_, median)| s.median as i64 - median as i64);
        o.field(field::OVERHEAD, Null(overhead))?;
        for (name, value) in [
            (field::RELEVANT, r.relevant),
            (field::IRRELEVANT, r.irrelevant),
            (field::BATCH, r.batch),
        ] {
            if let Some(v) = value {
                o.field(name, v)?;
            }
        }
        o.close()
    }
}

/// The end record: how many results were emitted, so a truncated log is detectable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct End {
    pub records: usize,
}

impl Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut o = Object::open(f, kind::END)?;
        o.field(field::RECORDS, self.records)?;
        o.close()
    }
}

/// A JSON object being written: `{"type":KIND` then `,"name":value` per field, then `}`.
struct Object<'f, 'g>(&'f mut fmt::Formatter<'g>);

impl<'f, 'g> Object<'f, 'g> {
    fn open(f: &'f mut fmt::Formatter<'g>, kind: &str) -> Result<Self, fmt::Error> {
        write!(f, "{{\"{}\":{}", field::TYPE, Str(kind))?;
        Ok(Object(f))
    }

    /// `value` is written as is: numbers, or [`Str`] / [`Null`] for JSON strings and nulls.
    fn field(&mut self, name: &str, value: impl Display) -> fmt::Result {
        write!(self.0, ",\"{name}\":{value}")
    }

    fn close(self) -> fmt::Result {
        self.0.write_char('}')
    }
}

/// A JSON string value (escapes `"`, `\` and control characters).
struct Str<'a>(&'a str);

impl Display for Str<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
                c => f.write_char(c)?,
            }
        }
        f.write_char('"')
    }
}

/// A JSON value or `null`.
struct Null<T>(Option<T>);

impl<T: Display> Display for Null<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(v) => v.fmt(f),
            None => f.write_str("null"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(median: u64) -> Summary {
        Summary {
            n: 201,
            min: median - 1,
            median,
            mean: median as f64 + 1.0 / 3.0,
            p99: median + 1,
            max: median + 2,
        }
    }

    /// The kernel's lines, byte for byte (the header gained `emulator`, `cpus` and `build` at its
    /// end after the writer moved into this crate).
    #[test]
    fn the_text_is_unchanged() {
        let h = Header {
            git: "7e91686",
            board: "qemu_virt",
            cpu: "Cortex-A72",
            midr: 0x410f_d083,
            ctr_el0: 0x8444_c004,
            clock: "pmccntr",
            mode: ClockMode::QemuIcount,
            unit: "instructions",
            read_cost: 6,
            emulator: "qemu-10.0.2",
            cpus: 1,
            build: "plain",
        };
        assert_eq!(
            h.to_string(),
            r#"{"type":"header","version":1,"git":"7e91686","board":"qemu_virt","cpu":"Cortex-A72","midr":"0x410fd083","ctr_el0":"0x8444c004","clock":"pmccntr","mode":"qemu-icount","unit":"instructions","read_cost":6,"emulator":"qemu-10.0.2","cpus":1,"build":"plain"}"#
        );
        let mut r = BenchResult::new("mechanisms", "off", "leaf", "call", summary(9));
        r.baseline = Some(("twin", 7));
        assert_eq!(
            r.record("instructions").to_string(),
            r#"{"type":"result","suite":"mechanisms","mechanism":"off","subject":"leaf","metric":"call","unit":"instructions","iters":201,"min":8,"median":9,"mean":9.33,"p99":10,"max":11,"baseline":"twin","overhead":2}"#
        );
        let mut r = BenchResult::new("ops-scaling", "list", "leaf", "call", summary(5));
        (r.relevant, r.irrelevant, r.batch) = (Some(1), Some(8), Some(64));
        assert_eq!(
            r.record("ticks").to_string(),
            r#"{"type":"result","suite":"ops-scaling","mechanism":"list","subject":"leaf","metric":"call","unit":"ticks","iters":201,"min":4,"median":5,"mean":5.33,"p99":6,"max":7,"baseline":null,"overhead":null,"relevant":1,"irrelevant":8,"batch":64}"#
        );
        assert_eq!(
            End { records: 42 }.to_string(),
            r#"{"type":"end","records":42}"#
        );
    }

    #[test]
    fn strings_are_escaped_and_overhead_may_be_negative() {
        let mut r = BenchResult::new("s\"q", "a\\b", "tab\tnl\n", "m", summary(3));
        r.baseline = Some(("x", 10));
        let text = r.record("u").to_string();
        assert!(
            text.contains(r#""suite":"s\"q","mechanism":"a\\b","subject":"tab\u0009nl\u000a""#),
            "{text}"
        );
        assert!(text.contains(r#""baseline":"x","overhead":-7}"#), "{text}");
    }
}
