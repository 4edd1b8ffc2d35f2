//! Ending a run: semihosting exit code on QEMU, PSCI SYSTEM_OFF without semihosting, a final
//! line ([`Halted`], the format `pb` reads) and a halt on boards whose BSP says so (`bsp::EXIT`).

use patchbay_wire::halt::Halted;

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
    if bsp::EXIT == bsp::ExitMethod::Halt {
        // A board: nobody can receive the code but the person (or host tool) reading the console.
        let _ = core::fmt::Write::write_fmt(
            &mut console::emergency(),
            format_args!("{}\n", Halted(code)),
        );
        console::flush();
        arch::cpu::halt()
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
