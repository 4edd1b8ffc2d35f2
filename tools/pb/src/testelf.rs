//! Test support: small ELF64 little-endian executables (program headers, sections, a symbol
//! table) described by an [`ElfSpec`] and written with `object`'s ELF writer, so the tests do not
//! depend on a cross toolchain.
//!
//! Used by the unit tests (`mod testelf`) and by `tests/qemu.rs` (through `#[path]`).

use object::{
    Endianness, elf,
    write::elf::{FileHeader, ProgramHeader, SectionHeader, SectionIndex, Sym, Writer},
};

/// `sh_flags` for an allocated, executable section.
pub const SHF_AX: u64 = elf::SHF_ALLOC.0 | elf::SHF_EXECINSTR.0;
/// `sh_flags` for an allocated, read-only section.
pub const SHF_A: u64 = elf::SHF_ALLOC.0;

/// File alignment of segment data (and `p_align`).
const SEGMENT_ALIGN: u64 = 16;
/// File alignment of a non-loaded section's data (and every `sh_addralign`).
const SECTION_ALIGN: u64 = 8;

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
    fn new(
        name: &str,
        value: u64,
        size: u64,
        kind: elf::SymbolType,
        section: Option<usize>,
    ) -> Self {
        SymbolSpec {
            name: name.into(),
            value,
            size,
            kind: kind.0,
            section,
        }
    }
    pub fn func(name: &str, value: u64, size: u64, section: Option<usize>) -> Self {
        Self::new(name, value, size, elf::STT_FUNC, section)
    }
    pub fn notype(name: &str, value: u64, size: u64, section: Option<usize>) -> Self {
        Self::new(name, value, size, elf::STT_NOTYPE, section)
    }
    pub fn object(name: &str, value: u64, size: u64, section: Option<usize>) -> Self {
        Self::new(name, value, size, elf::STT_OBJECT, section)
    }
    pub fn file(name: &str) -> Self {
        Self::new(name, 0, 0, elf::STT_FILE, None)
    }

    fn is_file(&self) -> bool {
        self.kind == elf::STT_FILE.0
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

/// Writes the ELF described by `spec`: the file header, one `PT_LOAD` program header per
/// segment, the segments' data, the non-loaded sections' data, `.symtab` (the null symbol, the
/// `STT_FILE` locals, then the rest as globals), `.strtab`, `.shstrtab` and the section headers
/// (null, `spec.sections` in order, then the three tables).
pub fn build(spec: &ElfSpec) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = Writer::new(Endianness::Little, true, &mut out);
    // The symbol table lists locals first; `sh_info` is the index of the first global.
    let symbols: Vec<&SymbolSpec> = spec
        .symbols
        .iter()
        .filter(|s| s.is_file())
        .chain(spec.symbols.iter().filter(|s| !s.is_file()))
        .collect();
    let num_local = 1 + spec.symbols.iter().filter(|s| s.is_file()).count() as u32;

    // Phase 1: reserve every index, name and file range, in file order.
    w.reserve_file_header();
    w.reserve_program_headers(spec.segments.len() as u32);
    let seg_offsets: Vec<u64> = spec
        .segments
        .iter()
        .map(|seg| w.reserve(seg.data.len() as u64, SEGMENT_ALIGN))
        .collect();
    // (sh_addr, sh_offset, sh_size) of each user section.
    let ranges: Vec<(u64, u64, u64)> = spec
        .sections
        .iter()
        .map(|sec| match &sec.placement {
            Placement::InSegment {
                segment,
                offset,
                size,
            } => {
                let seg = &spec.segments[*segment];
                (seg.vaddr + offset, seg_offsets[*segment] + offset, *size)
            }
            Placement::NonAlloc(data) => (
                0,
                w.reserve(data.len() as u64, SECTION_ALIGN),
                data.len() as u64,
            ),
        })
        .collect();
    let section_names: Vec<_> = spec
        .sections
        .iter()
        .map(|sec| w.add_section_name(sec.name.as_bytes()))
        .collect();
    let indices: Vec<SectionIndex> = spec
        .sections
        .iter()
        .map(|_| w.reserve_section_index())
        .collect();
    w.reserve_symtab_section_index();
    w.reserve_strtab_section_index();
    w.reserve_shstrtab_section_index();
    w.reserve_null_symbol_index();
    let names: Vec<_> = symbols
        .iter()
        .map(|sym| {
            let section = sym.section.filter(|_| !sym.is_file()).map(|i| indices[i]);
            w.reserve_symbol_index(section);
            w.add_string(sym.name.as_bytes())
        })
        .collect();
    w.reserve_symtab();
    w.reserve_strtab().expect("reserve .strtab");
    w.reserve_shstrtab().expect("reserve .shstrtab");
    w.reserve_section_headers();

    // Phase 2: write it all in the same order.
    w.write_file_header(&FileHeader {
        os_abi: elf::ELFOSABI_NONE,
        abi_version: 0,
        e_type: elf::ET_EXEC,
        e_machine: elf::Machine(spec.machine),
        e_entry: spec.entry,
        e_flags: elf::FileFlags(0),
    })
    .expect("write the file header");
    w.write_align_program_headers();
    for (seg, &offset) in spec.segments.iter().zip(&seg_offsets) {
        w.write_program_header(&ProgramHeader {
            p_type: elf::PT_LOAD,
            p_flags: elf::ProgramFlags(seg.flags),
            p_offset: offset,
            p_vaddr: seg.vaddr,
            p_paddr: seg.paddr,
            p_filesz: seg.data.len() as u64,
            p_memsz: seg.memsz.max(seg.data.len() as u64),
            p_align: SEGMENT_ALIGN,
        });
    }
    for seg in &spec.segments {
        w.write_align(SEGMENT_ALIGN);
        w.write(&seg.data);
    }
    for sec in &spec.sections {
        if let Placement::NonAlloc(data) = &sec.placement {
            w.write_align(SECTION_ALIGN);
            w.write(data);
        }
    }
    w.write_null_symbol();
    for (sym, &name) in symbols.iter().zip(&names) {
        let (bind, section, shndx) = match sym.section {
            _ if sym.is_file() => (elf::STB_LOCAL, None, elf::SHN_ABS),
            Some(i) => (elf::STB_GLOBAL, Some(indices[i].0), elf::SHN_UNDEF),
            None => (elf::STB_GLOBAL, None, elf::SHN_UNDEF),
        };
        w.write_symbol(&Sym {
            section,
            st_name: w.string_offset(Some(name)),
            st_info: elf::SymbolInfo::new(bind, elf::SymbolType(sym.kind)),
            st_other: elf::SymbolOther(0),
            st_shndx: shndx,
            st_value: sym.value,
            st_size: sym.size,
        });
    }
    w.write_strtab();
    w.write_shstrtab();
    w.write_null_section_header();
    for ((sec, &name), &(addr, offset, size)) in
        spec.sections.iter().zip(&section_names).zip(&ranges)
    {
        w.write_section_header(&SectionHeader {
            sh_name: w.section_name_offset(Some(name)),
            sh_type: elf::SHT_PROGBITS,
            sh_flags: elf::SectionFlags(sec.flags),
            sh_addr: addr,
            sh_offset: offset,
            sh_size: size,
            sh_link: 0,
            sh_info: 0,
            sh_addralign: SECTION_ALIGN,
            sh_entsize: 0,
        });
    }
    w.write_symtab_section_header(num_local);
    w.write_strtab_section_header();
    w.write_shstrtab_section_header();
    debug_assert_eq!(w.reserved_len(), w.len());
    out
}
