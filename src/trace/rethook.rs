//! Return hooks: run an exit handler when a traced function returns.
//!
//! An entry path (an ops handler through the static trampolines, a direct entry trampoline, or a
//! BRK probe) calls [`push`] with the slot that holds the caller's return address (`regs.lr`,
//! which the trampoline restores into x30). `push` saves that address, the function's entry SP
//! and FP and the caller's per-call data on this CPU's **shadow stack**, and replaces the slot
//! with the address of the return trampoline. (fprobe's entry path does the same push in
//! assembly, reserving before it fills just as [`push`] does: `trace::fprobe`.) When the
//! function returns there:
//!
//! ```text
//!   return trampoline (assembly, no Rust call but the exit handler's):
//!       take the recursion guard (if a handler already runs: verify, pop, return)
//!       top = this CPU's shadow stack's top entry (PerCpu.shadow_stack: one load)
//!       verify it: SP and FP must be back at the entry's values   (else: report, fatal;
//!                  an empty stack fails this check too)
//!       x30 = top.ret; pop
//!       save x0/x1 as RetRegs (the result registers),
//!       push a frame record { x29, x30: the real return address },
//!       exit(ip, ctx, data, &mut regs) (may change x0/x1); release the guard
//!       restore x0/x1, x29, x30; ret
//! ```
//!
//! Only x0 and x1 are saved and restored around the exit handler: AAPCS64 returns every
//! general-register result in them (a 128-bit integer or a 16-byte aggregate in both; anything
//! larger through memory at x8, which the callee need not preserve), and x2–x17 are
//! caller-saved, so the caller reads nothing else after the call. `RetRegs::x[2..]` hold
//! unspecified values. (Linux's return handlers save x0–x7; that buys nothing a caller can
//! see.) The exit handler is an `extern "C" fn`, called straight from the trampoline with no
//! shim, like an ops' handler.
//!
//! The entry is popped before its exit handler runs (the handler's arguments are loaded
//! first), and the trampoline's frame record holds the real return address, so unwinding from
//! inside the handler reaches the caller without a translation; the frames further out that
//! hold the return trampoline's address are translated by the entries still on the stack.
//!
//! Capacity is [`CAPACITY`] entries per CPU. A call that finds the stack full is simply not
//! return-hooked, and [`overflows`] counts it; every hooked call is paired with exactly one exit.
//! A mismatch between the top entry and the returning frame cannot be recovered (the real
//! return address would be a guess) and is a fatal error with a report.
//!
//! Unwinders see the return trampoline's address where a hooked function's return address
//! should be; [`real_return_address`] translates it back (see `unwind`).
//!
//! In the hardened build (`pac-ret`) nothing here signs or authenticates: every entry path runs
//! at the patch site (or the BRK on its entry NOP), before the body's `paciasp`, so the slot
//! holds the caller's *unsigned* return address, and the hooked function signs the return
//! trampoline's address in its own prologue and authenticates it in its own epilogue. The
//! trampoline returns to the saved, unsigned address with `ret`, which no caller authenticates
//! (a caller signs only its *own* return address). `patchbay_pure::harden` shows the layout;
//! tests/rethook.rs proves it on the image (`return_hooks_replace_the_unsigned_return_address`).

use core::cell::UnsafeCell;

use patchbay_pure::shadow::{self, HookedCall};

use super::recursion::{DEPTH_OFFSET, RECURSIONS_OFFSET, guard_enter, guard_exit, guard_refused};
use crate::percpu::{self, MAX_CPUS};

/// Shadow-stack entries per CPU.
pub const CAPACITY: usize = 32;

/// The return-value registers at the hooked function's return: `x[0]` and `x[1]` carry the
/// result (see the module docs); the other words are unspecified.
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
///
/// `extern "C"` because the return trampoline calls it directly, with no Rust shim in between.
pub type ExitFn = extern "C" fn(ip: u64, ctx: u64, data: u64, regs: &mut RetRegs);

/// One shadow-stack entry. Plain aligned words: under strict alignment, `Option`s or padding
/// would turn every push and pop into byte-wise copies. Ordered for the return trampoline's
/// paired loads (`sp, fp`; `ip, ctx`; `data, exit`) and 64 bytes, so entry `i` is `i << 6` from
/// entry 0.
#[repr(C, align(64))]
#[derive(Clone, Copy)]
pub struct Entry {
    /// SP and FP at the function's entry: they are back to these values when it returns.
    pub sp: u64,
    pub fp: u64,
    pub ip: u64,
    pub ctx: u64,
    pub data: u64,
    pub exit: ExitFn,
    /// The real return address (the caller's).
    pub ret: u64,
}

/// log2 of the entry size (the return trampoline and fprobe's entry path scale the depth by
/// it).
pub(super) const ENTRY_SHIFT: usize = 6;

/// The return trampoline's empty-stack test is its SP check: at depth 0 the "top entry" it
/// computes (`stack + depth << 6`) is the stack's header, and the word it compares with SP is
/// the header's depth — 0, which no stack pointer equals. That holds while the depth is the
/// header's first word and lines up with an entry's `sp`.
const EMPTY_FAILS_THE_SP_CHECK: bool =
    ShadowStack::DEPTH_OFFSET == 0 && core::mem::offset_of!(Entry, sp) == 0;

const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<Entry>() == 1 << ENTRY_SHIFT);
    assert!(offset_of!(Entry, fp) == offset_of!(Entry, sp) + 8);
    assert!(offset_of!(Entry, ctx) == offset_of!(Entry, ip) + 8);
    assert!(offset_of!(Entry, exit) == offset_of!(Entry, data) + 8);
    // The top entry is `stack + ENTRIES_OFFSET + (depth - 1) << 6`; with the entries 64 bytes
    // in, that is `stack + depth << 6`.
    assert!(ShadowStack::ENTRIES_OFFSET == 1 << ENTRY_SHIFT);
    assert!(ShadowStack::DEPTH_OFFSET == 0);
    assert!(EMPTY_FAILS_THE_SP_CHECK);
    // The return trampoline's frame: RetRegs below its frame record at 80.
    assert!(size_of::<RetRegs>() <= 80);
};

impl HookedCall for Entry {
    fn return_address(&self) -> u64 {
        self.ret
    }
}

extern "C" fn no_exit(_: u64, _: u64, _: u64, _: &mut RetRegs) {}

const EMPTY: Entry = Entry {
    sp: 0,
    fp: 0,
    ip: 0,
    ctx: 0,
    data: 0,
    exit: no_exit,
    ret: 0,
};

/// One CPU's shadow stack and its counters (`patchbay_pure::shadow`; plain fields: only that
/// CPU touches them).
pub(super) type ShadowStack = shadow::ShadowStack<Entry, CAPACITY>;

#[repr(C)]
struct PerCpuStacks([UnsafeCell<ShadowStack>; MAX_CPUS]);
// SAFETY: each CPU only touches its own stack (indexed by its CPU id). An interrupt's traced
// calls use it too, but nested strictly inside the interrupted code: they push above its entries
// and pop them all before it resumes (`patchbay_pure::shadow` reserves before filling, and so
// does fprobe's assembly push; see `trace::recursion`), so no two accesses to one stack ever overlap.
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

/// Tell each CPU where its shadow stack is (`PerCpu::shadow_stack`, which the hook paths load
/// instead of indexing [`STACKS`] by CPU id). Once, at boot, before any site can be armed.
pub(super) fn init() {
    for (c, cpu) in percpu::CPUS.iter().enumerate() {
        cpu.shadow_stack
            .store(stack_of(c) as u64, core::sync::atomic::Ordering::Relaxed);
    }
}

/// [`this_stack`] for the hook path, without its checks: `push` runs only from tracing, which
/// exists only after `percpu::init` (`init.rs` runs it before `patch::init`, so no site can be
/// armed earlier) pointed TPIDR_EL1 at this CPU's `PerCpu`, and after [`init`] stored this
/// CPU's shadow stack there.
#[inline(always)]
fn hook_stack() -> *mut ShadowStack {
    let p = crate::read_sysreg!(tpidr_el1) as *const percpu::PerCpu;
    // SAFETY: as above, `p` is the address of an element of the static `percpu::CPUS`. A plain
    // load: the field was written once at boot, before tracing could run.
    unsafe { (*p).shadow_stack.as_ptr().read() as *mut ShadowStack }
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
    let stack = hook_stack();
    // SAFETY: this CPU's own stack (see `PerCpuStacks`); no other reference to it is live.
    let Some(i) = (unsafe { &mut *stack }).reserve() else {
        return false;
    };
    // A compiler barrier naming the stack: the raised depth is in memory before the entry is
    // filled, so an interrupt landing in between pushes above it (`ShadowStack::reserve`). Same
    // CPU, so no hardware barrier: a CPU sees its own stores in program order.
    // SAFETY: an empty assembly block: it only makes the compiler assume that memory reachable
    // from `stack` may be read or written here.
    unsafe { core::arch::asm!("/* {0} */", in(reg) stack, options(nostack, preserves_flags)) };
    // SAFETY: as above.
    let e = unsafe { &mut *stack }.entry_mut(i);
    // Field by field: a whole-struct store becomes a memcpy call under strict alignment.
    e.ret = *ret_slot;
    e.sp = sp;
    e.fp = fp;
    e.ip = ip;
    e.exit = exit;
    e.ctx = ctx;
    e.data = data;
    *ret_slot = trampoline();
    true
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
        let (sp, fp) = (self.sp(), self.fp);
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

/// The return trampoline found no entry for the returning frame, or a different one: the real
/// return address is unknown, which cannot be recovered from.
extern "C" fn bad_return(sp: u64, fp: u64) -> ! {
    // SAFETY: this CPU's own stack; read only to report.
    let top = unsafe { (*this_stack()).top().copied() };
    match top {
        None => panic!(
            "rethook: a return reached the return trampoline with an empty shadow stack (sp {sp:#x})"
        ),
        Some(e) => panic!(
            "rethook: the returning frame (sp {sp:#x}, fp {fp:#x}) is not the top shadow-stack entry (sp {:#x}, fp {:#x}, function {:#x}); the real return address is unknown",
            e.sp, e.fp, e.ip
        ),
    }
}

core::arch::global_asm!(
    // x12 = the top entry of this CPU's shadow stack (x10 = this CPU's PerCpu), verified to be
    // the returning frame's: SP and FP back at the values it recorded at entry (else `8f`:
    // report); then pop it: x30 = the real return address, depth - 1. Clobbers x9, x11, x13,
    // x14. The entry's words stay readable until the next push.
    //
    // An empty stack needs no test of its own: with depth 0, x12 is the stack itself, whose
    // first word (the entry's `sp` slot) is the depth, 0, and no stack pointer is 0, so the SP
    // check sends it to the report (`EMPTY_FAILS_THE_SP_CHECK`).
    ".macro PB_RETHOOK_POP",
    "    ldr  x9, [x10, #{shadow}]",
    "    ldr  x11, [x9]",
    "    add  x12, x9, x11, lsl #{shift}",
    "    ldp  x13, x14, [x12, #{e_sp}]",
    "    cmp  sp, x13",
    "    ccmp x14, x29, #0, eq",
    "    b.ne 8f",
    "    ldr  x30, [x12, #{e_ret}]",
    "    sub  x11, x11, #1",
    "    str  x11, [x9]",
    ".endm",
    "",
    ".section .text.patchbay_rethook, \"ax\"",
    ".balign 8",
    ".global __patchbay_rethook_trampoline",
    ".type __patchbay_rethook_trampoline, %function",
    "__patchbay_rethook_trampoline:",
    // Entered by the hooked function's `ret`: x0/x1 hold its result, sp and x29 are the
    // caller's again. The recursion guard first: its `mrs` also finds the shadow stack.
    guard_enter!("7f"),
    "    PB_RETHOOK_POP",
    // Frame (96 bytes): RetRegs at 0 (x0/x1 saved), a frame record { x29, the real return
    // address } at 80, so unwinders see the caller.
    "    stp  x0, x1, [sp, #-96]!",
    "    stp  x29, x30, [sp, #80]",
    "    add  x29, sp, #80",
    // exit(ip, ctx, data, regs), from the popped entry (nothing can push before this: the
    // guard is taken).
    "    ldp  x0, x1, [x12, #{e_ip}]",
    "    ldp  x2, x4, [x12, #{e_data}]",
    "    mov  x3, sp",
    "    blr  x4",
    guard_exit!(),
    "    ldp  x29, x30, [sp, #80]",
    "    ldp  x0, x1, [sp], #96",
    "    ret",
    // A handler already runs on this CPU: count it, skip the exit handler, still verify and
    // pop.
    "7:",
    guard_refused!("9f"),
    "9:  PB_RETHOOK_POP",
    "    ret",
    // No entry, or not this frame's: report (never returns). sp and x29 are the caller's.
    "8:  mov  x0, sp",
    "    mov  x1, x29",
    "    bl   {bad_return}",
    "__patchbay_rethook_trampoline_end:",
    ".size __patchbay_rethook_trampoline, . - __patchbay_rethook_trampoline",
    shadow = const core::mem::offset_of!(percpu::PerCpu, shadow_stack),
    shift = const ENTRY_SHIFT,
    e_sp = const core::mem::offset_of!(Entry, sp),
    e_ip = const core::mem::offset_of!(Entry, ip),
    e_data = const core::mem::offset_of!(Entry, data),
    e_ret = const core::mem::offset_of!(Entry, ret),
    depth = const DEPTH_OFFSET,
    recursions = const RECURSIONS_OFFSET,
    bad_return = sym bad_return,
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
