//! The poke path: writing instructions and literals into read-only executable memory.
//!
//! Text is never writable through its executable mapping (W^X, SCTLR_EL1.WXN). To write it, the
//! target's physical page is mapped *read-write, execute-never* at this CPU's slot in the poke
//! window (Linux's FIX_TEXT_POKE0 idea), written there, unmapped, and then the written lines get
//! the architectural maintenance ([`maintenance::sync_icache`]). Nothing is written before every
//! write in the request has been validated:
//!
//! 1. alignment (4 for instructions, 8 for literals) and no two writes overlapping;
//! 2. inside kernel text or a trampoline pool;
//! 3. the word in memory equals the word the caller expects to replace.
//!
//! Then, with the text lock held and IRQs masked: for each page touched, one alias mapping, all
//! its writes, one unmapping; finally one maintenance pass over the union of the instruction
//! lines written and one ISB. Literal writes are single aligned 64-bit stores (single-copy
//! atomic), read only as data, so they need no instruction-cache maintenance.
//!
//! Physical = virtual for text and pools (identity map), so the alias maps the text address.
//!
//! # Other CPUs: the two protocols
//!
//! The final ISB context-synchronizes only the writing CPU. The Arm ARM (DDI0487, B2.2.5
//! "Concurrent modification and execution of instructions") lets another PE execute a word
//! being changed only if both the old and the new instruction are one of `B`, `BL`, `BRK`,
//! `HVC`, `ISB`, `NOP`, `SMC`, `SVC`, and even then it may execute either until it takes a
//! context-synchronization event itself (Will Deacon's finding). So every write is made under
//! one of two [`Protocol`]s:
//!
//! * [`Protocol::Live`]: the other CPUs keep running. Only CMODX-safe words and 64-bit literals
//!   (one single-copy-atomic aligned store, read as data) are written this way; after each
//!   phase's maintenance the **kick** ([`kick`]) makes every other online CPU take an IPI and
//!   waits until each has: its exception entry is a context-synchronization event (SCTLR_EL1.EIS
//!   is set, see boot/start.s), so from its return on no CPU can run the old instruction.
//! * [`Protocol::StopMachine`]: everything else. Every other CPU is parked in its IPI handler
//!   ([`stop::stop_machine`]) while the writes are made; none may be interrupted between two
//!   words being written ([`PatchError::SiteInUse`] after [`STOP_ATTEMPTS`]); each
//!   executes an ISB before it leaves the park.
//!
//! Either way the change is then *published*: `arch::cache::patchbay_icache_published` tells
//! the stale-I-cache model (tools/icache-plugin) that from here on every CPU must have
//! synchronized. With one CPU online both protocols are the plain write: no IPI, no stop, no
//! mark (one load decides).
//!
//! # Serialization
//!
//! One patcher at a time, from any CPU: the text lock is held from validation to publication, so
//! two CPUs patching at once never interleave, and the per-CPU alias slot and the words a write
//! expects cannot change under it. It is taken with IRQs *unmasked*, so a CPU waiting for it
//! still answers the holder's kick or stop-the-world IPI; only the alias window masks IRQs.

pub use patchbay_pure::batch::{Width, Write};

use patchbay_pure::{
    batch as plan, cache,
    layout::{POKE_SLOT_SIZE, Range},
    pagetable::{self, Attrs},
};

use super::{PatchError, maintenance, text};
use crate::{
    arch,
    ipi::{self, CpuSet, Wait},
    memory, percpu, stop,
};

/// How a change reaches text while other CPUs may run it (module documentation). Word-sized, so
/// the structs that carry it are copied as whole words under strict alignment.
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// CMODX-safe words and literals, written while the other CPUs run, then the kick.
    Live,
    /// Anything else, written while every other CPU is parked.
    StopMachine,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Live => "live",
            Protocol::StopMachine => "stop-machine",
        }
    }
}

/// How often a stopped write is retried while another CPU sits inside a word being written.
pub const STOP_ATTEMPTS: usize = 100;

/// What a poke did, for benchmarks and the console. 32-bit counts: returned with every patch,
/// the whole result stays small enough to be copied inline rather than by a `memcpy` call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PokeStats {
    pub writes: u32,
    /// Alias mappings made (one per page touched).
    pub pages: u32,
    /// Instruction words that got cache maintenance.
    pub insn_writes: u32,
    /// Kicks sent (one per phase with instruction writes, when other CPUs are online).
    pub kicks: u32,
}

/// The text lock (module documentation, "Serialization"): never taken with IRQs masked.
static TEXT: spin::Mutex<()> = spin::Mutex::new(());

/// IRQs masked for the guard's lifetime.
struct IrqsOff(u64);
impl IrqsOff {
    fn new() -> Self {
        IrqsOff(arch::cpu::mask_all())
    }
}
impl Drop for IrqsOff {
    fn drop(&mut self) {
        arch::cpu::restore_daif(self.0);
    }
}

/// Read what is at `addr` now (through the normal, readable mapping).
pub fn read(addr: u64, width: Width) -> u64 {
    // SAFETY: callers only read validated addresses inside text or the pools, which are mapped
    // readable and aligned for `width`.
    unsafe {
        match width {
            Width::Insn => u64::from((addr as *const u32).read_volatile()),
            Width::Literal => (addr as *const u64).read_volatile(),
        }
    }
}

/// Check 1 of one write: aligned for its width.
#[inline(always)]
fn aligned(w: &Write) -> Result<(), PatchError> {
    let align = w.width.bytes();
    // Widths are powers of two: a mask, not the division `is_multiple_of` compiles to when the
    // compiler cannot see that.
    if w.addr & (align - 1) == 0 {
        Ok(())
    } else {
        Err(PatchError::Misaligned {
            addr: w.addr,
            align,
        })
    }
}

/// Check 2 of one write: inside one of `regions`.
fn in_region(w: &Write, regions: &[Range]) -> Result<(), PatchError> {
    let end = w.addr + w.width.bytes();
    if regions.iter().any(|r| r.start <= w.addr && end <= r.end) {
        Ok(())
    } else {
        Err(PatchError::NotPatchable { addr: w.addr })
    }
}

/// Check 3 of one write (aligned, in a region): memory holds the expected old word.
#[inline(always)]
fn expected(w: &Write) -> Result<(), PatchError> {
    let found = read(w.addr, w.width);
    if found != w.expected {
        return Err(PatchError::Mismatch {
            addr: w.addr,
            expected: w.expected,
            found,
            width: w.width.bytes() as u8,
        });
    }
    Ok(())
}

/// Validate one ordered phase, each write's checks in order 1, 2, 3. The region check is
/// hoisted: when the first and the last write lie in one region, every write between them does
/// (`plan::common_region`), so each write is then only checked for alignment and its old word.
/// (A single write keeps its own region check: hoisting would only add work.)
fn validate_phase(writes: &[Write], regions: &[Range]) -> Result<(), PatchError> {
    let hoisted = writes.len() > 1 && plan::common_region(writes, regions).is_some();
    writes.iter().try_for_each(|w| {
        aligned(w)?;
        if !hoisted {
            in_region(w, regions)?;
        }
        expected(w)
    })
}

/// Map the page holding `page` at this CPU's poke slot, read-write and execute-never.
fn map_alias(slot: *mut u64, page: u64) {
    // SAFETY: `slot` is this CPU's level-3 descriptor in the poke window, used only under the
    // text lock with IRQs masked; it is invalid here (every map is paired with `unmap_alias`).
    unsafe { slot.write_volatile(pagetable::page_desc(page, Attrs::DATA)) };
    // An invalid entry is never in a TLB: make the store visible to the walker, no TLBI needed.
    arch::mmu::publish_new_entry();
}

fn unmap_alias(slot: *mut u64, va: u64) {
    // SAFETY: as in `map_alias`.
    unsafe { slot.write_volatile(0) };
    // Break the mapping everywhere before the slot can point at another page.
    arch::mmu::flush_page(va);
}

/// Write one phase (validated) through the alias, page by page, then publish its instruction
/// lines with one maintenance pass.
#[inline(always)]
fn write_phase(writes: &[Write], stats: &mut PokeStats) {
    let (va, slot) = memory::poke_slot(percpu::this().id as usize);
    stats.writes += writes.len() as u32;
    let mut i = 0;
    while i < writes.len() {
        let page = writes[i].addr & !(POKE_SLOT_SIZE - 1);
        map_alias(slot, page);
        stats.pages += 1;
        while i < writes.len() && writes[i].addr & !(POKE_SLOT_SIZE - 1) == page {
            let w = &writes[i];
            let alias = va + (w.addr - page);
            // Test-only (`smp-teeth`): a stop-the-world change written live, word by word in
            // halves.
            #[cfg(feature = "smp-teeth")]
            let torn = w.width == Width::Insn && teeth::tear(w.addr, alias, w.new as u32);
            #[cfg(not(feature = "smp-teeth"))]
            let torn = false;
            // SAFETY: `alias` is inside the page just mapped RW at `va`, aligned for the width
            // (validated); the store is a single aligned access, so concurrent readers of the
            // text see the old or the new value, never a mix.
            unsafe {
                match w.width {
                    Width::Insn => {
                        if !torn {
                            (alias as *mut u32).write_volatile(w.new as u32);
                        }
                        stats.insn_writes += 1;
                    }
                    Width::Literal => (alias as *mut u64).write_volatile(w.new),
                }
            }
            #[cfg(feature = "smp-teeth")]
            teeth::between_words();
            i += 1;
        }
        unmap_alias(slot, va);
    }
    // Validated: sorted by address and 4-aligned, as `cache::Words` needs.
    let insns = writes
        .iter()
        .filter(|w| w.width == Width::Insn)
        .map(|w| w.addr);
    maintenance::sync_icache(cache::Words(insns));
}

/// The kick: every other online CPU takes an IPI, and this returns once each has run it. The
/// IPI's exception entry is the context-synchronization event the Arm ARM requires of every PE
/// that executes modified instructions (B2.2.5; Linux arm64 does the same after patching text
/// without stop_machine). Skipped with one load when this is the only CPU online. Returns
/// whether it was sent.
///
/// A CPU that does not answer within `ipi::TIMEOUT_MS` may still run the old instructions
/// while the change is recorded as made: that is a broken machine, and a panic naming it.
pub fn kick() -> bool {
    if percpu::online() == 1 {
        return false;
    }
    // Test-only (`icache-teeth`, `icache.break=kick`): the stale-I-cache model must catch this.
    #[cfg(feature = "icache-teeth")]
    let send = !arch::cache::teeth::skip_kick();
    #[cfg(not(feature = "icache-teeth"))]
    let send = true;
    if send && let Err(e) = ipi::call(CpuSet::others(), |_| {}, 0, Wait::Done) {
        panic!("patched text is written but another CPU was not synchronized: {e}");
    }
    arch::cache::patchbay_icache_published();
    send
}

/// Write one validated phase with IRQs masked (the alias slot is this CPU's), publish its
/// instruction lines to this CPU, then kick the other CPUs online. Whether it kicked.
fn write_live(p: &[Write], stats: &mut PokeStats) -> bool {
    {
        let _irqs = IrqsOff::new();
        write_phase(p, stats);
    }
    if p.iter().any(|w| w.width == Width::Insn) && kick() {
        stats.kicks += 1;
        if crate::mttcg::active() {
            rewrite_for_emulator(p);
        }
        return true;
    }
    false
}

/// Write a live phase's words a second time, after its kick: a workaround for QEMU's
/// multi-threaded TCG ([`crate::mttcg`]), not an architectural step.
///
/// QEMU's multi-threaded TCG invalidates the translations overlapping a store to a page that
/// holds code *before* the store lands, and a page holding no translation is not watched at
/// all. A vCPU that translates the function in that window reads the old word and links a
/// translation that no later guest operation drops (`IC IVAU` is a no-op to QEMU, an exception
/// does not flush translations): it would run the old instruction for as long as the page is
/// not written again — seen in the patch storm as an armed BRK that no worker ever hit. The kick
/// has returned, so every other vCPU has taken an exception since the first store, which it
/// does only between translated blocks: every translation begun before that store is linked by
/// now. Storing the same words again invalidates exactly those; any translation made after
/// reads the new words, which memory has held since the first store. A vCPU inside such a block
/// when it is dropped finishes that block with the old word, on a call that began before this
/// patch returned. The words are unchanged by the second store (the text lock is held
/// throughout), so to the guest it is a no-op; its maintenance keeps the sequence exact for the
/// stale-I-cache model.
#[cold]
#[inline(never)]
fn rewrite_for_emulator(p: &[Write]) {
    let _irqs = IrqsOff::new();
    maintenance::unrecorded(|| write_phase(p, &mut PokeStats::default()));
}

/// Write the validated `phases` with every other CPU stopped, none of them interrupted between
/// two words being written: its next instruction could pair an old word with a new one (`nop`
/// executed, then a new `bl` without its `mov`). Retried [`STOP_ATTEMPTS`] times.
/// Out of line: the live path, which every patch takes, stays small.
#[inline(never)]
fn write_stopped(phases: &[&mut [Write]], stats: &mut PokeStats) -> Result<(), PatchError> {
    let me = percpu::this().id;
    // A CPU stopped inside a trampoline may sit between a site's `bl` and the trampoline's load
    // of that site's literal: all phases are written in one stop, so a literal cleared now
    // (restore) would be read as `nop; nop` when it resumes. Found by the grace-period tests.
    let literals = phases
        .iter()
        .flat_map(|p| p.iter())
        .any(|w| w.width == Width::Literal);
    let mut in_use = None;
    for _ in 0..STOP_ATTEMPTS {
        let outcome = stop::stop_machine(|| {
            let busy = percpu::online_cpus().filter(|c| c.id != me).find_map(|c| {
                let pc = c.irq_elr.load(core::sync::atomic::Ordering::Relaxed);
                if literals && interrupted_in_trampoline(c) {
                    return Some((c.id, pc));
                }
                // A torn pair: it resumes at a word being written right after another one,
                // which it may have executed in its old form. Resuming *at* a written word
                // alone is safe: the word is fetched anew after the stop's ISB and exception
                // return (both context-synchronizing), as is resuming after a written word that
                // is followed by an unchanged one (the old program's next step, unchanged).
                let written = |a: u64| {
                    phases.iter().flat_map(|p| p.iter()).any(|w| {
                        let len = match w.width {
                            Width::Insn => 4,
                            Width::Literal => 8,
                        };
                        (w.addr..w.addr + len).contains(&a)
                    })
                };
                (written(pc) && written(pc.wrapping_sub(4))).then_some((c.id, pc))
            });
            if busy.is_none() {
                // IRQs are masked by the stop.
                for p in phases.iter().filter(|p| !p.is_empty()) {
                    write_phase(p, stats);
                }
            }
            busy
        })
        .map_err(PatchError::Stop)?;
        match outcome {
            // Every parked CPU executed an ISB before it left: published.
            None => {
                arch::cache::patchbay_icache_published();
                return Ok(());
            }
            Some(site) => in_use = Some(site),
        }
    }
    let (cpu, addr) = in_use.expect("at least one attempt");
    Err(PatchError::SiteInUse { cpu, addr })
}

/// Apply dependent phases all-or-nothing under `protocol`: every write of every phase is
/// validated first (under the text lock), then the phases are written in order, each followed
/// by its own maintenance pass and ISB (and, live, the kick), so phase N+1 is written only once
/// phase N is visible to instruction fetch on every CPU. Phases must write disjoint words (each
/// write's `expected` is checked against memory before anything is written). Each phase is
/// sorted in place by address.
///
/// With other CPUs online the caller must be in normal context with IRQs unmasked (the kick and
/// the stop are IPIs): otherwise [`PatchError::Context`] and nothing is written.
pub fn apply_phases(
    phases: &mut [&mut [Write]],
    protocol: Protocol,
) -> Result<PokeStats, PatchError> {
    for p in phases.iter_mut() {
        plan::order_writes(p).map_err(|addr| PatchError::Overlap { addr })?;
    }
    let regions = text::patchable_regions();
    let others = percpu::online() > 1;
    if others {
        ipi::check_context().map_err(PatchError::Context)?;
    }
    let _text = TEXT.lock();
    // Validate under the lock, so nobody changes the words between the check and the write.
    for p in phases.iter() {
        validate_phase(p, &regions)?;
    }
    let mut stats = PokeStats::default();
    #[cfg(feature = "smp-teeth")]
    let protocol = teeth::protocol(protocol);
    match protocol {
        Protocol::StopMachine if others => write_stopped(phases, &mut stats)?,
        _ if others => write_live_with_others(phases, &mut stats),
        // One CPU online: the plain write, no kick.
        _ => {
            for p in phases.iter().filter(|p| !p.is_empty()) {
                let _irqs = IrqsOff::new();
                write_phase(p, &mut stats);
            }
        }
    }
    Ok(stats)
}

/// The live protocol with other CPUs online: each phase kicked, and a literal changed after a
/// kicked phase only once no other CPU sits inside a trampoline ([`out_of_trampolines`]). Out of
/// line: with one CPU online the plain loop above is all there is.
#[inline(never)]
fn write_live_with_others(phases: &[&mut [Write]], stats: &mut PokeStats) {
    let mut kicked = false;
    for p in phases.iter().filter(|p| !p.is_empty()) {
        if kicked && p.iter().any(|w| w.width == Width::Literal) {
            out_of_trampolines(stats);
        }
        kicked |= write_live(p, stats);
    }
}

/// Was CPU `c` last interrupted (its `irq_elr`) at an instruction of trampoline code — between
/// a site's `bl` and its trampoline's load of the site's literal, perhaps?
fn interrupted_in_trampoline(c: &percpu::PerCpu) -> bool {
    let pc = c.irq_elr.load(core::sync::atomic::Ordering::Relaxed);
    // `in_trampoline` takes a return address (it looks at the instruction before it).
    crate::unwind::in_trampoline(pc.wrapping_add(4))
}

/// How many kicks [`out_of_trampolines`] sends before it calls the machine broken.
const TRAMPOLINE_KICKS: u32 = 10_000;

/// Before a live phase changes a literal after an earlier phase's kick: kick again until no
/// other CPU was interrupted inside a trampoline.
///
/// The kick stops every CPU from running the old `bl` afterwards, but a CPU that ran it just
/// before may sit between it and the trampoline's load of the site's literal — interrupted by
/// the kick itself, which returns it there. Changing the literal under it (a restore puts back
/// `nop; nop`, no ops pointer) would send it to a garbage address: found by the patch storm
/// (`FAR_EL1 0xd503201fd503201f` in the ops caller). Each CPU's last interrupted PC
/// (`PerCpu::irq_elr`) tells: once none lies in trampoline code, every CPU that entered one
/// through the old `bl` has loaded the literal or left, and no CPU can enter through it again.
/// Linux avoids the case by never making the literal invalid (it points at `ftrace_nop_ops` at
/// rest); here a site at rest is byte-identical to boot.
#[inline(never)]
fn out_of_trampolines(stats: &mut PokeStats) {
    let me = percpu::this().id;
    for _ in 0..TRAMPOLINE_KICKS {
        let inside = percpu::online_cpus()
            .filter(|c| c.id != me)
            .any(interrupted_in_trampoline);
        if !inside {
            return;
        }
        if kick() {
            stats.kicks += 1;
        }
    }
    panic!("a CPU stayed inside a trampoline across {TRAMPOLINE_KICKS} kicks");
}

/// Apply `writes` all-or-nothing: validate every one, then write them through the alias, publish
/// the instruction lines and kick the other CPUs — live when every word is CMODX-safe, else under
/// stop-the-world (e.g. a BRK probe over the entry's `mov x9, x30` or a `bti c`). `writes` is
/// sorted in place by address.
pub fn apply(writes: &mut [Write]) -> Result<PokeStats, PatchError> {
    let live_safe = writes.iter().all(Write::cmodx_safe);
    apply_phases(&mut [writes], least_protocol(live_safe, Protocol::Live))
}

/// The one decider of how writes reach text: live only when every write is CMODX-safe
/// (`Write::cmodx_safe`: literals, and instruction words whose old and new word are both in the
/// CMODX set, DDI0487 B2.2.5) and the caller did not ask for more, else stop-the-world. Callers
/// establish `live_safe` with that rule: [`apply`] over its writes, `patch::batch` as it plans
/// them.
pub fn least_protocol(live_safe: bool, asked: Protocol) -> Protocol {
    if live_safe && asked == Protocol::Live {
        Protocol::Live
    } else {
        Protocol::StopMachine
    }
}

/// Write a freshly generated block of code into trampoline-pool memory the caller owns (from
/// `trace::pool`), then publish it to instruction fetch. Pool blocks hold no instruction anyone
/// expects (free memory is filled with a trap pattern), so instead of an old-word check the
/// block must lie entirely inside a pool, never in kernel text.
pub fn write_pool_block(addr: u64, words: &[u32]) -> Result<PokeStats, PatchError> {
    pool_write(addr, words, true)
}

/// Refill a freed pool block with `words` (the trap pattern): as [`write_pool_block`], without
/// the kick. Its grace period has passed, so no CPU runs it or will branch to it; the pattern
/// only makes a use after free fault, and whichever CPU sees the old code instead is already
/// running freed memory. The block's next owner writes its code with [`write_pool_block`], whose
/// kick synchronizes every CPU before any branch to it is written. Saves a kick (an IPI round
/// trip to every CPU) per freed trampoline.
pub fn fill_freed_block(addr: u64, words: &[u32]) -> Result<PokeStats, PatchError> {
    pool_write(addr, words, false)
}

fn pool_write(addr: u64, words: &[u32], kick_others: bool) -> Result<PokeStats, PatchError> {
    if !addr.is_multiple_of(4) {
        return Err(PatchError::Misaligned { addr, align: 4 });
    }
    let end = addr + 4 * words.len() as u64;
    let plan = memory::plan();
    if ![plan.near_pool, plan.far_pool]
        .iter()
        .any(|p| p.start <= addr && end <= p.end)
    {
        return Err(PatchError::NotPatchable { addr });
    }
    if percpu::online() > 1 {
        ipi::check_context().map_err(PatchError::Context)?;
    }
    let _text = TEXT.lock();
    let irqs = IrqsOff::new();
    let (va, slot) = memory::poke_slot(percpu::this().id as usize);
    let mut stats = PokeStats::default();
    let mut at = addr;
    while at < end {
        let page = at & !(POKE_SLOT_SIZE - 1);
        let page_end = (page + POKE_SLOT_SIZE).min(end);
        map_alias(slot, page);
        stats.pages += 1;
        while at < page_end {
            let w = words[((at - addr) / 4) as usize];
            // SAFETY: `at` is inside the page mapped RW at `va` (page-aligned loop bounds), and
            // 4-aligned.
            unsafe { ((va + (at - page)) as *mut u32).write_volatile(w) };
            at += 4;
        }
        unmap_alias(slot, va);
    }
    stats.writes = words.len() as u32;
    stats.insn_writes = words.len() as u32;
    maintenance::sync_icache(core::iter::once((addr, end)));
    drop(irqs);
    // A reused block may still be in another CPU's pipeline: it synchronizes too (as Linux's
    // flush_icache_range kicks every CPU).
    if kick_others && kick() {
        stats.kicks += 1;
    }
    Ok(stats)
}

/// Replace the instruction at `addr`, which must currently be `expected`, with `new` (both
/// CMODX-safe: [`Protocol::Live`]).
pub fn poke(addr: u64, expected: u32, new: u32) -> Result<(), PatchError> {
    apply(&mut [Write::insn(addr, expected, new)]).map(|_| ())
}

/// Replace the 64-bit literal at `addr` (8-aligned), which must currently be `expected`.
pub fn poke_literal(addr: u64, expected: u64, new: u64) -> Result<(), PatchError> {
    apply(&mut [Write::literal(addr, expected, new)]).map(|_| ())
}

/// Test-only breakage of the protocols (cargo feature `smp-teeth`, boot argument `smp.break=`),
/// for the tests that prove a broken protocol is caught:
///
/// | value | effect |
/// |---|---|
/// | `stop-machine` | changes that need stop-the-world are written live, with a pause of [`teeth::PAUSE_US`] µs after each word, and each instruction word is stored as two halves with the same pause between them |
///
/// The halves model what the architecture allows for a concurrent change outside the CMODX set
/// (DDI0487 B2.2.5: another PE may execute an instruction that is neither the old nor the new
/// one), which QEMU, storing whole words, never shows: a CPU running the word in the pause
/// executes a mix of the two (for `mov x9, x30` <-> `brk`: an `orr` into x0, or an unallocated
/// encoding). Once a word has been torn, crash reports name that cause (`teeth::describe`,
/// registered with `exit::set_report_note`).
#[cfg(feature = "smp-teeth")]
pub mod teeth {
    use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    use super::Protocol;
    use crate::arch;

    /// The pause after each word, and between the halves of one, of a change written live that
    /// needed stop-the-world.
    pub const PAUSE_US: u64 = 2000;

    fn skip_stop() -> bool {
        crate::boot_info::get().bootarg("smp.break") == Some("stop-machine")
    }

    /// Set while a stop-the-world change is being written live (under the text lock).
    static TORN: AtomicBool = AtomicBool::new(false);
    /// Words written in halves so far, times two, plus one while one is half-written.
    static TEARS: AtomicU64 = AtomicU64::new(0);
    /// The word written in halves last (or now), and when that ended (counter ticks).
    static TORN_AT: AtomicU64 = AtomicU64::new(0);
    static TORN_END: AtomicU64 = AtomicU64::new(0);
    /// How long after a tear a crash report still mentions it.
    const RECENT_MS: u64 = 200;

    /// The protocol actually used for a change that asked for `p`.
    pub(super) fn protocol(p: Protocol) -> Protocol {
        let torn = p == Protocol::StopMachine && skip_stop();
        TORN.store(torn, Ordering::Relaxed);
        if torn { Protocol::Live } else { p }
    }

    fn pause() {
        let start = arch::pmu::cntvct();
        let ticks = arch::pmu::counter_frequency() * PAUSE_US / 1_000_000;
        while arch::pmu::cntvct().wrapping_sub(start) < ticks {
            core::hint::spin_loop();
        }
    }

    /// After each word: pause while a stop-the-world change is written live.
    pub(super) fn between_words() {
        if TORN.load(Ordering::Relaxed) {
            pause();
        }
    }

    /// While a stop-the-world change is written live, store the instruction `new` for `addr`
    /// through `alias` as two halves (low, then high) with a pause between; returns whether it
    /// did (else the caller stores the word).
    pub(super) fn tear(addr: u64, alias: u64, new: u32) -> bool {
        if !TORN.load(Ordering::Relaxed) {
            return false;
        }
        TORN_AT.store(addr, Ordering::Relaxed);
        if TEARS.fetch_add(1, Ordering::Release) == 0 {
            // The first tear: from now on crash reports may name it.
            crate::exit::set_report_note(describe);
        }
        // SAFETY: `alias` is the caller's RW alias of `addr`, 4-aligned, so both halves are
        // aligned halfword stores inside the mapped page.
        unsafe { (alias as *mut u16).write_volatile(new as u16) };
        pause();
        // SAFETY: as above.
        unsafe { ((alias + 2) as *mut u16).write_volatile((new >> 16) as u16) };
        TORN_END.store(arch::pmu::cntvct(), Ordering::Relaxed);
        TEARS.fetch_add(1, Ordering::Release);
        true
    }

    /// For a crash report (exception or panic) in a build with the switch: when a word is being
    /// written in halves now, or was less than [`RECENT_MS`] ago, a `cause` line naming it —
    /// definite when `pc` is that word, else the likely cause (a CPU that ran the mix goes on
    /// with a wrong register or a wrong path before it fails).
    fn describe(w: &mut dyn core::fmt::Write, pc: Option<u64>) -> core::fmt::Result {
        let tears = TEARS.load(Ordering::Acquire);
        if tears == 0 {
            return Ok(());
        }
        let at = TORN_AT.load(Ordering::Relaxed);
        let now = arch::pmu::cntvct();
        let ago_ms = now.wrapping_sub(TORN_END.load(Ordering::Relaxed)) * 1000
            / arch::pmu::counter_frequency();
        let in_progress = tears % 2 == 1;
        if !in_progress && ago_ms >= RECENT_MS {
            return Ok(());
        }
        let how = if pc == Some(at) {
            "executed"
        } else {
            "probably ran"
        };
        write!(
            w,
            "  cause    : {how} a half-written instruction: the word at {at:#x} "
        )?;
        if in_progress {
            write!(w, "is being written")?;
        } else {
            write!(w, "was written {ago_ms} ms ago")?;
        }
        writeln!(
            w,
            " in two halves, live, by a change that needs stop-the-world (test-only smp.break=stop-machine), so a CPU could run a mix of the old and the new instruction"
        )
    }
}
