//! Executable trampoline pools: *near* (every text address reaches it with `bl`) and *far*
//! (deliberately beyond ±128 MiB of all text, so `bl` cannot reach it).
//!
//! Pool memory is mapped R-X and written only through the poke alias
//! ([`poke::write_pool_block`]), followed by the same cache maintenance as text. Allocation is a
//! buddy allocator over 64-byte granules (`buddy_system_allocator::FrameAllocator`, whose
//! bookkeeping lives on the heap — the pool itself is never writable, so an allocator that keeps
//! free lists inside the managed memory could not be used). Free memory holds the trap pattern
//! [`POOL_FILL`](crate::memory::POOL_FILL); a freed block is refilled with it, so the pools
//! return to their boot bytes and a stale jump traps.

use alloc::{vec, vec::Vec};

use buddy_system_allocator::FrameAllocator;
use patchbay_pure::layout::Range;

use super::types::{PoolUsage, TraceError};
use crate::{
    memory::{self, POOL_FILL},
    patch::poke,
};

/// Allocation granule: one cache line on the boards patchbay targets, so a trampoline shares
/// no line with its neighbours.
pub const GRANULE: u64 = 64;

/// Which pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    Near,
    Far,
}

impl PoolKind {
    pub fn name(self) -> &'static str {
        match self {
            PoolKind::Near => "near",
            PoolKind::Far => "far",
        }
    }

    pub fn range(self) -> Range {
        let plan = memory::plan();
        match self {
            PoolKind::Near => plan.near_pool,
            PoolKind::Far => plan.far_pool,
        }
    }
}

/// An allocated block of pool memory. Return it with [`free`]; dropping it leaks the space.
#[must_use]
#[derive(Debug, PartialEq, Eq)]
pub struct Block {
    pub kind: PoolKind,
    pub addr: u64,
    /// Granules reserved (a power of two).
    granules: usize,
}

impl Block {
    /// A placeholder that owns nothing (freeing it does nothing).
    pub const EMPTY: Block = Block {
        kind: PoolKind::Near,
        addr: 0,
        granules: 0,
    };

    pub fn len(&self) -> u64 {
        self.granules as u64 * GRANULE
    }
    pub fn is_empty(&self) -> bool {
        self.granules == 0
    }
}

struct Pool {
    frames: FrameAllocator<16>,
    usage: PoolUsage,
}

static POOLS: spin::Mutex<Option<[Pool; 2]>> = spin::Mutex::new(None);

fn with_pool<R>(kind: PoolKind, f: impl FnOnce(&mut Pool) -> R) -> R {
    let mut g = POOLS.lock();
    let pools = g.get_or_insert_with(|| {
        [PoolKind::Near, PoolKind::Far].map(|k| {
            let n = (k.range().len() / GRANULE) as usize;
            let mut frames = FrameAllocator::new();
            frames.add_frame(0, n);
            Pool {
                frames,
                usage: PoolUsage {
                    total: k.range().len(),
                    ..PoolUsage::default()
                },
            }
        })
    });
    f(&mut pools[kind as usize])
}

/// Reserve `bytes` in `kind` without writing anything.
pub fn reserve(kind: PoolKind, bytes: u64) -> Result<Block, TraceError> {
    let granules = bytes.div_ceil(GRANULE).max(1) as usize;
    with_pool(kind, |p| match p.frames.alloc(granules) {
        Some(frame) => {
            let granules = granules.next_power_of_two();
            p.usage.used += granules as u64 * GRANULE;
            p.usage.blocks += 1;
            Ok(Block {
                kind,
                addr: kind.range().start + frame as u64 * GRANULE,
                granules,
            })
        }
        None => {
            p.usage.failures += 1;
            Err(TraceError::PoolExhausted {
                pool: kind.name(),
                bytes,
                usage: p.usage,
            })
        }
    })
}

/// Allocate a block in `kind` holding `code`, published to instruction fetch.
pub fn alloc_code(kind: PoolKind, code: &[u32]) -> Result<Block, TraceError> {
    let block = reserve(kind, code.len() as u64 * 4)?;
    if let Err(e) = poke::write_pool_block(block.addr, code) {
        release(block);
        return Err(e.into());
    }
    Ok(block)
}

/// Allocate a block in `kind` for at most `max_words` words of code that depends on its own
/// address: `generate(addr)` produces it once the address is known.
pub fn alloc_code_at(
    kind: PoolKind,
    max_words: usize,
    generate: impl FnOnce(u64) -> Result<Vec<u32>, TraceError>,
) -> Result<Block, TraceError> {
    let block = reserve(kind, max_words as u64 * 4)?;
    let code = match generate(block.addr) {
        Ok(code) => code,
        Err(e) => {
            release(block);
            return Err(e);
        }
    };
    assert!(
        code.len() <= max_words,
        "code generated for {:#x} is longer than the {max_words} words promised",
        block.addr
    );
    if let Err(e) = poke::write_pool_block(block.addr, &code) {
        release(block);
        return Err(e.into());
    }
    Ok(block)
}

/// Refill `block` with the trap pattern and return it to its pool.
pub fn free(block: Block) {
    if block.is_empty() {
        return;
    }
    let fill = vec![POOL_FILL; (block.len() / 4) as usize];
    poke::fill_freed_block(block.addr, &fill).expect("a pool block is always writable by poke");
    release(block);
}

fn release(block: Block) {
    let frame = ((block.addr - block.kind.range().start) / GRANULE) as usize;
    with_pool(block.kind, |p| {
        p.frames.dealloc(frame, block.granules);
        p.usage.used -= block.len();
        p.usage.blocks -= 1;
    });
}

/// The accounting of `kind`.
pub fn usage(kind: PoolKind) -> PoolUsage {
    with_pool(kind, |p| p.usage)
}
