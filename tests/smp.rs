//! Secondary bring-up (issue 14): every CPU the DTB lists comes online in its own per-CPU slot
//! with its own stacks and guard pages. On QEMU `virt` with 4 CPUs (PSCI `CPU_ON`, HVC) and,
//! built with `bsp_rpi3`, on QEMU `raspi3b` (spin tables in the unmapped null page).
#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(patchbay::ktest::runner)]
#![reexport_test_harness_main = "test_main"]

use core::sync::atomic::Ordering;

use patchbay::{boot_info, kernel_test, memory, percpu};
use patchbay_pure::pagetable;

#[cfg(feature = "bsp_qemu_virt")]
patchbay::qemu_directives!(
    "smp=4",
    "timeout=60",
    "expect_console=cpus: 4 of 4 online: 0 (MPIDR 0x80000000) 1 (MPIDR 0x80000001) 2 (MPIDR 0x80000002) 3 (MPIDR 0x80000003)",
    "reject_console= is off: ",
);

#[cfg(not(feature = "bsp_qemu_virt"))]
patchbay::qemu_directives!(
    "timeout=60",
    "expect_console=cpus: 4 of 4 online: 0 (MPIDR 0x80000000) 1 (MPIDR 0x80000001) 2 (MPIDR 0x80000002) 3 (MPIDR 0x80000003)",
    "reject_console= is off: ",
);

patchbay::test_kernel_main!();

/// MPIDR_EL1's affinity fields (what a DTB `reg` holds).
const AFFINITY: u64 = patchbay_pure::psci::MPIDR_AFFINITY_MASK;

#[kernel_test]
fn every_dtb_cpu_is_online_in_its_own_slot() {
    let info = boot_info::get();
    assert_eq!(info.cpus, 4);
    assert_eq!(info.cpus_used(), 4);
    assert_eq!(percpu::online(), 4);
    assert_eq!(percpu::this().id, 0, "the boot CPU is CPU 0");
    for (i, node) in info.cpu_nodes().iter().enumerate() {
        let slot = &percpu::CPUS[i];
        assert!(slot.online.load(Ordering::Acquire), "CPU {i} not online");
        // Each CPU wrote its own MPIDR through its own TPIDR_EL1: the slot is the DTB's CPU.
        assert_eq!(
            slot.mpidr.load(Ordering::Relaxed) & AFFINITY,
            node.mpidr,
            "CPU {i}"
        );
    }
    for slot in &percpu::CPUS[4..] {
        assert!(!slot.online.load(Ordering::Acquire));
    }
    assert_eq!(percpu::online_cpus().count(), 4);
}

#[kernel_test]
fn every_cpu_has_both_stacks_with_unmapped_guards() {
    let mapped = |a: u64| {
        // SAFETY: the tables are live and valid.
        unsafe { pagetable::translate(memory::root(), a) }.map(|t| (t.attrs.write, t.attrs.exec))
    };
    for cpu in 0..percpu::MAX_CPUS {
        let (k, e) = memory::cpu_stacks(cpu);
        for s in [k, e] {
            assert_eq!(
                mapped(s.start),
                Some((true, false)),
                "CPU {cpu} stack {s:?}"
            );
            assert_eq!(
                mapped(s.end - 8),
                Some((true, false)),
                "CPU {cpu} stack {s:?}"
            );
            assert_eq!(mapped(s.start - 8), None, "CPU {cpu}: guard below {s:?}");
            assert_eq!(memory::in_stack_guard(s.start - 8), Some(cpu));
        }
    }
}

#[cfg(feature = "bsp_qemu_virt")]
#[kernel_test]
fn psci_cpu_on_errors_are_typed() {
    use patchbay::arch::psci::{PsciError, cpu_on};
    let entry = every_dtb_cpu_is_online_in_its_own_slot as *const () as u64;
    let cpu1 = boot_info::get().cpu_nodes()[1].mpidr;
    assert_eq!(cpu_on(cpu1, entry, 0), Err(PsciError::AlreadyOn));
    assert_eq!(
        cpu_on(0xff, entry, 0),
        Err(PsciError::InvalidParameters),
        "no CPU has Aff0 0xff"
    );
}
