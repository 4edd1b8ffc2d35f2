//! `FtraceRegs`: the register state a tracing handler sees at a function's entry.
//!
//! Like Linux arm64's `struct ftrace_regs` (Mark Rutland's argument: a full `pt_regs` is large
//! and not even sound at a function boundary), it holds only what the procedure-call standard
//! makes meaningful at entry: the argument registers x0–x7, the indirect-result register x8,
//! the frame pointer, the caller's return address, the stack pointer and where execution
//! continues. 112 bytes, a multiple of 16 so the trampoline keeps SP 16-aligned.
//!
//! ```text
//!   0   x0 .. x8        arguments (x0 is also where a return value goes)
//!  72   direct_tramp    reserved for direct calls reached through ops
//!  80   fp              the caller's x29
//!  88   lr              the caller's return address (parent ip), arrived in x9
//!  96   sp              the stack pointer at the function's entry
//! 104   pc              where the trampoline continues: the function body (func + 8)
//! ```

/// Register state at a traced function's entry. Changing it changes what runs next.
#[repr(C, align(16))]
#[derive(Clone, Debug, Default)]
pub struct FtraceRegs {
    pub x: [u64; 9],
    pub direct_tramp: u64,
    pub fp: u64,
    pub lr: u64,
    pub sp: u64,
    pub pc: u64,
}

/// Byte offsets used by the trampoline assembly (asserted against the struct).
pub const FREGS_X0: usize = 0;
pub const FREGS_DIRECT_TRAMP: usize = 72;
pub const FREGS_FP: usize = 80;
pub const FREGS_LR: usize = 88;
pub const FREGS_SP: usize = 96;
pub const FREGS_PC: usize = 104;
pub const FREGS_SIZE: usize = 112;

const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(offset_of!(FtraceRegs, x) == FREGS_X0);
    assert!(offset_of!(FtraceRegs, direct_tramp) == FREGS_DIRECT_TRAMP);
    assert!(offset_of!(FtraceRegs, fp) == FREGS_FP);
    assert!(offset_of!(FtraceRegs, lr) == FREGS_LR);
    assert!(offset_of!(FtraceRegs, sp) == FREGS_SP);
    assert!(offset_of!(FtraceRegs, pc) == FREGS_PC);
    assert!(size_of::<FtraceRegs>() == FREGS_SIZE);
    assert!(FREGS_SIZE.is_multiple_of(16));
};

/// Bytes from a function's address to its body (the two entry words of the patch site, after
/// the hardened build's `bti c`).
pub const SITE_ENTRY_BYTES: u64 = patchbay_pure::sites::BODY_OFFSET;

impl FtraceRegs {
    /// Argument `n` (0..=7) as passed in x`n`.
    pub fn arg(&self, n: usize) -> u64 {
        assert!(n < 8, "only x0-x7 carry arguments");
        self.x[n]
    }

    /// Change argument `n`: the function body sees the new value.
    pub fn set_arg(&mut self, n: usize, v: u64) {
        assert!(n < 8, "only x0-x7 carry arguments");
        self.x[n] = v;
    }

    /// The return value (x0), meaningful after the function returned (return hooks) or after
    /// [`FtraceRegs::override_return`].
    pub fn return_value(&self) -> u64 {
        self.x[0]
    }

    /// The traced function's address (while `pc` still points at its body).
    pub fn ip(&self) -> u64 {
        self.pc - SITE_ENTRY_BYTES
    }

    /// The caller's return address.
    pub fn parent_ip(&self) -> u64 {
        self.lr
    }

    /// Skip the function: return `v` straight to the caller (the basis of error injection).
    pub fn override_return(&mut self, v: u64) {
        self.x[0] = v;
        self.pc = self.lr;
    }

    /// Did a handler override the function (the body will not run)?
    pub fn is_overridden(&self) -> bool {
        self.pc == self.lr
    }
}
