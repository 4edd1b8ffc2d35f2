//! The console kernel (`make console`): describe the machine, check that tracing can be
//! attached, recorded and removed with text restored, then a shell on the serial line.
#![no_std]
#![no_main]

use patchbay::{
    exit::{ExitCode, exit},
    patch::sites,
    println, shell, system,
};

// `pb console` and `pb run` boot it with QEMU's serial on stdio; no timeout: a person types.
patchbay::qemu_directives!("timeout=0");

#[unsafe(no_mangle)]
fn kernel_main() -> ! {
    system::summary();
    println!("sites: {} patchable functions", sites::all().len());
    match shell::self_check() {
        Ok(()) => println!("self-check: ok (attach, record, detach; text restored)"),
        Err(what) => {
            println!("self-check: FAILED: {what}");
            exit(ExitCode::Failure)
        }
    }
    shell::run()
}
