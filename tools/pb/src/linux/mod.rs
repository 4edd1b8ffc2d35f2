//! Linux in the same table: Debian's arm64 kernel booted on the same QEMU machine, CPU model and
//! `-icount shift=0,align=off,sleep=off` as patchbay, its own ftrace, kprobes and return hooks
//! measured on one cheap kernel function, and the result set beside patchbay's mechanisms.
//!
//! * [`apt`]: the kernel and busybox from Debian's packages, through a private apt state.
//! * [`initramfs`]: the guest program (`tools/linux-guest/hookbench.c`, cross-compiled) and the
//!   cpio archive it boots from.
//! * [`console`]: the guest's console lines, the checks that every hook fired once per call, the
//!   `@bench` records.
//! * [`side`]: the one side-by-side table, from the two runs' records.
//!
//! `pb linux-compare` (`cmd::linux`) does all of it; `pb linux-table` redraws the table from
//! committed records without any download.

pub mod apt;
pub mod console;
pub mod initramfs;
pub mod side;
