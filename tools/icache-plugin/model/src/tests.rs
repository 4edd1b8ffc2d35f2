//! Synthetic event traces, one CPU and several.

use super::*;
use patchbay_pure::insn::{self, NOP};

/// QEMU's cortex-a72: 64-byte lines, IDC = DIC = 0.
const A72: Ctr = Ctr(0x8444_c004);
const TEXT: u64 = 0x4008_1040;
const ALIAS: u64 = 0x40_0000_0040;
const PC: u64 = 0x400a_0000;

fn model(cpus: usize) -> Model {
    Model::new(Config {
        cpus,
        ctr: A72,
        cmodx_local: false,
    })
}

/// A store by `cpu` from PC through `va` to `pa`.
fn st(cpu: usize, va: u64, pa: u64) -> Store {
    Store {
        cpu,
        pc: PC,
        va,
        pa,
    }
}

fn bl() -> u32 {
    insn::bl(TEXT, TEXT + 0x100).unwrap()
}

/// `cpu` replaces the NOP at TEXT with a BL (a CMODX-safe change) through the alias.
fn write_bl(m: &mut Model, cpu: usize) {
    m.store(st(cpu, ALIAS, TEXT), 4, Some(NOP), bl().into());
}

/// The architectural sequence on `cpu`, with one step left out (`skip`, by name).
fn publish_on(m: &mut Model, cpu: usize, line: u64, skip: &str) {
    if skip != "dc" {
        m.dc_clean(cpu, line);
    }
    if skip != "dsb1" {
        m.dsb(cpu);
    }
    if skip != "ic" {
        m.ic_ivau(cpu, line);
    }
    if skip != "dsb2" {
        m.dsb(cpu);
    }
    if skip != "isb" {
        m.cse(cpu);
    }
}

fn missing(m: &mut Model, cpu: usize) -> Option<Missing> {
    m.execute(cpu, TEXT, TEXT).map(|v| v.missing)
}

#[test]
fn the_full_sequence_leaves_nothing_stale() {
    let mut m = model(1);
    write_bl(&mut m, 0);
    publish_on(&mut m, 0, TEXT, "");
    assert_eq!(missing(&mut m, 0), None);
    assert_eq!(m.pending(), 0);
    assert_eq!(m.stats().completed, 1);
    assert_eq!(m.stats().violations, 0);
}

#[test]
fn each_dropped_step_is_named() {
    for (skip, want) in [
        ("dc", Missing::DcClean),
        ("dsb1", Missing::DsbAfterClean),
        ("ic", Missing::IcInvalidate),
        ("dsb2", Missing::DsbAfterInvalidate),
        ("isb", Missing::Isb),
    ] {
        let mut m = model(1);
        write_bl(&mut m, 0);
        publish_on(&mut m, 0, TEXT, skip);
        assert_eq!(missing(&mut m, 0), Some(want), "without {skip}");
        assert_eq!(m.stats().violations, 1);
    }
}

#[test]
fn a_missing_dsb_is_still_missing_after_later_barriers() {
    // Without the second DSB, an ISB does not help; a later DSB completes the invalidation
    // but the ISB came before it, so this CPU still needs another one.
    let mut m = model(1);
    write_bl(&mut m, 0);
    publish_on(&mut m, 0, TEXT, "dsb2");
    m.dsb(0);
    assert_eq!(missing(&mut m, 0), Some(Missing::Isb));
    m.cse(0);
    assert_eq!(m.pending(), 0);
}

#[test]
fn maintaining_the_next_line_is_no_maintenance() {
    let mut m = model(1);
    write_bl(&mut m, 0);
    publish_on(&mut m, 0, TEXT + 64, "");
    let v = m.execute(0, TEXT, TEXT).unwrap();
    assert_eq!(v.missing, Missing::DcClean);
    assert_eq!(
        v.store,
        Store {
            cpu: 0,
            pc: PC,
            va: ALIAS,
            pa: TEXT
        }
    );
    // The neighbouring line was never written.
    assert!(m.execute(0, TEXT + 64, TEXT + 64).is_none());
}

#[test]
fn unwritten_words_of_a_stale_line_are_the_same_instructions() {
    // A 64-bit literal (a CALL_OPS slot) written right before a function entry in one line:
    // running the function is fine, running the literal's bytes is not.
    let mut m = model(1);
    m.store(st(0, ALIAS, TEXT), 8, None, 0x4009_0000);
    assert!(m.execute(0, TEXT + 8, TEXT + 8).is_none());
    assert_eq!(
        m.execute(0, TEXT + 4, TEXT + 4).map(|v| v.missing),
        Some(Missing::DcClean)
    );
}

#[test]
fn reported_once_per_cpu_per_store() {
    let mut m = model(1);
    write_bl(&mut m, 0);
    assert!(m.execute(0, TEXT, TEXT).is_some());
    assert!(m.execute(0, TEXT, TEXT).is_none());
    write_bl(&mut m, 0);
    assert!(
        m.execute(0, TEXT, TEXT).is_some(),
        "a new store, a new report"
    );
}

#[test]
fn a_dsb_on_another_cpu_completes_nothing_of_ours() {
    let mut m = model(2);
    write_bl(&mut m, 0);
    m.dc_clean(0, TEXT);
    m.dsb(1);
    m.ic_ivau(0, TEXT);
    m.dsb(0);
    m.cse(0);
    assert_eq!(missing(&mut m, 0), Some(Missing::DsbAfterClean));
}

#[test]
fn idc_and_dic() {
    let idc = Ctr(A72.0 | 1 << 28);
    let mut m = Model::new(Config {
        cpus: 1,
        ctr: idc,
        cmodx_local: false,
    });
    write_bl(&mut m, 0);
    // No clean: the store still needs a DSB before the invalidation.
    m.ic_ivau(0, TEXT);
    m.dsb(0);
    m.cse(0);
    assert_eq!(missing(&mut m, 0), Some(Missing::DsbAfterClean));
    write_bl(&mut m, 0);
    publish_on(&mut m, 0, TEXT, "dc");
    assert_eq!(missing(&mut m, 0), None);

    let both = Ctr(A72.0 | 3 << 28);
    let mut m = Model::new(Config {
        cpus: 1,
        ctr: both,
        cmodx_local: false,
    });
    write_bl(&mut m, 0);
    m.dsb(0);
    assert_eq!(missing(&mut m, 0), Some(Missing::Isb), "DIC: DSB, then ISB");
    write_bl(&mut m, 0);
    m.dsb(0);
    m.cse(0);
    assert_eq!(missing(&mut m, 0), None);
}

#[test]
fn smaller_i_lines_than_d_lines() {
    // DminLine 64 B, IminLine 32 B: one DC covers two I-lines, each needs its own IC IVAU.
    let ctr = Ctr(0x8444_c003);
    let mut m = Model::new(Config {
        cpus: 1,
        ctr,
        cmodx_local: false,
    });
    m.store(st(0, ALIAS, 0x1000), 4, None, 0);
    m.store(st(0, ALIAS + 0x20, 0x1020), 4, None, 0);
    m.dc_clean(0, 0x1000);
    m.dsb(0);
    m.ic_ivau(0, 0x1000);
    m.dsb(0);
    m.cse(0);
    assert!(m.execute(0, 0x1000, 0x1000).is_none());
    assert_eq!(
        m.execute(0, 0x1020, 0x1020).map(|v| v.missing),
        Some(Missing::IcInvalidate)
    );
}

#[test]
fn other_cpus_need_their_own_synchronization_once_published() {
    let mut m = model(2);
    m.cse(1); // cpu 1 is running
    write_bl(&mut m, 0);
    publish_on(&mut m, 0, TEXT, "");
    // Before publication cpu 1 may run the old NOP or the new BL: both CMODX-safe.
    assert_eq!(missing(&mut m, 1), None);
    assert_eq!(m.stats().cmodx_tolerated, 1);
    assert_eq!(m.pending(), 1, "cpu 1 has not synchronized yet");
    // The patcher publishes without having kicked cpu 1.
    m.published(0);
    assert_eq!(missing(&mut m, 1), Some(Missing::Kick));
    // The kick's exception entry synchronizes cpu 1: from then on all is clean.
    m.cse(1);
    assert_eq!(m.pending(), 0);
    assert_eq!(missing(&mut m, 1), None);
}

#[test]
fn a_kick_before_publication_satisfies_the_rule() {
    let mut m = model(4);
    for cpu in 1..4 {
        m.cse(cpu);
    }
    write_bl(&mut m, 0);
    publish_on(&mut m, 0, TEXT, "");
    for cpu in 1..4 {
        m.cse(cpu); // the IPI's exception entry on each
    }
    m.published(0);
    for cpu in 0..4 {
        assert_eq!(missing(&mut m, cpu), None, "cpu {cpu}");
    }
}

#[test]
fn a_kick_before_the_invalidation_completed_does_not_count() {
    let mut m = model(2);
    m.cse(1);
    write_bl(&mut m, 0);
    m.dc_clean(0, TEXT);
    m.dsb(0);
    m.ic_ivau(0, TEXT);
    m.cse(1); // too early: the invalidation is not complete
    m.dsb(0);
    m.cse(0);
    m.published(0);
    assert_eq!(missing(&mut m, 1), Some(Missing::Kick));
}

#[test]
fn a_non_cmodx_change_is_never_safe_on_another_cpu() {
    let mut m = model(2);
    m.cse(1);
    // ADD over a NOP: not in the CMODX list, so even before publication it is a violation.
    let add = 0x9100_0400; // add x0, x0, #1
    m.store(st(0, ALIAS, TEXT), 4, Some(NOP), add);
    m.dc_clean(0, TEXT);
    assert_eq!(missing(&mut m, 1), Some(Missing::DsbAfterClean));
    // Unknown old word: not provably CMODX-safe either.
    let mut m = model(2);
    m.store(st(0, ALIAS, TEXT), 4, None, bl().into());
    assert_eq!(missing(&mut m, 1), Some(Missing::DcClean));
}

#[test]
fn cmodx_for_the_local_cpu_is_an_option() {
    let mut m = model(1);
    write_bl(&mut m, 0);
    assert_eq!(missing(&mut m, 0), Some(Missing::DcClean), "off by default");
    let mut m = Model::new(Config {
        cpus: 1,
        ctr: A72,
        cmodx_local: true,
    });
    write_bl(&mut m, 0);
    assert_eq!(missing(&mut m, 0), None);
    m.published(0);
    assert_eq!(
        missing(&mut m, 0),
        Some(Missing::DcClean),
        "not after publication"
    );
}

/// Two CPUs; cpu 0 writes an ADD, cleans, invalidates all (broadcast or not), and both CPUs
/// synchronize afterwards.
fn iall_then_both_synchronize(broadcast: bool) -> Model {
    let mut m = model(2);
    m.cse(1);
    m.store(st(0, ALIAS, TEXT), 4, None, 0x9100_0400);
    m.dc_clean(0, TEXT);
    m.dsb(0);
    m.ic_iall(0, broadcast);
    m.dsb(0);
    m.cse(0);
    m.cse(1);
    m
}

#[test]
fn a_local_iallu_leaves_other_cpus_stale() {
    let mut m = iall_then_both_synchronize(false);
    assert_eq!(missing(&mut m, 0), None);
    assert_eq!(missing(&mut m, 1), Some(Missing::IcBroadcast { by: 0 }));
    // IC IALLUIS instead reaches cpu 1.
    let mut m = iall_then_both_synchronize(true);
    assert_eq!(missing(&mut m, 1), None);
    assert_eq!(m.pending(), 0);
}

#[test]
fn a_cpu_started_later_comes_up_clean() {
    let mut m = model(2);
    write_bl(&mut m, 0);
    publish_on(&mut m, 0, TEXT, "");
    assert_eq!(
        m.pending(),
        0,
        "cpu 1 has not started: its reset empties its I-cache"
    );
    assert_eq!(missing(&mut m, 1), None);
}

#[test]
fn violation_report_names_everything() {
    let mut m = model(1);
    write_bl(&mut m, 0);
    publish_on(&mut m, 0, TEXT, "ic");
    let v = m.execute(0, TEXT, TEXT).unwrap();
    assert_eq!(
        v.to_string(),
        "cpu 0 executed va 0x40081040 (pa 0x40081040) stale: written by cpu 0 at pc 0x400a0000 \
         (via va 0x4000000040, pa 0x40081040); missing: IC IVAU of the line after the clean \
         completed"
    );
}

#[test]
fn the_cmodx_exception_is_judged_per_word() {
    // A site's CALL_OPS literal (data, 8 bytes at TEXT - 8) and its call word (NOP -> BL at
    // TEXT) in one line, as an arm writes them: another CPU running the BL word before
    // publication may see old or new, but running the literal's words is a violation.
    let mut m = model(2);
    m.cse(1);
    m.store(st(0, ALIAS - 8, TEXT - 8), 8, None, 0x4000_1000);
    write_bl(&mut m, 0);
    assert_eq!(
        missing(&mut m, 1),
        None,
        "the BL word: CMODX-safe until published"
    );
    assert_eq!(m.stats().cmodx_tolerated, 1);
    assert_eq!(
        m.execute(1, TEXT - 8, TEXT - 8).map(|v| v.missing),
        Some(Missing::DcClean),
        "the literal's word is data"
    );
    // A non-CMODX change to another word of the line (the entry `mov x9, x30` over a NOP)
    // does not take the exception away from the BL word, only from its own word.
    let mut m = model(2);
    m.cse(1);
    m.store(
        st(0, ALIAS + 4, TEXT + 4),
        4,
        Some(NOP),
        insn::MOV_X9_X30.into(),
    );
    write_bl(&mut m, 0);
    assert_eq!(missing(&mut m, 1), None);
    assert_eq!(
        m.execute(1, TEXT + 4, TEXT + 4).map(|v| v.missing),
        Some(Missing::DcClean)
    );
    // After publication the BL word needs this CPU's own synchronization again.
    let mut m = model(2);
    m.cse(1);
    m.store(st(0, ALIAS - 8, TEXT - 8), 8, None, 0x4000_1000);
    write_bl(&mut m, 0);
    publish_on(&mut m, 0, TEXT, "");
    m.published(0);
    assert_eq!(missing(&mut m, 1), Some(Missing::Kick));
}

/// A stop-the-world change as the patcher makes it: `mov x9, x30` over the NOP at TEXT + 4 (not
/// CMODX-safe) by cpu 0, maintained, published.
fn stop_the_world_entry_word(m: &mut Model) {
    m.store(
        st(0, ALIAS + 4, TEXT + 4),
        4,
        Some(NOP),
        insn::MOV_X9_X30.into(),
    );
    publish_on(m, 0, TEXT, "");
}

#[test]
fn a_completed_change_keeps_its_verdict_when_the_line_is_written_again() {
    // cpu 1 left the park (ISB) after the stop-the-world write; cpu 2 has not run since. Then a
    // live BL over the NOP at TEXT, same line: cpu 1 may run the entry word (it synchronized
    // after its invalidation) and the old or new BL word (CMODX-safe, not yet published).
    let mut m = model(3);
    m.cse(1);
    m.cse(2);
    stop_the_world_entry_word(&mut m);
    m.cse(1);
    m.published(0);
    write_bl(&mut m, 0);
    assert_eq!(
        m.execute(1, TEXT + 4, TEXT + 4).map(|v| v.missing),
        None,
        "the entry word is published to cpu 1"
    );
    assert_eq!(missing(&mut m, 1), None, "the BL word is CMODX-safe");
    assert_eq!(m.stats().cmodx_tolerated, 1);
    // cpu 2 never synchronized after the entry word's invalidation: still its kick.
    assert_eq!(
        m.execute(2, TEXT + 4, TEXT + 4).map(|v| v.missing),
        Some(Missing::Kick)
    );
    // The live change completes; once cpu 2 synchronizes too, nothing is left.
    publish_on(&mut m, 0, TEXT, "");
    m.published(0);
    assert_eq!(
        missing(&mut m, 1),
        Some(Missing::Kick),
        "the BL needs cpu 1's kick"
    );
    m.cse(1);
    assert_eq!(m.pending(), 1, "cpu 2 holds both changes");
    m.cse(2);
    assert_eq!(m.pending(), 0);
    assert_eq!(m.stats().violations, 2);
}

#[test]
fn a_word_written_again_is_judged_by_its_new_change_alone() {
    // The stop-the-world change wrote the BL word from an unknown old word (not CMODX-safe);
    // then a live BL -> BL retarget of that word: CMODX-safe, so cpu 1 may run either until
    // publication, whatever the earlier change was.
    let mut m = model(3);
    m.cse(1);
    m.cse(2);
    m.store(st(0, ALIAS, TEXT), 4, None, bl().into());
    publish_on(&mut m, 0, TEXT, "");
    m.cse(1);
    m.published(0);
    let retarget = insn::bl(TEXT, TEXT + 0x200).unwrap();
    m.store(st(0, ALIAS, TEXT), 4, Some(bl()), retarget.into());
    assert_eq!(missing(&mut m, 1), None);
    assert_eq!(
        missing(&mut m, 2),
        None,
        "the retarget is CMODX-safe for cpu 2 too"
    );
    // Two completed changes waiting for cpu 2 settle into one, judged by the later.
    stop_the_world_entry_word(&mut m);
    m.published(0);
    m.cse(1);
    write_bl(&mut m, 0);
    assert_eq!(
        m.execute(2, TEXT + 4, TEXT + 4).map(|v| v.missing),
        Some(Missing::Kick)
    );
    assert_eq!(m.execute(1, TEXT + 4, TEXT + 4), None);
}
