//! Frame-pointer unwinding (the kernel is built with `-C force-frame-pointers=yes`).
//!
//! AAPCS64 frame record: `[fp] = caller's fp`, `[fp + 8] = return address`. The walk stops at a
//! null fp (boot.s starts the chain with one), a misaligned fp, or an fp outside every kernel
//! stack, so a corrupt chain ends the backtrace instead of faulting.
//!
//! Tracing must not break stack traces (Mark Rutland's concern in the ftrace debate):
//!
//! - the static and direct trampolines build two frame records (call site, then trampoline), so
//!   the walk goes handler → trampoline → traced function → caller;
//! - a return-hooked function's saved return address is the return trampoline; the walk
//!   replaces each one, innermost first, with the real return address from this CPU's shadow
//!   stack ([`Hooks::real_return_address`]);
//! - in the hardened build, saved return addresses are signed (`pac-ret`): the walk strips the
//!   pointer-authentication code (XPACLRI) before anything compares or symbolizes them;
//! - frames whose return address lies inside a trampoline (static trampolines, the return
//!   trampoline, the trampoline pools) are shown, or elided with [`Options::elide_trampolines`].
//!
//! The unwinder sits below tracing and does not import it: tracing registers what the walk needs
//! to know ([`Hooks`]) at boot (`trace::init`). Before that, no address is a trampoline and no
//! return address is translated.

use crate::{arch, memory, percpu::MAX_CPUS};

/// What tracing tells the unwinder, once, at boot ([`register_hooks`]).
#[derive(Clone, Copy)]
pub struct Hooks {
    /// Is `pc` inside tracing machinery that is not a function of its own?
    pub in_trampoline: fn(pc: u64) -> bool,
    /// The address return hooks put in place of a hooked function's return address.
    pub return_trampoline: u64,
    /// The real return address behind the `n`-th `return_trampoline` met while unwinding this
    /// CPU's stack from the innermost frame outwards (n = 0 is the innermost).
    pub real_return_address: fn(n: usize) -> Option<u64>,
}

static HOOKS: spin::Once<Hooks> = spin::Once::new();

/// Register tracing's hooks (the first registration wins; there is one tracer).
pub fn register_hooks(hooks: Hooks) {
    HOOKS.call_once(|| hooks);
}

/// One frame: the return address found in a frame record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    pub fp: u64,
    pub pc: u64,
}

/// The kernel or exception stack containing `a`.
fn stack_of(a: u64) -> Option<patchbay_pure::layout::Range> {
    (0..MAX_CPUS).find_map(|c| {
        let (k, e) = memory::cpu_stacks(c);
        [k, e].into_iter().find(|s| s.contains(a))
    })
}

fn on_a_stack(a: u64) -> bool {
    stack_of(a).is_some()
}

/// How to walk.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Skip frames whose return address is inside tracing trampolines.
    pub elide_trampolines: bool,
}

/// Is `pc` (a return address) inside tracing machinery that is not a function of its own?
pub fn in_trampoline(pc: u64) -> bool {
    HOOKS
        .get()
        .is_some_and(|h| (h.in_trampoline)(pc.wrapping_sub(4)))
}

/// The real return address behind `lr`, the return address of a call this CPU is inside of and
/// whose return is hooked last, if at all: `lr` itself, unless it is the return trampoline's
/// address, which then stands for this CPU's innermost hooked call (an entry handler asking
/// for its own call's caller after that call's return was hooked: `FtraceRegs::parent_ip`).
pub fn innermost_return_address(lr: u64) -> u64 {
    match HOOKS.get() {
        Some(h) if lr == h.return_trampoline => (h.real_return_address)(0).unwrap_or(lr),
        _ => lr,
    }
}

/// Walk the frame records starting at `fp`, calling `f` for each return address, at most `max`;
/// return-trampoline addresses are translated, trampoline frames kept.
pub fn walk(fp: u64, max: usize, f: impl FnMut(Frame)) {
    walk_with(fp, max, Options::default(), f)
}

/// [`walk`] with options.
pub fn walk_with(mut fp: u64, max: usize, opts: Options, mut f: impl FnMut(Frame)) {
    let hooks = HOOKS.get();
    let mut hooked = 0;
    for _ in 0..max {
        if fp == 0 || !fp.is_multiple_of(16) || !on_a_stack(fp) || !on_a_stack(fp + 8) {
            return;
        }
        // SAFETY: `fp` is 16-aligned and inside a mapped kernel stack (checked above).
        let (next, lr) = unsafe { (*(fp as *const u64), *((fp + 8) as *const u64)) };
        // A `pac-ret` function saved its x30 signed (`paciasp` ran before the `stp`): the
        // pointer-authentication code must go before the address is compared or symbolized.
        let lr = arch::harden::strip_pac(lr);
        if lr == 0 {
            return;
        }
        let pc = match hooks {
            Some(h) if lr == h.return_trampoline => {
                let real = (h.real_return_address)(hooked).unwrap_or(lr);
                hooked += 1;
                real
            }
            _ => lr,
        };
        if !(opts.elide_trampolines && in_trampoline(pc)) {
            f(Frame { fp, pc });
        }
        if next <= fp && stack_of(next) == stack_of(fp) {
            // Within one stack, callers' frames are at higher addresses; anything else is a
            // corrupt chain. (An exception frame links the exception stack to the kernel stack.)
            return;
        }
        fp = next;
    }
}

/// The current frame pointer.
#[inline(always)]
pub fn current_fp() -> u64 {
    let fp: u64;
    // SAFETY: reads x29 only.
    unsafe {
        core::arch::asm!("mov {}, x29", out(reg) fp, options(nomem, nostack, preserves_flags))
    };
    fp
}

/// Print a backtrace starting at frame pointer `fp` (after `pc`, the innermost address, if
/// given). Runs of identical frames (deep recursion) are collapsed into one line.
pub fn print_backtrace(
    w: &mut impl core::fmt::Write,
    pc: Option<u64>,
    fp: u64,
) -> core::fmt::Result {
    use crate::symbols::Sym;
    writeln!(w, "  backtrace (frame pointers, innermost first):")?;
    let mut n = 0usize;
    if let Some(pc) = pc {
        writeln!(w, "    #{n:<2} {pc:#018x}{}", Sym(pc))?;
        n += 1;
    }
    let (mut last, mut repeats) = (None, 0usize);
    let mut result = Ok(());
    let flush = |w: &mut dyn core::fmt::Write, repeats: usize| {
        if repeats > 0 {
            writeln!(w, "    ... the same frame {repeats} more time(s)")
        } else {
            Ok(())
        }
    };
    walk(fp, 64, |f| {
        if last == Some(f.pc) {
            repeats += 1;
        } else {
            result = result.and(flush(w, repeats));
            repeats = 0;
            // The return address points after the BL; name the call instruction itself.
            result = result.and(writeln!(
                w,
                "    #{n:<2} {:#018x}{}",
                f.pc,
                Sym(f.pc.wrapping_sub(4))
            ));
            last = Some(f.pc);
        }
        n += 1;
    });
    result.and(flush(w, repeats))
}
