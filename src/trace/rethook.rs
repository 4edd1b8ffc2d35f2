//! Return hooks: run an exit handler when a traced function returns.
//!
//! An entry path (an ops handler through the static trampolines, a direct entry trampoline, or a
//! BRK probe) calls [`push`] with the slot that holds the caller's return address (`regs.lr`,
//! which the trampoline restores into x30). `push` saves that address, the function's entry SP
//! and FP and the caller's per-call data on this CPU's **shadow stack**, and replaces the slot
//! with the address of the return trampoline. When the function returns there:
//!
//! ```text
//!   return trampoline (assembly, no Rust call but the exit handler's):
//!       save x0-x8 as RetRegs (x0/x1 carry results; the rest for handlers that look),
//!       push a frame record { x29, return trampoline },
//!       top = this CPU's shadow stack's top entry
//!       verify it: SP and FP must be back at the entry's values   (else: report, fatal)
//!       under the recursion guard: exit(ip, ctx, data, &mut regs) (may change x0..x8)
//!       x30 = top.ret; pop; restore x0-x8; ret
//! ```
//!
//! The entry stays on the shadow stack while its exit handler runs, so unwinding from inside
//! the handler still translates the return-trampoline address.
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

/// log2 of the entry size (the return trampoline scales the depth by it).
const ENTRY_SHIFT: usize = 6;

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
    assert!(offset_of!(crate::percpu::PerCpu, id) == 0);
};

impl HookedCall for Entry {
    fn return_address(&self) -> u64 {
        self.ret
    }
}

fn no_exit(_: u64, _: u64, _: u64, _: &mut RetRegs) {}

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
type ShadowStack = shadow::ShadowStack<Entry, CAPACITY>;

#[repr(C)]
struct PerCpuStacks([UnsafeCell<ShadowStack>; MAX_CPUS]);
// SAFETY: each CPU only touches its own stack (indexed by its CPU id), and tracing never runs in
// interrupt context, so there is no concurrent access to one stack.
unsafe impl Sync for PerCpuStacks {}

static STACKS: PerCpuStacks =
    PerCpuStacks([const { UnsafeCell::new(ShadowStack::new(EMPTY)) }; MAX_CPUS]);

fn stack_of(cpu: usize) -> *mut ShadowStack {
    STACKS.0[cpu].get()
}

/// Bytes from one CPU's shadow stack to the next (the return trampoline indexes by CPU id).
const STACK_STRIDE: usize = core::mem::size_of::<UnsafeCell<ShadowStack>>();

#[inline(always)]
fn this_stack() -> *mut ShadowStack {
    stack_of(percpu::this().id as usize)
}

/// [`this_stack`] for the hook path, without its checks: `push` runs only from tracing, which
/// exists only after `percpu::init` (`init.rs` runs it before `patch::init`, so no site can be
/// armed earlier) pointed TPIDR_EL1 at this CPU's `PerCpu`, whose `id` is below `MAX_CPUS`.
#[inline(always)]
fn hook_stack() -> *mut ShadowStack {
    let p = crate::read_sysreg!(tpidr_el1) as *const percpu::PerCpu;
    // SAFETY: as above, `p` is the address of an element of the static `percpu::CPUS`.
    let id = unsafe { (*p).id } as usize;
    // SAFETY: `id < MAX_CPUS` (the ids `percpu::CPUS` is built with).
    unsafe { STACKS.0.get_unchecked(id).get() }
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
    let s = unsafe { &mut *hook_stack() };
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

/// Runs the exit handler for the return trampoline: `exit` is a Rust `fn`, whose calling
/// convention assembly must not assume, so the trampoline calls it through this `extern "C"`
/// shim (compiled to a single tail branch).
extern "C" fn call_exit(ip: u64, ctx: u64, data: u64, regs: &mut RetRegs, exit: *const ()) {
    // SAFETY: `exit` is the `exit` field of a shadow-stack entry, which only ever holds an
    // `ExitFn` (written by `push`); the trampoline passes it unchanged.
    let exit = unsafe { core::mem::transmute::<*const (), ExitFn>(exit) };
    exit(ip, ctx, data, regs);
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
    ".section .text.patchbay_rethook, \"ax\"",
    ".balign 8",
    ".global __patchbay_rethook_trampoline",
    ".type __patchbay_rethook_trampoline, %function",
    "__patchbay_rethook_trampoline:",
    // Entered by the hooked function's `ret`: x0-x8 hold its results, sp and x29 are the
    // caller's again. Frame (112 bytes): RetRegs (x0-x8) at 0, x19 (callee-saved, holds this
    // CPU's shadow stack across the handler) at 72, a frame record { x29, this address } at 96,
    // so unwinders see the caller's frames.
    "    stp  x0, x1, [sp, #-112]!",
    "    stp  x2, x3, [sp, #16]",
    "    stp  x4, x5, [sp, #32]",
    "    stp  x6, x7, [sp, #48]",
    "    stp  x8, x19, [sp, #64]",
    "    adr  x9, __patchbay_rethook_trampoline",
    "    stp  x29, x9, [sp, #96]",
    // x19 = this CPU's shadow stack (STACKS + id * stride), x12 = its top entry.
    "    mrs  x10, tpidr_el1",
    "    ldr  w11, [x10]",
    "    adrp x19, {stacks}",
    "    add  x19, x19, :lo12:{stacks}",
    "    mov  x12, #{stride}",
    "    umaddl x19, w11, w12, x19",
    "    ldr  x11, [x19]",
    "    cbz  x11, 8f",
    "    add  x12, x19, x11, lsl #{shift}",
    // The returning frame must be the one the top entry hooked: SP and FP back at its values.
    "    ldp  x13, x14, [x12, #{e_sp}]",
    "    add  x15, sp, #112",
    "    cmp  x13, x15",
    "    ccmp x14, x29, #0, eq",
    "    b.ne 8f",
    "    add  x29, sp, #96",
    // exit(ip, ctx, data, regs) under the recursion guard (x10 = this CPU's PerCpu).
    guard_enter!("7f"),
    "    ldp  x0, x1, [x12, #{e_ip}]",
    "    ldp  x2, x4, [x12, #{e_data}]",
    "    mov  x3, sp",
    "    bl   {call_exit}",
    guard_exit!(),
    // Pop: x30 = the real return address, depth - 1 (the handler pushed nothing: it ran under
    // the guard, which refuses hooks).
    "6:  ldr  x11, [x19]",
    "    add  x12, x19, x11, lsl #{shift}",
    "    ldr  x30, [x12, #{e_ret}]",
    "    sub  x11, x11, #1",
    "    str  x11, [x19]",
    "    ldp  x2, x3, [sp, #16]",
    "    ldp  x4, x5, [sp, #32]",
    "    ldp  x6, x7, [sp, #48]",
    "    ldp  x8, x19, [sp, #64]",
    "    ldr  x29, [sp, #96]",
    "    ldp  x0, x1, [sp], #112",
    "    ret",
    // A handler already runs on this CPU: count it, skip the exit handler, still pop.
    "7:",
    guard_refused!("6b"),
    // No entry, or not this frame's: report (never returns). x29 is still the caller's FP.
    "8:  add  x0, sp, #112",
    "    mov  x1, x29",
    "    bl   {bad_return}",
    "__patchbay_rethook_trampoline_end:",
    ".size __patchbay_rethook_trampoline, . - __patchbay_rethook_trampoline",
    stacks = sym STACKS,
    stride = const STACK_STRIDE,
    shift = const ENTRY_SHIFT,
    e_sp = const core::mem::offset_of!(Entry, sp),
    e_ip = const core::mem::offset_of!(Entry, ip),
    e_data = const core::mem::offset_of!(Entry, data),
    e_ret = const core::mem::offset_of!(Entry, ret),
    depth = const DEPTH_OFFSET,
    recursions = const RECURSIONS_OFFSET,
    call_exit = sym call_exit,
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
