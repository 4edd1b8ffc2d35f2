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
//! Then, with IRQs masked and the poke lock held: for each page touched, one alias mapping, all
//! its writes, one unmapping; finally one maintenance pass over the union of the instruction
//! lines written and one ISB. Literal writes are single aligned 64-bit stores (single-copy
//! atomic), read only as data, so they need no instruction-cache maintenance.
//!
//! Physical = virtual for text and pools (identity map), so the alias maps the text address.

pub use patchbay_pure::batch::{Width, Write};
use patchbay_pure::{
    batch as plan,
    layout::{POKE_SLOT_SIZE, Range},
    pagetable::{self, Attrs},
};

use super::{PatchError, maintenance, text};
use crate::{arch, memory, percpu};

/// What a poke did, for benchmarks and the console.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PokeStats {
    pub writes: usize,
    /// Alias mappings made (one per page touched).
    pub pages: usize,
    /// Instruction words that got cache maintenance.
    pub insn_writes: usize,
}

static LOCK: spin::Mutex<()> = spin::Mutex::new(());

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
    if w.addr.is_multiple_of(align) {
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
    // SAFETY: `slot` is this CPU's level-3 descriptor in the poke window, used only under LOCK
    // with IRQs masked; it is invalid here (every map is paired with `unmap_alias`).
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
fn write_phase(writes: &[Write], stats: &mut PokeStats) {
    let (va, slot) = memory::poke_slot(percpu::this().id as usize);
    stats.writes += writes.len();
    let mut i = 0;
    while i < writes.len() {
        let page = writes[i].addr & !(POKE_SLOT_SIZE - 1);
        map_alias(slot, page);
        stats.pages += 1;
        while i < writes.len() && writes[i].addr & !(POKE_SLOT_SIZE - 1) == page {
            let w = &writes[i];
            let alias = va + (w.addr - page);
            // SAFETY: `alias` is inside the page just mapped RW at `va`, aligned for the width
            // (validated); the store is a single aligned access, so concurrent readers of the
            // text see the old or the new value, never a mix.
            unsafe {
                match w.width {
                    Width::Insn => {
                        (alias as *mut u32).write_volatile(w.new as u32);
                        stats.insn_writes += 1;
                    }
                    Width::Literal => (alias as *mut u64).write_volatile(w.new),
                }
            }
            i += 1;
        }
        unmap_alias(slot, va);
    }
    let insns = writes
        .iter()
        .filter(|w| w.width == Width::Insn)
        .map(|w| (w.addr, w.addr + 4));
    maintenance::sync_icache(insns);
}

/// Apply dependent phases all-or-nothing: every write of every phase is validated first (under
/// the poke lock, IRQs masked), then the phases are written in order, each followed by its own
/// maintenance pass and ISB, so phase N+1 is written only once phase N is visible to
/// instruction fetch. Phases must write disjoint words (each write's `expected` is checked
/// against memory before anything is written). Each phase is sorted in place by address.
pub fn apply_phases(phases: &mut [&mut [Write]]) -> Result<PokeStats, PatchError> {
    for p in phases.iter_mut() {
        plan::order_writes(p).map_err(|addr| PatchError::Overlap { addr })?;
    }
    let regions = text::patchable_regions();
    let _irqs = IrqsOff::new();
    let _lock = LOCK.lock();
    // Validate under the lock, so nobody changes the words between the check and the write.
    for p in phases.iter() {
        validate_phase(p, &regions)?;
    }
    let mut stats = PokeStats::default();
    for p in phases.iter().filter(|p| !p.is_empty()) {
        write_phase(p, &mut stats);
    }
    Ok(stats)
}

/// Apply `writes` all-or-nothing: validate every one, then write them through the alias and
/// publish the instruction lines. `writes` is sorted in place by address.
pub fn apply(writes: &mut [Write]) -> Result<PokeStats, PatchError> {
    apply_phases(&mut [writes])
}

/// Write a freshly generated block of code into trampoline-pool memory the caller owns (from
/// `trace::pool`), then publish it to instruction fetch. Pool blocks hold no instruction anyone
/// expects (free memory is filled with a trap pattern), so instead of an old-word check the
/// block must lie entirely inside a pool, never in kernel text.
pub fn write_pool_block(addr: u64, words: &[u32]) -> Result<PokeStats, PatchError> {
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
    let _irqs = IrqsOff::new();
    let _lock = LOCK.lock();
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
    stats.writes = words.len();
    stats.insn_writes = words.len();
    maintenance::sync_icache(core::iter::once((addr, end)));
    Ok(stats)
}

/// Replace the instruction at `addr`, which must currently be `expected`, with `new`.
pub fn poke(addr: u64, expected: u32, new: u32) -> Result<(), PatchError> {
    apply(&mut [Write::insn(addr, expected, new)]).map(|_| ())
}

/// Replace the 64-bit literal at `addr` (8-aligned), which must currently be `expected`.
pub fn poke_literal(addr: u64, expected: u64, new: u64) -> Result<(), PatchError> {
    apply(&mut [Write::literal(addr, expected, new)]).map(|_| ())
}
