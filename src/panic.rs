//! Panics end the run like a fatal exception: a report with the message, the location and a
//! backtrace, then [`ExitCode::Failure`](crate::exit::ExitCode::Failure).

use core::{fmt::Write, sync::atomic::Ordering};

use crate::{
    console,
    exit::{ExitCode, exit},
    percpu, unwind,
};

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    crate::exit::claim_report(percpu::this().id);
    let depth = percpu::this().fatal_depth.fetch_add(1, Ordering::Relaxed);
    let mut w = console::emergency();
    if depth > 0 {
        let _ = writeln!(
            w,
            "\n!!! patchbay: panic while handling a fatal error: {} !!!",
            info.message()
        );
        exit(ExitCode::Failure);
    }
    let _ = writeln!(w, "\n!!! patchbay: PANIC on CPU {} !!!", percpu::this().id);
    if let Some(l) = info.location() {
        let _ = writeln!(w, "  at       : {}:{}:{}", l.file(), l.line(), l.column());
    }
    let _ = writeln!(w, "  message  : {}", info.message());
    let _ = crate::exit::report_note(&mut w, None);
    let _ = unwind::print_backtrace(&mut w, None, unwind::current_fp());
    crate::exit::end_report(&mut w);
    exit(ExitCode::Failure)
}
