//! Return hooks: run an exit handler when a traced function returns.
//!
//! An entry path (an ops handler through the static trampolines, a direct entry trampoline, or a
//! BRK probe) calls [`push`] with the slot that holds the caller's return address (`regs.lr`,
//! which the trampoline restores into x30). `push` saves that address, the function's entry SP
//! and FP and the caller's per-call data on this CPU's **shadow stack**, and replaces the slot
//! with the address of the return trampoline. When the function returns there:
//!
//! ```text
//!   return trampoline: save x0-x8 (return-value registers) as RetRegs,
//!                      push a frame record { x29, return trampoline },
//!                      __patchbay_rethook_return(regs, sp, fp):
//!                          verify the top entry (SP and FP must match the entry's),
//!                          run its exit handler (recursion-guarded), which may change x0..x8,
//!                          pop it, return the real return address,
//!                      restore x0-x8, x30 = real return address, ret
//! ```
//!
//! Capacity is [`CAPACITY`] entries per CPU. A call that finds the stack full is simply not
//! return-hooked, and [`overflows`] counts it; every hooked call is paired with exactly one exit.
//! A mismatch between the top entry and the returning frame cannot be recovered (the real
//! return address would be a guess) and is a fatal error with a report.
//!
//! Unwinders see the return trampoline's address where a hooked function's return address
//! should be; [`real_return_address`] translates it back (see `unwind`).

use core::cell::UnsafeCell;

use patchbay_pure::shadow::{self, HookedCall};

use crate::percpu::{self, MAX_CPUS};

/// Shadow-stack entries per CPU.
pub const CAPACITY: usize = 32;

/// The return-value registers at the hooked function's return (x0-x7 results, x8).
#[repr(C)]
#[derive(Clone, Debug, Default)]
pub struct RetRegs {
    pub x: [u64; 9],
}

impl RetRegs {
    pub fn return_value(&self) -> u64 {
        self.x[0]
    }
    pub fn set_return_value(&mut self, v: u64) {
        self.x[0] = v;
    }
}

/// Runs when a hooked function returns: `(ip, ctx, data, regs)` — the function, the hooker's
/// context, the per-call data given to [`push`], the return registers (changeable).
pub type ExitFn = fn(ip: u64, ctx: u64, data: u64, regs: &mut RetRegs);

/// One shadow-stack entry. Plain aligned words: under strict alignment, `Option`s or padding
/// would turn every push and pop into byte-wise copies.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Entry {
    /// The real return address (the caller's).
    pub ret: u64,
    /// SP and FP at the function's entry: they are back to these values when it returns.
    pub sp: u64,
    pub fp: u64,
    pub ip: u64,
    pub exit: ExitFn,
    pub ctx: u64,
    pub data: u64,
}

impl HookedCall for Entry {
    fn return_address(&self) -> u64 {
        self.ret
    }
}

fn no_exit(_: u64, _: u64, _: u64, _: &mut RetRegs) {}

const EMPTY: Entry = Entry {
    ret: 0,
    sp: 0,
    fp: 0,
    ip: 0,
    exit: no_exit,
    ctx: 0,
    data: 0,
};

/// One CPU's shadow stack and its counters (`patchbay_pure::shadow`; plain fields: only that
/// CPU touches them).
type ShadowStack = shadow::ShadowStack<Entry, CAPACITY>;

struct PerCpuStacks([UnsafeCell<ShadowStack>; MAX_CPUS]);
// SAFETY: each CPU only touches its own stack (indexed by its CPU id), and tracing never runs in
// interrupt context, so there is no concurrent access to one stack.
unsafe impl Sync for PerCpuStacks {}

static STACKS: PerCpuStacks =
    PerCpuStacks([const { UnsafeCell::new(ShadowStack::new(EMPTY)) }; MAX_CPUS]);

fn stack_of(cpu: usize) -> *mut ShadowStack {
    STACKS.0[cpu].get()
}

#[inline(always)]
fn this_stack() -> *mut ShadowStack {
    stack_of(percpu::this().id as usize)
}

/// Hook the return of the function `ip` whose caller's return address is in `*ret_slot`.
/// Returns false (and counts an overflow) if this CPU's shadow stack is full.
#[inline]
pub fn push(
    ret_slot: &mut u64,
    sp: u64,
    fp: u64,
    ip: u64,
    exit: ExitFn,
    ctx: u64,
    data: u64,
) -> bool {
    // SAFETY: this CPU's own stack (see `PerCpuStacks`); no other reference to it is live.
    let s = unsafe { &mut *this_stack() };
    // Field by field: a whole-struct store becomes a memcpy call under strict alignment.
    let hooked = s.push_with(|e| {
        e.ret = *ret_slot;
        e.sp = sp;
        e.fp = fp;
        e.ip = ip;
        e.exit = exit;
        e.ctx = ctx;
        e.data = data;
    });
    if hooked {
        *ret_slot = trampoline();
    }
    hooked
}

fn sum(f: impl Fn(&ShadowStack) -> u64) -> u64 {
    // SAFETY: reads of counters; a torn read is impossible for aligned u64, and only this CPU
    // writes while tracing (tests and reports read when nothing is in flight).
    (0..MAX_CPUS).map(|c| f(unsafe { &*stack_of(c) })).sum()
}

impl super::FtraceRegs {
    /// Hook the return of the traced function `ip` from an ops handler: the caller's return
    /// address is `lr`, which the trampoline restores into x30 (see [`push`]).
    pub fn hook_return(&mut self, ip: u64, exit: ExitFn, ctx: u64, data: u64) -> bool {
        let (sp, fp) = (self.sp, self.fp);
        push(&mut self.lr, sp, fp, ip, exit, ctx, data)
    }
}

/// Calls that could not be hooked because the shadow stack was full.
pub fn overflows() -> u64 {
    sum(ShadowStack::overflows)
}

/// Calls hooked / exits run so far (equal whenever no hooked call is in flight).
pub fn counts() -> (u64, u64) {
    (sum(ShadowStack::hooked), sum(ShadowStack::returned))
}

/// Entries on this CPU's shadow stack (0 when no hooked call is in flight).
pub fn depth() -> usize {
    // SAFETY: this CPU's own stack.
    unsafe { (*this_stack()).depth() }
}

/// The real return address behind the `n`-th return-trampoline address met while unwinding
/// this CPU's stack from the innermost frame outwards (n = 0 is the innermost).
pub fn real_return_address(n: usize) -> Option<u64> {
    // SAFETY: this CPU's own stack.
    unsafe { (*this_stack()).return_address(n) }
}

/// Called by the return trampoline.
#[unsafe(no_mangle)]
extern "C" fn __patchbay_rethook_return(regs: &mut RetRegs, sp: u64, fp: u64) -> u64 {
    let s = this_stack();
    // SAFETY: this CPU's own stack; the reference ends before the exit handler runs.
    let top = unsafe {
        let Some(top) = (*s).top() else {
            panic!(
                "rethook: a return reached the return trampoline with an empty shadow stack (sp {sp:#x})"
            );
        };
        top
    };
    // Field by field (see `push`).
    let e = Entry {
        ret: top.ret,
        sp: top.sp,
        fp: top.fp,
        ip: top.ip,
        exit: top.exit,
        ctx: top.ctx,
        data: top.data,
    };
    if e.sp != sp || e.fp != fp {
        panic!(
            "rethook: the returning frame (sp {sp:#x}, fp {fp:#x}) is not the top shadow-stack entry (sp {:#x}, fp {:#x}, function {:#x}); the real return address is unknown",
            e.sp, e.fp, e.ip
        );
    }
    // The exit handler runs under the same recursion guard as entry handlers; the entry stays on
    // the shadow stack while it runs, so unwinding from inside it still translates.
    super::recursion::guarded(|| (e.exit)(e.ip, e.ctx, e.data, regs));
    // SAFETY: as above; the exit handler's own hooks (none: it runs guarded) are balanced.
    unsafe { (*s).pop() };
    e.ret
}

core::arch::global_asm!(
    ".section .text.patchbay_rethook, \"ax\"",
    ".balign 8",
    ".global __patchbay_rethook_trampoline",
    ".type __patchbay_rethook_trampoline, %function",
    "__patchbay_rethook_trampoline:",
    // Entered by the hooked function's `ret`: x0-x8 hold its results, sp and x29 are the
    // caller's again. Save the result registers (RetRegs, 72 bytes) in an 80-byte area plus a
    // frame record { x29, this address }, so unwinders see the caller's frames.
    "    sub  sp, sp, #96",
    "    stp  x0, x1, [sp, #0]",
    "    stp  x2, x3, [sp, #16]",
    "    stp  x4, x5, [sp, #32]",
    "    stp  x6, x7, [sp, #48]",
    "    str  x8, [sp, #64]",
    "    adr  x9, __patchbay_rethook_trampoline",
    "    stp  x29, x9, [sp, #80]",
    "    mov  x2, x29",
    "    add  x29, sp, #80",
    // __patchbay_rethook_return(regs, sp at return, fp at return) -> real return address
    "    mov  x0, sp",
    "    add  x1, sp, #96",
    "    bl   __patchbay_rethook_return",
    "    mov  x30, x0",
    "    ldp  x0, x1, [sp, #0]",
    "    ldp  x2, x3, [sp, #16]",
    "    ldp  x4, x5, [sp, #32]",
    "    ldp  x6, x7, [sp, #48]",
    "    ldr  x8, [sp, #64]",
    "    ldr  x29, [sp, #80]",
    "    add  sp, sp, #96",
    "    ret",
    "__patchbay_rethook_trampoline_end:",
    ".size __patchbay_rethook_trampoline, . - __patchbay_rethook_trampoline",
);

unsafe extern "C" {
    fn __patchbay_rethook_trampoline();
    static __patchbay_rethook_trampoline_end: u8;
}

/// Is `pc` inside the return trampoline?
pub fn trampoline_contains(pc: u64) -> bool {
    (trampoline()..(&raw const __patchbay_rethook_trampoline_end) as u64).contains(&pc)
}

/// The return trampoline's address.
pub fn trampoline() -> u64 {
    __patchbay_rethook_trampoline as *const () as u64
}
