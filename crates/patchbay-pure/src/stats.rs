//! Summary statistics for benchmark samples: min, median, mean, p99, max.
//!
//! Percentiles use the nearest-rank method on the sorted samples (no interpolation), so every
//! reported value is a value that was actually measured — under QEMU icount that keeps the
//! numbers exact integers.

/// Statistics of one sample set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub min: u64,
    pub median: u64,
    pub mean: f64,
    pub p99: u64,
    pub max: u64,
}

/// Nearest-rank percentile `p` (0..=100) of sorted samples.
pub fn percentile(sorted: &[u64], p: u32) -> u64 {
    assert!(!sorted.is_empty() && p <= 100);
    let rank = (u64::from(p) * sorted.len() as u64).div_ceil(100).max(1);
    sorted[rank as usize - 1]
}

/// Summarise `samples` (sorted in place). `None` for an empty set.
pub fn summarize(samples: &mut [u64]) -> Option<Summary> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let sum: u128 = samples.iter().map(|&s| u128::from(s)).sum();
    Some(Summary {
        n: samples.len(),
        min: samples[0],
        median: percentile(samples, 50),
        mean: sum as f64 / samples.len() as f64,
        p99: percentile(samples, 99),
        max: samples[samples.len() - 1],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_to_hundred() {
        let mut v: [u64; 100] = core::array::from_fn(|i| 100 - i as u64);
        let s = summarize(&mut v).unwrap();
        assert_eq!((s.n, s.min, s.median, s.p99, s.max), (100, 1, 50, 99, 100));
        assert_eq!(s.mean, 50.5);
    }

    #[test]
    fn single_and_empty() {
        let s = summarize(&mut [7]).unwrap();
        assert_eq!((s.min, s.median, s.p99, s.max, s.mean), (7, 7, 7, 7, 7.0));
        assert_eq!(summarize(&mut []), None);
    }

    #[test]
    fn p99_of_small_sets_is_the_max() {
        let mut v = [5, 1, 3];
        let s = summarize(&mut v).unwrap();
        assert_eq!((s.median, s.p99), (3, 5));
    }
}
