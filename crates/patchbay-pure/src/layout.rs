//! The physical memory plan: where the heap and the two executable trampoline pools go, and the
//! virtual window used for RW aliases of text ("poke" slots).
//!
//! ```text
//!  RAM base ... [kernel image: text | rodata | data+bss | stacks] [heap] [near pool] ...
//!               |<---------------- all within +-128 MiB of every text byte -------->|
//!  ... [far pool: starts >= 128 MiB past the end of text, so BL cannot reach it] ... RAM end
//!  VA 0x40_0000_0000: poke window, one 4 KiB slot per CPU, never identity mapped
//! ```
//!
//! [`plan`] is pure and checked on the host: every region lies in RAM, none overlaps another or
//! the DTB, the near pool is in BL range of all text and the far pool is out of it.

use crate::insn;

/// Start of the virtual window holding per-CPU RW aliases of text pages. It is far above any
/// RAM or MMIO the boards have, so an alias never collides with the identity map.
pub const POKE_WINDOW_VA: u64 = 0x40_0000_0000;
/// Size of one poke slot.
pub const POKE_SLOT_SIZE: u64 = 4096;

const MIB: u64 = 1 << 20;
const BLOCK: u64 = 2 * MIB;

/// A half-open address range `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Range {
    pub start: u64,
    pub end: u64,
}

impl Range {
    pub const fn new(start: u64, end: u64) -> Self {
        Range { start, end }
    }
    pub const fn len(&self) -> u64 {
        self.end - self.start
    }
    pub const fn is_empty(&self) -> bool {
        self.end <= self.start
    }
    pub const fn contains(&self, a: u64) -> bool {
        self.start <= a && a < self.end
    }
    pub const fn overlaps(&self, o: &Range) -> bool {
        self.start < o.end && o.start < self.end
    }
}

/// What the linker and the DTB tell us.
#[derive(Clone, Copy, Debug)]
pub struct Inputs {
    pub ram: Range,
    /// The whole loaded kernel image, stacks included.
    pub image: Range,
    pub text: Range,
    pub dtb: Range,
    pub heap_size: u64,
    pub near_pool_size: u64,
    pub far_pool_size: u64,
}

/// The resulting plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    pub heap: Range,
    pub near_pool: Range,
    pub far_pool: Range,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// The kernel image or the DTB is not inside RAM.
    OutsideRam {
        what: &'static str,
        range: Range,
        ram: Range,
    },
    /// Not enough RAM for a region.
    NoRoom {
        what: &'static str,
        size: u64,
        ram: Range,
    },
    /// The near pool would not be reachable with BL from all text.
    NearPoolOutOfReach { pool: Range, text: Range },
}

impl core::fmt::Display for LayoutError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LayoutError::OutsideRam { what, range, ram } => write!(
                f,
                "{what} [{:#x}, {:#x}) is not inside RAM [{:#x}, {:#x})",
                range.start, range.end, ram.start, ram.end
            ),
            LayoutError::NoRoom { what, size, ram } => write!(
                f,
                "no room for the {what} ({} MiB) in RAM [{:#x}, {:#x}); give the machine more memory",
                size / MIB,
                ram.start,
                ram.end
            ),
            LayoutError::NearPoolOutOfReach { pool, text } => write!(
                f,
                "near pool [{:#x}, {:#x}) is not within BL range of text [{:#x}, {:#x})",
                pool.start, pool.end, text.start, text.end
            ),
        }
    }
}

const fn align_up(a: u64, to: u64) -> u64 {
    a.div_ceil(to) * to
}

/// Place `size` bytes, 2 MiB aligned, at the lowest address `>= from` that stays in RAM and
/// avoids every range in `avoid`.
fn place(
    what: &'static str,
    from: u64,
    size: u64,
    ram: Range,
    avoid: &[Range],
) -> Result<Range, LayoutError> {
    let mut start = align_up(from, BLOCK);
    loop {
        let r = Range::new(start, start + size);
        if r.end > ram.end {
            return Err(LayoutError::NoRoom { what, size, ram });
        }
        match avoid.iter().find(|a| a.overlaps(&r)) {
            Some(a) => start = align_up(a.end, BLOCK),
            None => return Ok(r),
        }
    }
}

/// Do all BL instructions in `text` reach all of `pool`?
pub fn reachable(text: Range, pool: Range) -> bool {
    let (last_insn, last_byte) = (text.end - 4, pool.end - 4);
    insn::in_branch_range(text.start, last_byte)
        && insn::in_branch_range(last_insn, pool.start)
        && insn::in_branch_range(text.start, pool.start)
        && insn::in_branch_range(last_insn, last_byte)
}

/// Can no BL in `text` reach any of `pool`?
pub fn unreachable(text: Range, pool: Range) -> bool {
    let last_insn = text.end - 4;
    // The closest pairs are the pool's edges against the text's edges.
    [text.start, last_insn]
        .iter()
        .all(|&t| !insn::in_branch_range(t, pool.start) && !insn::in_branch_range(t, pool.end - 4))
        && !(pool.start < text.end && text.start < pool.end)
}

pub fn plan(i: &Inputs) -> Result<Plan, LayoutError> {
    for (what, r) in [("kernel image", i.image), ("DTB", i.dtb)] {
        if !r.is_empty() && (r.start < i.ram.start || r.end > i.ram.end) {
            return Err(LayoutError::OutsideRam {
                what,
                range: r,
                ram: i.ram,
            });
        }
    }
    let heap = place("heap", i.image.end, i.heap_size, i.ram, &[i.dtb, i.image])?;
    let near_pool = place(
        "near pool",
        heap.end,
        i.near_pool_size,
        i.ram,
        &[i.dtb, i.image, heap],
    )?;
    if !reachable(i.text, near_pool) {
        return Err(LayoutError::NearPoolOutOfReach {
            pool: near_pool,
            text: i.text,
        });
    }
    // 128 MiB past the end of text, plus one block of margin, is out of BL range for all text.
    let far_from = i.text.end + (128 * MIB) + BLOCK;
    let far_pool = place(
        "far pool",
        far_from,
        i.far_pool_size,
        i.ram,
        &[i.dtb, i.image, heap, near_pool],
    )?;
    debug_assert!(unreachable(i.text, far_pool));
    Ok(Plan {
        heap,
        near_pool,
        far_pool,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn virt() -> Inputs {
        Inputs {
            ram: Range::new(0x4000_0000, 0x8000_0000),
            image: Range::new(0x4008_0000, 0x402a_0000),
            text: Range::new(0x4008_0000, 0x4015_0000),
            dtb: Range::new(0x4800_0000, 0x4810_0000),
            heap_size: 32 * MIB,
            near_pool_size: 8 * MIB,
            far_pool_size: 8 * MIB,
        }
    }

    #[test]
    fn virt_plan() {
        let p = plan(&virt()).unwrap();
        assert_eq!(p.heap, Range::new(0x4040_0000, 0x4240_0000));
        assert_eq!(p.near_pool, Range::new(0x4240_0000, 0x42c0_0000));
        assert!(reachable(virt().text, p.near_pool));
        assert!(unreachable(virt().text, p.far_pool));
        assert!(p.far_pool.start >= virt().text.end + 128 * MIB);
        assert!(!p.far_pool.overlaps(&virt().dtb));
    }

    #[test]
    fn regions_skip_the_dtb() {
        let mut i = virt();
        i.dtb = Range::new(0x4100_0000, 0x4110_0000);
        let p = plan(&i).unwrap();
        assert!(!p.heap.overlaps(&i.dtb));
        assert!(!p.near_pool.overlaps(&i.dtb));
        assert_eq!(p.heap.start, 0x4120_0000);
    }

    #[test]
    fn pi3_sized_ram_fits() {
        let i = Inputs {
            ram: Range::new(0, 0x3c00_0000),
            image: Range::new(0x8_0000, 0x30_0000),
            text: Range::new(0x8_0000, 0x15_0000),
            dtb: Range::new(0x2eff_0000, 0x2f00_0000),
            ..virt()
        };
        let p = plan(&i).unwrap();
        assert!(unreachable(i.text, p.far_pool));
    }

    #[test]
    fn too_little_ram_is_an_error() {
        let mut i = virt();
        i.ram = Range::new(0x4000_0000, 0x4800_0000); // 128 MiB: no room for the far pool
        i.dtb = Range::new(0x4700_0000, 0x4710_0000);
        assert_eq!(
            plan(&i),
            Err(LayoutError::NoRoom {
                what: "far pool",
                size: 8 * MIB,
                ram: i.ram
            })
        );
    }

    #[test]
    fn image_outside_ram_is_an_error() {
        let mut i = virt();
        i.image = Range::new(0x1000, 0x2000);
        assert!(matches!(
            plan(&i),
            Err(LayoutError::OutsideRam {
                what: "kernel image",
                ..
            })
        ));
    }

    #[test]
    fn reach_boundaries() {
        let text = Range::new(0x1000_0000, 0x1010_0000);
        // Pool ending exactly at the last reachable byte from text.start: text.start + 128 MiB - 4.
        let edge = text.start + 128 * MIB;
        assert!(reachable(text, Range::new(text.end, edge)));
        assert!(!reachable(text, Range::new(text.end, edge + 4)));
        assert!(unreachable(
            text,
            Range::new(text.end - 4 + 128 * MIB, text.end + 130 * MIB)
        ));
        assert!(!unreachable(
            text,
            Range::new(text.end - 8 + 128 * MIB, text.end + 130 * MIB)
        ));
    }
}
