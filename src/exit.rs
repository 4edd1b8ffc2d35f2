//! Ending a run: semihosting exit code on QEMU, PSCI SYSTEM_OFF without semihosting, a final
//! line ([`Halted`], the format `pb` reads) and a halt on boards whose BSP says so (`bsp::EXIT`).
//!
//! A board's kernel run under QEMU (`pb run` on `raspi3b`/`raspi4b`, which names the emulator
//! in the boot arguments) prints the same final line, then ends QEMU with the code through
//! semihosting instead of halting: the run ends cleanly, not when a runner gives up waiting.

use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

use patchbay_wire::halt::Halted;

use crate::{arch, boot_info, bsp, console};

/// Process-style exit codes. QEMU returns the semihosting code as its own exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ExitCode {
    Success = 0,
    /// A test failed, a panic, or a fatal exception.
    Failure = 1,
}

/// End the run with `code`.
pub fn exit(code: ExitCode) -> ! {
    exit_with(code as u32)
}

/// The CPU writing the crash report (`u32::MAX`: none yet).
static REPORTING: AtomicU32 = AtomicU32::new(u32::MAX);
/// CPUs that failed while another one was reporting, one bit each.
static ALSO_FAILED: AtomicU64 = AtomicU64::new(0);

/// Claim the console for a crash report (a panic or a fatal exception). The first CPU to fail
/// returns and writes its report; a CPU failing while it does notes itself (the report's last
/// lines name it, [`end_report`]) and parks with interrupts masked, so two reports never
/// interleave (the run ends with the first). The reporting CPU returns again when its own report fails.
pub fn claim_report(cpu: u32) {
    match REPORTING.compare_exchange(u32::MAX, cpu, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {}
        Err(owner) if owner == cpu => {}
        Err(_) => {
            ALSO_FAILED.fetch_or(1 << cpu, Ordering::AcqRel);
            arch::cpu::mask_all();
            arch::cpu::halt()
        }
    }
}

/// A line a higher layer adds to every crash report (`fn(w, pc)`, `pc` the faulting address of
/// an exception, none for a panic): registered by test-only code that knows a likely cause (the
/// torn-write tooth, `patch::poke::teeth`).
static REPORT_NOTE: AtomicUsize = AtomicUsize::new(0);

type ReportNote = fn(&mut dyn core::fmt::Write, Option<u64>) -> core::fmt::Result;

/// Register the function that may add a line to crash reports.
pub fn set_report_note(f: ReportNote) {
    REPORT_NOTE.store(f as usize, Ordering::Release);
}

/// Let the registered note, if any, add its line to a crash report.
pub fn report_note(w: &mut dyn core::fmt::Write, pc: Option<u64>) -> core::fmt::Result {
    match REPORT_NOTE.load(Ordering::Acquire) {
        0 => Ok(()),
        f => {
            // SAFETY: only `set_report_note` stores here, and it stores a `ReportNote`.
            let f = unsafe { core::mem::transmute::<usize, ReportNote>(f) };
            f(w, pc)
        }
    }
}

/// Write the report's closing lines: the other CPUs that failed meanwhile, if any.
pub fn end_report(w: &mut impl core::fmt::Write) {
    let others = ALSO_FAILED.load(Ordering::Acquire);
    if others != 0 {
        let _ = write!(w, "  also     : failed meanwhile, not reported: CPU");
        for cpu in (0..64).filter(|c| others & (1 << c) != 0) {
            let _ = write!(w, " {cpu}");
        }
        let _ = writeln!(w);
    }
    let _ = writeln!(w, "!!! end of report: exiting with failure !!!");
}

/// What runs first when the run ends (registered by `irq`: stop every CPU's tick, so no vCPU is
/// busy taking interrupts while QEMU tears down; its semihosting exit can hang otherwise).
static QUIESCE: AtomicUsize = AtomicUsize::new(0);

/// Register the function that quiets the machine before the run ends.
pub fn set_quiesce_hook(f: fn()) {
    QUIESCE.store(f as usize, Ordering::Release);
}

/// End the run with a raw exit code.
pub fn exit_with(code: u32) -> ! {
    let quiesce = QUIESCE.swap(0, Ordering::AcqRel);
    if quiesce != 0 {
        // SAFETY: only `set_quiesce_hook` stores here, and it stores a `fn()`.
        let quiesce = unsafe { core::mem::transmute::<usize, fn()>(quiesce) };
        quiesce();
    }
    console::flush();
    if bsp::EXIT == bsp::ExitMethod::Halt {
        // A board: nobody can receive the code but the person (or host tool) reading the console.
        let _ = core::fmt::Write::write_fmt(
            &mut console::emergency(),
            format_args!("{}\n", Halted(code)),
        );
        console::flush();
        if boot_info::get()
            .bootarg(patchbay_wire::bootargs::EMULATOR)
            .is_none()
        {
            arch::cpu::halt()
        }
    }
    arch::semihosting::exit(code);
    // Still here: no semihosting. The code cannot be returned, so say it.
    let _ = core::fmt::Write::write_fmt(
        &mut console::emergency(),
        format_args!("patchbay: exit code {code} (no semihosting); powering off\n"),
    );
    console::flush();
    arch::psci::system_off();
    arch::cpu::halt()
}
