//! Exception handling: the Rust side of `boot/vectors.s` and the crash report.
//!
//! A fatal exception (or a panic) prints a report meant for someone who never saw the code:
//!
//! ```text
//! !!! patchbay: FATAL Synchronous exception on CPU 0, taken from EL1 (kernel, SP_EL0) !!!
//!   what     : Data Abort, current EL (EC 0x25)
//!   detail   : permission fault, level 3, on a write (FSC 0x0f)
//!   address  : FAR_EL1 0x0000000040081000 <victim+0x0> in kernel text (read-only, executable)
//!   at       : ELR_EL1 0x0000000040082010 <kernel_main+0x30>
//!   ESR_EL1  : 0x000000009600004f
//!   SPSR_EL1 : 0x00000000000003c4 (EL1t, DAIF masked: DAIF, NZCV ----)
//!   hint     : the kernel text is never writable; patch it through patch::poke
//!   registers: x0..x30, sp
//!   backtrace: #0 pc <symbol+off> ...
//! !!! end of report: exiting with failure !!!
//! ```
//!
//! A jump into free trampoline-pool memory (a trampoline used after it was freed) hits the trap
//! pattern the pools are filled with ([`memory::POOL_FILL`]); its report adds a line saying so:
//!
//! ```text
//!   cause    : use of a freed trampoline: ELR_EL1 is in the near trampoline pool (...), which
//!              holds the trap pattern brk #0xdead there: ...
//! ```
//!
//! The run then ends with [`ExitCode::Failure`](crate::exit::ExitCode::Failure).

use core::{
    fmt::Write,
    mem::offset_of,
    sync::atomic::{AtomicU8, AtomicUsize, Ordering},
};

use patchbay_pure::{
    esr::{self, Decoded},
    harden,
};

use crate::{
    arch, console,
    exit::{ExitCode, exit},
    grace, irq, memory, percpu,
    symbols::Sym,
    unwind,
};

/// The register state saved by `boot/vectors.s`. Field offsets are fixed by that file.
#[repr(C)]
#[derive(Clone, Debug)]
pub struct ExceptionFrame {
    pub x: [u64; 31],
    /// The interrupted stack pointer.
    pub sp: u64,
    pub elr: u64,
    pub spsr: u64,
    pub esr: u64,
    pub far: u64,
}

// The assembly's offsets (vectors.s: FRAME_SIZE, FRAME_SP, FRAME_ELR, FRAME_ESR).
const _: () = {
    assert!(core::mem::size_of::<ExceptionFrame>() == 288);
    assert!(offset_of!(ExceptionFrame, sp) == 248);
    assert!(offset_of!(ExceptionFrame, elr) == 256);
    assert!(offset_of!(ExceptionFrame, esr) == 272);
    assert!(core::mem::size_of::<ExceptionFrame>().is_multiple_of(16));
};

/// Which vector was taken (the `kind` argument from vectors.s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kind(pub u64);

impl Kind {
    /// An IRQ taken from EL1 on SP_EL0: normal kernel code interrupted.
    pub const IRQ: Kind = Kind(1);

    pub fn is_sync(self) -> bool {
        self.0.is_multiple_of(4)
    }
    pub fn name(self) -> &'static str {
        ["Synchronous exception", "IRQ", "FIQ", "SError"][(self.0 % 4) as usize]
    }
    pub fn source(self) -> &'static str {
        match self.0 / 4 {
            0 => "EL1 (kernel, SP_EL0)",
            1 => "EL1 on the exception stack (SP_EL1): a fault inside an exception handler",
            2 => "a lower EL (AArch64)",
            _ => "a lower EL (AArch32)",
        }
    }
}

/// A handler for synchronous exceptions of one class that can recover (BRK probes, for
/// instance). Returns true if it handled the exception (and updated the frame to resume).
pub type SyncHandler = fn(&mut ExceptionFrame) -> bool;

const MAX_HANDLERS: usize = 4;

/// One handler slot: its exception class and the handler (`fn` address, 0 when free). Read
/// without a lock by every CPU's exception path: a lock there made a BRK probe hit on one CPU,
/// while another CPU looked up its own hit, find the table "taken" and report a fatal BRK (and a
/// fault while the lock was held could not be dispatched at all).
struct Slot {
    ec: AtomicU8,
    handler: AtomicUsize,
}

static HANDLERS: [Slot; MAX_HANDLERS] = [const {
    Slot {
        ec: AtomicU8::new(0),
        handler: AtomicUsize::new(0),
    }
}; MAX_HANDLERS];

/// A registered handler, for [`unregister_sync_handler`].
#[derive(Debug, PartialEq, Eq)]
pub struct HandlerId(usize);

/// A free slot is claimed with a handler address no `fn` has (an unaligned one) while its class
/// is written, so no CPU can match the slot with a stale class.
const CLAIMING: usize = 1;

/// Register `h` for exception class `ec` (e.g. 0x3c, BRK); `None` if all slots are used.
pub fn register_sync_handler(ec: u8, h: SyncHandler) -> Option<HandlerId> {
    let i = HANDLERS.iter().position(|s| {
        s.handler
            .compare_exchange(0, CLAIMING, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    })?;
    HANDLERS[i].ec.store(ec, Ordering::Relaxed);
    // Release: a CPU that sees the handler sees its class.
    HANDLERS[i].handler.store(h as usize, Ordering::Release);
    Some(HandlerId(i))
}

/// Remove a handler registered with [`register_sync_handler`].
pub fn unregister_sync_handler(id: HandlerId) {
    HANDLERS[id.0].handler.store(0, Ordering::Release);
}

/// The handler registered for class `ec`, if any.
fn sync_handler(ec: u8) -> Option<SyncHandler> {
    HANDLERS.iter().find_map(|s| {
        let h = s.handler.load(Ordering::Acquire);
        if h == 0 || h == CLAIMING || s.ec.load(Ordering::Relaxed) != ec {
            return None;
        }
        // SAFETY: only `register_sync_handler` stores an address other than 0 and CLAIMING
        // here, and it stores a `SyncHandler`.
        Some(unsafe { core::mem::transmute::<usize, SyncHandler>(h) })
    })
}

/// Install the vector table.
pub fn install() {
    unsafe extern "C" {
        static __patchbay_vectors: u8;
    }
    // The table is 2 KiB aligned code from vectors.s; only its address is taken.
    let vbar = (&raw const __patchbay_vectors) as u64;
    // SAFETY: VBAR_EL1 is ours; the table is valid for the kernel's lifetime.
    unsafe { crate::write_sysreg!(vbar_el1, vbar) };
    // The new VBAR must be in effect before the next exception.
    arch::cpu::isb();
}

/// Called from vectors.s with the saved frame.
#[unsafe(no_mangle)]
extern "C" fn __patchbay_exception(kind: u64, frame: &mut ExceptionFrame) {
    let kind = Kind(kind);
    percpu::this().exceptions.fetch_add(1, Ordering::Relaxed);
    if kind.is_sync() {
        let ec = esr::exception_class(frame.esr);
        // HLT #0xF000 trapped as undefined: the semihosting exit is not available.
        if ec == 0 && arch::semihosting::attempting() {
            let _ = writeln!(console::emergency(), "patchbay: semihosting unavailable");
            arch::psci::system_off();
            arch::cpu::halt();
        }
        if let Some(h) = sync_handler(ec)
            && h(frame)
        {
            return;
        }
    } else if kind == Kind::IRQ {
        // An IRQ from kernel code on its own stack (after the synchronous path, which BRK probes
        // take, so that it costs them nothing). One on the exception stack would mean a handler
        // unmasked IRQs, which the nested-exception policy (`irq`) forbids: fatal below.
        // A grace period may find this CPU quiescent where it was interrupted (`grace`).
        grace::interrupted(frame.elr, frame.x[30], frame.x[29]);
        irq::handle(frame.elr);
        return;
    }
    fatal(kind, frame);
}

/// Print the crash report and end the run.
pub fn fatal(kind: Kind, frame: &ExceptionFrame) -> ! {
    crate::exit::claim_report(percpu::this().id);
    let depth = percpu::this().fatal_depth.fetch_add(1, Ordering::Relaxed);
    let mut w = console::emergency();
    if depth > 0 {
        // Reporting itself faulted: say the minimum and stop.
        let _ = writeln!(
            w,
            "\n!!! patchbay: nested fatal exception while reporting (ESR {:#x} ELR {:#x} FAR {:#x}) !!!",
            frame.esr, frame.elr, frame.far
        );
        exit(ExitCode::Failure);
    }
    let _ = report(&mut w, kind, frame);
    crate::exit::end_report(&mut w);
    exit(ExitCode::Failure)
}

/// The BRK immediate of the pools' trap pattern.
const POOL_FILL_IMM: u16 = 0xdead;
const _: () = assert!(patchbay_pure::insn::brk(POOL_FILL_IMM) == memory::POOL_FILL);

/// Is this exception the trap pattern of free pool memory, executed?
fn freed_trampoline(d: &Decoded, elr: u64) -> bool {
    let plan = memory::plan();
    d.brk_immediate() == Some(POOL_FILL_IMM)
        && (plan.near_pool.contains(elr) || plan.far_pool.contains(elr))
}

fn hint(d: &Decoded, far: u64) -> Option<&'static str> {
    if d.class() == esr::EC_FP_ACCESS {
        return Some(
            "the kernel is built for general registers only (aarch64-unknown-none-softfloat) and FP/SIMD traps at EL1: an FP/SIMD instruction in kernel code (inline asm, or a target/flags change) is a bug",
        );
    }
    if d.class() == harden::EC_BTI {
        return Some(
            "BTI is enforced (hardened build): a BLR/BR landed on an instruction that is no landing pad; whatever is reached indirectly (a function pointer, a trampoline behind `br x16`/`br x17`) must start with `bti c` (or `paciasp`), see README \"Hardened build\"",
        );
    }
    if d.class() == harden::EC_FPAC {
        return Some(
            "pointer authentication is enforced (hardened build): `autiasp` found a return address that its function did not sign with this SP — it was overwritten (stack corruption, or a return hook that replaced a signed address) or the key changed",
        );
    }
    let fsc = d.fault_status()?;
    if fsc & 0x3c == 0x04 && harden::has_pac_bits(far) {
        return Some(
            "the address carries pointer-authentication bits: without FEAT_FPAC a failed `autiasp` corrupts the return address and the `ret` faults here — a signed return address was overwritten (stack corruption, or a return hook that replaced a signed address)",
        );
    }
    let region = memory::describe(far);
    Some(match (fsc & 0x3c, d.is_write()) {
        (0x0c, Some(true)) if region.contains("text") || region.contains("pool") => {
            "kernel text and trampoline pools are never writable through their executable mapping (W^X); write them through the poke alias (patch::poke)"
        }
        (0x0c, Some(true)) => "a write to read-only memory",
        (0x0c, None) => {
            "executing non-executable memory (W^X: writable or data pages are never executable)"
        }
        (0x04, _) if region.contains("guard") => "the stack overflowed into its guard page",
        (0x04, _) if region.contains("null") => "a null pointer dereference",
        (0x04, _) => "an access to an address that is not mapped",
        _ => return None,
    })
}

/// Write the report for `frame` to `w`.
pub fn report(w: &mut impl Write, kind: Kind, frame: &ExceptionFrame) -> core::fmt::Result {
    let d = Decoded::new(frame.esr);
    let cpu = percpu::this().id;
    writeln!(w)?;
    writeln!(
        w,
        "!!! patchbay: FATAL {} on CPU {cpu}, taken from {} !!!",
        kind.name(),
        kind.source()
    )?;
    if kind.is_sync() {
        writeln!(w, "  what     : {} (EC {:#04x})", d.class_name(), d.class())?;
        writeln!(w, "  detail   : {d}")?;
        if freed_trampoline(&d, frame.elr) {
            writeln!(
                w,
                "  cause    : use of a freed trampoline: ELR_EL1 is in {}, which holds the trap pattern brk #{:#x} there: pool memory is refilled with it when a trampoline is freed, so whatever branched here kept a trampoline's address past its grace period (or never owned that memory)",
                memory::describe(frame.elr),
                POOL_FILL_IMM
            )?;
        }
        crate::exit::report_note(w, Some(frame.elr))?;
        if esr::is_abort(d.class()) {
            writeln!(
                w,
                "  address  : FAR_EL1 {:#018x}{} in {}",
                frame.far,
                Sym(frame.far),
                memory::describe(frame.far)
            )?;
        }
    }
    writeln!(
        w,
        "  at       : ELR_EL1 {:#018x}{}",
        frame.elr,
        Sym(frame.elr)
    )?;
    writeln!(w, "  ESR_EL1  : {:#018x}", frame.esr)?;
    let spsr = frame.spsr;
    let mode = match spsr & 0xf {
        0b0100 => "EL1t",
        0b0101 => "EL1h",
        0b0000 => "EL0t",
        _ => "other",
    };
    let flag = |bit: u32, c: char| if spsr & (1 << bit) != 0 { c } else { '-' };
    writeln!(
        w,
        "  SPSR_EL1 : {:#018x} ({mode}, DAIF masked: {}{}{}{}, NZCV {}{}{}{})",
        spsr,
        flag(9, 'D'),
        flag(8, 'A'),
        flag(7, 'I'),
        flag(6, 'F'),
        flag(31, 'N'),
        flag(30, 'Z'),
        flag(29, 'C'),
        flag(28, 'V')
    )?;
    if let Some(h) = hint(&d, frame.far) {
        writeln!(w, "  hint     : {h}")?;
    }
    writeln!(w, "  registers:")?;
    for row in 0..8 {
        write!(w, "   ")?;
        for col in 0..4 {
            let i = row * 4 + col;
            match i {
                0..=30 => write!(w, " x{i:<2} {:#018x}", frame.x[i])?,
                31 => write!(w, " sp  {:#018x}", frame.sp)?,
                _ => {}
            }
        }
        writeln!(w)?;
    }
    unwind::print_backtrace(w, Some(frame.elr), frame.x[29])
}
