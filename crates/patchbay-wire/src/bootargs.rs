//! The boot arguments `pb run` passes to the kernel (`key=value`, space-separated, in
//! `/chosen/bootargs` of the DTB): how the kernel learns what it cannot see for itself.
//!
//! | key | values | the kernel uses it for |
//! |---|---|---|
//! | [`CLOCK`] | a [`ClockMode`](patchbay_board::ClockMode) name: `qemu-icount`, `qemu`, `hardware` | what one counter tick is (`bench::clock::mode`) |
//! | [`EMULATOR`] | `qemu-<version>`, e.g. `qemu-10.0.2` | the `emulator` field of every `@bench` header |
//! | [`BENCH_ONLY`] | [`PROTOCOLS`] | `pb bench`'s extra boots with 2 and 4 CPUs: only the `patch-protocol` records (`bench::suite::run_all`) |

/// The clock mode.
pub const CLOCK: &str = "patchbay.clock";
/// The emulator and its version; absent on a board (whose header then says `none`).
pub const EMULATOR: &str = "patchbay.emulator";
/// Run only one part of the benchmark suite.
pub const BENCH_ONLY: &str = "bench.only";
/// [`BENCH_ONLY`]'s value for the patch-protocol records, which is also their suite's name.
pub const PROTOCOLS: &str = "patch-protocol";

/// `key=value`, as it appears in the boot arguments.
pub fn arg<'a>(key: &'a str, value: &'a str) -> impl core::fmt::Display + 'a {
    struct Arg<'a>(&'a str, &'a str);
    impl core::fmt::Display for Arg<'_> {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            write!(f, "{}={}", self.0, self.1)
        }
    }
    Arg(key, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_are_key_equals_value() {
        assert_eq!(
            arg(CLOCK, "qemu-icount").to_string(),
            "patchbay.clock=qemu-icount"
        );
        assert_eq!(
            arg(EMULATOR, "qemu-10.0.2").to_string(),
            "patchbay.emulator=qemu-10.0.2"
        );
    }
}
