//! The kernel symbol table blob: what the host tool writes into the image's `.ksyms` section so
//! that the kernel's crash reporter can print `symbol+0xoff` for an address.
//!
//! The kernel reserves a fixed-size, zero-filled, loaded section `.ksyms`. Before booting,
//! `pb run` / `pb objcopy` fill it with a table built from the ELF's own symbol table. An image
//! that was not filled (e.g. loaded straight from the ELF) holds only zeros, and [`Ksyms::parse`]
//! returns `None` for it.
//!
//! # Format (version 1, every integer little-endian)
//!
//! ```text
//! offset              size      field
//! 0                   4         magic      b"KSYM"
//! 4                   4         version    u32 = 1
//! 8                   4         count      u32: number of entries
//! 12                  4         strtab_len u32: bytes in the string table
//! 16                  16*count  entries, sorted by addr (ascending):
//!                                 +0  u64 addr      start address of the symbol
//!                                 +8  u32 size      size in bytes (0: unknown, matches only addr)
//!                                 +12 u32 name_off  offset of the name in the string table
//! 16+16*count         strtab_len string table: names, each UTF-8 and NUL-terminated
//! ```
//!
//! Names are demangled Rust paths without the hash suffix (`patchbay::exception::report`).
//! Anything after the string table (the rest of the reserved section) is ignored.
//!
//! [`Ksyms::parse`] validates the whole blob once (header, bounds, order, names), so that the
//! accessors afterwards cannot fail, and never panics whatever the input.

/// The first four bytes of a filled blob.
pub const MAGIC: [u8; 4] = *b"KSYM";
/// The format version this module reads and writes.
pub const VERSION: u32 = 1;
/// Size of the header in bytes.
pub const HEADER_LEN: usize = 16;
/// Size of one entry in bytes.
pub const ENTRY_LEN: usize = 16;

/// How many entries [`Ksyms::lookup`] inspects backwards from the nearest preceding start, to find
/// a symbol that contains an address shadowed by later zero-size (or nested) symbols.
const MAX_BACKSCAN: usize = 16;

/// One symbol of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Symbol<'a> {
    /// Demangled name, without hash.
    pub name: &'a str,
    /// Start address.
    pub addr: u64,
    /// Size in bytes; 0 when unknown.
    pub size: u32,
}

impl Symbol<'_> {
    /// Offset of `addr` from the start of this symbol (0 when `addr` is below the start).
    pub fn offset_of(&self, addr: u64) -> u64 {
        addr.saturating_sub(self.addr)
    }

    /// Whether `addr` lies in `[addr, addr + size)`; a size-0 symbol contains only its start.
    pub fn contains(&self, addr: u64) -> bool {
        if self.size == 0 {
            addr == self.addr
        } else {
            addr >= self.addr && addr - self.addr < u64::from(self.size)
        }
    }
}

/// A validated view of a symbol table blob.
#[derive(Clone, Copy, Debug)]
pub struct Ksyms<'a> {
    /// The `count * ENTRY_LEN` bytes of entries.
    entries: &'a [u8],
    /// The string table.
    strtab: &'a [u8],
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let b = bytes.get(at..at.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Some(u64::from_le_bytes(a))
}

/// The NUL-terminated UTF-8 name starting at `off` in `strtab`, if well formed.
fn name_at(strtab: &[u8], off: usize) -> Option<&str> {
    let rest = strtab.get(off..)?;
    let len = rest.iter().position(|&b| b == 0)?;
    core::str::from_utf8(&rest[..len]).ok()
}

impl<'a> Ksyms<'a> {
    /// Parses and validates a blob.
    ///
    /// Returns `None` when the blob has no magic (e.g. all zeros: the image was not filled by the
    /// host tool), has another version, or is malformed in any way (truncated, entries out of
    /// order, a name offset out of bounds, a name without NUL or not UTF-8). Never panics.
    pub fn parse(blob: &'a [u8]) -> Option<Ksyms<'a>> {
        if blob.get(..4)? != MAGIC {
            return None;
        }
        if read_u32(blob, 4)? != VERSION {
            return None;
        }
        let count = usize::try_from(read_u32(blob, 8)?).ok()?;
        let strtab_len = usize::try_from(read_u32(blob, 12)?).ok()?;
        let entries_len = count.checked_mul(ENTRY_LEN)?;
        let strtab_start = HEADER_LEN.checked_add(entries_len)?;
        let strtab_end = strtab_start.checked_add(strtab_len)?;
        let entries = blob.get(HEADER_LEN..strtab_start)?;
        let strtab = blob.get(strtab_start..strtab_end)?;
        let table = Ksyms { entries, strtab };

        let mut prev = 0u64;
        for i in 0..count {
            let at = i * ENTRY_LEN;
            let addr = read_u64(entries, at)?;
            let name_off = usize::try_from(read_u32(entries, at + 12)?).ok()?;
            if addr < prev {
                return None;
            }
            prev = addr;
            name_at(strtab, name_off)?;
        }
        Some(table)
    }

    /// Number of symbols.
    pub fn len(&self) -> usize {
        self.entries.len() / ENTRY_LEN
    }

    /// Whether the table has no symbols.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entry `i`; `None` only when out of range (entries were validated by `parse`).
    fn get(&self, i: usize) -> Option<Symbol<'a>> {
        let at = i.checked_mul(ENTRY_LEN)?;
        let addr = read_u64(self.entries, at)?;
        let size = read_u32(self.entries, at + 8)?;
        let name_off = usize::try_from(read_u32(self.entries, at + 12)?).ok()?;
        let name = name_at(self.strtab, name_off).unwrap_or("?");
        Some(Symbol { name, addr, size })
    }

    fn addr_at(&self, i: usize) -> u64 {
        read_u64(self.entries, i * ENTRY_LEN).unwrap_or(u64::MAX)
    }

    /// The symbol containing `addr`: `addr` in `[start, start + size)`, where a symbol of size 0
    /// matches only its exact start. When several symbols contain `addr`, the one starting
    /// closest below it wins. Binary search, then a short backward scan.
    pub fn lookup(&self, addr: u64) -> Option<Symbol<'a>> {
        // Number of entries whose start is <= addr.
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.addr_at(mid) <= addr {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        (lo.saturating_sub(MAX_BACKSCAN)..lo)
            .rev()
            .filter_map(|i| self.get(i))
            .find(|s| s.contains(addr))
    }

    /// The first symbol named exactly `name` (linear scan).
    pub fn find(&self, name: &str) -> Option<Symbol<'a>> {
        self.iter().find(|s| s.name == name)
    }

    /// All symbols, in address order.
    pub fn iter(&self) -> impl Iterator<Item = Symbol<'a>> + 'a {
        let table = *self;
        (0..table.len()).filter_map(move |i| table.get(i))
    }
}

/// Encodes a symbol table blob from `(addr, size, name)` triples.
///
/// The input may be in any order: entries are sorted by address (then name), and entries with an
/// identical `(addr, name)` are merged (keeping the largest size). Identical names share one
/// string. A NUL inside a name is replaced by `?`.
///
/// # Panics
/// If the table has more than `u32::MAX` entries or its string table exceeds `u32::MAX` bytes.
#[cfg(any(test, feature = "std"))]
pub fn encode(symbols: &[(u64, u32, String)]) -> Vec<u8> {
    use std::collections::HashMap;

    let mut sorted: Vec<(u64, u32, &str)> = symbols
        .iter()
        .map(|(a, s, n)| (*a, *s, n.as_str()))
        .collect();
    sorted.sort_by(|x, y| (x.0, x.2).cmp(&(y.0, y.2)).then(y.1.cmp(&x.1)));
    // Sorted with the largest size first within an identical (addr, name): keep that one.
    sorted.dedup_by(|later, kept| later.0 == kept.0 && later.2 == kept.2);

    let mut strtab: Vec<u8> = Vec::new();
    let mut offsets: HashMap<&str, u32> = HashMap::new();
    let mut entries: Vec<u8> = Vec::with_capacity(sorted.len() * ENTRY_LEN);
    for &(addr, size, name) in &sorted {
        let off = *offsets.entry(name).or_insert_with(|| {
            let off = u32::try_from(strtab.len()).expect("ksyms string table exceeds 4 GiB");
            strtab.extend(name.bytes().map(|b| if b == 0 { b'?' } else { b }));
            strtab.push(0);
            off
        });
        entries.extend_from_slice(&addr.to_le_bytes());
        entries.extend_from_slice(&size.to_le_bytes());
        entries.extend_from_slice(&off.to_le_bytes());
    }

    let count = u32::try_from(sorted.len()).expect("more than u32::MAX symbols");
    let strtab_len = u32::try_from(strtab.len()).expect("ksyms string table exceeds 4 GiB");
    let mut blob = Vec::with_capacity(HEADER_LEN + entries.len() + strtab.len());
    blob.extend_from_slice(&MAGIC);
    blob.extend_from_slice(&VERSION.to_le_bytes());
    blob.extend_from_slice(&count.to_le_bytes());
    blob.extend_from_slice(&strtab_len.to_le_bytes());
    blob.extend_from_slice(&entries);
    blob.extend_from_slice(&strtab);
    blob
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syms(list: &[(u64, u32, &str)]) -> Vec<(u64, u32, String)> {
        list.iter()
            .map(|&(a, s, n)| (a, s, n.to_string()))
            .collect()
    }

    fn sample() -> Vec<u8> {
        encode(&syms(&[
            (0x4008_0000, 0x40, "_start"),
            (0x4008_0100, 0x80, "patchbay::main"),
            (0x4008_0200, 0x10, "core::panicking::panic"),
        ]))
    }

    #[test]
    fn round_trip() {
        let input = syms(&[
            (0x1000, 0x10, "a"),
            (0x2000, 0x20, "b::c"),
            (0x3000, 0, "ünïcode::fn"),
        ]);
        let blob = encode(&input);
        let k = Ksyms::parse(&blob).unwrap();
        assert_eq!(k.len(), 3);
        assert!(!k.is_empty());
        let back: Vec<(u64, u32, String)> = k
            .iter()
            .map(|s| (s.addr, s.size, s.name.to_string()))
            .collect();
        assert_eq!(back, input);
        assert_eq!(&blob[..4], b"KSYM");
        assert_eq!(u32::from_le_bytes(blob[4..8].try_into().unwrap()), 1);
        assert_eq!(u32::from_le_bytes(blob[8..12].try_into().unwrap()), 3);
        let strtab_len = u32::from_le_bytes(blob[12..16].try_into().unwrap()) as usize;
        assert_eq!(blob.len(), HEADER_LEN + 3 * ENTRY_LEN + strtab_len);
    }

    #[test]
    fn trailing_zero_fill_is_ignored() {
        let mut blob = sample();
        blob.resize(4096, 0);
        let k = Ksyms::parse(&blob).unwrap();
        assert_eq!(k.len(), 3);
        assert_eq!(k.lookup(0x4008_0110).unwrap().name, "patchbay::main");
    }

    #[test]
    fn lookup_start_middle_end() {
        let blob = sample();
        let k = Ksyms::parse(&blob).unwrap();
        let main = k.lookup(0x4008_0100).unwrap();
        assert_eq!(main.name, "patchbay::main");
        assert_eq!(main.offset_of(0x4008_0100), 0);
        let mid = k.lookup(0x4008_0140).unwrap();
        assert_eq!(mid, main);
        assert_eq!(mid.offset_of(0x4008_0140), 0x40);
        let last = k.lookup(0x4008_017f).unwrap();
        assert_eq!(last.name, "patchbay::main");
        assert_eq!(last.offset_of(0x4008_017f), 0x7f);
        // One past the end, in a gap, before the first and after the last: no symbol.
        assert_eq!(k.lookup(0x4008_0180), None);
        assert_eq!(k.lookup(0x4008_00ff), None);
        assert_eq!(k.lookup(0x4007_ffff), None);
        assert_eq!(k.lookup(0), None);
        assert_eq!(k.lookup(0x4008_0210), None);
        assert_eq!(k.lookup(u64::MAX), None);
        assert_eq!(
            k.lookup(0x4008_020f).unwrap().name,
            "core::panicking::panic"
        );
        assert_eq!(k.lookup(0x4008_0000).unwrap().name, "_start");
    }

    #[test]
    fn size_zero_symbols_match_only_their_start() {
        let blob = encode(&syms(&[
            (0x100, 0, "label"),
            (0x200, 0x100, "func"),
            (0x240, 0, "inner_label"),
        ]));
        let k = Ksyms::parse(&blob).unwrap();
        assert_eq!(k.lookup(0x100).unwrap().name, "label");
        assert_eq!(k.lookup(0x101), None);
        assert_eq!(k.lookup(0xff), None);
        assert_eq!(k.lookup(0x240).unwrap().name, "inner_label");
        // Past the zero-size label, the enclosing function still matches.
        let f = k.lookup(0x244).unwrap();
        assert_eq!(f.name, "func");
        assert_eq!(f.offset_of(0x244), 0x44);
        assert_eq!(k.lookup(0x300), None);
    }

    #[test]
    fn unsorted_input_and_duplicates() {
        let blob = encode(&syms(&[
            (0x300, 0x10, "c"),
            (0x100, 0x10, "a"),
            (0x200, 0x10, "b"),
            (0x100, 0x08, "a"),
            (0x100, 0x10, "a_alias"),
        ]));
        let k = Ksyms::parse(&blob).unwrap();
        let all: Vec<(u64, u32, &str)> = k.iter().map(|s| (s.addr, s.size, s.name)).collect();
        assert_eq!(
            all,
            [
                (0x100, 0x10, "a"),
                (0x100, 0x10, "a_alias"),
                (0x200, 0x10, "b"),
                (0x300, 0x10, "c")
            ]
        );
        assert_eq!(k.lookup(0x205).unwrap().name, "b");
        assert_eq!(k.find("c").unwrap().addr, 0x300);
        assert_eq!(k.find("a_alias").unwrap().size, 0x10);
        assert_eq!(k.find("nope"), None);
    }

    #[test]
    fn identical_names_share_a_string() {
        let blob = encode(&syms(&[
            (0x100, 4, "{{closure}}"),
            (0x200, 4, "{{closure}}"),
        ]));
        let strtab_len = u32::from_le_bytes(blob[12..16].try_into().unwrap());
        assert_eq!(strtab_len as usize, "{{closure}}".len() + 1);
        let k = Ksyms::parse(&blob).unwrap();
        assert_eq!(k.lookup(0x202).unwrap().name, "{{closure}}");
    }

    #[test]
    fn empty_table() {
        let blob = encode(&[]);
        assert_eq!(blob.len(), HEADER_LEN);
        let k = Ksyms::parse(&blob).unwrap();
        assert!(k.is_empty());
        assert_eq!(k.len(), 0);
        assert_eq!(k.lookup(0), None);
        assert_eq!(k.lookup(u64::MAX), None);
        assert_eq!(k.find(""), None);
        assert_eq!(k.iter().count(), 0);
    }

    #[test]
    fn unfilled_or_foreign_blobs_are_none() {
        assert!(Ksyms::parse(&[]).is_none());
        assert!(Ksyms::parse(&[0; 4096]).is_none());
        assert!(Ksyms::parse(b"KSY").is_none());
        assert!(Ksyms::parse(b"KSYM").is_none());
        let mut wrong_version = sample();
        wrong_version[4] = 2;
        assert!(Ksyms::parse(&wrong_version).is_none());
    }

    #[test]
    fn truncated_blobs_are_none() {
        let blob = sample();
        for len in 0..blob.len() {
            assert!(Ksyms::parse(&blob[..len]).is_none(), "truncated to {len}");
        }
        assert!(Ksyms::parse(&blob).is_some());
    }

    #[test]
    fn malformed_fields_are_none() {
        let base = sample();
        let strtab_len = u32::from_le_bytes(base[12..16].try_into().unwrap());
        // Huge count / strtab_len: no overflow, no panic.
        let mut b = base.clone();
        b[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Ksyms::parse(&b).is_none());
        let mut b = base.clone();
        b[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Ksyms::parse(&b).is_none());
        // Name offset out of the string table.
        let mut b = base.clone();
        b[HEADER_LEN + 12..HEADER_LEN + 16].copy_from_slice(&strtab_len.to_le_bytes());
        assert!(Ksyms::parse(&b).is_none());
        // Entries out of order.
        let mut b = base.clone();
        b[HEADER_LEN..HEADER_LEN + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(Ksyms::parse(&b).is_none());
        // A name without its NUL (last byte of the string table).
        let mut b = base.clone();
        let last = HEADER_LEN + 3 * ENTRY_LEN + strtab_len as usize - 1;
        b[last] = b'x';
        assert!(Ksyms::parse(&b).is_none());
        // A name that is not UTF-8.
        let mut b = base;
        b[HEADER_LEN + 3 * ENTRY_LEN] = 0xff;
        assert!(Ksyms::parse(&b).is_none());
    }

    #[test]
    fn garbage_never_panics() {
        // A small deterministic PRNG (xorshift64*), so the test needs no dependency.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_f491_4f6c_dd1d)
        };
        let valid = sample();
        for round in 0..20_000 {
            let len = (next() % 160) as usize;
            let mut blob: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            // Half of the rounds start from a valid header so the deeper checks run too.
            if round % 2 == 0 {
                let n = blob.len().min(valid.len());
                blob[..n].copy_from_slice(&valid[..n]);
                for _ in 0..(next() % 4) {
                    if !blob.is_empty() {
                        let i = (next() as usize) % blob.len();
                        blob[i] = next() as u8;
                    }
                }
            } else if blob.len() >= 8 {
                blob[..4].copy_from_slice(&MAGIC);
                blob[4..8].copy_from_slice(&VERSION.to_le_bytes());
            }
            if let Some(k) = Ksyms::parse(&blob) {
                for s in k.iter() {
                    let _ = k.lookup(s.addr);
                    let _ = k.lookup(s.addr.wrapping_add(u64::from(s.size)));
                    let _ = k.find(s.name);
                }
                let _ = k.lookup(next());
            }
        }
    }

    #[test]
    fn symbol_helpers() {
        let s = Symbol {
            name: "f",
            addr: 0x1000,
            size: 0x10,
        };
        assert!(s.contains(0x1000));
        assert!(s.contains(0x100f));
        assert!(!s.contains(0x1010));
        assert!(!s.contains(0xfff));
        assert_eq!(s.offset_of(0x1008), 8);
        assert_eq!(s.offset_of(0x10), 0);
        let z = Symbol {
            name: "z",
            addr: u64::MAX,
            size: 0,
        };
        assert!(z.contains(u64::MAX));
        let top = Symbol {
            name: "t",
            addr: u64::MAX - 1,
            size: 0x10,
        };
        assert!(top.contains(u64::MAX));
    }
}
