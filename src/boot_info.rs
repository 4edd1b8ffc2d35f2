//! Facts about this boot, gathered once from the entry registers and the DTB before anything
//! else runs, then read-only.
//!
//! QEMU passes the DTB's address in x0 when it boots a raw Image (not an ELF); the Raspberry Pi
//! firmware does the same for `kernel8.img`. Without a DTB the board's fallbacks apply and the
//! banner says so.

use core::cell::UnsafeCell;

use patchbay_pure::layout::Range;

pub use crate::bsp::Intc;
use crate::{arch::psci, bsp, percpu::MAX_CPUS};

/// Room for the model and the boot arguments (the Raspberry Pi firmware prepends ~300 bytes of
/// its own arguments to cmdline.txt).
const MAX_TEXT: usize = 1024;

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

/// How a secondary CPU is started (its DTB node's `enable-method`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnableMethod {
    /// The boot CPU, or a node without a method we know.
    None,
    /// PSCI `CPU_ON` through the `/psci` node's conduit (QEMU `virt`).
    Psci,
    /// The CPU polls this physical address (`cpu-release-addr`) for its entry point (the
    /// Raspberry Pis' firmware, QEMU `raspi3b`/`raspi4b`).
    SpinTable(u64),
}

/// One `/cpus/cpu@N` node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuNode {
    /// Its `reg`: the MPIDR_EL1 affinity fields.
    pub mpidr: u64,
    pub method: EnableMethod,
}

impl CpuNode {
    const BOOT: CpuNode = CpuNode {
        mpidr: 0,
        method: EnableMethod::None,
    };
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
    /// CPUs listed in the DTB (1 without a DTB); only the first [`MAX_CPUS`] are used.
    pub cpus: u32,
    /// The first [`BootInfo::cpus_used`] CPU nodes, in DTB order (logical CPU numbers).
    pub cpu_nodes: [CpuNode; MAX_CPUS],
    /// The interrupt controller (from the DTB; see also `bsp` for boards without one there).
    pub intc: Intc,
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
            cpu_nodes: [CpuNode::BOOT; MAX_CPUS],
            intc: Intc::None,
            model: FixedStr::new(),
            bootargs: FixedStr::new(),
            dtb_problem: None,
        }
    }

    /// CPUs the kernel uses: those the DTB lists, at most [`MAX_CPUS`].
    pub fn cpus_used(&self) -> usize {
        (self.cpus as usize).min(MAX_CPUS)
    }

    /// The CPU nodes the kernel uses, boot CPU first.
    pub fn cpu_nodes(&self) -> &[CpuNode] {
        &self.cpu_nodes[..self.cpus_used()]
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

    /// The clock mode the runner named (`patchbay.clock=`), if it named a known one.
    pub fn clock_mode(&self) -> Option<bsp::ClockMode> {
        self.bootarg(patchbay_wire::bootargs::CLOCK)
            .and_then(bsp::ClockMode::from_name)
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
    // Board bring-up the console depends on (pin muxing); MMU off, before any output.
    bsp::init_early();
    // SAFETY: boot CPU with the MMU off, as the caller guarantees.
    unsafe { read_dtb(info, dtb) };
    if !info.ram_from_dtb
        // SAFETY: as above.
        && let Some(ram) = unsafe { bsp::firmware_ram() }
    {
        info.ram = ram;
    }
}

/// The DTB part of [`record`].
///
/// # Safety
/// As [`record`].
unsafe fn read_dtb(info: &mut BootInfo, dtb: u64) {
    if dtb == 0 {
        info.dtb_problem = Some("no DTB passed in x0 (boot an Image/raw binary, not an ELF)");
        return;
    }
    // SAFETY: the boot loader placed a DTB at this address (the boot protocol); it is ours to
    // rewrite (nothing else reads it), and the MMU is off so plain accesses reach RAM.
    unsafe { strip_nops_in_place(dtb) };
    // SAFETY: the boot loader placed a DTB at this address (the boot protocol).
    let fdt = match unsafe { fdt::Fdt::from_ptr(dtb as *const u8) } {
        Ok(f) => f,
        Err(_) => {
            info.dtb_problem = Some("x0 does not point at a valid DTB");
            return;
        }
    };
    info.dtb = Range::new(dtb, dtb + fdt.total_size() as u64);
    // Firmware DTBs vary: look nodes up rather than use the `fdt` accessors that panic when a
    // node is missing.
    if let Some(r) = fdt
        .find_node("/memory")
        .and_then(|n| n.reg())
        .and_then(|mut regs| regs.next())
        && let Some(size) = r.size
    {
        let start = r.starting_address as u64;
        info.ram = Range::new(start, start + size as u64);
        info.ram_from_dtb = true;
    }
    if fdt.find_node("/cpus").is_some() {
        info.cpus = fdt.cpus().count().max(1) as u32;
        for (slot, cpu) in info.cpu_nodes.iter_mut().zip(fdt.cpus()) {
            let prop = |name| cpu.property(name).and_then(|p| p.as_usize());
            let method = cpu.property("enable-method").and_then(|p| p.as_str());
            *slot = CpuNode {
                mpidr: prop("reg").unwrap_or(0) as u64,
                method: match (method, prop("cpu-release-addr")) {
                    (Some("psci"), _) => EnableMethod::Psci,
                    (Some("spin-table"), Some(a)) => EnableMethod::SpinTable(a as u64),
                    _ => EnableMethod::None,
                },
            };
        }
    }
    if let Some(model) = fdt
        .find_node("/")
        .and_then(|n| n.property("model"))
        .and_then(|p| p.as_str())
    {
        info.model.set(model);
    }
    if fdt.find_node("/chosen").is_some()
        && let Some(args) = fdt.chosen().bootargs()
    {
        info.bootargs.set(args);
    }
    // Only a controller at the root: one inside a bus node (the Pi 4's GIC-400, under /soc) has
    // bus addresses the `fdt` crate does not translate; the board supplies that one.
    let regs = |compatible: &str| -> Option<(u64, u64)> {
        let node = fdt.find_node("/")?.children().find(|n| {
            n.compatible()
                .is_some_and(|c| c.all().any(|name| name == compatible))
        })?;
        let mut r = node.reg()?;
        let a = r.next()?.starting_address as u64;
        let b = r.next()?.starting_address as u64;
        Some((a, b))
    };
    if let Some((gicd, gicr)) = regs("arm,gic-v3") {
        info.intc = Intc::GicV3 { gicd, gicr };
    } else if let Some((gicd, gicc)) = regs("arm,cortex-a15-gic").or_else(|| regs("arm,gic-400")) {
        info.intc = Intc::GicV2 { gicd, gicc };
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

const FDT_MAGIC: u32 = 0xd00d_feed;
const FDT_BEGIN_NODE: u32 = 1;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;
/// Refuse to touch a "DTB" claiming to be larger than this.
const FDT_MAX: usize = 1 << 20;

/// Remove FDT_NOP tokens from the structure block of the DTB at `dtb`, in place.
///
/// Loaders that edit a DTB with libfdt leave NOPs where they deleted a node (QEMU does it to
/// every memory node it replaces; the Raspberry Pi firmware may, applying overlays), and the
/// `fdt` crate then fails to find the nodes after them.
///
/// # Safety
/// `dtb` is 0 or the address of a DTB in RAM that nothing else uses, MMU off.
unsafe fn strip_nops_in_place(dtb: u64) {
    let p = dtb as *mut u8;
    // SAFETY: the caller passes a DTB (at least its 40-byte header) or garbage; reading the
    // header is harmless either way, and only a valid magic leads to more.
    let header = unsafe { core::slice::from_raw_parts(p, 8) };
    let be = |b: &[u8], at: usize| u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    if be(header, 0) != FDT_MAGIC {
        return;
    }
    let total = be(header, 4) as usize;
    if !(40..=FDT_MAX).contains(&total) {
        return;
    }
    // SAFETY: a valid header says the blob is `total` bytes long, and it is ours (see above).
    let blob = unsafe { core::slice::from_raw_parts_mut(p, total) };
    let _ = strip_nops(blob);
}

/// [`strip_nops_in_place`] on a slice: compacts the structure block and shrinks its size in the
/// header. `None` (and the blob untouched or still valid) if the blob is malformed.
fn strip_nops(blob: &mut [u8]) -> Option<usize> {
    let be = |b: &[u8], at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
    };
    let off = be(blob, 8)? as usize;
    let size = be(blob, 36)? as usize;
    let end = off.checked_add(size).filter(|&e| e <= blob.len())?;
    let (mut read, mut write, mut removed) = (off, off, 0);
    while read < end {
        let token = be(blob, read)?;
        let len = match token {
            FDT_BEGIN_NODE => {
                let name = blob.get(read + 4..end)?;
                4 + (name.iter().position(|&b| b == 0)? + 1).next_multiple_of(4)
            }
            FDT_PROP => 12 + (be(blob, read + 4)? as usize).next_multiple_of(4),
            FDT_NOP => {
                read += 4;
                removed += 1;
                continue;
            }
            _ => 4,
        };
        if read + len > end {
            return None;
        }
        blob.copy_within(read..read + len, write);
        read += len;
        write += len;
        if token == FDT_END {
            break;
        }
    }
    blob[36..40].copy_from_slice(&((write - off) as u32).to_be_bytes());
    Some(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel_test;

    #[kernel_test]
    fn fdt_nops_are_stripped() {
        // Header (40 bytes) then: BEGIN "" NOP NOP PROP(len 3) BEGIN "a" END END FDT_END.
        let mut blob = [0u8; 40 + 60];
        let words: [u32; 15] = [
            FDT_BEGIN_NODE,
            0,
            FDT_NOP,
            FDT_NOP,
            FDT_PROP,
            3,
            0,
            0x6869_2100,
            FDT_BEGIN_NODE,
            0x6100_0000,
            2,
            2,
            FDT_END,
            0,
            0,
        ];
        for (i, w) in words.iter().enumerate() {
            blob[40 + 4 * i..44 + 4 * i].copy_from_slice(&w.to_be_bytes());
        }
        blob[0..4].copy_from_slice(&FDT_MAGIC.to_be_bytes());
        blob[8..12].copy_from_slice(&40u32.to_be_bytes());
        blob[36..40].copy_from_slice(&52u32.to_be_bytes());
        assert_eq!(strip_nops(&mut blob), Some(2));
        assert_eq!(&blob[36..40], &44u32.to_be_bytes());
        assert_eq!(&blob[48..52], &FDT_PROP.to_be_bytes());
        assert_eq!(&blob[80..84], &FDT_END.to_be_bytes());
        // Malformed: a property running past the block.
        blob[36..40].copy_from_slice(&16u32.to_be_bytes());
        assert_eq!(strip_nops(&mut blob), None);
    }
}
