//! `FtraceRegs`: the register state a tracing handler sees at a function's entry.
//!
//! Like Linux arm64's `struct ftrace_regs` (Mark Rutland's argument: a full `pt_regs` is large
//! and not even sound at a function boundary), it holds only what the procedure-call standard
//! makes meaningful at entry: the argument registers x0–x7, the indirect-result register x8,
//! the frame pointer, the caller's return address and where execution continues. It is also
//! the static trampolines' whole frame (112 bytes, a multiple of 16 so SP stays 16-aligned),
//! and its two frame records are real ones: `{link, pc}` is the trampoline's, `{fp, lr}` the
//! call site's, so saving the state and linking the records are the same stores.
//!
//! ```text
//!   0   link            the trampoline's frame record: { &fp (the call-site record), pc }
//!   8   pc              where the trampoline continues: the function body (func + 8)
//!  16   x0 .. x8        arguments (x0 is also where a return value goes)
//!  88   direct_tramp    reserved for direct calls reached through ops
//!  96   fp              the call site's frame record: { the caller's x29,
//! 104   lr                the caller's return address (parent ip), arrived in x9 }
//! 112                   the stack pointer at the function's entry ([`FtraceRegs::sp`])
//! ```
//!
//! Only the argument registers the traced function's signature uses are saved (the site's
//! `ArgRegs`, see `trace::trampoline`): `x[n]` for a register the function does not receive
//! an argument in, and `x[8]` for a function that does not return through memory, hold
//! unspecified values, and changing them changes nothing. `x[0]` and `x[1]` are always
//! restored, so [`FtraceRegs::override_return`] works for every function.

/// Register state at a traced function's entry. Changing it changes what runs next.
///
/// Only the static trampolines create one (in their own frame, which [`FtraceRegs::sp`] relies
/// on), so it is neither `Clone` nor `Default`.
#[repr(C, align(16))]
#[derive(Debug)]
pub struct FtraceRegs {
    /// The trampoline's frame record's link (the address of `fp`), for unwinders.
    link: u64,
    pub pc: u64,
    pub x: [u64; 9],
    pub direct_tramp: u64,
    pub fp: u64,
    pub lr: u64,
}

/// Byte offsets used by the trampoline assembly (asserted against the struct).
pub const FREGS_LINK: usize = 0;
pub const FREGS_PC: usize = 8;
pub const FREGS_X0: usize = 16;
pub const FREGS_DIRECT_TRAMP: usize = 88;
pub const FREGS_FP: usize = 96;
pub const FREGS_LR: usize = 104;
pub const FREGS_SIZE: usize = 112;

const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(offset_of!(FtraceRegs, link) == FREGS_LINK);
    assert!(offset_of!(FtraceRegs, pc) == FREGS_PC);
    assert!(offset_of!(FtraceRegs, x) == FREGS_X0);
    assert!(offset_of!(FtraceRegs, direct_tramp) == FREGS_DIRECT_TRAMP);
    assert!(offset_of!(FtraceRegs, fp) == FREGS_FP);
    assert!(offset_of!(FtraceRegs, lr) == FREGS_LR);
    assert!(size_of::<FtraceRegs>() == FREGS_SIZE);
    assert!(FREGS_SIZE.is_multiple_of(16));
    // Both frame records are 16-aligned pairs; the call-site record is at the top, just below
    // the entry SP, and the trampoline's at the bottom (outer records at higher addresses).
    assert!(FREGS_LINK == 0 && FREGS_PC == FREGS_LINK + 8);
    assert!(FREGS_FP.is_multiple_of(16) && FREGS_LR == FREGS_FP + 8);
    assert!(FREGS_LR + 8 == FREGS_SIZE);
};

/// Bytes from a function's address to its body (the two entry words of the patch site, after
/// the hardened build's `bti c`).
pub const SITE_ENTRY_BYTES: u64 = patchbay_pure::sites::BODY_OFFSET;

impl FtraceRegs {
    /// Argument `n` (0..=7) as passed in x`n` (unspecified if the function receives nothing in
    /// x`n`: see the module docs).
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

    /// The caller's return address — the real one also after a return hook replaced `lr` with
    /// the return trampoline's address for this call (fprobe pushes before its entry handler
    /// runs; in list mode an earlier ops may have hooked it). While a handler runs, the guard
    /// keeps every other hook off this CPU's shadow stack (an interrupt's pops its own before
    /// returning), so this call's entry is the innermost.
    pub fn parent_ip(&self) -> u64 {
        crate::unwind::innermost_return_address(self.lr)
    }

    /// The stack pointer at the function's entry (its caller's stack arguments start there):
    /// the end of the trampoline frame this record is.
    pub fn sp(&self) -> u64 {
        self as *const FtraceRegs as u64 + FREGS_SIZE as u64
    }

    /// Skip the function: return `v` straight to the caller (the basis of error injection).
    ///
    /// The call returns to `lr` as it is now: a handler that overrides and also hooks the
    /// return hooks first (then the exit runs and sees `v`). Across ops in list mode either
    /// order works: the list dispatcher sends an override made before a later ops' hook through
    /// that hook.
    pub fn override_return(&mut self, v: u64) {
        self.x[0] = v;
        self.pc = self.lr;
    }

    /// Did a handler override the function (the body will not run)?
    pub fn is_overridden(&self) -> bool {
        self.pc == self.lr
    }
}
