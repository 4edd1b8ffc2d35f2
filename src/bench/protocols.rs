//! Mode-switch latency under each patch protocol (`patch::poke::Protocol`): arming and
//! disarming one generated site, and 4096 of them in one batch, written live (then the kick) or
//! with every other CPU stopped. The same kernel runs it with 1 CPU (in the full suite) and,
//! booted by `pb bench` with 2 and 4 CPUs and `bench.only=patch-protocol`, alone; the subject
//! names the CPUs online (`gen-1cpu`, `gen-2cpu`, `gen-4cpu`).
//!
//! Under icount all vCPUs share one instruction counter, run round-robin in one host thread:
//! what a kick or a stop costs includes the instructions the other CPUs retire until they have
//! answered (their IPI entry, handler and return), which is the latency the patching CPU sees.

use alloc::vec::Vec;

use patchbay_pure::stats;
use patchbay_wire::bootargs;

use super::{
    patch_latency::timed_batch,
    record::{self, BenchResult},
};
use crate::{
    patch::{batch::Protocol, counter, sites},
    percpu,
};

/// Sites per batch.
pub const BATCHES: [u32; 2] = [1, 4096];
/// Metrics per batch size and protocol.
pub const METRICS: [&str; 2] = ["arm", "disarm"];
/// Records [`run`] emits.
pub const RECORDS: usize = BATCHES.len() * METRICS.len() * 2;

/// The subject: the generated sites, and how many CPUs were online.
fn subject() -> &'static str {
    match percpu::online() {
        1 => "gen-1cpu",
        2 => "gen-2cpu",
        4 => "gen-4cpu",
        _ => "gen-ncpu",
    }
}

/// For `n` generated sites under `protocol`, `samples` times after a warm-up: arm (`nop` ->
/// `bl`), then disarm; per-site statistics of each.
fn switch(n: u32, protocol: Protocol, samples: u32) {
    let sites: Vec<_> = sites::glob("patchbay::subjects::generated::gen_*")
        .take(n as usize)
        .collect();
    let stop = protocol == Protocol::StopMachine;
    let target = counter::target();
    let mut arms = Vec::new();
    let mut disarms = Vec::new();
    for i in 0..samples + 1 {
        let arm = timed_batch(&sites, |b, s| {
            b.arm(s, target);
            if stop {
                b.stop_machine();
            }
        });
        let disarm = timed_batch(&sites, |b, s| {
            b.disarm(s);
            if stop {
                b.stop_machine();
            }
        });
        if i > 0 {
            arms.push(arm);
            disarms.push(disarm);
        }
    }
    for (metric, mut samples) in METRICS.into_iter().zip([arms, disarms]) {
        let s = stats::summarize(&mut samples).expect("samples");
        let mut r = BenchResult::new(bootargs::PROTOCOLS, protocol.name(), subject(), metric, s);
        r.batch = Some(n);
        record::emit(&r);
    }
}

/// Both protocols, both batch sizes. IRQs stay unmasked: with other CPUs online the kick and
/// the stop are IPIs (no timer tick runs in a benchmark boot).
pub fn run() {
    for n in BATCHES {
        for protocol in [Protocol::Live, Protocol::StopMachine] {
            switch(n, protocol, if n >= 1024 { 5 } else { 21 });
        }
    }
}
