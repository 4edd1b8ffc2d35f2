//! The patch storm (issue 15), shared by `tests/storm.rs` (must pass) and
//! `tests/storm_no_grace.rs` (its teeth: trampolines freed without a grace period must fail).
//!
//! CPUs 1–3 call traced subjects (leaf, args8, recursive fib, and signature shapes: a 128-bit
//! pair, a 16-byte struct result, a stack argument, a result through x8, a fat pointer) in tight
//! loops, checking every result against the untraced twin. CPU 0 switches random sites among
//! every mode — off, list, call-ops, direct near, far via ops, far via veneer, fexit, rethook,
//! fprobe, BRK, kretprobe, and a BRK over the entry's first word (the one change that needs
//! stop-the-world) — [`SWITCHES`] times, attaching and detaching ops and trampolines.
//!
//! # Exact accounting
//!
//! Each site has an epoch: the switcher makes it odd before it changes the site, and even again
//! (release) once the change is applied and a grace period has passed (so no handler of the old
//! mode still runs anywhere), after publishing the site's new mode. A worker reads the epoch
//! (acquire) before a call and again after it (behind a full barrier); when both reads are the
//! same even value, the call ran entirely in one stable mode, and its CPU's handler counters
//! (each handler counts on the CPU it runs on, and only the worker calls the subjects there)
//! must have moved by exactly what that mode promises per traced call — entries, exits, or both —
//! times the calls through the site (`fib` recurses through it): an armed mode counts each call
//! exactly once, off never.
//!
//! At the end, after everything is detached and a final grace period: zero faults (any fault
//! ends the run with its report), every result correct, every return hook paired with its exit
//! and every shadow stack empty, no overflow, every deferred item freed after its grace period,
//! both pools back to their start usage and bytes, text byte-identical to boot.
//!
//! The seed printed at start reproduces the switch sequence (`storm.seed=N` boot argument); the
//! interleaving with the workers is the host's.

use core::{
    fmt::Write as _,
    sync::atomic::{AtomicBool, AtomicU64, Ordering, fence},
};

use patchbay::{
    arch, boot_info,
    exception::ExceptionFrame,
    grace,
    patch::{PatchError, poke, sites, text},
    percpu, println, smp,
    stop::StopError,
    subjects::{
        self,
        signatures::{self as sig, Pair16},
    },
    trace::{
        self, DirectCtx, DirectKind, Filter, FtraceRegs, Mode as TraceMode, Ops, OpsId, Reach,
        TraceError, fprobe, kprobe,
        pool::{self, PoolKind},
        rethook::{self, RetRegs},
    },
};

/// The machine every storm kernel boots on — 4 CPUs, multi-threaded TCG, no icount — plus the
/// kernel's own directives (its timeout and boot arguments, what its console must show).
macro_rules! directives {
    ($($line:literal),* $(,)?) => {
        patchbay::qemu_directives!("smp=4", "tcg=multi", "icount=0", $($line),*);
    };
}
pub(crate) use directives;

/// Mode switches the switcher makes (boot argument `storm.switches=N` overrides).
pub const SWITCHES: u64 = 10_000;
/// Sites switched per round (one grace period each).
const ROUND: usize = 8;
const WORKERS: usize = 3;

/// What a site can be switched to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
enum Mode {
    Off,
    List,
    CallOps,
    DirectNear,
    FarViaOps,
    FarViaVeneer,
    Fexit,
    Rethook,
    Fprobe,
    Brk,
    Kretprobe,
    EntryBrk,
}

const MODES: [Mode; 12] = [
    Mode::Off,
    Mode::List,
    Mode::CallOps,
    Mode::DirectNear,
    Mode::FarViaOps,
    Mode::FarViaVeneer,
    Mode::Fexit,
    Mode::Rethook,
    Mode::Fprobe,
    Mode::Brk,
    Mode::Kretprobe,
    Mode::EntryBrk,
];

impl Mode {
    /// Handler counts (entries, exits) per traced call in this mode.
    fn promises(self) -> (u64, u64) {
        match self {
            Mode::Off => (0, 0),
            Mode::Fexit | Mode::Kretprobe => (0, 1),
            Mode::Rethook | Mode::Fprobe => (1, 1),
            _ => (1, 0),
        }
    }

    /// A per-callsite trampoline: one per site at a time.
    fn direct(self) -> bool {
        matches!(
            self,
            Mode::DirectNear | Mode::FarViaOps | Mode::FarViaVeneer | Mode::Fexit
        )
    }

    /// Needs (BRK) or leaves (off) the site's compiled entry, or is not an ops.
    fn exclusive(self) -> bool {
        matches!(
            self,
            Mode::Off | Mode::Brk | Mode::Kretprobe | Mode::EntryBrk
        )
    }
}

/// A subject the workers call: its site, traced calls per invocation, and a checked call.
struct Subject {
    name: &'static str,
    calls: u64,
    /// Call the subject with inputs derived from `i`; `Err` describes a wrong result.
    run: fn(u64) -> Result<(), (u128, u128)>,
}

fn check<T: PartialEq + Into<u128> + Copy>(got: T, want: T) -> Result<(), (u128, u128)> {
    if got == want {
        Ok(())
    } else {
        Err((got.into(), want.into()))
    }
}

const FIB_N: u64 = 7;

const SUBJECTS: [Subject; 9] = [
    Subject {
        name: "patchbay::subjects::leaf",
        calls: 1,
        run: |_| {
            subjects::leaf();
            Ok(())
        },
    },
    Subject {
        name: "patchbay::subjects::args8",
        calls: 1,
        run: |i| {
            check(
                subjects::args8(i, i + 1, i + 2, i + 3, i + 4, i + 5, i + 6, i + 7),
                subjects::args8_expected(i, i + 1, i + 2, i + 3, i + 4, i + 5, i + 6, i + 7),
            )
        },
    },
    Subject {
        name: "patchbay::subjects::fib",
        calls: subjects::fib_calls(FIB_N),
        run: |_| check(subjects::fib(FIB_N), 13),
    },
    Subject {
        name: "patchbay::subjects::observe",
        calls: 1,
        run: |i| check(subjects::observe(i), i.wrapping_mul(3).wrapping_add(7)),
    },
    Subject {
        name: "patchbay::subjects::signatures::sig_u128",
        calls: 1,
        run: |i| {
            let b = (u128::from(i) << 64) | u128::from(!i);
            check(sig::sig_u128(i, b), sig::sig_u128_twin(i, b))
        },
    },
    Subject {
        name: "patchbay::subjects::signatures::sig_pair16",
        calls: 1,
        run: |i| {
            let p = Pair16 { a: i, b: i ^ 0x55 };
            let (got, want) = (sig::sig_pair16(p, i), sig::sig_pair16_twin(p, i));
            check(
                (u128::from(got.a) << 64) | u128::from(got.b),
                (u128::from(want.a) << 64) | u128::from(want.b),
            )
        },
    },
    Subject {
        name: "patchbay::subjects::signatures::sig_args9",
        calls: 1,
        run: |i| {
            check(
                sig::sig_args9(i, 1, 2, 3, 4, 5, 6, 7, i ^ 9),
                sig::sig_args9_twin(i, 1, 2, 3, 4, 5, 6, 7, i ^ 9),
            )
        },
    },
    Subject {
        name: "patchbay::subjects::signatures::sig_large_ret",
        calls: 1,
        run: |i| {
            let (got, want) = (sig::sig_large_ret(i, 3), sig::sig_large_ret_twin(i, 3));
            check(u128::from(got.w[5]) ^ u128::from(got.w[0]) << 64, {
                u128::from(want.w[5]) ^ u128::from(want.w[0]) << 64
            })
            .and(if got == want { Ok(()) } else { Err((0, 1)) })
        },
    },
    Subject {
        name: "patchbay::subjects::signatures::sig_slice",
        calls: 1,
        run: |i| {
            let s = [i, i + 1, i + 2];
            check(sig::sig_slice(&s), sig::sig_slice_twin(&s))
        },
    },
];
const N: usize = SUBJECTS.len();

/// Per site: its epoch (odd while it changes) and its published mode.
static EPOCH: [AtomicU64; N] = [const { AtomicU64::new(0) }; N];
static MODE: [AtomicU64; N] = [const { AtomicU64::new(Mode::Off as u64) }; N];
/// Handler counts per site and CPU (each handler counts on the CPU it runs on).
static ENTRIES: [[AtomicU64; percpu::MAX_CPUS]; N] =
    [const { [const { AtomicU64::new(0) }; percpu::MAX_CPUS] }; N];
static EXITS: [[AtomicU64; percpu::MAX_CPUS]; N] =
    [const { [const { AtomicU64::new(0) }; percpu::MAX_CPUS] }; N];
/// Calls checked in a stable armed / disarmed epoch, and calls in total.
static ARMED: AtomicU64 = AtomicU64::new(0);
static DISARMED: AtomicU64 = AtomicU64::new(0);
static CALLS: AtomicU64 = AtomicU64::new(0);
/// Full loops over the subjects, per worker.
static LOOPS: [AtomicU64; WORKERS] = [const { AtomicU64::new(0) }; WORKERS];
static QUIT: AtomicBool = AtomicBool::new(false);
/// Passes over the subjects a worker makes between two waits for an interrupt (0: never waits).
static PACE: AtomicU64 = AtomicU64::new(0);
/// Site addresses, by subject index (set before the workers start).
static FUNCS: [AtomicU64; N] = [const { AtomicU64::new(0) }; N];

fn cpu() -> usize {
    percpu::this().id as usize
}

fn count(table: &[[AtomicU64; percpu::MAX_CPUS]; N], site: u64) {
    table[site as usize][cpu()].fetch_add(1, Ordering::Relaxed);
    linger();
}

/// How long every handler spins after counting, in microseconds (0 by default). A tooth sets it
/// so that a worker is inside a handler — and returns into its trampoline afterwards — most of
/// the time, as with handlers that do real work: then what the tooth breaks has a CPU to hit.
pub static LINGER_US: AtomicU64 = AtomicU64::new(0);

fn linger() {
    let us = LINGER_US.load(Ordering::Relaxed);
    if us != 0 {
        let start = arch::pmu::cntvct();
        let ticks = arch::pmu::counter_frequency() * us / 1_000_000;
        while arch::pmu::cntvct().wrapping_sub(start) < ticks {
            core::hint::spin_loop();
        }
    }
}

fn index_of(ip: u64) -> u64 {
    FUNCS
        .iter()
        .position(|f| f.load(Ordering::Relaxed) == ip)
        .expect("a storm site") as u64
}

// The handlers: each counts on its CPU, for the site in its data.
extern "C" fn on_ops(_: u64, _: u64, ops: &Ops, _: &mut FtraceRegs) {
    count(&ENTRIES, ops.data);
}
extern "C" fn on_ops_hook(ip: u64, _: u64, ops: &Ops, regs: &mut FtraceRegs) {
    count(&ENTRIES, ops.data);
    assert!(
        regs.hook_return(ip, on_hook_exit, ops.data, 0),
        "shadow stack overflow"
    );
}
extern "C" fn on_hook_exit(_: u64, site: u64, _: u64, _: &mut RetRegs) {
    count(&EXITS, site);
}
extern "C" fn on_direct(ctx: &DirectCtx, _: *mut u64) {
    count(&ENTRIES, ctx.data);
}
extern "C" fn on_fexit(ctx: &DirectCtx, _: *mut u64, _: &mut u64) {
    count(&EXITS, ctx.data);
}
extern "C" fn on_fprobe_entry(ip: u64, _: u64, _: &mut u64, _: &mut FtraceRegs) -> bool {
    count(&ENTRIES, index_of(ip));
    true
}
extern "C" fn on_fprobe_exit(ip: u64, _: u64, _: u64, _: &mut RetRegs) {
    count(&EXITS, index_of(ip));
}
extern "C" fn on_brk(_: u64, site: u64, _: &mut ExceptionFrame) {
    count(&ENTRIES, site);
}
extern "C" fn on_kret_exit(_: u64, _: u64, site: u64, _: &mut RetRegs) {
    count(&EXITS, site);
}

/// A worker: call every subject in turn, check its result and, in a stable epoch, its counts.
fn worker(seed: u64) {
    let me = cpu();
    let mut i = seed;
    let pace = PACE.load(Ordering::Relaxed);
    let mut pass = 0u64;
    while !QUIT.load(Ordering::Acquire) {
        for (s, subject) in SUBJECTS.iter().enumerate() {
            i = i.wrapping_add(0x9e37_79b9);
            let e0 = EPOCH[s].load(Ordering::Acquire);
            let mode = MODE[s].load(Ordering::Relaxed);
            let c0 = (
                ENTRIES[s][me].load(Ordering::Relaxed),
                EXITS[s][me].load(Ordering::Relaxed),
            );
            if let Err((got, want)) = (subject.run)(i) {
                panic!(
                    "storm: CPU {me}: {} returned {got:#x}, expected {want:#x} (input {i:#x})",
                    subject.name
                );
            }
            // Order the counters' reads after the call, and the epoch's after both.
            fence(Ordering::SeqCst);
            let c1 = (
                ENTRIES[s][me].load(Ordering::Relaxed),
                EXITS[s][me].load(Ordering::Relaxed),
            );
            let e1 = EPOCH[s].load(Ordering::Acquire);
            CALLS.fetch_add(1, Ordering::Relaxed);
            if e0 == e1 && e0.is_multiple_of(2) {
                let mode = MODES[mode as usize];
                let (en, ex) = mode.promises();
                let want = (en * subject.calls, ex * subject.calls);
                let got = (c1.0 - c0.0, c1.1 - c0.1);
                assert_eq!(
                    got,
                    want,
                    "storm: CPU {me}: {} in stable {mode:?} (epoch {e0}) counted (entries, exits) {got:?}, expected {want:?} (entry word {:#010x}, {} probe hits, {} refused recursions here, call word {:#010x}, shadow depth {}, overflows {})",
                    subject.name,
                    poke::read(FUNCS[s].load(Ordering::Relaxed), poke::Width::Insn),
                    kprobe::hits(),
                    percpu::this().trace_recursions.load(Ordering::Relaxed),
                    poke::read(FUNCS[s].load(Ordering::Relaxed) + 4, poke::Width::Insn),
                    patchbay::trace::rethook::depth(),
                    patchbay::trace::rethook::overflows(),
                );
                if mode == Mode::Off {
                    DISARMED.fetch_add(1, Ordering::Relaxed);
                } else {
                    ARMED.fetch_add(1, Ordering::Relaxed);
                }
            }
            assert_eq!(
                rethook::depth(),
                0,
                "storm: CPU {me}: shadow stack not empty between calls"
            );
            assert!(
                grace::quiescent(),
                "storm: a worker loop is outside tracing"
            );
        }
        LOOPS[me - 1].fetch_add(1, Ordering::Release);
        pass += 1;
        if pace != 0 && pass % pace == 0 {
            // Until the next interrupt: the tick, a kick or a grace period's nudge.
            arch::cpu::wfi();
        }
    }
}

/// What a site holds.
#[derive(Clone, Copy, Debug)]
enum Held {
    None,
    Ops(OpsId),
    Fprobe(OpsId),
    Probe(kprobe::ProbeId),
}

/// A stop-the-world that timed out (the host did not run a vCPU for a second): nothing was
/// changed, so the switch is tried again, at most [`STOP_RETRIES`] times, and counted.
fn stop_timed_out(e: &TraceError) -> bool {
    matches!(
        e,
        TraceError::Patch(PatchError::Stop(StopError::Timeout { .. }))
    )
}

const STOP_RETRIES: usize = 5;
static RETRIES: AtomicU64 = AtomicU64::new(0);

/// `f` again while it fails with a stop timeout, at most [`STOP_RETRIES`] more times.
fn retrying<T>(mut f: impl FnMut() -> Result<T, TraceError>) -> Result<T, TraceError> {
    let mut left = STOP_RETRIES;
    loop {
        match f() {
            Err(e) if left > 0 && stop_timed_out(&e) => {
                left -= 1;
                RETRIES.fetch_add(1, Ordering::Relaxed);
            }
            r => return r,
        }
    }
}

fn attach(s: usize, mode: Mode) -> Held {
    retrying(|| try_attach(s, mode)).unwrap_or_else(|e| {
        panic!(
            "storm: attaching {mode:?} to {}: {e}",
            sites::by_addr(FUNCS[s].load(Ordering::Relaxed))
                .unwrap()
                .name
        )
    })
}

fn try_attach(s: usize, mode: Mode) -> Result<Held, TraceError> {
    let site = sites::by_addr(FUNCS[s].load(Ordering::Relaxed)).unwrap();
    let data = s as u64;
    let glob = || Filter::Addrs(alloc::vec![site.func]);
    let direct = |kind, reach| trace::attach_direct(site, kind, data, reach);
    match mode {
        Mode::Off => Ok(Held::None),
        Mode::List => trace::attach(glob(), on_ops, data, TraceMode::List).map(Held::Ops),
        Mode::CallOps => trace::attach(glob(), on_ops, data, TraceMode::CallOps).map(Held::Ops),
        Mode::DirectNear => direct(DirectKind::Entry(on_direct), Reach::Near).map(Held::Ops),
        Mode::FarViaOps => direct(DirectKind::Entry(on_direct), Reach::FarViaOps).map(Held::Ops),
        Mode::FarViaVeneer => {
            direct(DirectKind::Entry(on_direct), Reach::FarViaVeneer).map(Held::Ops)
        }
        Mode::Fexit => direct(DirectKind::Fexit(on_fexit), Reach::Near).map(Held::Ops),
        Mode::Rethook => trace::attach(glob(), on_ops_hook, data, TraceMode::List).map(Held::Ops),
        Mode::Fprobe => fprobe::register(
            glob(),
            Some(on_fprobe_entry),
            Some(on_fprobe_exit),
            0,
            TraceMode::CallOps,
        )
        .map(Held::Fprobe),
        Mode::Brk => kprobe::register_kprobe(site, on_brk, data).map(Held::Probe),
        Mode::Kretprobe => {
            kprobe::register_kretprobe(site, None, on_kret_exit, data).map(Held::Probe)
        }
        // Over the entry's first word (`mov x9, x30`, or `bti c` in the hardened build): not
        // CMODX-safe, so it is written under stop-the-world — the storm's one such change.
        Mode::EntryBrk => {
            kprobe::register_kprobe_at(site, site.func, on_brk, data).map(Held::Probe)
        }
    }
}

fn detach(held: Held) {
    retrying(|| try_detach(held)).unwrap_or_else(|e| panic!("storm: detaching {held:?}: {e}"));
}

fn try_detach(held: Held) -> Result<(), TraceError> {
    match held {
        Held::None => Ok(()),
        Held::Ops(id) => trace::detach(id),
        Held::Fprobe(id) => fprobe::unregister(id),
        Held::Probe(id) => kprobe::unregister(id),
    }
}

/// xorshift64*: the switch sequence from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn seconds_since(start: u64) -> u64 {
    (arch::pmu::cntvct() - start) / arch::pmu::counter_frequency()
}

/// Run the storm; returns after every check passed (a failed check panics, a fault ends the
/// run with its report).
pub fn run() {
    let seed = boot_info::get()
        .bootarg("storm.seed")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| arch::pmu::cntvct() | 1);
    let switches = boot_info::get()
        .bootarg("storm.switches")
        .and_then(|v| v.parse().ok())
        .unwrap_or(SWITCHES);
    let pace = boot_info::get()
        .bootarg("storm.pace")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    PACE.store(pace, Ordering::Relaxed);
    println!(
        "storm: seed {seed} (boot argument storm.seed={seed} repeats the switch sequence), {switches} switches"
    );
    assert_eq!(percpu::online(), 1 + WORKERS as u32, "storm: needs 4 CPUs");
    let boot_text = text::text_hash();
    let pools =
        [PoolKind::Near, PoolKind::Far].map(|k| (pool::usage(k), text::hash_range(k.range())));
    let grace0 = grace::stats();
    for (s, subject) in SUBJECTS.iter().enumerate() {
        FUNCS[s].store(
            sites::by_name(subject.name).unwrap().func,
            Ordering::Relaxed,
        );
    }
    for w in 1..=WORKERS {
        smp::run_on(w, worker, w as u64 * 0x1234_5678).unwrap();
    }
    let mut held = [Held::None; N];
    let mut rng = Rng(seed);
    let start = arch::pmu::cntvct();
    let (mut n, mut sync_ticks) = (0, 0);
    while n < switches {
        // A round: up to ROUND distinct sites change, then one grace period covers them all.
        let mut round = [(0usize, Mode::Off); ROUND];
        let mut k = 0;
        while k < ROUND && n + (k as u64) < switches {
            let s = (rng.next() % N as u64) as usize;
            if round[..k].iter().any(|&(t, _)| t == s) {
                continue;
            }
            let old = MODES[MODE[s].load(Ordering::Relaxed) as usize];
            let new = loop {
                let m = MODES[(rng.next() % MODES.len() as u64) as usize];
                if m != old {
                    break m;
                }
            };
            round[k] = (s, new);
            k += 1;
        }
        for &(s, new) in &round[..k] {
            let old = MODES[MODE[s].load(Ordering::Relaxed) as usize];
            EPOCH[s].fetch_add(1, Ordering::AcqRel);
            // Attach the new mode first where the two can share the site (no gap in tracing);
            // one direct trampoline per site, and BRK probes need the compiled entry.
            if old.exclusive() || new.exclusive() || (old.direct() && new.direct()) {
                detach(held[s]);
                held[s] = attach(s, new);
            } else {
                let h = attach(s, new);
                detach(held[s]);
                held[s] = h;
            }
        }
        let t1 = arch::pmu::cntvct();
        // Fully applied: no handler of an old mode runs anywhere any more.
        grace::synchronize().unwrap_or_else(|e| panic!("storm: after switch {n}: {e}"));
        sync_ticks += arch::pmu::cntvct() - t1;
        for &(s, new) in &round[..k] {
            MODE[s].store(new as u64, Ordering::Relaxed);
            EPOCH[s].fetch_add(1, Ordering::Release);
        }
        let before = n;
        n += k as u64;
        if n / 1000 != before / 1000 {
            println!(
                "storm: {n} switches in {} s, {} calls, {} checked armed, {} checked off",
                seconds_since(start),
                CALLS.load(Ordering::Relaxed),
                ARMED.load(Ordering::Relaxed),
                DISARMED.load(Ordering::Relaxed)
            );
        }
    }
    QUIT.store(true, Ordering::Release);
    while !(1..=WORKERS).all(smp::idle_cpu) {
        assert!(
            seconds_since(start) < 600,
            "storm: the workers did not stop"
        );
        core::hint::spin_loop();
    }
    for h in held {
        detach(h);
    }
    grace::synchronize().unwrap();

    let (armed, off) = (
        ARMED.load(Ordering::Relaxed),
        DISARMED.load(Ordering::Relaxed),
    );
    assert!(
        armed >= 1000 && off >= 100,
        "storm: too few calls checked in stable epochs (armed {armed}, off {off})"
    );
    let (hooked, returned) = rethook::counts();
    assert_eq!(hooked, returned, "storm: a return hook without its exit");
    assert_eq!(rethook::overflows(), 0, "storm: shadow stack overflows");
    let g = grace::stats();
    assert_eq!(
        g.deferred, g.freed,
        "storm: deferred items not freed: {g:?}"
    );
    assert!(
        g.completed - grace0.completed >= switches / ROUND as u64,
        "storm: fewer grace periods than switches: {g:?}"
    );
    assert_eq!(trace::attach::attached(), 0);
    assert!(kprobe::probes().is_empty());
    for (k, (usage, hash)) in [PoolKind::Near, PoolKind::Far].into_iter().zip(pools) {
        let now = pool::usage(k);
        assert_eq!(
            (now.used, now.blocks),
            (usage.used, usage.blocks),
            "storm: {k:?} pool not back to its start usage"
        );
        assert_eq!(text::hash_range(k.range()), hash, "storm: {k:?} pool bytes");
    }
    assert_eq!(
        text::text_hash(),
        boot_text,
        "storm: text not byte-identical to boot"
    );
    let mut line = alloc::string::String::new();
    let _ = write!(
        line,
        "storm: PASS seed {seed}: {switches} switches in {} s ({} s of it waiting for grace periods), {} calls, {armed} checked armed, {off} checked off, {} grace periods ({} deferred frees), {hooked} return hooks paired, {} switches retried after a stop timeout",
        seconds_since(start),
        sync_ticks / arch::pmu::counter_frequency(),
        CALLS.load(Ordering::Relaxed),
        g.completed - grace0.completed,
        g.freed - grace0.freed,
        RETRIES.load(Ordering::Relaxed),
    );
    println!("{line}");
}
