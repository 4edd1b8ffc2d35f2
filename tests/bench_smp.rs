//! The SMP suite under icount with 2 CPUs (src/bench/smp.rs): every mechanism's per-call cost
//! measured on CPU 1 equals CPU 0's, instruction for instruction; the IPI round trip and the
//! stop-the-world are measured; two boots produce identical records.
#![no_std]
#![no_main]

use patchbay::{
    bench::{harness::Iters, record, smp},
    exit, println,
};

patchbay::qemu_directives!(
    "smp=2",
    "icount=1",
    "repeat=2",
    "same_lines=@bench",
    "timeout=300",
    "expect_console=\"suite\":\"smp\",\"mechanism\":\"stop-machine\",\"subject\":\"cpus-2\"",
    "expect_console=\"suite\":\"smp\",\"mechanism\":\"ipi\",\"subject\":\"one-cpu\"",
    "expect_console=\"suite\":\"smp\",\"mechanism\":\"kretprobe\",\"subject\":\"recursive\",\"metric\":\"call-cpu1\"",
    "expect_console=@bench {\"type\":\"end\"",
);

#[unsafe(no_mangle)]
fn kernel_main() -> ! {
    record::header();
    let mismatches = smp::run(Iters::DEFAULT);
    record::end();
    assert_eq!(record::emitted(), smp::expected_records(2));
    assert!(
        mismatches.is_empty(),
        "CPU 1 and CPU 0 measured different per-call costs: {mismatches:?}"
    );
    println!("1 passed, 0 failed");
    exit::exit(exit::ExitCode::Success)
}
