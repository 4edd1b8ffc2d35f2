//! The patch-site table: built at boot by cross-checking the compiler's
//! `__patchable_function_entries` (one address per function compiled with patchable entries,
//! pointing at its first prefix NOP) against patchbay's own registry (`#[patchable]` records name,
//! address and argument count). Every registered function must have exactly one compiler entry
//! and every compiler entry must be registered; anything else means a site exists that patchbay
//! does not know about (or the reverse), and the kernel refuses to boot.
//!
//! Site layout (Linux arm64, `-fpatchable-function-entry=4,2`):
//!
//! ```text
//!   literal = func - 8 : nop ; nop   (8-aligned 64-bit slot)
//!   func + 0           : nop         (-> mov x9, x30)
//!   func + 4           : nop         (<-> bl target)
//! ```
//!
//! The hardened build puts `bti c` at `func` and the two entry words after it
//! ([`ENTRY_PAD`](crate::harden::ENTRY_PAD), see [`crate::harden`]); [`Site`]'s accessors and
//! [`BODY_OFFSET`] include it, and [`check_layout`] proves at boot that every site has it.
//!
//! # Which registers a site's arguments live in
//!
//! Every record carries the site's [`ArgRegs`], computed by `#[patchable]` from the signature:
//! the general registers the function may receive arguments in, whether x8 (the indirect result
//! location) is live at entry, and how many argument words its callers pass on the stack. A
//! trampoline that runs a handler before the body saves exactly those registers; an fexit
//! trampoline copies exactly those stack words. The kernel is built for general registers only
//! (`aarch64-unknown-none-softfloat`, FP/SIMD traps at EL1), so no argument is ever in v0–v7:
//! `f32`/`f64` travel in x registers like integers, and no trampoline saves an FP/SIMD register.

use alloc::vec::Vec;

use crate::{
    harden::{ENTRY_LANDING_PAD, ENTRY_PAD},
    insn,
};

/// Bytes from the compiler's entry (first prefix NOP) to the function symbol.
pub const PREFIX_BYTES: u64 = 8;

/// Bytes from a function's address to its body: the landing pad, if any, and the two entry
/// words. An armed site's `bl` leaves x30 = func + `BODY_OFFSET`.
pub const BODY_OFFSET: u64 = ENTRY_PAD + 8;

/// How one parameter is passed, as `#[patchable]` proves it from the type's spelling (and the
/// compiler then checks with a size assertion the macro emits next to the function).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgClass {
    /// One register: integers up to 64 bits, `bool`, `char`, `f32`/`f64` (general registers on
    /// this target), thin pointers and references, `Option<&T>`, `NonNull<T>`, `Box<T>`.
    Word,
    /// Two registers, passed as two independent scalars (rustc's "scalar pair"): `&[T]`, `&str`,
    /// `&mut [T]`, `*const [T]`, `&dyn Trait`, `Box<dyn Trait>`. The pair may be split between
    /// x7 and the stack.
    Pair,
    /// A 128-bit integer: an even-aligned register pair (x0/x1, x2/x3, …), or 16 aligned bytes
    /// on the stack once the registers run out (AAPCS64 C.9, as LLVM implements it for `i128`).
    Int128,
    /// Anything the macro cannot prove: aggregates by value, tuples, arrays, unknown paths.
    Unknown,
}

/// Where a stack argument count stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StackWords {
    /// Callers pass at most this many 8-byte words on the stack (an upper bound: copying a word
    /// too many reads the caller's own frame, which is harmless).
    Known(u8),
    /// A parameter of unknown class may land on the stack: its size there cannot be proved.
    Unknown,
}

/// The general registers a patchable function may receive its arguments in, and its stack
/// arguments (see the module docs). An over-estimate is always safe; an under-estimate would
/// let a handler clobber a live argument.
///
/// Stored in the registry's `arg_regs` word ([`ArgRegs::bits`]); the encoding is chosen so that a
/// plain count `n <= 8` means "x0..x(n-1), x8 dead, nothing on the stack", which is what a
/// function of `n` word-sized arguments returning in registers is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArgRegs {
    /// x0..x(regs-1) may hold arguments (`0..=8`).
    pub regs: u8,
    /// x8 may hold the address of the caller's result buffer (a value returned through memory:
    /// an aggregate larger than 16 bytes, or a return type the macro cannot prove).
    pub x8: bool,
    pub stack: StackWords,
}

/// Argument registers of AAPCS64 (x0..x7).
pub const ARG_REGS: u8 = 8;

impl ArgRegs {
    /// What a trampoline must assume of a signature it knows nothing about: x0..x8, stack unknown.
    pub const ALL: ArgRegs = ArgRegs {
        regs: ARG_REGS,
        x8: true,
        stack: StackWords::Unknown,
    };

    const REGS_MASK: u32 = 0xf;
    const X8_BIT: u32 = 1 << 4;
    const STACK_SHIFT: u32 = 8;
    const STACK_UNKNOWN_BIT: u32 = 1 << 16;

    /// Lay out `params` (in order) the way AAPCS64 and rustc do, taking the upper bound wherever
    /// the lowering is not certain; `ret_in_memory` says the return value may come back through
    /// memory, which makes x8 live.
    pub fn classify(params: &[ArgClass], ret_in_memory: bool) -> ArgRegs {
        // NGRN and NSAA of AAPCS64 §6.8.2, NSAA counted in words.
        let (mut ngrn, mut nsaa) = (0u32, 0u32);
        let (mut unknown, mut stack_unknown) = (false, false);
        let regs = u32::from(ARG_REGS);
        for &p in params {
            match p {
                ArgClass::Word if ngrn < regs => ngrn += 1,
                ArgClass::Word => nsaa += 1,
                // Split (x7 + one word) or not (two words): two words bound both.
                ArgClass::Pair if ngrn + 2 <= regs => ngrn += 2,
                ArgClass::Pair => {
                    ngrn = regs;
                    nsaa += 2;
                }
                ArgClass::Int128 | ArgClass::Unknown => {
                    // Bound an unknown parameter by the widest register use it can have (an
                    // even-aligned pair); by value it is at most 16 bytes, larger aggregates go by
                    // reference.
                    unknown |= p == ArgClass::Unknown;
                    let at = ngrn.next_multiple_of(2);
                    if at + 2 <= regs {
                        ngrn = at + 2;
                    } else {
                        ngrn = regs;
                        nsaa = nsaa.next_multiple_of(2) + 2;
                        stack_unknown |= p == ArgClass::Unknown;
                    }
                }
            }
        }
        if unknown {
            ngrn = regs;
        }
        ArgRegs {
            regs: ngrn as u8,
            x8: ret_in_memory || unknown,
            stack: match u8::try_from(nsaa) {
                Ok(w) if !stack_unknown => StackWords::Known(w),
                _ => StackWords::Unknown,
            },
        }
    }

    /// Registers a trampoline that runs a handler before the body saves (x0..x(regs-1), x8).
    pub const fn saved(self) -> u32 {
        self.regs as u32 + self.x8 as u32
    }

    /// The registry encoding: bits 0–3 `regs`, bit 4 `x8`, bits 8–15 known stack words, bit 16
    /// stack words unknown.
    pub const fn bits(self) -> u32 {
        let stack = match self.stack {
            StackWords::Known(w) => (w as u32) << Self::STACK_SHIFT,
            StackWords::Unknown => Self::STACK_UNKNOWN_BIT,
        };
        self.regs as u32 | if self.x8 { Self::X8_BIT } else { 0 } | stack
    }

    /// Decode [`bits`](Self::bits). A register count beyond 8 (never encoded) reads as
    /// [`ArgRegs::ALL`]'s registers: the safe side.
    pub const fn from_bits(bits: u32) -> ArgRegs {
        let regs = bits & Self::REGS_MASK;
        let (regs, x8) = if regs > ARG_REGS as u32 {
            (ARG_REGS, true)
        } else {
            (regs as u8, bits & Self::X8_BIT != 0)
        };
        ArgRegs {
            regs,
            x8,
            stack: if bits & Self::STACK_UNKNOWN_BIT != 0 {
                StackWords::Unknown
            } else {
                StackWords::Known((bits >> Self::STACK_SHIFT) as u8)
            },
        }
    }
}

/// One registry record, as `#[patchable]` emits it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Desc<'a> {
    pub func: u64,
    pub name: &'a str,
    /// The site's [`ArgRegs::bits`].
    pub arg_regs: u32,
}

/// A patch site.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Site<'a> {
    /// The function's address (its first entry NOP).
    pub func: u64,
    /// Full path, e.g. `patchbay::subjects::leaf`.
    pub name: &'a str,
    /// The registers and stack words the function's arguments occupy.
    pub arg_regs: ArgRegs,
}

impl Site<'_> {
    /// The 8-byte literal slot before the function (CALL_OPS ops pointer).
    pub fn literal(&self) -> u64 {
        self.func - PREFIX_BYTES
    }
    /// The word that becomes `mov x9, x30` (after the hardened build's `bti c`).
    pub fn entry(&self) -> u64 {
        self.func + ENTRY_PAD
    }
    /// The word toggled between `nop` and `bl`.
    pub fn call(&self) -> u64 {
        self.entry() + 4
    }
    /// Where the function body starts (the return address of the site's BL).
    pub fn body(&self) -> u64 {
        self.func + BODY_OFFSET
    }
    /// The last path component (`leaf`).
    pub fn short_name(&self) -> &str {
        self.name.rsplit("::").next().unwrap_or(self.name)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SiteTableError {
    /// The compiler emitted a patchable entry that no `#[patchable]` registered.
    UnregisteredEntry { entry: u64 },
    /// A registered function has no compiler entry (built without the attribute's codegen?).
    MissingEntry {
        name: alloc::string::String,
        func: u64,
    },
    /// The same function appears twice in one of the tables.
    Duplicate { func: u64 },
    /// The literal slot is not 8-aligned (function alignment flag missing).
    MisalignedLiteral { func: u64 },
    /// The function does not start as this build lays sites out: `found` where `expected`
    /// (`bti c` in the hardened build, the entry NOP in the plain one) should be — the kernel
    /// was built with branch protection but without the `harden` feature, or the reverse.
    Layout {
        func: u64,
        offset: u64,
        expected: u32,
        found: u32,
    },
}

impl core::fmt::Display for SiteTableError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SiteTableError::UnregisteredEntry { entry } => write!(
                f,
                "the compiler emitted a patchable entry at {entry:#x} (function {:#x}) that no #[patchable] registered; use #[patchable], not a bare #[patchable_function_entry]",
                entry + PREFIX_BYTES
            ),
            SiteTableError::MissingEntry { name, func } => write!(
                f,
                "#[patchable] function {name} at {func:#x} has no compiler patchable entry; was it built with the patchable_function_entry attribute?"
            ),
            SiteTableError::Duplicate { func } => {
                write!(f, "function {func:#x} is listed twice")
            }
            SiteTableError::MisalignedLiteral { func } => write!(
                f,
                "the literal slot of function {func:#x} is not 8-aligned; build with -Z min-function-alignment=8"
            ),
            SiteTableError::Layout {
                func,
                offset,
                expected,
                found,
            } => write!(
                f,
                "function {func:#x} + {offset} holds `{}` where this build's site layout has `{}`; build with `make HARDEN=1` (feature harden and -Z branch-protection=bti,pac-ret together) or with neither",
                insn::describe(*found, func + offset),
                insn::describe(*expected, func + offset)
            ),
        }
    }
}

/// Check that the site at `func` is laid out as this build expects, given its first words
/// (`words[i]` at `func + 4 i`, at least [`BODY_OFFSET`] / 4 of them, as compiled): the
/// hardened build's landing pad, then the two entry NOPs.
pub fn check_layout(func: u64, words: &[u32]) -> Result<(), SiteTableError> {
    let expected = ENTRY_LANDING_PAD.into_iter().chain([insn::NOP, insn::NOP]);
    for (i, expected) in expected.enumerate() {
        let found = words.get(i).copied().unwrap_or(0);
        if found != expected {
            return Err(SiteTableError::Layout {
                func,
                offset: i as u64 * 4,
                expected,
                found,
            });
        }
    }
    Ok(())
}

/// Build the site table (sorted by address) from the compiler's entries and the registry.
pub fn build<'a>(entries: &[u64], descs: &[Desc<'a>]) -> Result<Vec<Site<'a>>, SiteTableError> {
    let mut funcs: Vec<u64> = entries.iter().map(|e| e + PREFIX_BYTES).collect();
    funcs.sort_unstable();
    if let Some(w) = funcs.windows(2).find(|w| w[0] == w[1]) {
        return Err(SiteTableError::Duplicate { func: w[0] });
    }
    let mut sites: Vec<Site<'a>> = descs
        .iter()
        .map(|d| Site {
            func: d.func,
            name: d.name,
            arg_regs: ArgRegs::from_bits(d.arg_regs),
        })
        .collect();
    sites.sort_unstable_by_key(|s| s.func);
    if let Some(w) = sites.windows(2).find(|w| w[0].func == w[1].func) {
        return Err(SiteTableError::Duplicate { func: w[0].func });
    }
    // Merge-compare the two sorted lists.
    let (mut i, mut j) = (0, 0);
    while i < funcs.len() || j < sites.len() {
        match (funcs.get(i), sites.get(j)) {
            (Some(&f), Some(s)) if f == s.func => {
                if s.literal() % 8 != 0 {
                    return Err(SiteTableError::MisalignedLiteral { func: f });
                }
                i += 1;
                j += 1;
            }
            (Some(&f), Some(s)) if f < s.func => {
                return Err(SiteTableError::UnregisteredEntry {
                    entry: f - PREFIX_BYTES,
                });
            }
            (Some(&f), None) => {
                return Err(SiteTableError::UnregisteredEntry {
                    entry: f - PREFIX_BYTES,
                });
            }
            (_, Some(s)) => {
                return Err(SiteTableError::MissingEntry {
                    name: s.name.into(),
                    func: s.func,
                });
            }
            (None, None) => unreachable!(),
        }
    }
    Ok(sites)
}

/// Shell-style glob: `*` any run of characters, `?` one character; everything else literal.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Does `site` match `pattern`? Patterns with `::` match the full path, others the short name.
pub fn matches(site: &Site<'_>, pattern: &str) -> bool {
    if pattern.contains("::") {
        glob_match(pattern, site.name)
    } else {
        glob_match(pattern, site.short_name())
    }
}

/// The site whose function is at `addr` (binary search on the sorted table).
pub fn by_addr<'s, 'a>(sites: &'s [Site<'a>], addr: u64) -> Option<&'s Site<'a>> {
    sites
        .binary_search_by_key(&addr, |s| s.func)
        .ok()
        .map(|i| &sites[i])
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn d(func: u64, name: &str) -> Desc<'_> {
        Desc {
            func,
            name,
            arg_regs: 1,
        }
    }

    #[test]
    fn builds_sorted_and_cross_checked() {
        let descs = [d(0x1010, "a::two"), d(0x1000, "a::one")];
        let sites = build(&[0x1008, 0xff8], &descs).unwrap();
        assert_eq!(
            sites.iter().map(|s| s.func).collect::<Vec<_>>(),
            vec![0x1000, 0x1010]
        );
        assert_eq!(sites[0].literal(), 0xff8);
        assert_eq!(sites[0].call(), 0x1004);
        assert_eq!(sites[0].body(), 0x1008);
        assert_eq!(sites[1].short_name(), "two");
    }

    #[test]
    fn unregistered_entry_is_an_error() {
        assert_eq!(
            build(&[0xff8, 0x1ff8], &[d(0x1000, "a::one")]),
            Err(SiteTableError::UnregisteredEntry { entry: 0x1ff8 })
        );
        assert_eq!(
            build(&[0x7f8, 0xff8], &[d(0x1000, "a::one")]),
            Err(SiteTableError::UnregisteredEntry { entry: 0x7f8 })
        );
    }

    #[test]
    fn missing_entry_is_an_error() {
        let e = build(&[0xff8], &[d(0x1000, "a::one"), d(0x2000, "a::two")]).unwrap_err();
        assert_eq!(
            e,
            SiteTableError::MissingEntry {
                name: "a::two".into(),
                func: 0x2000
            }
        );
        assert!(alloc::format!("{e}").contains("a::two"));
    }

    #[test]
    fn duplicates_and_misalignment() {
        assert_eq!(
            build(&[0xff8, 0xff8], &[d(0x1000, "x")]),
            Err(SiteTableError::Duplicate { func: 0x1000 })
        );
        assert_eq!(
            build(&[0x1000], &[d(0x1008 - 4 + 4, "x")]).map(|_| ()),
            Ok(())
        );
        assert_eq!(
            build(&[0x1004], &[d(0x100c, "x")]),
            Err(SiteTableError::MisalignedLiteral { func: 0x100c })
        );
    }

    #[test]
    fn empty_tables_are_fine() {
        assert_eq!(build(&[], &[]), Ok(vec![]));
    }

    #[test]
    fn globs() {
        assert!(glob_match("gen_*", "gen_0001"));
        assert!(glob_match("gen_00?1", "gen_0001"));
        assert!(!glob_match("gen_00?1", "gen_0012"));
        assert!(glob_match("*", ""));
        assert!(glob_match("*leaf*", "my_leaf_fn"));
        assert!(!glob_match("leaf", "leaf2"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        let s = Site {
            func: 0x1000,
            name: "patchbay::subjects::leaf",
            arg_regs: ArgRegs::from_bits(0),
        };
        assert!(matches(&s, "leaf"));
        assert!(matches(&s, "patchbay::subjects::*"));
        assert!(!matches(&s, "subjects::leaf"));
    }

    use ArgClass::{Int128, Pair, Unknown, Word};

    fn regs(regs: u8, x8: bool, stack: u8) -> ArgRegs {
        ArgRegs {
            regs,
            x8,
            stack: StackWords::Known(stack),
        }
    }

    #[test]
    fn word_arguments_take_one_register_each_then_the_stack() {
        for n in 0..=8 {
            assert_eq!(
                ArgRegs::classify(&vec![Word; n], false),
                regs(n as u8, false, 0)
            );
        }
        assert_eq!(ArgRegs::classify(&[Word; 9], false), regs(8, false, 1));
        assert_eq!(ArgRegs::classify(&[Word; 12], false), regs(8, false, 4));
        assert_eq!(ArgRegs::classify(&[Word; 13], true), regs(8, true, 5));
    }

    #[test]
    fn fat_pointers_take_two_registers_and_may_split() {
        assert_eq!(ArgRegs::classify(&[Pair], false), regs(2, false, 0));
        assert_eq!(
            ArgRegs::classify(&[Word, Pair, Word], false),
            regs(4, false, 0)
        );
        // x7 free: split or not, at most two words on the stack.
        assert_eq!(ArgRegs::classify(&[Word; 7], false), regs(7, false, 0));
        let mut p = vec![Word; 7];
        p.push(Pair);
        assert_eq!(ArgRegs::classify(&p, false), regs(8, false, 2));
    }

    #[test]
    fn int128_is_an_even_aligned_pair() {
        // u64, u128: x0, then x2/x3 (x1 skipped).
        assert_eq!(ArgRegs::classify(&[Word, Int128], false), regs(4, false, 0));
        assert_eq!(
            ArgRegs::classify(&[Word, Word, Word, Int128, Word], false),
            regs(7, false, 0)
        );
        // Seven words then u128: x7 is skipped, 16 aligned bytes on the stack.
        let mut p = vec![Word; 7];
        p.push(Int128);
        assert_eq!(ArgRegs::classify(&p, false), regs(8, false, 2));
        // A word on the stack first: the u128 is aligned up to the next 16 bytes.
        let mut p = vec![Word; 9];
        p.push(Int128);
        assert_eq!(ArgRegs::classify(&p, false), regs(8, false, 4));
    }

    #[test]
    fn unknown_means_x0_to_x8_and_an_unprovable_stack() {
        let all_in_regs = regs(8, true, 0);
        assert_eq!(ArgRegs::classify(&[Unknown], false), all_in_regs);
        assert_eq!(
            ArgRegs::classify(&[Word, Unknown, Word], false),
            all_in_regs
        );
        assert_eq!(ArgRegs::classify(&[Unknown; 4], false), all_in_regs);
        // Past the registers, its stack size cannot be proved.
        assert_eq!(ArgRegs::classify(&[Unknown; 5], false), ArgRegs::ALL);
        let mut p = vec![Word; 8];
        p.push(Unknown);
        assert_eq!(ArgRegs::classify(&p, false).stack, StackWords::Unknown);
    }

    #[test]
    fn a_return_through_memory_makes_x8_live() {
        assert_eq!(ArgRegs::classify(&[], true), regs(0, true, 0));
        assert_eq!(ArgRegs::classify(&[Pair], true).saved(), 3);
        assert_eq!(ArgRegs::ALL.saved(), 9);
    }

    #[test]
    fn the_registry_encoding_round_trips_and_plain_counts_mean_words() {
        for n in 0..=8u32 {
            assert_eq!(ArgRegs::from_bits(n), regs(n as u8, false, 0));
        }
        for r in [
            regs(3, true, 0),
            regs(8, false, 4),
            regs(8, true, 255),
            ArgRegs::ALL,
            ArgRegs::classify(&[Unknown; 5], false),
        ] {
            assert_eq!(ArgRegs::from_bits(r.bits()), r);
        }
        // Never encoded, read on the safe side.
        assert_eq!(ArgRegs::from_bits(0xf), regs(8, true, 0));
        let s = Site {
            func: 0x1000,
            name: "x",
            arg_regs: regs(2, true, 0),
        };
        assert_eq!(s.arg_regs.saved(), 3);
    }

    #[test]
    fn the_layout_check_wants_this_builds_first_words() {
        let nop = insn::NOP;
        let (good, flipped): (&[u32], &[u32]) = if crate::harden::HARDENED {
            (&[insn::BTI_C, nop, nop], &[nop, nop, insn::PACIASP])
        } else {
            (&[nop, nop, insn::PACIASP], &[insn::BTI_C, nop, nop])
        };
        assert_eq!(check_layout(0x1000, good), Ok(()));
        let err = check_layout(0x1000, flipped).unwrap_err();
        assert!(matches!(err, SiteTableError::Layout { offset, .. } if offset < BODY_OFFSET));
        assert!(format!("{err}").contains("HARDEN=1"));
        // An armed entry is not a compiled one.
        let armed: Vec<u32> = ENTRY_LANDING_PAD
            .into_iter()
            .chain([insn::MOV_X9_X30, nop])
            .collect();
        assert!(check_layout(0x1000, &armed).is_err());
        let s = Site {
            func: 0x1000,
            name: "f",
            arg_regs: ArgRegs::from_bits(0),
        };
        assert_eq!(s.call(), s.entry() + 4);
        assert_eq!(s.body(), s.func + BODY_OFFSET);
        assert_eq!(s.literal(), 0x1000 - 8);
    }

    #[test]
    fn lookup_by_address() {
        let sites = build(&[0xff8, 0x1ff8], &[d(0x1000, "a"), d(0x2000, "b")]).unwrap();
        assert_eq!(by_addr(&sites, 0x2000).unwrap().name, "b");
        assert!(by_addr(&sites, 0x2004).is_none());
    }
}
