//! VideoCore mailbox 0, property channel: asking the Raspberry Pi firmware for facts the DTB
//! does not carry (here: the ARM's share of RAM).
//!
//! A request is a 16-byte aligned buffer of 32-bit words the firmware reads and rewrites in
//! place: `[total size, code, tag, value size, request code, values..., end tag]`. Its address
//! goes into the WRITE register with the channel in the low 4 bits; the firmware answers on
//! READ with the same word. Used only with the MMU and data cache off (boot), so the firmware
//! and the CPU see the same memory without cache maintenance.

use core::cell::UnsafeCell;

use tock_registers::{
    interfaces::{Readable, Writeable},
    register_bitfields, register_structs,
    registers::{ReadOnly, WriteOnly},
};

register_bitfields! {
    u32,
    STATUS [
        FULL OFFSET(31) NUMBITS(1) [],
        EMPTY OFFSET(30) NUMBITS(1) []
    ]
}

register_structs! {
    #[allow(non_snake_case)]
    pub RegisterBlock {
        (0x00 => READ: ReadOnly<u32>),
        (0x04 => _reserved1),
        (0x18 => STATUS: ReadOnly<u32, STATUS::Register>),
        (0x1c => _reserved2),
        (0x20 => WRITE: WriteOnly<u32>),
        (0x24 => @END),
    }
}

/// ARM to VideoCore property channel.
const CHANNEL_PROPERTY: u32 = 8;
const REQUEST: u32 = 0;
const RESPONSE_OK: u32 = 0x8000_0000;
/// Property tag: ARM memory base and size.
const TAG_GET_ARM_MEMORY: u32 = 0x0001_0005;
const TAG_END: u32 = 0;
/// Give up after this many status polls (the firmware answers within microseconds).
const MAX_POLLS: u32 = 10_000_000;

#[repr(C, align(16))]
struct Buffer(UnsafeCell<[u32; 8]>);
// SAFETY: used only by `arm_memory`, on the boot CPU during single-threaded boot.
unsafe impl Sync for Buffer {}

static BUFFER: Buffer = Buffer(UnsafeCell::new([0; 8]));

/// The mailbox at a fixed MMIO address.
pub struct Mailbox {
    base: u64,
}

impl Mailbox {
    /// # Safety
    /// `base` must be the address of the VideoCore mailbox 0 registers with the MMU off, and
    /// nothing else may use the mailbox concurrently.
    pub const unsafe fn new(base: u64) -> Self {
        Mailbox { base }
    }

    fn regs(&self) -> &RegisterBlock {
        // SAFETY: `new`'s contract: `base` is the mailbox's register block.
        unsafe { &*(self.base as *const RegisterBlock) }
    }

    /// Send `buf` (16-byte aligned, below 1 GiB) on the property channel and wait for the
    /// answer. False if the firmware did not answer in time or refused the request.
    fn call(&self, buf: *mut u32) -> bool {
        let r = self.regs();
        let msg = (buf as u64 as u32 & !0xf) | CHANNEL_PROPERTY;
        let mut polls = 0;
        while r.STATUS.is_set(STATUS::FULL) {
            polls += 1;
            if polls == MAX_POLLS {
                return false;
            }
        }
        r.WRITE.set(msg);
        loop {
            while r.STATUS.is_set(STATUS::EMPTY) {
                polls += 1;
                if polls == MAX_POLLS {
                    return false;
                }
            }
            if r.READ.get() == msg {
                // SAFETY: `buf` points at the caller's buffer; the firmware is done with it.
                return unsafe { buf.add(1).read_volatile() } == RESPONSE_OK;
            }
        }
    }

    /// The ARM's RAM as (base, size), from the firmware.
    ///
    /// # Safety
    /// Boot CPU only, MMU and data cache off (the firmware reads the buffer from memory).
    pub unsafe fn arm_memory(&self) -> Option<(u64, u64)> {
        let buf = BUFFER.0.get() as *mut u32;
        let request = [
            8 * 4,              // buffer size in bytes
            REQUEST,            // request code
            TAG_GET_ARM_MEMORY, // tag
            8,                  // value buffer size
            0,                  // tag request code
            0,                  // base (answer)
            0,                  // size (answer)
            TAG_END,
        ];
        for (i, w) in request.iter().enumerate() {
            // SAFETY: `buf` is the 8-word static buffer, used by no one else during boot.
            unsafe { buf.add(i).write_volatile(*w) };
        }
        if !self.call(buf) {
            return None;
        }
        // SAFETY: as above; the firmware has written the answer.
        let (base, size) = unsafe { (buf.add(5).read_volatile(), buf.add(6).read_volatile()) };
        (size != 0).then_some((u64::from(base), u64::from(size)))
    }
}

#[cfg(test)]
mod tests {
    use super::RegisterBlock;
    use crate::kernel_test;

    #[kernel_test]
    fn mailbox_register_layout() {
        assert_eq!(core::mem::size_of::<RegisterBlock>(), 0x24);
    }
}
