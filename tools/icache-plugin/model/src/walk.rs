//! Stage-1 address translation as the guest's MMU does it, for the addresses the model sees as
//! virtual: the operand of each `DC`/`IC` by-VA instruction and the PC of executed instructions.
//!
//! Only what an EL1 kernel with the 4 KiB granule needs: SCTLR_EL1.M off means VA = PA; otherwise
//! TTBR0_EL1 (lower range, TCR_EL1.T0SZ) or TTBR1_EL1 (upper range, T1SZ), levels 0-3, blocks at
//! levels 1-2, pages at level 3, PXN and the hierarchical PXNTable. Descriptors are read through
//! a caller-given function of the descriptor's physical address.

/// The system registers a walk depends on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Regime {
    pub sctlr: u64,
    pub tcr: u64,
    pub ttbr0: u64,
    pub ttbr1: u64,
}

/// Where a virtual address goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub pa: u64,
    /// Executable at EL1 (PXN clear in the leaf and no PXNTable above it; always with the MMU off).
    pub executable: bool,
}

/// Why a walk failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkError {
    /// The address is in neither TTBR range, or walks of its range are disabled (EPDn).
    OutOfRange,
    /// A granule other than 4 KiB.
    Granule,
    /// A descriptor could not be read at this physical address.
    Unreadable(u64),
    /// An invalid (or reserved) descriptor at this level.
    Fault(u8),
}

const SCTLR_M: u64 = 1 << 0;
const TCR_EPD0: u64 = 1 << 7;
const TCR_EPD1: u64 = 1 << 23;
/// TCR_EL1.TG0 value for 4 KiB.
const TG0_4K: u64 = 0b00;
/// TCR_EL1.TG1 value for 4 KiB.
const TG1_4K: u64 = 0b10;
const VALID: u64 = 1 << 0;
const TABLE_OR_PAGE: u64 = 1 << 1;
const PXN: u64 = 1 << 53;
const PXN_TABLE: u64 = 1 << 59;
/// Output address bits 47:12 of a table or page descriptor.
const OA_MASK: u64 = 0x0000_ffff_ffff_f000;
/// TTBRn_EL1.BADDR (bits 47:1; bit 0 is CnP).
const BADDR_MASK: u64 = 0x0000_ffff_ffff_fffe;

/// Translate `va` under `regime`, reading descriptors with `read(pa)`.
pub fn translate(
    regime: &Regime,
    va: u64,
    mut read: impl FnMut(u64) -> Option<u64>,
) -> Result<Mapping, WalkError> {
    if regime.sctlr & SCTLR_M == 0 {
        return Ok(Mapping {
            pa: va,
            executable: true,
        });
    }
    // TnSZ below 16 (more than 48 bits) is not a 4 KiB-granule configuration without LPA2.
    let t0sz = ((regime.tcr & 0x3f) as u32).max(16);
    let t1sz = (((regime.tcr >> 16) & 0x3f) as u32).max(16);
    let (ia_bits, base) = if va >> (64 - t0sz) == 0 {
        if regime.tcr & TCR_EPD0 != 0 {
            return Err(WalkError::OutOfRange);
        }
        if (regime.tcr >> 14) & 3 != TG0_4K {
            return Err(WalkError::Granule);
        }
        (64 - t0sz, regime.ttbr0 & BADDR_MASK)
    } else if va >> (64 - t1sz) == (1 << t1sz) - 1 {
        if regime.tcr & TCR_EPD1 != 0 {
            return Err(WalkError::OutOfRange);
        }
        if (regime.tcr >> 30) & 3 != TG1_4K {
            return Err(WalkError::Granule);
        }
        (64 - t1sz, regime.ttbr1 & BADDR_MASK)
    } else {
        return Err(WalkError::OutOfRange);
    };
    // 9 bits per level above the 12-bit page offset: the start level resolves what is left.
    let first = 4 - (ia_bits - 12).div_ceil(9) as u8;
    let mut table = base;
    let mut pxn = false;
    for level in first..=3 {
        let shift = 12 + 9 * u32::from(3 - level);
        let bits = (ia_bits - shift).min(9);
        let index = (va >> shift) & ((1 << bits) - 1);
        let at = table + index * 8;
        let d = read(at).ok_or(WalkError::Unreadable(at))?;
        if d & VALID == 0 {
            return Err(WalkError::Fault(level));
        }
        let table_desc = d & TABLE_OR_PAGE != 0;
        if level < 3 && table_desc {
            pxn |= d & PXN_TABLE != 0;
            table = d & OA_MASK;
            continue;
        }
        // A block (levels 1-2) or a page (level 3); a block at level 0 or a level-3 "block"
        // is reserved.
        if level == 0 || (level == 3 && !table_desc) {
            return Err(WalkError::Fault(level));
        }
        let size = 1u64 << shift;
        return Ok(Mapping {
            pa: (d & OA_MASK & !(size - 1)) | (va & (size - 1)),
            executable: !pxn && d & PXN == 0,
        });
    }
    unreachable!("level 3 always returns")
}

/// Every executable mapping of the TTBR0_EL1 range: `f(va, pa, size)` per leaf with PXN clear
/// (and no PXNTable above it). With the MMU off nothing is mapped, so nothing is reported.
pub fn executable_leaves(
    regime: &Regime,
    mut read: impl FnMut(u64) -> Option<u64>,
    mut f: impl FnMut(u64, u64, u64),
) -> Result<(), WalkError> {
    if regime.sctlr & SCTLR_M == 0 || regime.tcr & TCR_EPD0 != 0 {
        return Ok(());
    }
    if (regime.tcr >> 14) & 3 != TG0_4K {
        return Err(WalkError::Granule);
    }
    let ia_bits = 64 - ((regime.tcr & 0x3f) as u32).max(16);
    let first = 4 - (ia_bits - 12).div_ceil(9) as u8;
    let entries = 1u64 << (ia_bits - (12 + 9 * u32::from(3 - first))).min(9);
    let mut stack = vec![(regime.ttbr0 & BADDR_MASK, first, 0u64, entries)];
    while let Some((table, level, va_base, entries)) = stack.pop() {
        let shift = 12 + 9 * u32::from(3 - level);
        for i in 0..entries {
            let at = table + i * 8;
            let d = read(at).ok_or(WalkError::Unreadable(at))?;
            let va = va_base | i << shift;
            if d & VALID == 0 {
                continue;
            }
            let table_desc = d & TABLE_OR_PAGE != 0;
            if level < 3 && table_desc {
                if d & PXN_TABLE == 0 {
                    stack.push((d & OA_MASK, level + 1, va, 512));
                }
            } else if level > 0 && (level < 3 || table_desc) && d & PXN == 0 {
                let size = 1u64 << shift;
                f(va, d & OA_MASK & !(size - 1), size);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// patchbay's own regime: 39-bit VAs from TTBR0 (T0SZ = 25), TTBR1 walks disabled.
    fn regime(root: u64) -> Regime {
        Regime {
            sctlr: SCTLR_M,
            tcr: 25 | TCR_EPD1 | TG1_4K << 30,
            ttbr0: root,
            ttbr1: 0,
        }
    }

    /// Tables at 0x1000 (L1), 0x2000 (L2), 0x3000 (L3): a 2 MiB executable block at VA
    /// 0x4000_0000 (identity), a 4 KiB RW alias at VA 0x40_0000_0000 of PA 0x4008_1000.
    fn memory() -> HashMap<u64, u64> {
        let mut m = HashMap::new();
        let table = |pa: u64| pa | VALID | TABLE_OR_PAGE;
        m.insert(0x1000 + 8, table(0x2000)); // L1[1]: VA 0x4000_0000..
        m.insert(0x2000, 0x4000_0000 | VALID); // L2[0]: block, executable
        m.insert(0x2000 + 8, 0x4020_0000 | VALID | PXN); // L2[1]: block, execute-never
        m.insert(0x1000 + 256 * 8, table(0x4000) | PXN_TABLE); // L1[256]: VA 0x40_0000_0000..
        m.insert(0x4000, table(0x3000)); // L2[0]
        m.insert(0x3000, 0x4008_1000 | VALID | TABLE_OR_PAGE); // L3[0]: page
        m
    }

    #[test]
    fn identity_block_alias_page_and_faults() {
        let m = memory();
        let read = |pa| m.get(&pa).copied();
        let r = regime(0x1000);
        assert_eq!(
            translate(&r, 0x4008_1234, read),
            Ok(Mapping {
                pa: 0x4008_1234,
                executable: true
            })
        );
        assert_eq!(
            translate(&r, 0x4020_0010, read),
            Ok(Mapping {
                pa: 0x4020_0010,
                executable: false
            })
        );
        assert_eq!(
            translate(&r, 0x40_0000_0ffc, read),
            Ok(Mapping {
                pa: 0x4008_1ffc,
                executable: false
            }),
            "PXNTable above the alias"
        );
        assert_eq!(
            translate(&r, 0x40_0000_1000, read),
            Err(WalkError::Unreadable(0x3008))
        );
        assert_eq!(
            translate(&r, 0x8000_0000, read),
            Err(WalkError::Unreadable(0x1010))
        );
        assert_eq!(
            translate(&r, 0xffff_ff80_0000_0000, read),
            Err(WalkError::OutOfRange),
            "TTBR1 walks disabled"
        );
        assert_eq!(
            translate(&r, 1 << 40, read),
            Err(WalkError::OutOfRange),
            "beyond 39 bits"
        );
    }

    #[test]
    fn executable_leaves_of_the_example() {
        let m = memory();
        let mut found = Vec::new();
        // Unwritten entries read as zero (invalid).
        let read = |pa| Some(m.get(&pa).copied().unwrap_or(0));
        executable_leaves(&regime(0x1000), read, |va, pa, size| {
            found.push((va, pa, size))
        })
        .unwrap();
        assert_eq!(found, [(0x4000_0000, 0x4000_0000, 2 << 20)]);
        let mut none = 0;
        executable_leaves(&Regime::default(), read, |_, _, _| none += 1).unwrap();
        assert_eq!(none, 0);
    }

    #[test]
    fn mmu_off_is_identity_and_48_bit_starts_at_level_0() {
        let off = Regime::default();
        assert_eq!(
            translate(&off, 0x4008_0000, |_| None),
            Ok(Mapping {
                pa: 0x4008_0000,
                executable: true
            })
        );
        // T0SZ = 16: a level-0 table first; an invalid level-0 entry faults at level 0.
        let r = Regime {
            tcr: 16,
            ..regime(0x1000)
        };
        assert_eq!(
            translate(&r, 0x4000_0000, |_| Some(0)),
            Err(WalkError::Fault(0))
        );
        let r = Regime {
            tcr: 25 | 1 << 14,
            ..regime(0x1000)
        };
        assert_eq!(
            translate(&r, 0x4000_0000, |_| Some(0)),
            Err(WalkError::Granule)
        );
    }
}
