//! Interrupts on every CPU: the timer tick through QEMU `virt`'s GICv2 with 4 CPUs, or, built
//! with `bsp_rpi3`, through the BCM2836 local controller of QEMU `raspi3b` (body:
//! tests/irq_body.rs).
#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(patchbay::ktest::runner)]
#![reexport_test_harness_main = "test_main"]

#[cfg(feature = "bsp_qemu_virt")]
patchbay::qemu_directives!(
    "smp=4",
    "gic=2",
    "timeout=90",
    "bootargs=patchbay.tick_hz=1000",
    "expect_console=irq: GICv2, timer tick 1000 Hz on every CPU",
);

#[cfg(not(feature = "bsp_qemu_virt"))]
patchbay::qemu_directives!(
    "timeout=90",
    "bootargs=patchbay.tick_hz=1000",
    "expect_console=irq: BCM2836 local, timer tick 1000 Hz on every CPU",
);

include!("irq_body.rs");
