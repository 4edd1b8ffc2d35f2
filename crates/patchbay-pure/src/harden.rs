//! The hardened build (`make ... HARDEN=1`, cargo feature `harden`): branch-target
//! identification (BTI) and return-address signing (pointer authentication, `pac-ret`) enforced,
//! as distribution kernels ship. The pure part: what the build changes in the layouts the kernel
//! relies on, what the CPU implements (ID registers), which SCTLR_EL1 bits turn enforcement on,
//! and how the two new exceptions read.
//!
//! # What `-Z branch-protection=bti,pac-ret` does to a patch site
//!
//! The compiler places `bti c` at the function's address, *before* the patchable entry NOPs
//! (LLVM emits the landing pad first so that an indirect call still lands on it), and a
//! non-leaf function signs x30 with `paciasp` only after them, at the start of its body:
//!
//! ```text
//!   func - 8 : nop ; nop      literal (CALL_OPS), still 8-aligned
//!   func + 0 : bti c          landing pad: the function's address, what `ip` names
//!   func + 4 : nop            -> mov x9, x30           (Site::entry)
//!   func + 8 : nop            <-> bl target            (Site::call)
//!   func + 12: paciasp        body (Site::body): signs x30, SP as modifier
//! ```
//!
//! So every site word moves by [`ENTRY_PAD`] bytes while the literal and the function's address
//! stay; a trampoline reached from the site sees x30 = func + 8 + [`ENTRY_PAD`], and x30 / x9 at
//! the site are *unsigned* (signing happens in the body, after the site's `bl`). A return hook
//! that replaces x30 at the site therefore replaces an unsigned address, which the function then
//! signs and authenticates itself: nothing needs re-signing.

use core::fmt;

/// Is this the hardened build?
pub const HARDENED: bool = cfg!(feature = "harden");

/// Bytes between a patchable function's address and its first entry NOP: the `bti c` the
/// hardened build puts there (see the module docs).
pub const ENTRY_PAD: u64 = if HARDENED { 4 } else { 0 };

/// The first word of every patchable function in this build: `bti c` when hardened, else the
/// entry NOP itself (`None`: nothing to check beyond the NOPs).
pub const ENTRY_LANDING_PAD: Option<u32> = if HARDENED {
    Some(crate::insn::BTI_C)
} else {
    None
};

/// The landing pad generated trampolines start with in this build (`tramp`): `bti c`, which
/// accepts `BR x16`/`BR x17` (PSTATE.BTYPE 0b01: the veneer's `br x16`, the direct caller's
/// `br x17`) and `BLR` (0b10). A `BL` needs no landing pad at all (BTYPE stays 0b00), and no
/// trampoline is reached by `BR` through another register (BTYPE 0b11, which only `bti j`/`bti jc`
/// accept). `None` in the plain build, so its instruction counts do not move.
pub const TRAMPOLINE_LANDING_PAD: Option<u32> = ENTRY_LANDING_PAD;

/// SCTLR_EL1.BT1 (bit 36): `paciasp` at EL1 is an implicit `bti c`, not `bti jc` — the stricter
/// choice Linux makes for its kernel (a `BR Xn` other than x16/x17 cannot land on a prologue).
pub const SCTLR_BT1: u64 = 1 << 36;
/// SCTLR_EL1.EnIA (bit 31): instruction-address signing with the APIA key is enabled
/// (`paciasp`/`autiasp` stop being NOPs).
pub const SCTLR_ENIA: u64 = 1 << 31;

/// The 4-bit ID register field at `shift`.
const fn field(r: u64, shift: u32) -> u64 {
    (r >> shift) & 0xf
}

/// What this CPU implements, from its ID registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CpuFeatures {
    /// FEAT_BTI (ID_AA64PFR1_EL1.BT, bits 3:0).
    pub bti: bool,
    /// Address authentication with an architected or implementation-defined algorithm
    /// (ID_AA64ISAR1_EL1.APA bits 7:4 / API bits 11:8, ID_AA64ISAR2_EL1.APA3 bits 15:12).
    pub pauth: bool,
    /// FEAT_FPAC: a failed `aut*` traps at once (EC 0x1c) instead of corrupting the pointer
    /// (any of those fields >= 0b0100).
    pub fpac: bool,
    /// FEAT_RNG: RNDR (ID_AA64ISAR0_EL1.RNDR, bits 63:60).
    pub rng: bool,
}

impl CpuFeatures {
    pub const fn from_id_regs(pfr1: u64, isar0: u64, isar1: u64, isar2: u64) -> CpuFeatures {
        let (apa, api, apa3) = (field(isar1, 4), field(isar1, 8), field(isar2, 12));
        let level = if apa > api { apa } else { api };
        let level = if apa3 > level { apa3 } else { level };
        CpuFeatures {
            bti: field(pfr1, 0) != 0,
            pauth: level != 0,
            fpac: level >= 4,
            rng: field(isar0, 60) != 0,
        }
    }

    /// The SCTLR_EL1 bits that enforce what the CPU implements.
    pub const fn sctlr_bits(self) -> u64 {
        (if self.bti { SCTLR_BT1 } else { 0 }) | (if self.pauth { SCTLR_ENIA } else { 0 })
    }
}

/// Where the boot's APIA key came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// FEAT_RNG's RNDR: a fresh random key every boot.
    Rndr,
    /// No FEAT_RNG (or RNDR failed): mixed from the counter, different per boot but predictable
    /// to anyone who knows the boot time — fine for a testbed, not a secret.
    Counter,
}

/// An APIA key { lo, hi } from a counter value, for a CPU without FEAT_RNG: two SplitMix64
/// steps, so nearby boot times give unrelated keys (still predictable from the time: not a secret).
pub const fn key_from_counter(counter: u64) -> [u64; 2] {
    const fn splitmix64(x: u64) -> u64 {
        let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    let lo = splitmix64(counter);
    [lo, splitmix64(lo)]
}

/// What a hardened boot enforces: the banner line ([`fmt::Display`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Enforcement {
    pub cpu: CpuFeatures,
    pub key: KeySource,
}

impl fmt::Display for Enforcement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("hardened build (bti, pac-ret): ")?;
        if self.cpu.bti {
            f.write_str("BTI enforced (text and pools guarded, SCTLR_EL1.BT1)")?;
        } else {
            f.write_str("BTI NOT enforced (no FEAT_BTI: landing pads run as NOPs)")?;
        }
        if self.cpu.pauth {
            let key = match self.key {
                KeySource::Rndr => "random from RNDR",
                KeySource::Counter => "from the counter (no FEAT_RNG)",
            };
            write!(
                f,
                "; return addresses signed (SCTLR_EL1.EnIA, APIA key {key}"
            )?;
            f.write_str(if self.cpu.fpac {
                ", FPAC: a failed authentication traps)"
            } else {
                ", no FPAC: a failed authentication faults on use)"
            })
        } else {
            f.write_str("; pointer authentication NOT enforced (no FEAT_PAuth: runs as NOPs)")
        }
    }
}

/// The bits of a TTBR0 address where a pointer-authentication code goes: 54 down to
/// [`VA_BITS`](crate::pagetable::VA_BITS) (bit 55 selects the translation table and stays).
pub const PAC_BITS: u64 = ((1 << 55) - 1) & !((1 << crate::pagetable::VA_BITS) - 1);

/// Does `addr` (a TTBR0 address) carry a pointer-authentication code — or, without FEAT_FPAC,
/// the error code a failed `autiasp` leaves in those bits?
pub const fn has_pac_bits(addr: u64) -> bool {
    addr & PAC_BITS != 0
}

/// Does the landing pad `word` accept an arrival with PSTATE.BTYPE `btype` (SCTLR_EL1.BT1 set,
/// as the hardened build runs)? `None` if `word` is no `bti` — the question a BRK probe that
/// displaced one must answer before resuming after it (`trace::kprobe`).
pub const fn bti_accepts(word: u32, btype: u8) -> Option<bool> {
    use crate::insn::{BTI, BTI_C, BTI_J, BTI_JC};
    let btype = btype & 3;
    Some(match word {
        BTI => btype == 0,
        BTI_C => btype != 0b11,
        BTI_J => btype != 0b10,
        BTI_JC => true,
        _ => return None,
    })
}

/// ESR_ELx.EC of a Branch Target exception.
pub const EC_BTI: u8 = 0x0d;
/// ESR_ELx.EC of a pointer-authentication failure (FEAT_FPAC).
pub const EC_FPAC: u8 = 0x1c;

/// The branch that set PSTATE.BTYPE, from a Branch Target exception's ISS[1:0].
pub const fn btype_name(btype: u8) -> &'static str {
    match btype & 3 {
        0b01 => "BR x16/x17 (or BR from an unguarded page): needs bti c, bti j or bti jc",
        0b10 => "BLR: needs bti c or bti jc (or paciasp)",
        0b11 => "BR through another register: needs bti j or bti jc",
        _ => "no indirect branch",
    }
}

/// Which key a failed authentication used, from an FPAC exception's ISS[1:0].
pub const fn fpac_key_name(iss: u32) -> &'static str {
    match iss & 3 {
        0b00 => "instruction key A (APIA: a signed return address, autiasp)",
        0b01 => "instruction key B (APIB)",
        0b10 => "data key A (APDA)",
        _ => "data key B (APDB)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;

    #[test]
    fn qemu_max_and_cortex_a72_id_registers() {
        // QEMU 10 -cpu max: PFR1.BT = 1, ISAR0.RNDR = 1, ISAR1.APA = 5 (FPACCOMBINE, QARMA5).
        let max = CpuFeatures::from_id_regs(0x1, 1 << 60, 0x5 << 4, 0);
        assert_eq!(
            max,
            CpuFeatures {
                bti: true,
                pauth: true,
                fpac: true,
                rng: true
            }
        );
        assert_eq!(max.sctlr_bits(), SCTLR_BT1 | SCTLR_ENIA);
        // pauth-impdef=on moves the level to API; QARMA3 to ISAR2.APA3; plain PAuth has no FPAC.
        assert!(CpuFeatures::from_id_regs(0, 0, 0x5 << 8, 0).fpac);
        assert!(CpuFeatures::from_id_regs(0, 0, 0, 0x4 << 12).fpac);
        let pauth = CpuFeatures::from_id_regs(0, 0, 0x1 << 4, 0);
        assert!(pauth.pauth && !pauth.fpac && !pauth.bti && !pauth.rng);
        // Cortex-A72 (Armv8.0): nothing, and no SCTLR bit is set.
        let a72 = CpuFeatures::from_id_regs(0, 0, 0, 0);
        assert_eq!(a72, CpuFeatures::default());
        assert_eq!(a72.sctlr_bits(), 0);
    }

    #[test]
    fn the_banner_says_what_is_enforced() {
        let all = Enforcement {
            cpu: CpuFeatures::from_id_regs(0x1, 1 << 60, 0x5 << 4, 0),
            key: KeySource::Rndr,
        };
        assert_eq!(
            format!("{all}"),
            "hardened build (bti, pac-ret): BTI enforced (text and pools guarded, SCTLR_EL1.BT1); \
             return addresses signed (SCTLR_EL1.EnIA, APIA key random from RNDR, FPAC: a failed \
             authentication traps)"
        );
        let none = Enforcement {
            cpu: CpuFeatures::default(),
            key: KeySource::Counter,
        };
        let s = format!("{none}");
        assert!(s.contains("BTI NOT enforced") && s.contains("pointer authentication NOT"));
    }

    #[test]
    fn counter_keys_differ_for_nearby_counts() {
        let (a, b) = (key_from_counter(1000), key_from_counter(1001));
        assert_ne!(a, b);
        assert_ne!(a[0], a[1]);
        // SplitMix64's published first output for seed 0.
        assert_eq!(key_from_counter(0)[0], 0xe220_a839_7b1d_cdaf);
    }

    #[test]
    fn landing_pads_accept_what_the_arm_arm_says() {
        use crate::insn::{BTI_C, BTI_J, BTI_JC, NOP, PACIASP};
        // BTYPE: 0b00 none, 0b01 BR x16/x17, 0b10 BLR, 0b11 other BR.
        let accepts = |w| [0, 1, 2, 3].map(|b| bti_accepts(w, b).unwrap());
        assert_eq!(accepts(BTI_C), [true, true, true, false]);
        assert_eq!(accepts(BTI_J), [true, true, false, true]);
        assert_eq!(accepts(BTI_JC), [true; 4]);
        assert_eq!(accepts(crate::insn::BTI), [true, false, false, false]);
        assert_eq!(bti_accepts(NOP, 0), None);
        assert_eq!(bti_accepts(PACIASP, 2), None);
    }

    #[test]
    fn pac_bits_sit_between_the_va_and_bit_55() {
        assert_eq!(PAC_BITS, 0x007f_ff80_0000_0000);
        assert!(!has_pac_bits(0x4008_1234) && !has_pac_bits(0x7f_ffff_ffff));
        assert!(has_pac_bits(0x002a_0000_4008_1234));
    }

    #[test]
    fn exception_details_are_named() {
        assert!(btype_name(0b10).starts_with("BLR"));
        assert!(btype_name(0b11).contains("bti j"));
        assert!(btype_name(0b01).starts_with("BR x16/x17"));
        assert!(fpac_key_name(0).contains("APIA"));
    }
}
