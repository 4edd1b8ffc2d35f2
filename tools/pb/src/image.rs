//! From the kernel ELF to the raw image QEMU (or the Raspberry Pi firmware) loads.
//!
//! [`build`] is the one function `pb run` and `pb objcopy` share:
//! 1. the `PT_LOAD` segments, placed by physical address, file contents only (`p_filesz`),
//!    gaps zero-filled, from the lowest load address to the end of the last segment's file data;
//! 2. if the ELF has a `.ksyms` section, the symbol table (see `patchbay_pure::ksyms`) written
//!    at that section's place in the image.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use object::elf;
use object::read::elf::{ElfFile64, FileHeader, ProgramHeader, SectionHeader, Sym};
use object::{LittleEndian, SectionIndex};

/// Name of the section the kernel reserves for the symbol table.
pub const KSYMS_SECTION: &str = ".ksyms";

/// Refuse to produce raw images larger than this: it means the segments are scattered (a
/// stray segment at address 0, say), which a linker script bug causes and no board can load.
const MAX_IMAGE_LEN: u64 = 256 << 20;

/// A raw image ready to be written out.
#[derive(Debug)]
pub struct Image {
    /// Physical address of the first byte.
    pub load_addr: u64,
    /// The image bytes.
    pub bytes: Vec<u8>,
    /// What was written into `.ksyms`, if the ELF has that section.
    pub ksyms: Option<KsymsFill>,
    /// The raw run directives (section `.patchbay.qemu`), if the ELF has them.
    pub directives: Option<Vec<u8>>,
}

/// Statistics of the symbol table written into `.ksyms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KsymsFill {
    /// Number of symbols written (after dedup).
    pub symbols: usize,
    /// Bytes used by the blob.
    pub used: usize,
    /// Size of the `.ksyms` reservation.
    pub capacity: usize,
}

/// A parsed, validated kernel ELF: 64-bit, little-endian, aarch64.
pub struct KernelElf<'data> {
    file: ElfFile64<'data, LittleEndian>,
}

const E: LittleEndian = LittleEndian;
/// Offsets in `e_ident`.
const EI_CLASS: usize = 4;
const EI_DATA: usize = 5;

impl<'data> KernelElf<'data> {
    /// Parses `data`, refusing anything that is not a little-endian ELF64 for aarch64.
    pub fn parse(data: &'data [u8]) -> Result<Self> {
        ensure!(
            data.len() >= 16 && data[..4] == *b"\x7fELF",
            "not an ELF file"
        );
        ensure!(
            data[EI_CLASS] == elf::ELFCLASS64.0,
            "not a 64-bit ELF (the kernel must be built for aarch64-unknown-none-softfloat)"
        );
        ensure!(
            data[EI_DATA] == elf::ELFDATA2LSB.0,
            "not a little-endian ELF"
        );
        let file = ElfFile64::<LittleEndian>::parse(data).context("malformed ELF")?;
        let machine = file.elf_header().e_machine(E);
        ensure!(
            machine == elf::EM_AARCH64,
            "not an aarch64 ELF (e_machine is {machine}); build the kernel with \
             --target aarch64-unknown-none-softfloat"
        );
        Ok(KernelElf { file })
    }

    /// The contents of a section, by name, if it exists.
    pub fn section_data(&self, name: &str) -> Result<Option<&'data [u8]>> {
        let table = self.file.elf_section_table();
        let Some((_, header)) = table.section_by_name(E, name.as_bytes()) else {
            return Ok(None);
        };
        let data = header
            .data(E, self.file.data())
            .with_context(|| format!("section {name} lies outside the file"))?;
        Ok(Some(data))
    }

    /// Loadable segments with file data: `(paddr, file offset, filesz)`.
    fn load_segments(&self) -> Result<Vec<(u64, u64, u64)>> {
        let mut segments = Vec::new();
        let mut any_load = false;
        for ph in self.file.elf_program_headers() {
            if ph.p_type(E) != elf::PT_LOAD {
                continue;
            }
            any_load = true;
            let (paddr, offset, filesz) = (ph.p_paddr(E), ph.p_offset(E), ph.p_filesz(E));
            if filesz == 0 {
                continue; // .bss-only: nothing to place in the image
            }
            ensure!(
                offset
                    .checked_add(filesz)
                    .is_some_and(|end| end <= self.file.data().len() as u64),
                "PT_LOAD segment at {paddr:#x} points outside the file"
            );
            ensure!(
                paddr.checked_add(filesz).is_some(),
                "PT_LOAD segment wraps around"
            );
            segments.push((paddr, offset, filesz));
        }
        ensure!(any_load, "the ELF has no PT_LOAD segment: nothing to load");
        ensure!(
            !segments.is_empty(),
            "the ELF's PT_LOAD segments hold no file data"
        );
        Ok(segments)
    }

    /// Steps 1 and 2: the raw image with the symbol table filled in.
    pub fn build_image(&self) -> Result<Image> {
        let data = self.file.data();
        let segments = self.load_segments()?;
        let start = segments.iter().map(|s| s.0).min().unwrap_or(0);
        let end = segments.iter().map(|s| s.0 + s.2).max().unwrap_or(0);
        let len = end - start;
        ensure!(
            len <= MAX_IMAGE_LEN,
            "the raw image would be {len:#x} bytes (segments span {start:#x}..{end:#x}); \
             check the linker script's PHDRS"
        );
        let mut bytes = vec![0u8; len as usize];
        for &(paddr, offset, filesz) in &segments {
            let at = (paddr - start) as usize;
            let src = &data[offset as usize..(offset + filesz) as usize];
            bytes[at..at + src.len()].copy_from_slice(src);
        }

        let ksyms = match self.ksyms_place(&segments)? {
            None => None,
            Some((at, capacity)) => {
                let symbols = self.symbols()?;
                let blob = patchbay_pure::ksyms::encode(&symbols);
                ensure!(
                    blob.len() <= capacity,
                    "symbol table needs {} bytes but {KSYMS_SECTION} holds {capacity}; \
                     raise the {KSYMS_SECTION} reservation in the kernel",
                    blob.len()
                );
                bytes[at..at + blob.len()].copy_from_slice(&blob);
                let count = patchbay_pure::ksyms::Ksyms::parse(&blob).map_or(0, |k| k.len());
                Some(KsymsFill {
                    symbols: count,
                    used: blob.len(),
                    capacity,
                })
            }
        };
        let directives = self
            .section_data(crate::directives::SECTION)?
            .map(<[u8]>::to_vec);
        Ok(Image {
            load_addr: start,
            bytes,
            ksyms,
            directives,
        })
    }

    /// Where `.ksyms` lies in the image: `(offset in image, size)`; `None` if there is no such
    /// section. An existing `.ksyms` that is not loaded is an error: the kernel would never see
    /// the table.
    fn ksyms_place(&self, segments: &[(u64, u64, u64)]) -> Result<Option<(usize, usize)>> {
        let table = self.file.elf_section_table();
        let Some((_, sh)) = table.section_by_name(E, KSYMS_SECTION.as_bytes()) else {
            return Ok(None);
        };
        let start = segments.iter().map(|s| s.0).min().unwrap_or(0);
        ensure!(
            sh.sh_flags(E).0 & elf::SHF_ALLOC.0 != 0,
            "section {KSYMS_SECTION} is not allocated (SHF_ALLOC); the kernel cannot read it"
        );
        ensure!(
            sh.sh_type(E) != elf::SHT_NOBITS,
            "section {KSYMS_SECTION} is NOBITS (NOLOAD); it must be a zero-filled loaded section"
        );
        let (offset, size) = (sh.sh_offset(E), sh.sh_size(E));
        let Some(&(paddr, seg_offset, _)) = segments
            .iter()
            .find(|&&(_, o, filesz)| offset >= o && offset.saturating_add(size) <= o + filesz)
        else {
            bail!("section {KSYMS_SECTION} is not inside the file data of a PT_LOAD segment");
        };
        let at = paddr - start + (offset - seg_offset);
        Ok(Some((at as usize, size as usize)))
    }

    /// The kernel's symbols for `.ksyms`: every defined `STT_FUNC` symbol, plus any other
    /// symbol of nonzero size in an executable section; names demangled without hash.
    pub fn symbols(&self) -> Result<Vec<(u64, u32, String)>> {
        let sections = self.file.elf_section_table();
        let symtab = self.file.elf_symbol_table();
        let mut out = Vec::new();
        for (index, sym) in symtab.enumerate().skip(1) {
            let kind = sym.st_type();
            let size = sym.st_size(E);
            if matches!(kind, elf::STT_SECTION | elf::STT_FILE | elf::STT_TLS) {
                continue;
            }
            let section = symtab
                .symbol_section(E, sym, index)
                .context("malformed symbol")?;
            let wanted = if kind == elf::STT_FUNC {
                !sym.is_undefined(E)
            } else {
                size != 0
                    && section
                        .and_then(|i: SectionIndex| sections.section(i).ok())
                        .is_some_and(|sh| sh.sh_flags(E).0 & elf::SHF_EXECINSTR.0 != 0)
            };
            if !wanted {
                continue;
            }
            let raw = symtab
                .symbol_name(E, sym)
                .context("malformed symbol name")?;
            if raw.is_empty() {
                continue;
            }
            let name = demangle(&String::from_utf8_lossy(raw));
            out.push((
                sym.st_value(E),
                u32::try_from(size).unwrap_or(u32::MAX),
                name,
            ));
        }
        Ok(out)
    }
}

/// Demangled Rust name without the hash (`{:#}`); other names unchanged.
pub fn demangle(name: &str) -> String {
    format!("{:#}", rustc_demangle::demangle(name))
}

/// Parses a kernel ELF and builds its raw image.
pub fn build_from_bytes(elf: &[u8]) -> Result<Image> {
    KernelElf::parse(elf)?.build_image()
}

/// Reads the kernel ELF at `path` and builds its raw image: the one path `pb run` and
/// `pb objcopy` share.
pub fn load(path: &Path) -> Result<Image> {
    let elf =
        fs::read(path).with_context(|| format!("cannot read kernel ELF {}", path.display()))?;
    let image = build_from_bytes(&elf).with_context(|| format!("{}", path.display()))?;
    if image.ksyms.is_some_and(|k| k.symbols == 0) {
        eprintln!(
            "pb: warning: {} has no function symbols (stripped?): {KSYMS_SECTION} is empty",
            path.display()
        );
    }
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testelf::{self, ElfSpec, Placement, SectionSpec, SegmentSpec, SymbolSpec};
    use patchbay_pure::ksyms::Ksyms;

    const TEXT: u64 = 0x4008_0000;
    const RODATA: u64 = 0x4008_2000;

    /// Two PT_LOAD segments with a gap, `.ksyms` in the second, a non-loaded directive section,
    /// and a symbol table with functions, data and noise.
    fn sample(ksyms_len: u64) -> ElfSpec {
        let text: Vec<u8> = (0..0x100u32).map(|i| (i as u8) | 1).collect();
        let mut ro = b"rodata!!".to_vec();
        ro.resize(8 + ksyms_len as usize, 0);
        ElfSpec {
            machine: elf::EM_AARCH64.0,
            entry: TEXT,
            segments: vec![
                SegmentSpec {
                    paddr: TEXT,
                    vaddr: TEXT,
                    data: text,
                    memsz: 0x100,
                    flags: 5,
                },
                // memsz > filesz: a .bss tail that must not appear in the image.
                SegmentSpec {
                    paddr: RODATA,
                    vaddr: RODATA,
                    data: ro,
                    memsz: 0x4000,
                    flags: 4,
                },
            ],
            sections: vec![
                SectionSpec::alloc(".text", 0, 0, 0x100, testelf::SHF_AX),
                SectionSpec::alloc(".rodata", 1, 0, 8, testelf::SHF_A),
                SectionSpec::alloc(".ksyms", 1, 8, ksyms_len, testelf::SHF_A),
                SectionSpec {
                    name: ".patchbay.qemu".into(),
                    placement: Placement::NonAlloc(b"expect_exit=3\n\0\0".to_vec()),
                    flags: 0,
                },
            ],
            symbols: vec![
                SymbolSpec::func("_start", TEXT, 0x40, Some(0)),
                SymbolSpec::func(
                    "_ZN8patchbay4main17h0123456789abcdefE",
                    TEXT + 0x40,
                    0x80,
                    Some(0),
                ),
                // An assembly label without .type but with .size: included.
                SymbolSpec::notype("vectors_common", TEXT + 0xc0, 0x40, Some(0)),
                // A mapping symbol: size 0, NOTYPE: excluded.
                SymbolSpec::notype("$x", TEXT, 0, Some(0)),
                // Data: excluded.
                SymbolSpec::object("GREETING", RODATA, 8, Some(1)),
                // Undefined function: excluded.
                SymbolSpec::func("extern_fn", 0, 0, None),
                SymbolSpec::file("main.rs"),
            ],
        }
    }

    #[test]
    fn raw_image_bytes_gap_and_ksyms() {
        let spec = sample(0x400);
        let elf = testelf::build(&spec);
        let image = build_from_bytes(&elf).unwrap();
        assert_eq!(image.load_addr, TEXT);
        // Up to the end of the second segment's file data, not its memsz.
        assert_eq!(image.bytes.len() as u64, RODATA - TEXT + 8 + 0x400);
        assert_eq!(image.bytes[..0x100], spec.segments[0].data[..]);
        assert!(
            image.bytes[0x100..(RODATA - TEXT) as usize]
                .iter()
                .all(|&b| b == 0),
            "gap"
        );
        let ro = (RODATA - TEXT) as usize;
        assert_eq!(&image.bytes[ro..ro + 8], b"rodata!!");

        let blob = &image.bytes[ro + 8..];
        let k = Ksyms::parse(blob).expect("the .ksyms blob parses");
        let names: Vec<&str> = k.iter().map(|s| s.name).collect();
        assert_eq!(names, ["_start", "patchbay::main", "vectors_common"]);
        let main = k.lookup(TEXT + 0x50).unwrap();
        assert_eq!(
            (main.name, main.offset_of(TEXT + 0x50)),
            ("patchbay::main", 0x10)
        );
        assert_eq!(k.lookup(TEXT + 0xff).unwrap().name, "vectors_common");
        assert_eq!(k.lookup(TEXT + 0x100), None);
        assert_eq!(k.find("_start").unwrap().size, 0x40);
        let fill = image.ksyms.unwrap();
        assert_eq!((fill.symbols, fill.capacity), (3, 0x400));
        assert_eq!(
            fill.used,
            16 + 3 * 16 + "_start\0patchbay::main\0vectors_common\0".len()
        );
        // The rest of the reservation stays zero.
        assert!(blob[fill.used..].iter().all(|&b| b == 0));
    }

    #[test]
    fn directive_section_is_readable() {
        let elf = testelf::build(&sample(0x100));
        let k = KernelElf::parse(&elf).unwrap();
        assert_eq!(
            k.section_data(".patchbay.qemu").unwrap().unwrap(),
            b"expect_exit=3\n\0\0"
        );
        assert_eq!(k.section_data(".nope").unwrap(), None);
    }

    #[test]
    fn ksyms_too_small() {
        let elf = testelf::build(&sample(32));
        let msg = format!("{:#}", build_from_bytes(&elf).unwrap_err());
        assert!(
            msg.contains("symbol table needs 101 bytes but .ksyms holds 32"),
            "{msg}"
        );
        assert!(msg.contains("raise the .ksyms reservation"), "{msg}");
    }

    #[test]
    fn no_ksyms_section() {
        let mut spec = sample(0x100);
        spec.sections.retain(|s| s.name != ".ksyms");
        let image = build_from_bytes(&testelf::build(&spec)).unwrap();
        assert!(image.ksyms.is_none());
        assert_eq!(
            image.directives.as_deref(),
            Some(&b"expect_exit=3\n\0\0"[..])
        );
        // The reservation bytes are just copied (zeros).
        assert!(
            image.bytes[(RODATA - TEXT) as usize + 8..]
                .iter()
                .all(|&b| b == 0)
        );
    }

    #[test]
    fn ksyms_must_be_loaded() {
        let mut spec = sample(0x100);
        for s in &mut spec.sections {
            if s.name == ".ksyms" {
                s.flags = 0;
            }
        }
        let msg = format!(
            "{:#}",
            build_from_bytes(&testelf::build(&spec)).unwrap_err()
        );
        assert!(msg.contains(".ksyms is not allocated"), "{msg}");
    }

    #[test]
    fn lowest_segment_first_even_if_listed_last() {
        let mut spec = sample(0x100);
        spec.segments.reverse();
        for s in &mut spec.sections {
            if let Placement::InSegment { segment, .. } = &mut s.placement {
                *segment = 1 - *segment;
            }
        }
        let image = build_from_bytes(&testelf::build(&spec)).unwrap();
        assert_eq!(image.load_addr, TEXT);
        assert_eq!(image.bytes[0], 1);
        assert_eq!(&image.bytes[(RODATA - TEXT) as usize..][..8], b"rodata!!");
    }

    #[test]
    fn refuses_other_machines_and_formats() {
        let mut spec = sample(0x100);
        spec.machine = elf::EM_X86_64.0;
        let msg = format!(
            "{:#}",
            build_from_bytes(&testelf::build(&spec)).unwrap_err()
        );
        assert!(msg.contains("not an aarch64 ELF"), "{msg}");

        let msg = format!(
            "{:#}",
            build_from_bytes(b"#!/bin/sh\necho hi\n").unwrap_err()
        );
        assert!(msg.contains("not an ELF file"), "{msg}");

        let mut elf32 = testelf::build(&sample(0x100));
        elf32[EI_CLASS] = elf::ELFCLASS32.0;
        let msg = format!("{:#}", build_from_bytes(&elf32).unwrap_err());
        assert!(msg.contains("not a 64-bit ELF"), "{msg}");

        let truncated = &testelf::build(&sample(0x100))[..100];
        assert!(build_from_bytes(truncated).is_err());
    }

    #[test]
    fn refuses_elf_without_pt_load() {
        let mut spec = sample(0x100);
        spec.segments.clear();
        spec.sections
            .retain(|s| matches!(s.placement, Placement::NonAlloc(_)));
        spec.symbols.clear();
        let msg = format!(
            "{:#}",
            build_from_bytes(&testelf::build(&spec)).unwrap_err()
        );
        assert!(msg.contains("no PT_LOAD"), "{msg}");
    }

    #[test]
    fn demangles_without_hash() {
        assert_eq!(
            demangle("_ZN8patchbay4main17h0123456789abcdefE"),
            "patchbay::main"
        );
        assert_eq!(demangle("_RNvCs1234_8patchbay4main"), "patchbay::main");
        assert_eq!(demangle("memcpy"), "memcpy");
    }
}
