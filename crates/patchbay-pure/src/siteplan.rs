//! The tracer's site planner: which call target and which CALL_OPS literal a traced patch site
//! needs, given who owns it and in which mode. `trace::attach` describes each site it changed
//! with [`Owners`] and adds the resulting [`SitePlan`] to one patch batch.
//!
//! | owners | list mode | call-ops mode |
//! |---|---|---|
//! | none | back to rest (`SiteState::at_rest`) | back to rest |
//! | one | `bl` list trampoline | `bl` ops trampoline, literal = that ops |
//! | several | `bl` list trampoline | `bl` ops trampoline, literal = the list ops |
//!
//! The list and ops trampolines come in [`CALLER_VARIANTS`] variants that differ only in which
//! argument registers they save around the handlers; a site is sent to the smallest one that
//! saves every register its signature may use ([`caller_variant`] of its [`ArgRegs`]).
//!
//! A direct attachment changes that: alone on a site it takes its own route ([`DirectRoute`]);
//! beside other ops the site goes to the direct caller with the list ops in its literal, and the
//! direct attachment's ops hands over to its trampoline after the list walk.
//!
//! ```
//! use patchbay_pure::{batch::SiteState, siteplan::*};
//! # use patchbay_pure::sites::ArgRegs;
//! let t = Targets {
//!     list_caller: [0x100, 0x110, 0x120, 0x130, 0x140, 0x150, 0x160, 0x170, 0x180, 0x190],
//!     ops_caller: [0x200, 0x210, 0x220, 0x230, 0x240, 0x250, 0x260, 0x270, 0x280, 0x290],
//!     direct_caller: 0x300,
//!     list_ops: 0x900,
//! };
//! let one = Owners { count: 1, first: 0x5000, direct: None };
//! // A function of one word-sized argument: variant 2, which saves only x0 and x1.
//! assert_eq!(
//!     plan_site(&SiteState::COMPILED, &one, Mode::CallOps, ArgRegs::from_bits(1), &t),
//!     SitePlan::Set { arm: Some(0x220), literal: Some(0x5000) }
//! );
//! ```

use crate::{batch::SiteState, sites::ArgRegs};

/// How a site reaches its ops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Through the list dispatcher, which tests every registered ops' filter.
    List,
    /// Through the site's literal: one owner is called directly.
    CallOps,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::List => "list",
            Mode::CallOps => "call-ops",
        }
    }
}

/// How a direct attachment is reached from a site it owns alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirectRoute {
    /// `bl` straight to this address: the trampoline in the near pool, or a near veneer that
    /// jumps to a far one.
    Bl(u64),
    /// `bl` the direct caller with the attachment's own ops in the literal; the direct caller
    /// tail-calls that ops' `direct_call` (a trampoline out of `bl` range).
    ViaDirectCaller,
}

/// Who owns a site, as far as the planner cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owners {
    /// How many ops trace the site.
    pub count: usize,
    /// The address of the first owning ops (what a call-ops literal holds for a sole owner).
    pub first: u64,
    /// The route of the direct attachment among the owners, if there is one (at most one per
    /// site).
    pub direct: Option<DirectRoute>,
}

/// Variants of the static list and call-ops trampolines. Each saves `pairs` pairs of argument
/// registers for the handlers (x0/x1, x2/x3, x4/x5, x6/x7: 0..=4) and x8 or not: variant
/// `pairs * 2 + x8`. (Every variant restores x0 and x1, which carry the result when a handler
/// overrides the function.)
pub const CALLER_VARIANTS: usize = 10;

/// The variant of the list and call-ops trampolines a site with argument registers `regs` needs:
/// the smallest that saves x0..x(regs-1), and x8 if it may be live. Registers are saved in whole
/// pairs, so an odd count rounds up (an over-estimate is safe).
pub fn caller_variant(regs: ArgRegs) -> usize {
    let pairs = regs.regs.min(crate::sites::ARG_REGS).div_ceil(2);
    usize::from(pairs) * 2 + usize::from(regs.x8)
}

/// The argument registers variant `v` of the list and call-ops trampolines saves: x0..x(n-1)
/// and x8 if the flag is set.
pub const fn caller_variant_saves(v: usize) -> (u8, bool) {
    (2 * (v / 2) as u8, v % 2 == 1)
}

/// The addresses a plan may name: the static trampolines (the list and call-ops ones per
/// [`caller_variant`]) and the list ops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Targets {
    pub list_caller: [u64; CALLER_VARIANTS],
    pub ops_caller: [u64; CALLER_VARIANTS],
    pub direct_caller: u64,
    pub list_ops: u64,
}

/// What a site needs for its owners and mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SitePlan {
    /// Nothing to write.
    Keep,
    /// Back to rest: disarmed, literal `nop; nop` (nobody owns the site any more).
    Restore,
    /// Arm (or retarget) the call if `arm` is set; write the literal if `literal` is set.
    Set {
        arm: Option<u64>,
        literal: Option<u64>,
    },
}

/// Plan one site, currently in state `st`, whose function receives its arguments in `regs`, for
/// `owners` in `mode`. Only what differs from `st` is written.
pub fn plan_site(
    st: &SiteState,
    owners: &Owners,
    mode: Mode,
    regs: ArgRegs,
    t: &Targets,
) -> SitePlan {
    if owners.count == 0 {
        return if st.at_rest() {
            SitePlan::Keep
        } else {
            SitePlan::Restore
        };
    }
    let (target, literal) = match (owners.direct, mode) {
        // A sole direct owner: its own route.
        (Some(DirectRoute::Bl(to)), _) if owners.count == 1 => (to, None),
        (Some(DirectRoute::ViaDirectCaller), _) if owners.count == 1 => {
            (t.direct_caller, Some(owners.first))
        }
        // Direct beside other ops: the list walk, then a hand-over to the trampoline.
        (Some(_), _) => (t.direct_caller, Some(t.list_ops)),
        (None, Mode::List) => (t.list_caller[caller_variant(regs)], None),
        (None, Mode::CallOps) => {
            let lit = if owners.count == 1 {
                owners.first
            } else {
                t.list_ops
            };
            (t.ops_caller[caller_variant(regs)], Some(lit))
        }
    };
    let arm = (st.call() != Some(target)).then_some(target);
    let literal = literal.filter(|&l| st.literal != l);
    if arm.is_none() && literal.is_none() {
        SitePlan::Keep
    } else {
        SitePlan::Set { arm, literal }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        batch::{self, Call, Change, Literal, PhaseBuf, PlanError, Write},
        sites::Site,
    };

    const fn callers(base: u64) -> [u64; CALLER_VARIANTS] {
        let mut a = [0; CALLER_VARIANTS];
        let mut i = 0;
        while i < CALLER_VARIANTS {
            a[i] = base + 0x100 * i as u64;
            i += 1;
        }
        a
    }
    const T: Targets = Targets {
        list_caller: callers(0x4010_0000),
        ops_caller: callers(0x4020_0000),
        direct_caller: 0x4030_0000,
        list_ops: 0x4800_0000,
    };
    /// The leaf's registers: none (variant 0).
    const LEAF: ArgRegs = ArgRegs::from_bits(0);
    const OPS_A: u64 = 0x4900_0000;
    const OPS_B: u64 = 0x4900_0100;
    const TRAMP: u64 = 0x4400_0000;
    const SITE: Site<'static> = Site {
        func: 0x4008_0000,
        name: "f",
        arg_regs: LEAF,
    };

    fn owners(count: usize, direct: Option<DirectRoute>) -> Owners {
        Owners {
            count,
            first: OPS_A,
            direct,
        }
    }

    /// The state a site reaches when `plan` is applied to it (through the batch planner).
    fn apply(st: SiteState, plan: SitePlan) -> SiteState {
        let (call, literal) = match plan {
            SitePlan::Keep => return st,
            SitePlan::Restore => (Call::Restore, Literal::Keep),
            SitePlan::Set { arm, literal } => (
                arm.map_or(Call::Keep, Call::To),
                literal.map_or(Literal::Keep, Literal::Set),
            ),
        };
        let c = Change {
            site: 0,
            call,
            literal,
        };
        let mut slots = [[Write::literal(0, 0, 0); PhaseBuf::slots_for(1)]; 2];
        let [s1, s2] = &mut slots;
        let phases = [&mut PhaseBuf::new(s1), &mut PhaseBuf::new(s2)];
        batch::plan_change::<PlanError>(&c, &SITE, st, phases).unwrap()
    }

    #[test]
    fn the_mode_table() {
        let c = SiteState::COMPILED;
        let cases = [
            (owners(1, None), Mode::List, T.list_caller[0], None),
            (owners(2, None), Mode::List, T.list_caller[0], None),
            (owners(1, None), Mode::CallOps, T.ops_caller[0], Some(OPS_A)),
            (
                owners(3, None),
                Mode::CallOps,
                T.ops_caller[0],
                Some(T.list_ops),
            ),
        ];
        for (o, mode, arm, literal) in cases {
            assert_eq!(
                plan_site(&c, &o, mode, LEAF, &T),
                SitePlan::Set {
                    arm: Some(arm),
                    literal
                },
                "{o:?} in {mode:?}"
            );
        }
    }

    #[test]
    fn direct_routes() {
        let c = SiteState::COMPILED;
        for mode in [Mode::List, Mode::CallOps] {
            let near = owners(1, Some(DirectRoute::Bl(TRAMP)));
            assert_eq!(
                plan_site(&c, &near, mode, LEAF, &T),
                SitePlan::Set {
                    arm: Some(TRAMP),
                    literal: None
                }
            );
            let far = owners(1, Some(DirectRoute::ViaDirectCaller));
            assert_eq!(
                plan_site(&c, &far, mode, LEAF, &T),
                SitePlan::Set {
                    arm: Some(T.direct_caller),
                    literal: Some(OPS_A)
                }
            );
            // Beside another ops, whatever the route: the list walk, then the hand-over.
            for route in [DirectRoute::Bl(TRAMP), DirectRoute::ViaDirectCaller] {
                assert_eq!(
                    plan_site(&c, &owners(2, Some(route)), mode, LEAF, &T),
                    SitePlan::Set {
                        arm: Some(T.direct_caller),
                        literal: Some(T.list_ops)
                    }
                );
            }
        }
    }

    #[test]
    fn only_what_differs_is_written() {
        let one = owners(1, None);
        let st = apply(
            SiteState::COMPILED,
            plan_site(&SiteState::COMPILED, &one, Mode::CallOps, LEAF, &T),
        );
        assert_eq!(
            plan_site(&st, &one, Mode::CallOps, LEAF, &T),
            SitePlan::Keep
        );
        // A second owner changes only the literal; switching to list mode only the call.
        let two = Owners { count: 2, ..one };
        assert_eq!(
            plan_site(&st, &two, Mode::CallOps, LEAF, &T),
            SitePlan::Set {
                arm: None,
                literal: Some(T.list_ops)
            }
        );
        assert_eq!(
            plan_site(&st, &two, Mode::List, LEAF, &T),
            SitePlan::Set {
                arm: Some(T.list_caller[0]),
                literal: None
            }
        );
        // Another sole owner: a new literal.
        let other = Owners {
            first: OPS_B,
            ..one
        };
        assert_eq!(
            plan_site(&st, &other, Mode::CallOps, LEAF, &T),
            SitePlan::Set {
                arm: None,
                literal: Some(OPS_B)
            }
        );
    }

    #[test]
    fn no_owner_restores_only_a_changed_site() {
        let none = owners(0, None);
        let c = SiteState::BOOT;
        assert_eq!(plan_site(&c, &none, Mode::List, LEAF, &T), SitePlan::Keep);
        let armed = apply(c, plan_site(&c, &owners(1, None), Mode::CallOps, LEAF, &T));
        assert_eq!(
            plan_site(&armed, &none, Mode::CallOps, LEAF, &T),
            SitePlan::Restore
        );
        assert_eq!(apply(armed, SitePlan::Restore), c);
    }

    #[test]
    fn every_plan_reaches_its_own_fixed_point() {
        let routes = [
            None,
            Some(DirectRoute::Bl(TRAMP)),
            Some(DirectRoute::ViaDirectCaller),
        ];
        let mut st = SiteState::BOOT;
        for count in [1, 2, 0, 1, 3, 0] {
            for direct in routes {
                for mode in [Mode::List, Mode::CallOps] {
                    let o = owners(count, direct);
                    st = apply(st, plan_site(&st, &o, mode, LEAF, &T));
                    assert_eq!(plan_site(&st, &o, mode, LEAF, &T), SitePlan::Keep);
                }
            }
        }
        assert_eq!(st, SiteState::BOOT);
    }

    #[test]
    fn every_site_gets_the_smallest_variant_that_saves_its_registers() {
        let mut seen = [false; CALLER_VARIANTS];
        for regs in 0..=crate::sites::ARG_REGS {
            for x8 in [false, true] {
                let r = ArgRegs {
                    regs,
                    x8,
                    ..ArgRegs::ALL
                };
                let v = caller_variant(r);
                let (saves, saves_x8) = caller_variant_saves(v);
                // Enough: every argument register, and x8 when it may be live.
                assert!(saves >= regs && (saves_x8 || !x8), "{r:?} -> {v}");
                // Not more than the pair the last register is in, and x8 only if needed.
                assert!(saves <= regs + 1 && saves_x8 == x8, "{r:?} -> {v}");
                seen[v] = true;
                for mode in [Mode::List, Mode::CallOps] {
                    let SitePlan::Set { arm: Some(to), .. } =
                        plan_site(&SiteState::COMPILED, &owners(1, None), mode, r, &T)
                    else {
                        panic!("{r:?} in {mode:?} is not armed");
                    };
                    let want = match mode {
                        Mode::List => T.list_caller[v],
                        Mode::CallOps => T.ops_caller[v],
                    };
                    assert_eq!(to, want, "{r:?} in {mode:?}");
                }
            }
        }
        // Every variant serves some signature; unknown signatures get x0..x8.
        assert!(seen.iter().all(|&s| s), "{seen:?}");
        assert_eq!(
            caller_variant_saves(caller_variant(ArgRegs::ALL)),
            (8, true)
        );
        // A direct route does not depend on the registers (its trampoline saves them itself).
        let near = owners(1, Some(DirectRoute::Bl(TRAMP)));
        assert_eq!(
            plan_site(&SiteState::COMPILED, &near, Mode::CallOps, ArgRegs::ALL, &T),
            plan_site(&SiteState::COMPILED, &near, Mode::CallOps, LEAF, &T)
        );
    }
}
