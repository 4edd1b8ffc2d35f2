//! The instructions the model watches, decoded from their A64 words.
//!
//! All of them are in the system-instruction space (`SYS`, barriers) or exception returns, so
//! one match on fixed fields suffices; everything else is [`Insn::Other`].

/// What an executed instruction means to the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Insn {
    /// A data-cache clean by virtual address to the point of unification or beyond; the address
    /// is in register `rt`.
    DcClean { op: DcOp, rt: u8 },
    /// `IC IVAU Xt`: invalidate the I-cache line holding the address in `rt`, broadcast.
    IcIvau { rt: u8 },
    /// `IC IALLU` (local) or `IC IALLUIS` (broadcast to the inner shareable domain).
    IcIall { broadcast: bool },
    /// `DSB <option>`; `completes` when the option waits for cache maintenance in the inner
    /// shareable domain (SY, ISH, OSH), not for ST/LD-only or NSH barriers.
    Dsb { completes: bool },
    /// `ISB`: context synchronization of this PE.
    Isb,
    /// `ERET`, `ERETAA`, `ERETAB`: exception return, a context-synchronization event.
    Eret,
    /// Anything else.
    Other,
}

/// Which data-cache operation by VA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DcOp {
    Cvau,
    Cvac,
    Civac,
    Cvap,
    Cvadp,
}

impl DcOp {
    pub fn name(self) -> &'static str {
        match self {
            DcOp::Cvau => "DC CVAU",
            DcOp::Cvac => "DC CVAC",
            DcOp::Civac => "DC CIVAC",
            DcOp::Cvap => "DC CVAP",
            DcOp::Cvadp => "DC CVADP",
        }
    }
}

/// `SYS #op1, Cn, Cm, #op2, Xt` with the operation fields (op1, CRn, CRm, op2) and no Rt.
const SYS_MASK: u32 = 0xfff8_0000;
const SYS_OP: u32 = 0xd508_0000; // sys #0, c0, c0, #0, x0
const SYS_FIELDS: u32 = 0x0007_ffe0;
const RT: u32 = 0x1f;

/// The (op1, CRn, CRm, op2) field of a `SYS` encoding, in place.
const fn sys_fields(op1: u32, crn: u32, crm: u32, op2: u32) -> u32 {
    op1 << 16 | crn << 12 | crm << 8 | op2 << 5
}
const DC_CVAU: u32 = sys_fields(3, 7, 11, 1); // dc cvau, xN
const DC_CVAC: u32 = sys_fields(3, 7, 10, 1); // dc cvac, xN
const DC_CIVAC: u32 = sys_fields(3, 7, 14, 1); // dc civac, xN
const DC_CVAP: u32 = sys_fields(3, 7, 12, 1); // dc cvap, xN
const DC_CVADP: u32 = sys_fields(3, 7, 13, 1); // dc cvadp, xN
const IC_IVAU: u32 = sys_fields(3, 7, 5, 1); // ic ivau, xN
const IC_IALLU: u32 = sys_fields(0, 7, 5, 0); // ic iallu
const IC_IALLUIS: u32 = sys_fields(0, 7, 1, 0); // ic ialluis

/// `DSB <option>`, option in CRm (bits 11:8).
const DSB_MASK: u32 = 0xffff_f0ff;
const DSB_OP: u32 = 0xd503_309f; // dsb #0
/// CRm values of DSB SY, ISH, OSH: full barriers whose domain includes the inner shareable one.
const DSB_SY: u32 = 0b1111;
const DSB_ISH: u32 = 0b1011;
const DSB_OSH: u32 = 0b0011;
/// `ISB <option>`, option in CRm.
const ISB_MASK: u32 = 0xffff_f0ff;
const ISB_OP: u32 = 0xd503_30df; // isb #0
const ERET: u32 = 0xd69f_03e0; // eret
const ERETAA: u32 = 0xd69f_0bff; // eretaa
const ERETAB: u32 = 0xd69f_0fff; // eretab

/// Decode `w`.
pub fn decode(w: u32) -> Insn {
    if w & SYS_MASK == SYS_OP {
        let rt = (w & RT) as u8;
        let dc = |op| Insn::DcClean { op, rt };
        return match w & SYS_FIELDS {
            DC_CVAU => dc(DcOp::Cvau),
            DC_CVAC => dc(DcOp::Cvac),
            DC_CIVAC => dc(DcOp::Civac),
            DC_CVAP => dc(DcOp::Cvap),
            DC_CVADP => dc(DcOp::Cvadp),
            IC_IVAU => Insn::IcIvau { rt },
            IC_IALLU if rt == 31 => Insn::IcIall { broadcast: false },
            IC_IALLUIS if rt == 31 => Insn::IcIall { broadcast: true },
            _ => Insn::Other,
        };
    }
    if w & DSB_MASK == DSB_OP {
        let crm = (w >> 8) & 0xf;
        return Insn::Dsb {
            completes: matches!(crm, DSB_SY | DSB_ISH | DSB_OSH),
        };
    }
    if w & ISB_MASK == ISB_OP {
        return Insn::Isb;
    }
    if matches!(w, ERET | ERETAA | ERETAB) {
        return Insn::Eret;
    }
    Insn::Other
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_from_the_assembler() {
        // Words as llvm-mc encodes them (the comments give the assembly).
        let cases = [
            (
                0xd50b_7b20,
                Insn::DcClean {
                    op: DcOp::Cvau,
                    rt: 0,
                },
            ), // dc cvau, x0
            (
                0xd50b_7b29,
                Insn::DcClean {
                    op: DcOp::Cvau,
                    rt: 9,
                },
            ), // dc cvau, x9
            (
                0xd50b_7e21,
                Insn::DcClean {
                    op: DcOp::Civac,
                    rt: 1,
                },
            ), // dc civac, x1
            (
                0xd50b_7a22,
                Insn::DcClean {
                    op: DcOp::Cvac,
                    rt: 2,
                },
            ), // dc cvac, x2
            (
                0xd50b_7c23,
                Insn::DcClean {
                    op: DcOp::Cvap,
                    rt: 3,
                },
            ), // dc cvap, x3
            (
                0xd50b_7d24,
                Insn::DcClean {
                    op: DcOp::Cvadp,
                    rt: 4,
                },
            ), // dc cvadp, x4
            (0xd50b_752a, Insn::IcIvau { rt: 10 }), // ic ivau, x10
            (0xd508_751f, Insn::IcIall { broadcast: false }), // ic iallu
            (0xd508_711f, Insn::IcIall { broadcast: true }), // ic ialluis
            (0xd503_3b9f, Insn::Dsb { completes: true }), // dsb ish
            (0xd503_3f9f, Insn::Dsb { completes: true }), // dsb sy
            (0xd503_339f, Insn::Dsb { completes: true }), // dsb osh
            (0xd503_3a9f, Insn::Dsb { completes: false }), // dsb ishst
            (0xd503_379f, Insn::Dsb { completes: false }), // dsb nsh
            (0xd503_3fdf, Insn::Isb),               // isb
            (0xd69f_03e0, Insn::Eret),              // eret
            (0xd69f_0bff, Insn::Eret),              // eretaa
            (0xd508_7620, Insn::Other),             // dc ivac, x0: no clean
            (0xd50b_7420, Insn::Other),             // dc zva, x0
            (0xd503_201f, Insn::Other),             // nop
            (0xd65f_03c0, Insn::Other),             // ret
        ];
        for (w, want) in cases {
            assert_eq!(decode(w), want, "{w:#010x}");
        }
    }
}
