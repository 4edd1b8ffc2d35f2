//! The static ftrace trampolines, reached by `bl` from an armed patch site:
//!
//! ```text
//!   caller:  bl func                    x30 = return address in the caller
//!   func:    mov x9, x30                x9  = caller's return address (parent ip)
//!            bl  trampoline             x30 = func + 8 (the body)
//! ```
//!
//! Both entry points save an [`FtraceRegs`](super::regs::FtraceRegs), build two frame records
//! (one for the call site, one for the trampoline, so an unwinder walks
//! handler → trampoline → traced function → caller), call a dispatcher with
//! `(ip, parent_ip, ops, regs)`, restore, and continue at `regs.pc` (the body, or the caller if a
//! handler overrode the function) with x30 = `regs.lr` (the caller's return address).
//!
//! - [`list_caller`]: "list" mode (Linux before CALL_OPS): every registered ops whose filter
//!   selects the function runs. The common case — one ops keyed to this function, none with a
//!   wider filter — is found and called in the trampoline itself; anything else is left to the
//!   list dispatcher (`ops::list_func`).
//! - [`ops_caller`]: "call-ops" mode (Linux v6.3 CALL_OPS): loads the site's literal, the one ops
//!   that owns the site (or the list ops when several do), and calls its `func` — no walk.
//! - [`direct_caller`]: call-ops plus direct calls (Linux v6.4): if the literal's ops has a
//!   `direct_call`, tail-call it at once (`br x17`, 4 instructions); otherwise run the ops and,
//!   if one of them set `regs.direct_tramp`, hand over to that direct trampoline afterwards
//!   ("direct after other tracers"). Only sites with a direct attachment use it, so list and
//!   call-ops sites do not pay for the check.
//!
//! Stack layout while the dispatcher runs (grows down):
//!
//! ```text
//!   sp + 144  the traced function's entry SP (regs.sp)
//!   sp + 128  frame record for the call site: { caller's x29, x9 (parent ip) }
//!   sp + 112  frame record for the trampoline: { &record above, x30 (func + 8) }  <- x29
//!   sp +   0  FtraceRegs (112 bytes)                                             <- x3
//! ```
//!
//! x9–x17 are scratch at a function's entry (AAPCS64), so the trampoline may use them freely;
//! x0–x8 and x29 are restored from the record (a handler may have changed them).

use super::{
    ops::{LIST, LIST_OPS, OPS_DIRECT_CALL, SNAPSHOT_KEYED, SNAPSHOT_WIDE, list_func},
    recursion::{DEPTH_OFFSET, RECURSIONS_OFFSET, guard_enter, guard_exit, guard_refused},
    regs::{
        FREGS_DIRECT_TRAMP, FREGS_FP, FREGS_LR, FREGS_PC, FREGS_SIZE, FREGS_SP, FREGS_X0,
        SITE_ENTRY_BYTES,
    },
};

core::arch::global_asm!(
    // Save the entry state as FtraceRegs, link two frame records, load the dispatcher's
    // arguments except `ops` (x2). 15 instructions: the `sub sp` rides on the first store
    // (pre-indexed), and the adjacent FtraceRegs fields fp/lr and sp/pc are stored as pairs.
    ".macro PB_FTRACE_SAVE",
    // Arguments and x8.
    "    stp  x0, x1, [sp, #-({size} + 32)]!",
    "    stp  x2, x3, [sp, #{x2}]",
    "    stp  x4, x5, [sp, #{x4}]",
    "    stp  x6, x7, [sp, #{x6}]",
    "    str  x8, [sp, #{x8}]",
    // The call site's FP and LR (parent ip, in x9), its entry SP and where to continue (x30).
    "    stp  x29, x9, [sp, #{fp}]",
    "    add  x10, sp, #({size} + 32)",
    "    stp  x10, x30, [sp, #{sp_off}]",
    // Frame record for the call site (as if the traced function had pushed one), then ours.
    "    stp  x29, x9, [sp, #({size} + 16)]",
    "    add  x29, sp, #({size} + 16)",
    "    stp  x29, x30, [sp, #{size}]",
    "    add  x29, sp, #{size}",
    // Dispatcher arguments: ip = the function (x30 - 8, or - 12 after the hardened build's
    // `bti c`), parent ip, regs.
    "    sub  x0, x30, #{body}",
    "    mov  x1, x9",
    "    mov  x3, sp",
    ".endm",
    // Restore from FtraceRegs and continue at regs.pc with x30 = regs.lr. 8 instructions: the
    // `add sp` rides on the last load (post-indexed), fp/lr come back as a pair.
    ".macro PB_FTRACE_RESTORE",
    "    ldp  x2, x3, [sp, #{x2}]",
    "    ldp  x4, x5, [sp, #{x4}]",
    "    ldp  x6, x7, [sp, #{x6}]",
    "    ldr  x8, [sp, #{x8}]",
    "    ldp  x29, x30, [sp, #{fp}]",
    "    ldr  x9, [sp, #{pc}]",
    "    ldp  x0, x1, [sp], #({size} + 32)",
    "    ret  x9",
    ".endm",
    "",
    ".section .text.patchbay_ftrace, \"ax\"",
    ".balign 8",
    ".global __patchbay_ftrace_list_caller",
    ".type __patchbay_ftrace_list_caller, %function",
    "__patchbay_ftrace_list_caller:",
    "    PB_FTRACE_SAVE",
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
    "1:  PB_FTRACE_RESTORE",
    // Out of line, so the common path takes no branch: a handler is already running here.
    "2:",
    guard_refused!("1b"),
    // Wide ops, or several for this function: the Rust walker (`list_func`).
    "3:  adrp x2, {list_ops}",
    "    add  x2, x2, :lo12:{list_ops}",
    "    bl   {list_func}",
    "    b    5b",
    "__patchbay_ftrace_list_caller_end:",
    ".size __patchbay_ftrace_list_caller, . - __patchbay_ftrace_list_caller",
    "",
    ".balign 8",
    ".global __patchbay_ftrace_ops_caller",
    ".type __patchbay_ftrace_ops_caller, %function",
    "__patchbay_ftrace_ops_caller:",
    "    PB_FTRACE_SAVE",
    guard_enter!("2f"),
    // x30 = func + 8 (+ 4 hardened) and func is 8-aligned, so the literal (func - 8) is at
    // x30 - 16 (- 20 hardened: the assembler picks `ldur`, still one instruction).
    "    ldr  x2, [x30, #-{literal}]",
    // ops->func is at offset 0 of Ops: the handler itself, the list walker, or a nop.
    "    ldr  x4, [x2]",
    "    blr  x4",
    guard_exit!(),
    "1:  PB_FTRACE_RESTORE",
    "2:",
    guard_refused!("1b"),
    "__patchbay_ftrace_ops_caller_end:",
    ".size __patchbay_ftrace_ops_caller, . - __patchbay_ftrace_ops_caller",
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
    // trampoline to run afterwards by setting regs.direct_tramp.
    "1:  PB_FTRACE_SAVE",
    "    str  xzr, [sp, #{direct_tramp}]",
    guard_enter!("4f"),
    "    ldr  x2, [x30, #-{literal}]",
    "    ldr  x4, [x2]",
    "    blr  x4",
    guard_exit!(),
    "2:  ldr  x17, [sp, #{direct_tramp}]",
    "    cbnz x17, 3f",
    "    PB_FTRACE_RESTORE",
    // Hand over to the direct trampoline with its entry contract: x30 = where the function
    // continues (regs.pc), x9 = the caller's return address (regs.lr).
    "3:  ldp  x2, x3, [sp, #{x2}]",
    "    ldp  x4, x5, [sp, #{x4}]",
    "    ldp  x6, x7, [sp, #{x6}]",
    "    ldr  x8, [sp, #{x8}]",
    "    ldp  x29, x9, [sp, #{fp}]",
    "    ldr  x30, [sp, #{pc}]",
    "    ldp  x0, x1, [sp], #({size} + 32)",
    "    br   x17",
    "4:",
    guard_refused!("2b"),
    "__patchbay_ftrace_direct_caller_end:",
    ".size __patchbay_ftrace_direct_caller, . - __patchbay_ftrace_direct_caller",
    // FtraceRegs.x[n] (register xn) is at FREGS_X0 + 8n; the first pair is at offset 0 (it is
    // stored pre-indexed and loaded post-indexed), which the const block below asserts.
    x2 = const FREGS_X0 + 16,
    x4 = const FREGS_X0 + 32,
    x6 = const FREGS_X0 + 48,
    x8 = const FREGS_X0 + 64,
    size = const FREGS_SIZE,
    body = const SITE_ENTRY_BYTES,
    literal = const SITE_ENTRY_BYTES + 8,
    fp = const FREGS_FP,
    sp_off = const FREGS_SP,
    pc = const FREGS_PC,
    direct_call = const OPS_DIRECT_CALL,
    direct_tramp = const FREGS_DIRECT_TRAMP,
    depth = const DEPTH_OFFSET,
    recursions = const RECURSIONS_OFFSET,
    list_ops = sym LIST_OPS,
    list = sym LIST,
    snap_wide = const SNAPSHOT_WIDE,
    list_func = sym list_func,
);

// The pairs the macros store and load together must be adjacent in FtraceRegs.
const _: () = {
    assert!(FREGS_X0 == 0);
    assert!(FREGS_LR == FREGS_FP + 8);
    assert!(FREGS_PC == FREGS_SP + 8);
    // The list trampoline loads the snapshot's wide count and keyed entries as one pair.
    assert!(SNAPSHOT_KEYED == SNAPSHOT_WIDE + 8);
};

unsafe extern "C" {
    fn __patchbay_ftrace_list_caller();
    fn __patchbay_ftrace_ops_caller();
    fn __patchbay_ftrace_direct_caller();
    static __patchbay_ftrace_list_caller_end: u8;
    static __patchbay_ftrace_ops_caller_end: u8;
    static __patchbay_ftrace_direct_caller_end: u8;
}

/// Address of the list-mode trampoline.
pub fn list_caller() -> u64 {
    __patchbay_ftrace_list_caller as *const () as u64
}

/// Address of the call-ops trampoline.
pub fn ops_caller() -> u64 {
    __patchbay_ftrace_ops_caller as *const () as u64
}

/// Address of the direct-capable trampoline (sites with a direct attachment reached through
/// ops, alone or beside other ops).
pub fn direct_caller() -> u64 {
    __patchbay_ftrace_direct_caller as *const () as u64
}

/// Is `pc` inside one of the static trampolines (for unwinders and crash reports)?
pub fn contains(pc: u64) -> bool {
    let list_end = (&raw const __patchbay_ftrace_list_caller_end) as u64;
    let ops_end = (&raw const __patchbay_ftrace_ops_caller_end) as u64;
    let direct_end = (&raw const __patchbay_ftrace_direct_caller_end) as u64;
    (list_caller()..list_end).contains(&pc)
        || (ops_caller()..ops_end).contains(&pc)
        || (direct_caller()..direct_end).contains(&pc)
}
