//! Decoding of the Exception Syndrome Register (ESR_ELx) for crash reports.
//!
//! The crash reporter prints the raw value *and* what it means, so that a reader who never saw
//! the code can tell a permission fault on a text write from an undefined instruction. Field
//! layouts follow the Arm ARM, "ESR_EL1, Exception Syndrome Register (EL1)".

use core::fmt;

/// EC of a trapped SVE/SIMD/FP access (CPACR_EL1.FPEN): the kernel traps all FP/SIMD use.
pub const EC_FP_ACCESS: u8 = 0x07;

/// The Exception Class field, ESR[31:26].
pub fn exception_class(esr: u64) -> u8 {
    ((esr >> 26) & 0x3f) as u8
}

/// The Instruction Specific Syndrome, ESR[24:0].
pub fn iss(esr: u64) -> u32 {
    (esr & 0x1ff_ffff) as u32
}

/// Human name of an exception class.
pub fn class_name(ec: u8) -> &'static str {
    match ec {
        0x00 => "Unknown reason (undefined instruction, e.g. UDF)",
        0x01 => "Trapped WFI/WFE",
        EC_FP_ACCESS => "Trapped SVE/SIMD/FP access",
        0x09 => "Trapped pointer authentication instruction",
        crate::harden::EC_BTI => "Branch Target exception (BTI: no landing pad)",
        0x0e => "Illegal execution state",
        0x15 => "SVC from AArch64",
        0x16 => "HVC from AArch64",
        0x17 => "SMC from AArch64",
        0x18 => "Trapped MSR/MRS/system instruction",
        crate::harden::EC_FPAC => "Pointer authentication failure (FPAC)",
        0x20 => "Instruction Abort, lower EL",
        0x21 => "Instruction Abort, current EL",
        0x22 => "PC alignment fault",
        0x24 => "Data Abort, lower EL",
        0x25 => "Data Abort, current EL",
        0x26 => "SP alignment fault",
        0x2c => "Trapped floating-point exception",
        0x2f => "SError interrupt",
        0x30 => "Breakpoint, lower EL",
        0x31 => "Breakpoint, current EL",
        0x32 => "Software step, lower EL",
        0x33 => "Software step, current EL",
        0x34 => "Watchpoint, lower EL",
        0x35 => "Watchpoint, current EL",
        0x3c => "BRK instruction",
        _ => "Reserved or unhandled exception class",
    }
}

/// Is this class an instruction or data abort (so that FAR is meaningful and the ISS holds a
/// fault status code)?
pub fn is_abort(ec: u8) -> bool {
    matches!(ec, 0x20 | 0x21 | 0x24 | 0x25)
}

/// Human name of a data/instruction fault status code (DFSC/IFSC, ISS[5:0]).
pub fn fault_status_name(fsc: u8) -> &'static str {
    match fsc {
        0x00..=0x03 => "address size fault",
        0x04..=0x07 => "translation fault",
        0x08..=0x0b => "access flag fault",
        0x0c..=0x0f => "permission fault",
        0x10 => "synchronous external abort",
        0x11 => "synchronous tag check fault",
        0x14..=0x17 => "synchronous external abort on table walk",
        0x18 => "synchronous parity/ECC error",
        0x21 => "alignment fault",
        0x30 => "TLB conflict abort",
        0x31 => "unsupported atomic hardware update fault",
        _ => "unknown fault status",
    }
}

/// Translation level a fault status code refers to, if it names one.
pub fn fault_level(fsc: u8) -> Option<u8> {
    match fsc {
        0x00..=0x0f | 0x14..=0x17 => Some(fsc & 3),
        _ => None,
    }
}

/// A decoded ESR, printable as one line of explanation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded {
    pub esr: u64,
}

impl Decoded {
    pub fn new(esr: u64) -> Self {
        Decoded { esr }
    }
    pub fn class(&self) -> u8 {
        exception_class(self.esr)
    }
    pub fn class_name(&self) -> &'static str {
        class_name(self.class())
    }
    /// For aborts: the fault status code.
    pub fn fault_status(&self) -> Option<u8> {
        is_abort(self.class()).then(|| (iss(self.esr) & 0x3f) as u8)
    }
    /// For data aborts: was it a write (ISS.WnR)?
    pub fn is_write(&self) -> Option<bool> {
        matches!(self.class(), 0x24 | 0x25).then(|| iss(self.esr) & (1 << 6) != 0)
    }
    /// For BRK: the immediate (ISS[15:0]).
    pub fn brk_immediate(&self) -> Option<u16> {
        (self.class() == 0x3c).then(|| (iss(self.esr) & 0xffff) as u16)
    }
}

impl fmt::Display for Decoded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(fsc) = self.fault_status() {
            write!(f, "{}", fault_status_name(fsc))?;
            if let Some(level) = fault_level(fsc) {
                write!(f, ", level {level}")?;
            }
            if let Some(w) = self.is_write() {
                f.write_str(if w { ", on a write" } else { ", on a read" })?;
            }
            if matches!(self.class(), 0x20 | 0x21) {
                f.write_str(", on an instruction fetch")?;
            }
            write!(f, " (FSC {fsc:#04x})")
        } else if let Some(imm) = self.brk_immediate() {
            write!(f, "brk #{imm:#x}")
        } else if self.class() == crate::harden::EC_BTI {
            let btype = (iss(self.esr) & 3) as u8;
            write!(
                f,
                "the target of an indirect branch into a guarded page is no landing pad: PSTATE.BTYPE {btype:#04b}, set by {}",
                crate::harden::btype_name(btype)
            )
        } else if self.class() == crate::harden::EC_FPAC {
            write!(
                f,
                "a signed pointer did not authenticate, {}",
                crate::harden::fpac_key_name(iss(self.esr))
            )
        } else {
            write!(f, "ISS {:#09x}", iss(self.esr))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::format;

    #[test]
    fn permission_fault_on_write_is_named() {
        // EC 0x25 (data abort, same EL), IL=1, WnR=1, DFSC 0x0f (permission fault level 3).
        let esr = (0x25u64 << 26) | (1 << 25) | (1 << 6) | 0x0f;
        let d = Decoded::new(esr);
        assert_eq!(d.class_name(), "Data Abort, current EL");
        assert_eq!(
            format!("{d}"),
            "permission fault, level 3, on a write (FSC 0x0f)"
        );
    }

    #[test]
    fn translation_fault_on_read() {
        let esr = (0x25u64 << 26) | (1 << 25) | 0x06;
        assert_eq!(
            format!("{}", Decoded::new(esr)),
            "translation fault, level 2, on a read (FSC 0x06)"
        );
    }

    #[test]
    fn instruction_abort() {
        let esr = (0x21u64 << 26) | (1 << 25) | 0x0f;
        let d = Decoded::new(esr);
        assert_eq!(d.is_write(), None);
        assert_eq!(
            format!("{d}"),
            "permission fault, level 3, on an instruction fetch (FSC 0x0f)"
        );
    }

    #[test]
    fn udf_and_brk() {
        let udf = 1u64 << 25; // EC 0: unknown
        assert!(
            Decoded::new(udf)
                .class_name()
                .contains("undefined instruction")
        );
        let brk = (0x3cu64 << 26) | (1 << 25) | 0x4711;
        assert_eq!(Decoded::new(brk).brk_immediate(), Some(0x4711));
        assert_eq!(format!("{}", Decoded::new(brk)), "brk #0x4711");
    }

    #[test]
    fn bti_and_fpac_exceptions_are_named() {
        // EC 0x0d, IL=1, BTYPE 0b10 (a BLR).
        let bti = (0x0du64 << 26) | (1 << 25) | 0b10;
        let d = Decoded::new(bti);
        assert!(d.class_name().starts_with("Branch Target exception"));
        assert_eq!(
            format!("{d}"),
            "the target of an indirect branch into a guarded page is no landing pad: PSTATE.BTYPE 0b10, set by BLR: needs bti c or bti jc (or paciasp)"
        );
        // EC 0x1c, IL=1, ISS 0: instruction key A.
        let fpac = (0x1cu64 << 26) | (1 << 25);
        let d = Decoded::new(fpac);
        assert_eq!(d.class_name(), "Pointer authentication failure (FPAC)");
        assert!(format!("{d}").contains("APIA"));
    }

    #[test]
    fn alignment_fault_has_no_level() {
        assert_eq!(fault_level(0x21), None);
        assert_eq!(fault_status_name(0x21), "alignment fault");
    }
}
