//! Under `-icount shift=0,align=off,sleep=off` PMCCNTR_EL0 counts retired instructions exactly:
//! a fixed loop measures the same count on two boots (the runner boots this kernel twice and
//! compares the `@det` lines), and within a boot repeated measurements of the same loop agree
//! exactly.
#![no_std]
#![no_main]

use patchbay::{bench::clock, bsp::ClockMode, exit, println};

patchbay::qemu_directives!(
    "icount=1",
    "repeat=2",
    "same_lines=@det",
    "expect_console=@det loop="
);

#[inline(never)]
fn spin(n: u64) {
    for i in 0..n {
        core::hint::black_box(i);
    }
}

#[inline(never)]
fn measure(n: u64) -> u64 {
    clock::measure(|| spin(core::hint::black_box(n)))
}

fn measure5(n: u64) -> [u64; 5] {
    let mut v = [0; 5];
    for x in &mut v {
        *x = measure(n);
    }
    v
}

#[unsafe(no_mangle)]
fn kernel_main() -> ! {
    assert_eq!(clock::mode(), ClockMode::QemuIcount);
    assert_eq!(clock::unit(), "instructions");
    // Every measurement goes through one call site, so the fenced region is the same code.
    let a = measure5(1000);
    let b = measure5(2000);
    assert!(
        a.iter().all(|&x| x == a[0]),
        "repeated measurements differ: {a:?}"
    );
    assert!(
        b.iter().all(|&x| x == b[0]),
        "repeated measurements differ: {b:?}"
    );
    // Each iteration retires at least one instruction.
    assert!(b[0] - a[0] >= 1000, "{a:?} {b:?}");
    println!(
        "@det loop=1000:{} 2000:{} read_cost={}",
        a[0],
        b[0],
        clock::read_cost()
    );
    println!("1 passed, 0 failed");
    exit::exit(exit::ExitCode::Success)
}
