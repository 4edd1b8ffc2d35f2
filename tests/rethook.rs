//! Return hooks: rethook from every entry path (list, call-ops, direct, BRK), fprobe with
//! per-call data, kprobe/kretprobe, shadow-stack overflow, and backtraces from inside entry,
//! exit and BRK handlers compared with the untraced backtrace.
#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(patchbay::ktest::runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use patchbay::{
    exception::ExceptionFrame,
    kernel_test,
    patch::{poke, sites, text},
    subjects, symbols,
    trace::{
        self, DirectCtx, DirectKind, Filter, FtraceRegs, Mode, Reach, fprobe, kprobe,
        rethook::{self, RetRegs},
    },
    unwind,
};
use patchbay_pure::{harden, insn};

patchbay::qemu_directives!("timeout=120");

static BOOT: AtomicU64 = AtomicU64::new(0);

patchbay::test_kernel_main!(BOOT.store(text::text_hash(), Ordering::Relaxed));

fn site(name: &str) -> &'static sites::Site<'static> {
    sites::by_name(name).unwrap()
}

static ENTRIES: AtomicU64 = AtomicU64::new(0);
static EXITS: AtomicU64 = AtomicU64::new(0);
/// (ip, per-call data, return value) seen by exit handlers.
static EXIT_LOG: spin::Mutex<Vec<(u64, u64, u64)>> = spin::Mutex::new(Vec::new());

fn reset() {
    ENTRIES.store(0, Ordering::Relaxed);
    EXITS.store(0, Ordering::Relaxed);
    EXIT_LOG.lock().clear();
}

extern "C" fn fp_entry(_ip: u64, _ctx: u64, data: &mut u64, regs: &mut FtraceRegs) -> bool {
    ENTRIES.fetch_add(1, Ordering::Relaxed);
    *data = regs.arg(0) + 1000; // per-call data: derived from this call's argument
    true
}

/// The exit of every path (fprobe's exit type is rethook's, which kretprobes use too).
extern "C" fn log_exit(ip: u64, _ctx: u64, data: u64, regs: &mut RetRegs) {
    EXITS.fetch_add(1, Ordering::Relaxed);
    EXIT_LOG.lock().push((ip, data, regs.return_value()));
}

extern "C" fn fp_exit_changes(_: u64, _: u64, _: u64, regs: &mut RetRegs) {
    regs.set_return_value(regs.return_value() + 7_000);
}

extern "C" fn direct_entry_hooks(ctx: &DirectCtx, args: *mut u64) {
    ENTRIES.fetch_add(1, Ordering::Relaxed);
    // SAFETY: `args` is what the trampoline passed.
    let data = unsafe { ctx.args(args) }.first().copied().unwrap_or(0) + 1000;
    // SAFETY: as above.
    unsafe { ctx.hook_return(args, log_exit, 0, data) };
}

extern "C" fn kp_entry(_ip: u64, _data: u64, _frame: &mut ExceptionFrame) {
    ENTRIES.fetch_add(1, Ordering::Relaxed);
}

/// Every way of hooking returns, as (name, attach, detach).
#[derive(Clone, Copy, Debug)]
enum Path {
    FprobeList,
    FprobeCallOps,
    Direct,
    Kretprobe,
}
const PATHS: [Path; 4] = [
    Path::FprobeList,
    Path::FprobeCallOps,
    Path::Direct,
    Path::Kretprobe,
];

enum Handle {
    Ops(trace::OpsId),
    Probe(kprobe::ProbeId),
}

fn hook(path: Path, s: &'static sites::Site<'static>) -> Handle {
    match path {
        Path::FprobeList => Handle::Ops(
            fprobe::register(
                Filter::Addrs([s.func].into()),
                Some(fp_entry),
                Some(log_exit),
                0,
                Mode::List,
            )
            .unwrap(),
        ),
        Path::FprobeCallOps => Handle::Ops(
            fprobe::register(
                Filter::Addrs([s.func].into()),
                Some(fp_entry),
                Some(log_exit),
                0,
                Mode::CallOps,
            )
            .unwrap(),
        ),
        Path::Direct => Handle::Ops(
            trace::attach_direct(s, DirectKind::Entry(direct_entry_hooks), 0, Reach::Near).unwrap(),
        ),
        Path::Kretprobe => {
            Handle::Probe(kprobe::register_kretprobe(s, Some(kp_entry), log_exit, 77).unwrap())
        }
    }
}

fn unhook(path: Path, h: Handle) {
    match (path, h) {
        (Path::FprobeList | Path::FprobeCallOps, Handle::Ops(id)) => {
            fprobe::unregister(id).unwrap()
        }
        (Path::Direct, Handle::Ops(id)) => trace::detach(id).unwrap(),
        (Path::Kretprobe, Handle::Probe(id)) => kprobe::unregister(id).unwrap(),
        _ => unreachable!(),
    }
}

fn boot_state() {
    assert_eq!(
        text::text_hash(),
        BOOT.load(Ordering::Relaxed),
        "text back to its boot bytes"
    );
    assert_eq!(rethook::depth(), 0, "shadow stack empty");
    let (hooked, returned) = rethook::counts();
    assert_eq!(
        hooked, returned,
        "every hooked call returned through its hook"
    );
    assert!(kprobe::probes().is_empty());
    assert_eq!(trace::attach::attached(), 0);
}

#[kernel_test]
fn entry_and_exit_counts_match_on_every_subject_and_path() {
    for path in PATHS {
        for (name, call) in [
            (
                "patchbay::subjects::leaf",
                (|| {
                    subjects::leaf();
                }) as fn(),
            ),
            ("patchbay::subjects::args8", || {
                subjects::args8(1, 2, 3, 4, 5, 6, 7, 8);
            }),
            ("patchbay::subjects::fib", || {
                subjects::fib(8);
            }),
            ("patchbay::subjects::observe", || {
                subjects::observe(3);
            }),
        ] {
            reset();
            let h = hook(path, site(name));
            for _ in 0..3 {
                call();
            }
            unhook(path, h);
            let (en, ex) = (
                ENTRIES.load(Ordering::Relaxed),
                EXITS.load(Ordering::Relaxed),
            );
            let per_call = if name.ends_with("fib") {
                subjects::fib_calls(8)
            } else {
                1
            };
            assert_eq!((en, ex), (3 * per_call, 3 * per_call), "{path:?} {name}");
        }
    }
    boot_state();
}

static PARENT: AtomicU64 = AtomicU64::new(0);

extern "C" fn fp_entry_parent(_ip: u64, _: u64, _: &mut u64, regs: &mut FtraceRegs) -> bool {
    PARENT.store(regs.parent_ip(), Ordering::Relaxed);
    true
}

/// Where `pac-ret` signs, proved on the image: `bti c` at the function's address (hardened
/// build), the site's two entry words, then the body, whose first instruction is `paciasp`. A
/// return hook therefore replaces the caller's *unsigned* return address at the site (x9 / x30
/// before the `paciasp`); the function signs the return trampoline's address itself and
/// authenticates it on the way out, and the hooked call returns normally.
#[kernel_test]
fn return_hooks_replace_the_unsigned_return_address() {
    let s = site("patchbay::subjects::leaf");
    let word = |a: u64| poke::read(a, poke::Width::Insn) as u32;
    assert_eq!(word(s.func) == insn::BTI_C, harden::HARDENED);
    assert_eq!(word(s.body()) == insn::PACIASP, harden::HARDENED);
    reset();
    let id = fprobe::register(
        Filter::Addrs([s.func].into()),
        Some(fp_entry_parent),
        Some(log_exit),
        0,
        Mode::CallOps,
    )
    .unwrap();
    subjects::leaf();
    fprobe::unregister(id).unwrap();
    let parent = PARENT.load(Ordering::Relaxed);
    assert!(
        !harden::has_pac_bits(parent),
        "the site saw a signed return address {parent:#x}"
    );
    // It is the address after this test's `bl leaf`.
    assert!(insn::is_bl(word(parent - 4)), "{parent:#x}");
    assert_eq!(
        (
            ENTRIES.load(Ordering::Relaxed),
            EXITS.load(Ordering::Relaxed)
        ),
        (0, 1)
    );
}

/// A BRK probe at the function's address displaces the hardened build's `bti c` (the entry's
/// `mov x9, x30`, written at boot, in the plain build) and emulates it, for a direct call and for a `blr` (PSTATE.BTYPE 0b10, which
/// `bti c` accepts); a probe on the body's `paciasp` is refused and writes nothing.
#[kernel_test]
fn brk_probes_emulate_landing_pads_and_refuse_signing() {
    let s = site("patchbay::subjects::leaf");
    let word = |a: u64| poke::read(a, poke::Width::Insn) as u32;
    let before = (word(s.func), word(s.body()));
    reset();
    let id = kprobe::register_kprobe_at(s, s.func, kp_entry, 0).unwrap();
    subjects::leaf();
    let through_pointer = core::hint::black_box(subjects::leaf as fn());
    through_pointer();
    kprobe::unregister(id).unwrap();
    assert_eq!(ENTRIES.load(Ordering::Relaxed), 2);
    assert_eq!(word(s.func), before.0, "the landing pad is back");
    if harden::HARDENED {
        let err = kprobe::register_kprobe_at(s, s.body(), kp_entry, 0).unwrap_err();
        assert!(
            matches!(
                err,
                trace::TraceError::ProbeOnPointerAuth {
                    insn: "paciasp",
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(word(s.body()), before.1, "nothing was written");
    }
    let outside = kprobe::register_kprobe_at(s, s.body() + 4, kp_entry, 0).unwrap_err();
    assert!(matches!(
        outside,
        trace::TraceError::ProbeOutsideSite { .. }
    ));
}

#[kernel_test]
fn exit_handlers_see_return_values_and_per_call_data() {
    for path in PATHS {
        reset();
        let obs = site("patchbay::subjects::observe");
        let h = hook(path, obs);
        assert_eq!(subjects::observe(10), 37);
        assert_eq!(subjects::observe(20), 67);
        unhook(path, h);
        let log = core::mem::take(&mut *EXIT_LOG.lock());
        let data = |x: u64| {
            if matches!(path, Path::Kretprobe) {
                77
            } else {
                x + 1000
            }
        };
        assert_eq!(
            log,
            [(obs.func, data(10), 37), (obs.func, data(20), 67)],
            "{path:?}"
        );
    }
    // fib(20): 21891 nested and recursive calls, every exit paired with its own entry's data
    // (the argument) and result.
    let fib = site("patchbay::subjects::fib");
    reset();
    let id = fprobe::register(
        Filter::Addrs([fib.func].into()),
        Some(fp_entry),
        Some(log_exit),
        0,
        Mode::CallOps,
    )
    .unwrap();
    assert_eq!(subjects::fib(20), 6765);
    fprobe::unregister(id).unwrap();
    let mut fibs = [0u64; 21];
    fibs[1] = 1;
    for i in 2..21 {
        fibs[i] = fibs[i - 1] + fibs[i - 2];
    }
    let log = core::mem::take(&mut *EXIT_LOG.lock());
    assert_eq!(log.len() as u64, subjects::fib_calls(20));
    assert_eq!(ENTRIES.load(Ordering::Relaxed), subjects::fib_calls(20));
    assert!(
        log.iter()
            .all(|&(_, data, ret)| ret == fibs[(data - 1000) as usize])
    );
    assert_eq!(
        log.last().map(|e| (e.1, e.2)),
        Some((1020, 6765)),
        "the outermost call returns last"
    );
    boot_state();
}

#[kernel_test]
fn a_changed_return_value_is_what_the_caller_receives() {
    for mode in [Mode::List, Mode::CallOps] {
        let obs = site("patchbay::subjects::observe");
        let id = fprobe::register(
            Filter::Addrs([obs.func].into()),
            None,
            Some(fp_exit_changes),
            0,
            mode,
        )
        .unwrap();
        assert_eq!(subjects::observe(10), 7_037, "{mode:?}");
        fprobe::unregister(id).unwrap();
        assert_eq!(subjects::observe(10), 37);
    }
    boot_state();
}

const CTX: u64 = 0xc0ffee;
/// The `ctx` words the entry and exit handlers below saw (0: none yet or a different one).
static CTX_AT_ENTRY: AtomicU64 = AtomicU64::new(0);
static CTX_AT_EXIT: AtomicU64 = AtomicU64::new(0);

/// Hooks even arguments only: an odd one declines after the return was already hooked.
extern "C" fn even_only(_ip: u64, ctx: u64, data: &mut u64, regs: &mut FtraceRegs) -> bool {
    ENTRIES.fetch_add(1, Ordering::Relaxed);
    CTX_AT_ENTRY.store(ctx, Ordering::Relaxed);
    *data = regs.arg(0) + 1000;
    regs.arg(0).is_multiple_of(2)
}

extern "C" fn log_exit_ctx(ip: u64, ctx: u64, data: u64, regs: &mut RetRegs) {
    CTX_AT_EXIT.store(ctx, Ordering::Relaxed);
    log_exit(ip, ctx, data, regs);
}

/// Call `observe(0..4)` under an fprobe of `entry` and `exit` (with `CTX`) in `mode`, expecting
/// `result(x)` from each call.
fn observe_0_to_3(
    entry: fprobe::EntryFn,
    exit: fprobe::ExitFn,
    mode: Mode,
    result: fn(u64) -> u64,
) {
    let obs = site("patchbay::subjects::observe");
    let id = fprobe::register(
        Filter::Addrs([obs.func].into()),
        Some(entry),
        Some(exit),
        CTX,
        mode,
    )
    .unwrap();
    for x in 0..4 {
        assert_eq!(subjects::observe(x), result(x), "{mode:?}");
    }
    fprobe::unregister(id).unwrap();
}

/// fprobe hooks the return before its entry handler runs; a handler that declines gets the
/// call unhooked again: no exit, the caller's return address back, the shadow stack and its
/// counters as if nothing had been pushed.
#[kernel_test]
fn a_declining_entry_handler_leaves_its_call_unhooked() {
    let obs = site("patchbay::subjects::observe");
    for mode in [Mode::List, Mode::CallOps] {
        reset();
        CTX_AT_ENTRY.store(0, Ordering::Relaxed);
        CTX_AT_EXIT.store(0, Ordering::Relaxed);
        let (hooked0, returned0) = rethook::counts();
        observe_0_to_3(even_only, log_exit_ctx, mode, |x| 3 * x + 7);
        assert_eq!(ENTRIES.load(Ordering::Relaxed), 4, "{mode:?}");
        assert_eq!(
            *EXIT_LOG.lock(),
            [(obs.func, 1000, 7), (obs.func, 1002, 13)],
            "{mode:?}: only the accepted calls' exits ran, with their own data"
        );
        let (hooked, returned) = rethook::counts();
        assert_eq!((hooked - hooked0, returned - returned0), (2, 2), "{mode:?}");
        assert_eq!(
            (
                CTX_AT_ENTRY.load(Ordering::Relaxed),
                CTX_AT_EXIT.load(Ordering::Relaxed)
            ),
            (CTX, CTX),
            "{mode:?}: both handlers get the fprobe's ctx"
        );
    }
    boot_state();
}

/// Skips the function with result 99; hooks the return only for an even argument.
extern "C" fn override_even_only(ip: u64, ctx: u64, data: &mut u64, regs: &mut FtraceRegs) -> bool {
    let hook = even_only(ip, ctx, data, regs);
    regs.override_return(99);
    hook
}

extern "C" fn ops_override_77(_: u64, _: u64, _: &trace::Ops, regs: &mut FtraceRegs) {
    regs.override_return(77);
}

extern "C" fn ops_hook_log(ip: u64, _: u64, _: &trace::Ops, regs: &mut FtraceRegs) {
    assert!(regs.hook_return(ip, log_exit, 0, 5));
}

/// List mode, two ops on one site: the first overrides the function, the second hooks its
/// return. The override returns through the hook: its exit runs, sees the override's value,
/// and nothing is left on the shadow stack.
#[kernel_test]
fn an_override_then_a_later_ops_hook_still_runs_the_exit() {
    let obs = site("patchbay::subjects::observe");
    reset();
    let filter = || Filter::Addrs([obs.func].into());
    let a = trace::attach(filter(), ops_override_77, 0, Mode::List).unwrap();
    let b = trace::attach(filter(), ops_hook_log, 0, Mode::List).unwrap();
    assert_eq!(
        subjects::observe(3),
        77,
        "the override's value reaches the caller"
    );
    assert_eq!(rethook::depth(), 0, "the hook's entry was popped");
    trace::detach(b).unwrap();
    trace::detach(a).unwrap();
    assert_eq!(*EXIT_LOG.lock(), [(obs.func, 5, 77)]);
    assert_eq!(subjects::observe(3), 16);
    boot_state();
}

/// An entry handler that overrides the function continues at the return trampoline (`pc =
/// lr`, already swapped) when it hooks the return — the exit sees the override's value — and at
/// the real caller when it declines.
#[kernel_test]
fn an_overriding_entry_handler_may_hook_or_decline() {
    let obs = site("patchbay::subjects::observe");
    for mode in [Mode::List, Mode::CallOps] {
        reset();
        observe_0_to_3(override_even_only, log_exit, mode, |_| 99);
        assert_eq!(
            *EXIT_LOG.lock(),
            [(obs.func, 1000, 99), (obs.func, 1002, 99)],
            "{mode:?}"
        );
        assert_eq!(subjects::observe(1), 10);
    }
    boot_state();
}

#[kernel_test]
fn recursion_beyond_the_shadow_stack_is_counted_and_stays_paired() {
    let deep = site("patchbay::subjects::deep");
    reset();
    let overflows = rethook::overflows();
    let (hooked0, returned0) = rethook::counts();
    let id = fprobe::register(
        Filter::Addrs([deep.func].into()),
        Some(fp_entry),
        Some(log_exit),
        0,
        Mode::CallOps,
    )
    .unwrap();
    let depth = 100u64;
    assert_eq!(subjects::deep(depth), depth);
    fprobe::unregister(id).unwrap();
    let calls = depth + 1;
    let hooked = rethook::CAPACITY as u64;
    assert_eq!(
        ENTRIES.load(Ordering::Relaxed),
        calls,
        "every call's entry handler ran"
    );
    assert_eq!(
        EXITS.load(Ordering::Relaxed),
        hooked,
        "the outermost CAPACITY calls were hooked"
    );
    assert_eq!(
        rethook::overflows() - overflows,
        calls - hooked,
        "the rest are counted"
    );
    let (h, r) = rethook::counts();
    assert_eq!((h - hooked0, r - returned0), (hooked, hooked));
    // The hooked ones are the outermost: arguments 100 down to 69, returning depth n.
    let log = core::mem::take(&mut *EXIT_LOG.lock());
    assert!(
        log.iter().all(|&(_, data, ret)| ret == data - 1000),
        "each exit got its own data"
    );
    boot_state();
}

static BRK_HITS: AtomicU64 = AtomicU64::new(0);
extern "C" fn count_brk(ip: u64, data: u64, frame: &mut ExceptionFrame) {
    // `ip` is the probed function; its BRK sits at the call word (after the `mov x9, x30`, and
    // after the hardened build's `bti c`).
    assert_eq!(frame.elr, ip + harden::ENTRY_PAD + 4);
    assert_eq!(data, 5);
    BRK_HITS.fetch_add(1, Ordering::Relaxed);
}

#[kernel_test]
fn brk_probes_fire_once_per_call_and_restore_the_instruction() {
    let a8 = site("patchbay::subjects::args8");
    let before = text::text_hash();
    let id = kprobe::register_kprobe(a8, count_brk, 5).unwrap();
    assert_eq!(
        poke::read(a8.call(), poke::Width::Insn) as u32,
        insn::brk(kprobe::KPROBE_BRK)
    );
    BRK_HITS.store(0, Ordering::Relaxed);
    for i in 0..4 {
        assert_eq!(
            subjects::args8(i, 2, 3, 4, 5, 6, 7, 8),
            subjects::args8_expected(i, 2, 3, 4, 5, 6, 7, 8)
        );
    }
    assert_eq!(BRK_HITS.load(Ordering::Relaxed), 4);
    kprobe::unregister(id).unwrap();
    assert_eq!(poke::read(a8.call(), poke::Width::Insn) as u32, insn::NOP);
    assert_eq!(text::text_hash(), before);
    subjects::args8(0, 0, 0, 0, 0, 0, 0, 0);
    assert_eq!(BRK_HITS.load(Ordering::Relaxed), 4);
    // A probed site cannot be armed for tracing, and an armed one cannot be probed.
    let id = kprobe::register_kprobe(a8, count_brk, 5).unwrap();
    assert!(trace::attach(Filter::Addrs([a8.func].into()), noop, 0, Mode::CallOps).is_err());
    kprobe::unregister(id).unwrap();
    let t = trace::attach(Filter::Addrs([a8.func].into()), noop, 0, Mode::CallOps).unwrap();
    assert!(kprobe::register_kprobe(a8, count_brk, 5).is_err());
    trace::detach(t).unwrap();
    boot_state();
}

extern "C" fn noop(_: u64, _: u64, _: &trace::Ops, _: &mut FtraceRegs) {}

// ----- backtraces -------------------------------------------------------------------------

static CAPTURED: spin::Mutex<Vec<u64>> = spin::Mutex::new(Vec::new());
static SEEN_IN_HANDLER: AtomicBool = AtomicBool::new(false);

fn capture() {
    let mut c = CAPTURED.lock();
    c.clear();
    unwind::walk(unwind::current_fp(), 48, |f| c.push(f.pc));
    SEEN_IN_HANDLER.store(true, Ordering::Relaxed);
}

extern "C" fn bt_entry(_: u64, _: u64, _: &mut u64, _: &mut FtraceRegs) -> bool {
    capture();
    false
}
extern "C" fn bt_exit(_: u64, _: u64, _: u64, _: &mut RetRegs) {
    capture();
}
extern "C" fn bt_brk(_: u64, _: u64, _: &mut ExceptionFrame) {
    capture();
}
extern "C" fn bt_direct(_: &DirectCtx, _: *mut u64) {
    capture();
}
extern "C" fn bt_entry_hooking(_: u64, _: u64, _: &mut u64, _: &mut FtraceRegs) -> bool {
    true
}

#[inline(never)]
fn level2() {
    core::hint::black_box(subjects::bt_probe());
}

#[inline(never)]
fn level1() {
    level2();
    core::hint::black_box(());
}

/// Every run (reference and traced) enters through here, so the chains agree up to this frame.
#[inline(never)]
fn drive() {
    level1();
    core::hint::black_box(());
}

/// Frames compared: the return addresses into level2, level1 and drive.
const CHAIN: usize = 3;

/// The untraced reference: return addresses seen from inside `bt_probe`, its caller first.
fn reference() -> Vec<u64> {
    subjects::BT_CAPTURE.store(true, Ordering::Relaxed);
    drive();
    subjects::BT_CAPTURE.store(false, Ordering::Relaxed);
    let mut r = core::mem::take(&mut *subjects::BACKTRACE.lock());
    r.truncate(CHAIN);
    r
}

/// Check that `traced` contains the reference chain (caller, caller's caller, driver), and (for
/// entry handlers) that the frame before it is the traced function itself.
fn same_chain(what: &str, traced: &[u64], reference: &[u64], function_frame: bool) {
    assert_eq!(reference.len(), CHAIN);
    let pos = traced
        .iter()
        .position(|&pc| pc == reference[0])
        .unwrap_or_else(|| {
            panic!(
                "{what}: the caller's return address {:#x} is missing from {traced:x?}",
                reference[0]
            )
        });
    assert!(
        traced.len() >= pos + CHAIN,
        "{what}: chain too short: {traced:x?}"
    );
    assert_eq!(&traced[pos..pos + CHAIN], reference, "{what}");
    if function_frame {
        let f = symbols::lookup(traced[pos - 1] - 4)
            .map(|s| s.name)
            .unwrap_or("?");
        assert!(
            f.ends_with("bt_probe"),
            "{what}: frame before the caller is {f}"
        );
    }
}

#[kernel_test]
fn backtraces_in_entry_exit_and_brk_handlers_equal_the_untraced_one() {
    let bt = site("patchbay::subjects::bt_probe");
    let reference = reference();
    assert!(
        symbols::lookup(reference[0] - 4)
            .unwrap()
            .name
            .ends_with("level2")
    );
    let run = |what: &str, function_frame: bool| {
        SEEN_IN_HANDLER.store(false, Ordering::Relaxed);
        drive();
        assert!(
            SEEN_IN_HANDLER.load(Ordering::Relaxed),
            "{what}: handler did not run"
        );
        let traced = core::mem::take(&mut *CAPTURED.lock());
        same_chain(what, &traced, &reference, function_frame);
    };
    // With an exit handler the return is hooked before the entry handler runs: the call site's
    // frame record holds the return trampoline, translated by the top entry.
    let fprobes: [(fprobe::EntryFn, Option<fprobe::ExitFn>, &str, bool); 3] = [
        (bt_entry, None, "fprobe entry", true),
        (
            bt_entry,
            Some(bt_exit),
            "fprobe entry, return already hooked",
            true,
        ),
        (
            bt_entry_hooking,
            Some(bt_exit),
            "fprobe exit (translated through the shadow stack)",
            false,
        ),
    ];
    for mode in [Mode::List, Mode::CallOps] {
        for (entry, exit, what, function_frame) in fprobes {
            let id = fprobe::register(Filter::Addrs([bt.func].into()), Some(entry), exit, 0, mode)
                .unwrap();
            run(what, function_frame);
            fprobe::unregister(id).unwrap();
        }
    }
    let id = trace::attach_direct(bt, DirectKind::Entry(bt_direct), 0, Reach::Near).unwrap();
    run("direct entry", true);
    trace::detach(id).unwrap();
    let id = kprobe::register_kprobe(bt, bt_brk, 0).unwrap();
    run("BRK handler", true);
    kprobe::unregister(id).unwrap();
    let id = kprobe::register_kretprobe(bt, None, bt_exit, 0).unwrap();
    run("kretprobe exit", false);
    kprobe::unregister(id).unwrap();
    // Inside a return-hooked function the saved return address is the rethook trampoline; the
    // unwinder translates it, so the function's own capture equals the reference too.
    let id = fprobe::register(
        Filter::Addrs([bt.func].into()),
        Some(bt_entry_hooking),
        Some(log_exit),
        0,
        Mode::CallOps,
    )
    .unwrap();
    assert_eq!(reference, self::reference());
    fprobe::unregister(id).unwrap();
    boot_state();
}

#[kernel_test]
fn trampoline_frames_can_be_elided() {
    let bt = site("patchbay::subjects::bt_probe");
    let id = fprobe::register(
        Filter::Addrs([bt.func].into()),
        Some(bt_entry),
        None,
        0,
        Mode::List,
    )
    .unwrap();
    drive();
    fprobe::unregister(id).unwrap();
    let shown = core::mem::take(&mut *CAPTURED.lock());
    assert!(
        shown.iter().any(|&pc| unwind::in_trampoline(pc)),
        "the trampoline frame is shown"
    );
    // Walk again with elision from a fresh capture.
    static ELIDED: spin::Mutex<Vec<u64>> = spin::Mutex::new(Vec::new());
    extern "C" fn capture_elided(_: u64, _: u64, _: &mut u64, _: &mut FtraceRegs) -> bool {
        let mut c = ELIDED.lock();
        unwind::walk_with(
            unwind::current_fp(),
            48,
            unwind::Options {
                elide_trampolines: true,
            },
            |f| c.push(f.pc),
        );
        false
    }
    let id = fprobe::register(
        Filter::Addrs([bt.func].into()),
        Some(capture_elided),
        None,
        0,
        Mode::List,
    )
    .unwrap();
    drive();
    fprobe::unregister(id).unwrap();
    let elided = core::mem::take(&mut *ELIDED.lock());
    assert!(!elided.iter().any(|&pc| unwind::in_trampoline(pc)));
    assert!(elided.len() < shown.len());
    boot_state();
}
