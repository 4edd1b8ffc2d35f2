//! BRK probes (kprobe-style): the slow baseline the other mechanisms are compared against.
//!
//! Probing a site writes `brk #KPROBE_BRK` over its call NOP (`Site::call`: func+4, after the
//! `mov x9, x30` that boot wrote at the entry word; func+8 in the hardened build, whose `bti c`
//! at func+0 a probe never displaces by default): NOP <-> BRK is CMODX-safe (DDI0487 B2.2.5),
//! so it is written live, followed by the kick (`patch::poke`). Calling the function then takes
//! a synchronous exception; the handler registered for exception class 0x3c recognises the
//! immediate and the address, runs the probe's handler with the full register state
//! ([`ExceptionFrame`]) and resumes *after* the displaced instruction: it was a NOP (or a
//! landing pad, whose check is emulated), so nothing needs to be single-stepped.
//!
//! A kretprobe-style probe also hooks the return from the exception path: at the call word the
//! caller's return address is still in x30 (the `mov` only copied it), unsigned (a `pac-ret`
//! body signs it only after the site's words, see `patchbay_pure::harden`), so
//! [`rethook::push`] takes `frame.x[30]`.
//!
//! The handler runs on the exception stack under the same recursion guard as the trampolines;
//! a probe hit inside a handler is counted and resumed without running the handler. For
//! unwinding, the handler is called on a synthetic pair of frame records
//! `{ caller's x29, x30 } <- { .., func }`, so a backtrace taken in it shows the probed
//! function and its callers — not the exception machinery.
//!
//! # Removal on many CPUs
//!
//! Another CPU may have hit the BRK just before the NOP went back, and be on its way to the
//! handler. So [`unregister`] restores the NOP at once but forgets the probe only after a grace
//! period (`crate::grace`: a CPU in the exception path passes no quiescent point before it
//! returns); a hit always finds its probe (the newest for its address). The probe list's lock is
//! taken with IRQs masked, so the BRK handler may spin on it (another CPU holds it briefly, this
//! one never: a probe hit needs this CPU to run a probed function, which the lock holders don't).
//!
//! A site that is armed for tracing (`bl` at its call word) cannot be probed, and a probed site
//! cannot be armed: each path validates the call word it expects (typed `Mismatch`).

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use patchbay_pure::{esr, harden, insn};

use super::{
    recursion, rethook,
    types::{OpsId, TraceError},
};
use crate::{
    exception::{self, ExceptionFrame},
    patch::{poke, sites::Site},
};

/// The BRK immediate that marks a probe (ASCII "KP").
pub const KPROBE_BRK: u16 = 0x4b50;

/// Runs when a probed function is entered: `(ip, data, frame)`; may change any register.
pub type ProbeHandler = extern "C" fn(ip: u64, data: u64, frame: &mut ExceptionFrame);

/// A registered probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeId(pub u64);

#[derive(Clone, Copy)]
struct Probe {
    id: u64,
    /// The probed function's address (the `ip` its handlers see).
    addr: u64,
    /// Where the BRK is: the site's entry NOP (after the hardened build's `bti c`), or what
    /// [`register_kprobe_at`] was given.
    brk: u64,
    /// The instruction the BRK displaced: a NOP, or a landing pad (emulated on resume).
    displaced: u32,
    name: &'static str,
    entry: Option<ProbeHandler>,
    exit: Option<rethook::ExitFn>,
    data: u64,
    /// Unregistered (its NOP is back), forgotten after a grace period.
    retired: bool,
}

/// What a hit needs of its [`Probe`], copied out under the lock field by field (a whole `Probe`
/// is copied with a `memcpy` call under strict alignment, on every hit).
#[derive(Clone, Copy)]
struct Hit {
    id: u64,
    addr: u64,
    displaced: u32,
    entry: Option<ProbeHandler>,
    exit: Option<rethook::ExitFn>,
    data: u64,
}

impl Probe {
    fn hit(&self) -> Hit {
        Hit {
            id: self.id,
            addr: self.addr,
            displaced: self.displaced,
            entry: self.entry,
            exit: self.exit,
            data: self.data,
        }
    }
}

/// The registered probes. Outside the BRK handler it is only locked through [`with_probes`], with
/// IRQs masked: a probe hit in an interrupt handler (a traced function the timer tick calls)
/// then never finds this CPU holding the lock, so the handler can wait for it — the holder is
/// another CPU, which releases it.
static PROBES: spin::Mutex<Vec<Probe>> = spin::Mutex::new(Vec::new());

/// Run `f` on the probe list, IRQs masked on this CPU while it is locked (see [`PROBES`]).
fn with_probes<R>(f: impl FnOnce(&mut Vec<Probe>) -> R) -> R {
    let daif = crate::arch::cpu::mask_all();
    let r = f(&mut PROBES.lock());
    crate::arch::cpu::restore_daif(daif);
    r
}
static NEXT_ID: AtomicU64 = AtomicU64::new(1);
static HITS: AtomicU64 = AtomicU64::new(0);
static HANDLER: spin::Mutex<Option<exception::HandlerId>> = spin::Mutex::new(None);

fn install_handler() {
    let mut h = HANDLER.lock();
    if h.is_none() {
        *h = Some(exception::register_sync_handler(0x3c, on_brk).expect("a free exception slot"));
    }
}

fn register(
    site: &Site<'static>,
    at: u64,
    entry: Option<ProbeHandler>,
    exit: Option<rethook::ExitFn>,
    data: u64,
) -> Result<ProbeId, TraceError> {
    if !(site.func..=site.body()).contains(&at) || !at.is_multiple_of(4) {
        return Err(TraceError::ProbeOutsideSite {
            addr: at,
            site: site.name,
        });
    }
    // SAFETY: `at` is a word of the site's compiled text (checked above), mapped readable.
    let displaced = unsafe { (at as *const u32).read_volatile() };
    // A landing pad and the entry's `mov x9, x30` (written at boot) are emulated on resume and
    // `paciasp`/`autiasp` are refused; any other word but a NOP is refused by the poke below,
    // which expects a NOP. (`patch::poke` writes a BRK over a word outside the CMODX set, such as
    // the `mov` or `bti c`, under stop-the-world.)
    let displaced = match insn::pointer_auth_or_landing_pad(displaced) {
        Some(_) if harden::bti_accepts(displaced, 0).is_some() => displaced,
        Some(insn) => return Err(TraceError::ProbeOnPointerAuth { addr: at, insn }),
        None if displaced == insn::MOV_X9_X30 => displaced,
        None => insn::NOP,
    };
    install_handler();
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    // Listed before the BRK is written, so the first hit finds it.
    with_probes(|ps| {
        ps.push(Probe {
            id,
            addr: site.func,
            brk: at,
            displaced,
            name: site.name,
            entry,
            exit,
            data,
            retired: false,
        })
    });
    if let Err(e) = poke::poke(at, displaced, insn::brk(KPROBE_BRK)) {
        // Never written: no CPU can have hit it.
        with_probes(|ps| ps.retain(|p| p.id != id));
        return Err(e.into());
    }
    Ok(ProbeId(id))
}

/// Probe `site` with `handler` at entry.
pub fn register_kprobe(
    site: &Site<'static>,
    handler: ProbeHandler,
    data: u64,
) -> Result<ProbeId, TraceError> {
    register(site, site.call(), Some(handler), None, data)
}

/// Probe `site` at `at`: one of its words from the function's address up to the first
/// instruction of its body. Besides the entry NOPs, that is the hardened build's `bti c` at the
/// function's address — emulated: the probe resumes after it, having checked that it accepts
/// the branch that arrived (PSTATE.BTYPE, saved in SPSR_EL1), as the landing pad would have —
/// and the body's `paciasp`, refused ([`TraceError::ProbeOnPointerAuth`]).
pub fn register_kprobe_at(
    site: &Site<'static>,
    at: u64,
    handler: ProbeHandler,
    data: u64,
) -> Result<ProbeId, TraceError> {
    register(site, at, Some(handler), None, data)
}

/// Probe `site` with an exit handler (and optionally an entry handler), kretprobe-style.
pub fn register_kretprobe(
    site: &Site<'static>,
    entry: Option<ProbeHandler>,
    exit: rethook::ExitFn,
    data: u64,
) -> Result<ProbeId, TraceError> {
    register(site, site.call(), entry, Some(exit), data)
}

/// Remove a probe: the displaced word goes back, then the probe is forgotten after a grace
/// period (a hit already on its way to the handler still finds it).
pub fn unregister(id: ProbeId) -> Result<(), TraceError> {
    let p = with_probes(|ps| {
        ps.iter()
            .find(|p| p.id == id.0 && !p.retired)
            .map(|p| (p.brk, p.displaced))
    });
    let (brk, displaced) = p.ok_or(TraceError::UnknownOps(OpsId(id.0)))?;
    poke::poke(brk, insn::brk(KPROBE_BRK), displaced).map_err(TraceError::from)?;
    with_probes(|ps| {
        ps.iter_mut()
            .filter(|q| q.id == id.0)
            .for_each(|q| q.retired = true)
    });
    crate::grace::call_after(move || with_probes(|ps| ps.retain(|q| q.id != id.0)));
    Ok(())
}

/// Probe hits so far.
pub fn hits() -> u64 {
    HITS.load(Ordering::Relaxed)
}

/// Registered probes (name, address).
pub fn probes() -> Vec<(&'static str, u64)> {
    with_probes(|ps| {
        ps.iter()
            .filter(|p| !p.retired)
            .map(|p| (p.name, p.addr))
            .collect()
    })
}

unsafe extern "C" {
    /// `__patchbay_call_with_frame(a, b, c, f, fp)`: call `f(a, b, c)` with x29 = `fp`.
    fn __patchbay_call_with_frame(a: u64, b: u64, c: u64, f: u64, fp: u64);
}

core::arch::global_asm!(
    ".section .text.patchbay_kprobe, \"ax\"",
    ".balign 4",
    ".global __patchbay_call_with_frame",
    ".type __patchbay_call_with_frame, %function",
    "__patchbay_call_with_frame:",
    // Our own frame record, then x29 = the synthetic chain for the callee to link to.
    "    stp  x29, x30, [sp, #-16]!",
    "    mov  x29, x4",
    "    blr  x3",
    "    ldp  x29, x30, [sp], #16",
    "    ret",
    ".size __patchbay_call_with_frame, . - __patchbay_call_with_frame",
);

/// SPSR_EL1.BTYPE (bits 11:10): PSTATE.BTYPE when the exception was taken.
const SPSR_BTYPE: u64 = 3 << 10;

fn spsr_btype(spsr: u64) -> u8 {
    ((spsr & SPSR_BTYPE) >> 10) as u8
}

/// The synchronous-exception hook for BRK.
fn on_brk(frame: &mut ExceptionFrame) -> bool {
    if esr::Decoded::new(frame.esr).brk_immediate() != Some(KPROBE_BRK) {
        return false;
    }
    // The caller's return address as the displaced instruction would have seen it (a kretprobe
    // replaces x30 below).
    let x30_at_hit = frame.x[30];
    // IRQs are masked here (exception entry), and no holder of the lock runs probed code (the
    // module docs), so waiting for it cannot deadlock (`try_lock` here made a hit on one CPU,
    // while another looked its own hit up, a fatal "no probe"). The newest probe for the
    // address: an older, retired one may still be listed.
    let probe = PROBES
        .lock()
        .iter()
        .rev()
        .find(|p| p.brk == frame.elr)
        .map(Probe::hit);
    let Some(p) = probe else {
        // A BRK with our immediate but no probe: a stale hit after unregister still finds its
        // retired probe (forgotten only after a grace period), so this is a real fault.
        return false;
    };
    HITS.fetch_add(1, Ordering::Relaxed);
    recursion::guarded(|| {
        if let Some(h) = p.entry {
            // { caller's x29, return address into the caller } <- { that, the probed function }:
            // one 16-aligned block with the inner record below the outer one, as the unwinder
            // expects of records on one stack.
            #[repr(C, align(16))]
            struct Records {
                func: [u64; 2],
                caller: [u64; 2],
            }
            let mut recs = Records {
                func: [0, frame.elr + 4],
                caller: [frame.x[29], frame.x[30]],
            };
            recs.func[0] = recs.caller.as_ptr() as u64;
            // SAFETY: calls `h(ip, data, frame)` (its real signature) with x29 pointing at the
            // synthetic records above, which live on this stack for the duration of the call.
            unsafe {
                __patchbay_call_with_frame(
                    p.addr,
                    p.data,
                    frame as *mut ExceptionFrame as u64,
                    h as usize as u64,
                    recs.func.as_ptr() as u64,
                )
            };
        }
        if let Some(exit) = p.exit {
            let (sp, fp) = (frame.sp, frame.x[29]);
            rethook::push(&mut frame.x[30], sp, fp, p.addr, exit, p.id, p.data);
        }
    });
    // Resume after the displaced instruction. A landing pad's check is the one thing to
    // emulate: the BRK took the branch's PSTATE.BTYPE into SPSR_EL1; if the pad accepts it,
    // the pad would have cleared it, else the branch would have faulted there.
    // (Only the hardened build has landing pads to displace.)
    let pad = harden::HARDENED
        .then(|| harden::bti_accepts(p.displaced, spsr_btype(frame.spsr)))
        .flatten();
    if let Some(ok) = pad {
        assert!(
            ok,
            "kprobe at {:#x}: the displaced `{}` does not accept the branch that arrived (PSTATE.BTYPE {:#04b}): a Branch Target exception without the probe",
            frame.elr,
            insn::describe(p.displaced, frame.elr),
            spsr_btype(frame.spsr)
        );
        frame.spsr &= !SPSR_BTYPE;
    }
    // A displaced `mov x9, x30` (a probe at the function's address in the plain build) is
    // emulated with the return address it would have copied.
    if p.displaced == insn::MOV_X9_X30 {
        frame.x[9] = x30_at_hit;
    }
    frame.elr += 4;
    true
}
