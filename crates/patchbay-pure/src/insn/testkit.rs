//! Test inputs shared by the encoder and decoder tests: a deterministic generator and
//! PC-relative offsets that include every range boundary.

use super::{Reg, XZR};

/// xorshift64: deterministic, good enough to spread test values.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Uniform in `min..=max`.
    pub(super) fn range(&mut self, min: i64, max: i64) -> i64 {
        min + self.below((max - min) as u64 + 1) as i64
    }
    /// A 4-aligned address: anywhere, kernel-like, low, or next to the ends of the space.
    pub(super) fn addr(&mut self) -> u64 {
        let a = match self.below(4) {
            0 => self.next(),
            1 => 0xffff_8000_0000_0000 + self.below(1 << 32),
            2 => 0x4000_0000 + self.below(1 << 30),
            _ => self.below(1 << 22).wrapping_sub(1 << 21),
        };
        a & !3
    }
    /// Any register number 0..=31.
    pub(super) fn reg(&mut self) -> Reg {
        match self.below(32) as u8 {
            31 => XZR,
            n => Reg::x(n),
        }
    }
}

/// Boundary offsets for a word-granular range: both ends, one step inside, 0 and ±4.
fn word_boundaries(min: i64, max: i64) -> Vec<i64> {
    vec![min, min + 4, -4, 0, 4, max - 4, max]
}

/// Boundary plus `n` random 4-aligned offsets in `[min, max]`, each with a random `from`.
pub(super) fn word_offsets(rng: &mut Rng, min: i64, max: i64, n: usize) -> Vec<(u64, i64)> {
    let mut v: Vec<(u64, i64)> = word_boundaries(min, max)
        .into_iter()
        .flat_map(|off| [(0x4008_0000, off), (0xffff_8000_1000_0000, off), (0, off)])
        .collect();
    for _ in 0..n {
        v.push((rng.addr(), rng.range(min / 4, max / 4) * 4));
    }
    v
}

/// `from + offset` with wrap-around, as the encoders compute it.
pub(super) fn at(from: u64, offset: i64) -> u64 {
    from.wrapping_add(offset as u64)
}
