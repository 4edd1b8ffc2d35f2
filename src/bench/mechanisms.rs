//! How the suite puts a site into each mechanism's state and back. Each mechanism is a pair of
//! functions referenced from one entry of `suite::MECHANISMS`.

use core::sync::atomic::{AtomicU64, Ordering};

use super::clock;
use crate::{
    exception::ExceptionFrame,
    patch::sites::Site,
    trace::{
        self, DirectCtx, DirectKind, Filter, FtraceRegs, Mode, Ops, OpsId, Reach, TraceError,
        fprobe, kprobe, recorder, rethook::RetRegs,
    },
};

/// Calls the benchmark handlers saw (the "empty counting handler").
pub static HITS: AtomicU64 = AtomicU64::new(0);

/// One hit: a plain load/add/store (one CPU runs benchmarks), the same in every handler below,
/// so the handler costs the same on every mechanism.
#[inline(always)]
fn hit() {
    HITS.store(HITS.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

/// The empty counting handler every tracing mechanism is measured with.
pub extern "C" fn count(_: u64, _: u64, _: &Ops, _: &mut FtraceRegs) {
    hit();
}

/// The ops the suite attached for the mechanism being measured.
static ATTACHED: AtomicU64 = AtomicU64::new(0);

fn attach_mode(site: &Site<'static>, mode: Mode) -> Result<(), TraceError> {
    let id = trace::attach(Filter::Addrs([site.func].into()), count, 0, mode)?;
    ATTACHED.store(id.0, Ordering::Relaxed);
    Ok(())
}

pub fn attach_list(site: &Site<'static>) -> Result<(), TraceError> {
    attach_mode(site, Mode::List)
}

pub fn attach_call_ops(site: &Site<'static>) -> Result<(), TraceError> {
    attach_mode(site, Mode::CallOps)
}

/// call-ops with the recording handler: one event per call into the per-CPU ring, tagged
/// call-ops, stamped by the clock the suite measures with.
pub fn attach_call_ops_record(site: &Site<'static>) -> Result<(), TraceError> {
    recorder::set_cycle_clock(clock::source() == clock::Source::Pmccntr);
    let tag = u64::from(patchbay_shell::Mechanism::CallOps.code());
    let id = trace::attach(
        Filter::Addrs([site.func].into()),
        recorder::record,
        tag,
        Mode::CallOps,
    )?;
    ATTACHED.store(id.0, Ordering::Relaxed);
    Ok(())
}

pub fn detach_ops(_: &Site<'static>) -> Result<(), TraceError> {
    trace::detach(OpsId(ATTACHED.swap(0, Ordering::Relaxed)))
}

pub fn nothing(_: &Site<'static>) -> Result<(), TraceError> {
    Ok(())
}

/// The empty counting handler of direct entry trampolines.
pub extern "C" fn direct_count(_: &DirectCtx, _: *mut u64) {
    hit();
}

/// The empty counting handler of fexit trampolines.
pub extern "C" fn fexit_count(_: &DirectCtx, _: *mut u64, _: &mut u64) {
    hit();
}

fn attach_direct(site: &Site<'static>, kind: DirectKind, reach: Reach) -> Result<(), TraceError> {
    let id = trace::attach_direct(site, kind, 0, reach)?;
    ATTACHED.store(id.0, Ordering::Relaxed);
    Ok(())
}

pub fn attach_direct_near(site: &Site<'static>) -> Result<(), TraceError> {
    attach_direct(site, DirectKind::Entry(direct_count), Reach::Near)
}

/// The lean variant: no frame record for the traced function (see `tramp::entry_lean`).
pub fn attach_direct_lean(site: &Site<'static>) -> Result<(), TraceError> {
    attach_direct(site, DirectKind::LeanEntry(direct_count), Reach::Near)
}

pub fn attach_direct_far_ops(site: &Site<'static>) -> Result<(), TraceError> {
    attach_direct(site, DirectKind::Entry(direct_count), Reach::FarViaOps)
}

pub fn attach_direct_far_veneer(site: &Site<'static>) -> Result<(), TraceError> {
    attach_direct(site, DirectKind::Entry(direct_count), Reach::FarViaVeneer)
}

pub fn attach_fexit(site: &Site<'static>) -> Result<(), TraceError> {
    attach_direct(site, DirectKind::Fexit(fexit_count), Reach::Near)
}

/// The empty exit handler of return hooks (counts).
extern "C" fn exit_count(_: u64, _: u64, _: u64, _: &mut RetRegs) {
    hit();
}

/// Call-ops entry handler that hooks the return (rethook entry + exit, no fprobe layer).
extern "C" fn rethook_entry(ip: u64, _: u64, _: &Ops, regs: &mut FtraceRegs) {
    regs.hook_return(ip, exit_count, 0, 0);
}

pub fn attach_rethook(site: &Site<'static>) -> Result<(), TraceError> {
    let id = trace::attach(
        Filter::Addrs([site.func].into()),
        rethook_entry,
        0,
        Mode::CallOps,
    )?;
    ATTACHED.store(id.0, Ordering::Relaxed);
    Ok(())
}

extern "C" fn fprobe_entry(_: u64, _: u64, _: &mut u64, _: &mut FtraceRegs) -> bool {
    hit();
    true
}

extern "C" fn fprobe_exit(_: u64, _: u64, _: u64, _: &mut RetRegs) {
    hit();
}

pub fn attach_fprobe(site: &Site<'static>) -> Result<(), TraceError> {
    let id = fprobe::register(
        Filter::Addrs([site.func].into()),
        Some(fprobe_entry),
        Some(fprobe_exit),
        0,
        Mode::CallOps,
    )?;
    ATTACHED.store(id.0, Ordering::Relaxed);
    Ok(())
}

pub fn detach_fprobe(_: &Site<'static>) -> Result<(), TraceError> {
    fprobe::unregister(OpsId(ATTACHED.swap(0, Ordering::Relaxed)))
}

extern "C" fn brk_count(_: u64, _: u64, _: &mut ExceptionFrame) {
    hit();
}

pub fn attach_brk(site: &Site<'static>) -> Result<(), TraceError> {
    let id = kprobe::register_kprobe(site, brk_count, 0)?;
    ATTACHED.store(id.0, Ordering::Relaxed);
    Ok(())
}

pub fn attach_kretprobe(site: &Site<'static>) -> Result<(), TraceError> {
    let id = kprobe::register_kretprobe(site, None, exit_count, 0)?;
    ATTACHED.store(id.0, Ordering::Relaxed);
    Ok(())
}

pub fn detach_probe(_: &Site<'static>) -> Result<(), TraceError> {
    kprobe::unregister(kprobe::ProbeId(ATTACHED.swap(0, Ordering::Relaxed)))
}
