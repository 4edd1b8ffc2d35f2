//! A minimal patch-site target that counts calls: the simplest correct thing an armed site can
//! `bl` to, used by the patching tests and the patch-latency benchmark.
//!
//! Entry contract (an armed site, see [`crate::patch`]): x30 = the function body (site + 8),
//! x9 = the caller's return address, x0–x8 = the function's arguments (preserved here). x16 and
//! x17 (IP0/IP1) are free at any call boundary.

use core::sync::atomic::{AtomicU64, Ordering};

/// Calls counted by [`count_hit`].
pub static HITS: AtomicU64 = AtomicU64::new(0);

/// The target: `HITS += 1`, then continue into the function body with x30 restored.
#[unsafe(naked)]
pub extern "C" fn count_hit() {
    core::arch::naked_asm!(
        // HITS += 1 (one CPU runs sites today; a plain read-modify-write is enough).
        "adrp x16, {hits}",
        "add  x16, x16, :lo12:{hits}",
        "ldr  x17, [x16]",
        "add  x17, x17, #1",
        "str  x17, [x16]",
        // Continue at the body (x30) with x30 = the caller's return address (x9), so the body
        // returns straight to the caller.
        "mov  x17, x30",
        "mov  x30, x9",
        "ret  x17",
        hits = sym HITS,
    )
}

/// The address to arm a site with.
pub fn target() -> u64 {
    count_hit as *const () as u64
}

/// Read and reset the counter.
pub fn take() -> u64 {
    HITS.swap(0, Ordering::SeqCst)
}
