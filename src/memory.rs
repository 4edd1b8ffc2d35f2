//! The kernel's memory: linker-script symbols, the physical plan (heap, trampoline pools), the
//! translation tables that enforce W^X, and the heap allocator.
//!
//! | region | mapping |
//! |---|---|
//! | text | R-X (Normal WB) |
//! | rodata (incl. site tables, symbol table) | R-- |
//! | data, bss, stacks, heap, other RAM | RW- (execute-never) |
//! | stack guard pages | unmapped |
//! | near / far trampoline pools | R-X; written only through the poke window |
//! | MMIO | Device-nGnRE, RW- |
//! | poke window (VA 0x40_0000_0000) | one RW- slot per CPU, mapped only while poking |
//!
//! SCTLR_EL1.WXN is also set, so a writable page can never be executed.

use core::{cell::UnsafeCell, ptr::NonNull};

use linked_list_allocator::LockedHeap;
use patchbay_pure::{
    layout::{self, Range},
    pagetable::{self, Attrs, Table, TableAlloc},
};

use crate::{arch, boot_info, bsp, percpu::MAX_CPUS};

pub const HEAP_SIZE: u64 = 32 << 20;
pub const NEAR_POOL_SIZE: u64 = 2 << 20;
pub const FAR_POOL_SIZE: u64 = 2 << 20;

/// What unused trampoline-pool memory holds: `brk #0xdead`, so a jump into a free or freed
/// trampoline traps with a recognisable report instead of running stale code.
pub const POOL_FILL: u32 = patchbay_pure::insn::brk(0xdead);

unsafe extern "C" {
    static __image_start: u8;
    static __image_end: u8;
    static __text_start: u8;
    static __text_end: u8;
    static __rodata_start: u8;
    static __rodata_end: u8;
    static __data_start: u8;
    static __data_end: u8;
    static __stacks_start: u8;
    static __stacks_end: u8;
    static __cpu_stack_block: u8;
    static __kstack_size: u8;
    static __estack_size: u8;
}

macro_rules! sym {
    ($s:ident) => {
        // Only the address of the linker symbol is taken, never its contents.
        (&raw const $s) as u64
    };
}

/// The kernel image's sections, from the linker script.
#[derive(Clone, Copy, Debug)]
pub struct Image {
    pub image: Range,
    pub text: Range,
    pub rodata: Range,
    pub data: Range,
    pub stacks: Range,
}

pub fn image() -> Image {
    Image {
        image: Range::new(sym!(__image_start), sym!(__image_end)),
        text: Range::new(sym!(__text_start), sym!(__text_end)),
        rodata: Range::new(sym!(__rodata_start), sym!(__rodata_end)),
        data: Range::new(sym!(__data_start), sym!(__data_end)),
        stacks: Range::new(sym!(__stacks_start), sym!(__stacks_end)),
    }
}

/// The two stacks of CPU `cpu`: (kernel stack, exception stack), each with an unmapped guard
/// page right below it.
pub fn cpu_stacks(cpu: usize) -> (Range, Range) {
    let block = sym!(__cpu_stack_block);
    let (k, e) = (sym!(__kstack_size), sym!(__estack_size));
    let base = sym!(__stacks_start) + cpu as u64 * block;
    let kstack = Range::new(base + 4096, base + 4096 + k);
    let estack = Range::new(kstack.end + 4096, kstack.end + 4096 + e);
    (kstack, estack)
}

/// Is `a` inside a stack guard page?
pub fn in_stack_guard(a: u64) -> Option<usize> {
    (0..MAX_CPUS).find(|&c| {
        let (k, e) = cpu_stacks(c);
        Range::new(k.start - 4096, k.start).contains(a)
            || Range::new(e.start - 4096, e.start).contains(a)
    })
}

/// Where the heap and pools went.
static PLAN: Once<layout::Plan> = Once::new();

pub fn plan() -> layout::Plan {
    *PLAN.get().expect("memory plan not initialised")
}

/// A value written once during single-threaded boot, read-only afterwards.
pub struct Once<T>(UnsafeCell<Option<T>>);
// SAFETY: `set` is only called during single-CPU boot before any concurrent reader exists.
unsafe impl<T: Sync> Sync for Once<T> {}
impl<T> Once<T> {
    pub const fn new() -> Self {
        Once(UnsafeCell::new(None))
    }
    /// # Safety
    /// Single-threaded boot only, before any `get`.
    pub unsafe fn set(&self, v: T) {
        // SAFETY: the caller guarantees there is no concurrent access.
        unsafe { *self.0.get() = Some(v) };
    }
    pub fn get(&self) -> Option<&T> {
        // SAFETY: no writer exists after boot (see `set`).
        unsafe { (*self.0.get()).as_ref() }
    }
}

impl<T> Default for Once<T> {
    fn default() -> Self {
        Self::new()
    }
}

// ---------------------------------------------------------------------------------------------
// Translation tables

const MAX_TABLES: usize = 32;

struct Tables {
    pool: UnsafeCell<[Table; MAX_TABLES]>,
    used: UnsafeCell<usize>,
}
// SAFETY: tables are allocated only during single-CPU boot and by the poke path under its lock.
unsafe impl Sync for Tables {}

static TABLES: Tables = Tables {
    pool: UnsafeCell::new([const { Table::new() }; MAX_TABLES]),
    used: UnsafeCell::new(0),
};

struct BootAlloc;
impl TableAlloc for BootAlloc {
    fn alloc_table(&mut self) -> Option<NonNull<Table>> {
        // SAFETY: see `Tables`: callers are serialised.
        unsafe {
            let used = &mut *TABLES.used.get();
            if *used == MAX_TABLES {
                return None;
            }
            let t = (TABLES.pool.get() as *mut Table).add(*used);
            *used += 1;
            NonNull::new(t)
        }
    }
}

/// The root (level-1) table.
pub fn root() -> NonNull<Table> {
    // SAFETY: table 0 is the root, allocated first in `init`; only its address is taken.
    unsafe { NonNull::new_unchecked(TABLES.pool.get() as *mut Table) }
}

/// Tables in use (for the banner).
pub fn tables_used() -> usize {
    // SAFETY: read of a counter only changed during boot / under the poke lock.
    unsafe { *TABLES.used.get() }
}

/// A descriptor slot for one 4 KiB page of the poke window, created at boot.
pub fn poke_slot(cpu: usize) -> (u64, *mut u64) {
    let va = layout::POKE_WINDOW_VA + cpu as u64 * layout::POKE_SLOT_SIZE;
    // SAFETY: the slot's level-3 table was created by `init`, so no allocation happens here and
    // the tables are valid.
    let slot = unsafe { pagetable::slot_at(root(), &mut NoAlloc, va, 3) }
        .expect("poke window tables exist after boot");
    (va, slot)
}

struct NoAlloc;
impl TableAlloc for NoAlloc {
    fn alloc_table(&mut self) -> Option<NonNull<Table>> {
        None
    }
}

fn map(va: u64, size: u64, attrs: Attrs) {
    if size == 0 {
        return;
    }
    // SAFETY: boot-time, single CPU; the tables come from `TABLES`.
    if let Err(e) = unsafe { pagetable::map(root(), &mut BootAlloc, va, va, size, attrs) } {
        panic!("cannot map [{va:#x}, {:#x}): {e}", va + size);
    }
}

/// The page at address 0, never mapped, whatever lies there (RAM on the Raspberry Pis, flash on
/// QEMU virt): a null-pointer access always faults with a report that says so.
pub const NULL_PAGE: Range = Range::new(0, 0x1000);

/// Map `region` with `attrs` except the ranges in `holes` (disjoint; parts outside `region` are
/// ignored).
fn map_around(region: Range, holes: &mut [Range], attrs: Attrs) {
    holes.sort_unstable_by_key(|r| r.start);
    let mut at = region.start;
    for h in holes
        .iter()
        .filter(|h| h.end > region.start && h.start < region.end)
    {
        if h.start > at {
            map(at, h.start - at, attrs);
        }
        at = at.max(h.end);
    }
    if at < region.end {
        map(at, region.end - at, attrs);
    }
}

/// Plan memory, build the tables and turn on the MMU and caches.
///
/// # Safety
/// Boot CPU, once, with the MMU off, after [`boot_info::record`].
pub unsafe fn init() {
    let info = boot_info::get();
    let img = image();
    let plan = layout::plan(&layout::Inputs {
        ram: info.ram,
        image: img.image,
        text: img.text,
        dtb: info.dtb,
        heap_size: HEAP_SIZE,
        near_pool_size: NEAR_POOL_SIZE,
        far_pool_size: FAR_POOL_SIZE,
    })
    .unwrap_or_else(|e| panic!("memory layout: {e}"));
    // SAFETY: single-threaded boot.
    unsafe { PLAN.set(plan) };

    // Fill both pools with the trap pattern now, while the MMU is off and the memory is plain
    // RAM (afterwards it is R-X and only the poke path writes it). Nothing has executed from it,
    // and the I-cache is invalidated when the MMU comes on, so no stale instruction can exist.
    for pool in [plan.near_pool, plan.far_pool] {
        let words = pool.len() as usize / 4;
        // SAFETY: the pool is RAM reserved by the plan for this purpose, aligned, unused so far.
        let p = unsafe { core::slice::from_raw_parts_mut(pool.start as *mut u32, words) };
        p.fill(POOL_FILL);
    }

    // The root first: `root()` is table 0.
    let _ = BootAlloc.alloc_table();

    // Guarded (BTI) in the hardened build: every indirect branch must land on a landing pad.
    let text = arch::harden::text_attrs();
    map(img.text.start, img.text.len(), text);
    map(img.rodata.start, img.rodata.len(), Attrs::RODATA);
    map(img.data.start, img.data.len(), Attrs::DATA);
    for cpu in 0..MAX_CPUS {
        let (k, e) = cpu_stacks(cpu);
        map(k.start, k.len(), Attrs::DATA);
        map(e.start, e.len(), Attrs::DATA);
    }
    map(plan.near_pool.start, plan.near_pool.len(), text);
    map(plan.far_pool.start, plan.far_pool.len(), text);
    // Everything else in RAM (heap, DTB, free memory) is plain data; devices are device memory.
    // The null page stays unmapped in both.
    let holes = [NULL_PAGE, img.image, plan.near_pool, plan.far_pool];
    map_around(info.ram, &mut holes.clone(), Attrs::DATA);
    for m in bsp::MMIO {
        map_around(*m, &mut [NULL_PAGE], Attrs::DEVICE);
    }
    // Create (empty) level-3 tables for the poke window now, so poking never allocates.
    for cpu in 0..MAX_CPUS {
        let va = layout::POKE_WINDOW_VA + cpu as u64 * layout::POKE_SLOT_SIZE;
        // SAFETY: boot-time, single CPU.
        unsafe { pagetable::slot_at(root(), &mut BootAlloc, va, 3) }
            .unwrap_or_else(|e| panic!("poke window: {e}"));
    }

    // SAFETY: the tables are complete and valid.
    if let Some(va) = unsafe { pagetable::find_wx_violation(root()) } {
        panic!("W^X violated by the boot tables at {va:#x}");
    }

    let tables = TABLES.pool.get() as u64;
    // SAFETY: the tables were written with the D-cache off; dropping any stale cached copy of
    // them loses nothing (memory holds the truth).
    unsafe { arch::cache::invalidate_dcache_range(tables, tables + (MAX_TABLES * 4096) as u64) };
    // SAFETY: the tables identity-map all kernel code, data and stacks.
    unsafe { arch::mmu::enable(root().as_ptr() as u64) };
}

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// Hand the planned heap region to the allocator.
///
/// # Safety
/// Once, after [`init`].
pub unsafe fn init_heap() {
    let h = plan().heap;
    // SAFETY: the heap region is mapped RW, unused by anything else (the layout plan), and
    // handed over exactly once.
    unsafe { HEAP.lock().init(h.start as *mut u8, h.len() as usize) };
}

/// Bytes in use / free on the heap.
pub fn heap_usage() -> (usize, usize) {
    let h = HEAP.lock();
    (h.used(), h.free())
}

/// Which region an address belongs to, for crash reports.
pub fn describe(a: u64) -> &'static str {
    let img = image();
    if img.text.contains(a) {
        return "kernel text (read-only, executable)";
    }
    if img.rodata.contains(a) {
        return "kernel rodata (read-only)";
    }
    if img.data.contains(a) {
        return "kernel data/bss (read-write)";
    }
    if in_stack_guard(a).is_some() {
        return "a stack guard page (stack overflow?)";
    }
    if img.stacks.contains(a) {
        return "a kernel stack";
    }
    if let Some(p) = PLAN.get() {
        if p.heap.contains(a) {
            return "the heap";
        }
        if p.near_pool.contains(a) {
            return "the near trampoline pool (read-only, executable)";
        }
        if p.far_pool.contains(a) {
            return "the far trampoline pool (read-only, executable)";
        }
    }
    let poke = Range::new(layout::POKE_WINDOW_VA, layout::POKE_WINDOW_VA + 0x20_0000);
    if poke.contains(a) {
        return "the poke window";
    }
    if boot_info::get().dtb.contains(a) {
        return "the DTB";
    }
    if NULL_PAGE.contains(a) {
        return "the null page (null pointer?)";
    }
    if boot_info::get().ram.contains(a) {
        return "RAM";
    }
    if bsp::MMIO.iter().any(|m| m.contains(a)) {
        return "MMIO";
    }
    "unmapped memory"
}
