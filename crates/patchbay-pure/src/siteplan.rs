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
//! A direct attachment changes that: alone on a site it takes its own route ([`DirectRoute`]);
//! beside other ops the site goes to the direct caller with the list ops in its literal, and the
//! direct attachment's ops hands over to its trampoline after the list walk.
//!
//! ```
//! use patchbay_pure::{batch::SiteState, siteplan::*};
//! let t = Targets { list_caller: 0x100, ops_caller: 0x200, direct_caller: 0x300, list_ops: 0x900 };
//! let one = Owners { count: 1, first: 0x5000, direct: None };
//! assert_eq!(
//!     plan_site(&SiteState::COMPILED, &one, Mode::CallOps, &t),
//!     SitePlan::Set { arm: Some(0x200), literal: Some(0x5000) }
//! );
//! ```

use crate::batch::SiteState;

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

/// The addresses a plan may name: the static trampolines and the list ops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Targets {
    pub list_caller: u64,
    pub ops_caller: u64,
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

/// Plan one site, currently in state `st`, for `owners` in `mode`. Only what differs from `st`
/// is written.
pub fn plan_site(st: &SiteState, owners: &Owners, mode: Mode, t: &Targets) -> SitePlan {
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
        (None, Mode::List) => (t.list_caller, None),
        (None, Mode::CallOps) => {
            let lit = if owners.count == 1 {
                owners.first
            } else {
                t.list_ops
            };
            (t.ops_caller, Some(lit))
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
    use alloc::vec;

    use super::*;
    use crate::{
        batch::{self, Call, Change, Literal, PlanError},
        sites::Site,
    };

    const T: Targets = Targets {
        list_caller: 0x4010_0000,
        ops_caller: 0x4010_0100,
        direct_caller: 0x4010_0200,
        list_ops: 0x4800_0000,
    };
    const OPS_A: u64 = 0x4900_0000;
    const OPS_B: u64 = 0x4900_0100;
    const TRAMP: u64 = 0x4400_0000;
    const SITE: Site<'static> = Site {
        func: 0x4008_0000,
        name: "f",
        nargs: 0,
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
        let (mut phase1, mut phase2, mut entry_writes) = (vec![], vec![], false);
        let phases = [&mut phase1, &mut phase2];
        batch::plan_change::<PlanError>(&c, &SITE, st, phases, &mut entry_writes).unwrap()
    }

    #[test]
    fn the_mode_table() {
        let c = SiteState::COMPILED;
        let cases = [
            (owners(1, None), Mode::List, T.list_caller, None),
            (owners(2, None), Mode::List, T.list_caller, None),
            (owners(1, None), Mode::CallOps, T.ops_caller, Some(OPS_A)),
            (
                owners(3, None),
                Mode::CallOps,
                T.ops_caller,
                Some(T.list_ops),
            ),
        ];
        for (o, mode, arm, literal) in cases {
            assert_eq!(
                plan_site(&c, &o, mode, &T),
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
                plan_site(&c, &near, mode, &T),
                SitePlan::Set {
                    arm: Some(TRAMP),
                    literal: None
                }
            );
            let far = owners(1, Some(DirectRoute::ViaDirectCaller));
            assert_eq!(
                plan_site(&c, &far, mode, &T),
                SitePlan::Set {
                    arm: Some(T.direct_caller),
                    literal: Some(OPS_A)
                }
            );
            // Beside another ops, whatever the route: the list walk, then the hand-over.
            for route in [DirectRoute::Bl(TRAMP), DirectRoute::ViaDirectCaller] {
                assert_eq!(
                    plan_site(&c, &owners(2, Some(route)), mode, &T),
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
            plan_site(&SiteState::COMPILED, &one, Mode::CallOps, &T),
        );
        assert_eq!(plan_site(&st, &one, Mode::CallOps, &T), SitePlan::Keep);
        // A second owner changes only the literal; switching to list mode only the call.
        let two = Owners { count: 2, ..one };
        assert_eq!(
            plan_site(&st, &two, Mode::CallOps, &T),
            SitePlan::Set {
                arm: None,
                literal: Some(T.list_ops)
            }
        );
        assert_eq!(
            plan_site(&st, &two, Mode::List, &T),
            SitePlan::Set {
                arm: Some(T.list_caller),
                literal: None
            }
        );
        // Another sole owner: a new literal.
        let other = Owners {
            first: OPS_B,
            ..one
        };
        assert_eq!(
            plan_site(&st, &other, Mode::CallOps, &T),
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
        assert_eq!(plan_site(&c, &none, Mode::List, &T), SitePlan::Keep);
        let armed = apply(c, plan_site(&c, &owners(1, None), Mode::CallOps, &T));
        assert_eq!(
            plan_site(&armed, &none, Mode::CallOps, &T),
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
                    st = apply(st, plan_site(&st, &o, mode, &T));
                    assert_eq!(plan_site(&st, &o, mode, &T), SitePlan::Keep);
                }
            }
        }
        assert_eq!(st, SiteState::BOOT);
    }
}
