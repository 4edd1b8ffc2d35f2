//! Board support: addresses and bring-up that differ between boards, chosen by cargo feature
//! (`make BSP=<board>` passes `--features bsp_<board>`). Callers write `bsp::…`, so a reader
//! always sees where a call crosses into board-specific code.

#[cfg(feature = "bsp_qemu_virt")]
#[path = "bsp/qemu_virt/mod.rs"]
mod board;

pub use board::*;

/// How a run ends on this board.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitMethod {
    /// Semihosting SYS_EXIT with a code (QEMU), PSCI SYSTEM_OFF if semihosting is absent.
    Semihosting,
    /// Print a final line and park the CPUs (hardware without a debugger).
    Halt,
}
