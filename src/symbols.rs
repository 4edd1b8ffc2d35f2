//! The kernel's symbol table, for naming addresses in crash reports and backtraces.
//!
//! The linker reserves [`KSYMS_SIZE`] zero bytes in `.ksyms`; the host tool (`pb run`,
//! `pb objcopy`) writes the symbol table there when it turns the ELF into the bootable image
//! (format: `patchbay_pure::ksyms`). An image that was not prepared by the host tool simply has
//! no names.

use patchbay_pure::ksyms::{Ksyms, Symbol};

pub const KSYMS_SIZE: usize = 2 << 20;

#[used]
#[unsafe(link_section = ".ksyms")]
static KSYMS: [u8; KSYMS_SIZE] = [0; KSYMS_SIZE];

/// The table, if the host tool filled it in.
pub fn table() -> Option<Ksyms<'static>> {
    // The compiler believes KSYMS is all zeros; hide the pointer from it so the reads happen.
    let p = core::hint::black_box(&raw const KSYMS) as *const u8;
    // SAFETY: `p` points at the KSYMS static, KSYMS_SIZE bytes, never written at run time.
    let bytes = unsafe { core::slice::from_raw_parts(p, KSYMS_SIZE) };
    Ksyms::parse(bytes)
}

/// The symbol containing `addr`.
pub fn lookup(addr: u64) -> Option<Symbol<'static>> {
    table()?.lookup(addr)
}

/// Formats as ` <name+0xoff>` when the address has a name, nothing otherwise.
pub struct Sym(pub u64);

impl core::fmt::Display for Sym {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match lookup(self.0) {
            Some(s) => write!(f, " <{}+{:#x}>", s.name, self.0 - s.addr),
            None => Ok(()),
        }
    }
}
