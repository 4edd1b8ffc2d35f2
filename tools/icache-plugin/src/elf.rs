//! What the plugin needs from the kernel ELF: function symbols for reports, and the
//! publication markers.

use object::{Object, ObjectSection, ObjectSymbol, SymbolKind};

/// The section holding one 64-bit address per publication marker (see `src/arch/aarch64/cache.rs`):
/// the instruction right after the point where a change is published to every CPU.
pub const MARKERS: &str = ".patchbay.icache_published";

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

/// Symbols and marker addresses of the ELF at `path`.
pub fn load(path: &str) -> Result<(Symbols, Vec<u64>), String> {
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
    let markers = match file.section_by_name(MARKERS) {
        Some(sec) => sec
            .data()
            .map_err(|e| format!("{path}: {MARKERS}: {e}"))?
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
            .collect(),
        None => Vec::new(),
    };
    Ok((Symbols(syms), markers))
}
