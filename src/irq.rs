//! Interrupts: the controller, the per-CPU timer tick, and the IRQ path.
//!
//! | board | controller | timer interrupt |
//! |---|---|---|
//! | QEMU `virt` | GICv2 (default) or GICv3 (`gic-version=3`), addresses from the DTB, driven by the `arm-gic` crate | PPI 11 (INTID 27), the EL1 virtual timer |
//! | Raspberry Pi 3 (QEMU `raspi3b`) | BCM2836 ARM-local interrupt controller (`bsp::INTC`) | the core's `nCNTVIRQ` routed to IRQ |
//!
//! The generic timer's virtual timer (CNTV) interrupts every online CPU `patchbay.tick_hz=N`
//! times a second (boot argument; 0 or absent: no tick, so that benchmarks are not disturbed).
//! IRQs are unmasked on every CPU once it is up; FIQ and SError stay fatal
//! (`exception::fatal`, with the usual report).
//!
//! ## Nested exceptions: the policy
//!
//! * Handlers run with IRQ, FIQ, SError and debug masked (the hardware masks DAIF on entry and
//!   nothing here unmasks them): an IRQ handler is never interrupted, so interrupt context is
//!   one level deep and [`PerCpu::irq_depth`](crate::percpu::PerCpu) is 0 or 1.
//! * A synchronous exception inside a handler (a BRK probe hit by a traced function the handler
//!   calls) is taken on the exception stack and dispatched like any other (`exception`); its
//!   handler may not fault again (a nested fatal exception prints a one-line report and stops).
//! * An IRQ arriving on the exception stack (kind 5) would mean a handler unmasked IRQs: fatal.
//! * Tracing works in interrupt context: [`handle`] enters it with
//!   [`PerCpu::enter_interrupt`](crate::percpu::PerCpu::enter_interrupt), which gives it its own
//!   recursion guard (the interrupted context's is saved and given back at exit), so a traced
//!   function the timer interrupt calls is traced even when the interrupt landed inside a
//!   handler; a synchronous exception inside an IRQ handler stays in interrupt context. Why that
//!   is Linux's per-context recursion bits: `trace::recursion`.

use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use arm_gic::{
    IntId, InterruptGroup, UniqueMmioPointer,
    gicv2::GicV2,
    gicv3::{GicCpuInterface, GicV3},
};

use crate::{
    arch, boot_info,
    bsp::{self, Intc},
    exit, percpu,
};

/// The EL1 virtual timer's interrupt: PPI 11.
pub const TIMER_INTID: u32 = 27;
/// Priority of the timer (lower is more urgent; the mask lets everything through).
const TIMER_PRIORITY: u8 = 0x80;

/// The inter-processor interrupt: SGI 1 on a GIC, mailbox 0 on the BCM2836.
pub const IPI_INTID: u32 = 1;

/// BCM2836 ARM-local registers (QA7 rev 3.4): per core `n`, at `base + reg + 4 * n`, except the
/// mailboxes (`base + reg + 16 * n`).
mod bcm2836 {
    /// Core timers interrupt control: bit 3 routes nCNTVIRQ to the core's IRQ.
    pub const TIMER_CONTROL: u64 = 0x40;
    pub const CNTV_IRQ: u32 = 1 << 3;
    /// Core mailboxes interrupt control: bit 0 routes mailbox 0 to the core's IRQ.
    pub const MAILBOX_CONTROL: u64 = 0x50;
    pub const MAILBOX0_IRQ: u32 = 1 << 0;
    /// Core IRQ source: bit 3 is CNTVIRQ, bit 4 mailbox 0.
    pub const IRQ_SOURCE: u64 = 0x60;
    pub const MAILBOX0_PENDING: u32 = 1 << 4;
    /// Mailbox 0 write-set (per core, stride 16) and read / write-clear.
    pub const MAILBOX0_SET: u64 = 0x80;
    pub const MAILBOX0_CLEAR: u64 = 0xc0;
}

enum Controller {
    None,
    V2(GicV2<'static>),
    V3(GicV3<'static>),
    Bcm2836(u64),
}

// SAFETY: the GICv2 driver holds MMIO pointers to the one distributor / CPU interface, which any
// CPU may use; every access goes through the mutex below.
unsafe impl Send for Controller {}

/// The controller, locked only through [`controller`].
static CONTROLLER: spin::Mutex<Controller> = spin::Mutex::new(Controller::None);

/// Run `f` on the controller with this CPU's IRQs masked: the IRQ path takes the same lock, so
/// an interrupt arriving while normal context holds it would deadlock the CPU.
fn controller<R>(f: impl FnOnce(&mut Controller) -> R) -> R {
    let daif = arch::cpu::mask_all();
    let r = f(&mut CONTROLLER.lock());
    arch::cpu::restore_daif(daif);
    r
}

/// Set when the run ends: every CPU turns its timer off at its next tick and stops ticking.
static STOPPING: AtomicBool = AtomicBool::new(false);
/// CPUs whose timer is armed.
static TICKING: AtomicU64 = AtomicU64::new(0);

/// Ticks per second (0: no tick), from the boot argument.
static TICK_HZ: AtomicU64 = AtomicU64::new(0);

/// A function the timer interrupt calls on every tick (tests hook traced functions here).
static TICK_HOOK: AtomicUsize = AtomicUsize::new(0);

/// What an IPI runs on its target (registered by `ipi`).
static IPI_HANDLER: AtomicUsize = AtomicUsize::new(0);

/// Run `handler` for every inter-processor interrupt.
pub fn set_ipi_handler(handler: fn()) {
    IPI_HANDLER.store(handler as usize, Ordering::Release);
}

/// Interrupt CPU `cpu` (an online CPU other than this one) with the IPI. False if this board has
/// no controller.
pub fn send_ipi(cpu: usize) -> bool {
    let sgi = IntId::sgi(IPI_INTID);
    // The sender's stores (the posted call) must be visible to the target before the interrupt
    // can reach it: neither an MMIO write (GICv2, mailbox) nor a system-register write (GICv3
    // ICC_SGI1R_EL1) is ordered after normal stores without a DSB.
    arch::cpu::dsb_ishst();
    controller(|c| match c {
        Controller::None => false,
        Controller::V2(gic) => {
            gic.send_sgi(
                sgi,
                arm_gic::gicv2::SgiTarget::List {
                    target_list_filter: arm_gic::gicv2::SgiTargetListFilter::CPUTargetList,
                    // QEMU and the GIC-400 number CPU interfaces in core order.
                    target_list: 1 << cpu,
                },
            );
            true
        }
        Controller::V3(_) => {
            let mpidr = percpu::CPUS[cpu].mpidr.load(Ordering::Relaxed);
            let aff = |shift: u32| ((mpidr >> shift) & 0xff) as u8;
            GicCpuInterface::send_sgi(
                sgi,
                arm_gic::gicv3::SgiTarget::List {
                    affinity3: aff(32),
                    affinity2: aff(16),
                    affinity1: aff(8),
                    target_list: 1 << (mpidr & 0xf),
                },
                arm_gic::gicv3::SgiTargetGroup::CurrentGroup1,
            )
            .unwrap_or_else(|e| panic!("GICv3 SGI: {e:?}"));
            true
        }
        Controller::Bcm2836(base) => {
            let set = (*base + bcm2836::MAILBOX0_SET + 16 * cpu as u64) as *mut u32;
            // SAFETY: core `cpu`'s mailbox 0 write-set register (device memory).
            unsafe { set.write_volatile(1) };
            true
        }
    })
}

/// Call `hook` from every CPU's timer interrupt (`None`: stop).
pub fn set_tick_hook(hook: Option<fn()>) {
    TICK_HOOK.store(hook.map_or(0, |f| f as usize), Ordering::Release);
}

/// The controller this boot uses, for the banner.
pub fn controller_name() -> &'static str {
    controller(|c| match c {
        Controller::None => "none",
        Controller::V2(_) => "GICv2",
        Controller::V3(_) => "GICv3",
        Controller::Bcm2836(_) => "BCM2836 local",
    })
}

/// The tick rate this boot runs at.
pub fn tick_hz() -> u64 {
    TICK_HZ.load(Ordering::Relaxed)
}

/// Set up the distributor (boot CPU, before any secondary starts) and this CPU.
///
/// # Safety
/// Once, on the boot CPU, after `memory::init` (the controller's MMIO is mapped).
pub unsafe fn init() {
    let info = boot_info::get();
    let hz = info
        .bootarg("patchbay.tick_hz")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    TICK_HZ.store(hz, Ordering::Relaxed);
    let intc = match info.intc {
        Intc::None => bsp::INTC,
        dtb => dtb,
    };
    let found = match intc {
        Intc::None => Controller::None,
        Intc::GicV2 { gicd, gicc } => {
            // SAFETY: the GICv2 distributor and CPU interface (DTB or board), mapped as device
            // memory, used only through CONTROLLER.
            let mut gic = unsafe { GicV2::new(gicd as *mut _, gicc as *mut _) };
            gic.setup();
            Controller::V2(gic)
        }
        Intc::GicV3 { gicd, gicr } => {
            // SAFETY: the DTB's GICv3 distributor and redistributors, mapped as device memory,
            // used only through CONTROLLER.
            let gic = unsafe {
                GicV3::new(
                    UniqueMmioPointer::new(core::ptr::NonNull::new(gicd as *mut _).unwrap()),
                    core::ptr::NonNull::new(gicr as *mut _).unwrap(),
                    info.cpus_used(),
                )
            };
            match gic {
                Ok(mut gic) => {
                    gic.setup(0);
                    Controller::V3(gic)
                }
                Err(e) => panic!("GICv3 at {gicd:#x}/{gicr:#x}: {e:?}"),
            }
        }
        Intc::Bcm2836 { base } => Controller::Bcm2836(base),
    };
    controller(|c| *c = found);
    if hz != 0 {
        exit::set_quiesce_hook(stop_ticks);
    }
    init_cpu();
}

/// Before the run ends: stop the tick on every CPU (each turns its own timer off at its next
/// tick), waiting at most two tick periods, so that QEMU's exit does not race with vCPUs busy
/// taking interrupts.
fn stop_ticks() {
    STOPPING.store(true, Ordering::Release);
    let start = arch::pmu::cntvct();
    let limit = 2 * arch::pmu::counter_frequency() / tick_hz().max(1);
    let me = 1u64 << percpu::this().id;
    // SAFETY: turning this CPU's own virtual timer off.
    unsafe { crate::write_sysreg!(cntv_ctl_el0, 0) };
    TICKING.fetch_and(!me, Ordering::AcqRel);
    while TICKING.load(Ordering::Acquire) != 0 && arch::pmu::cntvct() - start < limit {
        core::hint::spin_loop();
    }
}

/// This CPU's part: its CPU interface, the timer interrupt enabled and the first tick armed,
/// then IRQs unmasked. Every CPU calls it once it runs on its own per-CPU slot.
pub fn init_cpu() {
    let cpu = percpu::this().id as usize;
    let timer = IntId::ppi(TIMER_INTID - 16);
    let present = controller(|c| {
        match c {
            Controller::None => return false,
            Controller::V2(gic) => {
                // GICC and the PPI enables are banked per CPU: every CPU programs its own.
                gic.setup();
                gic.set_interrupt_priority(timer, TIMER_PRIORITY);
                gic.enable_interrupt(timer, true)
                    .and_then(|()| gic.enable_interrupt(IntId::sgi(IPI_INTID), true))
                    .unwrap_or_else(|e| panic!("GICv2 timer PPI / IPI SGI: {e:?}"));
            }
            Controller::V3(gic) => {
                if cpu != 0 {
                    gic.init_cpu(cpu);
                    GicCpuInterface::enable_group1(true);
                }
                GicCpuInterface::set_priority_mask(0xff);
                gic.set_interrupt_priority(timer, Some(cpu), TIMER_PRIORITY)
                    .and_then(|()| gic.enable_interrupt(timer, Some(cpu), true))
                    .and_then(|()| gic.enable_interrupt(IntId::sgi(IPI_INTID), Some(cpu), true))
                    .unwrap_or_else(|e| panic!("GICv3 timer PPI / IPI SGI on CPU {cpu}: {e:?}"));
            }
            Controller::Bcm2836(base) => {
                let reg = (*base + bcm2836::TIMER_CONTROL + 4 * cpu as u64) as *mut u32;
                // SAFETY: this core's timer interrupt control register in the ARM-local block
                // (device memory).
                unsafe { reg.write_volatile(bcm2836::CNTV_IRQ) };
                let reg = (*base + bcm2836::MAILBOX_CONTROL + 4 * cpu as u64) as *mut u32;
                // SAFETY: this core's mailbox interrupt control register (device memory).
                unsafe { reg.write_volatile(bcm2836::MAILBOX0_IRQ) };
            }
        }
        true
    });
    if present {
        arm_tick();
        arch::cpu::irq_enable();
    }
}

/// Arm the next tick on this CPU. At 0 Hz the interrupt was a [`one_shot`]: the timer is
/// turned off (its condition would otherwise stay asserted and interrupt again at once).
fn arm_tick() {
    let hz = tick_hz();
    if hz == 0 {
        // SAFETY: turning this CPU's own virtual timer off.
        unsafe { crate::write_sysreg!(cntv_ctl_el0, 0) };
        return;
    }
    let me = 1u64 << percpu::this().id;
    if STOPPING.load(Ordering::Acquire) {
        // SAFETY: turning this CPU's own virtual timer off.
        unsafe { crate::write_sysreg!(cntv_ctl_el0, 0) };
        TICKING.fetch_and(!me, Ordering::AcqRel);
        return;
    }
    TICKING.fetch_or(me, Ordering::AcqRel);
    let interval = (arch::pmu::counter_frequency() / hz).max(1);
    // SAFETY: the EL1 virtual timer belongs to this kernel; TVAL counts down from now, CTL
    // ENABLE=1, IMASK=0. Writing TVAL also clears a pending timer condition.
    unsafe {
        crate::write_sysreg!(cntv_tval_el0, interval);
        crate::write_sysreg!(cntv_ctl_el0, 1);
    }
}

/// Interrupt this CPU once, `ticks` generic-counter ticks from now (benchmarks: a timer
/// interrupt landing inside a measured call). Only when no periodic tick runs (`tick_hz` 0): the
/// interrupt's handler then turns the timer off again. False if there is no tick-less timer to
/// use (a periodic tick runs, or no interrupt controller).
pub fn one_shot(ticks: u64) -> bool {
    if tick_hz() != 0 || controller(|c| matches!(c, Controller::None)) {
        return false;
    }
    // SAFETY: the EL1 virtual timer belongs to this kernel; TVAL counts down from now, CTL
    // ENABLE=1, IMASK=0.
    unsafe {
        crate::write_sysreg!(cntv_tval_el0, ticks);
        crate::write_sysreg!(cntv_ctl_el0, 1);
    }
    true
}

/// The IRQ path, from `exception` (vectors.s saved the interrupted state, which resumes at
/// `elr`): acknowledge, run the handler, end the interrupt, until nothing is pending.
pub fn handle(elr: u64) {
    let cpu = percpu::this();
    cpu.irq_elr.store(elr, Ordering::Relaxed);
    // Interrupt context from here: its own recursion guard (nothing before this can be traced).
    let interrupted = cpu.enter_interrupt();
    loop {
        let intid = {
            // IRQs are masked here (exception entry), so the lock is taken directly.
            let mut c = CONTROLLER.lock();
            match &mut *c {
                Controller::None => None,
                Controller::V2(gic) => gic.get_and_acknowledge_interrupt(InterruptGroup::Group0),
                Controller::V3(_) => {
                    GicCpuInterface::get_and_acknowledge_interrupt(InterruptGroup::Group1)
                }
                Controller::Bcm2836(base) => {
                    let src = (*base + bcm2836::IRQ_SOURCE + 4 * u64::from(cpu.id)) as *const u32;
                    // SAFETY: this core's IRQ source register (device memory, read-only).
                    let pending = unsafe { src.read_volatile() };
                    if pending & bcm2836::MAILBOX0_PENDING != 0 {
                        let clear =
                            (*base + bcm2836::MAILBOX0_CLEAR + 16 * u64::from(cpu.id)) as *mut u32;
                        // SAFETY: this core's mailbox 0 read/write-clear register: clearing
                        // every bit acknowledges the IPI.
                        unsafe { clear.write_volatile(u32::MAX) };
                        Some(IntId::sgi(IPI_INTID))
                    } else {
                        (pending & bcm2836::CNTV_IRQ != 0).then(|| IntId::ppi(TIMER_INTID - 16))
                    }
                }
            }
        };
        let Some(intid) = intid else { break };
        cpu.irqs.fetch_add(1, Ordering::Relaxed);
        // A GICv2 SGI's IAR value carries the sender's CPU number in bits 12:10; the EOI below
        // takes the whole value back.
        match intid.raw_value() & 0x3ff {
            TIMER_INTID => tick(),
            IPI_INTID => {
                let handler = IPI_HANDLER.load(Ordering::Acquire);
                if handler != 0 {
                    // SAFETY: only `set_ipi_handler` stores here, and it stores a `fn()`.
                    let handler = unsafe { core::mem::transmute::<usize, fn()>(handler) };
                    handler();
                }
            }
            _ => {}
        }
        match &mut *CONTROLLER.lock() {
            Controller::V2(gic) => gic.end_interrupt(intid, InterruptGroup::Group0),
            Controller::V3(_) => GicCpuInterface::end_interrupt(intid, InterruptGroup::Group1),
            // The source is the timer's level, cleared by re-arming it.
            Controller::Bcm2836(_) | Controller::None => {}
        }
    }
    cpu.exit_interrupt(interrupted);
}

fn tick() {
    percpu::this().ticks.fetch_add(1, Ordering::Relaxed);
    arm_tick();
    let hook = TICK_HOOK.load(Ordering::Acquire);
    if hook != 0 {
        // SAFETY: only `set_tick_hook` stores here, and it stores a `fn()`.
        let hook: fn() = unsafe { core::mem::transmute::<usize, fn()>(hook) };
        hook();
    }
}
