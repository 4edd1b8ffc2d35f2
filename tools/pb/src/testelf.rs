//! Test support: writes small ELF64 little-endian executables by hand (file header, program
//! headers, sections, a symbol table), so the tests do not depend on a cross toolchain.
//!
//! Used by the unit tests (`mod testelf`) and by `tests/qemu.rs` (through `#[path]`).

/// `sh_flags` for an allocated, executable section.
pub const SHF_AX: u64 = 0x2 | 0x4;
/// `sh_flags` for an allocated, read-only section.
pub const SHF_A: u64 = 0x2;

const EHDR: usize = 64;
const PHDR: usize = 56;
const SHDR: usize = 64;
const SYM: usize = 24;

/// One `PT_LOAD` segment; its file data is `data`.
pub struct SegmentSpec {
    pub paddr: u64,
    pub vaddr: u64,
    pub data: Vec<u8>,
    pub memsz: u64,
    /// `p_flags` (PF_X = 1, PF_W = 2, PF_R = 4).
    pub flags: u32,
}

/// Where a section's bytes are.
pub enum Placement {
    /// Part of a segment's data: `size` bytes from `offset` in segment `segment`.
    InSegment {
        segment: usize,
        offset: u64,
        size: u64,
    },
    /// Not loaded; its own bytes.
    NonAlloc(Vec<u8>),
}

pub struct SectionSpec {
    pub name: String,
    pub placement: Placement,
    pub flags: u64,
}

impl SectionSpec {
    pub fn alloc(name: &str, segment: usize, offset: u64, size: u64, flags: u64) -> Self {
        SectionSpec {
            name: name.into(),
            placement: Placement::InSegment {
                segment,
                offset,
                size,
            },
            flags,
        }
    }
}

pub struct SymbolSpec {
    pub name: String,
    pub value: u64,
    pub size: u64,
    /// `STT_*`.
    pub kind: u8,
    /// Index into `ElfSpec::sections`; `None` for undefined (or `STT_FILE`: SHN_ABS).
    pub section: Option<usize>,
}

impl SymbolSpec {
    fn new(name: &str, value: u64, size: u64, kind: u8, section: Option<usize>) -> Self {
        SymbolSpec {
            name: name.into(),
            value,
            size,
            kind,
            section,
        }
    }
    pub fn func(name: &str, value: u64, size: u64, section: Option<usize>) -> Self {
        Self::new(name, value, size, 2, section)
    }
    pub fn notype(name: &str, value: u64, size: u64, section: Option<usize>) -> Self {
        Self::new(name, value, size, 0, section)
    }
    pub fn object(name: &str, value: u64, size: u64, section: Option<usize>) -> Self {
        Self::new(name, value, size, 1, section)
    }
    pub fn file(name: &str) -> Self {
        Self::new(name, 0, 0, 4, None)
    }
}

pub struct ElfSpec {
    /// `e_machine` (EM_AARCH64 = 183).
    pub machine: u16,
    pub entry: u64,
    pub segments: Vec<SegmentSpec>,
    pub sections: Vec<SectionSpec>,
    pub symbols: Vec<SymbolSpec>,
}

fn align(buf: &mut Vec<u8>, to: usize) {
    while !buf.len().is_multiple_of(to) {
        buf.push(0);
    }
}

fn put16(buf: &mut Vec<u8>, v: u16) {
    buf.extend_from_slice(&v.to_le_bytes());
}
fn put32(buf: &mut Vec<u8>, v: u32) {
    buf.extend_from_slice(&v.to_le_bytes());
}
fn put64(buf: &mut Vec<u8>, v: u64) {
    buf.extend_from_slice(&v.to_le_bytes());
}

/// Adds `name` to a string table, returning its offset.
fn add_str(table: &mut Vec<u8>, name: &str) -> u32 {
    let off = table.len() as u32;
    table.extend_from_slice(name.as_bytes());
    table.push(0);
    off
}

#[allow(clippy::too_many_arguments)]
fn shdr(
    out: &mut Vec<u8>,
    name: u32,
    kind: u32,
    flags: u64,
    addr: u64,
    offset: u64,
    size: u64,
    link: u32,
    info: u32,
    entsize: u64,
) {
    put32(out, name);
    put32(out, kind);
    put64(out, flags);
    put64(out, addr);
    put64(out, offset);
    put64(out, size);
    put32(out, link);
    put32(out, info);
    put64(out, 8);
    put64(out, entsize);
}

/// Writes the ELF described by `spec`.
pub fn build(spec: &ElfSpec) -> Vec<u8> {
    let phoff = EHDR;
    let mut out = vec![0u8; EHDR + PHDR * spec.segments.len()];

    // Segment data.
    let mut seg_offsets = Vec::new();
    for seg in &spec.segments {
        align(&mut out, 16);
        seg_offsets.push(out.len() as u64);
        out.extend_from_slice(&seg.data);
    }
    // Non-allocated section data.
    let mut sec_ranges = Vec::new(); // (addr, offset, size)
    for sec in &spec.sections {
        match &sec.placement {
            Placement::InSegment {
                segment,
                offset,
                size,
            } => {
                let seg = &spec.segments[*segment];
                sec_ranges.push((seg.vaddr + offset, seg_offsets[*segment] + offset, *size));
            }
            Placement::NonAlloc(data) => {
                align(&mut out, 8);
                sec_ranges.push((0, out.len() as u64, data.len() as u64));
                out.extend_from_slice(data);
            }
        }
    }

    // Symbol table: the null symbol, locals (FILE), then globals.
    let mut strtab = vec![0u8];
    let mut ordered: Vec<&SymbolSpec> = spec.symbols.iter().filter(|s| s.kind == 4).collect();
    let first_global = 1 + ordered.len() as u32;
    ordered.extend(spec.symbols.iter().filter(|s| s.kind != 4));
    align(&mut out, 8);
    let symtab_off = out.len() as u64;
    out.extend_from_slice(&[0u8; SYM]);
    for sym in ordered {
        put32(&mut out, add_str(&mut strtab, &sym.name));
        let bind = if sym.kind == 4 { 0 } else { 1 }; // STB_LOCAL / STB_GLOBAL
        out.push((bind << 4) | sym.kind);
        out.push(0);
        let shndx = match (sym.kind, sym.section) {
            (4, _) => 0xfff1, // SHN_ABS
            (_, Some(i)) => (i + 1) as u16,
            (_, None) => 0,
        };
        put16(&mut out, shndx);
        put64(&mut out, sym.value);
        put64(&mut out, sym.size);
    }
    let symtab_size = out.len() as u64 - symtab_off;
    let strtab_off = out.len() as u64;
    out.extend_from_slice(&strtab);

    let mut shstrtab = vec![0u8];
    let names: Vec<u32> = spec
        .sections
        .iter()
        .map(|s| add_str(&mut shstrtab, &s.name))
        .collect();
    let symtab_name = add_str(&mut shstrtab, ".symtab");
    let strtab_name = add_str(&mut shstrtab, ".strtab");
    let shstrtab_name = add_str(&mut shstrtab, ".shstrtab");
    let shstrtab_off = out.len() as u64;
    out.extend_from_slice(&shstrtab);

    // Section headers: null, user sections, .symtab, .strtab, .shstrtab.
    align(&mut out, 8);
    let shoff = out.len() as u64;
    let n_user = spec.sections.len() as u32;
    let (symtab_idx, strtab_idx, shstrtab_idx) = (n_user + 1, n_user + 2, n_user + 3);
    out.extend_from_slice(&[0u8; SHDR]);
    for ((sec, &name), &(addr, offset, size)) in spec.sections.iter().zip(&names).zip(&sec_ranges) {
        shdr(&mut out, name, 1, sec.flags, addr, offset, size, 0, 0, 0); // SHT_PROGBITS
    }
    shdr(
        &mut out,
        symtab_name,
        2,
        0,
        0,
        symtab_off,
        symtab_size,
        strtab_idx,
        first_global,
        24,
    );
    shdr(
        &mut out,
        strtab_name,
        3,
        0,
        0,
        strtab_off,
        strtab.len() as u64,
        0,
        0,
        0,
    );
    shdr(
        &mut out,
        shstrtab_name,
        3,
        0,
        0,
        shstrtab_off,
        shstrtab.len() as u64,
        0,
        0,
        0,
    );
    let shnum = (shstrtab_idx + 1) as u16;
    debug_assert_eq!(symtab_idx, n_user + 1);

    // File header.
    let mut h = Vec::with_capacity(EHDR);
    h.extend_from_slice(b"\x7fELF");
    h.extend_from_slice(&[2, 1, 1, 0]); // ELFCLASS64, ELFDATA2LSB, EV_CURRENT, ELFOSABI_NONE
    h.extend_from_slice(&[0; 8]);
    put16(&mut h, 2); // ET_EXEC
    put16(&mut h, spec.machine);
    put32(&mut h, 1);
    put64(&mut h, spec.entry);
    put64(
        &mut h,
        if spec.segments.is_empty() {
            0
        } else {
            phoff as u64
        },
    );
    put64(&mut h, shoff);
    put32(&mut h, 0);
    put16(&mut h, EHDR as u16);
    put16(&mut h, PHDR as u16);
    put16(&mut h, spec.segments.len() as u16);
    put16(&mut h, SHDR as u16);
    put16(&mut h, shnum);
    put16(&mut h, shstrtab_idx as u16);
    out[..EHDR].copy_from_slice(&h);

    // Program headers.
    let mut p = Vec::new();
    for (seg, &offset) in spec.segments.iter().zip(&seg_offsets) {
        put32(&mut p, 1); // PT_LOAD
        put32(&mut p, seg.flags);
        put64(&mut p, offset);
        put64(&mut p, seg.vaddr);
        put64(&mut p, seg.paddr);
        put64(&mut p, seg.data.len() as u64);
        put64(&mut p, seg.memsz.max(seg.data.len() as u64));
        put64(&mut p, 16);
    }
    out[phoff..phoff + p.len()].copy_from_slice(&p);
    out
}
