//! Code generation for per-callsite trampolines (direct calls), into word buffers.
//!
//! Every trampoline is position independent (its constants are PC-relative `LDR` literals inside
//! the trampoline itself), so the same words work in the near pool and in the far pool. When the
//! caller says where the words will live (`at`) and the handler is within `BL` range from there
//! (always so for the near pool, which reaches all kernel text), the handler call is one `BL`
//! instead of a literal load and a `BLR`.
//!
//! # Entry contract
//!
//! A trampoline is entered from an armed patch site (`mov x9, x30; bl tramp`), directly or via
//! a veneer or the static direct caller, with:
//!
//! ```text
//!   x30 = the function body (func + 8)      x9 = the caller's return address
//!   x0..x7 = the function's arguments       x8 = indirect result location (if it returns one)
//!   [sp] = its stack arguments (if any)     x16, x17 = scratch (IP0/IP1)
//! ```
//!
//! # Which registers are saved: the site's [`ArgRegs`]
//!
//! A handler is an ordinary AAPCS64 function: it may clobber x0–x17. A trampoline that runs a
//! handler *before* the body must therefore save and restore every register the body may read
//! an argument from — x0..x(regs-1), per the site's [`ArgRegs`] computed by `#[patchable]` from
//! the signature (a slice or `&str` is two registers, a `u128` an even-aligned pair) — and x8
//! when the function may return through memory (x8 is the address the caller's result goes to).
//! Whatever the macro cannot prove is [`ArgRegs::ALL`]: x0..x8. It saves nothing else: the
//! kernel is built for general registers only (`aarch64-unknown-none-softfloat`, FP/SIMD traps
//! at EL1), so no argument or result is ever in v0–v7 and no trampoline touches an FP/SIMD
//! register. Registers are saved in pairs: one `STP` and one `LDP` per two registers, a single
//! `STR`/`LDR` for an odd one.
//!
//! The handler sees the saved registers as an array of words, in this order: x0..x(regs-1),
//! then (fexit only) the stack argument words, then x8 if live. Changes it makes there are what
//! the body receives (entry) or are discarded (fexit).
//!
//! # [`entry`]: call a handler at function entry, then run the function
//!
//! Two frame records, like the static trampolines, so an unwinder walks handler -> trampoline ->
//! traced function -> caller; `A` is the save area (16 bytes per two saved registers):
//!
//! ```text
//!   stp  x29, x9, [sp, #-16]!           ; call-site record { caller's x29, its return address }
//!   mov  x29, sp
//!   stp  x29, x30, [sp, #-(16+A)]!      ; trampoline record { &call-site record, body }, area
//!   mov  x29, sp
//!   stp  x0, x1, [sp, #16] ...          ; the saved registers (str for an odd last one)
//!   add  x1, sp, #16                    ; handler(ctx, saved)
//!   ldr  x0, ctx
//!   bl   handler                        ; (far: ldr x16, handler; blr x16)
//!   ldp  x0, x1, [sp, #16] ...          ; as the handler left them
//!   ldp  x17, x16, [sp], #(16+A)        ; x16 = the body
//!   ldp  x29, x30, [sp], #16            ; caller's x29 and return address
//!   ret  x16                            ; into the body, which returns to the caller
//! ctx:     .quad ctx
//! handler: .quad handler
//! ```
//!
//! The leaf (nothing saved) executes 10 instructions; each further pair of saved registers
//! costs 2 (a store and a load), an odd register 2.
//!
//! ```text
//!   sp + 16 + A   call-site record
//!   sp + 16       saved registers        <- the handler's `saved` pointer
//!   sp + 0        trampoline record      <- x29
//! ```
//!
//! # [`entry_lean`]: the same without the traced function's frame record
//!
//! A variant that builds only the call-site record and jumps to the body by address (`b`, or
//! `ldr x16, =body; br x16` out of range) instead of keeping it in a record: 3 instructions
//! fewer (7 for the leaf). The price is in backtraces taken inside the handler: they go handler
//! -> trampoline -> caller, without the traced function (which has not started yet) — the
//! record Linux's ftrace and BPF trampolines keep. Measured as its own benchmark row.
//!
//! ```text
//!   stp  x29, x9, [sp, #-(16+A)]!       ; call-site record, save area above it
//!   mov  x29, sp
//!   stp  x0, x1, [sp, #16] ...          ; the saved registers
//!   add  x1, sp, #16                    ; handler(ctx, saved)
//!   ldr  x0, ctx
//!   bl   handler
//!   ldp  x0, x1, [sp, #16] ...
//!   ldp  x29, x30, [sp], #(16+A)        ; caller's x29 and return address
//!   b    body
//! ```
//!
//! # [`fexit`]: run the function from the trampoline, then call a handler with its result
//!
//! BPF-trampoline style: no shadow stack is needed because the trampoline itself calls the body
//! and is still on the stack when it returns. Because it moves the stack pointer before calling
//! the body, it copies the caller's stack arguments down to its own outgoing area (and into the
//! handler's view), at most [`MAX_STACK_WORDS`] of them: with the 8 argument registers that is
//! [`MAX_ARG_WORDS`] argument words, Linux's limit of 12 arguments since v6.16. A site with more,
//! or whose stack arguments `#[patchable]` cannot size, is refused ([`TrampError`]) — it never
//! runs with wrong arguments. Nothing needs saving around the body call itself (no handler runs
//! before it), but the arguments are saved for the handler, which runs after the body has
//! clobbered them, and x0/x1 (a result may be a 128-bit integer or a fat pointer) are kept
//! across the handler.
//!
//! ```text
//!   stp  x29, x9, [sp, #-16]!           ; call-site record
//!   mov  x29, sp
//!   stp  x29, x30, [sp, #-(32+V)]!      ; trampoline record, the handler's view, result slot
//!   mov  x29, sp
//!   sub  sp, sp, #OUT                   ; (stack arguments only) the body's stack arguments
//!   ldp  x16, x17, [sp, #FRAME] ...     ; (stack arguments only) copy each caller's word to
//!   stp  x16, x17, [sp, #VIEW+64] ...   ;   the handler's view
//!   stp  x16, x17, [sp, #0] ...         ;   and the body's stack arguments
//!   stp  x0, x1, [sp, #VIEW] ...        ; the argument registers (and x8) for the handler
//!   ldr  x16, [sp, #OUT+8]              ; the body
//!   blr  x16                            ; arguments are still in x0..x8 and at [sp]
//!   stp  x0, x1, [sp, #RET]
//!   add  x1, sp, #VIEW                  ; handler(ctx, saved, &ret)
//!   add  x2, sp, #RET
//!   ldr  x0, ctx
//!   bl   handler
//!   ldp  x0, x1, [sp, #RET]             ; the result, as the handler left it
//!   ldp  x29, x30, [sp, #FRAME-16]
//!   add  sp, sp, #FRAME
//!   ret                                 ; to the caller
//! ```
//!
//! # [`veneer`]: reach a trampoline beyond BL range
//!
//! ```text
//!   ldr  x16, target     ; x16 (IP0) is free at any call boundary
//!   br   x16
//! target: .quad target
//! ```
//!
//! The veneer touches no argument register, so the far trampoline behind it sees exactly what
//! a near one does.
//!
//! # The hardened build (`crate::harden`)
//!
//! Every trampoline then starts with `bti c` ([`TRAMPOLINE_LANDING_PAD`]): reached by a `bl`
//! it needs none, but the veneer's `br x16` and the direct caller's `br x17` set PSTATE.BTYPE
//! 0b01, which `bti c` accepts. A trampoline's own indirect branches into a function body go
//! through `ret` (`Asm::indirect`), which the body's missing landing pad cannot fault. The plain
//! build emits exactly the code documented above.

use alloc::vec::Vec;

use crate::{
    harden::{HARDENED, TRAMPOLINE_LANDING_PAD},
    insn::{
        self, EncodeError, Index, Reg, SP, X0, X1, X2, X8, X9, X16, X17, X29, X30, add_imm, adr, b,
        bl, blr, br, in_branch_range, ldp, ldr_imm, ldr_literal, mov_from_sp, ret_reg, stp,
        str_imm, sub_imm,
    },
    sites::{ARG_REGS, ArgRegs, StackWords},
};

/// Stack argument words an fexit trampoline copies.
pub const MAX_STACK_WORDS: u32 = 4;

/// Argument words (registers and stack) an fexit trampoline supports: Linux's 12.
pub const MAX_ARG_WORDS: u32 = ARG_REGS as u32 + MAX_STACK_WORDS;

/// Why a trampoline cannot be generated for a site.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrampError {
    Encode(EncodeError),
    /// An [`ArgRegs`] with more than 8 argument registers (never produced by `#[patchable]`).
    InvalidArgRegs(ArgRegs),
    /// fexit: the function takes `words` argument words; fexit copies at most `limit`.
    TooManyArgs {
        words: u32,
        limit: u32,
    },
    /// fexit: a parameter `#[patchable]` cannot classify may be passed on the stack, so the
    /// words to copy cannot be proved.
    UnprovableStackArgs,
}

impl From<EncodeError> for TrampError {
    fn from(e: EncodeError) -> Self {
        TrampError::Encode(e)
    }
}

impl core::fmt::Display for TrampError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            TrampError::Encode(e) => write!(f, "trampoline encoding failed: {e:?}"),
            TrampError::InvalidArgRegs(r) => write!(
                f,
                "argument registers {r:?} name more than x0..x7; use ArgRegs::classify"
            ),
            TrampError::TooManyArgs { words, limit } => write!(
                f,
                "the function takes {words} argument words; fexit supports at most {limit} (8 in registers, {} on the stack); trace it with an entry trampoline or an ops",
                limit - ARG_REGS as u32
            ),
            TrampError::UnprovableStackArgs => write!(
                f,
                "a parameter #[patchable] cannot classify may be passed on the stack, so fexit cannot copy the stack arguments; pass it by reference or trace with an entry trampoline"
            ),
        }
    }
}

/// Bytes of save area for `words` words (a multiple of 16).
const fn area(words: u32) -> u32 {
    words.div_ceil(2) * 16
}

/// Where an entry trampoline's call-site record lies relative to the handler's `saved` pointer;
/// the caller's stack pointer is 16 bytes above it.
pub const fn entry_callsite_offset(regs: ArgRegs) -> u32 {
    area(regs.saved())
}

/// Where a lean entry trampoline's call-site record lies relative to the handler's `saved`
/// pointer (just below it); the caller's stack pointer is `16 + save area` above the record.
pub const LEAN_CALLSITE_OFFSET: i32 = -16;

/// Frame size of an entry trampoline.
pub const fn entry_frame(regs: ArgRegs) -> u32 {
    area(regs.saved()) + 32
}

/// The fexit frame of one site (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FexitLayout {
    /// Stack argument words copied.
    pub stack_words: u32,
    /// The body's outgoing stack arguments, at sp + 0.
    pub out: u32,
    /// The handler's view (registers, stack words, x8), from sp.
    pub view: u32,
    /// Words in the view.
    pub view_words: u32,
    /// The result slot { x0, x1 }, from sp.
    pub ret: u32,
    /// Everything the trampoline allocates.
    pub frame: u32,
}

impl FexitLayout {
    /// The layout for `regs`, or why fexit cannot trace the site.
    pub fn new(regs: ArgRegs) -> Result<FexitLayout, TrampError> {
        check(regs)?;
        let stack_words = match regs.stack {
            StackWords::Known(w) => u32::from(w),
            StackWords::Unknown => return Err(TrampError::UnprovableStackArgs),
        };
        if stack_words > MAX_STACK_WORDS {
            return Err(TrampError::TooManyArgs {
                words: u32::from(regs.regs) + stack_words,
                limit: MAX_ARG_WORDS,
            });
        }
        let view_words = regs.saved() + stack_words;
        let out = area(stack_words);
        let view = out + 16;
        let ret = view + area(view_words);
        Ok(FexitLayout {
            stack_words,
            out,
            view,
            view_words,
            ret,
            frame: ret + 32,
        })
    }
}

fn check(regs: ArgRegs) -> Result<(), TrampError> {
    if regs.regs > ARG_REGS {
        return Err(TrampError::InvalidArgRegs(regs));
    }
    Ok(())
}

/// The saved registers of `regs` and their word slots in the handler's view; x8 after
/// `extra` words (the fexit stack words).
fn saved_slots(regs: ArgRegs, extra: u32) -> Vec<(u32, Reg)> {
    let mut v: Vec<(u32, Reg)> = (0..regs.regs).map(|i| (u32::from(i), Reg::x(i))).collect();
    if regs.x8 {
        v.push((u32::from(regs.regs) + extra, X8));
    }
    v
}

/// Emitter with PC-relative literal fix-ups.
struct Asm {
    w: Vec<u32>,
    /// Where word 0 will live, if known (for `BL` to the handler).
    at: Option<u64>,
    /// (index of an LDR-literal placeholder, register, literal slot number)
    fixups: Vec<(usize, Reg, usize)>,
    literals: Vec<u64>,
}

impl Asm {
    /// Word 0 is the build's landing pad ([`TRAMPOLINE_LANDING_PAD`]), if any: every offset,
    /// literal and `bl` after it is then computed from its real position.
    fn new(at: Option<u64>) -> Self {
        let mut w = Vec::with_capacity(48);
        w.extend(TRAMPOLINE_LANDING_PAD);
        Asm {
            w,
            at,
            fixups: Vec::new(),
            literals: Vec::new(),
        }
    }
    /// Branch to the address in `reg` (`link`: and come back, as `blr`). In the hardened build as
    /// a `ret` (after `adr x30, <next>` when linking: one instruction more), never `br`/`blr`:
    /// `ret` leaves PSTATE.BTYPE 0b00, so the target is not checked for a landing pad. Used for
    /// function bodies, which need not start with one (`bti c` is at the function's address;
    /// the body's first instruction is `paciasp` only when the compiler did not shrink-wrap it).
    fn indirect(&mut self, reg: Reg, link: bool) -> Result<(), EncodeError> {
        if !HARDENED {
            self.emit(if link { blr(reg) } else { br(reg) });
            return Ok(());
        }
        if link {
            let here = self.w.len() as u64 * 4;
            self.try_emit(adr(X30, here, here + 8))?;
        }
        self.emit(ret_reg(reg));
        Ok(())
    }
    fn emit(&mut self, w: u32) {
        self.w.push(w);
    }
    fn try_emit(&mut self, w: Result<u32, EncodeError>) -> Result<(), EncodeError> {
        self.w.push(w?);
        Ok(())
    }
    /// `ldr rt, =value` from the literal pool at the end.
    fn ldr_const(&mut self, rt: Reg, value: u64) {
        self.fixups.push((self.w.len(), rt, self.literals.len()));
        self.literals.push(value);
        self.w.push(0);
    }
    /// Call `handler`: `bl handler` when the position is known and in range, else
    /// `ldr x16, =handler; blr x16` (x16 is free at a call).
    fn call(&mut self, handler: u64) -> Result<(), EncodeError> {
        self.branch(handler, true)
    }
    /// Continue at `target`: `b target` when the position is known and in range, else
    /// `ldr x16, =target; br x16`.
    fn jump(&mut self, target: u64) -> Result<(), EncodeError> {
        self.branch(target, false)
    }
    fn branch(&mut self, target: u64, link: bool) -> Result<(), EncodeError> {
        match self.at.map(|at| at + self.w.len() as u64 * 4) {
            Some(from) if in_branch_range(from, target) => self.try_emit(if link {
                bl(from, target)
            } else {
                b(from, target)
            }),
            _ => {
                self.ldr_const(X16, target);
                // A handler is a compiled function (landing pad first): `blr` is fine.
                if link {
                    self.emit(blr(X16));
                    Ok(())
                } else {
                    self.indirect(X16, false)
                }
            }
        }
    }
    /// The frame-record prologue: call-site record, then the trampoline record at the bottom of
    /// `below` further bytes, x29 pointing at it.
    fn frame_records(&mut self, below: u32) -> Result<(), EncodeError> {
        self.try_emit(stp(X29, X9, SP, -16, Index::PreIndex))?;
        self.emit(mov_from_sp(X29));
        self.try_emit(stp(X29, X30, SP, -(below as i32), Index::PreIndex))?;
        self.emit(mov_from_sp(X29));
        Ok(())
    }
    /// Store (or load) `slots` — (word slot, register) in ascending slots — at sp + `base`:
    /// `stp`/`ldp` for two registers in one 16-byte pair of slots, `str`/`ldr` otherwise.
    fn slots(&mut self, slots: &[(u32, Reg)], base: u32, load: bool) -> Result<(), EncodeError> {
        let mut i = 0;
        while i < slots.len() {
            let (slot, a) = slots[i];
            let off = base + slot * 8;
            match slots.get(i + 1) {
                Some(&(next, b)) if slot % 2 == 0 && next == slot + 1 => {
                    self.try_emit(if load {
                        ldp(a, b, SP, off as i32, Index::Offset)
                    } else {
                        stp(a, b, SP, off as i32, Index::Offset)
                    })?;
                    i += 2;
                }
                _ => {
                    self.try_emit(if load {
                        ldr_imm(a, SP, off)
                    } else {
                        str_imm(a, SP, off)
                    })?;
                    i += 1;
                }
            }
        }
        Ok(())
    }
    /// Append the literal pool (8-aligned relative to word 0) and patch the LDRs.
    fn finish(mut self) -> Result<Vec<u32>, EncodeError> {
        if self.w.len() % 2 == 1 {
            self.w.push(insn::NOP);
        }
        let pool = self.w.len();
        for v in &self.literals {
            self.w.push(*v as u32);
            self.w.push((*v >> 32) as u32);
        }
        for &(at, rt, slot) in &self.fixups {
            let from = at as u64 * 4;
            let to = (pool + 2 * slot) as u64 * 4;
            self.w[at] = ldr_literal(rt, from, to)?;
        }
        Ok(self.w)
    }
}

/// An entry trampoline for a site whose arguments occupy `regs`: calls
/// `handler(ctx, saved)` (`extern "C" fn(u64, *mut u64)`; `saved` points at the saved
/// registers, which the handler may change), then continues into the function body. `at` is
/// where the words will be written, if known (see the module docs).
pub fn entry(
    regs: ArgRegs,
    handler: u64,
    ctx: u64,
    at: Option<u64>,
) -> Result<Vec<u32>, TrampError> {
    check(regs)?;
    let saved = saved_slots(regs, 0);
    let below = 16 + area(regs.saved());
    let mut a = Asm::new(at);
    a.frame_records(below)?;
    a.slots(&saved, 16, false)?;
    a.try_emit(add_imm(X1, SP, 16, false))?;
    a.ldr_const(X0, ctx);
    a.call(handler)?;
    a.slots(&saved, 16, true)?;
    a.try_emit(ldp(X17, X16, SP, below as i32, Index::PostIndex))?;
    a.try_emit(ldp(X29, X30, SP, 16, Index::PostIndex))?;
    a.emit(ret_reg(X16));
    Ok(a.finish()?)
}

/// A lean entry trampoline (see the module docs): [`entry`] without the traced function's frame
/// record, continuing at `body` (the function's address + 8) by address.
pub fn entry_lean(
    regs: ArgRegs,
    handler: u64,
    ctx: u64,
    body: u64,
    at: Option<u64>,
) -> Result<Vec<u32>, TrampError> {
    check(regs)?;
    let saved = saved_slots(regs, 0);
    let frame = 16 + area(regs.saved());
    let mut a = Asm::new(at);
    a.try_emit(stp(X29, X9, SP, -(frame as i32), Index::PreIndex))?;
    a.emit(mov_from_sp(X29));
    a.slots(&saved, 16, false)?;
    a.try_emit(add_imm(X1, SP, 16, false))?;
    a.ldr_const(X0, ctx);
    a.call(handler)?;
    a.slots(&saved, 16, true)?;
    a.try_emit(ldp(X29, X30, SP, frame as i32, Index::PostIndex))?;
    a.jump(body)?;
    Ok(a.finish()?)
}

/// An fexit trampoline for a site whose arguments occupy `regs`: runs the body, then calls
/// `handler(ctx, saved, ret)` (`extern "C" fn(u64, *mut u64, *mut u64)`; `ret` points at the
/// result registers { x0, x1 }, which the handler may change), then returns them to the caller.
pub fn fexit(
    regs: ArgRegs,
    handler: u64,
    ctx: u64,
    at: Option<u64>,
) -> Result<Vec<u32>, TrampError> {
    let l = FexitLayout::new(regs)?;
    let mut a = Asm::new(at);
    a.frame_records(l.frame - 16 - l.out)?;
    if l.out > 0 {
        a.try_emit(sub_imm(SP, SP, l.out, false))?;
    }
    // The caller's stack arguments are at the caller's sp, which is sp + frame now: copy them
    // into the view (after the 8 argument registers) and to the body's outgoing area.
    let mut w = 0;
    while w < l.stack_words {
        let (from, view, out) = (
            l.frame + w * 8,
            l.view + (u32::from(regs.regs) + w) * 8,
            w * 8,
        );
        if l.stack_words - w >= 2 {
            a.try_emit(ldp(X16, X17, SP, from as i32, Index::Offset))?;
            a.try_emit(stp(X16, X17, SP, view as i32, Index::Offset))?;
            a.try_emit(stp(X16, X17, SP, out as i32, Index::Offset))?;
            w += 2;
        } else {
            a.try_emit(ldr_imm(X16, SP, from))?;
            a.try_emit(str_imm(X16, SP, view))?;
            a.try_emit(str_imm(X16, SP, out))?;
            w += 1;
        }
    }
    a.slots(&saved_slots(regs, l.stack_words), l.view, false)?;
    a.try_emit(ldr_imm(X16, SP, l.out + 8))?;
    a.indirect(X16, true)?;
    a.try_emit(stp(X0, X1, SP, l.ret as i32, Index::Offset))?;
    a.try_emit(add_imm(X1, SP, l.view, false))?;
    a.try_emit(add_imm(X2, SP, l.ret, false))?;
    a.ldr_const(X0, ctx);
    a.call(handler)?;
    a.try_emit(ldp(X0, X1, SP, l.ret as i32, Index::Offset))?;
    a.try_emit(ldp(X29, X30, SP, l.frame as i32 - 16, Index::Offset))?;
    a.try_emit(add_imm(SP, SP, l.frame, false))?;
    a.emit(insn::RET);
    Ok(a.finish()?)
}

/// A veneer to `target` anywhere in the address space (4 words: 2 instructions, 1 literal).
/// Reached only by a site's `bl`, it needs no landing pad; its `br x16` lands on the
/// trampoline's (`bti c` accepts BTYPE 0b01, which `br x16` sets).
pub fn veneer(target: u64) -> [u32; 4] {
    // ldr x16, #8 ; br x16 ; .quad target — the literal is 8 bytes after the LDR.
    let ldr = ldr_literal(X16, 0, 8).expect("8 bytes is in LDR-literal range");
    [ldr, br(X16), target as u32, (target >> 32) as u32]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llvm_mc::disassemble;
    use std::{format, string::String, vec};

    fn regs(regs: u8, x8: bool, stack: u8) -> ArgRegs {
        ArgRegs {
            regs,
            x8,
            stack: StackWords::Known(stack),
        }
    }

    /// The instruction part of a trampoline, disassembled (literal words excluded).
    fn text(words: &[u32], n_literals: usize) -> Vec<String> {
        disassemble(&words[..words.len() - 2 * n_literals])
    }

    #[test]
    fn every_trampoline_starts_with_the_builds_landing_pad() {
        let r = regs(2, false, 0);
        for (what, words, n_literals) in [
            ("entry", entry(r, 0x1000, 7, None).unwrap(), 2),
            (
                "entry_lean",
                entry_lean(r, 0x1000, 7, 0x2000, None).unwrap(),
                3,
            ),
            ("fexit", fexit(r, 0x1000, 7, None).unwrap(), 2),
        ] {
            assert_eq!(
                words.first() == Some(&insn::BTI_C),
                HARDENED,
                "{what}: {:?}",
                disassemble(&words[..1])
            );
            // No indirect branch into a body can need a landing pad: no `br`, and the only `blr`
            // calls the handler (after its `ldr x16` literal), never the body.
            let text = text(&words, n_literals);
            assert_eq!(
                text.iter().any(|l| l.starts_with("br ")),
                !HARDENED && what == "entry_lean",
                "{what}: {text:?}"
            );
        }
    }

    fn literals(words: &[u32], n: usize) -> Vec<u64> {
        let base = words.len() - 2 * n;
        (0..n)
            .map(|i| u64::from(words[base + 2 * i]) | u64::from(words[base + 2 * i + 1]) << 32)
            .collect()
    }

    /// Instructions up to and including the final `ret` (what one traced call executes of it).
    fn executed(t: &[String]) -> usize {
        t.iter().position(|l| l.starts_with("ret")).unwrap() + 1
    }

    #[test]
    fn entry_two_args_is_exactly_the_documented_code() {
        let w = entry(
            regs(2, false, 0),
            0x1122_3344_5566_7788,
            0xffff_0000_dead_beef,
            None,
        )
        .unwrap();
        let got = text(&w, 2);
        let expect = [
            "stp x29, x9, [sp, #-16]!",
            "mov x29, sp",
            "stp x29, x30, [sp, #-32]!",
            "mov x29, sp",
            "stp x0, x1, [sp, #16]",
            "add x1, sp, #16",
            "ldr x0, #32",
            "ldr x16, #36",
            "blr x16",
            "ldp x0, x1, [sp, #16]",
            "ldp x17, x16, [sp], #32",
            "ldp x29, x30, [sp], #16",
            "ret x16",
            "nop",
        ];
        assert_eq!(got, expect);
        assert_eq!(
            literals(&w, 2),
            vec![0xffff_0000_dead_beef, 0x1122_3344_5566_7788]
        );
        // The literal pool is 8-aligned relative to the trampoline start.
        assert_eq!((w.len() - 4) % 2, 0);
    }

    #[test]
    fn the_near_leaf_is_ten_instructions_with_a_direct_bl() {
        // Placed at 0x4000_0000, handler 1 MiB below: in BL range, so one literal only.
        let at = 0x4000_0000;
        let w = entry(regs(0, false, 0), at - (1 << 20), 0x77, Some(at)).unwrap();
        let t = text(&w, 1);
        assert_eq!(
            t,
            [
                "stp x29, x9, [sp, #-16]!",
                "mov x29, sp",
                "stp x29, x30, [sp, #-16]!",
                "mov x29, sp",
                "add x1, sp, #16",
                "ldr x0, #20",
                // bl's offset is relative: word 6, handler at -1 MiB from word 0.
                &format!("bl #{}", -(1 << 20) - 24),
                "ldp x17, x16, [sp], #16",
                "ldp x29, x30, [sp], #16",
                "ret x16",
            ]
        );
        assert_eq!(executed(&t), 10);
        assert_eq!(literals(&w, 1), vec![0x77]);
        // Out of range (a far pool): the literal load and BLR.
        let far = entry(regs(0, false, 0), at, 0x77, Some(at + (1 << 30))).unwrap();
        assert!(text(&far, 2).contains(&"blr x16".into()));
    }

    /// Saved registers, as (stores, loads) of each register number, from the disassembly.
    fn saved_regs(t: &[String]) -> (Vec<u8>, Vec<u8>) {
        let mut st = Vec::new();
        let mut ld = Vec::new();
        for l in t {
            let Some((op, rest)) = l.split_once(' ') else {
                continue;
            };
            // Only accesses above the trampoline record (sp + 16 and up, not write-back).
            if !rest.contains("[sp, #") || rest.ends_with('!') {
                continue;
            }
            let list = match op {
                "stp" | "str" => &mut st,
                "ldp" | "ldr" => &mut ld,
                _ => continue,
            };
            for r in rest.split(", ").take(if op.ends_with('p') { 2 } else { 1 }) {
                list.push(r.trim_start_matches('x').parse().unwrap());
            }
        }
        (st, ld)
    }

    #[test]
    fn entry_saves_exactly_the_site_registers_at_every_count() {
        let leaf = executed(&text(&entry(regs(0, false, 0), 1, 2, None).unwrap(), 2));
        for n in 0..=8u8 {
            for x8 in [false, true] {
                let r = regs(n, x8, 0);
                let t = text(&entry(r, 1, 2, None).unwrap(), 2);
                let mut want: Vec<u8> = (0..n).collect();
                if x8 {
                    want.push(8);
                }
                let (st, ld) = saved_regs(&t);
                assert_eq!(st, want, "{r:?}: {t:?}");
                assert_eq!(ld, want, "{r:?}: {t:?}");
                // One store and one load per started pair: never more than 2 per register.
                let extra = executed(&t) - leaf;
                assert_eq!(extra as u32, 2 * r.saved().div_ceil(2), "{r:?}");
                assert!(extra as u32 <= 2 * r.saved());
                let below = 16 + r.saved().div_ceil(2) * 16;
                assert_eq!(t[2], format!("stp x29, x30, [sp, #-{below}]!"));
                assert!(t.contains(&format!("ldp x17, x16, [sp], #{below}")));
                assert_eq!(entry_frame(r), below + 16);
                assert_eq!(entry_callsite_offset(r), below - 16);
            }
        }
        // Unknown signatures: x0..x8.
        let t = text(&entry(ArgRegs::ALL, 1, 2, None).unwrap(), 2);
        assert_eq!(saved_regs(&t).0, (0..=8).collect::<Vec<u8>>());
        assert!(t.contains(&"str x8, [sp, #80]".into()), "{t:?}");
    }

    #[test]
    fn the_lean_near_leaf_is_seven_instructions() {
        let at = 0x4000_0000;
        let (handler, body) = (at - (1 << 20), at - (2 << 20) + 8);
        let w = entry_lean(regs(0, false, 0), handler, 0x77, body, Some(at)).unwrap();
        let t = text(&w, 1);
        assert_eq!(
            t,
            [
                "stp x29, x9, [sp, #-16]!",
                "mov x29, sp",
                "add x1, sp, #16",
                "ldr x0, #20",
                &format!("bl #{}", -(1 << 20) - 16),
                "ldp x29, x30, [sp], #16",
                &format!("b #{}", -(2 << 20) + 8 - 24),
                "nop",
            ]
        );
        assert_eq!(executed_lean(&t), 7);
        // Position unknown: handler and body through literals.
        let t = text(
            &entry_lean(regs(0, false, 0), handler, 0x77, body, None).unwrap(),
            3,
        );
        assert!(
            t.contains(&"blr x16".into()) && t.contains(&"br x16".into()),
            "{t:?}"
        );
        assert_eq!(
            literals(&entry_lean(regs(0, false, 0), 1, 2, 3, None).unwrap(), 3),
            [2, 1, 3]
        );
    }

    /// Instructions up to and including the final branch of a lean trampoline.
    fn executed_lean(t: &[String]) -> usize {
        t.iter()
            .rposition(|l| l.starts_with("b ") || l.starts_with("br "))
            .unwrap()
            + 1
    }

    #[test]
    fn lean_entry_saves_exactly_the_site_registers_at_every_count() {
        let at = Some(0x4000_0000);
        let leaf = executed_lean(&text(
            &entry_lean(regs(0, false, 0), 0, 2, 8, at).unwrap(),
            1,
        ));
        for n in 0..=8u8 {
            for x8 in [false, true] {
                let r = regs(n, x8, 0);
                let t = text(&entry_lean(r, 0, 2, 8, at).unwrap(), 1);
                let mut want: Vec<u8> = (0..n).collect();
                if x8 {
                    want.push(8);
                }
                let (st, ld) = saved_regs(&t);
                assert_eq!((&st, &ld), (&want, &want), "{r:?}: {t:?}");
                let extra = executed_lean(&t) - leaf;
                assert_eq!(extra as u32, 2 * r.saved().div_ceil(2), "{r:?}");
                let frame = 16 + r.saved().div_ceil(2) * 16;
                assert_eq!(t[0], format!("stp x29, x9, [sp, #-{frame}]!"));
                assert!(t.contains(&format!("ldp x29, x30, [sp], #{frame}")));
                // The call-site record is just below the saved registers.
                assert!(t.contains(&"add x1, sp, #16".into()));
                assert_eq!(LEAN_CALLSITE_OFFSET, -16);
            }
        }
    }

    #[test]
    fn x8_pairs_with_an_odd_last_argument() {
        let t = text(&entry(regs(3, true, 0), 1, 2, None).unwrap(), 2);
        assert!(t.contains(&"stp x0, x1, [sp, #16]".into()), "{t:?}");
        assert!(t.contains(&"stp x2, x8, [sp, #32]".into()), "{t:?}");
        assert!(t.contains(&"ldp x2, x8, [sp, #32]".into()), "{t:?}");
    }

    #[test]
    fn fexit_one_arg_is_exactly_the_documented_code() {
        let w = fexit(regs(1, false, 0), 0xaaaa, 0xbbbb, None).unwrap();
        let got = text(&w, 2);
        let expect = [
            "stp x29, x9, [sp, #-16]!",
            "mov x29, sp",
            "stp x29, x30, [sp, #-48]!",
            "mov x29, sp",
            "str x0, [sp, #16]",
            "ldr x16, [sp, #8]",
            "blr x16",
            "stp x0, x1, [sp, #32]",
            "add x1, sp, #16",
            "add x2, sp, #32",
            "ldr x0, #32",
            "ldr x16, #36",
            "blr x16",
            "ldp x0, x1, [sp, #32]",
            "ldp x29, x30, [sp, #48]",
            "add sp, sp, #64",
            "ret",
            "nop",
        ];
        assert_eq!(got, expect);
        assert_eq!(literals(&w, 2), vec![0xbbbb, 0xaaaa]);
    }

    #[test]
    fn fexit_copies_stack_arguments_up_to_twelve_words() {
        // 12 words: x0..x7 and 4 on the stack, returned through x8.
        let r = regs(8, true, 4);
        let l = FexitLayout::new(r).unwrap();
        assert_eq!(
            (l.out, l.view, l.view_words, l.ret, l.frame),
            (32, 48, 13, 160, 192)
        );
        let t = text(&fexit(r, 1, 2, None).unwrap(), 2);
        let expect_head = [
            "stp x29, x9, [sp, #-16]!",
            "mov x29, sp",
            "stp x29, x30, [sp, #-144]!",
            "mov x29, sp",
            "sub sp, sp, #32",
            // The caller's stack arguments (at the caller's sp = sp + 192): view words 8..11
            // (after x0..x7 at sp + 48) and the body's stack arguments at sp + 0.
            "ldp x16, x17, [sp, #192]",
            "stp x16, x17, [sp, #112]",
            "stp x16, x17, [sp]",
            "ldp x16, x17, [sp, #208]",
            "stp x16, x17, [sp, #128]",
            "stp x16, x17, [sp, #16]",
            "stp x0, x1, [sp, #48]",
            "stp x2, x3, [sp, #64]",
            "stp x4, x5, [sp, #80]",
            "stp x6, x7, [sp, #96]",
            // x8 after the stack words (view word 12).
            "str x8, [sp, #144]",
            // The body's address from the trampoline record (sp + 32).
            "ldr x16, [sp, #40]",
            "blr x16",
        ];
        assert_eq!(t[..expect_head.len()], expect_head);
        assert!(t.contains(&"ldp x29, x30, [sp, #176]".into()));
        assert!(t.contains(&"add sp, sp, #192".into()));
        // An odd word count copies the last one alone.
        let t = text(&fexit(regs(8, false, 1), 1, 2, None).unwrap(), 2);
        // (frame 144, view at 32: x0..x7 then the word at 96)
        for l in ["ldr x16, [sp, #144]", "str x16, [sp, #96]", "str x16, [sp]"] {
            assert!(t.contains(&l.into()), "{l}: {t:?}");
        }
    }

    #[test]
    fn fexit_refuses_what_it_cannot_copy() {
        assert_eq!(
            fexit(regs(8, false, 5), 1, 2, None),
            Err(TrampError::TooManyArgs {
                words: 13,
                limit: 12
            })
        );
        assert_eq!(
            fexit(ArgRegs::ALL, 1, 2, None),
            Err(TrampError::UnprovableStackArgs)
        );
        let msg = format!(
            "{}",
            TrampError::TooManyArgs {
                words: 13,
                limit: MAX_ARG_WORDS
            }
        );
        assert!(msg.contains("at most 12"), "{msg}");
        // Entry trampolines do not care about the stack.
        assert!(entry(ArgRegs::ALL, 1, 2, None).is_ok());
        assert_eq!(
            entry(regs(9, false, 0), 1, 2, None),
            Err(TrampError::InvalidArgRegs(regs(9, false, 0)))
        );
    }

    #[test]
    fn veneer_loads_and_branches() {
        let v = veneer(0x1_2345_6789_abcd);
        assert_eq!(disassemble(&v[..2]), ["ldr x16, #8", "br x16"]);
        assert_eq!(u64::from(v[2]) | u64::from(v[3]) << 32, 0x1_2345_6789_abcd);
    }

    #[test]
    fn every_generated_word_is_a_valid_instruction() {
        // llvm-mc refuses undefined encodings (the helper fails on any diagnostic).
        for n in 0..=8 {
            for x8 in [false, true] {
                for stack in 0..=MAX_STACK_WORDS as u8 {
                    let r = regs(if stack > 0 { 8 } else { n }, x8, stack);
                    for w in [entry(r, u64::MAX, 0, None), fexit(r, 0, u64::MAX, None)] {
                        let _ = text(&w.unwrap(), 2);
                    }
                    let _ = text(&entry_lean(r, 0, 1, 2, None).unwrap(), 3);
                }
            }
        }
    }

    #[test]
    fn literal_loads_point_at_the_pool() {
        // The LDR-literal offsets are relative, so the code is position independent: decode them.
        let w = entry(regs(3, true, 0), 0x77, 0x66, None).unwrap();
        let t = text(&w, 2);
        let pool = (w.len() - 4) as i64 * 4;
        for (i, l) in t.iter().enumerate() {
            if let Some(off) = l.strip_prefix("ldr x0, #") {
                assert_eq!(i as i64 * 4 + off.parse::<i64>().unwrap(), pool);
            }
            if let Some(off) = l.strip_prefix("ldr x16, #") {
                assert_eq!(i as i64 * 4 + off.parse::<i64>().unwrap(), pool + 8);
            }
        }
    }
}
