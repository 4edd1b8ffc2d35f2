//! The in-kernel test framework.
//!
//! Tests are plain functions marked [`#[kernel_test]`](crate::kernel_test); the compiler's custom
//! test framework collects them and calls [`runner`], which runs them in order inside QEMU and
//! ends the run with a semihosting exit code. A failing test panics; the panic report names it
//! (the runner prints the test's name before running it) and the run exits with failure.
//!
//! Output, one line per test and a closing summary:
//!
//! ```text
//! running 3 tests
//! [1/3] boot::heap_allocates ... ok
//! ...
//! 3 passed, 0 failed
//! ```

use crate::{
    exit::{ExitCode, exit},
    println,
};

/// One test case, built by `#[kernel_test]`.
pub struct TestCase {
    pub name: &'static str,
    pub func: fn(),
}

/// The custom test framework's entry point.
pub fn runner(tests: &[&TestCase]) -> ! {
    println!("running {} tests", tests.len());
    for (i, t) in tests.iter().enumerate() {
        crate::print!("[{}/{}] {} ... ", i + 1, tests.len(), t.name);
        (t.func)();
        println!("ok");
    }
    println!("{} passed, 0 failed", tests.len());
    exit(ExitCode::Success)
}

/// Is `line` a `key=value` with a run-directive key `pb` knows? (For [`qemu_directives!`].)
pub const fn is_known_directive(line: &str) -> bool {
    patchbay_wire::directives::is_known_line(line)
}

/// Declare QEMU run directives for this kernel binary, read by the host tool (`pb run`) from the
/// `.patchbay.qemu` section. One `key=value` per argument; see the README for the keys. A key
/// that `patchbay_wire::directives::KEYS` does not list is a compile error.
///
/// ```ignore
/// patchbay::qemu_directives!("machine=virt,virtualization=on", "expect_console=entered at EL2");
/// ```
#[macro_export]
macro_rules! qemu_directives {
    ($($line:literal),* $(,)?) => {
        $(const _: () = if !$crate::ktest::is_known_directive($line) {
            panic!("{}", concat!("qemu_directives!: unknown key in \"", $line, "\""))
        };)*
        const __PATCHBAY_QEMU_TEXT: &str = concat!($($line, "\n"),*);
        #[used]
        #[unsafe(link_section = ".patchbay.qemu")]
        static __PATCHBAY_QEMU: [u8; __PATCHBAY_QEMU_TEXT.len()] = {
            let b = __PATCHBAY_QEMU_TEXT.as_bytes();
            let mut a = [0u8; __PATCHBAY_QEMU_TEXT.len()];
            let mut i = 0;
            while i < b.len() {
                a[i] = b[i];
                i += 1;
            }
            a
        };
    };
}

/// The entry point of a kernel test binary (one with the custom test framework's attributes):
/// `kernel_main` runs the given setup statements, then every `#[kernel_test]` (`test_main`, from
/// `#![reexport_test_harness_main = "test_main"]`), then exits with success.
///
/// ```ignore
/// #![no_std]
/// #![no_main]
/// #![feature(custom_test_frameworks)]
/// #![test_runner(patchbay::ktest::runner)]
/// #![reexport_test_harness_main = "test_main"]
///
/// // Record the text's fingerprint before any test patches it.
/// patchbay::test_kernel_main!(BOOT.store(text::text_hash(), Ordering::Relaxed));
/// ```
#[macro_export]
macro_rules! test_kernel_main {
    ($($setup:stmt);* $(;)?) => {
        #[unsafe(no_mangle)]
        fn kernel_main() -> ! {
            $($setup;)*
            test_main();
            $crate::exit::exit($crate::exit::ExitCode::Success)
        }
    };
}

/// Spin until `done()` holds, failing the test (naming `what`) after `seconds` of the generic
/// timer (host time without icount, virtual time with it). For tests that wait for another CPU.
pub fn wait_until(what: &str, seconds: u64, done: impl Fn() -> bool) {
    let start = crate::arch::pmu::cntvct();
    let limit = crate::arch::pmu::counter_frequency() * seconds;
    while !done() {
        assert!(
            crate::arch::pmu::cntvct() - start < limit,
            "gave up after {seconds} s waiting for {what}"
        );
        core::hint::spin_loop();
    }
}
