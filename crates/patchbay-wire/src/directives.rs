//! Run directives: how a kernel image wants to be booted and judged. A kernel writes them (test
//! binaries with `patchbay::qemu_directives!`, every kernel its board facts, see
//! [`facts`](crate::facts)) as `key=value` lines into a non-allocated ELF section; `pb` reads
//! them (`tools/pb/src/directives.rs` documents each key's value and default).

/// The ELF section holding the directives (several statics may be concatenated into it; NUL
/// padding between them counts as a line break).
pub const SECTION: &str = ".patchbay.qemu";

pub const MACHINE: &str = "machine";
pub const CPU: &str = "cpu";
pub const SMP: &str = "smp";
pub const MEMORY: &str = "memory";
pub const ICOUNT: &str = "icount";
pub const TIMEOUT: &str = "timeout";
pub const EXPECT_EXIT: &str = "expect_exit";
pub const EXPECT_CONSOLE: &str = "expect_console";
pub const REJECT_CONSOLE: &str = "reject_console";
pub const REPEAT: &str = "repeat";
pub const SAME_LINES: &str = "same_lines";
pub const BOOTARGS: &str = "bootargs";
pub const BOOT: &str = "boot";
pub const GIC: &str = "gic";
pub const TCG: &str = "tcg";

/// Every run-directive key (the board facts' keys come on top).
pub const KEYS: [&str; 15] = [
    MACHINE,
    CPU,
    SMP,
    MEMORY,
    ICOUNT,
    TIMEOUT,
    EXPECT_EXIT,
    EXPECT_CONSOLE,
    REJECT_CONSOLE,
    REPEAT,
    SAME_LINES,
    BOOTARGS,
    BOOT,
    GIC,
    TCG,
];

/// Does `line` (`key=value`, as written in `qemu_directives!`) start with a known key? A
/// `const fn`, so the kernel's macro rejects a misspelt key at compile time instead of `pb`
/// rejecting it at run time.
pub const fn is_known_line(line: &str) -> bool {
    let b = line.as_bytes();
    let mut eq = 0;
    while eq < b.len() && b[eq] != b'=' {
        eq += 1;
    }
    if eq == b.len() {
        return false;
    }
    let mut k = 0;
    while k < KEYS.len() {
        let key = KEYS[k].as_bytes();
        if key.len() == eq {
            let mut i = 0;
            while i < eq && key[i] == b[i] {
                i += 1;
            }
            if i == eq {
                return true;
            }
        }
        k += 1;
    }
    false
}

/// The lines of a section's text that carry something: split at line breaks and NULs, trimmed,
/// blank lines and `#` comments skipped; each with its 1-based number.
pub fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split(['\n', '\0'])
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
}

/// A line's key and value, trimmed; `None` if it has no `=`.
pub fn key_value(line: &str) -> Option<(&str, &str)> {
    line.split_once('=').map(|(k, v)| (k.trim(), v.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_lines_are_recognised_at_compile_time() {
        // Usable where the kernel's macro needs it: in a const context.
        const { assert!(is_known_line("expect_console=a=b")) };
        for key in KEYS {
            assert!(is_known_line(&format!("{key}=1")), "{key}");
        }
        assert!(!is_known_line("expect_consol=x"));
        assert!(!is_known_line("expect_console"));
        assert!(!is_known_line("=x"));
        assert!(!is_known_line("icount2=1"));
    }

    #[test]
    fn lines_split_at_nul_and_newline() {
        let got: Vec<_> = lines("a=1\0\0b = x=y \r\n# c=2\n\n  d\n").collect();
        assert_eq!(got, [(1, "a=1"), (3, "b = x=y"), (6, "d")]);
        let kv: Vec<_> = got.iter().map(|(_, l)| key_value(l)).collect();
        assert_eq!(kv, [Some(("a", "1")), Some(("b", "x=y")), None]);
    }

    #[test]
    fn keys_are_distinct_and_not_board_facts() {
        for (i, k) in KEYS.iter().enumerate() {
            assert!(!KEYS[..i].contains(k), "{k} twice");
            assert!(!k.starts_with("board"), "{k} looks like a board fact");
        }
    }
}
