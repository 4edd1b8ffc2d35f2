//! Code generation for per-callsite trampolines (direct calls), into word buffers.
//!
//! Every trampoline is position independent (its constants are PC-relative `LDR` literals inside
//! the trampoline itself), so the same words work in the near pool and in the far pool.
//!
//! # Entry contract
//!
//! A trampoline is entered from an armed patch site (`mov x9, x30; bl tramp`), directly or via
//! a veneer or the static direct caller, with:
//!
//! ```text
//!   x30 = the function body (func + 8)      x9 = the caller's return address
//!   x0..x7 = the function's arguments       x8 = indirect result location (untouched)
//! ```
//!
//! Both kinds build the same two frame records as the static trampolines, so an unwinder walks
//! handler -> trampoline -> traced function -> caller:
//!
//! ```text
//!   sp + FRAME - 16   { caller's x29, x9 }      call-site record
//!   sp + FRAME - 32   { &call-site record, x30 } trampoline record   <- x29
//!   sp + 0            saved arguments (only the `nargs` the function takes)
//! ```
//!
//! # [`entry`]: call a handler at function entry, then run the function
//!
//! ```text
//!   sub  sp, sp, #FRAME
//!   stp  x29, x9, [sp, #FRAME-16]       ; call-site record
//!   add  x29, sp, #FRAME-16
//!   stp  x29, x30, [sp, #FRAME-32]      ; trampoline record
//!   add  x29, sp, #FRAME-32
//!   stp  x0, x1, [sp, #0] ...            ; the nargs arguments
//!   mov  x1, sp                          ; handler(ctx, args)
//!   ldr  x0, ctx
//!   ldr  x16, handler
//!   blr  x16
//!   ldp  x0, x1, [sp, #0] ...            ; arguments, as the handler left them
//!   ldr  x16, [sp, #FRAME-24]            ; the body
//!   ldp  x29, x30, [sp, #FRAME-16]       ; caller's x29 and return address
//!   add  sp, sp, #FRAME
//!   ret  x16                             ; into the body, which returns to the caller
//! ctx:     .quad ctx
//! handler: .quad handler
//! ```
//!
//! # [`fexit`]: run the function from the trampoline, then call a handler with its result
//!
//! BPF-trampoline style: no shadow stack is needed because the trampoline itself calls the body
//! and is still on the stack when it returns.
//!
//! ```text
//!   (frame records and argument save as above; FRAME has 16 more bytes for the return value)
//!   ldr  x16, [sp, #FRAME-24]            ; the body
//!   blr  x16                             ; arguments are still in x0..x7, x8 untouched
//!   str  x0, [sp, #RET]
//!   mov  x1, sp                          ; handler(ctx, args, &ret)
//!   add  x2, sp, #RET
//!   ldr  x0, ctx
//!   ldr  x16, handler
//!   blr  x16
//!   ldr  x0, [sp, #RET]                  ; the return value, as the handler left it
//!   ldp  x29, x30, [sp, #FRAME-16]
//!   add  sp, sp, #FRAME
//!   ret                                  ; to the caller
//! ```
//!
//! Only register arguments are supported (at most 8, no stack-passed arguments): `fexit` moves
//! the stack pointer before calling the body.
//!
//! # [`veneer`]: reach a trampoline beyond BL range
//!
//! ```text
//!   ldr  x16, target     ; x16 (IP0) is free at any call boundary
//!   br   x16
//! target: .quad target
//! ```

use alloc::vec::Vec;

use crate::insn::{
    self, EncodeError, Index, Reg, SP, X0, X1, X2, X9, X16, X29, X30, add_imm, blr, br, ldp,
    ldr_imm, ldr_literal, mov_from_sp, ret_reg, stp, str_imm, sub_imm,
};

/// Largest argument count a trampoline saves.
pub const MAX_ARGS: u32 = 8;

/// Bytes of argument save area for `nargs` (a multiple of 16).
pub const fn args_bytes(nargs: u32) -> u32 {
    nargs.div_ceil(2) * 16
}

/// Frame size of an entry trampoline.
pub const fn entry_frame(nargs: u32) -> u32 {
    args_bytes(nargs) + 32
}

/// Frame size of an fexit trampoline (one more 16-byte slot for the return value).
pub const fn fexit_frame(nargs: u32) -> u32 {
    args_bytes(nargs) + 16 + 32
}

/// Where the fexit trampoline keeps the return value.
pub const fn fexit_ret_offset(nargs: u32) -> u32 {
    args_bytes(nargs)
}

fn check_args(nargs: u32) -> Result<(), EncodeError> {
    if nargs > MAX_ARGS {
        return Err(EncodeError::ImmediateOutOfRange {
            value: nargs as i64,
            min: 0,
            max: MAX_ARGS as i64,
        });
    }
    Ok(())
}

/// Emitter with PC-relative literal fix-ups.
struct Asm {
    w: Vec<u32>,
    /// (index of an LDR-literal placeholder, register, literal slot number)
    fixups: Vec<(usize, Reg, usize)>,
    literals: Vec<u64>,
}

impl Asm {
    fn new() -> Self {
        Asm {
            w: Vec::with_capacity(48),
            fixups: Vec::new(),
            literals: Vec::new(),
        }
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
    /// Frame records (see the module docs).
    fn frame_records(&mut self, frame: u32) -> Result<(), EncodeError> {
        self.try_emit(sub_imm(SP, SP, frame, false))?;
        self.try_emit(stp(X29, X9, SP, frame as i32 - 16, Index::Offset))?;
        self.try_emit(add_imm(X29, SP, frame - 16, false))?;
        self.try_emit(stp(X29, X30, SP, frame as i32 - 32, Index::Offset))?;
        self.try_emit(add_imm(X29, SP, frame - 32, false))
    }
    /// Store or load x0..x(nargs-1) at sp + 0.
    fn args(&mut self, nargs: u32, load: bool) -> Result<(), EncodeError> {
        let mut i = 0;
        while i < nargs {
            let off = (i * 8) as i32;
            let (a, b) = (Reg::x(i as u8), Reg::x(i as u8 + 1));
            let w = match (nargs - i >= 2, load) {
                (true, false) => stp(a, b, SP, off, Index::Offset),
                (true, true) => ldp(a, b, SP, off, Index::Offset),
                (false, false) => str_imm(a, SP, off as u32),
                (false, true) => ldr_imm(a, SP, off as u32),
            };
            self.try_emit(w)?;
            i += 2;
        }
        Ok(())
    }
    /// Append the literal pool (8-aligned) and patch the LDRs. `base` is where word 0 will live
    /// (only its alignment matters: the code is position independent).
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

/// An entry trampoline for a function of `nargs` register arguments: calls
/// `handler(ctx, args)` (`extern "C" fn(u64, *mut u64)`; `args` points at the saved arguments,
/// which the handler may change), then continues into the function body.
pub fn entry(nargs: u32, handler: u64, ctx: u64) -> Result<Vec<u32>, EncodeError> {
    check_args(nargs)?;
    let frame = entry_frame(nargs);
    let mut a = Asm::new();
    a.frame_records(frame)?;
    a.args(nargs, false)?;
    a.emit(mov_from_sp(X1));
    a.ldr_const(X0, ctx);
    a.ldr_const(X16, handler);
    a.emit(blr(X16));
    a.args(nargs, true)?;
    a.try_emit(ldr_imm(X16, SP, frame - 24))?;
    a.try_emit(ldp(X29, X30, SP, frame as i32 - 16, Index::Offset))?;
    a.try_emit(add_imm(SP, SP, frame, false))?;
    a.emit(ret_reg(X16));
    a.finish()
}

/// An fexit trampoline for a function of `nargs` register arguments: runs the body, then calls
/// `handler(ctx, args, ret)` (`extern "C" fn(u64, *mut u64, *mut u64)`; the handler may change
/// `*ret`), then returns `*ret` to the caller.
pub fn fexit(nargs: u32, handler: u64, ctx: u64) -> Result<Vec<u32>, EncodeError> {
    check_args(nargs)?;
    let frame = fexit_frame(nargs);
    let ret = fexit_ret_offset(nargs);
    let mut a = Asm::new();
    a.frame_records(frame)?;
    a.args(nargs, false)?;
    a.try_emit(ldr_imm(X16, SP, frame - 24))?;
    a.emit(blr(X16));
    a.try_emit(str_imm(X0, SP, ret))?;
    a.emit(mov_from_sp(X1));
    a.try_emit(add_imm(X2, SP, ret, false))?;
    a.ldr_const(X0, ctx);
    a.ldr_const(X16, handler);
    a.emit(blr(X16));
    a.try_emit(ldr_imm(X0, SP, ret))?;
    a.try_emit(ldp(X29, X30, SP, frame as i32 - 16, Index::Offset))?;
    a.try_emit(add_imm(SP, SP, frame, false))?;
    a.emit(insn::RET);
    a.finish()
}

/// A veneer to `target` anywhere in the address space (4 words: 2 instructions, 1 literal).
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

    /// The instruction part of a trampoline, disassembled (literal words excluded).
    fn text(words: &[u32], n_literals: usize) -> Vec<String> {
        disassemble(&words[..words.len() - 2 * n_literals])
    }

    fn literals(words: &[u32], n: usize) -> Vec<u64> {
        let base = words.len() - 2 * n;
        (0..n)
            .map(|i| u64::from(words[base + 2 * i]) | u64::from(words[base + 2 * i + 1]) << 32)
            .collect()
    }

    #[test]
    fn entry_two_args_is_exactly_the_documented_code() {
        let w = entry(2, 0x1122_3344_5566_7788, 0xffff_0000_dead_beef).unwrap();
        let got = text(&w, 2);
        let expect = [
            "sub sp, sp, #48",
            "stp x29, x9, [sp, #32]",
            "add x29, sp, #32",
            "stp x29, x30, [sp, #16]",
            "add x29, sp, #16",
            "stp x0, x1, [sp]",
            "mov x1, sp",
            "ldr x0, #36",
            "ldr x16, #40",
            "blr x16",
            "ldp x0, x1, [sp]",
            "ldr x16, [sp, #24]",
            "ldp x29, x30, [sp, #32]",
            "add sp, sp, #48",
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
    fn entry_saves_exactly_the_arguments_the_function_takes() {
        for nargs in 0..=8u32 {
            let w = entry(nargs, 1, 2).unwrap();
            let t = text(&w, 2);
            let saves = t
                .iter()
                .filter(|l| {
                    ["stp x0,", "stp x2,", "stp x4,", "stp x6,", "str x"]
                        .iter()
                        .any(|p| l.starts_with(p))
                })
                .count();
            assert_eq!(saves as u32, nargs.div_ceil(2), "nargs {nargs}: {t:?}");
            let frame = entry_frame(nargs);
            assert_eq!(t[0], format!("sub sp, sp, #{frame}"));
            assert_eq!(frame % 16, 0);
            if nargs % 2 == 1 {
                let last = nargs - 1;
                let slot = if last == 0 {
                    "[sp]".into()
                } else {
                    format!("[sp, #{}]", last * 8)
                };
                assert!(t.contains(&format!("str x{last}, {slot}")), "{t:?}");
                assert!(t.contains(&format!("ldr x{last}, {slot}")), "{t:?}");
            }
        }
    }

    #[test]
    fn fexit_one_arg_is_exactly_the_documented_code() {
        let w = fexit(1, 0xaaaa, 0xbbbb).unwrap();
        let got = text(&w, 2);
        let expect = [
            "sub sp, sp, #64",
            "stp x29, x9, [sp, #48]",
            "add x29, sp, #48",
            "stp x29, x30, [sp, #32]",
            "add x29, sp, #32",
            "str x0, [sp]",
            "ldr x16, [sp, #40]",
            "blr x16",
            "str x0, [sp, #16]",
            "mov x1, sp",
            "add x2, sp, #16",
            "ldr x0, #28",
            "ldr x16, #32",
            "blr x16",
            "ldr x0, [sp, #16]",
            "ldp x29, x30, [sp, #48]",
            "add sp, sp, #64",
            "ret",
        ];
        assert_eq!(got, expect);
        assert_eq!(literals(&w, 2), vec![0xbbbb, 0xaaaa]);
    }

    #[test]
    fn veneer_loads_and_branches() {
        let v = veneer(0x1_2345_6789_abcd);
        assert_eq!(disassemble(&v[..2]), ["ldr x16, #8", "br x16"]);
        assert_eq!(u64::from(v[2]) | u64::from(v[3]) << 32, 0x1_2345_6789_abcd);
    }

    #[test]
    fn too_many_arguments_is_an_error() {
        assert_eq!(
            entry(9, 1, 2),
            Err(EncodeError::ImmediateOutOfRange {
                value: 9,
                min: 0,
                max: 8
            })
        );
        assert!(fexit(9, 1, 2).is_err());
    }

    #[test]
    fn every_generated_word_is_a_valid_instruction() {
        // llvm-mc refuses undefined encodings (the helper fails on any diagnostic).
        for nargs in 0..=8 {
            for w in [
                entry(nargs, u64::MAX, 0).unwrap(),
                fexit(nargs, 0, u64::MAX).unwrap(),
            ] {
                let _ = text(&w, 2);
            }
        }
    }

    #[test]
    fn literal_loads_point_at_the_pool() {
        // The LDR-literal offsets are relative, so the code is position independent: decode them.
        let w = entry(3, 0x77, 0x66).unwrap();
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
