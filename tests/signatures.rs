//! The signature matrix: every shape of Rust signature (`subjects::signatures`) traced by every
//! mechanism — list, call-ops, direct near, far via ops, far via veneer (and the lean direct
//! variant), fexit, rethook, fprobe, BRK — with handlers that clobber every register AAPCS64 lets them clobber (x0–x17), and every
//! call's result checked against the untraced twin. Plus the two shapes that broke direct
//! trampolines before they saved what the signature uses, fexit at and past its 12-word limit,
//! and the argument registers `#[patchable]` recorded.
#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(patchbay::ktest::runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use patchbay::{
    bench::mechanisms,
    exception::ExceptionFrame,
    kernel_test,
    patch::{sites, text},
    subjects::signatures::{self as sig, Large, Pair16, Small},
    trace::{
        self, DirectCtx, DirectKind, Filter, FtraceRegs, Mode, Ops, OpsId, Reach, TraceError,
        fprobe, kprobe, rethook::RetRegs,
    },
};
use patchbay_pure::{
    sites::{ArgRegs, StackWords},
    tramp::{MAX_ARG_WORDS, TrampError},
};

patchbay::qemu_directives!("timeout=120");

static BOOT: AtomicU64 = AtomicU64::new(0);

patchbay::test_kernel_main!(BOOT.store(text::text_hash(), Ordering::Relaxed));

/// Handler calls (entry and exit each count one).
static HITS: AtomicU64 = AtomicU64::new(0);

/// Write a pattern into every register a handler may clobber under AAPCS64: x0–x17 (arguments,
/// the indirect result register x8, temporaries, IP0/IP1). x8 gets an unmapped address, so a
/// trampoline that lets the body write its result through it faults at once.
#[inline(always)]
fn clobber() {
    // SAFETY: writes only the registers it declares clobbered.
    unsafe {
        core::arch::asm!(
            "movz x0, #0xbad0, lsl #48",
            "movk x0, #0xc10b, lsl #16",
            "add  x1, x0, #1",
            "add  x2, x0, #2",
            "add  x3, x0, #3",
            "add  x4, x0, #4",
            "add  x5, x0, #5",
            "add  x6, x0, #6",
            "add  x7, x0, #7",
            "add  x8, x0, #8",
            "add  x9, x0, #9",
            "add  x10, x0, #10",
            "add  x11, x0, #11",
            "add  x12, x0, #12",
            "add  x13, x0, #13",
            "add  x14, x0, #14",
            "add  x15, x0, #15",
            "add  x16, x0, #16",
            "add  x17, x0, #17",
            out("x0") _, out("x1") _, out("x2") _, out("x3") _, out("x4") _, out("x5") _,
            out("x6") _, out("x7") _, out("x8") _, out("x9") _, out("x10") _, out("x11") _,
            out("x12") _, out("x13") _, out("x14") _, out("x15") _, out("x16") _, out("x17") _,
            options(nomem, nostack),
        );
    }
}

fn hit() {
    HITS.fetch_add(1, Ordering::Relaxed);
}

extern "C" fn ops_clobber(_: u64, _: u64, _: &Ops, _: &mut FtraceRegs) {
    hit();
    clobber();
}

extern "C" fn direct_clobber(_: &DirectCtx, _: *mut u64) {
    hit();
    clobber();
}

extern "C" fn fexit_clobber(_: &DirectCtx, _: *mut u64, _: &mut u64) {
    hit();
    clobber();
}

extern "C" fn exit_clobber(_: u64, _: u64, _: u64, _: &mut RetRegs) {
    hit();
    clobber();
}

extern "C" fn rethook_clobber(ip: u64, _: u64, _: &Ops, regs: &mut FtraceRegs) {
    hit();
    assert!(regs.hook_return(ip, exit_clobber, 0, 0));
    clobber();
}

extern "C" fn fprobe_entry_clobber(_: u64, _: u64, _: &mut u64, _: &mut FtraceRegs) -> bool {
    hit();
    clobber();
    true
}

extern "C" fn fprobe_exit_clobber(_: u64, _: u64, _: u64, _: &mut RetRegs) {
    hit();
    clobber();
}

extern "C" fn brk_clobber(_: u64, _: u64, _: &mut ExceptionFrame) {
    hit();
    clobber();
}

const DATA: [u64; 5] = [
    0x0123_4567_89ab_cdef,
    7,
    u64::MAX,
    0x8000_0000_0000_0001,
    42,
];
const TEXT: &str = "patchbay: every signature";
const BIG: u128 = 0xfedc_ba98_7654_3210_0f1e_2d3c_4b5a_6978;

/// Call every subject and its twin; returns the traced functions called, once per call.
fn call_every_subject(mech: &str) -> Vec<u64> {
    let mut called = Vec::new();
    macro_rules! same {
        ($f:ident, $twin:ident ($($a:expr),*)) => {{
            let got = sig::$f($($a),*);
            let want = sig::$twin($($a),*);
            assert_eq!(got, want, "{mech}: {}", stringify!($f));
            called.push(sig::$f as *const () as u64);
        }};
    }
    same!(sig_slice, sig_slice_twin(&DATA));
    same!(sig_slice, sig_slice_twin(&DATA[..1]));
    same!(sig_str, sig_str_twin(3, TEXT));
    let (mut a, mut b) = (DATA, DATA);
    assert_eq!(
        sig::sig_mut_slice(&mut a, 9),
        sig::sig_mut_slice_twin(&mut b, 9),
        "{mech}: sig_mut_slice"
    );
    assert_eq!(a, b, "{mech}: sig_mut_slice wrote");
    called.push(sig::sig_mut_slice as *const () as u64);
    same!(sig_u128, sig_u128_twin(5, BIG));
    same!(sig_i128, sig_i128_twin(1, 2, 3, -(BIG as i128) / 3, 4));
    same!(
        sig_small,
        sig_small_twin(
            Small {
                a: 0xdead,
                b: 0xbeef
            },
            11
        )
    );
    same!(
        sig_pair16,
        sig_pair16_twin(
            Pair16 {
                a: DATA[0],
                b: DATA[3]
            },
            12
        )
    );
    same!(
        sig_large,
        sig_large_twin(
            Large {
                w: [1, 2, 3, 4, 5, 6]
            },
            13
        )
    );
    same!(sig_option_ref, sig_option_ref_twin(Some(&DATA[0]), 14));
    same!(sig_option_ref, sig_option_ref_twin(None, 14));
    same!(sig_tuple, sig_tuple_twin((DATA[0], 0xffff_fffe), 15));
    same!(sig_args8, sig_args8_twin(1, 2, 3, 4, 5, 6, 7, 8));
    same!(sig_args9, sig_args9_twin(1, 2, 3, 4, 5, 6, 7, 8, 9));
    same!(
        sig_args12,
        sig_args12_twin(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)
    );
    same!(
        sig_args13,
        sig_args13_twin(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13)
    );
    same!(
        sig_stack_u128,
        sig_stack_u128_twin(1, 2, 3, 4, 5, 6, 7, BIG, 9)
    );
    same!(
        sig_split_slice,
        sig_split_slice_twin(1, 2, 3, 4, 5, 6, 7, &DATA)
    );
    same!(sig_large_ret, sig_large_ret_twin(DATA[0], DATA[1]));
    same!(sig_slice_large_ret, sig_slice_large_ret_twin(&DATA, 16));
    same!(
        sig_args9_large_ret,
        sig_args9_large_ret_twin(1, 2, 3, 4, 5, 6, 7, 8, 9)
    );
    let (x, y) = (
        sig::sig_f64(1.5, -2.25, 7),
        sig::sig_f64_twin(1.5, -2.25, 7),
    );
    assert_eq!(x.to_bits(), y.to_bits(), "{mech}: sig_f64");
    called.push(sig::sig_f64 as *const () as u64);
    called
}

fn all_sites() -> Vec<&'static sites::Site<'static>> {
    let v: Vec<_> = sites::glob("patchbay::subjects::signatures::*").collect();
    assert_eq!(v.len(), sig::SITES);
    v
}

#[derive(Clone, Copy, Debug)]
enum Mechanism {
    List,
    CallOps,
    Direct(Reach),
    DirectLean(Reach),
    Fexit,
    Rethook,
    Fprobe,
    Brk,
}

const MECHANISMS: [Mechanism; 11] = [
    Mechanism::List,
    Mechanism::CallOps,
    Mechanism::Direct(Reach::Near),
    Mechanism::Direct(Reach::FarViaOps),
    Mechanism::Direct(Reach::FarViaVeneer),
    Mechanism::DirectLean(Reach::Near),
    Mechanism::DirectLean(Reach::FarViaVeneer),
    Mechanism::Fexit,
    Mechanism::Rethook,
    Mechanism::Fprobe,
    Mechanism::Brk,
];

/// What to detach afterwards.
enum Attached {
    Ops(Vec<OpsId>),
    Fprobe(OpsId),
    Probes(Vec<kprobe::ProbeId>),
}

/// Attach `m` to every signature subject it supports; returns the handle, the traced functions
/// and the handler calls per traced call.
fn attach(m: Mechanism) -> (Attached, Vec<u64>, u64) {
    let sites = all_sites();
    let addrs = || Filter::Addrs(sites.iter().map(|s| s.func).collect());
    let every = sites.iter().map(|s| s.func).collect();
    match m {
        Mechanism::List | Mechanism::CallOps => {
            let mode = if matches!(m, Mechanism::List) {
                Mode::List
            } else {
                Mode::CallOps
            };
            let id = trace::attach(addrs(), ops_clobber, 0, mode).unwrap();
            (Attached::Ops([id].into()), every, 1)
        }
        Mechanism::Direct(reach) | Mechanism::DirectLean(reach) => {
            let kind = if matches!(m, Mechanism::Direct(_)) {
                DirectKind::Entry(direct_clobber)
            } else {
                DirectKind::LeanEntry(direct_clobber)
            };
            let ids = sites
                .iter()
                .map(|s| trace::attach_direct(s, kind, 0, reach))
                .collect::<Result<_, _>>()
                .unwrap();
            (Attached::Ops(ids), every, 1)
        }
        Mechanism::Fexit => {
            let (mut ids, mut traced) = (Vec::new(), Vec::new());
            for s in &sites {
                match trace::attach_direct(s, DirectKind::Fexit(fexit_clobber), 0, Reach::Near) {
                    Ok(id) => {
                        ids.push(id);
                        traced.push(s.func);
                    }
                    // Past the limit: refused (tested on its own below).
                    Err(TraceError::Tramp(TrampError::TooManyArgs { .. })) => {
                        assert_eq!(s.short_name(), "sig_args13")
                    }
                    Err(e) => panic!("fexit on {}: {e}", s.name),
                }
            }
            (Attached::Ops(ids), traced, 1)
        }
        Mechanism::Rethook => {
            let id = trace::attach(addrs(), rethook_clobber, 0, Mode::CallOps).unwrap();
            (Attached::Ops([id].into()), every, 2)
        }
        Mechanism::Fprobe => {
            let id = fprobe::register(
                addrs(),
                Some(fprobe_entry_clobber),
                Some(fprobe_exit_clobber),
                0,
                Mode::CallOps,
            )
            .unwrap();
            (Attached::Fprobe(id), every, 2)
        }
        Mechanism::Brk => {
            let ids = sites
                .iter()
                .map(|s| kprobe::register_kprobe(s, brk_clobber, 0))
                .collect::<Result<_, _>>()
                .unwrap();
            (Attached::Probes(ids), every, 1)
        }
    }
}

fn detach(a: Attached) {
    match a {
        Attached::Ops(ids) => ids.into_iter().for_each(|id| trace::detach(id).unwrap()),
        Attached::Fprobe(id) => fprobe::unregister(id).unwrap(),
        Attached::Probes(ids) => ids
            .into_iter()
            .for_each(|id| kprobe::unregister(id).unwrap()),
    }
    assert_eq!(text::text_hash(), BOOT.load(Ordering::Relaxed));
}

#[kernel_test]
fn every_signature_under_every_mechanism_returns_what_its_twin_returns() {
    call_every_subject("untraced");
    for m in MECHANISMS {
        let (attached, traced, per_call) = attach(m);
        HITS.store(0, Ordering::Relaxed);
        let called = call_every_subject(&alloc::format!("{m:?}"));
        let expect = called.iter().filter(|f| traced.contains(f)).count() as u64 * per_call;
        assert_eq!(HITS.load(Ordering::Relaxed), expect, "{m:?}: handler calls");
        detach(attached);
    }
}

/// The first shape of issue 13: a slice (one parameter, two registers) under a direct entry
/// handler that clobbers x1. Saving one register per parameter lost the length.
#[kernel_test]
fn a_slice_keeps_its_length_under_a_clobbering_direct_handler() {
    let s = sites::by_name("sig_slice").unwrap();
    assert_eq!(s.arg_regs.regs, 2);
    let id = trace::attach_direct(s, DirectKind::Entry(direct_clobber), 0, Reach::Near).unwrap();
    HITS.store(0, Ordering::Relaxed);
    assert_eq!(sig::sig_slice(&DATA), sig::sig_slice_twin(&DATA));
    assert_eq!(sig::sig_str(1, TEXT), sig::sig_str_twin(1, TEXT));
    assert_eq!(HITS.load(Ordering::Relaxed), 1);
    trace::detach(id).unwrap();
}

/// The second shape: a result returned through memory (x8) under a direct trampoline with the
/// benchmark suite's own counting handler, which uses x8 as its scratch register. Not saving x8
/// made the body write its result into the counter's page and the kernel hang.
#[kernel_test]
fn a_large_result_through_x8_survives_the_suites_counting_handler() {
    for name in ["sig_large_ret", "sig_slice_large_ret"] {
        let s = sites::by_name(name).unwrap();
        assert!(s.arg_regs.x8, "{name} returns through memory");
        let kinds = [
            DirectKind::Entry(mechanisms::direct_count),
            DirectKind::LeanEntry(mechanisms::direct_count),
        ];
        for (kind, reach) in kinds
            .into_iter()
            .flat_map(|k| [Reach::Near, Reach::FarViaOps, Reach::FarViaVeneer].map(|r| (k, r)))
        {
            let id = trace::attach_direct(s, kind, 0, reach).unwrap();
            let before = mechanisms::HITS.load(Ordering::Relaxed);
            assert_eq!(sig::sig_large_ret(3, 4), sig::sig_large_ret_twin(3, 4));
            assert_eq!(
                sig::sig_slice_large_ret(&DATA, 5),
                sig::sig_slice_large_ret_twin(&DATA, 5)
            );
            assert_eq!(mechanisms::HITS.load(Ordering::Relaxed), before + 1);
            trace::detach(id).unwrap();
        }
    }
}

static VIEW: spin::Mutex<Vec<u64>> = spin::Mutex::new(Vec::new());

extern "C" fn fexit_sees_all(ctx: &DirectCtx, args: *mut u64, ret: &mut u64) {
    // SAFETY: `args` is what the trampoline passed.
    *VIEW.lock() = unsafe { ctx.args(args) }.to_vec();
    *ret ^= 0xff;
    clobber();
}

#[kernel_test]
fn fexit_runs_twelve_argument_words_and_refuses_thirteen() {
    let s12 = sites::by_name("sig_args12").unwrap();
    let id = trace::attach_direct(s12, DirectKind::Fexit(fexit_sees_all), 0, Reach::Near).unwrap();
    let args: [u64; 12] = core::array::from_fn(|i| DATA[i % 5] ^ i as u64);
    let [a, b, c, d, e, f, g, h, i, j, k, l] = args;
    assert_eq!(
        sig::sig_args12(a, b, c, d, e, f, g, h, i, j, k, l),
        sig::sig_args12_twin(a, b, c, d, e, f, g, h, i, j, k, l) ^ 0xff
    );
    // The handler saw all twelve: eight registers, then four stack words.
    assert_eq!(*VIEW.lock(), args);
    trace::detach(id).unwrap();

    // 13 words: a typed refusal naming the limit, nothing patched.
    let s13 = sites::by_name("sig_args13").unwrap();
    let e =
        trace::attach_direct(s13, DirectKind::Fexit(fexit_sees_all), 0, Reach::Near).unwrap_err();
    assert_eq!(
        e,
        TraceError::Tramp(TrampError::TooManyArgs {
            words: 13,
            limit: MAX_ARG_WORDS
        })
    );
    assert!(alloc::format!("{e}").contains("at most 12"), "{e}");
    assert_eq!(trace::attach::attached(), 0);
    assert_eq!(text::text_hash(), BOOT.load(Ordering::Relaxed));
    // An entry trampoline does not care how many arguments are on the stack.
    let id = trace::attach_direct(s13, DirectKind::Entry(direct_clobber), 0, Reach::Near).unwrap();
    assert_eq!(
        sig::sig_args13(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13),
        sig::sig_args13_twin(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13)
    );
    trace::detach(id).unwrap();
}

#[kernel_test]
fn patchable_records_the_registers_each_signature_uses() {
    let regs = |name: &str| sites::by_name(name).unwrap().arg_regs;
    let r = |regs: u8, x8: bool, stack: u8| ArgRegs {
        regs,
        x8,
        stack: StackWords::Known(stack),
    };
    assert_eq!(regs("sig_slice"), r(2, false, 0));
    assert_eq!(regs("sig_str"), r(3, false, 0));
    // u64 in x0, the u128 in x2/x3.
    assert_eq!(regs("sig_u128"), r(4, false, 0));
    // three u64, the i128 in x4/x5 (x3 skipped), the last u64 in x6.
    assert_eq!(regs("sig_i128"), r(7, false, 0));
    assert_eq!(regs("sig_option_ref"), r(2, false, 0));
    assert_eq!(regs("sig_args8"), r(8, false, 0));
    assert_eq!(regs("sig_args9"), r(8, false, 1));
    assert_eq!(regs("sig_args12"), r(8, false, 4));
    assert_eq!(regs("sig_args13"), r(8, false, 5));
    assert_eq!(regs("sig_stack_u128"), r(8, false, 3));
    assert_eq!(regs("sig_split_slice"), r(8, false, 2));
    assert_eq!(regs("sig_large_ret"), r(2, true, 0));
    assert_eq!(regs("sig_slice_large_ret"), r(3, true, 0));
    assert_eq!(regs("sig_args9_large_ret"), r(8, true, 1));
    assert_eq!(regs("sig_f64"), r(3, false, 0));
    // Aggregates and tuples by value cannot be proved: x0–x8.
    for name in ["sig_small", "sig_pair16", "sig_large", "sig_tuple"] {
        assert_eq!(regs(name), r(8, true, 0), "{name}");
    }
}

extern "C" fn flip_result(_: u64, _: u64, _: u64, regs: &mut RetRegs) {
    regs.x[0] ^= 0xff;
    clobber();
}

extern "C" fn hook_and_clobber(ctx: &DirectCtx, args: *mut u64) {
    // SAFETY: `args` is what the trampoline passed.
    assert!(unsafe { ctx.hook_return(args, flip_result, 0, 0) });
    clobber();
}

/// A return hook set from a direct entry handler finds the call-site record in both layouts
/// (full and lean) whatever the number of saved registers.
#[kernel_test]
fn direct_entry_handlers_hook_returns_in_both_layouts() {
    for kind in [
        DirectKind::Entry(hook_and_clobber),
        DirectKind::LeanEntry(hook_and_clobber),
    ] {
        for reach in [Reach::Near, Reach::FarViaVeneer] {
            let s = sites::by_name("sig_slice").unwrap();
            let t = sites::by_name("sig_args9").unwrap();
            let ids = [
                trace::attach_direct(s, kind, 0, reach).unwrap(),
                trace::attach_direct(t, kind, 0, reach).unwrap(),
            ];
            assert_eq!(sig::sig_slice(&DATA), sig::sig_slice_twin(&DATA) ^ 0xff);
            assert_eq!(
                sig::sig_args9(1, 2, 3, 4, 5, 6, 7, 8, 9),
                sig::sig_args9_twin(1, 2, 3, 4, 5, 6, 7, 8, 9) ^ 0xff
            );
            ids.into_iter().for_each(|id| trace::detach(id).unwrap());
        }
    }
}
