//! CTR_EL0 (Cache Type Register) decoding and the plan of the cache maintenance that makes
//! newly written instructions visible to instruction fetch.
//!
//! The Arm ARM's rule for self-modifying code (B2.4.4 "Concurrent modification and execution of
//! instructions" and the cache-maintenance requirements around it) on a PE whose instruction and
//! data caches are not coherent:
//!
//! ```text
//!   write the new instruction(s)
//!   DC CVAU  each written D-cache line   -- unless CTR_EL0.IDC == 1 (clean to PoU not required)
//!   DSB ISH                               -- the cleans complete before the invalidates
//!   IC IVAU  each written I-cache line   -- unless CTR_EL0.DIC == 1 (I-cache coherent)
//!   DSB ISH                               -- the invalidates complete (and are broadcast)
//!   ISB                                   -- this PE refetches; other PEs need their own
//!                                            context synchronization before relying on it
//! ```
//!
//! Line sizes come from CTR_EL0.DminLine / IminLine (log2 of the number of 4-byte words), the
//! smallest line of any cache in the system, so stepping by them never skips a line.
//!
//! A pass that would invalidate [`IC_IALLU_LINES`] or more instruction lines one by one (a batch
//! of thousands of sites; counted by the D-side pass, so only when there is one and the line
//! sizes are equal) issues one `IC IALLUIS` instead: invalidate every instruction cache of
//! the Inner Shareable domain to the PoU — the same guarantee for every written line, in one
//! operation. The trade: unrelated code is refetched too, which a pass that touches that many
//! lines costs the I-caches anyway (512 lines of 64 bytes is a whole 32 KiB L1 I-cache).
//! [`plan`] turns what was written ([`Written`]: ranges, or single instruction words) into that
//! exact sequence of operations; the kernel executes the plan and a test build records it,
//! because QEMU does not model I-cache incoherence and would pass a missing `IC IVAU` silently.

/// CTR_EL0 value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ctr(pub u64);

impl Ctr {
    /// Smallest data/unified cache line, in bytes (4 << DminLine).
    pub fn dcache_line(self) -> u64 {
        4 << ((self.0 >> 16) & 0xf)
    }
    /// Smallest instruction cache line, in bytes (4 << IminLine).
    pub fn icache_line(self) -> u64 {
        4 << (self.0 & 0xf)
    }
    /// IDC: data cache clean to PoU is not required for instruction-to-data coherence.
    pub fn idc(self) -> bool {
        self.0 & (1 << 28) != 0
    }
    /// DIC: instruction cache invalidation to PoU is not required.
    pub fn dic(self) -> bool {
        self.0 & (1 << 29) != 0
    }
    /// L1Ip: the L1 instruction cache indexing policy, for the banner.
    pub fn l1ip(self) -> &'static str {
        match (self.0 >> 14) & 3 {
            0 => "VPIPT",
            1 => "AIVIVT",
            2 => "VIPT",
            _ => "PIPT",
        }
    }
}

/// One step of a maintenance plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `DC CVAU` on the line at this (line-aligned) address.
    DcCvau(u64),
    /// `DSB ISH`.
    DsbIsh,
    /// `IC IVAU` on the line at this (line-aligned) address.
    IcIvau(u64),
    /// `IC IALLUIS`: every instruction cache in the Inner Shareable domain, to the PoU.
    IcIalluis,
    /// `ISB`.
    Isb,
}

/// The distinct lines of size `line` touched by `ranges` (each `[start, end)`, sorted by start),
/// in ascending order: one linear pass, each line once even when ranges share it. Returns how
/// many lines it visited.
fn lines(ranges: impl Iterator<Item = (u64, u64)>, line: u64, mut f: impl FnMut(u64)) -> usize {
    let mut visited = 0;
    let mut next_unvisited = 0u64;
    let mut prev_start = 0u64;
    for (s, e) in ranges {
        debug_assert!(s >= prev_start, "ranges must be sorted by start");
        prev_start = s;
        if e <= s {
            continue;
        }
        let mut a = (s & !(line - 1)).max(next_unvisited);
        while a < e {
            f(a);
            visited += 1;
            a += line;
        }
        next_unvisited = next_unvisited.max(a);
    }
    visited
}

/// What was written, as the distinct cache lines it touches: a sorted iterator of `[start, end)`
/// ranges, or [`Words`].
pub trait Written: Clone {
    /// Call `f` with each distinct line of size `line` touched, in ascending order; return how
    /// many.
    fn lines(self, line: u64, f: impl FnMut(u64)) -> usize;
}

impl<I: Iterator<Item = (u64, u64)> + Clone> Written for I {
    fn lines(self, line: u64, f: impl FnMut(u64)) -> usize {
        lines(self, line, f)
    }
}

/// Single instruction words written at these addresses (4-aligned, ascending): what a patch
/// writes. A word lies in exactly one line of any cache (lines are 4-aligned and at least 4
/// bytes), so its line is one mask and a compare with the previous word's — the same lines as
/// the ranges `(a, a + 4)`, without the range arithmetic per word.
#[derive(Clone)]
pub struct Words<I>(pub I);

impl<I: Iterator<Item = u64> + Clone> Written for Words<I> {
    #[inline]
    fn lines(self, line: u64, mut f: impl FnMut(u64)) -> usize {
        let mut visited = 0;
        // No line starts at the all-ones address (a line start has its low bits clear).
        let mut last = u64::MAX;
        for a in self.0 {
            debug_assert!(a.is_multiple_of(4), "instruction words are 4-aligned");
            debug_assert!(
                last == u64::MAX || a >= last,
                "words must be sorted by address"
            );
            let l = a & !(line - 1);
            if l != last {
                f(l);
                visited += 1;
                last = l;
            }
        }
        visited
    }
}

/// From this many instruction lines on, one pass invalidates them all with `IC IALLUIS`
/// instead of one `IC IVAU` each (see the module docs).
pub const IC_IALLU_LINES: usize = 512;

/// The maintenance sequence that publishes instructions written to `written` (ranges sorted by
/// start address, or [`Words`]), as executed by the kernel. Each line is maintained once even
/// when ranges or words share it.
///
/// `written` is iterated once per cache side, so it must be cheap to clone (a slice iterator, or
/// a `map` over one).
pub fn plan(ctr: Ctr, written: impl Written, mut f: impl FnMut(Op)) {
    let dlines = if ctr.idc() {
        0
    } else {
        written
            .clone()
            .lines(ctr.dcache_line(), |a| f(Op::DcCvau(a)))
    };
    f(Op::DsbIsh);
    if !ctr.dic() {
        // The D-side pass counted the lines; with equal line sizes that is the I-side's count.
        // (Without a D-side pass, or with different sizes, every line is invalidated on its own.)
        if dlines >= IC_IALLU_LINES && ctr.icache_line() == ctr.dcache_line() {
            f(Op::IcIalluis);
        } else {
            written.lines(ctr.icache_line(), |a| f(Op::IcIvau(a)));
        }
        f(Op::DsbIsh);
    }
    f(Op::Isb);
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::{vec, vec::Vec};

    /// QEMU's cortex-a72: IminLine = DminLine = 4 (64-byte lines), L1Ip PIPT, IDC = DIC = 0.
    const QEMU_A72: Ctr = Ctr(0x8444_c004);

    fn collect(ctr: Ctr, ranges: &[(u64, u64)]) -> Vec<Op> {
        let mut v = Vec::new();
        plan(ctr, ranges.iter().copied(), |o| v.push(o));
        v
    }

    #[test]
    fn fields() {
        assert_eq!(QEMU_A72.dcache_line(), 64);
        assert_eq!(QEMU_A72.icache_line(), 64);
        assert!(!QEMU_A72.idc() && !QEMU_A72.dic());
        assert_eq!(QEMU_A72.l1ip(), "PIPT");
        let a76 = Ctr(0x9444_c004); // IDC=1 (Cortex-A76/Pi 5)
        assert!(a76.idc() && !a76.dic());
    }

    #[test]
    fn one_word_full_sequence() {
        assert_eq!(
            collect(QEMU_A72, &[(0x1004, 0x1008)]),
            vec![
                Op::DcCvau(0x1000),
                Op::DsbIsh,
                Op::IcIvau(0x1000),
                Op::DsbIsh,
                Op::Isb
            ]
        );
    }

    #[test]
    fn range_crossing_a_line_and_shared_lines_deduplicated() {
        let ops = collect(
            QEMU_A72,
            &[(0x10fc, 0x1104), (0x1100, 0x1104), (0x2000, 0x2004)],
        );
        assert_eq!(
            ops,
            vec![
                Op::DcCvau(0x10c0),
                Op::DcCvau(0x1100),
                Op::DcCvau(0x2000),
                Op::DsbIsh,
                Op::IcIvau(0x10c0),
                Op::IcIvau(0x1100),
                Op::IcIvau(0x2000),
                Op::DsbIsh,
                Op::Isb
            ]
        );
    }

    #[test]
    fn nested_range_inside_an_earlier_one() {
        let ops = collect(QEMU_A72, &[(0x1000, 0x1080), (0x1010, 0x1014)]);
        assert_eq!(
            &ops[..3],
            &[Op::DcCvau(0x1000), Op::DcCvau(0x1040), Op::DsbIsh]
        );
    }

    #[test]
    fn words_plan_exactly_what_their_ranges_plan() {
        // Words sharing lines, crossing pages, one per line, with 64- and 32-byte I-lines, and
        // enough lines for `IC IALLUIS`.
        let sets: [Vec<u64>; 4] = [
            vec![0x1000, 0x1004, 0x103c, 0x1040, 0x2ffc, 0x3000],
            (0..40).map(|i| 0x10_0000 + 24 * i).collect(),
            (0..IC_IALLU_LINES as u64 + 3)
                .map(|i| 0x20_0000 + 64 * i + 8)
                .collect(),
            vec![],
        ];
        for ctr in [QEMU_A72, Ctr(0x8444_c003), Ctr(QEMU_A72.0 | 1 << 28)] {
            for words in &sets {
                let ranges: Vec<(u64, u64)> = words.iter().map(|&a| (a, a + 4)).collect();
                let mut by_words = Vec::new();
                plan(ctr, Words(words.iter().copied()), |o| by_words.push(o));
                assert_eq!(by_words, collect(ctr, &ranges), "{ctr:?} {words:x?}");
            }
        }
    }

    #[test]
    fn idc_skips_clean_dic_skips_invalidate() {
        let idc = Ctr(QEMU_A72.0 | 1 << 28);
        assert_eq!(
            collect(idc, &[(0x1000, 0x1004)]),
            vec![Op::DsbIsh, Op::IcIvau(0x1000), Op::DsbIsh, Op::Isb]
        );
        let both = Ctr(QEMU_A72.0 | 3 << 28);
        assert_eq!(
            collect(both, &[(0x1000, 0x1004)]),
            vec![Op::DsbIsh, Op::Isb]
        );
    }

    #[test]
    fn different_line_sizes() {
        // DminLine = 4 (64 B), IminLine = 3 (32 B): I-side steps are finer.
        let ctr = Ctr(0x8444_c003);
        let ops = collect(ctr, &[(0x1000, 0x1040)]);
        assert_eq!(
            ops,
            vec![
                Op::DcCvau(0x1000),
                Op::DsbIsh,
                Op::IcIvau(0x1000),
                Op::IcIvau(0x1020),
                Op::DsbIsh,
                Op::Isb
            ]
        );
    }

    #[test]
    fn many_lines_are_invalidated_at_once_below_that_one_by_one() {
        let words = |n: u64| -> Vec<(u64, u64)> {
            (0..n)
                .map(|i| (0x10_0000 + 64 * i, 0x10_0000 + 64 * i + 4))
                .collect()
        };
        let ops = collect(QEMU_A72, &words(IC_IALLU_LINES as u64));
        // Every line is still cleaned, one by one; the invalidation is one operation.
        let cleans = ops.iter().filter(|o| matches!(o, Op::DcCvau(_))).count();
        assert_eq!(cleans, IC_IALLU_LINES);
        assert_eq!(
            &ops[IC_IALLU_LINES..],
            &[Op::DsbIsh, Op::IcIalluis, Op::DsbIsh, Op::Isb]
        );
        let ops = collect(QEMU_A72, &words(IC_IALLU_LINES as u64 - 1));
        assert!(!ops.contains(&Op::IcIalluis));
        let invals = ops.iter().filter(|o| matches!(o, Op::IcIvau(_))).count();
        assert_eq!(invals, IC_IALLU_LINES - 1);
        // Lines are counted, not words: many words in few lines stay per line.
        let dense: Vec<(u64, u64)> = (0..2 * IC_IALLU_LINES as u64)
            .map(|i| (0x10_0000 + 4 * i, 0x10_0000 + 4 * i + 4))
            .collect();
        assert!(!collect(QEMU_A72, &dense).contains(&Op::IcIalluis));
        // With IDC there is no D-side pass to count the lines: each is invalidated on its own.
        let idc = Ctr(QEMU_A72.0 | 1 << 28);
        let ops = collect(idc, &words(IC_IALLU_LINES as u64));
        assert!(!ops.contains(&Op::IcIalluis));
        assert_eq!(ops.len(), IC_IALLU_LINES + 3);
    }

    #[test]
    fn empty_ranges_only_barriers() {
        assert_eq!(
            collect(QEMU_A72, &[]),
            vec![Op::DsbIsh, Op::DsbIsh, Op::Isb]
        );
    }
}
