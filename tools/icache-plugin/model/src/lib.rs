//! A non-coherent instruction cache per CPU, by physical line: the model behind patchbay's QEMU
//! plugin (`tools/icache-plugin`), pure and host-tested.
//!
//! QEMU keeps instruction fetch coherent with stores, so missing cache maintenance passes every
//! emulated run. This model is fed the events that matter — stores to code, `DC`/`IC` by
//! physical line, `DSB`, context-synchronization events (CSE: `ISB`, exception entry, exception
//! return), the kernel's "published" marker and every execution of a tracked line — and reports
//! each execution that real hardware could have served from a stale I-cache line.
//!
//! # The rule, per tracked chunk (the smaller of the D- and I-cache lines of CTR_EL0)
//!
//! ```text
//!  store ──► Written ──DC CVAU/CVAC/CIVAC/CVAP/CVADP──► Cleaned(by P) ──DSB on P──► CleanDone
//!  CleanDone ──IC IVAU / IC IALLU[IS]──► Invalidated(by P, CPUs) ──DSB on P──► Done(at T, CPUs)
//!  CPU C may execute the chunk once Done covers C and C took a CSE after T.
//! ```
//!
//! * CTR_EL0.IDC: no clean needed; a store leaves the chunk Cleaned (a DSB still completes it).
//!   CTR_EL0.DIC: no invalidation needed; the DSB that completes the clean makes it Done.
//! * `IC IVAU` and `IC IALLUIS` reach every CPU's I-cache (inner shareable broadcast);
//!   `IC IALLU` only the issuing CPU's. An invalidation issued before the clean completed does
//!   not count (the I-cache could refill from the stale point of unification): the missing step
//!   is then the DSB between them.
//! * Only DSBs that wait for maintenance (SY, ISH, OSH) complete anything, and only the
//!   maintenance their own CPU issued.
//! * Each CPU needs its *own* CSE after the invalidation completed. Before the kernel signals
//!   that a change is published ([`Model::published`], executed after its kick of the other
//!   CPUs), another CPU may still run the old or the new instruction if both are CMODX-safe
//!   (`NOP, B, BL, BRK, SVC, HVC, SMC, ISB`: the Arm ARM's concurrent-modification exception).
//!   This is judged per word: a data store into the same line (the CALL_OPS literal beside a
//!   site) or a non-CMODX change to another word does not take the exception away from a word
//!   whose own changes were all CMODX-safe;
//!   from that point any CPU executing the line without a CSE since the invalidation is a
//!   violation. For the writing CPU itself the exception is off unless [`Config::cmodx_local`].
//! * A CPU's first execution (its reset) counts as a CSE with an empty I-cache.
//!
//! A chunk stops being tracked once every started CPU is covered and took a CSE after its
//! invalidation completed: from then on no CPU can hold the old instructions.
//!
//! A store to a chunk whose change is `Done` but not yet synchronized everywhere starts a new
//! change of the chunk; the earlier words stay *settled*: they are at the point of unification,
//! so they wait only for each CPU's CSE after their invalidation (a CPU that took it fetches them
//! new whatever is written to the rest of the line), and their CMODX verdicts stay theirs. So
//! after a stop-the-world change of a site's entry word — each parked CPU executes an ISB before
//! it leaves the park — a live `bl` retarget of the same line is judged by its own word.
//!
//! Only the *written words* of a stale chunk are checked: a stale I-cache line holds the old
//! copy of every word, and the unwritten ones are the same instructions. So a 64-bit literal
//! written into a code line (a CALL_OPS slot, read only as data) needs no maintenance as long
//! as nobody executes its bytes, while executing a written word early is always caught.

pub mod decode;
pub mod walk;

use std::collections::HashMap;
use std::fmt;

use patchbay_pure::cache::Ctr;
use patchbay_pure::insn::is_cmodx_safe;

/// What the model is told once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Number of CPUs (at most 64).
    pub cpus: usize,
    /// CTR_EL0 as the guest reads it: line sizes, IDC, DIC.
    pub ctr: Ctr,
    /// Apply the CMODX exception to the writing CPU's own execution too.
    pub cmodx_local: bool,
}

/// The store that made a chunk stale, for the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Store {
    pub cpu: usize,
    /// PC of the store instruction.
    pub pc: u64,
    /// The virtual address written (the RW alias, not the text address).
    pub va: u64,
    pub pa: u64,
}

/// The step of the publication sequence that had not happened when a CPU executed the line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    /// No data-cache clean of the line after the store.
    DcClean,
    /// The clean was not completed by a DSB (on the cleaning CPU) before the invalidation, or
    /// before execution.
    DsbAfterClean,
    /// No instruction-cache invalidation of the line after the clean completed.
    IcInvalidate,
    /// The invalidation was not completed by a DSB on the invalidating CPU.
    DsbAfterInvalidate,
    /// Only a local `IC IALLU` on another CPU invalidated the line: this CPU's I-cache was not.
    IcBroadcast { by: usize },
    /// The CPU that made the change executed it without a CSE (ISB) after the invalidation.
    Isb,
    /// Another CPU executed the published line without a CSE after the invalidation: the kick
    /// (an IPI, whose exception entry synchronizes) did not reach it.
    Kick,
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Missing::DcClean => write!(f, "DC CVAU of the line (clean to PoU) after the store"),
            Missing::DsbAfterClean => {
                write!(f, "DSB between DC CVAU and IC IVAU (clean not complete)")
            }
            Missing::IcInvalidate => write!(f, "IC IVAU of the line after the clean completed"),
            Missing::DsbAfterInvalidate => {
                write!(f, "DSB after IC IVAU (invalidation not complete)")
            }
            Missing::IcBroadcast { by } => write!(
                f,
                "IC IVAU/IALLUIS reaching this CPU (only a local IC IALLU on cpu {by})"
            ),
            Missing::Isb => write!(f, "ISB on the writing CPU after the invalidation completed"),
            Missing::Kick => write!(
                f,
                "kick: context synchronization of this CPU after the invalidation completed"
            ),
        }
    }
}

/// An execution of a line that hardware could have served stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Violation {
    pub cpu: usize,
    pub va: u64,
    pub pa: u64,
    pub store: Store,
    pub missing: Missing,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Written,
    Cleaned { by: usize },
    CleanDone,
    Invalidated { by: usize, cpus: u64 },
    Done { at: u64, cpus: u64 },
}

/// One change of a chunk: the words written since its sequence started, and how far the
/// sequence got.
#[derive(Clone, Copy, Debug)]
struct Change {
    stage: Stage,
    /// Written 4-byte words of the chunk (bit n: offset 4n).
    words: u64,
    store: Store,
    /// Words (bit n: offset 4n) that took a store in this change that was not a CMODX-safe
    /// word replaced by another (a data store, an unknown old word, a non-CMODX instruction).
    /// The others may run old or new until publication.
    unsafe_words: u64,
    /// An invalidation arrived before the clean completed.
    early_invalidate: bool,
    /// The kernel signalled publication after the last store.
    published: bool,
    /// CPUs already reported for this change (one report per CPU per store).
    reported: u64,
}

/// A tracked chunk: the change in progress and, when a store began it after an earlier change
/// had completed its sequence ([`Stage::Done`]) but before every CPU synchronized, that earlier
/// change (`settled`, always `Done`; the module documentation says why it stays apart).
#[derive(Clone, Copy, Debug)]
struct Chunk {
    current: Change,
    settled: Option<Change>,
}

/// Counters for the summary line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Stores to code.
    pub stores: u64,
    /// Chunks that went through the whole sequence on every CPU and stopped being tracked.
    pub completed: u64,
    /// Executions of a pending CMODX-safe change tolerated (old or new may run).
    pub cmodx_tolerated: u64,
    pub violations: u64,
}

/// The model's state.
#[derive(Debug)]
pub struct Model {
    cfg: Config,
    chunk: u64,
    chunks: HashMap<u64, Chunk>,
    /// Per CPU: the time of its last CSE (`None`: not started).
    cse: Vec<Option<u64>>,
    now: u64,
    stats: Stats,
}

impl Model {
    pub fn new(cfg: Config) -> Self {
        assert!(cfg.cpus >= 1 && cfg.cpus <= 64, "1..=64 CPUs");
        let chunk = cfg.ctr.dcache_line().min(cfg.ctr.icache_line());
        assert!(chunk <= 256, "lines up to 256 bytes (64 words)");
        Model {
            chunk,
            cfg,
            chunks: HashMap::new(),
            cse: vec![None; cfg.cpus],
            now: 1,
            stats: Stats::default(),
        }
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Chunks still tracked (some CPU may still hold their old instructions).
    pub fn pending(&self) -> usize {
        self.chunks.len()
    }

    fn all(&self) -> u64 {
        u64::MAX >> (64 - self.cfg.cpus)
    }

    fn tick(&mut self) -> u64 {
        self.now += 1;
        self.now
    }

    /// A CPU's first event is its reset: a CSE with an empty I-cache.
    fn start(&mut self, cpu: usize) {
        if self.cse[cpu].is_none() {
            self.cse[cpu] = Some(self.tick());
        }
    }

    fn chunks_of(&self, pa: u64, line: u64) -> impl Iterator<Item = u64> + use<> {
        let start = pa & !(line - 1);
        (start..start + line).step_by(self.chunk as usize)
    }

    /// `store` wrote `size` bytes of `new`; `old` is what the 4-byte instruction word there
    /// held, when known.
    pub fn store(&mut self, store: Store, size: u64, old: Option<u32>, new: u64) {
        let Store { cpu, pa, .. } = store;
        self.start(cpu);
        self.stats.stores += 1;
        let safe = size == 4
            && pa.is_multiple_of(4)
            && old.is_some_and(is_cmodx_safe)
            && is_cmodx_safe(new as u32);
        let stage = if self.cfg.ctr.idc() {
            Stage::Cleaned { by: cpu }
        } else {
            Stage::Written
        };
        let chunk = self.chunk;
        let fresh = Change {
            stage,
            words: 0,
            store,
            unsafe_words: 0,
            early_invalidate: false,
            published: false,
            reported: 0,
        };
        for w in (pa & !3..pa + size.max(1)).step_by(4) {
            let bit = 1 << ((w & (chunk - 1)) / 4);
            let e = self.chunks.entry(w & !(chunk - 1)).or_insert(Chunk {
                current: fresh,
                settled: None,
            });
            let (words, unsafe_words) = if let Stage::Done { .. } = e.current.stage {
                e.settled = Some(e.settled.map_or(e.current, |s| settle(s, e.current)));
                (0, 0)
            } else {
                (e.current.words, e.current.unsafe_words)
            };
            // A word written again belongs to the new change alone.
            if let Some(s) = &mut e.settled {
                s.words &= !bit;
                s.unsafe_words &= !bit;
            }
            e.current = Change {
                words: words | bit,
                unsafe_words: unsafe_words | if safe { 0 } else { bit },
                ..fresh
            };
        }
    }

    /// `cpu` cleaned the D-cache line holding `pa` (any `DC C*VA*` that reaches the PoU).
    pub fn dc_clean(&mut self, cpu: usize, pa: u64) {
        self.start(cpu);
        for c in self.chunks_of(pa, self.cfg.ctr.dcache_line()) {
            if let Some(e) = self.chunks.get_mut(&c)
                && e.current.stage == Stage::Written
            {
                e.current.stage = Stage::Cleaned { by: cpu };
            }
        }
    }

    /// `cpu` issued `IC IVAU` for the line holding `pa` (broadcast).
    pub fn ic_ivau(&mut self, cpu: usize, pa: u64) {
        self.start(cpu);
        let all = self.all();
        for c in self.chunks_of(pa, self.cfg.ctr.icache_line()) {
            if let Some(e) = self.chunks.get_mut(&c) {
                invalidate(&mut e.current, cpu, all);
            }
        }
    }

    /// `cpu` issued `IC IALLUIS` (`broadcast`) or `IC IALLU`.
    pub fn ic_iall(&mut self, cpu: usize, broadcast: bool) {
        self.start(cpu);
        let cpus = if broadcast { self.all() } else { 1 << cpu };
        for e in self.chunks.values_mut() {
            invalidate(&mut e.current, cpu, cpus);
        }
    }

    /// `cpu` executed a DSB that waits for cache maintenance.
    pub fn dsb(&mut self, cpu: usize) {
        self.start(cpu);
        let at = self.tick();
        let (dic, all) = (self.cfg.ctr.dic(), self.all());
        for e in self.chunks.values_mut().map(|e| &mut e.current) {
            e.stage = match e.stage {
                Stage::Cleaned { by } if by == cpu && dic => Stage::Done { at, cpus: all },
                Stage::Cleaned { by } if by == cpu => Stage::CleanDone,
                Stage::Invalidated { by, cpus } if by == cpu => Stage::Done { at, cpus },
                s => s,
            };
        }
    }

    /// `cpu` took a context-synchronization event (ISB, exception entry, exception return).
    pub fn cse(&mut self, cpu: usize) {
        let at = self.tick();
        self.cse[cpu] = Some(at);
        let (all, cse) = (self.all(), &self.cse);
        // Every CPU holds the change: covered by its invalidation, synchronized after it.
        let everywhere = |c: &Change| match c.stage {
            Stage::Done { at, cpus } => {
                cpus == all && !cse.iter().any(|c| c.is_some_and(|t| t <= at))
            }
            _ => false,
        };
        let before = self.chunks.len();
        self.chunks.retain(|_, e| {
            if e.settled.as_ref().is_some_and(everywhere) {
                e.settled = None;
            }
            e.settled.is_some() || !everywhere(&e.current)
        });
        self.stats.completed += (before - self.chunks.len()) as u64;
    }

    /// The kernel signalled (on `cpu`) that every change made so far is published: it has done
    /// the maintenance and kicked the other CPUs.
    pub fn published(&mut self, cpu: usize) {
        self.start(cpu);
        for e in self.chunks.values_mut() {
            e.current.published = true;
            if let Some(s) = &mut e.settled {
                s.published = true;
            }
        }
    }

    /// `cpu` executes the instruction at `va` (physical `pa`); a violation if that word was
    /// written and its publication to `cpu` is not complete.
    pub fn execute(&mut self, cpu: usize, va: u64, pa: u64) -> Option<Violation> {
        self.start(cpu);
        let key = pa & !(self.chunk - 1);
        let word = 1 << ((pa & (self.chunk - 1)) / 4);
        let chunk = self.chunks.get_mut(&key)?;
        let e = if chunk.current.words & word != 0 {
            &mut chunk.current
        } else {
            chunk.settled.as_mut().filter(|s| s.words & word != 0)?
        };
        let bit = 1u64 << cpu;
        let synced = self.cse[cpu].unwrap_or(0);
        let missing = match e.stage {
            Stage::Done { at, cpus } if cpus & bit != 0 && synced > at => return None,
            Stage::Written => Missing::DcClean,
            Stage::Cleaned { .. } => Missing::DsbAfterClean,
            Stage::CleanDone if e.early_invalidate => Missing::DsbAfterClean,
            Stage::CleanDone => Missing::IcInvalidate,
            Stage::Invalidated { .. } => Missing::DsbAfterInvalidate,
            Stage::Done { cpus, .. } if cpus & bit == 0 => Missing::IcBroadcast {
                by: cpus.trailing_zeros() as usize,
            },
            Stage::Done { .. } if e.store.cpu == cpu => Missing::Isb,
            Stage::Done { .. } => Missing::Kick,
        };
        let local = e.store.cpu == cpu;
        if e.unsafe_words & word == 0 && !e.published && (!local || self.cfg.cmodx_local) {
            self.stats.cmodx_tolerated += 1;
            return None;
        }
        if e.reported & bit != 0 {
            return None;
        }
        e.reported |= bit;
        self.stats.violations += 1;
        Some(Violation {
            cpu,
            va,
            pa,
            store: e.store,
            missing,
        })
    }
}

/// Two completed changes of one chunk as one (settled words are judged by the later
/// completion, on the CPUs both reached: never more lenient than either).
fn settle(old: Change, new: Change) -> Change {
    match (old.stage, new.stage) {
        (Stage::Done { at: a, cpus: c }, Stage::Done { at: b, cpus: d }) => Change {
            stage: Stage::Done {
                at: a.max(b),
                cpus: c & d,
            },
            words: old.words | new.words,
            unsafe_words: old.unsafe_words | new.unsafe_words,
            published: old.published && new.published,
            reported: old.reported | new.reported,
            ..new
        },
        _ => unreachable!("only completed changes settle"),
    }
}

/// An invalidation by `by` reaching `cpus` arrives at the change `e`.
fn invalidate(e: &mut Change, by: usize, cpus: u64) {
    e.stage = match e.stage {
        Stage::CleanDone => Stage::Invalidated { by, cpus },
        Stage::Invalidated { by: b, cpus: c } if b == by => {
            Stage::Invalidated { by, cpus: c | cpus }
        }
        Stage::Written | Stage::Cleaned { .. } => {
            e.early_invalidate = true;
            e.stage
        }
        s => s,
    };
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cpu {} executed va {:#x} (pa {:#x}) stale: written by cpu {} at pc {:#x} (via va \
             {:#x}, pa {:#x}); missing: {}",
            self.cpu,
            self.va,
            self.pa,
            self.store.cpu,
            self.store.pc,
            self.store.va,
            self.store.pa,
            self.missing
        )
    }
}

#[cfg(test)]
mod tests;
