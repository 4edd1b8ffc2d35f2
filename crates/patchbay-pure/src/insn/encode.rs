//! The encoders: one function per instruction form, returning the word or an [`EncodeError`]
//! (range and alignment are checked exactly, nothing is truncated). The module docs of
//! [`crate::insn`] give the branch-range rule every PC-relative encoder follows.

use core::fmt;

use super::{
    ADD_IMM_OP, ADR_OP, ADRP_OP, B_COND_OP, B_OP, BL_OP, BLR_OP, BR_OP, BRK_OP, CBNZ_OP, CBZ_OP,
    LDP_OFF_OP, LDP_POST_OP, LDP_PRE_OP, LDR_IMM_OP, LDR_LIT_OP, MOV_REG_OP, MOVK_OP, MOVZ_OP,
    RET_OP, STP_OFF_OP, STP_POST_OP, STP_PRE_OP, STR_IMM_OP, SUB_IMM_OP,
    regs::{Reg, SP},
};

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Why an instruction could not be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// `from` or `to` is not 4-byte aligned, for an instruction whose offset counts words
    /// (everything PC-relative except `ADR`/`ADRP`)
    Misaligned {
        /// address of the instruction
        from: u64,
        /// target address
        to: u64,
    },
    /// the displacement does not fit; carries the offset and the allowed inclusive range
    OutOfRange {
        /// address of the instruction
        from: u64,
        /// target address
        to: u64,
        /// `to - from` (for `ADRP`: the page delta in bytes)
        offset: i64,
        /// smallest encodable offset
        min: i64,
        /// largest encodable offset
        max: i64,
    },
    /// an immediate operand does not fit its field
    ImmediateOutOfRange {
        /// the immediate given (for `MOVZ`/`MOVK`: the shift)
        value: i64,
        /// smallest allowed value
        min: i64,
        /// largest allowed value
        max: i64,
    },
    /// an immediate is not a multiple of the access size
    UnscaledImmediate {
        /// the immediate given (for `MOVZ`/`MOVK`: the shift)
        value: i64,
        /// what it must be a multiple of
        scale: u32,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            EncodeError::Misaligned { from, to } => write!(
                f,
                "misaligned PC-relative reference from {from:#x} to {to:#x}: \
                 both addresses must be 4-byte aligned"
            ),
            EncodeError::OutOfRange {
                from,
                to,
                offset,
                min,
                max,
            } => {
                let (what, hint) = match (min, max) {
                    (BRANCH_RANGE_MIN, BRANCH_RANGE_MAX) => ("branch", " (B/BL reach ±128 MiB)"),
                    (COND_BRANCH_RANGE_MIN, COND_BRANCH_RANGE_MAX) => (
                        "PC-relative reference",
                        " (B.cond/CBZ/CBNZ/LDR literal reach ±1 MiB)",
                    ),
                    (ADR_RANGE_MIN, ADR_RANGE_MAX) => {
                        ("PC-relative address", " (ADR reaches ±1 MiB)")
                    }
                    (ADRP_RANGE_MIN, ADRP_RANGE_MAX) => (
                        "page-relative address",
                        " (ADRP reaches ±4 GiB in 4 KiB pages)",
                    ),
                    _ => ("PC-relative reference", ""),
                };
                write!(
                    f,
                    "{what} from {from:#x} to {to:#x} is out of range: \
                     offset {offset} not in [{min}, {max}]{hint}"
                )
            }
            EncodeError::ImmediateOutOfRange { value, min, max } => {
                write!(f, "immediate {value} out of range: not in [{min}, {max}]")
            }
            EncodeError::UnscaledImmediate { value, scale } => {
                write!(f, "immediate {value} is not a multiple of {scale}")
            }
        }
    }
}

impl core::error::Error for EncodeError {}

// ---------------------------------------------------------------------------------------------
// Ranges
// ---------------------------------------------------------------------------------------------

/// Smallest `B`/`BL` offset: -128 MiB.
pub const BRANCH_RANGE_MIN: i64 = -(128 << 20);
/// Largest `B`/`BL` offset: +128 MiB - 4.
pub const BRANCH_RANGE_MAX: i64 = (128 << 20) - 4;
/// Smallest `B.cond`/`CBZ`/`CBNZ`/`LDR` (literal) offset: -1 MiB.
pub const COND_BRANCH_RANGE_MIN: i64 = -(1 << 20);
/// Largest `B.cond`/`CBZ`/`CBNZ`/`LDR` (literal) offset: +1 MiB - 4.
pub const COND_BRANCH_RANGE_MAX: i64 = (1 << 20) - 4;
/// Smallest `ADR` offset: -1 MiB.
pub const ADR_RANGE_MIN: i64 = -(1 << 20);
/// Largest `ADR` offset: +1 MiB - 1.
pub const ADR_RANGE_MAX: i64 = (1 << 20) - 1;
/// Smallest `ADRP` page delta (in bytes): -4 GiB.
pub const ADRP_RANGE_MIN: i64 = -(1 << 32);
/// Largest `ADRP` page delta (in bytes): +4 GiB - 4 KiB.
pub const ADRP_RANGE_MAX: i64 = (1 << 32) - 4096;

/// Can a `B`/`BL` at `from` reach `to`? Pure range math on `to.wrapping_sub(from) as i64`
/// (inclusive [`BRANCH_RANGE_MIN`]..=[`BRANCH_RANGE_MAX`]); alignment is not checked.
pub const fn in_branch_range(from: u64, to: u64) -> bool {
    let offset = to.wrapping_sub(from) as i64;
    offset >= BRANCH_RANGE_MIN && offset <= BRANCH_RANGE_MAX
}

/// Range-check `to - from` against `[min, max]`.
#[inline]
fn offset_in(from: u64, to: u64, min: i64, max: i64) -> Result<i64, EncodeError> {
    let offset = to.wrapping_sub(from) as i64;
    if (min..=max).contains(&offset) {
        Ok(offset)
    } else {
        Err(EncodeError::OutOfRange {
            from,
            to,
            offset,
            min,
            max,
        })
    }
}

/// Word-granular PC-relative offset: both ends 4-aligned, then range-checked.
#[inline]
fn word_offset(from: u64, to: u64, min: i64, max: i64) -> Result<i64, EncodeError> {
    if (from | to) & 3 != 0 {
        return Err(EncodeError::Misaligned { from, to });
    }
    offset_in(from, to, min, max)
}

/// The low `bits` bits of `value` (two's complement), as a field value.
const fn field(value: i64, bits: u32) -> u32 {
    (value as u32) & ((1u32 << bits) - 1)
}

// ---------------------------------------------------------------------------------------------
// Branches and PC-relative addressing
// ---------------------------------------------------------------------------------------------

/// `B to` placed at `from`. Offset range `-128 MiB ..= +128 MiB - 4`, both addresses 4-aligned.
pub fn b(from: u64, to: u64) -> Result<u32, EncodeError> {
    let offset = word_offset(from, to, BRANCH_RANGE_MIN, BRANCH_RANGE_MAX)?;
    Ok(B_OP | field(offset >> 2, 26))
}

/// `BL to` placed at `from` (writes the return address `from + 4` to x30). Same range as [`b`].
/// Inlinable across crates: the batch planner encodes one per armed site.
#[inline]
pub fn bl(from: u64, to: u64) -> Result<u32, EncodeError> {
    let offset = word_offset(from, to, BRANCH_RANGE_MIN, BRANCH_RANGE_MAX)?;
    Ok(BL_OP | field(offset >> 2, 26))
}

/// A condition code for [`b_cond`] (`hs`/`lo` are the unsigned `cs`/`cc`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Cond {
    /// equal (Z)
    Eq = 0,
    /// not equal (!Z)
    Ne = 1,
    /// unsigned higher or same, a.k.a. carry set (C)
    Hs = 2,
    /// unsigned lower, a.k.a. carry clear (!C)
    Lo = 3,
    /// negative (N)
    Mi = 4,
    /// positive or zero (!N)
    Pl = 5,
    /// overflow (V)
    Vs = 6,
    /// no overflow (!V)
    Vc = 7,
    /// unsigned higher (C && !Z)
    Hi = 8,
    /// unsigned lower or same (!C || Z)
    Ls = 9,
    /// signed greater or equal (N == V)
    Ge = 10,
    /// signed less than (N != V)
    Lt = 11,
    /// signed greater than (!Z && N == V)
    Gt = 12,
    /// signed less or equal (Z || N != V)
    Le = 13,
    /// always
    Al = 14,
}

impl Cond {
    /// The 4-bit condition field.
    pub const fn code(self) -> u32 {
        self as u32
    }

    /// The assembler suffix, e.g. `"ne"` for `b.ne`.
    pub const fn name(self) -> &'static str {
        cond_name(self as u32)
    }
}

/// Assembler name of a 4-bit condition field (15 is `nv`, which behaves as "always").
pub(super) const fn cond_name(code: u32) -> &'static str {
    match code & 0xf {
        0 => "eq",
        1 => "ne",
        2 => "hs",
        3 => "lo",
        4 => "mi",
        5 => "pl",
        6 => "vs",
        7 => "vc",
        8 => "hi",
        9 => "ls",
        10 => "ge",
        11 => "lt",
        12 => "gt",
        13 => "le",
        14 => "al",
        _ => "nv",
    }
}

/// `B.cond to` placed at `from`. Offset range `-1 MiB ..= +1 MiB - 4`, both addresses 4-aligned.
pub fn b_cond(cond: Cond, from: u64, to: u64) -> Result<u32, EncodeError> {
    let offset = word_offset(from, to, COND_BRANCH_RANGE_MIN, COND_BRANCH_RANGE_MAX)?;
    Ok(B_COND_OP | field(offset >> 2, 19) << 5 | cond.code())
}

/// `CBZ Xt, to` (64-bit) placed at `from`; `rt` 31 is `xzr`. Range as [`b_cond`].
pub fn cbz(rt: Reg, from: u64, to: u64) -> Result<u32, EncodeError> {
    let offset = word_offset(from, to, COND_BRANCH_RANGE_MIN, COND_BRANCH_RANGE_MAX)?;
    Ok(CBZ_OP | field(offset >> 2, 19) << 5 | rt.field())
}

/// `CBNZ Xt, to` (64-bit) placed at `from`; `rt` 31 is `xzr`. Range as [`b_cond`].
pub fn cbnz(rt: Reg, from: u64, to: u64) -> Result<u32, EncodeError> {
    let offset = word_offset(from, to, COND_BRANCH_RANGE_MIN, COND_BRANCH_RANGE_MAX)?;
    Ok(CBNZ_OP | field(offset >> 2, 19) << 5 | rt.field())
}

/// `LDR Xt, to`: load the 64-bit literal at `to` (PC-relative, instruction at `from`).
/// Offset range `-1 MiB ..= +1 MiB - 4`; both addresses must be 4-aligned, which is all the
/// encoding needs. A literal that is rewritten while other CPUs may load it (a trampoline's target
/// address) should additionally be 8-aligned so the load is single-copy atomic; that placement is
/// the caller's business. `rt` 31 is `xzr`.
pub fn ldr_literal(rt: Reg, from: u64, to: u64) -> Result<u32, EncodeError> {
    let offset = word_offset(from, to, COND_BRANCH_RANGE_MIN, COND_BRANCH_RANGE_MAX)?;
    Ok(LDR_LIT_OP | field(offset >> 2, 19) << 5 | rt.field())
}

/// The immlo:immhi fields shared by ADR and ADRP.
const fn adr_fields(imm21: i64) -> u32 {
    field(imm21, 2) << 29 | field(imm21 >> 2, 19) << 5
}

/// `ADR Xd, to` (instruction at `from`): byte-granular, offset range `-1 MiB ..= +1 MiB - 1`,
/// no alignment requirement. `rd` 31 is `xzr`.
pub fn adr(rd: Reg, from: u64, to: u64) -> Result<u32, EncodeError> {
    let offset = offset_in(from, to, ADR_RANGE_MIN, ADR_RANGE_MAX)?;
    Ok(ADR_OP | adr_fields(offset) | rd.field())
}

/// `ADRP Xd, to` (instruction at `from`): sets `Xd` to the 4 KiB page of `to`. The encoded value is
/// the page delta `(to & !0xfff) - (from & !0xfff)`, which must lie in `-4 GiB ..= +4 GiB - 4 KiB`
/// (reported in bytes by [`EncodeError::OutOfRange`]). Follow with [`add_imm`] of `to & 0xfff` for
/// the exact address. `rd` 31 is `xzr`.
pub fn adrp(rd: Reg, from: u64, to: u64) -> Result<u32, EncodeError> {
    let delta = (to & !0xfff).wrapping_sub(from & !0xfff) as i64;
    if !(ADRP_RANGE_MIN..=ADRP_RANGE_MAX).contains(&delta) {
        return Err(EncodeError::OutOfRange {
            from,
            to,
            offset: delta,
            min: ADRP_RANGE_MIN,
            max: ADRP_RANGE_MAX,
        });
    }
    Ok(ADRP_OP | adr_fields(delta >> 12) | rd.field())
}

/// `BR Xn`: branch to the address in `Xn` (`rn` 31 would be `xzr`).
pub const fn br(rn: Reg) -> u32 {
    BR_OP | rn.field() << 5
}

/// `BLR Xn`: call the address in `Xn` (`rn` 31 would be `xzr`).
pub const fn blr(rn: Reg) -> u32 {
    BLR_OP | rn.field() << 5
}

/// `RET Xn`: return through `Xn`; `ret_reg(X30) == RET`.
pub const fn ret_reg(rn: Reg) -> u32 {
    RET_OP | rn.field() << 5
}

/// `BRK #imm16`: breakpoint exception with the immediate reported in ESR_ELx.ISS.
pub const fn brk(imm16: u16) -> u32 {
    BRK_OP | (imm16 as u32) << 5
}

// ---------------------------------------------------------------------------------------------
// Moves and arithmetic
// ---------------------------------------------------------------------------------------------

/// `MOV Xd, Xm`, i.e. `ORR Xd, XZR, Xm`. Register 31 is `xzr` in both operands, so this cannot
/// move to or from `sp`: use [`mov_from_sp`] / [`mov_to_sp`] for that.
pub const fn mov_reg(rd: Reg, rm: Reg) -> u32 {
    MOV_REG_OP | rm.field() << 16 | rd.field()
}

/// `MOV Xd, SP`, i.e. `ADD Xd, SP, #0` (`rd` 31 is `sp`, giving `mov sp, sp`).
pub const fn mov_from_sp(rd: Reg) -> u32 {
    ADD_IMM_OP | SP.field() << 5 | rd.field()
}

/// `MOV SP, Xn`, i.e. `ADD SP, Xn, #0` (`rn` 31 is `sp`).
pub const fn mov_to_sp(rn: Reg) -> u32 {
    ADD_IMM_OP | rn.field() << 5 | SP.field()
}

/// Shared ADD/SUB (immediate, 64-bit) encoding.
fn add_sub_imm(op: u32, rd: Reg, rn: Reg, imm: u32, lsl12: bool) -> Result<u32, EncodeError> {
    if imm > 4095 {
        return Err(EncodeError::ImmediateOutOfRange {
            value: imm as i64,
            min: 0,
            max: 4095,
        });
    }
    Ok(op | (lsl12 as u32) << 22 | imm << 10 | rn.field() << 5 | rd.field())
}

/// `ADD Xd|SP, Xn|SP, #imm{, LSL #12}` (64-bit). `imm` in 0..=4095; `lsl12` shifts it left by 12.
/// Register 31 is `sp` in both operands.
pub fn add_imm(rd: Reg, rn: Reg, imm: u32, lsl12: bool) -> Result<u32, EncodeError> {
    add_sub_imm(ADD_IMM_OP, rd, rn, imm, lsl12)
}

/// `SUB Xd|SP, Xn|SP, #imm{, LSL #12}` (64-bit); operands as [`add_imm`].
pub fn sub_imm(rd: Reg, rn: Reg, imm: u32, lsl12: bool) -> Result<u32, EncodeError> {
    add_sub_imm(SUB_IMM_OP, rd, rn, imm, lsl12)
}

/// The `hw` field for a move-wide shift: range first, then granularity.
fn move_wide_hw(shift: u8) -> Result<u32, EncodeError> {
    if shift > 48 {
        Err(EncodeError::ImmediateOutOfRange {
            value: shift as i64,
            min: 0,
            max: 48,
        })
    } else if !shift.is_multiple_of(16) {
        Err(EncodeError::UnscaledImmediate {
            value: shift as i64,
            scale: 16,
        })
    } else {
        Ok(shift as u32 / 16)
    }
}

/// A move-wide word from already-checked fields.
const fn move_wide(op: u32, rd: Reg, imm16: u16, hw: u32) -> u32 {
    op | hw << 21 | (imm16 as u32) << 5 | rd.field()
}

/// `MOVZ Xd, #imm16, LSL #shift` (64-bit): `Xd = imm16 << shift`, other bits zero.
/// `shift` must be 0, 16, 32 or 48 (a larger value is [`EncodeError::ImmediateOutOfRange`], one
/// that is not a multiple of 16 is [`EncodeError::UnscaledImmediate`]). `rd` 31 is `xzr`.
pub fn movz(rd: Reg, imm16: u16, shift: u8) -> Result<u32, EncodeError> {
    Ok(move_wide(MOVZ_OP, rd, imm16, move_wide_hw(shift)?))
}

/// `MOVK Xd, #imm16, LSL #shift` (64-bit): replace bits `shift..shift + 16` of `Xd`, keep the
/// rest. `shift` as for [`movz`].
pub fn movk(rd: Reg, imm16: u16, shift: u8) -> Result<u32, EncodeError> {
    Ok(move_wide(MOVK_OP, rd, imm16, move_wide_hw(shift)?))
}

/// MOVZ + 3×MOVK loading an arbitrary 64-bit constant (always 4 words, so code size is fixed)
///
/// The words are `movz Xd, #v[15:0]`, `movk Xd, #v[31:16], lsl #16`, `movk .. lsl #32`,
/// `movk .. lsl #48`; none is skipped even when a chunk is zero, so a trampoline's layout does not
/// depend on the address it loads.
pub const fn mov_imm64(rd: Reg, value: u64) -> [u32; 4] {
    [
        move_wide(MOVZ_OP, rd, value as u16, 0),
        move_wide(MOVK_OP, rd, (value >> 16) as u16, 1),
        move_wide(MOVK_OP, rd, (value >> 32) as u16, 2),
        move_wide(MOVK_OP, rd, (value >> 48) as u16, 3),
    ]
}

// ---------------------------------------------------------------------------------------------
// Loads and stores
// ---------------------------------------------------------------------------------------------

/// Addressing mode of [`stp`] / [`ldp`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Index {
    /// `[Xn|SP, #imm]`: address `Xn + imm`, no writeback
    Offset,
    /// `[Xn|SP, #imm]!`: `Xn += imm` first, then access `Xn`
    PreIndex,
    /// `[Xn|SP], #imm`: access `Xn`, then `Xn += imm`
    PostIndex,
}

/// Shared STP/LDP (64-bit) encoding; `ops` are the post, offset and pre templates.
fn pair(
    ops: [u32; 3],
    rt1: Reg,
    rt2: Reg,
    rn: Reg,
    imm: i32,
    index: Index,
) -> Result<u32, EncodeError> {
    if !(-512..=504).contains(&imm) {
        return Err(EncodeError::ImmediateOutOfRange {
            value: imm as i64,
            min: -512,
            max: 504,
        });
    }
    if imm % 8 != 0 {
        return Err(EncodeError::UnscaledImmediate {
            value: imm as i64,
            scale: 8,
        });
    }
    let op = match index {
        Index::PostIndex => ops[0],
        Index::Offset => ops[1],
        Index::PreIndex => ops[2],
    };
    Ok(op | field(imm as i64 / 8, 7) << 15 | rt2.field() << 10 | rn.field() << 5 | rt1.field())
}

/// `STP Xt1, Xt2, [Xn|SP, #imm]` / `[Xn|SP, #imm]!` / `[Xn|SP], #imm` (64-bit).
///
/// `imm` is a multiple of 8 in -512..=504 (checked in that order: range, then scale). `rn` 31 is
/// `sp`; `rt1`/`rt2` 31 are `xzr`. With writeback, `rn` equal to `rt1` or `rt2` (other than `sp`)
/// is CONSTRAINED UNPREDICTABLE in the Arm ARM; the encoder does not reject it.
pub fn stp(rt1: Reg, rt2: Reg, rn: Reg, imm: i32, index: Index) -> Result<u32, EncodeError> {
    pair(
        [STP_POST_OP, STP_OFF_OP, STP_PRE_OP],
        rt1,
        rt2,
        rn,
        imm,
        index,
    )
}

/// `LDP Xt1, Xt2, [Xn|SP, #imm]` / `[Xn|SP, #imm]!` / `[Xn|SP], #imm` (64-bit); operands as for
/// [`stp`]. `rt1 == rt2`, and `rn` equal to either with writeback, are CONSTRAINED UNPREDICTABLE
/// and not rejected.
pub fn ldp(rt1: Reg, rt2: Reg, rn: Reg, imm: i32, index: Index) -> Result<u32, EncodeError> {
    pair(
        [LDP_POST_OP, LDP_OFF_OP, LDP_PRE_OP],
        rt1,
        rt2,
        rn,
        imm,
        index,
    )
}

/// Shared STR/LDR (immediate, unsigned offset, 64-bit) encoding.
fn single(op: u32, rt: Reg, rn: Reg, imm: u32) -> Result<u32, EncodeError> {
    if imm > 32760 {
        return Err(EncodeError::ImmediateOutOfRange {
            value: imm as i64,
            min: 0,
            max: 32760,
        });
    }
    if !imm.is_multiple_of(8) {
        return Err(EncodeError::UnscaledImmediate {
            value: imm as i64,
            scale: 8,
        });
    }
    Ok(op | (imm / 8) << 10 | rn.field() << 5 | rt.field())
}

/// `STR Xt, [Xn|SP, #imm]` (unsigned offset, 64-bit): `imm` a multiple of 8 in 0..=32760.
/// `rn` 31 is `sp`, `rt` 31 is `xzr`.
pub fn str_imm(rt: Reg, rn: Reg, imm: u32) -> Result<u32, EncodeError> {
    single(STR_IMM_OP, rt, rn, imm)
}

/// `LDR Xt, [Xn|SP, #imm]` (unsigned offset, 64-bit); operands as for [`str_imm`].
pub fn ldr_imm(rt: Reg, rn: Reg, imm: u32) -> Result<u32, EncodeError> {
    single(LDR_IMM_OP, rt, rn, imm)
}

#[cfg(test)]
mod tests {
    use crate::{
        insn::{
            testkit::{Rng, at, word_offsets},
            *,
        },
        llvm_mc::{assemble, disassemble},
    };

    /// Disassemble all case words in one batch and compare with the expected text. With
    /// `describe_too`, [`describe`] must also print exactly what llvm-mc prints (only for words
    /// that are neither PC-relative nor MOVZ/MOVK, where the syntaxes deliberately differ).
    fn check(cases: &[(u32, String)], describe_too: bool) {
        let words: Vec<u32> = cases.iter().map(|c| c.0).collect();
        let got = disassemble(&words);
        let mut bad = Vec::new();
        for ((w, expected), got) in cases.iter().zip(&got) {
            if expected != got {
                bad.push(format!(
                    "{w:#010x}: expected `{expected}`, llvm-mc says `{got}`"
                ));
            }
            let described = describe(*w, 0).to_string();
            if describe_too && &described != got {
                bad.push(format!(
                    "{w:#010x}: describe says `{described}`, llvm-mc `{got}`"
                ));
            }
        }
        assert!(
            bad.is_empty(),
            "{} mismatches in {} cases:\n{}",
            bad.len(),
            cases.len(),
            bad.iter().take(40).cloned().collect::<Vec<_>>().join("\n")
        );
    }

    /// [`describe`] of each PC-relative word at its `pc` must print the expected text.
    fn check_described(described: &[(u32, u64, String)]) {
        for (w, pc, text) in described {
            assert_eq!(
                &describe(*w, *pc).to_string(),
                text,
                "describe({w:#010x}, {pc:#x})"
            );
        }
    }

    // ----- inputs ----------------------------------------------------------------------------

    /// Registers every encoder test walks through (31 added where the encoding allows it).
    const REGS: [Reg; 6] = [X0, X1, X9, X17, X29, X30];

    /// Register name as llvm-mc prints it: 31 is `xzr`.
    fn xn(r: Reg) -> String {
        if r.num() == 31 {
            "xzr".to_string()
        } else {
            format!("x{}", r.num())
        }
    }

    /// Register name as llvm-mc prints it: 31 is `sp`.
    fn spn(r: Reg) -> String {
        if r.num() == 31 {
            "sp".to_string()
        } else {
            format!("x{}", r.num())
        }
    }

    /// Condition names in encoding order, written out independently of `Cond::name`.
    const CONDS: [(Cond, &str); 15] = [
        (Cond::Eq, "eq"),
        (Cond::Ne, "ne"),
        (Cond::Hs, "hs"),
        (Cond::Lo, "lo"),
        (Cond::Mi, "mi"),
        (Cond::Pl, "pl"),
        (Cond::Vs, "vs"),
        (Cond::Vc, "vc"),
        (Cond::Hi, "hi"),
        (Cond::Ls, "ls"),
        (Cond::Ge, "ge"),
        (Cond::Lt, "lt"),
        (Cond::Gt, "gt"),
        (Cond::Le, "le"),
        (Cond::Al, "al"),
    ];

    // ----- against llvm-mc: disassembly ------------------------------------------------------

    #[test]
    fn fixed_words_and_register_forms_match_llvm() {
        let mut cases: Vec<(u32, String)> = vec![
            (NOP, "nop".into()),
            (BTI, "bti".into()),
            (BTI_C, "bti c".into()),
            (BTI_J, "bti j".into()),
            (BTI_JC, "bti jc".into()),
            (PACIASP, "paciasp".into()),
            (AUTIASP, "autiasp".into()),
            (ISB, "isb".into()),
            (RET, "ret".into()),
            (MOV_X9_X30, "mov x9, x30".into()),
            (0xd400_0002, "hvc #0".into()),
            (0xd400_0001, "svc #0".into()),
            (0xd400_0003, "smc #0".into()),
            (0xd400_0202, "hvc #0x10".into()),
        ];
        let mut regs: Vec<Reg> = REGS.to_vec();
        regs.push(XZR);
        for (i, &r) in regs.iter().enumerate() {
            let other = regs[(i + 3) % regs.len()];
            cases.push((br(r), format!("br {}", xn(r))));
            cases.push((blr(r), format!("blr {}", xn(r))));
            let ret_text = if r == X30 {
                "ret".to_string()
            } else {
                format!("ret {}", xn(r))
            };
            cases.push((ret_reg(r), ret_text));
            cases.push((mov_reg(r, other), format!("mov {}, {}", xn(r), xn(other))));
            cases.push((mov_reg(other, r), format!("mov {}, {}", xn(other), xn(r))));
            cases.push((mov_from_sp(r), format!("mov {}, sp", spn(r))));
            cases.push((mov_to_sp(r), format!("mov sp, {}", spn(r))));
        }
        for imm in [0u16, 1, 2, 0x7f, 0x800, 0x1234, 0xf000, 0xffff] {
            let text = if imm == 0 {
                "brk #0".to_string()
            } else {
                format!("brk #{imm:#x}")
            };
            cases.push((brk(imm), text));
        }
        let mut rng = Rng(0x0123_4567_89ab_cdef);
        for _ in 0..100 {
            let imm = rng.next() as u16;
            let text = if imm == 0 {
                "brk #0".to_string()
            } else {
                format!("brk #{imm:#x}")
            };
            cases.push((brk(imm), text));
            let (a, c) = (rng.reg(), rng.reg());
            cases.push((mov_reg(a, c), format!("mov {}, {}", xn(a), xn(c))));
            let r = rng.reg();
            cases.push((br(r), format!("br {}", xn(r))));
            cases.push((blr(r), format!("blr {}", xn(r))));
        }
        check(&cases, true);
        assert_eq!(ret_reg(X30), RET);
        assert_eq!(mov_reg(X9, X30), MOV_X9_X30);
        assert_eq!(mov_from_sp(X29), add_imm(X29, SP, 0, false).unwrap());
    }

    #[test]
    fn branches_match_llvm() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut cases: Vec<(u32, String)> = Vec::new();
        // (word, from, expected describe) for PC-relative words.
        let mut described: Vec<(u32, u64, String)> = Vec::new();

        for (from, off) in word_offsets(&mut rng, BRANCH_RANGE_MIN, BRANCH_RANGE_MAX, 400) {
            let to = at(from, off);
            let w = b(from, to).unwrap();
            cases.push((w, format!("b #{off}")));
            described.push((w, from, format!("b {to:#x}")));
            let w = bl(from, to).unwrap();
            cases.push((w, format!("bl #{off}")));
            described.push((w, from, format!("bl {to:#x}")));
        }
        let offsets = word_offsets(&mut rng, COND_BRANCH_RANGE_MIN, COND_BRANCH_RANGE_MAX, 300);
        for (i, &(from, off)) in offsets.iter().enumerate() {
            let to = at(from, off);
            let (cond, name) = CONDS[i % CONDS.len()];
            let w = b_cond(cond, from, to).unwrap();
            cases.push((w, format!("b.{name} #{off}")));
            described.push((w, from, format!("b.{name} {to:#x}")));

            let rt = if i < REGS.len() * 3 {
                REGS[i % REGS.len()]
            } else {
                rng.reg()
            };
            let w = cbz(rt, from, to).unwrap();
            cases.push((w, format!("cbz {}, #{off}", xn(rt))));
            described.push((w, from, format!("cbz {}, {to:#x}", xn(rt))));
            let w = cbnz(rt, from, to).unwrap();
            cases.push((w, format!("cbnz {}, #{off}", xn(rt))));
            described.push((w, from, format!("cbnz {}, {to:#x}", xn(rt))));
        }
        for (cond, name) in CONDS {
            cases.push((
                b_cond(cond, 0x1000, 0x1008).unwrap(),
                format!("b.{name} #8"),
            ));
        }
        cases.push((cbz(XZR, 0x1000, 0x1000).unwrap(), "cbz xzr, #0".into()));
        cases.push((cbnz(XZR, 0x1000, 0xffc).unwrap(), "cbnz xzr, #-4".into()));
        check(&cases, false);
        check_described(&described);
    }

    #[test]
    fn pc_relative_data_match_llvm() {
        let mut rng = Rng(0xdead_beef_cafe_f00d);
        let mut cases: Vec<(u32, String)> = Vec::new();
        let mut described: Vec<(u32, u64, String)> = Vec::new();
        let mut regs: Vec<Reg> = REGS.to_vec();
        regs.push(XZR);

        let offsets = word_offsets(&mut rng, COND_BRANCH_RANGE_MIN, COND_BRANCH_RANGE_MAX, 300);
        for (i, &(from, off)) in offsets.iter().enumerate() {
            let to = at(from, off);
            let rt = if i < regs.len() * 3 {
                regs[i % regs.len()]
            } else {
                rng.reg()
            };
            let w = ldr_literal(rt, from, to).unwrap();
            cases.push((w, format!("ldr {}, #{off}", xn(rt))));
            described.push((w, from, format!("ldr {}, {to:#x}", xn(rt))));
        }

        // ADR: byte granular.
        let mut adr_offsets: Vec<(u64, i64)> = Vec::new();
        for off in [
            ADR_RANGE_MIN,
            ADR_RANGE_MIN + 1,
            -4,
            -1,
            0,
            1,
            2,
            3,
            4,
            ADR_RANGE_MAX - 1,
        ] {
            adr_offsets.extend([
                (0x4008_0000, off),
                (0x4008_0003, off),
                (0xffff_ffff_ffff_fffe, off),
            ]);
        }
        adr_offsets.push((0x1234, ADR_RANGE_MAX));
        for _ in 0..300 {
            adr_offsets.push((rng.next(), rng.range(ADR_RANGE_MIN, ADR_RANGE_MAX)));
        }
        for (i, &(from, off)) in adr_offsets.iter().enumerate() {
            let to = at(from, off);
            let rd = if i < regs.len() * 3 {
                regs[i % regs.len()]
            } else {
                rng.reg()
            };
            let w = adr(rd, from, to).unwrap();
            cases.push((w, format!("adr {}, #{off}", xn(rd))));
            described.push((w, from, format!("adr {}, {to:#x}", xn(rd))));
        }

        // ADRP: page granular; `from` and `to` carry arbitrary in-page offsets.
        let mut pages: Vec<i64> = vec![
            ADRP_RANGE_MIN,
            ADRP_RANGE_MIN + 4096,
            -4096,
            0,
            4096,
            ADRP_RANGE_MAX - 4096,
            ADRP_RANGE_MAX,
        ];
        for _ in 0..300 {
            pages.push(rng.range(ADRP_RANGE_MIN >> 12, ADRP_RANGE_MAX >> 12) << 12);
        }
        for (i, &delta) in pages.iter().enumerate() {
            let from_page = if i % 2 == 0 {
                rng.next() & !0xfff
            } else {
                0xffff_8000_4000_0000
            };
            let from = from_page | rng.below(4096);
            let to_page = at(from_page, delta);
            let to = to_page | rng.below(4096);
            let rd = if i < regs.len() * 3 {
                regs[i % regs.len()]
            } else {
                rng.reg()
            };
            let w = adrp(rd, from, to).unwrap();
            cases.push((w, format!("adrp {}, #{delta}", xn(rd))));
            described.push((w, from, format!("adrp {}, {to_page:#x}", xn(rd))));
        }
        check(&cases, false);
        check_described(&described);
    }

    #[test]
    fn add_sub_match_llvm() {
        let mut rng = Rng(0x1357_9bdf_0246_8ace);
        let mut regs: Vec<Reg> = REGS.to_vec();
        regs.push(SP);
        let mut inputs: Vec<(Reg, Reg, u32, bool)> = Vec::new();
        for (i, &rd) in regs.iter().enumerate() {
            let rn = regs[(i + 2) % regs.len()];
            for imm in [0, 1, 16, 4095] {
                for lsl12 in [false, true] {
                    inputs.push((rd, rn, imm, lsl12));
                    inputs.push((rd, rd, imm, lsl12));
                }
            }
        }
        for _ in 0..300 {
            let imm = if rng.below(8) == 0 {
                0
            } else {
                rng.below(4096) as u32
            };
            inputs.push((rng.reg(), rng.reg(), imm, rng.below(2) == 1));
        }
        let mut cases: Vec<(u32, String)> = Vec::new();
        for (rd, rn, imm, lsl12) in inputs {
            let shift = if lsl12 { ", lsl #12" } else { "" };
            let (d, n) = (spn(rd), spn(rn));
            let add_text = if imm == 0 && !lsl12 && (rd.num() == 31 || rn.num() == 31) {
                format!("mov {d}, {n}")
            } else {
                format!("add {d}, {n}, #{imm}{shift}")
            };
            cases.push((add_imm(rd, rn, imm, lsl12).unwrap(), add_text));
            cases.push((
                sub_imm(rd, rn, imm, lsl12).unwrap(),
                format!("sub {d}, {n}, #{imm}{shift}"),
            ));
        }
        check(&cases, true);
    }

    #[test]
    fn move_wide_matches_llvm() {
        let mut rng = Rng(0x0f1e_2d3c_4b5a_6978);
        let mut regs: Vec<Reg> = REGS.to_vec();
        regs.push(XZR);
        let mut inputs: Vec<(Reg, u16, u8)> = Vec::new();
        for &rd in &regs {
            for imm in [0u16, 1, 0x1234, 0x8000, 0xffff] {
                for shift in [0u8, 16, 32, 48] {
                    inputs.push((rd, imm, shift));
                }
            }
        }
        for _ in 0..300 {
            let imm = if rng.below(8) == 0 {
                0
            } else {
                rng.next() as u16
            };
            inputs.push((rng.reg(), imm, rng.below(4) as u8 * 16));
        }
        let mut cases: Vec<(u32, String)> = Vec::new();
        for &(rd, imm, shift) in &inputs {
            let r = xn(rd);
            let movz_text = if imm == 0 && shift != 0 {
                format!("movz {r}, #0, lsl #{shift}")
            } else {
                format!("mov {r}, #{}", ((imm as u64) << shift) as i64)
            };
            cases.push((movz(rd, imm, shift).unwrap(), movz_text));
            let movk_text = if shift == 0 {
                format!("movk {r}, #{imm}")
            } else {
                format!("movk {r}, #{imm}, lsl #{shift}")
            };
            cases.push((movk(rd, imm, shift).unwrap(), movk_text));
        }
        let mut values: Vec<u64> =
            vec![0, 1, u64::MAX, 0xffff_8000_0008_1234, 0x0000_ffff_0000_ffff];
        for _ in 0..200 {
            values.push(rng.next());
        }
        for (i, &v) in values.iter().enumerate() {
            let rd = regs[i % regs.len()];
            let r = xn(rd);
            let words = mov_imm64(rd, v);
            let lo = v & 0xffff;
            cases.push((words[0], format!("mov {r}, #{lo}")));
            for (k, w) in words.iter().enumerate().skip(1) {
                let chunk = (v >> (16 * k)) & 0xffff;
                cases.push((*w, format!("movk {r}, #{chunk}, lsl #{}", 16 * k)));
            }
        }
        check(&cases, false);
        // describe's own (non-alias, hex) syntax.
        assert_eq!(
            describe(movz(X0, 0x1234, 16).unwrap(), 0).to_string(),
            "movz x0, #0x1234, lsl #16"
        );
        assert_eq!(
            describe(movk(X17, 0xbeef, 48).unwrap(), 0).to_string(),
            "movk x17, #0xbeef, lsl #48"
        );
        assert_eq!(
            describe(movz(XZR, 0, 0).unwrap(), 0).to_string(),
            "movz xzr, #0x0"
        );
    }

    #[test]
    fn loads_and_stores_match_llvm() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let mut cases: Vec<(u32, String)> = Vec::new();
        let modes = [Index::Offset, Index::PreIndex, Index::PostIndex];
        let addressing = |rn: Reg, imm: i32, index: Index| -> String {
            let base = spn(rn);
            match index {
                Index::Offset if imm == 0 => format!("[{base}]"),
                Index::Offset => format!("[{base}, #{imm}]"),
                Index::PreIndex => format!("[{base}, #{imm}]!"),
                Index::PostIndex => format!("[{base}], #{imm}"),
            }
        };
        // (rt1, rt2, rn): no overlap between the data registers and a written-back base, and
        // rt1 != rt2 for LDP (both are CONSTRAINED UNPREDICTABLE and llvm-mc warns about them).
        let mut inputs: Vec<(Reg, Reg, Reg, i32, Index)> = Vec::new();
        let triples = [
            (X29, X30, SP),
            (X0, X1, SP),
            (X9, X17, X0),
            (X17, X29, X30),
            (XZR, XZR, SP),
            (X30, X0, X9),
            (X1, XZR, X17),
        ];
        for (rt1, rt2, rn) in triples {
            for imm in [-512, -504, -16, -8, 0, 8, 16, 496, 504] {
                for index in modes {
                    inputs.push((rt1, rt2, rn, imm, index));
                }
            }
        }
        while inputs.len() < 500 {
            let (rt1, rt2, rn) = (rng.reg(), rng.reg(), rng.reg());
            let index = modes[rng.below(3) as usize];
            let clash = rn.num() != 31 && (rn == rt1 || rn == rt2);
            if rt1 == rt2 || (index != Index::Offset && clash) {
                continue;
            }
            inputs.push((rt1, rt2, rn, rng.range(-64, 63) as i32 * 8, index));
        }
        for (rt1, rt2, rn, imm, index) in inputs {
            let (a, b) = (xn(rt1), xn(rt2));
            let mem = addressing(rn, imm, index);
            cases.push((
                stp(rt1, rt2, rn, imm, index).unwrap(),
                format!("stp {a}, {b}, {mem}"),
            ));
            if rt1 != rt2 {
                cases.push((
                    ldp(rt1, rt2, rn, imm, index).unwrap(),
                    format!("ldp {a}, {b}, {mem}"),
                ));
            }
        }

        let mut singles: Vec<(Reg, Reg, u32)> = Vec::new();
        for (i, &rt) in REGS.iter().chain([&XZR]).enumerate() {
            for imm in [0, 8, 16, 4096, 32752, 32760] {
                singles.push((
                    rt,
                    if i % 2 == 0 {
                        SP
                    } else {
                        REGS[(i + 1) % REGS.len()]
                    },
                    imm,
                ));
            }
        }
        for _ in 0..300 {
            singles.push((rng.reg(), rng.reg(), rng.below(4096) as u32 * 8));
        }
        for (rt, rn, imm) in singles {
            let mem = if imm == 0 {
                format!("[{}]", spn(rn))
            } else {
                format!("[{}, #{imm}]", spn(rn))
            };
            cases.push((
                str_imm(rt, rn, imm).unwrap(),
                format!("str {}, {mem}", xn(rt)),
            ));
            cases.push((
                ldr_imm(rt, rn, imm).unwrap(),
                format!("ldr {}, {mem}", xn(rt)),
            ));
        }
        check(&cases, true);
    }

    // ----- against llvm-mc: assembly ---------------------------------------------------------

    #[test]
    fn assembler_agrees_with_encoders() {
        let base = 0xffff_8000_0010_0000u64;
        let cases: Vec<(&str, u32)> = vec![
            ("nop", NOP),
            ("bti", BTI),
            ("bti c", BTI_C),
            ("bti j", BTI_J),
            ("bti jc", BTI_JC),
            ("paciasp", PACIASP),
            ("autiasp", AUTIASP),
            ("isb", ISB),
            ("ret", RET),
            ("mov x9, x30", MOV_X9_X30),
            ("b #0", b(base, base).unwrap()),
            ("b #134217724", b(base, base + (128 << 20) - 4).unwrap()),
            ("bl #-134217728", bl(base, base - (128 << 20)).unwrap()),
            ("bl #4", bl(base, base + 4).unwrap()),
            ("b.ne #8", b_cond(Cond::Ne, base, base + 8).unwrap()),
            (
                "b.le #-1048576",
                b_cond(Cond::Le, base, base - (1 << 20)).unwrap(),
            ),
            ("cbz x0, #-4", cbz(X0, base, base - 4).unwrap()),
            (
                "cbnz x30, #1048572",
                cbnz(X30, base, base + (1 << 20) - 4).unwrap(),
            ),
            ("ldr x17, #-8", ldr_literal(X17, base, base - 8).unwrap()),
            ("adr x0, #-1", adr(X0, base, base - 1).unwrap()),
            (
                "adr x9, #1048575",
                adr(X9, base, base + (1 << 20) - 1).unwrap(),
            ),
            (
                "adrp x0, #4096",
                adrp(X0, base + 0x123, base + 0x1fff).unwrap(),
            ),
            (
                "adrp x16, #-4294967296",
                adrp(X16, base, base - (1 << 32)).unwrap(),
            ),
            ("br x17", br(X17)),
            ("blr x9", blr(X9)),
            ("ret x9", ret_reg(X9)),
            ("brk #0x1", brk(1)),
            ("brk #0xffff", brk(0xffff)),
            ("mov x0, x1", mov_reg(X0, X1)),
            ("mov x29, sp", mov_from_sp(X29)),
            ("mov sp, x9", mov_to_sp(X9)),
            ("add x0, x1, #1, lsl #12", add_imm(X0, X1, 1, true).unwrap()),
            ("add sp, sp, #4095", add_imm(SP, SP, 4095, false).unwrap()),
            ("sub sp, sp, #16", sub_imm(SP, SP, 16, false).unwrap()),
            ("movz x0, #0x1234, lsl #16", movz(X0, 0x1234, 16).unwrap()),
            ("movz x3, #0, lsl #48", movz(X3, 0, 48).unwrap()),
            ("movk x0, #0x1234, lsl #16", movk(X0, 0x1234, 16).unwrap()),
            ("movk x30, #0xffff, lsl #48", movk(X30, 0xffff, 48).unwrap()),
            (
                "stp x29, x30, [sp, #-16]!",
                stp(X29, X30, SP, -16, Index::PreIndex).unwrap(),
            ),
            (
                "ldp x29, x30, [sp], #16",
                ldp(X29, X30, SP, 16, Index::PostIndex).unwrap(),
            ),
            (
                "stp x0, x1, [x2, #-512]",
                stp(X0, X1, X2, -512, Index::Offset).unwrap(),
            ),
            (
                "ldp x19, x20, [sp, #504]",
                ldp(X19, X20, SP, 504, Index::Offset).unwrap(),
            ),
            ("str x0, [sp, #32760]", str_imm(X0, SP, 32760).unwrap()),
            ("ldr x30, [sp, #8]", ldr_imm(X30, SP, 8).unwrap()),
            ("str xzr, [x0]", str_imm(XZR, X0, 0).unwrap()),
            // mov_imm64(x16, 0xffff800000081234)
            (
                "movz x16, #0x1234",
                mov_imm64(X16, 0xffff_8000_0008_1234)[0],
            ),
            (
                "movk x16, #0x8, lsl #16",
                mov_imm64(X16, 0xffff_8000_0008_1234)[1],
            ),
            (
                "movk x16, #0x8000, lsl #32",
                mov_imm64(X16, 0xffff_8000_0008_1234)[2],
            ),
            (
                "movk x16, #0xffff, lsl #48",
                mov_imm64(X16, 0xffff_8000_0008_1234)[3],
            ),
        ];
        let text: Vec<&str> = cases.iter().map(|c| c.0).collect();
        let words = assemble(&text);
        for ((asm, ours), theirs) in cases.iter().zip(words) {
            assert_eq!(
                *ours, theirs,
                "`{asm}`: ours {ours:#010x}, llvm-mc {theirs:#010x}"
            );
        }
    }

    // ----- errors ----------------------------------------------------------------------------

    #[test]
    fn branch_range_boundaries_are_exact() {
        let from = 0xffff_8000_1000_0000u64;
        let min = BRANCH_RANGE_MIN;
        let max = BRANCH_RANGE_MAX;
        assert_eq!((min, max), (-134_217_728, 134_217_724));
        for f in [b, bl] {
            assert!(f(from, at(from, min)).is_ok());
            assert!(f(from, at(from, max)).is_ok());
            for off in [
                min - 4,
                max + 4,
                128 << 20,
                i64::MIN,
                i64::MAX & !3,
                1 << 40,
            ] {
                let to = at(from, off);
                assert_eq!(
                    f(from, to),
                    Err(EncodeError::OutOfRange {
                        from,
                        to,
                        offset: off,
                        min,
                        max
                    }),
                    "offset {off}"
                );
            }
        }
        assert!(in_branch_range(from, at(from, min)));
        assert!(in_branch_range(from, at(from, max)));
        assert!(!in_branch_range(from, at(from, min - 4)));
        assert!(!in_branch_range(from, at(from, max + 4)));
        assert!(!in_branch_range(from, at(from, 128 << 20)));
        // Wrapping: a branch across address 0 is just a small offset.
        assert!(in_branch_range(0x10, 0xffff_ffff_ffff_fff0));
        assert_eq!(b(0x10, 0xffff_ffff_ffff_fff0), b(0x1000, 0x1000 - 0x20));
    }

    #[test]
    fn imm19_boundaries_are_exact() {
        let from = 0x4008_0000u64;
        let (min, max) = (COND_BRANCH_RANGE_MIN, COND_BRANCH_RANGE_MAX);
        assert_eq!((min, max), (-1_048_576, 1_048_572));
        let encoders: [&dyn Fn(u64, u64) -> Result<u32, EncodeError>; 4] = [
            &|f, t| b_cond(Cond::Eq, f, t),
            &|f, t| cbz(X0, f, t),
            &|f, t| cbnz(X30, f, t),
            &|f, t| ldr_literal(X17, f, t),
        ];
        for enc in encoders {
            assert!(enc(from, at(from, min)).is_ok());
            assert!(enc(from, at(from, max)).is_ok());
            for off in [min - 4, max + 4, 1 << 20, BRANCH_RANGE_MIN] {
                let to = at(from, off);
                assert_eq!(
                    enc(from, to),
                    Err(EncodeError::OutOfRange {
                        from,
                        to,
                        offset: off,
                        min,
                        max
                    })
                );
            }
            for (f, t) in [(from + 2, from + 8), (from, from + 9), (from + 1, from + 3)] {
                assert_eq!(enc(f, t), Err(EncodeError::Misaligned { from: f, to: t }));
            }
        }
    }

    #[test]
    fn misaligned_branches_are_rejected() {
        for (f, t) in [
            (0x1002, 0x2000),
            (0x1000, 0x2001),
            (0x1003, 0x2003),
            (0x1000, 0x1006),
        ] {
            let err = EncodeError::Misaligned { from: f, to: t };
            assert_eq!(b(f, t), Err(err));
            assert_eq!(bl(f, t), Err(err));
        }
        // Alignment is checked before range.
        assert_eq!(
            b(0, 1 << 40 | 2),
            Err(EncodeError::Misaligned {
                from: 0,
                to: 1 << 40 | 2
            })
        );
    }

    #[test]
    fn adr_and_adrp_boundaries_are_exact() {
        let from = 0x4008_0001u64; // ADR needs no alignment
        let (min, max) = (ADR_RANGE_MIN, ADR_RANGE_MAX);
        assert!(adr(X0, from, at(from, min)).is_ok());
        assert!(adr(X0, from, at(from, max)).is_ok());
        for off in [min - 1, max + 1] {
            let to = at(from, off);
            assert_eq!(
                adr(X0, from, to),
                Err(EncodeError::OutOfRange {
                    from,
                    to,
                    offset: off,
                    min,
                    max
                })
            );
        }

        let (min, max) = (ADRP_RANGE_MIN, ADRP_RANGE_MAX);
        let from = 0xffff_8000_4000_0abcu64;
        let page = from & !0xfff;
        // In-page offsets of either address do not matter, only the page delta.
        assert!(adrp(X0, from, at(page, min)).is_ok());
        assert!(adrp(X0, from, at(page, max) + 0xfff).is_ok());
        for delta in [min - 4096, max + 4096] {
            let to = at(page, delta) + 0x10;
            assert_eq!(
                adrp(X0, from, to),
                Err(EncodeError::OutOfRange {
                    from,
                    to,
                    offset: delta,
                    min,
                    max
                })
            );
        }
    }

    #[test]
    fn immediate_errors() {
        use EncodeError::{ImmediateOutOfRange as Range, UnscaledImmediate as Unscaled};
        for f in [add_imm, sub_imm] {
            assert!(f(SP, SP, 4095, true).is_ok());
            assert_eq!(
                f(X0, X1, 4096, false),
                Err(Range {
                    value: 4096,
                    min: 0,
                    max: 4095
                })
            );
            assert_eq!(
                f(X0, X1, u32::MAX, true),
                Err(Range {
                    value: u32::MAX as i64,
                    min: 0,
                    max: 4095
                })
            );
        }
        for f in [movz, movk] {
            assert_eq!(
                f(X0, 1, 8),
                Err(Unscaled {
                    value: 8,
                    scale: 16
                })
            );
            assert_eq!(
                f(X0, 1, 1),
                Err(Unscaled {
                    value: 1,
                    scale: 16
                })
            );
            assert_eq!(
                f(X0, 1, 64),
                Err(Range {
                    value: 64,
                    min: 0,
                    max: 48
                })
            );
            assert_eq!(
                f(X0, 1, 49),
                Err(Range {
                    value: 49,
                    min: 0,
                    max: 48
                })
            );
        }
        for f in [stp, ldp] {
            for index in [Index::Offset, Index::PreIndex, Index::PostIndex] {
                assert!(f(X0, X1, SP, -512, index).is_ok());
                assert!(f(X0, X1, SP, 504, index).is_ok());
                assert_eq!(
                    f(X0, X1, SP, -520, index),
                    Err(Range {
                        value: -520,
                        min: -512,
                        max: 504
                    })
                );
                assert_eq!(
                    f(X0, X1, SP, 512, index),
                    Err(Range {
                        value: 512,
                        min: -512,
                        max: 504
                    })
                );
                assert_eq!(
                    f(X0, X1, SP, 508, index),
                    Err(Range {
                        value: 508,
                        min: -512,
                        max: 504
                    })
                );
                assert_eq!(
                    f(X0, X1, SP, -513, index),
                    Err(Range {
                        value: -513,
                        min: -512,
                        max: 504
                    })
                );
                assert_eq!(
                    f(X0, X1, SP, -4, index),
                    Err(Unscaled {
                        value: -4,
                        scale: 8
                    })
                );
                assert_eq!(
                    f(X0, X1, SP, 12, index),
                    Err(Unscaled {
                        value: 12,
                        scale: 8
                    })
                );
            }
        }
        for f in [str_imm, ldr_imm] {
            assert!(f(X0, SP, 32760).is_ok());
            assert_eq!(
                f(X0, SP, 32768),
                Err(Range {
                    value: 32768,
                    min: 0,
                    max: 32760
                })
            );
            assert_eq!(
                f(X0, SP, 32761),
                Err(Range {
                    value: 32761,
                    min: 0,
                    max: 32760
                })
            );
            assert_eq!(f(X0, SP, 4), Err(Unscaled { value: 4, scale: 8 }));
            assert_eq!(
                f(X0, SP, 32759),
                Err(Unscaled {
                    value: 32759,
                    scale: 8
                })
            );
        }
    }

    #[test]
    fn error_messages() {
        let from = 0xffff_8000_1000_0000u64;
        let err = b(from, at(from, BRANCH_RANGE_MIN - 4)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "branch from 0xffff800010000000 to 0xffff800007fffffc is out of range: \
             offset -134217732 not in [-134217728, 134217724] (B/BL reach ±128 MiB)"
        );
        assert_eq!(
            cbz(X0, 0x1000, 0x1000 + (1 << 20)).unwrap_err().to_string(),
            "PC-relative reference from 0x1000 to 0x101000 is out of range: offset 1048576 \
             not in [-1048576, 1048572] (B.cond/CBZ/CBNZ/LDR literal reach ±1 MiB)"
        );
        assert_eq!(
            b(0x1002, 0x2000).unwrap_err().to_string(),
            "misaligned PC-relative reference from 0x1002 to 0x2000: \
             both addresses must be 4-byte aligned"
        );
        assert_eq!(
            add_imm(X0, X0, 5000, false).unwrap_err().to_string(),
            "immediate 5000 out of range: not in [0, 4095]"
        );
        assert_eq!(
            stp(X0, X1, SP, 12, Index::Offset).unwrap_err().to_string(),
            "immediate 12 is not a multiple of 8"
        );
        assert!(
            adrp(X0, 0, 1 << 33)
                .unwrap_err()
                .to_string()
                .contains("(ADRP reaches ±4 GiB")
        );
        assert!(
            adr(X0, 0, 1 << 20)
                .unwrap_err()
                .to_string()
                .contains("(ADR reaches ±1 MiB)")
        );
    }
}
