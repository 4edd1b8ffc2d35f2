//! Measuring: the clock (cycle counter) now; the calibrated harness and suite build on it.

pub mod clock;
