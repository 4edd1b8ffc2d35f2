//! The list dispatcher's table: which registered tracers run for a traced function, found at a
//! cost of one load, one compare and one branch per tracer passed over.
//!
//! Most tracers trace one function. Those are *keyed* by its address and kept sorted, ending in
//! a sentinel whose key (`u64::MAX`) is above every function address:
//!
//! ```text
//!   scan:  while entry.key <  ip: next        -- ldr, cmp, b.lo: the only per-tracer cost
//!   run:   while entry.key == ip: run it, next
//! ```
//!
//! The sentinel ends both loops, so neither needs a bounds check, and the scan stops at the first
//! key above `ip`: tracers of later functions are never even loaded. Tracers whose filter is
//! wider (every function, or several) are *wide*: kept in registration order and tested with
//! their own filter before the keyed ones run. Among tracers of one function the registration
//! order is kept (a stable sort).
//!
//! ```
//! use patchbay_pure::dispatch::Table;
//! let t = Table::build([(Some(0x2000), 'b'), (None, 'w'), (Some(0x1000), 'a'), (Some(0x2000), 'c')], ' ');
//! assert_eq!(t.wide(), &['w']);
//! let mut run = Vec::new();
//! t.for_each_keyed(0x2000, |&c| run.push(c));
//! assert_eq!(run, ['b', 'c']);
//! ```

use alloc::vec::Vec;

/// One keyed entry. `repr(C)`: key first, so the scan loads one word per entry.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keyed<T> {
    pub key: u64,
    pub item: T,
}

/// The key of the sentinel that ends the keyed entries (above every function address).
pub const SENTINEL: u64 = u64::MAX;

/// The wide tracers and the sorted, sentinel-terminated keyed ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table<T> {
    wide: Vec<T>,
    /// Sorted by key; the last entry, and only it, has key [`SENTINEL`] (an invariant the
    /// unchecked scan in [`Table::for_each_keyed`] relies on; only [`Table::build`] makes one).
    keyed: Vec<Keyed<T>>,
}

impl<T: Copy> Table<T> {
    /// Build the table from `(key, item)` in registration order: `Some(address)` for a tracer of
    /// exactly that one function, `None` for a wide one. `fill` is the sentinel's item (never
    /// handed out). Keys equal to [`SENTINEL`] cannot be function addresses and are treated as
    /// wide.
    pub fn build(items: impl IntoIterator<Item = (Option<u64>, T)>, fill: T) -> Self {
        let mut wide = Vec::new();
        let mut keyed = Vec::new();
        for (key, item) in items {
            match key {
                Some(key) if key != SENTINEL => keyed.push(Keyed { key, item }),
                _ => wide.push(item),
            }
        }
        // Stable: tracers of one function run in registration order.
        keyed.sort_by_key(|e| e.key);
        keyed.push(Keyed {
            key: SENTINEL,
            item: fill,
        });
        Table { wide, keyed }
    }

    /// The wide tracers, in registration order.
    pub fn wide(&self) -> &[T] {
        &self.wide
    }

    /// The first keyed entry; the entries run on, sorted, to the sentinel. For an assembly scan
    /// like [`Table::for_each_keyed`]'s; valid as long as the table lives (it never changes).
    pub fn keyed_entries(&self) -> *const Keyed<T> {
        self.keyed.as_ptr()
    }

    /// Tracers keyed to one function or another (the sentinel not counted).
    pub fn keyed_len(&self) -> usize {
        self.keyed.len() - 1
    }

    /// Call `f` with every tracer keyed `ip`, in registration order.
    #[inline(always)]
    pub fn for_each_keyed(&self, ip: u64, mut f: impl FnMut(&T)) {
        if ip == SENTINEL {
            // Not a function address; and the run loop below must never match the sentinel.
            return;
        }
        let mut p = self.keyed.as_ptr();
        // SAFETY: `keyed` ends with the sentinel (built only by `build`, never changed), whose
        // key is above `ip` and every other key: the scan stops at it at the latest, and so does
        // the run (key != ip), so `p` never passes the last entry.
        unsafe {
            while (*p).key < ip {
                p = p.add(1);
            }
            while (*p).key == ip {
                f(&(*p).item);
                p = p.add(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use alloc::{vec, vec::Vec};

    use super::*;

    fn run(t: &Table<u32>, ip: u64) -> Vec<u32> {
        let mut v = Vec::new();
        t.for_each_keyed(ip, |&x| v.push(x));
        v
    }

    #[test]
    fn keyed_entries_are_sorted_and_end_in_the_sentinel() {
        let t = Table::build([(Some(30), 1), (Some(10), 2), (None, 3), (Some(20), 4)], 0);
        let keys: Vec<u64> = t.keyed.iter().map(|e| e.key).collect();
        assert_eq!(keys, vec![10, 20, 30, SENTINEL]);
        assert_eq!(t.wide(), &[3]);
        assert_eq!(t.keyed_len(), 3);
        // SAFETY: four entries from the first, the last being the sentinel (checked above).
        let last = unsafe { *t.keyed_entries().add(3) };
        assert_eq!(
            last,
            Keyed {
                key: SENTINEL,
                item: 0
            }
        );
    }

    #[test]
    fn only_tracers_of_that_function_run_in_registration_order() {
        let t = Table::build(
            [
                (Some(20), 1),
                (Some(10), 2),
                (Some(20), 3),
                (Some(30), 4),
                (Some(20), 5),
            ],
            0,
        );
        assert_eq!(run(&t, 20), vec![1, 3, 5]);
        assert_eq!(run(&t, 10), vec![2]);
        assert_eq!(run(&t, 30), vec![4]);
        // Below, between and above every key: nothing, and no read past the sentinel.
        assert_eq!(run(&t, 5), vec![]);
        assert_eq!(run(&t, 15), vec![]);
        assert_eq!(run(&t, 31), vec![]);
        assert_eq!(run(&t, SENTINEL - 1), vec![]);
        assert_eq!(run(&t, SENTINEL), vec![]);
    }

    #[test]
    fn an_empty_table_and_a_sentinel_key_are_handled() {
        let t: Table<u32> = Table::build([], 0);
        assert_eq!(run(&t, 10), vec![]);
        assert_eq!(t.keyed_len(), 0);
        // A key equal to the sentinel's is not a function address: treated as wide.
        let t = Table::build([(Some(SENTINEL), 7)], 0);
        assert_eq!(t.wide(), &[7]);
        assert_eq!(run(&t, SENTINEL), vec![]);
    }
}
