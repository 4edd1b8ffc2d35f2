//! Arm semihosting, used only to end a QEMU run with an exit code (SYS_EXIT).
//!
//! Semihosting is a debug-host service: QEMU implements it when started with
//! `-semihosting-config enable=on`. On a board without a debugger, `HLT #0xF000` is an undefined
//! instruction; the exception handler recognises that case ([`attempting`]) and falls back to
//! PSCI SYSTEM_OFF.

use core::sync::atomic::{AtomicBool, Ordering};

const SYS_EXIT: u64 = 0x18;
/// ADP_Stopped_ApplicationExit: "the application exited", with a status in the second word.
const ADP_STOPPED_APPLICATION_EXIT: u64 = 0x2_0026;

static ATTEMPTING: AtomicBool = AtomicBool::new(false);

/// Is a semihosting exit in progress (so an undefined-instruction trap means "no semihosting")?
pub fn attempting() -> bool {
    ATTEMPTING.load(Ordering::Relaxed)
}

/// Ask the debug host to end the run with `code`. Returns only if the host ignored the request.
pub fn exit(code: u32) {
    ATTEMPTING.store(true, Ordering::Relaxed);
    let block = [ADP_STOPPED_APPLICATION_EXIT, u64::from(code)];
    // SAFETY: HLT #0xF000 is the A64 semihosting call; x0 selects SYS_EXIT and x1 points at a
    // valid two-word parameter block that outlives the call.
    unsafe {
        core::arch::asm!("hlt #0xf000", in("x0") SYS_EXIT, in("x1") block.as_ptr(),
            options(nostack))
    };
}
