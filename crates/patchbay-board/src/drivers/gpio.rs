//! Broadcom GPIO controller (BCM2837 on the Raspberry Pi 3, BCM2711 on the Pi 4): pin function
//! selection and pull-up/down control, enough to hand GPIO 14/15 to the PL011.
//!
//! Register names follow the BCM2835 and BCM2711 ARM Peripherals documents. The two SoCs differ
//! only in how pulls are set: the BCM2837 clocks a pull setting into the pins through
//! GPPUD/GPPUDCLKn; the BCM2711 has a 2-bit field per pin in GPIO_PUP_PDN_CNTRL_REGn.

use tock_registers::{
    interfaces::{Readable, Writeable},
    register_structs,
    registers::ReadWrite,
};

register_structs! {
    #[allow(non_snake_case)]
    pub RegisterBlock {
        /// Function select: 3 bits per pin, 10 pins per register.
        (0x00 => GPFSEL: [ReadWrite<u32>; 6]),
        (0x18 => _reserved1),
        /// BCM2837: the pull to clock in (0 off, 1 down, 2 up).
        (0x94 => GPPUD: ReadWrite<u32>),
        /// BCM2837: a 1 clocks GPPUD into that pin.
        (0x98 => GPPUDCLK: [ReadWrite<u32>; 2]),
        (0xa0 => _reserved2),
        /// BCM2711: 2 bits per pin (0 none, 1 up, 2 down), 16 pins per register.
        (0xe4 => GPIO_PUP_PDN_CNTRL: [ReadWrite<u32>; 4]),
        (0xf4 => @END),
    }
}

/// A pin's function (the GPFSELn encoding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Function {
    Input = 0b000,
    Output = 0b001,
    Alt0 = 0b100,
    Alt5 = 0b010,
}

/// How this SoC sets pulls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PullScheme {
    /// BCM2835/6/7: GPPUD + GPPUDCLKn with set-up and hold delays.
    Clocked,
    /// BCM2711: GPIO_PUP_PDN_CNTRL_REGn.
    Direct,
}

/// The GPIO pins the PL011 UART0 uses in alternate function 0.
pub const UART0_TXD: u32 = 14;
pub const UART0_RXD: u32 = 15;

/// A GPIO controller at a fixed MMIO address.
pub struct Gpio {
    base: u64,
    pulls: PullScheme,
}

/// (register index, shift) of `pin`'s field when each register holds `per_reg` fields of
/// `bits` bits.
const fn field(pin: u32, per_reg: u32, bits: u32) -> (usize, u32) {
    ((pin / per_reg) as usize, (pin % per_reg) * bits)
}

impl Gpio {
    /// # Safety
    /// `base` must be the address of the SoC's GPIO register block, mapped as device memory (or
    /// the MMU off), and nothing else may drive it concurrently.
    pub const unsafe fn new(base: u64, pulls: PullScheme) -> Self {
        Gpio { base, pulls }
    }

    fn regs(&self) -> &RegisterBlock {
        // SAFETY: `new`'s contract: `base` is a valid, mapped GPIO register block.
        unsafe { &*(self.base as *const RegisterBlock) }
    }

    /// Select `function` for `pin` (0..=53).
    pub fn select(&self, pin: u32, function: Function) {
        let (reg, shift) = field(pin, 10, 3);
        let r = &self.regs().GPFSEL[reg];
        let v = (r.get() & !(0b111 << shift)) | ((function as u32) << shift);
        r.set(v);
    }

    /// Disable the pull-up/down resistors of `pins` (all below 32).
    pub fn no_pulls(&self, pins: &[u32]) {
        let r = self.regs();
        match self.pulls {
            PullScheme::Direct => {
                for &pin in pins {
                    let (reg, shift) = field(pin, 16, 2);
                    let c = &r.GPIO_PUP_PDN_CNTRL[reg];
                    c.set(c.get() & !(0b11 << shift));
                }
            }
            PullScheme::Clocked => {
                // The documented sequence: write the control, wait 150 cycles (set-up), clock it
                // into the pins, wait 150 cycles (hold), remove the control and the clock.
                let mask = pins.iter().fold(0u32, |m, &p| m | 1 << p);
                r.GPPUD.set(0);
                delay_cycles(150);
                r.GPPUDCLK[0].set(mask);
                delay_cycles(150);
                r.GPPUD.set(0);
                r.GPPUDCLK[0].set(0);
            }
        }
    }

    /// Hand GPIO 14/15 to the PL011 (TXD0/RXD0, alternate function 0), without pulls.
    pub fn route_uart0(&self) {
        self.no_pulls(&[UART0_TXD, UART0_RXD]);
        self.select(UART0_TXD, Function::Alt0);
        self.select(UART0_RXD, Function::Alt0);
    }
}

/// Spin for at least `n` CPU cycles (one NOP retires in at most one cycle on these cores).
#[cfg(target_arch = "aarch64")]
fn delay_cycles(n: u32) {
    for _ in 0..n {
        // SAFETY: a NOP has no effects.
        unsafe { core::arch::asm!("nop", options(nomem, nostack, preserves_flags)) };
    }
}

/// Host builds (the layout tests) never drive a GPIO block; spinning keeps the code path whole.
#[cfg(not(target_arch = "aarch64"))]
fn delay_cycles(n: u32) {
    for _ in 0..n {
        core::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests {
    use super::{RegisterBlock, field};

    #[test]
    fn gpio_register_layout_and_fields() {
        assert_eq!(core::mem::size_of::<RegisterBlock>(), 0xf4);
        // GPIO 14/15: GPFSEL1 bits 12-14 and 15-17; PUP_PDN_CNTRL_REG0 bits 28-29 and 30-31.
        assert_eq!(field(14, 10, 3), (1, 12));
        assert_eq!(field(15, 10, 3), (1, 15));
        assert_eq!(field(14, 16, 2), (0, 28));
        assert_eq!(field(15, 16, 2), (0, 30));
    }
}
