//! The functions under test: small, patchable, each a different shape of call.
//!
//! | subject | shape |
//! |---|---|
//! | [`leaf`] | no arguments, no result: the cheapest possible call |
//! | [`args8`] | eight integer arguments (all of x0–x7), position-weighted sum |
//! | [`fib`] | recursive: every recursive call goes through the site again |
//! | [`observe`] | returns a value a handler can observe or override |
//! | [`side_effect`] | counts its own executions, so a test can tell whether the body ran |
//! | [`deep`] | recursion of any depth (beyond the shadow stack's capacity) |
//! | [`bt_probe`] | captures a backtrace from inside itself when asked (the untraced reference) |
//! | [`generated`] | 4096 tiny functions for scale (`gen_0000` … `gen_4095`) |
//!
//! Each has a non-patchable twin (`*_twin`) with the same body, the baseline for measuring what
//! the two entry NOPs cost. Bodies use `black_box` so the compiler keeps every call.

use core::hint::black_box;

use crate::patchable;

pub mod generated;

#[patchable]
pub fn leaf() {
    black_box(());
}

#[patchable]
#[allow(clippy::too_many_arguments)]
pub fn args8(a: u64, b: u64, c: u64, d: u64, e: u64, f: u64, g: u64, h: u64) -> u64 {
    a + 2 * b + 3 * c + 4 * d + 5 * e + 6 * f + 7 * g + 8 * h
}

/// `args8` evaluated on the host side of a test, for comparing results.
#[allow(clippy::too_many_arguments)]
pub const fn args8_expected(a: u64, b: u64, c: u64, d: u64, e: u64, f: u64, g: u64, h: u64) -> u64 {
    a + 2 * b + 3 * c + 4 * d + 5 * e + 6 * f + 7 * g + 8 * h
}

#[patchable]
pub fn fib(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    // Through a black-boxed pointer: the compiler may not turn the recursion into a loop, so
    // fib(n) makes exactly 2 * fib(n + 1) - 1 calls, every one through the site.
    let f: fn(u64) -> u64 = black_box(fib);
    f(n - 1) + f(n - 2)
}

/// Number of calls `fib(n)` makes (itself included).
pub const fn fib_calls(n: u64) -> u64 {
    let (mut a, mut b) = (0u64, 1u64);
    let mut i = 0;
    while i < n + 1 {
        let t = a + b;
        a = b;
        b = t;
        i += 1;
    }
    2 * a - 1
}

#[patchable]
pub fn observe(x: u64) -> u64 {
    x.wrapping_mul(3).wrapping_add(7)
}

/// Executions of [`side_effect`]'s body.
pub static SIDE_EFFECTS: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

#[patchable]
pub fn side_effect(x: u64) -> u64 {
    SIDE_EFFECTS.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    x + 1
}

#[patchable]
pub fn deep(n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    let f: fn(u64) -> u64 = black_box(deep);
    f(n - 1) + 1
}

/// When set, [`bt_probe`] records the return addresses of its callers in [`BACKTRACE`].
pub static BT_CAPTURE: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
pub static BACKTRACE: spin::Mutex<alloc::vec::Vec<u64>> = spin::Mutex::new(alloc::vec::Vec::new());

#[patchable]
pub fn bt_probe() -> u64 {
    if BT_CAPTURE.load(core::sync::atomic::Ordering::Relaxed) {
        let mut bt = BACKTRACE.lock();
        bt.clear();
        crate::unwind::walk(crate::unwind::current_fp(), 32, |f| bt.push(f.pc));
    }
    black_box(5)
}

/// Named (non-generated) patch sites in this module and [`signatures`].
pub const NAMED_SITES: usize = 7 + signatures::SITES;

#[inline(never)]
pub fn leaf_twin() {
    black_box(());
}

#[inline(never)]
#[allow(clippy::too_many_arguments)]
pub fn args8_twin(a: u64, b: u64, c: u64, d: u64, e: u64, f: u64, g: u64, h: u64) -> u64 {
    a + 2 * b + 3 * c + 4 * d + 5 * e + 6 * f + 7 * g + 8 * h
}

#[inline(never)]
pub fn fib_twin(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let f: fn(u64) -> u64 = black_box(fib_twin);
    f(n - 1) + f(n - 2)
}

// Last, so that its code follows every other subject's.
pub mod signatures;
