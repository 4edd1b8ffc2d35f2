//! # patchbay-shell
//!
//! Everything the kernel's serial console does that is not I/O, as pure functions tested on the
//! host: a line goes in, a typed [`Command`] (or one clear [`ParseError`]) comes out; bytes from
//! the terminal go in, echo bytes and finished lines come out.
//!
//! ```
//! use patchbay_shell::{Command, HandlerKind, Mechanism, parse};
//! match parse("attach call-ops gen_00* record").unwrap() {
//!     Command::Attach { mechanism, glob, handler } => {
//!         assert_eq!(mechanism, Mechanism::CallOps);
//!         assert!(glob.matches("patchbay::subjects::gen_0012"));
//!         assert_eq!(handler, HandlerKind::Record);
//!     }
//!     other => panic!("{other:?}"),
//! }
//! assert_eq!(
//!     parse("atach list leaf").unwrap_err().to_string(),
//!     "unknown command \"atach\"; did you mean \"attach\"? (type help for the list)"
//! );
//! ```
//!
//! | module | what |
//! |---|---|
//! | [`command`] | the commands, their usage lines, the parser and its errors |
//! | [`glob`] | site-name globs (`*`, `?`, `[a-z]`, `[!x]`, `\` escapes), validated before use |
//! | [`editor`] | the line editor: insert, backspace, delete, arrows, home/end, history, Ctrl-C/U |
//! | [`complete`] | what Tab completes: commands, mechanisms, handlers, site names, suites |
//!
//! Nothing here allocates more than the line, the history and the candidate lists; bad input of
//! any kind is an error value, never a panic (a seeded fuzz test feeds random bytes and lines).
#![no_std]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod command;
pub mod complete;
pub mod editor;
pub mod glob;

pub use command::{BenchSuite, Command, DetachTarget, HandlerKind, Mechanism, ParseError, parse};
pub use complete::{Completion, complete};
pub use editor::{Editor, Event};
pub use glob::{Glob, GlobError};

/// What the console prints before every command. `pb console` waits for it after each line it
/// sends, so it must not appear in any command's output.
pub const PROMPT: &str = "patchbay> ";

/// Listings (sites, completion candidates, trace events) show at most this many lines unless
/// asked for more, so a 4096-site table does not scroll a board's 115200-baud terminal for a
/// minute.
pub const DEFAULT_LIMIT: usize = 32;
