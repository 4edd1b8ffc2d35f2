//! What the plugin needs from the kernel ELF: function symbols for reports, the publication
//! markers, the per-CPU array (which vCPU runs a callback) and the text as linked (the old word
//! of a code word before its first recorded store).

use object::{Object, ObjectSection, ObjectSymbol, SectionKind, SymbolKind};

/// The function the kernel calls once a change is published to every CPU (see
/// `src/arch/aarch64/cache.rs`): executing its entry is the publication mark.
pub const MARKER: &str = "patchbay_icache_published";
/// The per-CPU array (`src/percpu.rs`): TPIDR_EL1 points at the running CPU's slot, whose first
/// field is the CPU's number (demangled name, without the hash).
pub const PERCPU: &str = "patchbay::percpu::CPUS";

/// Function symbols sorted by address.
pub struct Symbols(Vec<(u64, u64, String)>);

impl Symbols {
    /// `name+0xoff`, or the bare address when no symbol covers it.
    pub fn describe(&self, addr: u64) -> String {
        let i = self.0.partition_point(|s| s.0 <= addr);
        match i.checked_sub(1).map(|i| &self.0[i]) {
            Some((start, size, name)) if addr < start + (*size).max(1) => {
                format!("{name}+{:#x}", addr - start)
            }
            _ => format!("{addr:#x}"),
        }
    }
}

/// The executable sections' bytes as linked, by address (the kernel runs identity-mapped, so
/// these are physical addresses too).
pub struct Text(Vec<(u64, Vec<u8>)>);

impl Text {
    /// The 4-byte word at `addr` as linked, if `addr` is in an executable section.
    pub fn word(&self, addr: u64) -> Option<u32> {
        let i = self.0.partition_point(|s| s.0 <= addr).checked_sub(1)?;
        let (start, bytes) = &self.0[i];
        let off = usize::try_from(addr - start).ok()?;
        let b = bytes.get(off..off + 4)?;
        Some(u32::from_le_bytes(b.try_into().ok()?))
    }
}

/// What [`load`] reads from the ELF.
pub struct Kernel {
    pub symbols: Symbols,
    pub markers: Vec<u64>,
    pub text: Text,
    /// Where [`PERCPU`] lies: `(address, size)`, if the kernel has it.
    pub percpu: Option<(u64, u64)>,
}

/// Symbols, the marker's address (none in a kernel without one) and text of the ELF at `path`.
pub fn load(path: &str) -> Result<Kernel, String> {
    let data = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let file = object::File::parse(&*data).map_err(|e| format!("{path}: {e}"))?;
    let mut syms: Vec<(u64, u64, String)> = file
        .symbols()
        .filter(|s| s.kind() == SymbolKind::Text && s.address() != 0)
        .filter_map(|s| {
            let name = s.name().ok()?;
            Some((
                s.address(),
                s.size(),
                format!("{:#}", rustc_demangle::demangle(name)),
            ))
        })
        .collect();
    syms.sort_unstable_by_key(|s| s.0);
    let percpu = file
        .symbols()
        .find(|s| {
            s.name()
                .is_ok_and(|n| format!("{:#}", rustc_demangle::demangle(n)) == PERCPU)
        })
        .map(|s| (s.address(), s.size()));
    let markers = file
        .symbols()
        .filter(|s| s.name() == Ok(MARKER))
        .map(|s| s.address())
        .collect();
    let mut text: Vec<(u64, Vec<u8>)> = file
        .sections()
        .filter(|s| s.kind() == SectionKind::Text)
        .filter_map(|s| Some((s.address(), s.data().ok()?.to_vec())))
        .collect();
    text.sort_unstable_by_key(|s| s.0);
    Ok(Kernel {
        symbols: Symbols(syms),
        markers,
        text: Text(text),
        percpu,
    })
}
