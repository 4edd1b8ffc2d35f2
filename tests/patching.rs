//! Live text patching: sites switched between NOP and BL and back, batches over all 4096
//! generated sites, every error class leaving text byte-identical, the cache-maintenance
//! sequence itself, and the site table.
#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(patchbay::ktest::runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

use alloc::vec::Vec;

use patchbay::{
    arch, kernel_test, memory,
    patch::{
        PatchError,
        batch::{self, Batch, LITERAL_NOPS},
        counter, maintenance,
        poke::{self, Write},
        sites,
        text::text_hash,
    },
    subjects::{self, generated},
};
use patchbay_pure::{
    cache::{self, Op},
    harden,
    insn::{self, EncodeError},
    sites::ArgRegs,
};

patchbay::qemu_directives!("timeout=120");

patchbay::test_kernel_main!();

fn word(addr: u64) -> u32 {
    poke::read(addr, poke::Width::Insn) as u32
}

fn leaf() -> &'static sites::Site<'static> {
    sites::by_name("patchbay::subjects::leaf").unwrap()
}

#[kernel_test]
fn site_table_matches_registry_and_compiler() {
    let all = sites::all();
    assert_eq!(
        all.len(),
        4096 + subjects::NAMED_SITES,
        "4096 generated + the named subjects"
    );
    assert_eq!(sites::registry().len(), all.len());
    assert_eq!(sites::compiler_entries().len(), all.len());
    assert!(
        all.windows(2).all(|w| w[0].func < w[1].func),
        "sorted by address"
    );
    for s in all {
        assert_eq!(s.literal() % 8, 0, "{} literal not 8-aligned", s.name);
        assert!(memory::image().text.contains(s.func));
        // Boot state: the literal `nop; nop`, `mov x9, x30` written at boot, the call `nop`.
        assert_eq!(
            poke::read(s.literal(), poke::Width::Literal),
            LITERAL_NOPS,
            "{}",
            s.name
        );
        assert_eq!(
            (word(s.entry()), word(s.call())),
            (insn::MOV_X9_X30, insn::NOP),
            "{}",
            s.name
        );
        assert_eq!(batch::state(s), batch::SiteState::BOOT, "{}", s.name);
    }
    let leaf = leaf();
    assert_eq!(leaf.func, subjects::leaf as *const () as u64);
    // Plain word arguments: x0..x(n-1), x8 dead, nothing on the stack.
    assert_eq!(leaf.arg_regs, ArgRegs::from_bits(0));
    assert_eq!(
        sites::by_name("args8").unwrap().arg_regs,
        ArgRegs::from_bits(8)
    );
    assert_eq!(
        sites::by_name("fib").unwrap().arg_regs,
        ArgRegs::from_bits(1)
    );
    assert_eq!(
        sites::by_addr(subjects::observe as *const () as u64)
            .unwrap()
            .short_name(),
        "observe"
    );
    assert_eq!(sites::glob("gen_*").count(), 4096);
    assert_eq!(sites::glob("gen_00?1").count(), 10);
    assert_eq!(
        sites::glob("patchbay::subjects::*").count(),
        4096 + subjects::NAMED_SITES
    );
    assert_eq!(
        sites::glob("patchbay::subjects::generated::*").count(),
        4096
    );
    let g42 = sites::by_name("gen_0042").unwrap();
    assert_eq!(g42.func, generated::ALL[42] as *const () as u64);
}

#[kernel_test]
fn the_machinery_is_never_a_patch_site() {
    // Trampolines, handlers, the poke path, the harness and the exception paths are not
    // #[patchable]; every site is a subject (or a test's own function).
    for s in sites::all() {
        assert!(
            s.name.starts_with("patchbay::subjects::"),
            "{} is a patch site",
            s.name
        );
    }
    let machinery = [
        patchbay::patch::poke::poke as *const () as u64,
        patchbay::patch::batch::Batch::commit as *const () as u64,
        patchbay::trace::trampoline::direct_caller(),
        patchbay::trace::rethook::trampoline(),
        patchbay::exception::fatal as *const () as u64,
    ];
    let callers = patchbay::trace::trampoline::ops_callers()
        .into_iter()
        .chain(patchbay::trace::trampoline::list_callers());
    for f in machinery.into_iter().chain(callers) {
        assert_eq!(sites::by_addr(f), Err(PatchError::NotASite { addr: f }));
    }
}

#[kernel_test]
fn nop_to_bl_and_back_each_state_takes_effect() {
    let site = leaf();
    let boot = text_hash();
    counter::take();
    subjects::leaf();
    assert_eq!(counter::take(), 0, "off: no hits");

    batch::arm(site, counter::target()).unwrap();
    assert_eq!(word(site.entry()), insn::MOV_X9_X30);
    assert_eq!(
        word(site.call()),
        insn::bl(site.call(), counter::target()).unwrap()
    );
    for _ in 0..5 {
        subjects::leaf();
    }
    assert_eq!(counter::take(), 5, "armed: every call hits");

    batch::disarm(site).unwrap();
    subjects::leaf();
    assert_eq!(counter::take(), 0, "disarmed: no hits");
    // Like Linux, `mov x9, x30` (written at boot) stays; only the BL is toggled.
    assert_eq!(
        (word(site.entry()), word(site.call())),
        (insn::MOV_X9_X30, insn::NOP)
    );
    let stats = batch::arm(site, counter::target()).unwrap();
    assert_eq!(stats.protocol, batch::Protocol::Live);
    subjects::leaf();
    assert_eq!(counter::take(), 1, "re-armed: hits again");
    batch::restore(site).unwrap();
    assert_eq!(
        (word(site.entry()), word(site.call())),
        (insn::MOV_X9_X30, insn::NOP)
    );
    subjects::leaf();
    assert_eq!(counter::take(), 0, "restored: no hits");
    assert_eq!(text_hash(), boot);
    // Unprepared: the compiled bytes (an entry-word change: stop-the-world), then prepared again.
    let mut b = Batch::new();
    b.arm(site, counter::target());
    b.commit().unwrap();
    let mut b = Batch::new();
    b.unprepare(site);
    let stats = b.commit().unwrap();
    assert_eq!(stats.protocol, batch::Protocol::StopMachine);
    assert_eq!(stats.phase_writes, [1, 1], "bl -> nop, then mov -> nop");
    assert_eq!(
        (word(site.entry()), word(site.call())),
        (insn::NOP, insn::NOP)
    );
    assert_eq!(batch::state(site), batch::SiteState::COMPILED);
    subjects::leaf();
    assert_eq!(counter::take(), 0, "unprepared: no hits");
    assert_ne!(text_hash(), boot);
    let mut b = Batch::new();
    b.prepare(site);
    assert_eq!(b.commit().unwrap().protocol, batch::Protocol::StopMachine);
    assert_eq!(text_hash(), boot);

    // Again, on a function with arguments and a result: the target must be transparent.
    let a8 = sites::by_name("args8").unwrap();
    batch::arm(a8, counter::target()).unwrap();
    assert_eq!(
        subjects::args8(1, 2, 3, 4, 5, 6, 7, 8),
        subjects::args8_expected(1, 2, 3, 4, 5, 6, 7, 8)
    );
    assert_eq!(counter::take(), 1);
    batch::restore(a8).unwrap();
    assert_eq!(text_hash(), boot);
}

#[kernel_test]
fn recursion_goes_through_the_site_every_time() {
    let site = sites::by_name("fib").unwrap();
    batch::arm(site, counter::target()).unwrap();
    counter::take();
    assert_eq!(subjects::fib(15), 610);
    assert_eq!(counter::take(), subjects::fib_calls(15));
    batch::restore(site).unwrap();
}

#[kernel_test]
fn retarget_an_armed_site_bl_to_bl() {
    let site = leaf();
    let boot = text_hash();
    batch::arm(site, counter::target()).unwrap();
    // Retarget to the same function through a different (but equivalent) address is not
    // possible; retarget to itself is a no-op, and the state machine stays consistent.
    let stats = batch::arm(site, counter::target()).unwrap();
    assert_eq!(stats.phase_writes, [0, 0]);
    batch::restore(site).unwrap();
    assert_eq!(text_hash(), boot);
}

#[kernel_test]
fn batch_arms_calls_and_disarms_all_generated_sites() {
    let boot = text_hash();
    let gens: Vec<_> = sites::glob("gen_*").collect();
    assert_eq!(gens.len(), 4096);
    let mut b = Batch::with_capacity(gens.len());
    for s in &gens {
        b.arm(s, counter::target());
    }
    let stats = b.commit().unwrap();
    assert_eq!(stats.sites, 4096);
    assert_eq!(
        stats.phase_writes,
        [0, 4096],
        "prepared at boot: only the BLs"
    );
    assert_eq!(stats.protocol, batch::Protocol::Live);
    assert_eq!(stats.poke.writes, 4096);
    // One alias mapping per page touched per phase, not per site.
    assert!(stats.poke.pages < 400, "{} pages", stats.poke.pages);
    counter::take();
    for (i, f) in generated::ALL.iter().enumerate() {
        assert_eq!(f(1000), generated::expected(i, 1000));
    }
    assert_eq!(counter::take(), 4096);
    let mut b = Batch::with_capacity(gens.len());
    for s in &gens {
        b.disarm(s);
    }
    let stats = b.commit().unwrap();
    assert_eq!(stats.phase_writes, [4096, 0], "disarm toggles only the BL");
    for f in generated::ALL.iter() {
        f(1);
    }
    assert_eq!(counter::take(), 0);
    let mut b = Batch::with_capacity(gens.len());
    for s in &gens {
        b.restore(s);
    }
    let stats = b.commit().unwrap();
    assert_eq!(stats.phase_writes, [0, 0], "disarmed sites are at rest");
    assert_eq!(
        text_hash(),
        boot,
        "byte-identical after arm + disarm + restore"
    );
    // All the way back to the compiled bytes and prepared again (entry words: stop-the-world,
    // one maintenance pass over more lines than the by-line limit: IC IALLUIS).
    for unprepare in [true, false] {
        let mut b = Batch::with_capacity(gens.len());
        for s in &gens {
            if unprepare {
                b.unprepare(s);
            } else {
                b.prepare(s);
            }
        }
        let stats = b.commit().unwrap();
        assert_eq!(stats.protocol, batch::Protocol::StopMachine);
        assert_eq!(stats.poke.writes, 4096);
        for (i, f) in generated::ALL.iter().enumerate() {
            assert_eq!(f(7), generated::expected(i, 7));
        }
        assert_eq!(text_hash() == boot, !unprepare);
    }
    assert_eq!(counter::take(), 0);
}

#[kernel_test]
fn literal_slot_single_store() {
    let site = sites::by_name("observe").unwrap();
    let boot = text_hash();
    let mut b = Batch::new();
    b.set_literal(site, 0x1122_3344_5566_7788);
    b.commit().unwrap();
    assert_eq!(
        poke::read(site.literal(), poke::Width::Literal),
        0x1122_3344_5566_7788
    );
    assert_eq!(batch::state(site).literal, 0x1122_3344_5566_7788);
    // The function still works: the literal is before the entry, never executed.
    assert_eq!(subjects::observe(5), 22);
    let mut b = Batch::new();
    b.set_literal(site, LITERAL_NOPS);
    b.commit().unwrap();
    assert_eq!(text_hash(), boot);
}

/// Run `f`, which must fail with `want`, and check that text did not change.
fn refused(want: PatchError, f: impl FnOnce() -> Result<(), PatchError>) {
    let before = text_hash();
    assert_eq!(f(), Err(want));
    assert_eq!(
        text_hash(),
        before,
        "an error must leave text byte-identical"
    );
}

#[kernel_test]
fn every_error_leaves_text_byte_identical() {
    let site = leaf();
    let nop_at = site.call();
    // Not a site.
    let not_site = subjects::leaf_twin as *const () as u64;
    refused(PatchError::NotASite { addr: not_site }, || {
        sites::by_addr(not_site).map(|_| ())
    });
    refused(
        PatchError::NoSuchSite {
            pattern: "no_such_fn".into(),
        },
        || sites::by_name("no_such_fn").map(|_| ()),
    );
    // Misaligned instruction and literal writes.
    refused(
        PatchError::Misaligned {
            addr: nop_at + 2,
            align: 4,
        },
        || poke::poke(nop_at + 2, insn::NOP, insn::NOP),
    );
    refused(
        PatchError::Misaligned {
            addr: site.literal() + 4,
            align: 8,
        },
        || poke::poke_literal(site.literal() + 4, 0, 1),
    );
    // Outside text and pools: rodata, data, MMIO.
    let rodata = memory::image().rodata.start;
    refused(PatchError::NotPatchable { addr: rodata }, || {
        poke::poke(rodata, 0, insn::NOP)
    });
    // Old-instruction mismatch: claims a BL is there.
    let bogus = insn::bl(nop_at, counter::target()).unwrap();
    refused(
        PatchError::Mismatch {
            addr: nop_at,
            expected: bogus.into(),
            found: insn::NOP.into(),
            width: 4,
        },
        || poke::poke(nop_at, bogus, insn::NOP),
    );
    // Branch out of range: the far pool is beyond +-128 MiB by construction.
    let far = memory::plan().far_pool.start;
    let err = insn::bl(site.call(), far).unwrap_err();
    assert!(matches!(err, EncodeError::OutOfRange { .. }));
    refused(PatchError::Encode(err), || {
        batch::arm(site, far).map(|_| ())
    });
    // Two writes to one word, one site twice, disarming an unarmed site.
    refused(PatchError::Overlap { addr: nop_at }, || {
        poke::apply(&mut [
            Write::insn(nop_at, insn::NOP, insn::NOP),
            Write::insn(nop_at, insn::NOP, insn::NOP),
        ])
        .map(|_| ())
    });
    refused(PatchError::SiteTwiceInBatch { site: site.name }, || {
        let mut b = Batch::new();
        b.arm(site, counter::target()).disarm(site);
        b.commit().map(|_| ())
    });
    refused(PatchError::NotArmed { site: site.name }, || {
        batch::disarm(site).map(|_| ())
    });
    // One bad change among many good ones: nothing at all is written.
    let a8 = sites::by_name("args8").unwrap();
    refused(
        PatchError::Encode(insn::bl(site.call(), far).unwrap_err()),
        || {
            let mut b = Batch::new();
            for s in sites::glob("gen_01*") {
                b.arm(s, counter::target());
            }
            b.arm(a8, counter::target()).arm(site, far);
            b.commit().map(|_| ())
        },
    );
    assert_eq!(batch::state(a8).call(), None);
    // A site changed behind the engine's back is refused, not overwritten.
    poke::poke(site.call(), insn::NOP, insn::brk(7)).unwrap();
    refused(
        PatchError::Mismatch {
            addr: site.call(),
            expected: insn::NOP.into(),
            found: insn::brk(7).into(),
            width: 4,
        },
        || batch::arm(site, counter::target()).map(|_| ()),
    );
    poke::poke(site.call(), insn::brk(7), insn::NOP).unwrap();
}

#[kernel_test]
fn errors_explain_themselves() {
    let msg = alloc::format!(
        "{}",
        PatchError::Mismatch {
            addr: 0x1000,
            expected: insn::NOP.into(),
            found: insn::MOV_X9_X30.into(),
            width: 4
        }
    );
    assert!(
        msg.contains("expected `nop` but found `mov x9, x30`"),
        "{msg}"
    );
    assert!(msg.contains("nothing was written"), "{msg}");
}

#[kernel_test]
fn maintenance_sequence_for_one_word_is_the_architectural_one() {
    let site = leaf();
    let ctr = arch::cache::ctr();
    let (dline, iline) = (ctr.dcache_line(), ctr.icache_line());
    let a = site.call();
    let ops = maintenance::record(|| poke::poke(a, insn::NOP, insn::NOP).unwrap());
    if harden::HARDENED {
        // QEMU's `max` (the hardened build's CPU): IDC = DIC = 1, barriers only.
        assert!(ctr.idc() && ctr.dic());
        assert_eq!(ops, [Op::DsbIsh, Op::Isb]);
    } else {
        // Under QEMU's Cortex-A72: IDC = DIC = 0, so both cleans and invalidates are required.
        assert!(!ctr.idc() && !ctr.dic());
        assert_eq!(
            ops,
            [
                Op::DcCvau(a & !(dline - 1)),
                Op::DsbIsh,
                Op::IcIvau(a & !(iline - 1)),
                Op::DsbIsh,
                Op::Isb
            ]
        );
    }
}

#[kernel_test]
fn maintenance_of_a_batch_covers_every_written_line_once() {
    let gens: Vec<_> = sites::glob("gen_00*").collect(); // 100 sites
    let mut b = Batch::new();
    for s in &gens {
        b.arm(s, counter::target());
    }
    let ops = maintenance::record(|| {
        b.commit().unwrap();
    });
    // One phase (the sites were prepared at boot: only the BLs): every D-line, DSB, every
    // I-line, DSB, ISB, in that order.
    let ctr = arch::cache::ctr();
    let mut expect = Vec::new();
    let mut calls: Vec<u64> = gens.iter().map(|s| s.call()).collect();
    calls.sort_unstable();
    cache::plan(ctr, calls.iter().map(|&a| (a, a + 4)), |op| expect.push(op));
    assert_eq!(ops, expect);
    // Each written word's line is cleaned and invalidated — unless CTR_EL0 says the CPU needs
    // neither (IDC, DIC: QEMU's `max`, which the hardened build runs on, has both).
    for s in &gens {
        let line = s.call() & !(ctr.dcache_line() - 1);
        assert!(ctr.idc() || ops.contains(&Op::DcCvau(line)));
        assert!(ctr.dic() || ops.contains(&Op::IcIvau(line)));
    }
    let n_isb = ops.iter().filter(|o| **o == Op::Isb).count();
    assert_eq!(n_isb, 1, "one ISB per phase, not per site");
    let mut b = Batch::new();
    for s in &gens {
        b.restore(s);
    }
    b.commit().unwrap();
}
