//! What the kernel says about the machine: the boot banner and the system summary that
//! `make qemu` prints.

use core::sync::atomic::Ordering;

use patchbay_pure::layout::POKE_WINDOW_VA;

use crate::{arch, bench::clock, boot_info, bsp, irq, memory, percpu, print, println, smp};

/// One line every kernel prints first.
pub fn banner() {
    let info = boot_info::get();
    println!(
        "patchbay {} ({}) on {} -- entered at EL{}, running at EL{}",
        crate::VERSION,
        crate::GIT_REV,
        bsp::DESCRIPTION,
        info.entry_el,
        arch::cpu::current_el()
    );
    match info.dtb_problem {
        None => println!(
            "dtb: {:#x} ({} bytes), model \"{}\", {} CPU(s), RAM {:#x}..{:#x} ({} MiB)",
            info.dtb.start,
            info.dtb.len(),
            info.model.as_str(),
            info.cpus,
            info.ram.start,
            info.ram.end,
            info.ram.len() >> 20
        ),
        Some(why) => println!(
            "dtb: none: {why}; using board defaults: RAM {:#x}..{:#x}, 1 CPU",
            info.ram.start, info.ram.end
        ),
    }
    if !info.bootargs.as_str().is_empty() {
        println!("bootargs: {}", info.bootargs.as_str());
    }
    if let Some(e) = arch::harden::enforcement() {
        println!("{e}");
    }
    cpus();
    match irq::tick_hz() {
        0 => println!(
            "irq: {}, no timer tick (patchbay.tick_hz=N sets one)",
            irq::controller_name()
        ),
        hz => println!(
            "irq: {}, timer tick {hz} Hz on every CPU",
            irq::controller_name()
        ),
    }
}

/// The CPU line of the banner: every CPU online with its MPIDR, then one line per CPU that
/// could not be started, with the reason.
fn cpus() {
    let info = boot_info::get();
    print!("cpus: {} of {} online:", percpu::online(), info.cpus_used());
    for cpu in percpu::online_cpus() {
        print!(
            " {} (MPIDR {:#x})",
            cpu.id,
            cpu.mpidr.load(Ordering::Relaxed)
        );
    }
    println!();
    for (cpu, node) in info.cpu_nodes().iter().enumerate() {
        if let Some(why) = smp::failure(cpu) {
            println!("cpus: CPU {cpu} (MPIDR {:#x}) is off: {why}", node.mpidr);
        }
    }
    if info.cpus as usize > percpu::MAX_CPUS {
        println!(
            "cpus: the DTB lists {} CPUs; patchbay is built for at most {} (percpu::MAX_CPUS, linker.ld MAX_CPUS): the others stay off",
            info.cpus,
            percpu::MAX_CPUS
        );
    }
}

/// CPU, caches, memory map and clock: the facts a measurement depends on.
pub fn summary() {
    let midr = arch::cpu::midr();
    println!(
        "cpu: {} (MIDR_EL1 {:#010x}: implementer {:#04x}, part {:#05x}, r{}p{}), MPIDR_EL1 {:#x}",
        arch::cpu::cpu_name(midr),
        midr,
        (midr >> 24) & 0xff,
        (midr >> 4) & 0xfff,
        (midr >> 20) & 0xf,
        midr & 0xf,
        arch::cpu::mpidr()
    );
    let ctr = arch::cache::ctr();
    println!(
        "cache: CTR_EL0 {:#010x}: I-line {} B, D-line {} B, L1Ip {}, IDC={} DIC={} ({})",
        ctr.0,
        ctr.icache_line(),
        ctr.dcache_line(),
        ctr.l1ip(),
        ctr.idc() as u8,
        ctr.dic() as u8,
        match (ctr.idc(), ctr.dic()) {
            (false, false) => "text patching needs DC CVAU + IC IVAU",
            (true, false) => "text patching needs IC IVAU only",
            (false, true) => "text patching needs DC CVAU only",
            (true, true) => "I-cache coherent: barriers only",
        }
    );
    let img = memory::image();
    let plan = memory::plan();
    println!("memory map:");
    let row = |name: &str, r: patchbay_pure::layout::Range, attrs: &str| {
        println!(
            "  {:<10} {:#012x}..{:#012x} {:>8} KiB  {}",
            name,
            r.start,
            r.end,
            r.len() >> 10,
            attrs
        )
    };
    row("text", img.text, "R-X");
    row("rodata", img.rodata, "R--");
    row("data+bss", img.data, "RW-");
    row("stacks", img.stacks, "RW-, guard pages unmapped");
    row("heap", plan.heap, "RW-");
    row("near pool", plan.near_pool, "R-X, within BL range of text");
    row("far pool", plan.far_pool, "R-X, beyond BL range of text");
    row(
        "poke win",
        patchbay_pure::layout::Range::new(
            POKE_WINDOW_VA,
            POKE_WINDOW_VA + (percpu::MAX_CPUS as u64) * 4096,
        ),
        "RW- per-CPU text alias slots (VA)",
    );
    for m in bsp::MMIO {
        row("mmio", *m, "device RW-");
    }
    println!("  translation tables in use: {}", memory::tables_used());
    for kind in [
        crate::trace::pool::PoolKind::Near,
        crate::trace::pool::PoolKind::Far,
    ] {
        let u = crate::trace::pool::usage(kind);
        println!(
            "  {} pool: {} of {} KiB used in {} blocks, {} refused allocations",
            kind.name(),
            u.used >> 10,
            u.total >> 10,
            u.blocks,
            u.failures
        );
    }
    println!(
        "clock: source {}, mode {}, unit {}, read cost {} {}",
        clock::source().name(),
        clock::mode().name(),
        clock::unit(),
        clock::read_cost(),
        clock::unit()
    );
}
