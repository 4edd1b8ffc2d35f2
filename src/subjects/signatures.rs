//! Signature subjects: one patchable function per way a Rust signature puts its arguments and
//! result into registers and memory under AAPCS64 (as rustc lowers it for the
//! general-registers-only kernel target), for the signature matrix test (`tests/signatures.rs`).
//!
//! | subject | what a trampoline must get right |
//! |---|---|
//! | [`sig_slice`], [`sig_str`], [`sig_mut_slice`] | a fat pointer is two registers (pointer, length) |
//! | [`sig_u128`], [`sig_i128`] | a 128-bit integer after an odd number of words: an even-aligned pair, x1 (x3) skipped |
//! | [`sig_small`], [`sig_pair16`] | small structs by value (in registers), a 16-byte struct returned in x0/x1 |
//! | [`sig_large`] | a large struct by value (by reference under the hood) |
//! | [`sig_option_ref`] | `Option<&T>`: one nullable pointer |
//! | [`sig_tuple`] | a tuple by value and a tuple result |
//! | [`sig_args8`], [`sig_args9`], [`sig_args12`], [`sig_args13`] | all of x0–x7, then stack arguments |
//! | [`sig_stack_u128`], [`sig_split_slice`] | a pair that no longer fits: aligned stack words, a fat pointer split between x7 and the stack |
//! | [`sig_large_ret`], [`sig_slice_large_ret`], [`sig_args9_large_ret`] | a result returned through memory: x8 holds the caller's buffer |
//! | [`sig_f64`] | floats (general registers on this target: FP/SIMD traps at EL1) |
//!
//! Each has an untraced twin (`*_twin`, the same body, not patchable): a traced call must return
//! exactly what the twin returns. The module sits after every other subject so that adding it
//! moves none of their code.
#![allow(clippy::too_many_arguments)]

use crate::patchable;

/// 8 bytes by value: one register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Small {
    pub a: u32,
    pub b: u32,
}

/// 16 bytes by value: two registers; returned in x0/x1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pair16 {
    pub a: u64,
    pub b: u64,
}

/// 48 bytes: passed by reference, returned through the caller's buffer at x8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Large {
    pub w: [u64; 6],
}

/// One step of the subjects' hash: every input bit reaches the result.
#[inline(always)]
fn mix(acc: u64, x: u64) -> u64 {
    (acc ^ x)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .rotate_left(23)
}

fn mix_all(words: &[u64]) -> u64 {
    words.iter().fold(0x5eed, |acc, &w| mix(acc, w))
}

fn spread(seed: u64) -> Large {
    let mut w = [0; 6];
    let mut acc = seed;
    for (i, x) in w.iter_mut().enumerate() {
        acc = mix(acc, i as u64);
        *x = acc;
    }
    Large { w }
}

/// Each subject twice from one body: `#[patchable] name` and its untraced `twin`.
macro_rules! subjects {
    ($( fn $name:ident / $twin:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty $body:block )*) => {
        /// Named patch sites in this module.
        pub const SITES: usize = [$(stringify!($name)),*].len();

        $(
            #[patchable]
            pub fn $name($($arg: $ty),*) -> $ret $body

            #[doc = concat!("The untraced twin of [`", stringify!($name), "`].")]
            #[inline(never)]
            pub fn $twin($($arg: $ty),*) -> $ret $body
        )*
    };
}

subjects! {
    fn sig_slice / sig_slice_twin(s: &[u64]) -> u64 {
        mix(mix_all(s), s.len() as u64)
    }
    fn sig_str / sig_str_twin(k: u64, s: &str) -> u64 {
        s.bytes().fold(k, |acc, b| mix(acc, u64::from(b))) ^ s.len() as u64
    }
    fn sig_mut_slice / sig_mut_slice_twin(s: &mut [u64], k: u64) -> u64 {
        for w in s.iter_mut() {
            *w = mix(*w, k);
        }
        mix_all(s)
    }
    fn sig_u128 / sig_u128_twin(a: u64, b: u128) -> u128 {
        b.wrapping_mul(u128::from(a) | 1) ^ (u128::from(mix(a, b as u64)) << 64)
    }
    fn sig_i128 / sig_i128_twin(a: u64, b: u64, c: u64, d: i128, e: u64) -> i128 {
        d.wrapping_mul(i128::from(mix_all(&[a, b, c, e]) as i64)) ^ i128::from(e)
    }
    fn sig_small / sig_small_twin(s: Small, k: u64) -> u64 {
        mix(mix(k, u64::from(s.a)), u64::from(s.b))
    }
    fn sig_pair16 / sig_pair16_twin(p: Pair16, k: u64) -> Pair16 {
        Pair16 { a: mix(p.a, k), b: mix(p.b, !k) }
    }
    fn sig_large / sig_large_twin(l: Large, k: u64) -> u64 {
        mix(mix_all(&l.w), k)
    }
    fn sig_option_ref / sig_option_ref_twin(o: Option<&u64>, k: u64) -> u64 {
        match o {
            Some(v) => mix(*v, k),
            None => !k,
        }
    }
    fn sig_tuple / sig_tuple_twin(t: (u64, u32), k: u64) -> (u64, u64) {
        (mix(t.0, k), mix(u64::from(t.1), k))
    }
    fn sig_args8 / sig_args8_twin(a: u64, b: u64, c: u64, d: u64, e: u64, f: u64, g: u64, h: u64) -> u64 {
        mix_all(&[a, b, c, d, e, f, g, h])
    }
    fn sig_args9 / sig_args9_twin(a: u64, b: u64, c: u64, d: u64, e: u64, f: u64, g: u64, h: u64, i: u64) -> u64 {
        mix_all(&[a, b, c, d, e, f, g, h, i])
    }
    fn sig_args12 / sig_args12_twin(
        a: u64, b: u64, c: u64, d: u64, e: u64, f: u64, g: u64, h: u64, i: u64, j: u64, k: u64, l: u64
    ) -> u64 {
        mix_all(&[a, b, c, d, e, f, g, h, i, j, k, l])
    }
    fn sig_args13 / sig_args13_twin(
        a: u64, b: u64, c: u64, d: u64, e: u64, f: u64, g: u64, h: u64, i: u64, j: u64, k: u64, l: u64,
        m: u64
    ) -> u64 {
        mix_all(&[a, b, c, d, e, f, g, h, i, j, k, l, m])
    }
    fn sig_stack_u128 / sig_stack_u128_twin(
        a: u64, b: u64, c: u64, d: u64, e: u64, f: u64, g: u64, h: u128, i: u64
    ) -> u128 {
        h.wrapping_mul(u128::from(mix_all(&[a, b, c, d, e, f, g, i])))
    }
    fn sig_split_slice / sig_split_slice_twin(
        a: u64, b: u64, c: u64, d: u64, e: u64, f: u64, g: u64, s: &[u64]
    ) -> u64 {
        mix(mix_all(&[a, b, c, d, e, f, g]), mix(mix_all(s), s.len() as u64))
    }
    fn sig_large_ret / sig_large_ret_twin(a: u64, b: u64) -> Large {
        spread(mix(a, b))
    }
    fn sig_slice_large_ret / sig_slice_large_ret_twin(s: &[u64], k: u64) -> Large {
        spread(mix(mix_all(s), mix(k, s.len() as u64)))
    }
    fn sig_args9_large_ret / sig_args9_large_ret_twin(
        a: u64, b: u64, c: u64, d: u64, e: u64, f: u64, g: u64, h: u64, i: u64
    ) -> Large {
        spread(mix_all(&[a, b, c, d, e, f, g, h, i]))
    }
    fn sig_f64 / sig_f64_twin(a: f64, b: f64, n: u64) -> f64 {
        a * b + n as f64 / (a - b)
    }
}
