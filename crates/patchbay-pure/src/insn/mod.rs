//! A64 instruction encoders and decoders.
//!
//! Pure functions that build and inspect single A64 instruction words (`u32`, stored
//! little-endian in memory). No `asm!`, no global state, no allocation: the same code runs in the
//! kernel and in host-side unit tests. The encodings come from the Arm Architecture Reference
//! Manual (Arm ARM, section C4 "A64 Instruction Set Encoding" and the per-instruction pages).
//!
//! Two kinds of callers use this module:
//!
//! * **The live text patcher** rewrites one instruction of a running function (a patch site,
//!   typically a `nop` turned into a `bl` to a trampoline and back), possibly while other CPUs
//!   execute it. It uses [`b`]/[`bl`] to build the new word, [`is_cmodx_safe`] to check that both
//!   the old and the new word are ones the architecture allows to be modified concurrently with
//!   their execution, and [`describe`] to say what it found when a site does not look as expected.
//! * **Trampoline generators** emit short sequences into trampoline pools: save a frame record
//!   ([`stp`] with pre-index), preserve the return address ([`MOV_X9_X30`], as Linux's ftrace
//!   does), load a handler address ([`mov_imm64`], [`ldr_literal`], [`adrp`] + [`add_imm`]), call
//!   it ([`blr`]), restore ([`ldp`] with post-index) and return ([`ret_reg`], [`br`]).
//!
//! # Branch-range rule
//!
//! Every PC-relative encoder takes the address of the instruction itself (`from`) and the target
//! (`to`) and computes the offset as `to.wrapping_sub(from) as i64`, so addresses near the top
//! of the 64-bit space (kernel virtual addresses) work and a "negative" target is simply one
//! below `from`. The offset must lie in the instruction's inclusive range, checked exactly at
//! the boundaries:
//!
//! | instruction | offset range (inclusive) | granule |
//! |---|---|---|
//! | `B`, `BL` | `-128 MiB ..= +128 MiB - 4` ([`BRANCH_RANGE_MIN`], [`BRANCH_RANGE_MAX`]) | 4 bytes |
//! | `B.cond`, `CBZ`, `CBNZ`, `LDR` (literal) | `-1 MiB ..= +1 MiB - 4` | 4 bytes |
//! | `ADR` | `-1 MiB ..= +1 MiB - 1` | 1 byte |
//! | `ADRP` | page delta `-4 GiB ..= +4 GiB - 4 KiB` | 4 KiB page |
//!
//! For the 4-byte-granule instructions both `from` and `to` must be 4-byte aligned
//! ([`EncodeError::Misaligned`]); a target out of range gives [`EncodeError::OutOfRange`]
//! carrying the offset and the range. Nothing is ever silently truncated. A function further than
//! ±128 MiB from its patch site must be reached through a trampoline that is itself within
//! range of the site and loads the full 64-bit address ([`in_branch_range`] is the check the
//! trampoline allocator uses).
//!
//! # How this is tested
//!
//! The unit tests use LLVM's disassembler as an independent oracle. They encode several thousand
//! words (boundary offsets of both signs, zero, ±4, a few hundred pseudo-random values per
//! encoder from a deterministic xorshift generator, registers across the range including
//! `sp`/`xzr` where an encoding allows them, all three addressing modes of `STP`/`LDP`), pipe
//! them in batches through a single `llvm-mc --disassemble -triple=aarch64 -mattr=+bti,+v8.5a`
//! process per batch, and compare its output with text built from the *inputs* (for example
//! `format!("bl #{offset}")`), never from the encoder's output. A few fixed cases are also checked
//! in the other direction (`llvm-mc -show-encoding` on assembly text). Error cases, decoders and
//! [`describe`] have their own tests; [`describe`] output is compared with `llvm-mc` where the two
//! syntaxes coincide.
//!
//! Worth knowing when reading `llvm-mc` 14 output: PC-relative operands are printed as the
//! *relative* offset in decimal (`bl #-134217728`, `ldr x17, #-8`, `adr x0, #-1`), `ADRP` as the
//! page delta in bytes (`adrp x0, #4096`); `MOVZ` is printed as its `mov` alias with the full
//! shifted value in decimal (`mov x0, #305397760`) except for a zero immediate with a non-zero
//! shift (`movz x0, #0, lsl #16`); `MOVK` immediates are decimal (`movk x0, #4660, lsl #16`) while
//! `BRK`/`HVC` immediates are hex (`brk #0x1`) except zero (`brk #0`); `ADD` with `lsl #12`
//! carries a trailing `// =4096` comment; `ADD` of `#0` involving `sp` is the `mov` alias.
//!
//! # Layout
//!
//! | file | what |
//! |---|---|
//! | `regs.rs` | [`Reg`] and the named registers ([`X0`]..[`X30`], [`FP`], [`LR`], [`XZR`], [`SP`]) |
//! | `encode.rs` | the encoders, their operand types ([`Cond`], [`Index`]), ranges, [`EncodeError`] |
//! | `decode.rs` | the classifiers ([`is_cmodx_safe`], [`branch_target`], ...) and [`describe`] |
//! | `mod.rs` (here) | the instruction words and opcode templates both directions share |
//!
//! Everything public is re-exported here, so callers write `insn::bl`, `insn::X16`, `insn::NOP`;
//! the submodules themselves are private.

mod decode;
mod encode;
mod regs;
#[cfg(test)]
mod testkit;

pub use decode::*;
pub use encode::*;
pub use regs::*;

// ---------------------------------------------------------------------------------------------
// Instruction words and opcode templates
// ---------------------------------------------------------------------------------------------

/// `nop`
pub const NOP: u32 = 0xd503_201f; // nop
/// `bti`: landing pad for no indirect branch at all (`hint #32`)
pub const BTI: u32 = 0xd503_241f; // bti
/// `bti c`: landing pad for indirect calls (`hint #34`, a NOP without FEAT_BTI)
pub const BTI_C: u32 = 0xd503_245f; // bti c
/// `bti j`: landing pad for indirect jumps (`hint #36`)
pub const BTI_J: u32 = 0xd503_249f; // bti j
/// `bti jc`: landing pad for both (`hint #38`)
pub const BTI_JC: u32 = 0xd503_24df; // bti jc
/// `paciasp`: sign x30 with the APIA key, SP as modifier (`hint #25`; an implicit `bti c`, or
/// `bti jc` while SCTLR_EL1.BT1 is 0)
pub const PACIASP: u32 = 0xd503_233f; // paciasp
/// `autiasp`: authenticate x30 signed by `paciasp` (`hint #29`)
pub const AUTIASP: u32 = 0xd503_23bf; // autiasp
/// `isb` (option SY)
pub const ISB: u32 = 0xd503_3fdf; // isb
/// `ret` (returns through x30)
pub const RET: u32 = 0xd65f_03c0; // ret (x30)
/// `mov x9, x30`: the ftrace-style "save the caller's return address" instruction
pub const MOV_X9_X30: u32 = 0xaa1e_03e9; // mov x9, x30   (== orr x9, xzr, x30)

// Opcode templates: every operand field zero. Encoders OR the fields in.
const B_OP: u32 = 0x1400_0000; // b #0
const BL_OP: u32 = 0x9400_0000; // bl #0
const B_COND_OP: u32 = 0x5400_0000; // b.eq #0
const CBZ_OP: u32 = 0xb400_0000; // cbz x0, #0
const CBNZ_OP: u32 = 0xb500_0000; // cbnz x0, #0
const LDR_LIT_OP: u32 = 0x5800_0000; // ldr x0, #0
const ADR_OP: u32 = 0x1000_0000; // adr x0, #0
const ADRP_OP: u32 = 0x9000_0000; // adrp x0, #0
const BR_OP: u32 = 0xd61f_0000; // br x0
const BLR_OP: u32 = 0xd63f_0000; // blr x0
const RET_OP: u32 = 0xd65f_0000; // ret x0
const SVC_OP: u32 = 0xd400_0001; // svc #0
const HVC_OP: u32 = 0xd400_0002; // hvc #0
const SMC_OP: u32 = 0xd400_0003; // smc #0
const BRK_OP: u32 = 0xd420_0000; // brk #0
const ISB_OP: u32 = 0xd503_30df; // isb #0 (CRm = option field zero)
const MOV_REG_OP: u32 = 0xaa00_03e0; // mov x0, x0   (== orr x0, xzr, x0)
const ADD_IMM_OP: u32 = 0x9100_0000; // add x0, x0, #0
const SUB_IMM_OP: u32 = 0xd100_0000; // sub x0, x0, #0
const MOVZ_OP: u32 = 0xd280_0000; // movz x0, #0   (llvm-mc: mov x0, #0)
const MOVK_OP: u32 = 0xf280_0000; // movk x0, #0
const STP_POST_OP: u32 = 0xa880_0000; // stp x0, x0, [x0], #0
const STP_OFF_OP: u32 = 0xa900_0000; // stp x0, x0, [x0]
const STP_PRE_OP: u32 = 0xa980_0000; // stp x0, x0, [x0, #0]!
const LDP_POST_OP: u32 = 0xa8c0_0000; // ldp x0, x0, [x0], #0
const LDP_OFF_OP: u32 = 0xa940_0000; // ldp x0, x0, [x0]
const LDP_PRE_OP: u32 = 0xa9c0_0000; // ldp x0, x0, [x0, #0]!
const STR_IMM_OP: u32 = 0xf900_0000; // str x0, [x0]
const LDR_IMM_OP: u32 = 0xf940_0000; // ldr x0, [x0]

// Masks selecting the fixed (opcode) bits of each class; not instruction words.
const B_MASK: u32 = 0xfc00_0000; // B, BL: imm26 free
const B_COND_MASK: u32 = 0xff00_0010; // B.cond: imm19 and cond free (bit 4 set is BC.cond)
const IMM19_MASK: u32 = 0xff00_0000; // CBZ, CBNZ, LDR literal: imm19 and Rt free
const ADR_MASK: u32 = 0x9f00_0000; // ADR, ADRP: immlo, immhi and Rd free
const BRANCH_REG_MASK: u32 = 0xffff_fc1f; // BR, BLR, RET: Rn free
const EXCEPTION_MASK: u32 = 0xffe0_001f; // SVC, HVC, SMC, BRK: imm16 free
const ISB_MASK: u32 = 0xffff_f0ff; // ISB: CRm (option) free
const MOV_REG_MASK: u32 = 0xffe0_ffe0; // ORR Xd, XZR, Xm (LSL #0): Rm and Rd free
const ADD_SUB_IMM_MASK: u32 = 0xff80_0000; // ADD/SUB imm: sh, imm12, Rn, Rd free
const MOVE_WIDE_MASK: u32 = 0xff80_0000; // MOVZ/MOVK: hw, imm16, Rd free
const LDST_MASK: u32 = 0xffc0_0000; // STP/LDP (imm7) and STR/LDR (imm12): offset and regs free
