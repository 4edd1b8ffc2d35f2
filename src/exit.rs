//! Ending a run: semihosting exit code on QEMU, PSCI SYSTEM_OFF without semihosting, a final
//! line and a halt on boards without either.

use crate::{arch, bsp, console};

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

/// End the run with a raw exit code.
pub fn exit_with(code: u32) -> ! {
    console::flush();
    if bsp::EXIT == bsp::ExitMethod::Semihosting {
        arch::semihosting::exit(code);
    }
    // Still here: no semihosting. The code cannot be returned, so say it.
    let _ = core::fmt::Write::write_fmt(
        &mut console::emergency(),
        format_args!("patchbay: exit code {code} (no semihosting); powering off\n"),
    );
    console::flush();
    arch::psci::system_off();
    arch::cpu::halt()
}
