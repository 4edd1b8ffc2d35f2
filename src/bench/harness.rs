//! The measuring harness: warm-up, then N individually timed iterations with interrupts masked,
//! each timed by the ISB-fenced clock with its calibrated read cost subtracted.
//!
//! Every sample is one call of the measured closure, so min / median / p99 / max describe the
//! distribution of single calls; under QEMU icount they are exact instruction counts and equal
//! from boot to boot.

use alloc::vec::Vec;

use patchbay_pure::stats::{self, Summary};

use super::clock;
use crate::arch::cpu;

/// How many times to run a measurement.
#[derive(Clone, Copy, Debug)]
pub struct Iters {
    pub warmup: u32,
    pub samples: u32,
}

impl Iters {
    pub const DEFAULT: Iters = Iters {
        warmup: 16,
        samples: 201,
    };
}

/// Time `f` `iters.samples` times after `iters.warmup` untimed runs; IRQs masked throughout.
pub fn measure(iters: Iters, mut f: impl FnMut()) -> Summary {
    let daif = cpu::mask_all();
    for _ in 0..iters.warmup {
        f();
    }
    let mut samples = Vec::with_capacity(iters.samples as usize);
    for _ in 0..iters.samples {
        samples.push(clock::measure(&mut f));
    }
    cpu::restore_daif(daif);
    stats::summarize(&mut samples).expect("at least one sample")
}

/// Like [`measure`], but `f` returns how many items it processed and each sample is divided by
/// it (rounded down): per-site costs of batches.
pub fn measure_per_item(iters: Iters, mut f: impl FnMut() -> u64) -> Summary {
    let daif = cpu::mask_all();
    for _ in 0..iters.warmup {
        f();
    }
    let mut samples = Vec::with_capacity(iters.samples as usize);
    for _ in 0..iters.samples {
        let mut n = 1;
        let t = clock::measure(|| n = f().max(1));
        samples.push(t / n);
    }
    cpu::restore_daif(daif);
    stats::summarize(&mut samples).expect("at least one sample")
}
