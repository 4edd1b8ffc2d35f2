//! Boot facts, heap, W^X and the cycle counter, checked inside QEMU `virt` with 2 CPUs and 1 GiB
//! (and, built with `bsp_rpi3`, inside QEMU `raspi3b` with the DTB `pb run` writes for it).
#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(patchbay::ktest::runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

use alloc::{boxed::Box, collections::BTreeMap, vec::Vec};

use patchbay::{arch, bench::clock, boot_info, kernel_test, memory, symbols};
use patchbay_pure::pagetable;

#[cfg(feature = "bsp_qemu_virt")]
patchbay::qemu_directives!(
    "smp=2",
    "memory=1G",
    "expect_console=patchbay 0.1.0",
    "expect_console=entered at EL1, running at EL1",
    "expect_console=2 CPU(s), RAM 0x40000000..0x80000000 (1024 MiB)",
    "expect_console=cpus: 2 of 2 online",
);

/// What the QEMU command line above promises.
#[cfg(feature = "bsp_qemu_virt")]
mod expect {
    pub const CPUS: u32 = 2;
    pub const RAM: (u64, u64) = (0x4000_0000, 1 << 30);
    pub const ENTRY_EL: u8 = 1;
    pub const MODEL: &str = "linux,dummy-virt";
}

// A Raspberry Pi under QEMU raspi3b / raspi4b: the firmware's entry at EL2 and pb's DTB (4 CPUs;
// the first memory bank: the ARM's 960 MiB below 1 GiB on both).
#[cfg(not(feature = "bsp_qemu_virt"))]
patchbay::qemu_directives!(
    "expect_console=patchbay 0.1.0",
    "expect_console=entered at EL2, running at EL1",
    "expect_console=4 CPU(s), RAM 0x0..0x3c000000 (960 MiB)",
);

#[cfg(not(feature = "bsp_qemu_virt"))]
mod expect {
    pub const CPUS: u32 = 4;
    pub const RAM: (u64, u64) = (0, 0x3c00_0000);
    pub const ENTRY_EL: u8 = 2;
    #[cfg(feature = "bsp_rpi3")]
    pub const MODEL: &str = "Raspberry Pi 3 Model B (QEMU raspi3b, DTB by pb)";
    #[cfg(feature = "bsp_rpi4")]
    pub const MODEL: &str = "Raspberry Pi 4 Model B (QEMU raspi4b, DTB by pb)";
}

patchbay::test_kernel_main!();

#[kernel_test]
fn dtb_facts_match_the_qemu_command_line() {
    let info = boot_info::get();
    assert_eq!(info.dtb_problem, None);
    assert_eq!(info.cpus, expect::CPUS);
    assert!(info.ram_from_dtb);
    assert_eq!((info.ram.start, info.ram.len()), expect::RAM);
    assert_eq!(info.entry_el, expect::ENTRY_EL);
    assert_eq!(arch::cpu::current_el(), 1);
    assert_eq!(info.model.as_str(), expect::MODEL);
    assert!(info.bootarg("patchbay.clock").is_some());
}

#[kernel_test]
fn heap_allocates_and_frees() {
    let (used0, _) = memory::heap_usage();
    {
        let v: Vec<u64> = (0..10_000).collect();
        assert_eq!(v.iter().sum::<u64>(), 10_000 * 9_999 / 2);
        let big = Box::new([7u8; 1 << 20]);
        assert!(big.iter().all(|&b| b == 7));
        let mut m = BTreeMap::new();
        for i in 0..1000u32 {
            m.insert(i, i * 2);
        }
        assert_eq!(m[&500], 1000);
        assert!(memory::heap_usage().0 > used0 + (1 << 20));
    }
    assert_eq!(memory::heap_usage().0, used0);
}

fn text_addr() -> u64 {
    dtb_facts_match_the_qemu_command_line as *const () as u64
}

#[kernel_test]
fn text_is_executable_and_never_writable() {
    let t = text_addr();
    // The hardware's own translation: readable, and a write is a permission fault (FSC 0x0c-0x0f).
    assert_eq!(arch::mmu::probe(t, false), Ok(t));
    let fsc = arch::mmu::probe(t, true).unwrap_err();
    assert_eq!(
        fsc & 0x3c,
        0x0c,
        "expected a permission fault, got FSC {fsc:#x}"
    );
    // SAFETY: the tables are live and valid.
    let tr = unsafe { pagetable::translate(memory::root(), t) }.unwrap();
    assert!(tr.attrs.exec && !tr.attrs.write);
}

#[kernel_test]
fn data_rodata_pools_and_guards_have_the_documented_permissions() {
    let img = memory::image();
    let plan = memory::plan();
    let attrs = |a: u64| {
        // SAFETY: the tables are live and valid.
        unsafe { pagetable::translate(memory::root(), a) }.map(|t| (t.attrs.write, t.attrs.exec))
    };
    assert_eq!(attrs(img.rodata.start), Some((false, false)));
    assert_eq!(attrs(img.data.start), Some((true, false)));
    assert_eq!(attrs(plan.heap.start), Some((true, false)));
    assert_eq!(attrs(plan.near_pool.start), Some((false, true)));
    assert_eq!(attrs(plan.far_pool.end - 4), Some((false, true)));
    let (kstack, estack) = memory::cpu_stacks(0);
    assert_eq!(attrs(kstack.start), Some((true, false)));
    assert_eq!(
        attrs(kstack.start - 8),
        None,
        "kernel stack guard page must be unmapped"
    );
    assert_eq!(
        attrs(estack.start - 8),
        None,
        "exception stack guard page must be unmapped"
    );
    // The whole table tree: nothing writable and executable.
    // SAFETY: as above.
    assert_eq!(
        unsafe { pagetable::find_wx_violation(memory::root()) },
        None
    );
    // SCTLR_EL1: M, C, I and WXN set.
    let sctlr = patchbay::read_sysreg!(sctlr_el1);
    assert_eq!(
        sctlr & (1 | 1 << 2 | 1 << 12 | 1 << 19),
        1 | 1 << 2 | 1 << 12 | 1 << 19
    );
}

#[kernel_test]
fn pools_are_near_and_far_from_text() {
    let img = memory::image();
    let plan = memory::plan();
    assert!(patchbay_pure::layout::reachable(img.text, plan.near_pool));
    assert!(patchbay_pure::layout::unreachable(img.text, plan.far_pool));
}

#[kernel_test]
fn cycle_counter_is_enabled_and_monotonic() {
    assert_eq!(clock::source(), clock::Source::Pmccntr);
    assert!(arch::pmu::cycle_counter_enabled());
    let mut last = clock::now();
    for _ in 0..1000 {
        let n = clock::now();
        assert!(n > last, "PMCCNTR went from {last} to {n}");
        last = n;
    }
    let spin = clock::measure(|| {
        for i in 0..1000u64 {
            core::hint::black_box(i);
        }
    });
    assert!(spin > 0);
}

#[kernel_test]
fn symbol_table_names_kernel_functions() {
    let t = symbols::table().expect("pb run fills the .ksyms section");
    assert!(t.len() > 100);
    let s = symbols::lookup(text_addr() + 4).expect("a symbol for a test function");
    assert!(
        s.name.ends_with("dtb_facts_match_the_qemu_command_line"),
        "{}",
        s.name
    );
    assert_eq!(s.addr, text_addr());
}
