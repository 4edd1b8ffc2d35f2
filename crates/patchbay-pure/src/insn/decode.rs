//! The decoders: the classifiers the patcher checks a site with ([`is_nop`], [`is_bl`],
//! [`is_cmodx_safe`], ...), [`branch_target`], and [`describe`], which prints a word for error
//! messages. They recognise what the encoders produce, plus `hvc`/`svc`/`smc`.

use core::fmt;

use super::{
    ADD_IMM_OP, ADD_SUB_IMM_MASK, ADR_MASK, ADR_OP, ADRP_OP, AUTIASP, B_COND_MASK, B_COND_OP,
    B_MASK, B_OP, BL_OP, BLR_OP, BR_OP, BRANCH_REG_MASK, BRK_OP, BTI, BTI_C, BTI_J, BTI_JC,
    CBNZ_OP, CBZ_OP, EXCEPTION_MASK, HVC_OP, IMM19_MASK, ISB_MASK, ISB_OP, LDP_OFF_OP, LDP_POST_OP,
    LDP_PRE_OP, LDR_IMM_OP, LDR_LIT_OP, LDST_MASK, MOV_REG_MASK, MOV_REG_OP, MOVE_WIDE_MASK,
    MOVK_OP, MOVZ_OP, NOP, PACIASP, RET, RET_OP, SMC_OP, STP_OFF_OP, STP_POST_OP, STP_PRE_OP,
    STR_IMM_OP, SUB_IMM_OP, SVC_OP, encode::cond_name,
};

/// Sign-extend the low `bits` bits of `value`.
const fn sign_extend(value: u32, bits: u32) -> i64 {
    (((value << (32 - bits)) as i32) >> (32 - bits)) as i64
}

/// Is `w` exactly `nop`?
/// The name of a branch-protection hint — a landing pad (`bti`) or a return-address signing
/// instruction (`paciasp`, `autiasp`) — or `None` for any other word. These are the
/// instructions a BRK probe must not simply displace (see `trace::kprobe`).
pub const fn pointer_auth_or_landing_pad(w: u32) -> Option<&'static str> {
    match w {
        BTI => Some("bti"),
        BTI_C => Some("bti c"),
        BTI_J => Some("bti j"),
        BTI_JC => Some("bti jc"),
        PACIASP => Some("paciasp"),
        AUTIASP => Some("autiasp"),
        _ => None,
    }
}

pub const fn is_nop(w: u32) -> bool {
    w == NOP
}

/// Is `w` a `B` (unconditional, immediate)?
pub const fn is_b(w: u32) -> bool {
    w & B_MASK == B_OP
}

/// Is `w` a `BL`?
pub const fn is_bl(w: u32) -> bool {
    w & B_MASK == BL_OP
}

/// Is `w` a `BRK #imm` (any immediate)?
pub const fn is_brk(w: u32) -> bool {
    w & EXCEPTION_MASK == BRK_OP
}

/// Target of a B or BL at `pc`, None if `w` is not B/BL.
pub const fn branch_target(w: u32, pc: u64) -> Option<u64> {
    if is_b(w) || is_bl(w) {
        Some(pc.wrapping_add((sign_extend(w & 0x03ff_ffff, 26) * 4) as u64))
    } else {
        None
    }
}

/// Is this instruction one the Arm ARM allows to be concurrently modified and executed (CMODX)?
///
/// The Arm ARM ("Concurrent modification and execution of instructions") guarantees that when
/// one thread replaces an instruction while another executes it, the executing thread sees
/// either the old or the new instruction, *only* if both are in the list
/// `B, BL, BRK, HVC, ISB, NOP, SMC, SVC` (any immediate/target; any `ISB` option). Anything else
/// needs the patcher to stop the other CPUs (or to route them through a `BRK` first). Newer
/// editions of the Arm ARM extend the guarantee to further instructions; patchbay deliberately
/// sticks to this classic set, which every Armv8-A implementation honours.
pub const fn is_cmodx_safe(w: u32) -> bool {
    is_b(w)
        || is_bl(w)
        || is_nop(w)
        || w & ISB_MASK == ISB_OP
        || matches!(w & EXCEPTION_MASK, BRK_OP | HVC_OP | SMC_OP | SVC_OP)
}

/// A decoded instruction, printable: the value returned by [`describe`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Describe {
    word: u32,
    pc: u64,
}

/// Short human description for error messages: `"nop"`, `"bl 0x..."`, `"mov x9, x30"`,
/// `"brk #0x.."`, else `"0x%08x"`.
///
/// Recognised are the instructions this module encodes plus `hvc`/`svc`/`smc`; PC-relative ones
/// show the absolute target computed from `pc` (`b 0xffff800000081000`, `adrp x0, 0x...000`).
/// Otherwise the syntax follows `llvm-mc` (decimal immediates, `mov` aliases), except that
/// `movz`/`movk` are shown as such with a hex immediate (`movz x0, #0x1234, lsl #16`).
pub const fn describe(w: u32, pc: u64) -> Describe {
    Describe { word: w, pc }
}

/// Register name for display: number 31 is `sp` or `xzr` depending on the operand.
struct RegName {
    num: u32,
    sp: bool,
}

impl fmt::Display for RegName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.num, self.sp) {
            (31, true) => f.write_str("sp"),
            (31, false) => f.write_str("xzr"),
            (n, _) => write!(f, "x{n}"),
        }
    }
}

/// Operand that reads 31 as `xzr`.
const fn xr(num: u32) -> RegName {
    RegName {
        num: num & 31,
        sp: false,
    }
}

/// Operand that reads 31 as `sp`.
const fn sr(num: u32) -> RegName {
    RegName {
        num: num & 31,
        sp: true,
    }
}

impl fmt::Display for Describe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (w, pc) = (self.word, self.pc);
        let rt = w & 31;
        let rn = (w >> 5) & 31;
        let rel19 = || pc.wrapping_add((sign_extend((w >> 5) & 0x7_ffff, 19) * 4) as u64);

        if w == NOP {
            return f.write_str("nop");
        }
        if let Some(name) = pointer_auth_or_landing_pad(w) {
            return f.write_str(name);
        }
        if w & ISB_MASK == ISB_OP {
            return match (w >> 8) & 0xf {
                0xf => f.write_str("isb"),
                option => write!(f, "isb #{option}"),
            };
        }
        if w == RET {
            return f.write_str("ret");
        }
        match w & BRANCH_REG_MASK {
            BR_OP => return write!(f, "br {}", xr(rn)),
            BLR_OP => return write!(f, "blr {}", xr(rn)),
            RET_OP => return write!(f, "ret {}", xr(rn)),
            _ => {}
        }
        if let Some(target) = branch_target(w, pc) {
            let name = if is_bl(w) { "bl" } else { "b" };
            return write!(f, "{name} {target:#x}");
        }
        if w & B_COND_MASK == B_COND_OP {
            return write!(f, "b.{} {:#x}", cond_name(w & 0xf), rel19());
        }
        match w & IMM19_MASK {
            CBZ_OP => return write!(f, "cbz {}, {:#x}", xr(rt), rel19()),
            CBNZ_OP => return write!(f, "cbnz {}, {:#x}", xr(rt), rel19()),
            LDR_LIT_OP => return write!(f, "ldr {}, {:#x}", xr(rt), rel19()),
            _ => {}
        }
        let imm21 = sign_extend(((w >> 5) & 0x7_ffff) << 2 | (w >> 29) & 3, 21);
        match w & ADR_MASK {
            ADR_OP => return write!(f, "adr {}, {:#x}", xr(rt), pc.wrapping_add(imm21 as u64)),
            ADRP_OP => {
                let page = (pc & !0xfff).wrapping_add((imm21 << 12) as u64);
                return write!(f, "adrp {}, {page:#x}", xr(rt));
            }
            _ => {}
        }
        let imm16 = (w >> 5) & 0xffff;
        let exception = match w & EXCEPTION_MASK {
            BRK_OP => Some("brk"),
            HVC_OP => Some("hvc"),
            SMC_OP => Some("smc"),
            SVC_OP => Some("svc"),
            _ => None,
        };
        if let Some(name) = exception {
            return match imm16 {
                0 => write!(f, "{name} #0"),
                imm => write!(f, "{name} #{imm:#x}"),
            };
        }
        if w & MOV_REG_MASK == MOV_REG_OP {
            return write!(f, "mov {}, {}", xr(rt), xr(w >> 16));
        }
        let op = w & ADD_SUB_IMM_MASK;
        if op == ADD_IMM_OP || op == SUB_IMM_OP {
            let imm12 = (w >> 10) & 0xfff;
            let lsl12 = (w >> 22) & 1 == 1;
            if op == ADD_IMM_OP && imm12 == 0 && !lsl12 && (rt == 31 || rn == 31) {
                return write!(f, "mov {}, {}", sr(rt), sr(rn));
            }
            let name = if op == ADD_IMM_OP { "add" } else { "sub" };
            write!(f, "{name} {}, {}, #{imm12}", sr(rt), sr(rn))?;
            return if lsl12 {
                f.write_str(", lsl #12")
            } else {
                Ok(())
            };
        }
        let op = w & MOVE_WIDE_MASK;
        if op == MOVZ_OP || op == MOVK_OP {
            let name = if op == MOVZ_OP { "movz" } else { "movk" };
            write!(f, "{name} {}, #{imm16:#x}", xr(rt))?;
            return match (w >> 21) & 3 {
                0 => Ok(()),
                hw => write!(f, ", lsl #{}", hw * 16),
            };
        }
        let op = w & LDST_MASK;
        let pair_op = match op {
            STP_POST_OP | STP_OFF_OP | STP_PRE_OP => Some("stp"),
            LDP_POST_OP | LDP_OFF_OP | LDP_PRE_OP => Some("ldp"),
            _ => None,
        };
        if let Some(name) = pair_op {
            let imm = sign_extend((w >> 15) & 0x7f, 7) * 8;
            write!(f, "{name} {}, {}, [{}", xr(rt), xr(w >> 10), sr(rn))?;
            return match op {
                STP_POST_OP | LDP_POST_OP => write!(f, "], #{imm}"),
                STP_PRE_OP | LDP_PRE_OP => write!(f, ", #{imm}]!"),
                _ if imm == 0 => f.write_str("]"),
                _ => write!(f, ", #{imm}]"),
            };
        }
        if op == STR_IMM_OP || op == LDR_IMM_OP {
            let name = if op == STR_IMM_OP { "str" } else { "ldr" };
            let imm = ((w >> 10) & 0xfff) * 8;
            write!(f, "{name} {}, [{}", xr(rt), sr(rn))?;
            return if imm == 0 {
                f.write_str("]")
            } else {
                write!(f, ", #{imm}]")
            };
        }
        write!(f, "{w:#010x}")
    }
}

#[cfg(test)]
mod tests {
    use crate::insn::{
        testkit::{Rng, at, word_offsets},
        *,
    };

    #[test]
    fn branch_target_round_trips() {
        let mut rng = Rng(0x5851_f42d_4c95_7f2d);
        for (from, off) in word_offsets(&mut rng, BRANCH_RANGE_MIN, BRANCH_RANGE_MAX, 2000) {
            let to = at(from, off);
            let wb = b(from, to).unwrap();
            let wl = bl(from, to).unwrap();
            assert!(is_b(wb) && !is_bl(wb) && is_bl(wl) && !is_b(wl));
            assert_eq!(
                branch_target(wb, from),
                Some(to),
                "b from {from:#x} by {off}"
            );
            assert_eq!(
                branch_target(wl, from),
                Some(to),
                "bl from {from:#x} by {off}"
            );
        }
        for w in [
            NOP,
            RET,
            MOV_X9_X30,
            brk(0),
            br(X16),
            b_cond(Cond::Al, 0, 8).unwrap(),
        ] {
            assert_eq!(branch_target(w, 0x1000), None, "{w:#010x}");
        }
    }

    #[test]
    fn classifiers() {
        assert!(is_nop(NOP) && !is_nop(BTI_C) && !is_nop(ISB));
        assert!(is_brk(brk(0)) && is_brk(brk(0xffff)) && !is_brk(0xd400_0002));
        assert!(!is_b(NOP) && !is_bl(NOP) && !is_b(b_cond(Cond::Ne, 0, 4).unwrap()));

        let safe = [
            NOP,
            ISB,
            b(0x1000, 0x2000).unwrap(),
            bl(0x2000, 0x1000).unwrap(),
            brk(0),
            brk(0x800),
            0xd400_0002, // hvc #0
            0xd400_0003, // smc #0
            0xd400_0001, // svc #0
            0xd400_0202, // hvc #0x10
        ];
        for w in safe {
            assert!(is_cmodx_safe(w), "{} should be CMODX-safe", describe(w, 0));
        }
        let unsafe_words = [
            MOV_X9_X30,
            BTI_C,
            RET,
            br(X16),
            blr(X9),
            ldr_imm(X0, SP, 8).unwrap(),
            ldr_literal(X16, 0x1000, 0x1008).unwrap(),
            stp(X29, X30, SP, -16, Index::PreIndex).unwrap(),
            b_cond(Cond::Eq, 0, 8).unwrap(),
            cbz(X0, 0, 8).unwrap(),
            mov_imm64(X0, 0)[0],
            0xd503_203f, // yield
            0,           // udf #0
        ];
        for w in unsafe_words {
            assert!(
                !is_cmodx_safe(w),
                "{} should not be CMODX-safe",
                describe(w, 0)
            );
        }
    }

    #[test]
    fn describe_examples() {
        let pc = 0xffff_8000_0008_0000u64;
        let cases: Vec<(u32, &str)> = vec![
            (NOP, "nop"),
            (BTI_C, "bti c"),
            (ISB, "isb"),
            (RET, "ret"),
            (MOV_X9_X30, "mov x9, x30"),
            (bl(pc, pc + 0x1000).unwrap(), "bl 0xffff800000081000"),
            (b(pc, pc - 8).unwrap(), "b 0xffff80000007fff8"),
            (brk(0x4), "brk #0x4"),
            (brk(0), "brk #0"),
            (ret_reg(X9), "ret x9"),
            (
                stp(X29, X30, SP, -16, Index::PreIndex).unwrap(),
                "stp x29, x30, [sp, #-16]!",
            ),
            (
                ldp(X29, X30, SP, 16, Index::PostIndex).unwrap(),
                "ldp x29, x30, [sp], #16",
            ),
            (mov_from_sp(X29), "mov x29, sp"),
            (
                adrp(X16, pc + 5, pc + 0x3456).unwrap(),
                "adrp x16, 0xffff800000083000",
            ),
            (0x0000_0000, "0x00000000"), // udf #0: not decoded
            (0x1e60_4020, "0x1e604020"), // fmov d0, d1: not decoded
            (0x29bf_7bfd, "0x29bf7bfd"), // stp w29, w30, [sp, #-8]!: 32-bit, not one of ours
        ];
        for (w, text) in cases {
            assert_eq!(describe(w, pc).to_string(), text, "{w:#010x}");
        }
    }
}
