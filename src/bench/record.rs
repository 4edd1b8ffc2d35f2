//! Benchmark records: one line each on the console, `@bench ` followed by a JSON object, parsed
//! by the host tool (`pb bench`, `pb parse`, `pb compare`). The README documents every field.
//!
//! ```text
//! @bench {"type":"header","version":1,"git":"…","board":"qemu_virt","cpu":"Cortex-A72","midr":"0x410fd083","ctr_el0":"0x8444c004","clock":"pmccntr","mode":"qemu-icount","unit":"instructions","read_cost":6}
//! @bench {"type":"result","suite":"mechanisms","mechanism":"off","subject":"leaf","metric":"call","unit":"instructions","iters":201,"min":9,"median":9,"mean":9.0,"p99":9,"max":9,"baseline":"twin","overhead":2}
//! @bench {"type":"end","records":42}
//! ```
//!
//! The unit always comes from the clock ([`clock::unit`]): QEMU numbers are never called cycles.

use core::{
    fmt::{self, Write},
    sync::atomic::{AtomicUsize, Ordering},
};

use patchbay_pure::stats::Summary;

use super::clock;
use crate::{arch, bsp, println};

pub const VERSION: u32 = 1;

static RESULTS: AtomicUsize = AtomicUsize::new(0);

/// A JSON string value (escapes `"`, `\` and control characters).
struct Str<'a>(&'a str);

impl fmt::Display for Str<'_> {
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

/// The header record: where and with which clock the numbers were produced.
pub fn header() {
    RESULTS.store(0, Ordering::Relaxed);
    let midr = arch::cpu::midr();
    println!(
        "@bench {{\"type\":\"header\",\"version\":{VERSION},\"git\":{},\"board\":{},\"cpu\":{},\"midr\":\"{:#010x}\",\"ctr_el0\":\"{:#010x}\",\"clock\":{},\"mode\":{},\"unit\":{},\"read_cost\":{}}}",
        Str(crate::GIT_REV),
        Str(bsp::NAME),
        Str(arch::cpu::cpu_name(midr)),
        midr,
        arch::cache::ctr().0,
        Str(clock::source().name()),
        Str(clock::mode().name()),
        Str(clock::unit()),
        clock::read_cost()
    );
}

/// One result.
#[derive(Clone, Copy, Debug)]
pub struct BenchResult<'a> {
    pub suite: &'a str,
    pub mechanism: &'a str,
    pub subject: &'a str,
    pub metric: &'a str,
    pub summary: Summary,
    /// The mechanism this one is compared with, and its median.
    pub baseline: Option<(&'a str, u64)>,
    pub relevant: Option<u32>,
    pub irrelevant: Option<u32>,
    pub batch: Option<u32>,
}

impl<'a> BenchResult<'a> {
    pub fn new(
        suite: &'a str,
        mechanism: &'a str,
        subject: &'a str,
        metric: &'a str,
        s: Summary,
    ) -> Self {
        BenchResult {
            suite,
            mechanism,
            subject,
            metric,
            summary: s,
            baseline: None,
            relevant: None,
            irrelevant: None,
            batch: None,
        }
    }

    /// Print the record.
    pub fn emit(&self) {
        RESULTS.fetch_add(1, Ordering::Relaxed);
        let s = &self.summary;
        let mut extra = alloc::string::String::new();
        if let Some(r) = self.relevant {
            let _ = write!(extra, ",\"relevant\":{r}");
        }
        if let Some(i) = self.irrelevant {
            let _ = write!(extra, ",\"irrelevant\":{i}");
        }
        if let Some(b) = self.batch {
            let _ = write!(extra, ",\"batch\":{b}");
        }
        let (baseline, overhead) = match self.baseline {
            Some((name, median)) => (
                alloc::format!("{}", Str(name)),
                alloc::format!("{}", s.median as i64 - median as i64),
            ),
            None => ("null".into(), "null".into()),
        };
        println!(
            "@bench {{\"type\":\"result\",\"suite\":{},\"mechanism\":{},\"subject\":{},\"metric\":{},\"unit\":{},\"iters\":{},\"min\":{},\"median\":{},\"mean\":{:.2},\"p99\":{},\"max\":{},\"baseline\":{},\"overhead\":{}{}}}",
            Str(self.suite),
            Str(self.mechanism),
            Str(self.subject),
            Str(self.metric),
            Str(clock::unit()),
            s.n,
            s.min,
            s.median,
            s.mean,
            s.p99,
            s.max,
            baseline,
            overhead,
            extra
        );
    }
}

/// Result records emitted since the last header.
pub fn emitted() -> usize {
    RESULTS.load(Ordering::Relaxed)
}

/// The end record: how many results were emitted, so a truncated log is detectable.
pub fn end() {
    println!(
        "@bench {{\"type\":\"end\",\"records\":{}}}",
        RESULTS.load(Ordering::Relaxed)
    );
}
