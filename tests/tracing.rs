//! The tracing core: list and call-ops modes through the static trampolines, handlers seeing
//! and changing the entry registers, many ops, the recursion guard, unwinding through the
//! trampoline, and detach restoring every byte.
#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(patchbay::ktest::runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use patchbay::{
    kernel_test,
    patch::{PatchError, sites, text::text_hash},
    subjects, symbols,
    trace::{self, Filter, FtraceRegs, Mode, Ops, TraceError, recursion},
    unwind,
};

patchbay::qemu_directives!("timeout=120");

static BOOT_HASH: AtomicU64 = AtomicU64::new(0);

patchbay::test_kernel_main!(BOOT_HASH.store(text_hash(), Ordering::Relaxed));
const MODES: [Mode; 2] = [Mode::List, Mode::CallOps];

fn addr(f: *const ()) -> u64 {
    f as u64
}

/// An event a handler saw.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Event {
    ip: u64,
    args: [u64; 8],
    data: u64,
}

static EVENTS: spin::Mutex<Vec<Event>> = spin::Mutex::new(Vec::new());

/// Records the arguments the function actually takes (the rest of x0-x7 is whatever the caller
/// left there).
extern "C" fn record(ip: u64, _parent: u64, ops: &Ops, regs: &mut FtraceRegs) {
    let nargs = usize::from(sites::by_addr(ip).unwrap().arg_regs.regs);
    let args = core::array::from_fn(|i| if i < nargs { regs.arg(i) } else { 0 });
    EVENTS.lock().push(Event {
        ip,
        args,
        data: ops.data,
    });
}

fn take_events() -> Vec<Event> {
    core::mem::take(&mut *EVENTS.lock())
}

static COUNT: AtomicU64 = AtomicU64::new(0);
extern "C" fn count(_: u64, _: u64, _: &Ops, _: &mut FtraceRegs) {
    COUNT.fetch_add(1, Ordering::Relaxed);
}

fn subject_addrs() -> Vec<u64> {
    [
        addr(subjects::leaf as *const ()),
        addr(subjects::args8 as *const ()),
        addr(subjects::fib as *const ()),
        addr(subjects::observe as *const ()),
    ]
    .into()
}

fn workload() {
    subjects::leaf();
    assert_eq!(
        subjects::args8(1, 2, 3, 4, 5, 6, 7, 8),
        subjects::args8_expected(1, 2, 3, 4, 5, 6, 7, 8)
    );
    assert_eq!(subjects::fib(7), 13);
    assert_eq!(subjects::observe(10), 37);
    subjects::leaf();
}

#[kernel_test]
fn entry_counts_are_exact_in_both_modes() {
    for mode in MODES {
        COUNT.store(0, Ordering::Relaxed);
        let id = trace::attach(Filter::Addrs(subject_addrs()), count, 0, mode).unwrap();
        workload();
        // leaf 2 + args8 1 + fib(7) 41 calls + observe 1
        assert_eq!(
            COUNT.load(Ordering::Relaxed),
            2 + 1 + subjects::fib_calls(7) + 1,
            "{mode:?}"
        );
        trace::detach(id).unwrap();
        workload();
        assert_eq!(
            COUNT.load(Ordering::Relaxed),
            2 + 1 + subjects::fib_calls(7) + 1
        );
    }
}

static PARENT: AtomicU64 = AtomicU64::new(0);
extern "C" fn parent_seen(ip: u64, parent: u64, ops: &Ops, regs: &mut FtraceRegs) {
    assert_eq!(regs.parent_ip(), parent);
    assert_eq!(regs.ip(), ip);
    PARENT.store(parent, Ordering::Relaxed);
    record(ip, parent, ops, regs);
}

#[inline(never)]
fn call_args8_from_here() -> u64 {
    core::hint::black_box(subjects::args8(11, 12, 13, 14, 15, 16, 17, 18))
}

#[kernel_test]
fn handler_sees_ip_parent_and_all_eight_arguments() {
    for mode in MODES {
        let a8 = addr(subjects::args8 as *const ());
        let id = trace::attach(Filter::Addrs([a8].into()), parent_seen, 0x5eed, mode).unwrap();
        call_args8_from_here();
        trace::detach(id).unwrap();
        let ev = take_events();
        assert_eq!(
            ev,
            [Event {
                ip: a8,
                args: [11, 12, 13, 14, 15, 16, 17, 18],
                data: 0x5eed
            }]
        );
        let parent = PARENT.load(Ordering::Relaxed);
        let sym = symbols::lookup(parent).expect("parent ip has a symbol");
        assert!(
            sym.name.ends_with("call_args8_from_here"),
            "parent {parent:#x} is in {}",
            sym.name
        );
    }
}

extern "C" fn rewrite_first_arg(_: u64, _: u64, _: &Ops, regs: &mut FtraceRegs) {
    regs.set_arg(0, 1000);
    regs.set_arg(7, 0);
}

#[kernel_test]
fn a_handler_rewriting_arguments_changes_the_result() {
    for mode in MODES {
        let a8 = addr(subjects::args8 as *const ());
        let id = trace::attach(Filter::Addrs([a8].into()), rewrite_first_arg, 0, mode).unwrap();
        let got = subjects::args8(1, 2, 3, 4, 5, 6, 7, 8);
        trace::detach(id).unwrap();
        assert_eq!(
            got,
            subjects::args8_expected(1000, 2, 3, 4, 5, 6, 7, 0),
            "{mode:?}"
        );
    }
}

extern "C" fn inject_error(_: u64, _: u64, _: &Ops, regs: &mut FtraceRegs) {
    regs.override_return(0xdead);
}

#[kernel_test]
fn override_with_return_skips_the_body() {
    for mode in MODES {
        let se = addr(subjects::side_effect as *const ());
        let before = subjects::SIDE_EFFECTS.load(Ordering::Relaxed);
        let id = trace::attach(Filter::Addrs([se].into()), inject_error, 0, mode).unwrap();
        assert_eq!(subjects::side_effect(1), 0xdead);
        assert_eq!(
            subjects::SIDE_EFFECTS.load(Ordering::Relaxed),
            before,
            "the body ran"
        );
        trace::detach(id).unwrap();
        assert_eq!(subjects::side_effect(1), 2);
        assert_eq!(subjects::SIDE_EFFECTS.load(Ordering::Relaxed), before + 1);
    }
}

#[kernel_test]
fn list_and_call_ops_observe_identical_event_sequences() {
    let mut seen = Vec::new();
    for mode in MODES {
        let id = trace::attach(Filter::Addrs(subject_addrs()), record, 7, mode).unwrap();
        workload();
        trace::detach(id).unwrap();
        seen.push(take_events());
    }
    assert_eq!(seen[0].len() as u64, 2 + 1 + subjects::fib_calls(7) + 1);
    assert_eq!(seen[0], seen[1]);
}

static RELEVANT: AtomicU64 = AtomicU64::new(0);
static IRRELEVANT: AtomicU64 = AtomicU64::new(0);
extern "C" fn relevant(_: u64, _: u64, _: &Ops, _: &mut FtraceRegs) {
    RELEVANT.fetch_add(1, Ordering::Relaxed);
}
extern "C" fn irrelevant(_: u64, _: u64, _: &Ops, _: &mut FtraceRegs) {
    IRRELEVANT.fetch_add(1, Ordering::Relaxed);
}

fn many_ops(mode: Mode, n_relevant: u64, n_irrelevant: u64) {
    let leaf = addr(subjects::leaf as *const ());
    let other = sites::by_name("gen_0000").unwrap().func;
    let mut ids = Vec::new();
    for _ in 0..n_relevant {
        ids.push(trace::attach(Filter::Addrs([leaf].into()), relevant, 0, mode).unwrap());
    }
    for _ in 0..n_irrelevant {
        ids.push(trace::attach(Filter::Addrs([other].into()), irrelevant, 0, mode).unwrap());
    }
    RELEVANT.store(0, Ordering::Relaxed);
    IRRELEVANT.store(0, Ordering::Relaxed);
    for _ in 0..3 {
        subjects::leaf();
    }
    assert_eq!(
        RELEVANT.load(Ordering::Relaxed),
        3 * n_relevant,
        "{mode:?} {n_relevant}+{n_irrelevant}"
    );
    assert_eq!(IRRELEVANT.load(Ordering::Relaxed), 0);
    // The literal holds the single owner, or the list ops when several own the site.
    if mode == Mode::CallOps {
        let site = sites::by_name("patchbay::subjects::leaf").unwrap();
        let lit =
            patchbay::patch::poke::read(site.literal(), patchbay::patch::poke::Width::Literal);
        if n_relevant == 1 {
            assert_ne!(lit, &trace::ops::LIST_OPS as *const Ops as u64);
        } else {
            assert_eq!(lit, &trace::ops::LIST_OPS as *const Ops as u64);
        }
    }
    for id in ids {
        trace::detach(id).unwrap();
    }
}

#[kernel_test]
fn one_relevant_plus_100_irrelevant_and_100_relevant_in_both_modes() {
    for mode in MODES {
        many_ops(mode, 1, 100);
        many_ops(mode, 100, 0);
    }
    assert_eq!(trace::attach::attached(), 0);
    assert_eq!(text_hash(), BOOT_HASH.load(Ordering::Relaxed));
}

static OUTER: AtomicU64 = AtomicU64::new(0);
static INNER: AtomicU64 = AtomicU64::new(0);
extern "C" fn calls_a_traced_function(ip: u64, _: u64, _: &Ops, _: &mut FtraceRegs) {
    if ip == addr(subjects::leaf as *const ()) {
        OUTER.fetch_add(1, Ordering::Relaxed);
        // observe is traced by this same ops: the guard must refuse to trace it from here.
        assert_eq!(subjects::observe(1), 10);
    } else {
        INNER.fetch_add(1, Ordering::Relaxed);
    }
}

#[kernel_test]
fn recursion_is_refused_and_counted() {
    for mode in MODES {
        let (leaf, obs) = (
            addr(subjects::leaf as *const ()),
            addr(subjects::observe as *const ()),
        );
        let id = trace::attach(
            Filter::Addrs([leaf, obs].into()),
            calls_a_traced_function,
            0,
            mode,
        )
        .unwrap();
        OUTER.store(0, Ordering::Relaxed);
        INNER.store(0, Ordering::Relaxed);
        let rec0 = recursion::count();
        for _ in 0..5 {
            subjects::leaf();
        }
        subjects::observe(2); // a direct, non-recursive call is traced
        trace::detach(id).unwrap();
        assert_eq!(OUTER.load(Ordering::Relaxed), 5, "{mode:?}");
        assert_eq!(INNER.load(Ordering::Relaxed), 1, "only the direct call");
        assert_eq!(
            recursion::count() - rec0,
            5,
            "one refused recursion per outer call"
        );
    }
}

static FRAMES: spin::Mutex<Vec<u64>> = spin::Mutex::new(Vec::new());
extern "C" fn capture_backtrace(_: u64, _: u64, _: &Ops, _: &mut FtraceRegs) {
    let mut f = FRAMES.lock();
    unwind::walk(unwind::current_fp(), 16, |fr| f.push(fr.pc));
}

#[inline(never)]
fn outer_caller() {
    subjects::leaf();
    core::hint::black_box(());
}

#[kernel_test]
fn unwinding_from_a_handler_sees_the_traced_function_and_its_caller() {
    for mode in MODES {
        let leaf = addr(subjects::leaf as *const ());
        let id = trace::attach(Filter::Addrs([leaf].into()), capture_backtrace, 0, mode).unwrap();
        outer_caller();
        trace::detach(id).unwrap();
        let frames = core::mem::take(&mut *FRAMES.lock());
        // The hardened build saves signed return addresses; the unwinder hands out plain ones.
        assert!(
            frames
                .iter()
                .all(|&pc| !patchbay_pure::harden::has_pac_bits(pc)),
            "{frames:x?}"
        );
        let names: Vec<&str> = frames
            .iter()
            .filter_map(|&pc| symbols::lookup(pc - 4).map(|s| s.name))
            .collect();
        let pos = |needle: &str| names.iter().position(|n| n.ends_with(needle));
        let (traced, caller) = (pos("subjects::leaf"), pos("outer_caller"));
        assert!(traced.is_some() && caller.is_some(), "{mode:?}: {names:?}");
        assert!(
            traced < caller,
            "traced function is inner to its caller: {names:?}"
        );
        assert!(
            frames.iter().any(|&pc| trace::trampoline::contains(pc - 4)),
            "trampoline frame"
        );
    }
}

#[kernel_test]
fn disabled_ops_stay_armed_but_silent() {
    let leaf = addr(subjects::leaf as *const ());
    let id = trace::attach(Filter::Addrs([leaf].into()), count, 0, Mode::CallOps).unwrap();
    COUNT.store(0, Ordering::Relaxed);
    trace::set_enabled(id, false).unwrap();
    subjects::leaf();
    assert_eq!(COUNT.load(Ordering::Relaxed), 0);
    trace::set_enabled(id, true).unwrap();
    subjects::leaf();
    assert_eq!(COUNT.load(Ordering::Relaxed), 1);
    trace::detach(id).unwrap();
}

#[kernel_test]
fn sites_report_mode_and_owners() {
    let a = trace::attach(Filter::Glob("gen_000?".into()), count, 0, Mode::List).unwrap();
    let b = trace::attach(Filter::Glob("gen_0001".into()), count, 0, Mode::CallOps).unwrap();
    let info = trace::sites();
    let get = |n: &str| info.iter().find(|i| i.site.short_name() == n).unwrap();
    assert_eq!(
        (get("gen_0000").mode, get("gen_0000").owners.clone()),
        (Some(Mode::List), [a].into())
    );
    assert_eq!(
        (get("gen_0001").mode, get("gen_0001").owners.clone()),
        (Some(Mode::CallOps), [a, b].into())
    );
    assert_eq!(get("gen_0010").mode, None);
    assert_eq!(info.iter().filter(|i| i.mode.is_some()).count(), 10);
    // Calls reach both owners of gen_0001 through the list ops, and one owner of gen_0000.
    COUNT.store(0, Ordering::Relaxed);
    subjects::generated::ALL[1](0);
    subjects::generated::ALL[0](0);
    assert_eq!(COUNT.load(Ordering::Relaxed), 3);
    trace::detach(a).unwrap();
    trace::detach(b).unwrap();
}

#[kernel_test]
fn bad_attachments_are_typed_errors_and_change_nothing() {
    let before = text_hash();
    assert_eq!(
        trace::attach(Filter::Glob("no_such_*".into()), count, 0, Mode::List),
        Err(TraceError::NoMatch {
            pattern: "no_such_*".into()
        })
    );
    let twin = addr(subjects::leaf_twin as *const ());
    assert_eq!(
        trace::attach(Filter::Addrs([twin].into()), count, 0, Mode::CallOps),
        Err(TraceError::Patch(PatchError::NotASite { addr: twin }))
    );
    assert_eq!(
        trace::detach(trace::OpsId(999_999)),
        Err(TraceError::UnknownOps(trace::OpsId(999_999)))
    );
    assert_eq!(text_hash(), before);
    assert_eq!(trace::attach::attached(), 0);
}

#[kernel_test]
fn tracing_every_site_then_detaching_restores_boot_text() {
    for mode in MODES {
        trace::attach(Filter::All, count, 0, mode).unwrap();
        COUNT.store(0, Ordering::Relaxed);
        for f in subjects::generated::ALL.iter() {
            f(3);
        }
        assert_eq!(COUNT.load(Ordering::Relaxed), 4096, "{mode:?}");
        trace::detach_all().unwrap();
    }
    assert_eq!(text_hash(), BOOT_HASH.load(Ordering::Relaxed));
}
