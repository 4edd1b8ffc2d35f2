//! Secondary CPU bring-up: every CPU the DTB lists (at most [`MAX_CPUS`]) is started, one at a
//! time, by the boot CPU during `init`.
//!
//! | board | how a CPU is started | enters at |
//! |---|---|---|
//! | QEMU `virt` | PSCI `CPU_ON` through the `/psci` node's conduit (HVC, or SMC with `virtualization=on`) | the kernel's entry EL (EL1, or EL2) |
//! | Raspberry Pi 3/4 (QEMU `raspi3b`/`raspi4b`) | spin table: the entry address written to the CPU's `cpu-release-addr`, cleaned to the point of coherency, then `SEV` | EL2 |
//!
//! The protocol, for CPU `n`:
//!
//! 1. the boot CPU writes [`SecondaryBoot`] (`n`, and its own MAIR/TCR/TTBR0/SCTLR: every CPU
//!    shares the translation tables) and cleans it to the point of coherency, because `n` reads
//!    it with its MMU and caches off;
//! 2. it starts `n` at `secondary_entry` (`boot/start.s`), which drops to EL1 like the boot CPU,
//!    turns the MMU on before using any stack, installs `n`'s kernel and exception stacks
//!    (each with its unmapped guard page, `memory::cpu_stacks`) and calls
//!    [`__patchbay_secondary_main`];
//! 3. there `n` installs the vectors, points TPIDR_EL1 at its [`PerCpu`](percpu::PerCpu) slot and
//!    marks itself online (release); the boot CPU waits for that flag for at most
//!    [`ONLINE_TIMEOUT_MS`] and then starts the next CPU.
//!
//! A CPU that cannot be started (a PSCI error, no enable method, no answer) is recorded with
//! the reason ([`StartError`]) and the boot continues without it; the banner says which.
//! Serial bring-up keeps one [`SecondaryBoot`] block enough.
//!
//! Started CPUs set up their part of the interrupt controller (`irq::init_cpu`), unmask IRQs
//! and idle in `WFI`, taking the timer tick and IPIs; [`run_on`] gives one of them work to run in
//! normal context (tests and benchmarks run the traced subjects on every CPU this way).
//!
//! Page 0 (the Pis' spin table lives at 0xd8..0xf8) is the deliberately unmapped null page: the
//! release address is written through this CPU's poke-window slot (`memory::poke_slot`),
//! mapped for the one write. Bring-up runs before `patch::init`, single-threaded, so nothing
//! else uses the slot.

use core::{
    fmt,
    sync::atomic::{AtomicU64, AtomicUsize, Ordering},
};

use patchbay_pure::pagetable::{self, Attrs};

use crate::{
    arch::{self, psci::PsciError},
    boot_info::{self, EnableMethod},
    exception, grace,
    ipi::{self, IpiError},
    irq, memory,
    percpu::{self, MAX_CPUS},
};

/// How long the boot CPU waits for a started CPU to mark itself online.
pub const ONLINE_TIMEOUT_MS: u64 = 2000;

/// Why a CPU is not online.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartError {
    /// PSCI `CPU_ON` failed.
    Psci(PsciError),
    /// Its DTB node names no enable method patchbay knows (`psci`, `spin-table` with a
    /// `cpu-release-addr`).
    NoEnableMethod,
    /// Started, but it did not mark itself online within [`ONLINE_TIMEOUT_MS`].
    Timeout,
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Psci(e) => write!(f, "PSCI CPU_ON failed: {e}"),
            StartError::NoEnableMethod => {
                f.write_str("its DTB node has no usable enable-method (psci, spin-table)")
            }
            StartError::Timeout => write!(
                f,
                "started, but not online after {ONLINE_TIMEOUT_MS} ms (it never reached the kernel)"
            ),
        }
    }
}

/// What a secondary CPU reads, MMU off, before it can use memory normally. Field offsets are
/// fixed by `boot/start.s` (`SB_*`).
#[repr(C)]
pub struct SecondaryBoot {
    cpu: AtomicU64,
    mair: AtomicU64,
    tcr: AtomicU64,
    ttbr0: AtomicU64,
    sctlr: AtomicU64,
}

const _: () = {
    assert!(core::mem::offset_of!(SecondaryBoot, cpu) == 0);
    assert!(core::mem::offset_of!(SecondaryBoot, mair) == 8);
    assert!(core::mem::offset_of!(SecondaryBoot, tcr) == 16);
    assert!(core::mem::offset_of!(SecondaryBoot, ttbr0) == 24);
    assert!(core::mem::offset_of!(SecondaryBoot, sctlr) == 32);
};

#[unsafe(no_mangle)]
static __patchbay_secondary_boot: SecondaryBoot = SecondaryBoot {
    cpu: AtomicU64::new(0),
    mair: AtomicU64::new(0),
    tcr: AtomicU64::new(0),
    ttbr0: AtomicU64::new(0),
    sctlr: AtomicU64::new(0),
};

/// The outcome for each CPU slot: `None` for the boot CPU and unused slots.
static FAILURES: spin::Mutex<[Option<StartError>; MAX_CPUS]> = spin::Mutex::new([None; MAX_CPUS]);

/// Why CPU `cpu` is not online, if it was tried and failed.
pub fn failure(cpu: usize) -> Option<StartError> {
    FAILURES.lock().get(cpu).copied().flatten()
}

/// Start every secondary CPU the DTB lists, one at a time.
///
/// # Safety
/// Once, on the boot CPU, after `memory::init` (MMU on) and `percpu::init(0)`, before anything
/// else uses the poke window.
pub unsafe fn bring_up() {
    unsafe extern "C" {
        fn secondary_entry();
    }
    // Identity-mapped: the symbol's address is the physical entry point.
    let entry = secondary_entry as *const () as u64;
    let boot = &__patchbay_secondary_boot;
    boot.mair
        .store(crate::read_sysreg!(mair_el1), Ordering::Relaxed);
    boot.tcr
        .store(crate::read_sysreg!(tcr_el1), Ordering::Relaxed);
    boot.ttbr0
        .store(crate::read_sysreg!(ttbr0_el1), Ordering::Relaxed);
    boot.sctlr
        .store(crate::read_sysreg!(sctlr_el1), Ordering::Relaxed);
    for (cpu, node) in boot_info::get().cpu_nodes().iter().enumerate().skip(1) {
        boot.cpu.store(cpu as u64, Ordering::Relaxed);
        let block = boot as *const SecondaryBoot as u64;
        arch::cache::clean_dcache_range_poc(block, block + size_of::<SecondaryBoot>() as u64);
        let started = match node.method {
            EnableMethod::Psci => {
                arch::psci::cpu_on(node.mpidr, entry, 0).map_err(StartError::Psci)
            }
            EnableMethod::SpinTable(release) => {
                // SAFETY: the DTB names this address as the CPU's spin-table release address;
                // bring-up is single-threaded and before patch::init, so the poke slot is ours.
                unsafe { release_spin_table(release, entry) };
                Ok(())
            }
            EnableMethod::None => Err(StartError::NoEnableMethod),
        };
        let result = started.and_then(|()| wait_online(cpu));
        FAILURES.lock()[cpu] = result.err();
    }
}

/// Wait until CPU `cpu` marks itself online, at most [`ONLINE_TIMEOUT_MS`].
fn wait_online(cpu: usize) -> Result<(), StartError> {
    let start = arch::pmu::cntvct();
    let limit = arch::pmu::counter_frequency() * ONLINE_TIMEOUT_MS / 1000;
    while !percpu::CPUS[cpu].online.load(Ordering::Acquire) {
        if arch::pmu::cntvct().wrapping_sub(start) > limit {
            return Err(StartError::Timeout);
        }
        core::hint::spin_loop();
    }
    Ok(())
}

/// Write `entry` to the spin-table slot at physical `release` and wake the pollers.
///
/// # Safety
/// `release` is a CPU's `cpu-release-addr` from the DTB (8-byte aligned RAM the firmware's
/// pollers read); the caller is the only user of this CPU's poke slot.
unsafe fn release_spin_table(release: u64, entry: u64) {
    let (va, slot) = memory::poke_slot(percpu::this().id as usize);
    let page = release & !0xfff;
    let alias = va + (release & 0xfff);
    // SAFETY: this CPU's poke-window descriptor, invalid between uses and unused by anyone else
    // now (see the function's contract).
    unsafe { slot.write_volatile(pagetable::page_desc(page, Attrs::DATA)) };
    // An invalid entry is never in a TLB: make the store visible to the walker, no TLBI needed.
    arch::mmu::publish_new_entry();
    // SAFETY: the alias maps the release address read-write; it is 8-byte aligned (DTB).
    unsafe { (alias as *mut u64).write_volatile(entry) };
    // The poller reads with its caches off: the line must reach the point of coherency before
    // the event wakes it (clean_dcache_range_poc ends with DSB SY).
    arch::cache::clean_dcache_range_poc(alias, alias + 8);
    // SAFETY: as above.
    unsafe { slot.write_volatile(0) };
    arch::mmu::flush_page(va);
    // Spin-table protocol: the pollers wait in WFE.
    arch::cpu::sev();
}

/// Where a secondary CPU enters Rust (from `boot/start.s`), MMU on, on its own kernel stack,
/// IRQs masked until `irq::init_cpu` unmasks them.
#[unsafe(no_mangle)]
extern "C" fn __patchbay_secondary_main(cpu: u64) -> ! {
    exception::install();
    // SAFETY: this is CPU `cpu` bringing itself up, once; `cpu` < MAX_CPUS (bring_up only
    // starts the DTB's first MAX_CPUS CPUs).
    unsafe { percpu::init(cpu as usize) };
    percpu::mark_online();
    irq::init_cpu();
    idle(cpu as usize)
}

/// Work posted for a CPU's idle loop: a function and its argument, run in normal context.
struct Work {
    func: AtomicUsize,
    arg: AtomicU64,
}

static WORK: [Work; MAX_CPUS] = [const {
    Work {
        func: AtomicUsize::new(0),
        arg: AtomicU64::new(0),
    }
}; MAX_CPUS];

/// A secondary CPU's life after bring-up: run posted work ([`run_on`]), else sleep in `WFI`,
/// taking interrupts (the tick, IPIs).
fn idle(cpu: usize) -> ! {
    let work = &WORK[cpu];
    loop {
        // Check and sleep with IRQs masked: work posted (and its wake-up IPI taken) between an
        // unmasked check and the WFI would sleep until the next interrupt. A pending IRQ wakes
        // WFI even while masked; it is taken when DAIF is restored.
        let daif = arch::cpu::mask_all();
        let func = work.func.load(Ordering::Acquire);
        if func == 0 {
            // Asleep, IRQs masked: an extended quiescent state (`grace`), left before they are
            // unmasked.
            grace::idle_enter();
            arch::cpu::wfi();
            grace::idle_exit();
        }
        arch::cpu::restore_daif(daif);
        if func != 0 {
            // SAFETY: only `run_on` stores here, and it stores a `fn(u64)`.
            let func = unsafe { core::mem::transmute::<usize, fn(u64)>(func) };
            func(work.arg.load(Ordering::Relaxed));
            work.func.store(0, Ordering::Release);
        }
    }
}

/// Why [`run_on`] could not post.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkError {
    /// The CPU is still running earlier work.
    Busy { cpu: usize },
    /// It cannot be woken.
    Ipi(IpiError),
}

/// Run `func(arg)` on secondary CPU `cpu` in normal context (IRQs unmasked, its own kernel
/// stack), from its idle loop; returns once posted. [`idle_cpu`] says when it has finished.
pub fn run_on(cpu: usize, func: fn(u64), arg: u64) -> Result<(), WorkError> {
    let work = &WORK[cpu];
    if work.func.load(Ordering::Acquire) != 0 {
        return Err(WorkError::Busy { cpu });
    }
    work.arg.store(arg, Ordering::Relaxed);
    // Release: the CPU that sees the function sees its argument.
    work.func.store(func as usize, Ordering::Release);
    // Wake it: the IPI itself does nothing, the idle loop finds the work.
    ipi::call(ipi::CpuSet::one(cpu), |_| {}, 0, ipi::Wait::Posted).map_err(WorkError::Ipi)
}

/// Has CPU `cpu` finished the work [`run_on`] gave it?
pub fn idle_cpu(cpu: usize) -> bool {
    WORK[cpu].func.load(Ordering::Acquire) == 0
}
