//! 4096 generated patchable functions, for batch patching at scale.
//!
//! `build.rs` writes them (`$OUT_DIR/generated_subjects.rs`), each one line:
//!
//! ```ignore
//! #[unsafe(link_section = ".text.subjects_gen")] #[patchable] pub fn gen_0042(x: u64) -> u64 { x ^ 42 }
//! ```
//!
//! Distinct bodies keep the compiler from merging them. Their own section starts on a page
//! boundary (linker.ld), so batch-patching costs do not shift with unrelated code. [`ALL`]
//! lists them in order.

// `gen_0000` is `x ^ 0`: the uniform shape matters more than the lint.
#![allow(clippy::identity_op)]

use crate::patchable;

include!(concat!(env!("OUT_DIR"), "/generated_subjects.rs"));

/// `gen_i(x)` returns `x ^ i`.
pub const fn expected(i: usize, x: u64) -> u64 {
    x ^ i as u64
}
