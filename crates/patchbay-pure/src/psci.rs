//! PSCI (Arm DEN0022, Power State Coordination Interface): the function IDs patchbay calls and
//! the return codes, decoded into a typed error the banner can print.
//!
//! ```
//! use patchbay_pure::psci::{self, PsciError};
//! assert_eq!(psci::result(0), Ok(()));
//! // The code is a signed 32-bit value in x0 (here -4, sign-extended).
//! assert_eq!(psci::result(-4i64 as u64), Err(PsciError::AlreadyOn));
//! assert_eq!(PsciError::AlreadyOn.to_string(), "ALREADY_ON (-4): the CPU is already on");
//! ```

use core::fmt;

/// `PSCI_VERSION` (SMC32 calling convention): major version in bits 31:16, minor in 15:0.
pub const VERSION: u32 = 0x8400_0000;
/// `CPU_ON` (SMC64): x1 = target MPIDR (affinity fields), x2 = entry point (physical),
/// x3 = context ID (handed to the new CPU in x0).
pub const CPU_ON: u32 = 0xc400_0003;
/// `SYSTEM_OFF` (SMC32).
pub const SYSTEM_OFF: u32 = 0x8400_0008;

/// The MPIDR_EL1 bits PSCI's `target_cpu` carries: Aff3 (39:32), Aff2, Aff1, Aff0 (23:0).
pub const MPIDR_AFFINITY_MASK: u64 = 0xff_00ff_ffff;

/// A PSCI call's failure (DEN0022 table "Return error codes").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsciError {
    NotSupported,
    InvalidParameters,
    Denied,
    AlreadyOn,
    OnPending,
    InternalFailure,
    NotPresent,
    Disabled,
    InvalidAddress,
    /// A value outside the table (a broken firmware).
    Unknown(i32),
}

impl PsciError {
    /// The code the firmware returned.
    pub fn code(self) -> i32 {
        match self {
            PsciError::NotSupported => -1,
            PsciError::InvalidParameters => -2,
            PsciError::Denied => -3,
            PsciError::AlreadyOn => -4,
            PsciError::OnPending => -5,
            PsciError::InternalFailure => -6,
            PsciError::NotPresent => -7,
            PsciError::Disabled => -8,
            PsciError::InvalidAddress => -9,
            PsciError::Unknown(c) => c,
        }
    }

    fn name_and_meaning(self) -> (&'static str, &'static str) {
        match self {
            PsciError::NotSupported => {
                ("NOT_SUPPORTED", "the firmware does not implement the call")
            }
            PsciError::InvalidParameters => ("INVALID_PARAMETERS", "no CPU has that MPIDR"),
            PsciError::Denied => ("DENIED", "the firmware refused"),
            PsciError::AlreadyOn => ("ALREADY_ON", "the CPU is already on"),
            PsciError::OnPending => ("ON_PENDING", "a CPU_ON for this CPU is still pending"),
            PsciError::InternalFailure => ("INTERNAL_FAILURE", "the firmware failed"),
            PsciError::NotPresent => ("NOT_PRESENT", "the CPU is not present"),
            PsciError::Disabled => ("DISABLED", "the CPU is disabled"),
            PsciError::InvalidAddress => ("INVALID_ADDRESS", "the entry point is not valid"),
            PsciError::Unknown(_) => ("UNKNOWN", "a code outside the PSCI specification"),
        }
    }
}

impl fmt::Display for PsciError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, meaning) = self.name_and_meaning();
        write!(f, "{name} ({}): {meaning}", self.code())
    }
}

/// Decode a PSCI return value (x0, a signed 32-bit code): 0 is success.
pub fn result(x0: u64) -> Result<(), PsciError> {
    // The return code is an int32 in the low half of x0 (SMCCC).
    let code = x0 as u32 as i32;
    Err(match code {
        0 => return Ok(()),
        -1 => PsciError::NotSupported,
        -2 => PsciError::InvalidParameters,
        -3 => PsciError::Denied,
        -4 => PsciError::AlreadyOn,
        -5 => PsciError::OnPending,
        -6 => PsciError::InternalFailure,
        -7 => PsciError::NotPresent,
        -8 => PsciError::Disabled,
        -9 => PsciError::InvalidAddress,
        c => PsciError::Unknown(c),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn every_code_round_trips() {
        for c in -10..=0i32 {
            match result(c as i64 as u64) {
                Ok(()) => assert_eq!(c, 0),
                Err(e) => assert_eq!(e.code(), c),
            }
        }
        // Only the low 32 bits count: a sign-extended or a zero-extended -2 is the same error.
        assert_eq!(result(0xffff_fffe), Err(PsciError::InvalidParameters));
        assert_eq!(result(u64::MAX - 1), Err(PsciError::InvalidParameters));
        assert_eq!(result(7), Err(PsciError::Unknown(7)));
        assert_eq!(
            PsciError::InvalidParameters.to_string(),
            "INVALID_PARAMETERS (-2): no CPU has that MPIDR"
        );
    }
}
