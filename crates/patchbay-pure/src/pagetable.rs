//! Stage-1 translation tables: 4 KiB granule, 39-bit virtual addresses (TCR_EL1.T0SZ = 25), so a
//! walk starts at level 1 (1 GiB per entry), then level 2 (2 MiB) and level 3 (4 KiB pages).
//!
//! This module only computes and stores descriptors; it never touches system registers. The arch
//! glue (`src/arch/aarch64/mmu.rs`) installs the root in TTBR0_EL1 and does the barriers and TLB
//! maintenance that changing a *live* table needs. Tables are addressed by pointer, and a table
//! descriptor stores that pointer as the next-level address, so the code works unchanged on the
//! host (tests) and in the identity-mapped kernel (where the pointer *is* the physical address).
//!
//! Memory types are indices into MAIR_EL1 ([`MAIR`]). Every mapping is UXN (nothing runs at EL0);
//! PXN unless executable; AP[2] (read-only) unless writable. With SCTLR_EL1.WXN set as well, a
//! writable mapping can never be executed even if a descriptor were wrong.

use core::ptr::NonNull;

pub const PAGE_SIZE: u64 = 4096;
pub const L2_BLOCK: u64 = 2 << 20;
pub const L1_BLOCK: u64 = 1 << 30;
pub const ENTRIES: usize = 512;
/// Virtual address bits translated by TTBR0_EL1.
pub const VA_BITS: u32 = 39;
/// TCR_EL1.T0SZ for [`VA_BITS`].
pub const T0SZ: u64 = 64 - VA_BITS as u64;

/// MAIR_EL1: attribute 0 = Device-nGnRE, 1 = Normal write-back read/write-allocate (inner and
/// outer), 2 = Normal non-cacheable.
pub const MAIR: u64 = 0x04 | (0xff << 8) | (0x44 << 16);

const VALID: u64 = 1 << 0;
/// Bit 1: table descriptor at levels 1-2, page descriptor at level 3 (0 = block at levels 1-2).
const TABLE_OR_PAGE: u64 = 1 << 1;
const ATTR_SHIFT: u64 = 2;
const AP_RO: u64 = 1 << 7;
const SH_INNER: u64 = 3 << 8;
const AF: u64 = 1 << 10;
/// GP, bit 50 of a stage-1 block or page descriptor (FEAT_BTI): instructions fetched from the
/// page are guarded, so an indirect branch into it must land on a compatible `bti` (or
/// `paciasp`). RES0 without FEAT_BTI, so it is safe to set on any CPU.
const GP: u64 = 1 << 50;
const PXN: u64 = 1 << 53;
const UXN: u64 = 1 << 54;
const ADDR_MASK: u64 = 0x0000_ffff_ffff_f000;

/// One translation table.
#[repr(C, align(4096))]
pub struct Table(pub [u64; ENTRIES]);

impl Table {
    pub const fn new() -> Self {
        Table([0; ENTRIES])
    }
}

impl Default for Table {
    fn default() -> Self {
        Self::new()
    }
}

/// Memory type: the MAIR_EL1 index used by a descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemType {
    Device = 0,
    Normal = 1,
    NormalNonCacheable = 2,
}

/// What a mapping allows. Reads are always allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attrs {
    pub mem: MemType,
    pub write: bool,
    pub exec: bool,
    /// Executable and guarded (the [`GP`] bit): the hardened build's text and pools.
    pub guarded: bool,
}

impl Attrs {
    /// Kernel text and trampoline pools: read + execute, never writable.
    pub const TEXT: Attrs = Attrs {
        mem: MemType::Normal,
        write: false,
        exec: true,
        guarded: false,
    };
    /// [`Attrs::TEXT`] with branch-target guarding: indirect branches must land on a landing pad.
    pub const GUARDED_TEXT: Attrs = Attrs {
        guarded: true,
        ..Attrs::TEXT
    };
    pub const RODATA: Attrs = Attrs {
        mem: MemType::Normal,
        write: false,
        exec: false,
        guarded: false,
    };
    pub const DATA: Attrs = Attrs {
        mem: MemType::Normal,
        write: true,
        exec: false,
        guarded: false,
    };
    pub const DEVICE: Attrs = Attrs {
        mem: MemType::Device,
        write: true,
        exec: false,
        guarded: false,
    };

    fn bits(self) -> u64 {
        let mut d = AF | UXN | ((self.mem as u64) << ATTR_SHIFT);
        if self.mem != MemType::Device {
            d |= SH_INNER;
        }
        if !self.write {
            d |= AP_RO;
        }
        if !self.exec {
            d |= PXN;
        }
        if self.guarded {
            d |= GP;
        }
        d
    }

    fn from_bits(d: u64) -> Attrs {
        let mem = match (d >> ATTR_SHIFT) & 7 {
            0 => MemType::Device,
            1 => MemType::Normal,
            _ => MemType::NormalNonCacheable,
        };
        Attrs {
            mem,
            write: d & AP_RO == 0,
            exec: d & PXN == 0,
            guarded: d & GP != 0,
        }
    }
}

/// Level-3 page descriptor for `pa`.
pub fn page_desc(pa: u64, attrs: Attrs) -> u64 {
    (pa & ADDR_MASK) | attrs.bits() | TABLE_OR_PAGE | VALID
}

/// Level-1/2 block descriptor for `pa`.
pub fn block_desc(pa: u64, attrs: Attrs) -> u64 {
    (pa & ADDR_MASK) | attrs.bits() | VALID
}

fn table_desc(next: *mut Table) -> u64 {
    (next as u64 & ADDR_MASK) | TABLE_OR_PAGE | VALID
}

/// Supplies zeroed, 4 KiB-aligned tables.
pub trait TableAlloc {
    fn alloc_table(&mut self) -> Option<NonNull<Table>>;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// `va`, `pa` or `size` is not page aligned.
    Misaligned { va: u64, pa: u64, size: u64 },
    /// `va` is beyond the [`VA_BITS`] address space.
    OutOfRange { va: u64 },
    /// Something different is already mapped at `va`.
    Conflict { va: u64, existing: u64 },
    /// The table allocator ran out.
    NoMemory,
}

impl core::fmt::Display for MapError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            MapError::Misaligned { va, pa, size } => {
                write!(
                    f,
                    "mapping va {va:#x} -> pa {pa:#x} size {size:#x} is not 4 KiB aligned"
                )
            }
            MapError::OutOfRange { va } => {
                write!(f, "va {va:#x} is outside the {VA_BITS}-bit address space")
            }
            MapError::Conflict { va, existing } => {
                write!(f, "va {va:#x} is already mapped (descriptor {existing:#x})")
            }
            MapError::NoMemory => f.write_str("out of translation tables"),
        }
    }
}

fn index(va: u64, level: u32) -> usize {
    ((va >> (12 + 9 * (3 - level))) & 0x1ff) as usize
}

fn level_size(level: u32) -> u64 {
    1 << (12 + 9 * (3 - level))
}

/// A result of [`translate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    pub pa: u64,
    pub attrs: Attrs,
    /// Level of the leaf descriptor (1, 2: block; 3: page).
    pub level: u32,
}

/// Map `[va, va + size)` to `[pa, pa + size)`. Uses 1 GiB / 2 MiB blocks where both addresses
/// are aligned and the whole block is covered, else 4 KiB pages. Mapping exactly what is
/// already there is accepted (idempotent); anything else already there is a [`MapError::Conflict`].
///
/// # Safety
/// `root` and every table reachable from it must be valid, exclusively owned tables, and their
/// addresses usable as pointers (identity mapping, or the host).
pub unsafe fn map(
    root: NonNull<Table>,
    alloc: &mut impl TableAlloc,
    va: u64,
    pa: u64,
    size: u64,
    attrs: Attrs,
) -> Result<(), MapError> {
    if (va | pa | size) & (PAGE_SIZE - 1) != 0 {
        return Err(MapError::Misaligned { va, pa, size });
    }
    let end = va.checked_add(size).ok_or(MapError::OutOfRange { va })?;
    if end > 1 << VA_BITS {
        return Err(MapError::OutOfRange { va });
    }
    let mut off = 0;
    while off < size {
        let (v, p) = (va + off, pa + off);
        // Largest level whose block fits here.
        let level = (1..=3)
            .find(|&l| {
                let s = level_size(l);
                l == 3 || (v % s == 0 && p % s == 0 && size - off >= s && l >= 1)
            })
            .unwrap_or(3);
        // SAFETY: forwarded from this function's contract.
        let slot = unsafe { slot_at(root, alloc, v, level)? };
        let want = if level == 3 {
            page_desc(p, attrs)
        } else {
            block_desc(p, attrs)
        };
        // SAFETY: `slot` points into a valid table (slot_at's guarantee).
        let existing = unsafe { slot.read() };
        if existing & VALID != 0 && existing != want {
            return Err(MapError::Conflict { va: v, existing });
        }
        // SAFETY: as above; we own the tables exclusively.
        unsafe { slot.write(want) };
        off += level_size(level);
    }
    Ok(())
}

/// Pointer to the descriptor slot for `va` at `level`, creating intermediate tables as needed.
///
/// # Safety
/// As for [`map`].
pub unsafe fn slot_at(
    root: NonNull<Table>,
    alloc: &mut impl TableAlloc,
    va: u64,
    level: u32,
) -> Result<*mut u64, MapError> {
    if va >= 1 << VA_BITS {
        return Err(MapError::OutOfRange { va });
    }
    let mut table = root.as_ptr();
    for l in 1..level {
        // SAFETY: `table` is a valid table (the root, or a table descriptor we created/followed).
        let slot = unsafe { &raw mut (*table).0[index(va, l)] };
        // SAFETY: `slot` is inside that table.
        let d = unsafe { slot.read() };
        if d & VALID == 0 {
            let next = alloc.alloc_table().ok_or(MapError::NoMemory)?;
            // SAFETY: `slot` is valid; the new table is zeroed and owned by the tree from now on.
            unsafe { slot.write(table_desc(next.as_ptr())) };
            table = next.as_ptr();
        } else if d & TABLE_OR_PAGE == 0 {
            // A block already covers this address; splitting it is not supported.
            return Err(MapError::Conflict { va, existing: d });
        } else {
            table = (d & ADDR_MASK) as *mut Table;
        }
    }
    // SAFETY: `table` is a valid table at `level`.
    Ok(unsafe { &raw mut (*table).0[index(va, level)] })
}

/// Walk the tables for `va`.
///
/// # Safety
/// `root` and every table reachable from it must be valid.
pub unsafe fn translate(root: NonNull<Table>, va: u64) -> Option<Translation> {
    if va >= 1 << VA_BITS {
        return None;
    }
    let mut table = root.as_ptr();
    for level in 1..=3 {
        // SAFETY: `table` is valid by the contract and by construction of table descriptors.
        let d = unsafe { (*table).0[index(va, level)] };
        if d & VALID == 0 {
            return None;
        }
        if level == 3 || d & TABLE_OR_PAGE == 0 {
            let mask = level_size(level) - 1;
            return Some(Translation {
                pa: (d & ADDR_MASK & !mask) | (va & mask),
                attrs: Attrs::from_bits(d),
                level,
            });
        }
        table = (d & ADDR_MASK) as *mut Table;
    }
    None
}

/// Visit every valid leaf mapping as `(va, size, descriptor attrs)`.
///
/// # Safety
/// As for [`translate`].
pub unsafe fn for_each_leaf(root: NonNull<Table>, mut f: impl FnMut(u64, u64, Attrs)) {
    // SAFETY: forwarded.
    unsafe { walk(root.as_ptr(), 1, 0, &mut f) }
}

/// # Safety
/// `table` is a valid table at `level`.
unsafe fn walk(table: *mut Table, level: u32, base: u64, f: &mut impl FnMut(u64, u64, Attrs)) {
    for i in 0..ENTRIES {
        // SAFETY: `table` is valid (contract).
        let d = unsafe { (*table).0[i] };
        if d & VALID == 0 {
            continue;
        }
        let va = base + i as u64 * level_size(level);
        if level < 3 && d & TABLE_OR_PAGE != 0 {
            // SAFETY: a table descriptor points at a valid next-level table.
            unsafe { walk((d & ADDR_MASK) as *mut Table, level + 1, va, f) };
        } else {
            f(va, level_size(level), Attrs::from_bits(d));
        }
    }
}

/// The first mapping that is both writable and executable, if any (W^X check).
///
/// # Safety
/// As for [`translate`].
pub unsafe fn find_wx_violation(root: NonNull<Table>) -> Option<u64> {
    let mut bad = None;
    // SAFETY: forwarded.
    unsafe {
        for_each_leaf(root, |va, _, a| {
            if a.write && a.exec && bad.is_none() {
                bad = Some(va);
            }
        })
    };
    bad
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::{boxed::Box, vec::Vec};

    #[derive(Default)]
    struct HeapAlloc {
        tables: Vec<NonNull<Table>>,
        limit: Option<usize>,
    }
    impl TableAlloc for HeapAlloc {
        fn alloc_table(&mut self) -> Option<NonNull<Table>> {
            if self.limit.is_some_and(|l| self.tables.len() >= l) {
                return None;
            }
            let t = NonNull::from(Box::leak(Box::new(Table::new())));
            self.tables.push(t);
            Some(t)
        }
    }

    fn root(a: &mut HeapAlloc) -> NonNull<Table> {
        a.alloc_table().unwrap()
    }

    #[test]
    fn table_is_one_page() {
        assert_eq!(core::mem::size_of::<Table>(), 4096);
        assert_eq!(core::mem::align_of::<Table>(), 4096);
    }

    #[test]
    fn pages_and_blocks_translate() {
        let mut a = HeapAlloc::default();
        let r = root(&mut a);
        // SAFETY: tables come from HeapAlloc and are leaked, so they stay valid.
        unsafe {
            map(r, &mut a, 0x4008_0000, 0x4008_0000, 0x3000, Attrs::TEXT).unwrap();
            map(r, &mut a, 0x4020_0000, 0x4020_0000, 4 << 20, Attrs::DATA).unwrap();
            map(r, &mut a, 0x0, 0x0, 1 << 30, Attrs::DEVICE).unwrap();
            let t = translate(r, 0x4008_1234).unwrap();
            assert_eq!((t.pa, t.level, t.attrs), (0x4008_1234, 3, Attrs::TEXT));
            let t = translate(r, 0x4030_0010).unwrap();
            assert_eq!((t.pa, t.level, t.attrs), (0x4030_0010, 2, Attrs::DATA));
            let t = translate(r, 0x0900_0000).unwrap();
            assert_eq!((t.level, t.attrs.mem), (1, MemType::Device));
            assert_eq!(translate(r, 0x4008_3000), None);
            assert_eq!(find_wx_violation(r), None);
        }
    }

    #[test]
    fn alias_maps_other_va_to_same_pa() {
        let mut a = HeapAlloc::default();
        let r = root(&mut a);
        // SAFETY: as above.
        unsafe {
            let slot = slot_at(r, &mut a, 0x40_0000_0000, 3).unwrap();
            slot.write(page_desc(0x4008_1000, Attrs::DATA));
            let t = translate(r, 0x40_0000_0abc).unwrap();
            assert_eq!(t.pa, 0x4008_1abc);
            assert!(t.attrs.write && !t.attrs.exec);
        }
    }

    #[test]
    fn descriptor_bits_are_exact() {
        // Normal, RO, executable page: AF | UXN | attr1 | SH inner | AP_RO | page | valid.
        assert_eq!(page_desc(0x4008_0000, Attrs::TEXT), 0x0040_0000_4008_0787);
        // Guarded text: the same with GP (bit 50), and it reads back as guarded.
        let guarded = page_desc(0x4008_0000, Attrs::GUARDED_TEXT);
        assert_eq!(guarded, 0x0044_0000_4008_0787);
        assert_eq!(Attrs::from_bits(guarded), Attrs::GUARDED_TEXT);
        // Device RW XN block: AF | UXN | PXN | attr0 | valid.
        assert_eq!(block_desc(0x0, Attrs::DEVICE), 0x0060_0000_0000_0401);
    }

    #[test]
    fn errors() {
        let mut a = HeapAlloc::default();
        let r = root(&mut a);
        // SAFETY: as above.
        unsafe {
            assert_eq!(
                map(r, &mut a, 0x1001, 0x1000, 0x1000, Attrs::DATA),
                Err(MapError::Misaligned {
                    va: 0x1001,
                    pa: 0x1000,
                    size: 0x1000
                })
            );
            assert_eq!(
                map(r, &mut a, 1 << 39, 0, 0x1000, Attrs::DATA),
                Err(MapError::OutOfRange { va: 1 << 39 })
            );
            map(r, &mut a, 0x1000, 0x1000, 0x1000, Attrs::DATA).unwrap();
            // Idempotent re-map is fine; a different mapping conflicts.
            map(r, &mut a, 0x1000, 0x1000, 0x1000, Attrs::DATA).unwrap();
            assert!(matches!(
                map(r, &mut a, 0x1000, 0x1000, 0x1000, Attrs::TEXT),
                Err(MapError::Conflict { va: 0x1000, .. })
            ));
            // A page inside an existing 2 MiB block cannot be mapped (no splitting).
            map(r, &mut a, 0x20_0000, 0x20_0000, 0x20_0000, Attrs::DATA).unwrap();
            assert!(matches!(
                map(r, &mut a, 0x20_1000, 0x9000_0000, 0x1000, Attrs::DATA),
                Err(MapError::Conflict { .. })
            ));
        }
        let mut small = HeapAlloc {
            limit: Some(1),
            ..Default::default()
        };
        let r = root(&mut small);
        // SAFETY: as above.
        unsafe {
            assert_eq!(
                map(r, &mut small, 0x1000, 0x1000, 0x1000, Attrs::DATA),
                Err(MapError::NoMemory)
            );
        }
    }

    #[test]
    fn wx_violation_is_found() {
        let mut a = HeapAlloc::default();
        let r = root(&mut a);
        let wx = Attrs {
            mem: MemType::Normal,
            write: true,
            exec: true,
            guarded: false,
        };
        // SAFETY: as above.
        unsafe {
            map(r, &mut a, 0x5000, 0x5000, 0x1000, wx).unwrap();
            assert_eq!(find_wx_violation(r), Some(0x5000));
        }
    }
}
