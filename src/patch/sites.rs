//! The site table: every `#[patchable]` function, cross-checked at boot against the compiler.
//!
//! `#[patchable]` emits a [`SiteDesc`] into `.patchbay.sites`; the compiler emits one address per
//! patchable function into `__patchable_function_entries`. [`init`] builds the table with
//! `patchbay_pure::sites::build`, which refuses any mismatch (a site the registry does not know,
//! or a registered function without compiler support) — the kernel then does not boot.
//!
//! The machinery itself (trampolines, handlers, the poke path, the bench harness, exception
//! paths) is never `#[patchable]`, so it can never be patched.

use alloc::vec::Vec;

use patchbay_pure::sites::{self, Desc};
pub use patchbay_pure::sites::{Site, SiteTableError};

use super::PatchError;
use crate::memory::Once;

/// One registry record, written by `#[patchable]` into `.patchbay.sites`.
#[repr(C)]
pub struct SiteDesc {
    pub func: *const (),
    pub name: &'static str,
    /// The function's `ArgRegs::bits` (the registers and stack words its arguments occupy).
    pub arg_regs: u32,
}

// SAFETY: a SiteDesc is immutable static data; the function pointer is only read as an address.
unsafe impl Sync for SiteDesc {}

unsafe extern "C" {
    static __patchbay_sites_start: u8;
    static __patchbay_sites_end: u8;
    static __patchable_entries_start: u64;
    static __patchable_entries_end: u64;
}

/// The registry as linked.
pub fn registry() -> &'static [SiteDesc] {
    let start = (&raw const __patchbay_sites_start).cast::<SiteDesc>();
    let end = (&raw const __patchbay_sites_end).cast::<SiteDesc>();
    // SAFETY: the linker script brackets `.patchbay.sites`, an array of SiteDesc statics (each
    // 8-aligned, size a multiple of 8, so they are contiguous).
    unsafe { core::slice::from_raw_parts(start, end.offset_from(start) as usize) }
}

/// The compiler's entries as linked: one address per patchable function (its first prefix NOP).
pub fn compiler_entries() -> &'static [u64] {
    let start = &raw const __patchable_entries_start;
    let end = &raw const __patchable_entries_end;
    // SAFETY: the linker script brackets `__patchable_function_entries`, an array of u64.
    unsafe { core::slice::from_raw_parts(start, end.offset_from(start) as usize) }
}

static TABLE: Once<Vec<Site<'static>>> = Once::new();

/// Build the table. A mismatch between registry and compiler is a boot failure.
///
/// # Safety
/// Once, during single-CPU boot, with the heap up.
pub unsafe fn init() {
    let descs: Vec<Desc<'static>> = registry()
        .iter()
        .map(|d| Desc {
            func: d.func as u64,
            name: d.name,
            arg_regs: d.arg_regs,
        })
        .collect();
    // Every site must also start as this build lays sites out (`bti c` first when hardened).
    let checked = sites::build(compiler_entries(), &descs).and_then(|t| {
        t.iter().try_for_each(|s| {
            // SAFETY: a site's first words are compiled text, mapped readable, not yet patched.
            let words = unsafe {
                core::slice::from_raw_parts(s.func as *const u32, (sites::BODY_OFFSET / 4) as usize)
            };
            sites::check_layout(s.func, words)
        })?;
        Ok(t)
    });
    match checked {
        // SAFETY: single-CPU boot (caller).
        Ok(t) => unsafe { TABLE.set(t) },
        Err(e) => {
            let func = match e {
                SiteTableError::UnregisteredEntry { entry } => entry + sites::PREFIX_BYTES,
                SiteTableError::MissingEntry { func, .. }
                | SiteTableError::Duplicate { func }
                | SiteTableError::MisalignedLiteral { func }
                | SiteTableError::Layout { func, .. } => func,
            };
            panic!("site table: {e} [function{}]", crate::symbols::Sym(func))
        }
    }
}

/// All sites, sorted by address.
pub fn all() -> &'static [Site<'static>] {
    TABLE.get().map(|t| t.as_slice()).unwrap_or(&[])
}

/// Index of a site in [`all`]: O(1) for a reference into the table (what every lookup returns),
/// a binary search for a copy.
pub fn index_of(site: &Site<'_>) -> Option<usize> {
    let table = all();
    let offset = (site as *const Site<'_> as usize).wrapping_sub(table.as_ptr() as usize);
    let i = offset / core::mem::size_of::<Site<'_>>();
    if offset.is_multiple_of(core::mem::size_of::<Site<'_>>()) && i < table.len() {
        return Some(i);
    }
    table.binary_search_by_key(&site.func, |s| s.func).ok()
}

/// The site whose function is at `addr`.
pub fn by_addr(addr: u64) -> Result<&'static Site<'static>, PatchError> {
    sites::by_addr(all(), addr).ok_or(PatchError::NotASite { addr })
}

/// The site named exactly `name` (full path, or the short name if that is unique).
pub fn by_name(name: &str) -> Result<&'static Site<'static>, PatchError> {
    let full = all().iter().find(|s| s.name == name);
    let short = || {
        let mut it = all().iter().filter(|s| s.short_name() == name);
        let first = it.next();
        if it.next().is_some() { None } else { first }
    };
    full.or_else(short).ok_or_else(|| PatchError::NoSuchSite {
        pattern: name.into(),
    })
}

/// Sites matching a glob (`gen_*`, `patchbay::subjects::*`).
pub fn glob(pattern: &str) -> impl Iterator<Item = &'static Site<'static>> + '_ {
    all().iter().filter(move |s| sites::matches(s, pattern))
}
