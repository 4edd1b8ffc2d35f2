//! Facts about this boot, gathered once from the entry registers and the DTB before anything
//! else runs, then read-only.
//!
//! QEMU passes the DTB's address in x0 when it boots a raw Image (not an ELF); the Raspberry Pi
//! firmware does the same for `kernel8.img`. Without a DTB the board's fallbacks apply and the
//! banner says so.

use core::cell::UnsafeCell;

use patchbay_pure::layout::Range;

use crate::{arch::psci, bsp};

const MAX_TEXT: usize = 128;

/// A small fixed-capacity string (no heap exists when the DTB is read).
#[derive(Clone, Copy)]
pub struct FixedStr {
    len: usize,
    buf: [u8; MAX_TEXT],
}

impl FixedStr {
    const fn new() -> Self {
        FixedStr {
            len: 0,
            buf: [0; MAX_TEXT],
        }
    }
    fn set(&mut self, s: &str) {
        // Truncate at a char boundary so the stored bytes stay valid UTF-8.
        let mut n = s.len().min(MAX_TEXT);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        self.buf[..n].copy_from_slice(&s.as_bytes()[..n]);
        self.len = n;
    }
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

#[derive(Clone, Copy)]
pub struct BootInfo {
    /// Exception level the kernel was entered at (2 or 1).
    pub entry_el: u8,
    /// Where the DTB is; empty when none was passed.
    pub dtb: Range,
    /// First memory bank.
    pub ram: Range,
    /// Did the RAM size come from the DTB (or the board fallback)?
    pub ram_from_dtb: bool,
    /// CPUs listed in the DTB (1 without a DTB).
    pub cpus: u32,
    pub model: FixedStr,
    pub bootargs: FixedStr,
    /// Why the DTB was not used, when it was not.
    pub dtb_problem: Option<&'static str>,
}

impl BootInfo {
    const fn empty() -> Self {
        BootInfo {
            entry_el: 0,
            dtb: Range::new(0, 0),
            ram: bsp::FALLBACK_RAM,
            ram_from_dtb: false,
            cpus: 1,
            model: FixedStr::new(),
            bootargs: FixedStr::new(),
            dtb_problem: None,
        }
    }

    /// The value of `key=value` in the boot arguments.
    pub fn bootarg(&self, key: &str) -> Option<&str> {
        self.bootargs
            .as_str()
            .split_ascii_whitespace()
            .find_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                (k == key).then_some(v)
            })
    }
}

struct Cell(UnsafeCell<BootInfo>);
// SAFETY: written only by `record`, on the boot CPU, before any other CPU runs or any reader
// exists; read-only afterwards.
unsafe impl Sync for Cell {}

static INFO: Cell = Cell(UnsafeCell::new(BootInfo::empty()));

/// This boot's facts.
pub fn get() -> &'static BootInfo {
    // SAFETY: see `Cell`: no writer exists once `record` has returned.
    unsafe { &*INFO.0.get() }
}

/// Parse the DTB at `dtb` (physical address, may be 0) and record the boot facts.
///
/// # Safety
/// Boot CPU only, once, before anything calls [`get`]; `dtb` is 0 or what the loader passed in x0.
pub unsafe fn record(dtb: u64, entry_el: u64) {
    // SAFETY: the caller guarantees exclusive access (see `Cell`).
    let info = unsafe { &mut *INFO.0.get() };
    info.entry_el = entry_el as u8;
    if dtb == 0 {
        info.dtb_problem = Some("no DTB passed in x0 (boot an Image/raw binary, not an ELF)");
        return;
    }
    // SAFETY: the boot loader placed a DTB at this address (the boot protocol).
    let fdt = match unsafe { fdt::Fdt::from_ptr(dtb as *const u8) } {
        Ok(f) => f,
        Err(_) => {
            info.dtb_problem = Some("x0 does not point at a valid DTB");
            return;
        }
    };
    info.dtb = Range::new(dtb, dtb + fdt.total_size() as u64);
    if let Some(r) = fdt.memory().regions().next()
        && let Some(size) = r.size
    {
        let start = r.starting_address as u64;
        info.ram = Range::new(start, start + size as u64);
        info.ram_from_dtb = true;
    }
    info.cpus = fdt.cpus().count().max(1) as u32;
    info.model.set(fdt.root().model());
    if let Some(args) = fdt.chosen().bootargs() {
        info.bootargs.set(args);
    }
    let method = fdt
        .find_node("/psci")
        .and_then(|n| n.property("method"))
        .and_then(|p| p.as_str());
    psci::set_conduit(match method {
        Some("hvc") => psci::Conduit::Hvc,
        Some("smc") => psci::Conduit::Smc,
        _ => psci::Conduit::None,
    });
}
