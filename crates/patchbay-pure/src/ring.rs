//! A lock-free, overwriting single-producer ring of trace events (one per CPU in the kernel's
//! recording tracer, `trace::recorder`).
//!
//! The producer is the CPU that owns the ring, in a tracing handler; handlers never nest (the
//! trace core's recursion guard), so there is never more than one producer. Readers (the
//! console's `trace` command, on any CPU) take no lock and never block the producer: like Linux's
//! function tracer in its default overwrite mode, a full ring overwrites its oldest events, and a
//! reader detects the events it lost.
//!
//! Each slot is a tiny seqlock. `seq` holds `pos + 1` of the event in it (0: empty or being
//! written; a zeroed ring is an empty ring, so a static ring lives in `.bss`):
//!
//! ```text
//! producer (pos = head)                     reader (for pos in start..head)
//!   slot.seq  = 0            (relaxed)        s1 = slot.seq          (acquire)
//!   fence(release)           DMB ISH          words = slot.words     (relaxed)
//!   slot.words = event       (relaxed)        fence(acquire)         DMB ISHLD
//!   slot.seq  = pos + 1      (release) STLR   s2 = slot.seq          (relaxed)
//!   head      = pos + 1      (release) STLR   keep iff s1 == s2 == pos + 1
//! ```
//!
//! If a reader saw any word of a newer event, the release fence after `seq = 0` makes that zero
//! (or the newer event's own sequence number) visible to its second read of `seq`, so a torn
//! event is always rejected and counted as lost, never returned.

use core::sync::atomic::{AtomicU64, Ordering, fence};

/// One recorded call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// When: a count of the clock the kernel measures with (PMCCNTR_EL0 or CNTVCT_EL0).
    pub ts: u64,
    /// The traced function.
    pub ip: u64,
    /// Its caller's return address.
    pub parent: u64,
    /// CPU (bits 0-15) and tag (bits 16-23: the mechanism that reached the handler).
    pub info: u64,
}

impl Event {
    /// Pack `cpu` and `tag` into [`Event::info`].
    #[inline(always)]
    pub const fn info(cpu: u32, tag: u8) -> u64 {
        (cpu as u64 & 0xffff) | ((tag as u64) << 16)
    }

    pub const fn cpu(&self) -> u32 {
        (self.info & 0xffff) as u32
    }

    pub const fn tag(&self) -> u8 {
        (self.info >> 16) as u8
    }
}

struct Slot {
    seq: AtomicU64,
    words: [AtomicU64; 4],
}

impl Slot {
    const fn new() -> Self {
        Slot {
            seq: AtomicU64::new(0),
            words: [const { AtomicU64::new(0) }; 4],
        }
    }
}

/// A ring of `N` events (`N` a power of two).
pub struct Ring<const N: usize> {
    /// Position of the next event to write; events `head - N .. head` may be readable.
    head: AtomicU64,
    /// Where readers start (`clear` moves it to `head`).
    tail: AtomicU64,
    slots: [Slot; N],
}

/// What one read found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Events passed to the callback.
    pub read: u64,
    /// Events since the tail that were overwritten before (or while) they could be read.
    pub lost: u64,
}

impl<const N: usize> Default for Ring<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Ring<N> {
    const MASK: u64 = {
        assert!(N.is_power_of_two(), "a ring's size is a power of two");
        N as u64 - 1
    };

    pub const fn new() -> Self {
        Ring {
            head: AtomicU64::new(0),
            tail: AtomicU64::new(0),
            slots: [const { Slot::new() }; N],
        }
    }

    pub const fn capacity(&self) -> usize {
        N
    }

    /// Append an event, overwriting the oldest when full. Only the ring's one producer may call
    /// this, never concurrently with itself.
    #[inline(always)]
    pub fn push(&self, ts: u64, ip: u64, parent: u64, info: u64) {
        let pos = self.head.load(Ordering::Relaxed);
        let slot = &self.slots[(pos & Self::MASK) as usize];
        slot.seq.store(0, Ordering::Relaxed);
        // Seqlock writer: the invalidation is ordered before the new words (see module docs).
        fence(Ordering::Release);
        slot.words[0].store(ts, Ordering::Relaxed);
        slot.words[1].store(ip, Ordering::Relaxed);
        slot.words[2].store(parent, Ordering::Relaxed);
        slot.words[3].store(info, Ordering::Relaxed);
        slot.seq.store(pos + 1, Ordering::Release);
        self.head.store(pos + 1, Ordering::Release);
    }

    /// Events written since the ring was made (including overwritten ones).
    pub fn written(&self) -> u64 {
        self.head.load(Ordering::Acquire)
    }

    /// Events a read would see now (at most `N`).
    pub fn len(&self) -> u64 {
        let head = self.head.load(Ordering::Acquire);
        let tail = self.tail.load(Ordering::Acquire);
        head.saturating_sub(tail).min(N as u64)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forget every event written so far (readers start after them). The slots are not touched,
    /// so this is safe while the producer runs.
    pub fn clear(&self) {
        self.tail
            .store(self.head.load(Ordering::Acquire), Ordering::Release);
    }

    /// Pass every readable event since the tail to `f`, oldest first, without consuming them.
    pub fn read(&self, mut f: impl FnMut(Event)) -> ReadStats {
        let head = self.head.load(Ordering::Acquire);
        let tail = self.tail.load(Ordering::Acquire).min(head);
        let start = tail.max(head.saturating_sub(N as u64));
        let mut stats = ReadStats {
            read: 0,
            lost: start - tail,
        };
        for pos in start..head {
            let slot = &self.slots[(pos & Self::MASK) as usize];
            let s1 = slot.seq.load(Ordering::Acquire);
            let w = [0, 1, 2, 3].map(|i| slot.words[i].load(Ordering::Relaxed));
            // Seqlock reader: the words are read before the second look at `seq`.
            fence(Ordering::Acquire);
            let s2 = slot.seq.load(Ordering::Relaxed);
            if s1 == pos + 1 && s2 == pos + 1 {
                stats.read += 1;
                f(Event {
                    ts: w[0],
                    ip: w[1],
                    parent: w[2],
                    info: w[3],
                });
            } else {
                stats.lost += 1;
            }
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::{boxed::Box, vec::Vec};

    fn events<const N: usize>(r: &Ring<N>) -> (Vec<u64>, ReadStats) {
        let mut v = Vec::new();
        let s = r.read(|e| v.push(e.ts));
        (v, s)
    }

    #[test]
    fn info_packs_cpu_and_tag() {
        let e = Event {
            ts: 0,
            ip: 0,
            parent: 0,
            info: Event::info(7, 2),
        };
        assert_eq!((e.cpu(), e.tag()), (7, 2));
        assert_eq!(Event::info(0x1_0003, 0xff) & 0xffff, 3);
    }

    #[test]
    fn empty_then_in_order() {
        let r: Ring<8> = Ring::new();
        assert!(r.is_empty());
        assert_eq!(events(&r), (Vec::new(), ReadStats::default()));
        for t in 0..5 {
            r.push(t, 0x1000 + t, 0x2000, Event::info(0, 1));
        }
        let (v, s) = events(&r);
        assert_eq!(v, [0, 1, 2, 3, 4]);
        assert_eq!(s, ReadStats { read: 5, lost: 0 });
        assert_eq!(r.len(), 5);
        // Reading does not consume.
        assert_eq!(events(&r).0.len(), 5);
    }

    #[test]
    fn overwrites_the_oldest_and_counts_the_loss() {
        let r: Ring<8> = Ring::new();
        for t in 0..21 {
            r.push(t, t, t, 0);
        }
        let (v, s) = events(&r);
        assert_eq!(v, (13..21).collect::<Vec<_>>());
        assert_eq!(s, ReadStats { read: 8, lost: 13 });
        assert_eq!((r.len(), r.written()), (8, 21));
    }

    #[test]
    fn clear_moves_the_tail() {
        let r: Ring<4> = Ring::new();
        for t in 0..3 {
            r.push(t, t, t, 0);
        }
        r.clear();
        assert!(r.is_empty());
        assert_eq!(events(&r), (Vec::new(), ReadStats::default()));
        r.push(9, 9, 9, 0);
        assert_eq!(events(&r).0, [9]);
        for t in 10..20 {
            r.push(t, t, t, 0);
        }
        // 11 written since the clear, 4 kept.
        assert_eq!(events(&r).1, ReadStats { read: 4, lost: 7 });
    }

    #[test]
    fn a_zeroed_ring_is_empty() {
        // What a `.bss` ring is before anything runs.
        let r: Ring<16> = Ring::new();
        let mut n = 0;
        r.read(|_| n += 1);
        assert_eq!(n, 0);
        assert_eq!(r.capacity(), 16);
    }

    /// A producer thread writes events whose words are all derived from the position while a
    /// reader thread reads concurrently: every event it accepts must be whole (no torn words)
    /// and in order, and read + lost must account for every position it looked at.
    #[test]
    fn concurrent_reader_never_sees_a_torn_event() {
        const TOTAL: u64 = 400_000;
        let ring: &'static Ring<64> = Box::leak(Box::new(Ring::new()));
        let producer = std::thread::spawn(move || {
            for pos in 0..TOTAL {
                ring.push(
                    pos,
                    pos * 3,
                    pos ^ 0x5555,
                    Event::info(1, (pos % 251) as u8),
                );
            }
        });
        let mut accepted = 0u64;
        // Read while the producer runs, and on until one read was accepted: on a loaded machine
        // every read during production may race a push and be rightly refused, and a read
        // after the last push must then succeed.
        while !producer.is_finished() || accepted == 0 {
            let mut last = None;
            let s = ring.read(|e| {
                assert_eq!(e.ip, e.ts * 3, "torn event {e:?}");
                assert_eq!(e.parent, e.ts ^ 0x5555, "torn event {e:?}");
                assert_eq!(e.tag() as u64, e.ts % 251);
                assert_eq!(e.cpu(), 1);
                if let Some(l) = last {
                    assert!(e.ts > l, "out of order");
                }
                last = Some(e.ts);
            });
            accepted += s.read;
            assert!(s.read <= 64);
        }
        producer.join().unwrap();
        let (v, s) = events(ring);
        assert_eq!(v, (TOTAL - 64..TOTAL).collect::<Vec<_>>());
        assert_eq!(s.read + s.lost, TOTAL);
        assert!(accepted > 0);
    }
}
