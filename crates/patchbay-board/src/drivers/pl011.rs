//! Arm PrimeCell PL011 UART (Arm DDI 0183G), polled: transmit for the kernel's console, receive
//! for the chainloader.
//!
//! Register names and fields follow the TRM. On QEMU the UART works without initialisation; on a
//! board the BSP passes the UART clock so the baud-rate divisor is right.

use tock_registers::{
    interfaces::{Readable, Writeable},
    register_bitfields, register_structs,
    registers::{ReadOnly, ReadWrite, WriteOnly},
};

register_bitfields! {
    u32,

    /// Flag Register.
    FR [
        /// Transmit FIFO full.
        TXFF OFFSET(5) NUMBITS(1) [],
        /// Receive FIFO empty.
        RXFE OFFSET(4) NUMBITS(1) [],
        /// UART busy transmitting.
        BUSY OFFSET(3) NUMBITS(1) []
    ],

    /// Integer Baud Rate Divisor.
    IBRD [
        BAUD_DIVINT OFFSET(0) NUMBITS(16) []
    ],

    /// Fractional Baud Rate Divisor.
    FBRD [
        BAUD_DIVFRAC OFFSET(0) NUMBITS(6) []
    ],

    /// Line Control Register.
    LCR_H [
        /// Word length.
        WLEN OFFSET(5) NUMBITS(2) [
            FiveBit = 0b00,
            SixBit = 0b01,
            SevenBit = 0b10,
            EightBit = 0b11
        ],
        /// Enable FIFOs.
        FEN OFFSET(4) NUMBITS(1) [
            FifosDisabled = 0,
            FifosEnabled = 1
        ]
    ],

    /// Control Register.
    CR [
        /// Receive enable.
        RXE OFFSET(9) NUMBITS(1) [],
        /// Transmit enable.
        TXE OFFSET(8) NUMBITS(1) [],
        /// UART enable.
        UARTEN OFFSET(0) NUMBITS(1) []
    ],

    /// Interrupt Clear Register.
    ICR [
        /// All interrupts.
        ALL OFFSET(0) NUMBITS(11) []
    ]
}

register_structs! {
    #[allow(non_snake_case)]
    pub RegisterBlock {
        (0x00 => DR: ReadWrite<u32>),
        (0x04 => _reserved1),
        (0x18 => FR: ReadOnly<u32, FR::Register>),
        (0x1c => _reserved2),
        (0x24 => IBRD: WriteOnly<u32, IBRD::Register>),
        (0x28 => FBRD: WriteOnly<u32, FBRD::Register>),
        (0x2c => LCR_H: WriteOnly<u32, LCR_H::Register>),
        (0x30 => CR: WriteOnly<u32, CR::Register>),
        (0x34 => _reserved3),
        (0x44 => ICR: WriteOnly<u32, ICR::Register>),
        (0x48 => @END),
    }
}

/// A PL011 at a fixed MMIO address.
pub struct Pl011 {
    base: u64,
}

impl Pl011 {
    /// # Safety
    /// `base` must be the address of a PL011 register block, mapped as device memory (or the MMU
    /// off), and nothing else may drive the device concurrently without synchronisation.
    pub const unsafe fn new(base: u64) -> Self {
        Pl011 { base }
    }

    fn regs(&self) -> &RegisterBlock {
        // SAFETY: `new`'s contract: `base` is a valid, mapped PL011 register block.
        unsafe { &*(self.base as *const RegisterBlock) }
    }

    /// 8N1 at `baud` from `clock_hz`, FIFOs on, TX and RX enabled.
    pub fn init(&self, clock_hz: u32, baud: u32) {
        let r = self.regs();
        self.flush();
        r.CR.set(0);
        r.ICR.write(ICR::ALL::SET);
        // Divisor = clock / (16 * baud), as integer + 6-bit fraction (rounded).
        let div64 = (u64::from(clock_hz) * 4).div_ceil(u64::from(baud));
        r.IBRD.write(IBRD::BAUD_DIVINT.val((div64 >> 6) as u32));
        r.FBRD.write(FBRD::BAUD_DIVFRAC.val((div64 & 0x3f) as u32));
        r.LCR_H
            .write(LCR_H::WLEN::EightBit + LCR_H::FEN::FifosEnabled);
        r.CR.write(CR::UARTEN::SET + CR::TXE::SET + CR::RXE::SET);
    }

    /// The next received byte, if the receive FIFO holds one. Framing, parity, break and
    /// overrun flags (DR bits 8-11) are dropped: the chainloader's checksum catches their effect.
    pub fn try_read_byte(&self) -> Option<u8> {
        let r = self.regs();
        if r.FR.is_set(FR::RXFE) {
            None
        } else {
            Some((r.DR.get() & 0xff) as u8)
        }
    }

    pub fn write_byte(&self, b: u8) {
        let r = self.regs();
        while r.FR.is_set(FR::TXFF) {
            core::hint::spin_loop();
        }
        r.DR.set(u32::from(b));
    }

    /// Wait until everything written has left the UART.
    pub fn flush(&self) {
        while self.regs().FR.is_set(FR::BUSY) {
            core::hint::spin_loop();
        }
    }

    pub fn write_str(&self, s: &str) {
        for b in s.bytes() {
            if b == b'\n' {
                self.write_byte(b'\r');
            }
            self.write_byte(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RegisterBlock;

    #[test]
    fn register_block_layout() {
        assert_eq!(core::mem::size_of::<RegisterBlock>(), 0x48);
    }
}
