//! The static ftrace trampolines, reached by `bl` from an armed patch site:
//!
//! ```text
//!   caller:  bl func                    x30 = return address in the caller
//!   func:    mov x9, x30                x9  = caller's return address (parent ip)
//!            bl  trampoline             x30 = func + 8 (the body)
//! ```
//!
//! Each saves an [`FtraceRegs`](super::regs::FtraceRegs), which is at the same time two frame
//! records (one for the call site, one for the trampoline, so an unwinder walks
//! handler → trampoline → traced function → caller), calls a dispatcher with
//! `(ip, parent_ip, ops, regs)`, restores, and continues at `regs.pc` (the body, or the caller if
//! a handler overrode the function) with x30 = `regs.lr` (the caller's return address).
//!
//! - [`list_callers`]: "list" mode (Linux before CALL_OPS): every registered ops whose filter
//!   selects the function runs. The common case — one ops keyed to this function, none with a
//!   wider filter — is found and called in the trampoline itself; anything else is left to the
//!   list dispatcher (`ops::list_func`).
//! - [`ops_callers`]: "call-ops" mode (Linux v6.3 CALL_OPS): loads the site's literal, the one
//!   ops that owns the site (or the list ops when several do), and calls its `func` — no walk.
//! - [`direct_caller`]: call-ops plus direct calls (Linux v6.4): if the literal's ops has a
//!   `direct_call`, tail-call it at once (`br x17`, 4 instructions); otherwise run the ops and,
//!   if one of them set `regs.direct_tramp`, hand over to that direct trampoline afterwards
//!   ("direct after other tracers"). Only sites with a direct attachment use it, so list and
//!   call-ops sites do not pay for the check.
//!
//! # Arity-aware variants
//!
//! The list and call-ops trampolines come in `patchbay_pure::siteplan::CALLER_VARIANTS`
//! variants: variant `pairs * 2 + x8` saves `pairs` pairs of argument registers (x0/x1 .. x6/x7)
//! and x8 if `x8` is set. The site planner sends each site to the smallest variant that saves
//! every register its signature may use (`caller_variant` of the site's `ArgRegs`, which
//! `#[patchable]` computes; an unknown signature means x0–x8). A handler may clobber x0–x17,
//! so the registers a function receives nothing in are dead at its entry and need no saving;
//! x0 and x1 are restored by every variant, because they carry the result when a handler
//! overrides the function. The leaf's trampoline saves no argument register at all; the
//! registers a variant does not save read as unspecified values in `FtraceRegs::x`. The
//! direct caller's slow path (any ops, then maybe a direct trampoline) saves x0–x8.
//!
//! Frame while the dispatcher runs (grows down; it is the `FtraceRegs`):
//!
//! ```text
//!   sp + 112  the traced function's entry SP (regs.sp())
//!   sp +  96  frame record for the call site: { caller's x29, x9 (parent ip) }  = regs.fp, lr
//!   sp +  16  x0..x8 (the variant's), direct_tramp
//!   sp +   0  frame record for the trampoline: { sp + 96, x30 (func + 8) }      = regs.link, pc
//!                                                                            <- x29, x3
//! ```
//!
//! Per traced call the call-ops leaf executes 20 instructions here: 4 for the two records (two
//! pre-indexed pairs and two `mov x29, sp`), 3 for the dispatcher's other arguments, 6 for the
//! recursion guard, 3 for the call, 4 to restore (x29/x30, x0/x1, and pc with the `add sp` as
//! one post-indexed pair, then `ret`); every saved pair adds a store and a load.
//!
//! x9–x17 are scratch at a function's entry (AAPCS64), so the trampoline may use them freely;
//! the saved argument registers and x29 are restored from the record (a handler may have
//! changed them).

use patchbay_pure::siteplan::CALLER_VARIANTS;

use super::{
    ops::{LIST, LIST_OPS, OPS_DIRECT_CALL, SNAPSHOT_KEYED, SNAPSHOT_WIDE, list_func},
    recursion::{DEPTH_OFFSET, RECURSIONS_OFFSET, guard_enter, guard_exit, guard_refused},
    regs::{
        FREGS_DIRECT_TRAMP, FREGS_FP, FREGS_LINK, FREGS_LR, FREGS_PC, FREGS_SIZE, FREGS_X0,
        SITE_ENTRY_BYTES,
    },
};

core::arch::global_asm!(
    // Save the entry state as FtraceRegs: the call-site record first (pre-indexed: the only
    // `sub sp` is in the two records' stores), then the trampoline's, then `\pairs` pairs of
    // argument registers and x8 if `\x8`; load the dispatcher's arguments except `ops` (x2).
    ".macro PB_FTRACE_SAVE pairs, x8",
    "    stp  x29, x9, [sp, #-16]!",
    "    mov  x29, sp",
    "    stp  x29, x30, [sp, #-({size} - 16)]!",
    "    mov  x29, sp",
    ".if \\pairs >= 1",
    "    stp  x0, x1, [sp, #{x0}]",
    ".endif",
    ".if \\pairs >= 2",
    "    stp  x2, x3, [sp, #{x2}]",
    ".endif",
    ".if \\pairs >= 3",
    "    stp  x4, x5, [sp, #{x4}]",
    ".endif",
    ".if \\pairs >= 4",
    "    stp  x6, x7, [sp, #{x6}]",
    ".endif",
    ".if \\x8",
    "    str  x8, [sp, #{x8}]",
    ".endif",
    // Dispatcher arguments: ip = the function (x30 - 8, or - 12 after the hardened build's
    // `bti c`), parent ip, regs.
    "    sub  x0, x30, #{body}",
    "    mov  x1, x9",
    "    mov  x3, sp",
    ".endm",
    // Restore what the variant saved, and always x0/x1 (the result, if a handler overrode the
    // function); continue at regs.pc with x30 = regs.lr. The `add sp` rides on the load of pc
    // (post-indexed, with the trampoline record's link, which is not needed).
    ".macro PB_FTRACE_RESTORE pairs, x8",
    ".if \\pairs >= 2",
    "    ldp  x2, x3, [sp, #{x2}]",
    ".endif",
    ".if \\pairs >= 3",
    "    ldp  x4, x5, [sp, #{x4}]",
    ".endif",
    ".if \\pairs >= 4",
    "    ldp  x6, x7, [sp, #{x6}]",
    ".endif",
    ".if \\x8",
    "    ldr  x8, [sp, #{x8}]",
    ".endif",
    "    ldp  x29, x30, [sp, #{fp}]",
    "    ldp  x0, x1, [sp, #{x0}]",
    "    ldp  x17, x9, [sp], #{size}",
    "    ret  x9",
    ".endm",
    "",
    ".macro PB_FTRACE_LIST_CALLER pairs, x8",
    ".balign 8",
    ".type __patchbay_ftrace_list_caller_\\pairs\\()_\\x8, %function",
    "__patchbay_ftrace_list_caller_\\pairs\\()_\\x8:",
    "    PB_FTRACE_SAVE \\pairs, \\x8",
    guard_enter!("2f"),
    // The common case in assembly: no wide ops, and exactly one ops keyed to this function
    // (x0 = ip). Scan the sorted keys (ops.rs, `patchbay_pure::dispatch`): one load, compare
    // and branch per ops passed over; the sentinel (key u64::MAX) ends the scan.
    "    adrp x12, {list}",
    "    ldr  x12, [x12, :lo12:{list}]",
    "    cbz  x12, 5f",
    "    ldp  x13, x14, [x12, #{snap_wide}]",
    "    cbnz x13, 3f",
    "4:  ldr  x15, [x14], #16",
    "    cmp  x15, x0",
    "    b.lo 4b",
    "    b.ne 5f",
    // A second ops for this function: the walker runs them all, in order.
    "    ldr  x15, [x14]",
    "    cmp  x15, x0",
    "    b.eq 3f",
    "    ldur x2, [x14, #-8]",
    "    ldr  x4, [x2]",
    "    blr  x4",
    "5:",
    guard_exit!(),
    "1:  PB_FTRACE_RESTORE \\pairs, \\x8",
    // Out of line, so the common path takes no branch: a handler is already running here.
    "2:",
    guard_refused!("1b"),
    // Wide ops, or several for this function: the Rust walker (`list_func`).
    "3:  adrp x2, {list_ops}",
    "    add  x2, x2, :lo12:{list_ops}",
    "    bl   {list_func}",
    "    b    5b",
    ".size __patchbay_ftrace_list_caller_\\pairs\\()_\\x8, . - __patchbay_ftrace_list_caller_\\pairs\\()_\\x8",
    ".endm",
    "",
    ".macro PB_FTRACE_OPS_CALLER pairs, x8",
    ".balign 8",
    ".type __patchbay_ftrace_ops_caller_\\pairs\\()_\\x8, %function",
    "__patchbay_ftrace_ops_caller_\\pairs\\()_\\x8:",
    "    PB_FTRACE_SAVE \\pairs, \\x8",
    guard_enter!("2f"),
    // x30 = func + 8 (+ 4 hardened) and func is 8-aligned, so the literal (func - 8) is at
    // x30 - 16 (- 20 hardened: the assembler picks `ldur`, still one instruction).
    "    ldr  x2, [x30, #-{literal}]",
    // ops->func is at offset 0 of Ops: the handler itself, the list walker, or a nop.
    "    ldr  x4, [x2]",
    "    blr  x4",
    guard_exit!(),
    "1:  PB_FTRACE_RESTORE \\pairs, \\x8",
    "2:",
    guard_refused!("1b"),
    ".size __patchbay_ftrace_ops_caller_\\pairs\\()_\\x8, . - __patchbay_ftrace_ops_caller_\\pairs\\()_\\x8",
    ".endm",
    "",
    ".section .text.patchbay_ftrace, \"ax\"",
    ".balign 8",
    ".global __patchbay_ftrace_start",
    "__patchbay_ftrace_start:",
    // Variant `pairs * 2 + x8` of each (patchbay_pure::siteplan::caller_variant).
    "    PB_FTRACE_LIST_CALLER 0, 0",
    "    PB_FTRACE_OPS_CALLER 0, 0",
    "    PB_FTRACE_LIST_CALLER 0, 1",
    "    PB_FTRACE_OPS_CALLER 0, 1",
    "    PB_FTRACE_LIST_CALLER 1, 0",
    "    PB_FTRACE_OPS_CALLER 1, 0",
    "    PB_FTRACE_LIST_CALLER 1, 1",
    "    PB_FTRACE_OPS_CALLER 1, 1",
    "    PB_FTRACE_LIST_CALLER 2, 0",
    "    PB_FTRACE_OPS_CALLER 2, 0",
    "    PB_FTRACE_LIST_CALLER 2, 1",
    "    PB_FTRACE_OPS_CALLER 2, 1",
    "    PB_FTRACE_LIST_CALLER 3, 0",
    "    PB_FTRACE_OPS_CALLER 3, 0",
    "    PB_FTRACE_LIST_CALLER 3, 1",
    "    PB_FTRACE_OPS_CALLER 3, 1",
    "    PB_FTRACE_LIST_CALLER 4, 0",
    "    PB_FTRACE_OPS_CALLER 4, 0",
    "    PB_FTRACE_LIST_CALLER 4, 1",
    "    PB_FTRACE_OPS_CALLER 4, 1",
    "",
    ".balign 8",
    ".global __patchbay_ftrace_direct_caller",
    ".type __patchbay_ftrace_direct_caller, %function",
    "__patchbay_ftrace_direct_caller:",
    // Fast path: the literal's ops has a direct trampoline -> tail-call it with x9 and x30
    // untouched, which is exactly a direct trampoline's entry contract (BR, not BLR: the
    // return-stack predictor still pairs the site's BL with the body's RET).
    "    ldr  x11, [x30, #-{literal}]",
    "    ldr  x17, [x11, #{direct_call}]",
    "    cbz  x17, 1f",
    "    br   x17",
    // Slow path: run the ops (normally the list ops), any of which may ask for a direct
    // trampoline to run afterwards by setting regs.direct_tramp. Any ops may run here, and the
    // direct trampoline gets the registers back: save x0..x8.
    "1:  PB_FTRACE_SAVE 4, 1",
    "    str  xzr, [sp, #{direct_tramp}]",
    guard_enter!("4f"),
    "    ldr  x2, [x30, #-{literal}]",
    "    ldr  x4, [x2]",
    "    blr  x4",
    guard_exit!(),
    "2:  ldr  x17, [sp, #{direct_tramp}]",
    "    cbnz x17, 3f",
    "    PB_FTRACE_RESTORE 4, 1",
    // Hand over to the direct trampoline with its entry contract: x30 = where the function
    // continues (regs.pc), x9 = the caller's return address (regs.lr).
    "3:  ldp  x2, x3, [sp, #{x2}]",
    "    ldp  x4, x5, [sp, #{x4}]",
    "    ldp  x6, x7, [sp, #{x6}]",
    "    ldr  x8, [sp, #{x8}]",
    "    ldp  x29, x9, [sp, #{fp}]",
    "    ldp  x0, x1, [sp, #{x0}]",
    "    ldp  x16, x30, [sp], #{size}",
    "    br   x17",
    "4:",
    guard_refused!("2b"),
    ".size __patchbay_ftrace_direct_caller, . - __patchbay_ftrace_direct_caller",
    ".global __patchbay_ftrace_end",
    "__patchbay_ftrace_end:",
    "",
    // The variants' addresses, list then call-ops, each in variant order.
    ".section .rodata.patchbay_ftrace_callers, \"a\"",
    ".balign 8",
    ".global __patchbay_ftrace_callers",
    "__patchbay_ftrace_callers:",
    "    .quad __patchbay_ftrace_list_caller_0_0",
    "    .quad __patchbay_ftrace_list_caller_0_1",
    "    .quad __patchbay_ftrace_list_caller_1_0",
    "    .quad __patchbay_ftrace_list_caller_1_1",
    "    .quad __patchbay_ftrace_list_caller_2_0",
    "    .quad __patchbay_ftrace_list_caller_2_1",
    "    .quad __patchbay_ftrace_list_caller_3_0",
    "    .quad __patchbay_ftrace_list_caller_3_1",
    "    .quad __patchbay_ftrace_list_caller_4_0",
    "    .quad __patchbay_ftrace_list_caller_4_1",
    "    .quad __patchbay_ftrace_ops_caller_0_0",
    "    .quad __patchbay_ftrace_ops_caller_0_1",
    "    .quad __patchbay_ftrace_ops_caller_1_0",
    "    .quad __patchbay_ftrace_ops_caller_1_1",
    "    .quad __patchbay_ftrace_ops_caller_2_0",
    "    .quad __patchbay_ftrace_ops_caller_2_1",
    "    .quad __patchbay_ftrace_ops_caller_3_0",
    "    .quad __patchbay_ftrace_ops_caller_3_1",
    "    .quad __patchbay_ftrace_ops_caller_4_0",
    "    .quad __patchbay_ftrace_ops_caller_4_1",
    // FtraceRegs.x[n] (register xn) is at FREGS_X0 + 8n.
    x0 = const FREGS_X0,
    x2 = const FREGS_X0 + 16,
    x4 = const FREGS_X0 + 32,
    x6 = const FREGS_X0 + 48,
    x8 = const FREGS_X0 + 64,
    size = const FREGS_SIZE,
    body = const SITE_ENTRY_BYTES,
    literal = const SITE_ENTRY_BYTES + 8,
    fp = const FREGS_FP,
    direct_call = const OPS_DIRECT_CALL,
    direct_tramp = const FREGS_DIRECT_TRAMP,
    depth = const DEPTH_OFFSET,
    recursions = const RECURSIONS_OFFSET,
    list_ops = sym LIST_OPS,
    list = sym LIST,
    snap_wide = const SNAPSHOT_WIDE,
    list_func = sym list_func,
);

// The records and pairs the macros store and load together must be where they expect.
const _: () = {
    // The trampoline record is { link, pc } at sp + 0 (stored pre-indexed, loaded
    // post-indexed), the call-site record { fp, lr } at the top of the frame.
    assert!(FREGS_LINK == 0 && FREGS_PC == 8);
    assert!(FREGS_LR == FREGS_FP + 8 && FREGS_LR + 8 == FREGS_SIZE);
    // x8 and direct_tramp are the last argument slots; x0 starts a 16-aligned pair.
    assert!(FREGS_X0.is_multiple_of(16) && FREGS_X0 + 72 == FREGS_DIRECT_TRAMP);
    // The list trampoline loads the snapshot's wide count and keyed entries as one pair.
    assert!(SNAPSHOT_KEYED == SNAPSHOT_WIDE + 8);
};

unsafe extern "C" {
    fn __patchbay_ftrace_direct_caller();
    static __patchbay_ftrace_start: u8;
    static __patchbay_ftrace_end: u8;
    /// The list trampolines' addresses, then the call-ops ones, each in variant order.
    static __patchbay_ftrace_callers: [[u64; CALLER_VARIANTS]; 2];
}

/// The list-mode trampolines, by variant (`patchbay_pure::siteplan::caller_variant`).
pub fn list_callers() -> [u64; CALLER_VARIANTS] {
    // SAFETY: an immutable table the assembly above defines, with exactly this type's shape
    // (two kinds, CALLER_VARIANTS variants each).
    unsafe { __patchbay_ftrace_callers[0] }
}

/// The call-ops trampolines, by variant (`patchbay_pure::siteplan::caller_variant`).
pub fn ops_callers() -> [u64; CALLER_VARIANTS] {
    // SAFETY: as in `list_callers`.
    unsafe { __patchbay_ftrace_callers[1] }
}

/// Address of the direct-capable trampoline (sites with a direct attachment reached through
/// ops, alone or beside other ops).
pub fn direct_caller() -> u64 {
    __patchbay_ftrace_direct_caller as *const () as u64
}

/// Is `pc` inside one of the static trampolines (for unwinders and crash reports)?
pub fn contains(pc: u64) -> bool {
    let start = (&raw const __patchbay_ftrace_start) as u64;
    let end = (&raw const __patchbay_ftrace_end) as u64;
    (start..end).contains(&pc)
}
