//! Direct calls: per-callsite trampolines in the near and far pools, entry and fexit handlers on
//! every subject, reaching far trampolines through ops and through a veneer, mixing with ops,
//! pool exhaustion, and detach returning text and pools to their boot state.
#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(patchbay::ktest::runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use patchbay::{
    kernel_test, memory,
    patch::{PatchError, batch, poke, sites, text},
    subjects,
    trace::{
        self, DirectCtx, DirectKind, Filter, FtraceRegs, Mode, Ops, Reach, TraceError,
        pool::{self, PoolKind},
    },
};
use patchbay_pure::{layout, tramp};

patchbay::qemu_directives!("timeout=120");

static BOOT: AtomicU64 = AtomicU64::new(0);
static BOOT_NEAR: AtomicU64 = AtomicU64::new(0);
static BOOT_FAR: AtomicU64 = AtomicU64::new(0);

patchbay::test_kernel_main!(
    BOOT.store(text::text_hash(), Ordering::Relaxed);
    BOOT_NEAR.store(text::hash_range(PoolKind::Near.range()), Ordering::Relaxed);
    BOOT_FAR.store(text::hash_range(PoolKind::Far.range()), Ordering::Relaxed);
);

const REACHES: [Reach; 3] = [Reach::Near, Reach::FarViaOps, Reach::FarViaVeneer];

fn site(name: &str) -> &'static sites::Site<'static> {
    sites::by_name(name).unwrap()
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    site: u64,
    data: u64,
    args: Vec<u64>,
    ret: Option<u64>,
}

static SEEN: spin::Mutex<Vec<Seen>> = spin::Mutex::new(Vec::new());

fn take() -> Vec<Seen> {
    core::mem::take(&mut *SEEN.lock())
}

extern "C" fn on_entry(ctx: &DirectCtx, args: *mut u64) {
    // SAFETY: `args` is what the trampoline passed.
    let a = unsafe { ctx.args(args) };
    SEEN.lock().push(Seen {
        site: ctx.site,
        data: ctx.data,
        args: a.to_vec(),
        ret: None,
    });
}

extern "C" fn on_exit(ctx: &DirectCtx, args: *mut u64, ret: &mut u64) {
    // SAFETY: as above.
    let a = unsafe { ctx.args(args) };
    SEEN.lock().push(Seen {
        site: ctx.site,
        data: ctx.data,
        args: a.to_vec(),
        ret: Some(*ret),
    });
}

extern "C" fn double_first_arg(ctx: &DirectCtx, args: *mut u64) {
    // SAFETY: as above.
    let a = unsafe { ctx.args(args) };
    a[0] *= 2;
}

extern "C" fn add_million(_: &DirectCtx, _: *mut u64, ret: &mut u64) {
    *ret += 1_000_000;
}

fn boot_state() {
    assert_eq!(trace::attach::attached(), 0);
    assert_eq!(
        text::text_hash(),
        BOOT.load(Ordering::Relaxed),
        "text back to boot bytes"
    );
    assert_eq!(
        text::hash_range(PoolKind::Near.range()),
        BOOT_NEAR.load(Ordering::Relaxed)
    );
    assert_eq!(
        text::hash_range(PoolKind::Far.range()),
        BOOT_FAR.load(Ordering::Relaxed)
    );
    for k in [PoolKind::Near, PoolKind::Far] {
        let u = pool::usage(k);
        assert_eq!((u.used, u.blocks), (0, 0), "{k:?} pool accounting");
    }
}

#[kernel_test]
fn entry_handlers_see_arguments_on_every_subject_and_reach() {
    for reach in REACHES {
        let a8 = site("patchbay::subjects::args8");
        let id = trace::attach_direct(a8, DirectKind::Entry(on_entry), 42, reach).unwrap();
        assert_eq!(
            subjects::args8(1, 2, 3, 4, 5, 6, 7, 8),
            subjects::args8_expected(1, 2, 3, 4, 5, 6, 7, 8)
        );
        trace::detach(id).unwrap();
        assert_eq!(
            take(),
            [Seen {
                site: a8.func,
                data: 42,
                args: (1..=8).collect(),
                ret: None
            }],
            "{reach:?}"
        );

        let leaf = site("patchbay::subjects::leaf");
        let id = trace::attach_direct(leaf, DirectKind::Entry(on_entry), 1, reach).unwrap();
        subjects::leaf();
        trace::detach(id).unwrap();
        assert_eq!(
            take(),
            [Seen {
                site: leaf.func,
                data: 1,
                args: Vec::new(),
                ret: None
            }]
        );
    }
    boot_state();
}

#[kernel_test]
fn entry_handler_modifications_take_effect() {
    for reach in REACHES {
        let obs = site("patchbay::subjects::observe");
        let id = trace::attach_direct(obs, DirectKind::Entry(double_first_arg), 0, reach).unwrap();
        assert_eq!(subjects::observe(10), 20 * 3 + 7, "{reach:?}");
        trace::detach(id).unwrap();
        assert_eq!(subjects::observe(10), 37);
    }
    boot_state();
}

#[kernel_test]
fn fexit_sees_return_values_and_can_change_them() {
    for reach in REACHES {
        let obs = site("patchbay::subjects::observe");
        let id = trace::attach_direct(obs, DirectKind::Fexit(on_exit), 9, reach).unwrap();
        assert_eq!(subjects::observe(5), 22);
        trace::detach(id).unwrap();
        assert_eq!(
            take(),
            [Seen {
                site: obs.func,
                data: 9,
                args: [5].into(),
                ret: Some(22)
            }],
            "{reach:?}"
        );

        let id = trace::attach_direct(obs, DirectKind::Fexit(add_million), 0, reach).unwrap();
        assert_eq!(subjects::observe(5), 1_000_022, "{reach:?}");
        trace::detach(id).unwrap();
    }
    boot_state();
}

#[kernel_test]
fn recursion_through_fib_pairs_every_call() {
    for reach in REACHES {
        let fib = site("patchbay::subjects::fib");
        let id = trace::attach_direct(fib, DirectKind::Fexit(on_exit), 0, reach).unwrap();
        assert_eq!(subjects::fib(10), 55);
        trace::detach(id).unwrap();
        let seen = take();
        assert_eq!(seen.len() as u64, subjects::fib_calls(10), "{reach:?}");
        // The outermost call returns last, with fib(10).
        assert_eq!(seen.last().unwrap().args, [10]);
        assert_eq!(seen.last().unwrap().ret, Some(55));
        // Every exit saw fib of its own argument.
        let fibs = [0u64, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55];
        assert!(seen.iter().all(|s| s.ret == Some(fibs[s.args[0] as usize])));

        let id = trace::attach_direct(fib, DirectKind::Entry(on_entry), 0, reach).unwrap();
        assert_eq!(subjects::fib(10), 55);
        trace::detach(id).unwrap();
        assert_eq!(take().len() as u64, subjects::fib_calls(10));
    }
    boot_state();
}

#[kernel_test]
fn trampolines_live_where_the_reach_says() {
    let obs = site("patchbay::subjects::observe");
    let text = memory::image().text;
    for reach in REACHES {
        let id = trace::attach_direct(obs, DirectKind::Entry(on_entry), 0, reach).unwrap();
        let (tramp_addr, veneer) = trace::direct::trampoline_of(id).unwrap();
        let state = batch::state(obs);
        match reach {
            Reach::Near => {
                assert!(PoolKind::Near.range().contains(tramp_addr));
                assert_eq!(state.call(), Some(tramp_addr));
            }
            Reach::FarViaOps => {
                assert!(PoolKind::Far.range().contains(tramp_addr));
                assert!(layout::unreachable(
                    text,
                    layout::Range::new(tramp_addr, tramp_addr + 4)
                ));
                assert_eq!(state.call(), Some(trace::trampoline::direct_caller()));
            }
            Reach::FarViaVeneer => {
                assert!(PoolKind::Far.range().contains(tramp_addr));
                let v = veneer.unwrap();
                assert!(PoolKind::Near.range().contains(v));
                assert_eq!(state.call(), Some(v));
                let words = [0, 1, 2, 3].map(|i| poke::read(v + 4 * i, poke::Width::Insn) as u32);
                assert_eq!(words, tramp::veneer(tramp_addr));
            }
        }
        // The pool holds exactly the generated code.
        let (regs, handler) = (obs.arg_regs, on_entry as *const () as u64);
        let ctx = tramp_ctx(tramp_addr, |ctx| {
            tramp::entry(regs, handler, ctx, Some(tramp_addr)).unwrap()
        });
        let code = tramp::entry(regs, handler, ctx, Some(tramp_addr)).unwrap();
        for (i, w) in code.iter().enumerate() {
            assert_eq!(
                poke::read(tramp_addr + 4 * i as u64, poke::Width::Insn) as u32,
                *w
            );
        }
        subjects::observe(1);
        trace::detach(id).unwrap();
        take();
    }
    boot_state();
}

/// The context pointer baked into the trampoline at `tramp_addr`, which `generate(ctx)` makes:
/// the literal where two different contexts differ.
fn tramp_ctx(tramp_addr: u64, generate: impl Fn(u64) -> Vec<u32>) -> u64 {
    let (a, b) = (generate(0), generate(u64::MAX));
    let at = a.iter().zip(&b).position(|(x, y)| x != y).unwrap();
    poke::read(tramp_addr + 4 * at as u64, poke::Width::Literal)
}

static OPS_HITS: AtomicU64 = AtomicU64::new(0);
extern "C" fn ops_count(_: u64, _: u64, _: &Ops, _: &mut FtraceRegs) {
    OPS_HITS.fetch_add(1, Ordering::Relaxed);
}

#[kernel_test]
fn direct_beside_ops_runs_both_through_the_combined_path() {
    for reach in REACHES {
        for mode in [Mode::List, Mode::CallOps] {
            let obs = site("patchbay::subjects::observe");
            let d = trace::attach_direct(obs, DirectKind::Fexit(add_million), 0, reach).unwrap();
            let o = trace::attach(Filter::Addrs([obs.func].into()), ops_count, 0, mode).unwrap();
            assert_eq!(
                batch::state(obs).call(),
                Some(trace::trampoline::direct_caller())
            );
            OPS_HITS.store(0, Ordering::Relaxed);
            assert_eq!(
                subjects::observe(5),
                1_000_022,
                "{reach:?} {mode:?}: the direct fexit ran"
            );
            assert_eq!(OPS_HITS.load(Ordering::Relaxed), 1, "the ops ran");
            // Detaching the ops returns the site to the direct attachment's own route.
            trace::detach(o).unwrap();
            assert_eq!(subjects::observe(5), 1_000_022);
            assert_eq!(OPS_HITS.load(Ordering::Relaxed), 1);
            trace::detach(d).unwrap();
            assert_eq!(subjects::observe(5), 22);
        }
    }
    boot_state();
}

#[kernel_test]
fn one_direct_attachment_per_site() {
    let obs = site("patchbay::subjects::observe");
    let d = trace::attach_direct(obs, DirectKind::Entry(on_entry), 0, Reach::Near).unwrap();
    let before = text::text_hash();
    assert_eq!(
        trace::attach_direct(obs, DirectKind::Fexit(on_exit), 0, Reach::FarViaOps),
        Err(TraceError::DirectBusy { site: obs.name })
    );
    assert_eq!(text::text_hash(), before);
    trace::detach(d).unwrap();
    boot_state();
}

#[kernel_test]
fn attaching_to_a_non_site_is_a_typed_error() {
    let twin = subjects::leaf_twin as *const () as u64;
    assert_eq!(
        trace::attach_direct_at(twin, DirectKind::Entry(on_entry), 0, Reach::Near),
        Err(TraceError::Patch(PatchError::NotASite { addr: twin }))
    );
    boot_state();
}

#[kernel_test]
fn a_full_pool_is_a_typed_error_and_nothing_is_patched() {
    for (kind, reach) in [
        (PoolKind::Near, Reach::Near),
        (PoolKind::Far, Reach::FarViaOps),
    ] {
        // Fill the pool.
        let mut held = Vec::new();
        while let Ok(b) = pool::reserve(kind, pool::GRANULE) {
            held.push(b);
        }
        let failures = pool::usage(kind).failures;
        let before = text::text_hash();
        let obs = site("patchbay::subjects::observe");
        let err = trace::attach_direct(obs, DirectKind::Entry(on_entry), 0, reach).unwrap_err();
        assert!(
            matches!(err, TraceError::PoolExhausted { pool, .. } if pool == kind.name()),
            "{err:?}"
        );
        assert!(alloc::format!("{err}").contains("nothing was patched"));
        assert_eq!(text::text_hash(), before);
        assert_eq!(batch::state(obs), batch::SiteState::BOOT);
        assert_eq!(
            pool::usage(kind).failures,
            failures + 1,
            "the refusal is counted"
        );
        for b in held {
            pool::free(b);
        }
    }
    // The veneer needs the near pool even when the trampoline is far: a full near pool fails
    // the veneer after the far trampoline was allocated, and that trampoline is freed again.
    let mut held = Vec::new();
    while let Ok(b) = pool::reserve(PoolKind::Near, pool::GRANULE) {
        held.push(b);
    }
    let obs = site("patchbay::subjects::observe");
    assert!(matches!(
        trace::attach_direct(obs, DirectKind::Entry(on_entry), 0, Reach::FarViaVeneer),
        Err(TraceError::PoolExhausted { pool: "near", .. })
    ));
    assert_eq!(pool::usage(PoolKind::Far).used, 0);
    for b in held {
        pool::free(b);
    }
    boot_state();
}
