//! The benchmark suite end to end under icount: every expected record is emitted, and two boots
//! produce identical records (the runner compares every `@bench` line of both boots).
#![no_std]
#![no_main]

use patchbay::{
    bench::{all, record},
    exit, println,
};

patchbay::qemu_directives!(
    "icount=1",
    "repeat=2",
    "same_lines=@bench",
    "timeout=120",
    "expect_console=@bench {\"type\":\"end\"",
    "expect_console=\"mechanism\":\"call-ops\",\"subject\":\"args8\"",
    "expect_console=\"suite\":\"ops-scaling\",\"mechanism\":\"list\"",
    "expect_console=\"batch\":4096",
);

#[unsafe(no_mangle)]
fn kernel_main() -> ! {
    all::run_all();
    let n = record::emitted();
    assert_eq!(n, all::expected_records(), "the suite emitted {n} records");
    assert!(n >= 60);
    println!("1 passed, 0 failed");
    exit::exit(exit::ExitCode::Success)
}
