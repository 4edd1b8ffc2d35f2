//! General-purpose register operands: [`Reg`] and the named registers.

/// A general-purpose register number 0..=30, or 31 meaning XZR or SP depending on the instruction.
///
/// Each encoder documents what 31 means in each of its operands: a base register of a load or
/// store and the operands of `ADD`/`SUB` (immediate) read 31 as `sp`; everything else as `xzr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reg(u8);

impl Reg {
    /// Register `xN`, `N` in 0..=30. Panics (at compile time in a const context) if `n > 30`;
    /// use [`XZR`] or [`SP`] for register number 31.
    pub const fn x(n: u8) -> Reg {
        assert!(
            n <= 30,
            "Reg::x: register number must be 0..=30 (use XZR or SP for 31)"
        );
        Reg(n)
    }

    /// The 5-bit register number as encoded (0..=31).
    pub const fn num(self) -> u8 {
        self.0
    }

    /// The register number as an instruction field, unshifted.
    pub(super) const fn field(self) -> u32 {
        self.0 as u32
    }
}

/// `x0`
pub const X0: Reg = Reg::x(0);
/// `x1`
pub const X1: Reg = Reg::x(1);
/// `x2`
pub const X2: Reg = Reg::x(2);
/// `x3`
pub const X3: Reg = Reg::x(3);
/// `x4`
pub const X4: Reg = Reg::x(4);
/// `x5`
pub const X5: Reg = Reg::x(5);
/// `x6`
pub const X6: Reg = Reg::x(6);
/// `x7`
pub const X7: Reg = Reg::x(7);
/// `x8` (indirect result register)
pub const X8: Reg = Reg::x(8);
/// `x9`
pub const X9: Reg = Reg::x(9);
/// `x10`
pub const X10: Reg = Reg::x(10);
/// `x11`
pub const X11: Reg = Reg::x(11);
/// `x12`
pub const X12: Reg = Reg::x(12);
/// `x13`
pub const X13: Reg = Reg::x(13);
/// `x14`
pub const X14: Reg = Reg::x(14);
/// `x15`
pub const X15: Reg = Reg::x(15);
/// `x16` (IP0, intra-procedure-call scratch)
pub const X16: Reg = Reg::x(16);
/// `x17` (IP1, intra-procedure-call scratch)
pub const X17: Reg = Reg::x(17);
/// `x18` (platform register)
pub const X18: Reg = Reg::x(18);
/// `x19`
pub const X19: Reg = Reg::x(19);
/// `x20`
pub const X20: Reg = Reg::x(20);
/// `x21`
pub const X21: Reg = Reg::x(21);
/// `x22`
pub const X22: Reg = Reg::x(22);
/// `x23`
pub const X23: Reg = Reg::x(23);
/// `x24`
pub const X24: Reg = Reg::x(24);
/// `x25`
pub const X25: Reg = Reg::x(25);
/// `x26`
pub const X26: Reg = Reg::x(26);
/// `x27`
pub const X27: Reg = Reg::x(27);
/// `x28`
pub const X28: Reg = Reg::x(28);
/// `x29`, the frame pointer
pub const X29: Reg = Reg::x(29);
/// `x30`, the link register
pub const X30: Reg = Reg::x(30);
/// The frame pointer, `x29`.
pub const FP: Reg = X29;
/// The link register, `x30`.
pub const LR: Reg = X30;
/// Register number 31 where the instruction reads it as the zero register.
pub const XZR: Reg = Reg(31);
/// Register number 31 where the instruction reads it as the stack pointer.
pub const SP: Reg = Reg(31);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers() {
        assert_eq!((X0.num(), X17.num(), FP.num(), LR.num()), (0, 17, 29, 30));
        assert_eq!((XZR.num(), SP.num()), (31, 31));
        assert_eq!(Reg::x(30), X30);
    }

    #[test]
    #[should_panic(expected = "register number must be 0..=30")]
    fn reg_x_rejects_31() {
        let _ = Reg::x(std::hint::black_box(31));
    }
}
