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

use alloc::vec::Vec;

/// Bytes from the compiler's entry (first prefix NOP) to the function symbol.
pub const PREFIX_BYTES: u64 = 8;

/// One registry record, as `#[patchable]` emits it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Desc<'a> {
    pub func: u64,
    pub name: &'a str,
    pub nargs: u32,
}

/// A patch site.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Site<'a> {
    /// The function's address (its first entry NOP).
    pub func: u64,
    /// Full path, e.g. `patchbay::subjects::leaf`.
    pub name: &'a str,
    pub nargs: u32,
}

impl Site<'_> {
    /// The 8-byte literal slot before the function (CALL_OPS ops pointer).
    pub fn literal(&self) -> u64 {
        self.func - PREFIX_BYTES
    }
    /// The word that becomes `mov x9, x30`.
    pub fn entry(&self) -> u64 {
        self.func
    }
    /// The word toggled between `nop` and `bl`.
    pub fn call(&self) -> u64 {
        self.func + 4
    }
    /// Where the function body starts (the return address of the site's BL).
    pub fn body(&self) -> u64 {
        self.func + 8
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
        }
    }
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
            nargs: d.nargs,
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
            nargs: 1,
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
            nargs: 0,
        };
        assert!(matches(&s, "leaf"));
        assert!(matches(&s, "patchbay::subjects::*"));
        assert!(!matches(&s, "subjects::leaf"));
    }

    #[test]
    fn lookup_by_address() {
        let sites = build(&[0xff8, 0x1ff8], &[d(0x1000, "a"), d(0x2000, "b")]).unwrap();
        assert_eq!(by_addr(&sites, 0x2000).unwrap().name, "b");
        assert!(by_addr(&sites, 0x2004).is_none());
    }
}
