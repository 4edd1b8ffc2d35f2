//! Patch latency: what one poke costs, and what arming / disarming costs per site in batches of
//! 1, 16, 256 and 4096 sites (the generated subjects). Statistics are per site.

use alloc::vec::Vec;

use patchbay_pure::{insn, stats};

use super::{
    clock,
    harness::{self, Iters},
    record::{self, BenchResult},
};
use crate::{
    arch::cpu,
    patch::{batch::Batch, counter, poke, sites},
    percpu,
};

pub const BATCHES: [u32; 4] = [1, 16, 256, 4096];

/// One single-word poke (validation, alias map, write, unmap + TLBI, maintenance).
fn single_poke() {
    let site = sites::by_name("patchbay::subjects::leaf").expect("leaf is a site");
    let iters = Iters {
        warmup: 4,
        samples: 51,
    };
    let poke = || poke::poke(site.call(), insn::NOP, insn::NOP).expect("poke leaf");
    // The harness masks IRQs; with other CPUs online every poke kicks them (an IPI), which needs
    // them unmasked.
    let s = if percpu::online() == 1 {
        harness::measure(iters, poke)
    } else {
        let mut v: Vec<u64> = (0..iters.warmup + iters.samples)
            .map(|_| clock::measure(poke))
            .skip(iters.warmup as usize)
            .collect();
        stats::summarize(&mut v).expect("samples")
    };
    let mut r = BenchResult::new("patch-latency", "poke", "leaf", "per-site", s);
    r.batch = Some(1);
    record::emit(&r);
}

/// Commit a batch built by `add` for every site, returning the time it took per site.
pub(super) fn timed_batch(
    sites: &[&sites::Site<'static>],
    add: impl Fn(&mut Batch, &sites::Site<'static>),
) -> u64 {
    let mut b = Batch::with_capacity(sites.len());
    for s in sites {
        add(&mut b, s);
    }
    clock::measure(|| {
        b.commit().expect("batch");
    }) / sites.len() as u64
}

/// For `n` generated sites, `samples` times: the first arm from rest (the `bl`, and nothing else:
/// boot wrote `mov x9, x30`), disarm (`bl` -> `nop`) and re-arm (`nop` -> `bl`: the
/// steady-state toggle), then restore untimed. Per-site statistics of each.
fn batch(n: u32, samples: u32) {
    let sites: Vec<_> = sites::glob("patchbay::subjects::generated::gen_*")
        .take(n as usize)
        .collect();
    assert_eq!(sites.len(), n as usize);
    let mut metrics: [(&str, Vec<u64>); 3] = [
        ("arm-first", Vec::new()),
        ("disarm", Vec::new()),
        ("arm", Vec::new()),
    ];
    let target = counter::target();
    // IRQs masked so that no interrupt lands in a timed batch; not with other CPUs online: there
    // every patch kicks them, which needs IRQs (`ipi::call`).
    let masked = (percpu::online() == 1).then(cpu::mask_all);
    // The first round is the warm-up.
    for i in 0..samples + 1 {
        let t = [
            timed_batch(&sites, |b, s| {
                b.arm(s, target);
            }),
            timed_batch(&sites, |b, s| {
                b.disarm(s);
            }),
            timed_batch(&sites, |b, s| {
                b.arm(s, target);
            }),
        ];
        let mut b = Batch::with_capacity(sites.len());
        for s in &sites {
            b.restore(s);
        }
        b.commit().expect("restore");
        if i > 0 {
            for (m, v) in metrics.iter_mut().zip(t) {
                m.1.push(v);
            }
        }
    }
    if let Some(daif) = masked {
        cpu::restore_daif(daif);
    }
    for (metric, samples) in metrics.iter_mut() {
        let s = stats::summarize(samples).expect("samples");
        let mut r = BenchResult::new("patch-latency", "batch", "gen", metric, s);
        r.batch = Some(n);
        record::emit(&r);
    }
}

pub fn run() {
    single_poke();
    for n in BATCHES {
        batch(n, if n >= 1024 { 5 } else { 21 });
    }
}
