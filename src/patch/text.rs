//! Where patching may write, and fingerprints of it.

use patchbay_pure::{hash, layout::Range};

use crate::memory;

/// Regions the poke path may write: kernel text and the two trampoline pools.
pub fn patchable_regions() -> [Range; 3] {
    let plan = memory::plan();
    [memory::image().text, plan.near_pool, plan.far_pool]
}

/// FNV-1a of all kernel text: equal before and after means byte-identical (in practice).
pub fn text_hash() -> u64 {
    hash_range(memory::image().text)
}

/// FNV-1a of `r` (must be mapped readable).
pub fn hash_range(r: Range) -> u64 {
    // SAFETY: the caller passes a mapped, readable region (text and pools are mapped R-X).
    let bytes = unsafe { core::slice::from_raw_parts(r.start as *const u8, r.len() as usize) };
    hash::fnv1a64(bytes)
}
