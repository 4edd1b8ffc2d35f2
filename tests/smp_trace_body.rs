// The body of the SMP tracing tests (tests/smp_trace*.rs; each defines `CPUS`, the CPUs its
// QEMU directives boot): every online CPU runs the recursive subject under every tracing
// mechanism, counted per CPU and per context; then the same under a timer tick of several kHz
// whose interrupt handler calls the traced subject itself, landing inside traced calls and
// inside their handlers.
//
// What the storm checks, per mechanism and per CPU:
// - every result is right, in normal and in interrupt context;
// - every traced call is traced, in both contexts: the entry (or fexit) handler ran exactly
//   `fib_calls(n)` times per subject call, also for the calls an interrupt made while it had
//   landed inside a handler (with one recursion guard for both contexts those were refused:
//   `make test-guard-teeth` builds that and expects this test to fail);
// - every return hook's exit ran, once per entry, and every shadow stack is empty at the end;
// - the deliberate true recursions (a handler calling the traced subject, in both contexts) are
//   refused and counted, and nothing else is;
// - interrupts really landed inside handlers (and, for return hooks, inside hooked calls).

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use patchbay::{
    arch,
    exception::ExceptionFrame,
    ipi::{self, CpuSet, Wait},
    irq, kernel_test,
    patch::{PatchError, sites, text::text_hash},
    percpu::{self, MAX_CPUS},
    smp,
    stop::StopError,
    subjects,
    trace::{
        self, DirectCtx, DirectKind, Filter, FtraceRegs, Mode, Ops, OpsId, Reach, TraceError,
        fprobe, kprobe,
        rethook::{self, RetRegs},
    },
};

static BOOT_HASH: AtomicU64 = AtomicU64::new(0);

patchbay::test_kernel_main!(BOOT_HASH.store(text_hash(), Ordering::Relaxed));

/// The subject: `fib(N)` from normal context, `fib(IRQ_N)` from the timer interrupt.
const N: u64 = 6;
const IRQ_N: u64 = 3;

/// Per CPU, per context (0 normal, 1 interrupt).
struct Counters([[AtomicU64; 2]; MAX_CPUS]);

impl Counters {
    const fn new() -> Self {
        Counters([const { [const { AtomicU64::new(0) }, const { AtomicU64::new(0) }] }; MAX_CPUS])
    }
    fn add(&self, cpu: usize, ctx: usize) {
        self.0[cpu][ctx].fetch_add(1, Ordering::Relaxed);
    }
    fn get(&self, cpu: usize, ctx: usize) -> u64 {
        self.0[cpu][ctx].load(Ordering::Relaxed)
    }
    fn clear(&self) {
        for c in self.0.iter().flatten() {
            c.store(0, Ordering::Relaxed);
        }
    }
}

/// Entry handlers run (fexit: its handler, which runs once per call after the body).
static ENTRIES: Counters = Counters::new();
/// Exit handlers run (return hooks).
static EXITS: Counters = Counters::new();
/// Subject calls made (`fib(N)` in normal context, `fib(IRQ_N)` from the tick) and wrong results.
static CALLS: Counters = Counters::new();
static WRONG: Counters = Counters::new();
/// Deliberate recursions: a handler called the traced subject (must be refused).
static DELIBERATE: Counters = Counters::new();
/// Ask the next handler in this CPU's context to call the traced subject (set by the test).
static RECURSE: [[AtomicBool; 2]; MAX_CPUS] =
    [const { [const { AtomicBool::new(false) }, const { AtomicBool::new(false) }] }; MAX_CPUS];

/// Per CPU: a normal-context handler is running / hooked calls in flight in normal context.
static IN_HANDLER: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
static IN_CALL: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// Per CPU: ticks that landed inside a normal-context handler / inside a hooked call.
static NESTED_IN_HANDLER: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static NESTED_IN_CALL: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// This CPU and its context (1 in an interrupt handler).
fn here() -> (usize, usize) {
    let cpu = percpu::this();
    (
        cpu.id as usize,
        usize::from(cpu.irq_depth.load(Ordering::Relaxed) != 0),
    )
}

/// What every entry handler does: count, make a requested deliberate recursion, and, in normal
/// context, stay a while with `IN_HANDLER` set so that ticks land inside the handler.
fn on_entry(hooks_exit: bool) {
    let (cpu, ctx) = here();
    ENTRIES.add(cpu, ctx);
    if RECURSE[cpu][ctx].swap(false, Ordering::Relaxed) {
        DELIBERATE.add(cpu, ctx);
        // A traced call from inside a handler: the guard must refuse it (untraced, counted).
        core::hint::black_box(subjects::fib(core::hint::black_box(1)));
    }
    if ctx == 0 {
        if hooks_exit {
            IN_CALL[cpu].fetch_add(1, Ordering::Relaxed);
        }
        IN_HANDLER[cpu].store(true, Ordering::Relaxed);
        for _ in 0..100 {
            core::hint::spin_loop();
        }
        IN_HANDLER[cpu].store(false, Ordering::Relaxed);
    }
}

fn on_exit() {
    let (cpu, ctx) = here();
    EXITS.add(cpu, ctx);
    if ctx == 0 {
        IN_CALL[cpu].fetch_sub(1, Ordering::Relaxed);
    }
}

extern "C" fn ops_entry(_: u64, _: u64, _: &Ops, _: &mut FtraceRegs) {
    on_entry(false);
}
extern "C" fn direct_entry(_: &DirectCtx, _: *mut u64) {
    on_entry(false);
}
extern "C" fn fexit(_: &DirectCtx, _: *mut u64, _: &mut u64) {
    on_entry(false);
}
extern "C" fn exit(_: u64, _: u64, _: u64, _: &mut RetRegs) {
    on_exit();
}
extern "C" fn rethook_entry(ip: u64, _: u64, _: &Ops, regs: &mut FtraceRegs) {
    // Hook first: the entry counts as in flight before the handler lingers.
    assert!(regs.hook_return(ip, exit, 0, 0), "shadow stack full");
    on_entry(true);
}
extern "C" fn fprobe_entry(_: u64, _: u64, _: &mut u64, _: &mut FtraceRegs) -> bool {
    on_entry(true);
    true
}
extern "C" fn fprobe_exit(_: u64, _: u64, _: u64, _: &mut RetRegs) {
    on_exit();
}
extern "C" fn brk_entry(_: u64, _: u64, _: &mut ExceptionFrame) {
    on_entry(false);
}
extern "C" fn kretprobe_entry(_: u64, _: u64, _: &mut ExceptionFrame) {
    on_entry(true);
}

/// One tracing mechanism under test.
struct Mechanism {
    name: &'static str,
    attach: fn() -> u64,
    detach: fn(u64),
    /// Its exit handler runs once per call.
    exits: bool,
    /// Its entry handler runs with IRQs unmasked (not in the BRK exception).
    interruptible: bool,
    /// Its handlers run under the recursion guard (direct trampolines carry none, by decision:
    /// src/trace/direct.rs), so a deliberate recursion is made and must be refused.
    guarded: bool,
}

fn site() -> &'static sites::Site<'static> {
    sites::by_addr(subjects::fib as *const () as u64).unwrap()
}

/// Attach or detach, again if the stop-the-world a first arm or a restore needs timed out: the
/// runs without icount give the other CPUs 1 s of host time to arrive, which an overloaded host
/// may not schedule them in (a timed-out stop writes nothing; tests/stop.rs tests the timeout).
fn patching<T>(what: impl Fn() -> Result<T, TraceError>) -> T {
    let mut attempts = 0;
    loop {
        match what() {
            Err(TraceError::Patch(PatchError::Stop(StopError::Timeout { .. }))) if attempts < 4 => {
                attempts += 1
            }
            r => return r.unwrap(),
        }
    }
}

fn ops(mode: Mode, handler: trace::Handler) -> u64 {
    patching(|| trace::attach(Filter::Addrs([site().func].into()), handler, 0, mode)).0
}

fn direct(kind: DirectKind, reach: Reach) -> u64 {
    patching(|| trace::attach_direct(site(), kind, 0, reach)).0
}

fn detach_ops(id: u64) {
    patching(|| trace::detach(OpsId(id)))
}

fn detach_probe(id: u64) {
    kprobe::unregister(kprobe::ProbeId(id)).unwrap()
}

static MECHANISMS: &[Mechanism] = &[
    Mechanism {
        name: "list",
        attach: || ops(Mode::List, ops_entry),
        detach: detach_ops,
        exits: false,
        interruptible: true,
        guarded: true,
    },
    Mechanism {
        name: "call-ops",
        attach: || ops(Mode::CallOps, ops_entry),
        detach: detach_ops,
        exits: false,
        interruptible: true,
        guarded: true,
    },
    Mechanism {
        name: "direct near",
        attach: || direct(DirectKind::Entry(direct_entry), Reach::Near),
        detach: detach_ops,
        exits: false,
        interruptible: true,
        guarded: false,
    },
    Mechanism {
        name: "direct far via ops",
        attach: || direct(DirectKind::Entry(direct_entry), Reach::FarViaOps),
        detach: detach_ops,
        exits: false,
        interruptible: true,
        guarded: false,
    },
    Mechanism {
        name: "direct far via veneer",
        attach: || direct(DirectKind::Entry(direct_entry), Reach::FarViaVeneer),
        detach: detach_ops,
        exits: false,
        interruptible: true,
        guarded: false,
    },
    Mechanism {
        name: "fexit",
        attach: || direct(DirectKind::Fexit(fexit), Reach::Near),
        detach: detach_ops,
        exits: false,
        interruptible: true,
        guarded: false,
    },
    Mechanism {
        name: "rethook",
        attach: || ops(Mode::CallOps, rethook_entry),
        detach: detach_ops,
        exits: true,
        interruptible: true,
        guarded: true,
    },
    Mechanism {
        name: "fprobe",
        attach: || {
            patching(|| {
                fprobe::register(
                    Filter::Addrs([site().func].into()),
                    Some(fprobe_entry),
                    Some(fprobe_exit), 0,
                    Mode::CallOps,
                )
            })
            .0
        },
        detach: |id| patching(|| fprobe::unregister(OpsId(id))),
        exits: true,
        interruptible: true,
        guarded: true,
    },
    Mechanism {
        name: "BRK kprobe",
        attach: || kprobe::register_kprobe(site(), brk_entry, 0).unwrap().0,
        detach: detach_probe,
        exits: false,
        interruptible: false,
        guarded: true,
    },
    Mechanism {
        name: "kretprobe",
        attach: || {
            kprobe::register_kretprobe(site(), Some(kretprobe_entry), exit, 0)
                .unwrap()
                .0
        },
        detach: detach_probe,
        exits: true,
        interruptible: false,
        guarded: true,
    },
];

fn clear_all() {
    for c in [&ENTRIES, &EXITS, &CALLS, &WRONG, &DELIBERATE] {
        c.clear();
    }
    for c in NESTED_IN_HANDLER.iter().chain(&NESTED_IN_CALL).chain(&IN_CALL) {
        c.store(0, Ordering::Relaxed);
    }
    for r in RECURSE.iter().flatten() {
        r.store(false, Ordering::Relaxed);
    }
}

/// One traced subject call in this CPU's current context, its result checked.
fn call(n: u64) {
    let (cpu, ctx) = here();
    CALLS.add(cpu, ctx);
    if subjects::fib(core::hint::black_box(n)) != subjects::fib_twin(n) {
        WRONG.add(cpu, ctx);
    }
}

/// Normal-context work: how many `fib(N)` calls, or (0) until the storm's goals are met.
static ROUNDS: AtomicU64 = AtomicU64::new(0);
/// What the storm waits for, per CPU (set per mechanism).
static WANT_NESTED_HANDLER: AtomicBool = AtomicBool::new(false);
static WANT_NESTED_CALL: AtomicBool = AtomicBool::new(false);
/// The mechanism under test guards its handlers: make deliberate recursions.
static GUARDED: AtomicBool = AtomicBool::new(false);
/// Ticks per CPU, and interrupt-context nestings, the storm waits for.
const STORM_GOAL: u64 = 3;
/// Give up after this long (the goals were not met: the checks below say which).
const STORM_MS: u64 = 20_000;

fn storm_done(cpu: usize) -> bool {
    CALLS.get(cpu, 1) >= STORM_GOAL
        && (!GUARDED.load(Ordering::Relaxed) || DELIBERATE.get(cpu, 1) >= 1)
        && (!WANT_NESTED_HANDLER.load(Ordering::Relaxed)
            || NESTED_IN_HANDLER[cpu].load(Ordering::Relaxed) >= STORM_GOAL)
        && (!WANT_NESTED_CALL.load(Ordering::Relaxed)
            || NESTED_IN_CALL[cpu].load(Ordering::Relaxed) >= STORM_GOAL)
}

/// The work every CPU runs (secondaries through `smp::run_on`, CPU 0 itself): a deliberate
/// recursion first, then `fib(N)` calls.
fn work(_: u64) {
    let (cpu, _) = here();
    RECURSE[cpu][0].store(GUARDED.load(Ordering::Relaxed), Ordering::Relaxed);
    call(N);
    let rounds = ROUNDS.load(Ordering::Relaxed);
    if rounds != 0 {
        for _ in 1..rounds {
            call(N);
        }
        return;
    }
    let start = arch::pmu::cntvct();
    let limit = arch::pmu::counter_frequency() * STORM_MS / 1000;
    while !storm_done(cpu) && arch::pmu::cntvct() - start < limit {
        call(N);
    }
}

/// The timer interrupt's hook: note where the tick landed, sometimes ask for a deliberate
/// recursion, call the traced subject.
fn tick_hook() {
    let (cpu, _) = here();
    if IN_HANDLER[cpu].load(Ordering::Relaxed) {
        NESTED_IN_HANDLER[cpu].fetch_add(1, Ordering::Relaxed);
    }
    if IN_CALL[cpu].load(Ordering::Relaxed) != 0 {
        NESTED_IN_CALL[cpu].fetch_add(1, Ordering::Relaxed);
    }
    if GUARDED.load(Ordering::Relaxed) && CALLS.get(cpu, 1) % 4 == 1 {
        RECURSE[cpu][1].store(true, Ordering::Relaxed);
    }
    call(IRQ_N);
}

/// Run `work` on every online CPU and wait for all of them.
fn on_every_cpu() {
    let cpus = percpu::online() as usize;
    for cpu in 1..cpus {
        smp::run_on(cpu, work, 0).unwrap();
    }
    work(0);
    let start = arch::pmu::cntvct();
    while !(1..cpus).all(smp::idle_cpu) {
        assert!(
            arch::pmu::cntvct() - start < arch::pmu::counter_frequency() * (STORM_MS / 1000 + 10),
            "a CPU did not finish its work"
        );
        core::hint::spin_loop();
    }
}

/// Every CPU has left any tick hook it was running: an IPI waited for on each other CPU is
/// taken only after its current interrupt returned; this CPU is not in one.
fn hooks_quiet() {
    if percpu::online() > 1 {
        ipi::call(CpuSet::others(), |_| {}, 0, Wait::Done).unwrap();
    }
}

fn recursions(cpu: usize) -> u64 {
    percpu::CPUS[cpu].trace_recursions.load(Ordering::Relaxed)
}

/// Check one mechanism's counts on every CPU: `storm` says whether ticks called the subject.
fn check(m: &Mechanism, refused_before: &[u64], storm: bool) {
    let per_call = [subjects::fib_calls(N), subjects::fib_calls(IRQ_N)];
    for cpu in 0..percpu::online() as usize {
        let who = |ctx: usize| {
            alloc::format!(
                "{}: CPU {cpu} {}",
                m.name,
                ["normal context", "interrupt context"][ctx]
            )
        };
        for (ctx, per_call) in per_call.into_iter().enumerate() {
            let calls = CALLS.get(cpu, ctx);
            assert_eq!(WRONG.get(cpu, ctx), 0, "{}: wrong results", who(ctx));
            // The deliberate recursion's call is refused: it is not traced.
            assert_eq!(
                ENTRIES.get(cpu, ctx),
                calls * per_call,
                "{}: traced calls ({calls} subject calls, {} deliberate recursions)",
                who(ctx),
                DELIBERATE.get(cpu, ctx)
            );
            let exits = if m.exits { ENTRIES.get(cpu, ctx) } else { 0 };
            assert_eq!(EXITS.get(cpu, ctx), exits, "{}: exits", who(ctx));
        }
        assert!(CALLS.get(cpu, 0) > 0, "{}: CPU {cpu} ran nothing", m.name);
        assert_eq!(
            recursions(cpu) - refused_before[cpu],
            DELIBERATE.get(cpu, 0) + DELIBERATE.get(cpu, 1),
            "{}: CPU {cpu}: refused recursions are exactly the deliberate ones",
            m.name
        );
        if storm {
            assert!(CALLS.get(cpu, 1) >= STORM_GOAL, "{}: CPU {cpu}: too few ticks", m.name);
            if m.interruptible {
                assert!(
                    NESTED_IN_HANDLER[cpu].load(Ordering::Relaxed) >= STORM_GOAL,
                    "{}: CPU {cpu}: no tick landed inside a handler",
                    m.name
                );
            }
            if m.exits {
                assert!(
                    NESTED_IN_CALL[cpu].load(Ordering::Relaxed) >= STORM_GOAL,
                    "{}: CPU {cpu}: no tick landed inside a hooked call",
                    m.name
                );
            }
        } else {
            assert_eq!(CALLS.get(cpu, 1), 0, "{}: CPU {cpu}: a tick called the subject", m.name);
        }
    }
    // Every hooked call returned through its exit: no shadow stack holds an entry.
    let (hooked, returned) = rethook::counts();
    assert_eq!(hooked, returned, "{}: hooked calls still in flight", m.name);
    for (cpu, in_call) in IN_CALL[..percpu::online() as usize].iter().enumerate() {
        assert_eq!(in_call.load(Ordering::Relaxed), 0, "{}: CPU {cpu}", m.name);
    }
    assert_eq!(rethook::depth(), 0, "{}: CPU 0's shadow stack", m.name);
}

fn run(m: &Mechanism, storm: bool) {
    clear_all();
    let refused: [u64; MAX_CPUS] = core::array::from_fn(recursions);
    GUARDED.store(m.guarded, Ordering::Relaxed);
    let id = (m.attach)();
    if storm {
        ROUNDS.store(0, Ordering::Relaxed);
        WANT_NESTED_HANDLER.store(m.interruptible, Ordering::Relaxed);
        WANT_NESTED_CALL.store(m.exits, Ordering::Relaxed);
        irq::set_tick_hook(Some(tick_hook));
    } else {
        ROUNDS.store(20, Ordering::Relaxed);
    }
    on_every_cpu();
    irq::set_tick_hook(None);
    hooks_quiet();
    (m.detach)(id);
    check(m, &refused, storm);
}

#[kernel_test]
fn every_cpu_traces_the_subject_under_every_mechanism() {
    assert_eq!(percpu::online() as usize, CPUS);
    for m in MECHANISMS {
        run(m, false);
    }
    assert_eq!(text_hash(), BOOT_HASH.load(Ordering::Relaxed), "text restored");
}

#[kernel_test]
fn traced_calls_from_timer_interrupts_inside_traced_calls_are_traced() {
    assert!(irq::tick_hz() >= 2000, "the storm needs a fast tick");
    for m in MECHANISMS {
        run(m, true);
    }
    // Every CPU's shadow stack is empty (each checked on its own CPU).
    for cpu in 1..percpu::online() as usize {
        smp::run_on(cpu, |_| assert_eq!(rethook::depth(), 0), 0).unwrap();
        while !smp::idle_cpu(cpu) {
            core::hint::spin_loop();
        }
    }
    assert_eq!(text_hash(), BOOT_HASH.load(Ordering::Relaxed), "text restored");
}
