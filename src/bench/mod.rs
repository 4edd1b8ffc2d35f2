//! Measuring: the clock, the harness, the record format and the suite.
//!
//! - [`clock`]: PMCCNTR_EL0 (or CNTVCT_EL0), ISB-fenced, read cost calibrated; clock mode and unit.
//! - [`harness`]: warm-up + individually timed iterations with IRQs masked → statistics.
//! - [`record`]: the `@bench {json}` console records the host tool parses.
//! - [`all`]: the whole run; [`suite`]: the mechanism registry and the mechanisms suite; [`mechanisms`]: how each mechanism is
//!   attached; [`ops_scaling`]: Rutland's CALL_OPS table; [`patch_latency`]: poke and batches;
//!   [`smp`]: stop-the-world, IPI round trip, every mechanism measured on a secondary CPU;
//!   [`interrupted`]: every mechanism's call with a timer interrupt landing inside it;
//!   [`protocols`]: mode switches live vs stop-the-world.

pub mod all;
pub mod clock;
pub mod harness;
pub mod interrupted;
pub mod mechanisms;
pub mod ops_scaling;
pub mod patch_latency;
pub mod protocols;
pub mod record;
pub mod smp;
pub mod suite;
