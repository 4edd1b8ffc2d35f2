//! Cross-CPU calls through the IPI (issue 14): one, several, all other CPUs, waiting or not; a
//! CPU that does not answer is a typed timeout. QEMU `virt` with 4 CPUs and GICv2 (SGIs) or,
//! built with `bsp_rpi3`, QEMU `raspi3b` (BCM2836 core mailboxes). Body: tests/ipi_body.rs
//! (tests/ipi_gicv3.rs runs it on GICv3).
#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(patchbay::ktest::runner)]
#![reexport_test_harness_main = "test_main"]

#[cfg(feature = "bsp_qemu_virt")]
patchbay::qemu_directives!("smp=4", "timeout=90");
#[cfg(not(feature = "bsp_qemu_virt"))]
patchbay::qemu_directives!("timeout=90");

include!("ipi_body.rs");
