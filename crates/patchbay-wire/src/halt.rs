//! The final line of a board without semihosting: the kernel prints it and parks the CPUs; the
//! host tools (`pb run`, `pb chainload`, `pb capture`) take the exit code from it.
//!
//! ```text
//! patchbay: halted with exit code 0 (reset the board to run again)
//! ```

use core::fmt;

/// What the line starts with; the exit code follows.
pub const PREFIX: &str = "patchbay: halted with exit code ";

/// The line for exit code `.0` (without the line break), as the kernel writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Halted(pub u32);

impl fmt::Display for Halted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{} (reset the board to run again)", self.0)
    }
}

/// Why a console line gave no exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HaltError {
    /// The line does not contain [`PREFIX`]: it is not the final line.
    NotTheHaltLine,
    /// The prefix is there but no exit code follows it (a line cut short by a reset, or noise).
    NoCode,
}

impl fmt::Display for HaltError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HaltError::NotTheHaltLine => "not the final line of a halted board",
            HaltError::NoCode => "the final line of a halted board, but without an exit code",
        })
    }
}

impl core::error::Error for HaltError {}

/// The exit code on a console line. Anything before the prefix (line noise, a NUL from the
/// UART) and after the code is ignored.
pub fn parse(line: &str) -> Result<u32, HaltError> {
    let at = line.find(PREFIX).ok_or(HaltError::NotTheHaltLine)?;
    let rest = &line[at + PREFIX.len()..];
    let digits = &rest[..rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len())];
    digits.parse().map_err(|_| HaltError::NoCode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for code in [0, 1, 17, u32::MAX] {
            let line = format!("{}\r\n", Halted(code));
            assert_eq!(parse(&line), Ok(code), "{line}");
        }
        assert_eq!(
            Halted(0).to_string(),
            "patchbay: halted with exit code 0 (reset the board to run again)"
        );
    }

    #[test]
    fn noise_around_the_line() {
        assert_eq!(
            parse("\u{0}noise patchbay: halted with exit code 17"),
            Ok(17)
        );
    }

    #[test]
    fn malformed() {
        assert_eq!(
            parse("patchbay: halted with exit code x"),
            Err(HaltError::NoCode)
        );
        assert_eq!(
            parse("patchbay: halted with exit code "),
            Err(HaltError::NoCode)
        );
        assert_eq!(
            parse("patchbay: halted with exit code 99999999999"),
            Err(HaltError::NoCode),
            "beyond u32"
        );
        assert_eq!(
            parse("patchbay: exit code 1 (no semihosting); powering off"),
            Err(HaltError::NotTheHaltLine)
        );
    }
}
