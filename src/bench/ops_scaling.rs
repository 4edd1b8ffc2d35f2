//! Mark Rutland's CALL_OPS table, reproduced: the cost of one traced call of `leaf` with
//! 1 relevant ops; 1 relevant + 1/2/10/100 irrelevant ops (tracing another function); and
//! 2/10/100 relevant ops — in list mode and in call-ops mode. The property to show: call-ops
//! stays flat as irrelevant ops grow (the literal names the one owner), list mode grows (it walks
//! and tests every ops).

use alloc::vec::Vec;

use super::{
    harness::{self, Iters},
    mechanisms::count,
    record::{self, BenchResult},
};
use crate::{
    patch::sites,
    subjects,
    trace::{self, Filter, Mode},
};

/// (relevant, irrelevant) combinations, in table order.
pub const SHAPES: [(u32, u32); 8] = [
    (1, 0),
    (1, 1),
    (1, 2),
    (1, 10),
    (1, 100),
    (2, 0),
    (10, 0),
    (100, 0),
];

pub fn run(iters: Iters) {
    let leaf = sites::by_name("patchbay::subjects::leaf").expect("leaf is a site");
    let other = sites::by_name("patchbay::subjects::generated::gen_0000").expect("gen_0000");
    let off = harness::measure(iters, subjects::leaf).median;
    for mode in [Mode::List, Mode::CallOps] {
        for (relevant, irrelevant) in SHAPES {
            let mut ids = Vec::new();
            for _ in 0..relevant {
                ids.push(trace::attach(
                    Filter::Addrs([leaf.func].into()),
                    count,
                    0,
                    mode,
                ));
            }
            for _ in 0..irrelevant {
                ids.push(trace::attach(
                    Filter::Addrs([other.func].into()),
                    count,
                    0,
                    mode,
                ));
            }
            let ids: Vec<_> = ids.into_iter().collect::<Result<_, _>>().expect("attach");
            let s = harness::measure(iters, subjects::leaf);
            for id in ids {
                trace::detach(id).expect("detach");
            }
            let mut r = BenchResult::new("ops-scaling", mode.name(), "leaf", "call", s);
            r.baseline = Some(("off", off));
            r.relevant = Some(relevant);
            r.irrelevant = Some(irrelevant);
            record::emit(&r);
        }
    }
}
