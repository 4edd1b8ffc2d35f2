//! patchbay's wire formats: everything the kernel writes and the host tool (`pb`) reads, written
//! once. Modelled on the chainloader's protocol crate (`chainloader/src/lib.rs`): the kernel
//! uses the writers, `pb` the parsers and names, and each format has a round-trip test here.
//!
//! ```
//! use patchbay_board::RPI3;
//! use patchbay_wire::{facts::{self, Fact}, halt};
//!
//! // The kernel writes its board's facts into its ELF at compile time...
//! static FACTS: [u8; facts::len(&RPI3.board)] = facts::text(&RPI3.board);
//! // ...and `pb` reads them back.
//! let text = core::str::from_utf8(&FACTS).unwrap();
//! let first: Vec<Fact> = facts::parse_text(text).take(2).collect::<Result<_, _>>().unwrap();
//! assert_eq!(first, [Fact::Board("rpi3"), Fact::Machine("raspi3b")]);
//!
//! // A board without semihosting ends with this line; `pb` takes the exit code from it.
//! let line = format!("{}\n", halt::Halted(3));
//! assert_eq!(halt::parse(&line), Ok(3));
//! ```
//!
//! | format | module | written by | read by |
//! |---|---|---|---|
//! | `@bench` records: prefix, version, record types, field names, JSON text | [`bench`] | the kernel's `src/bench/record.rs` | `pb`'s `records.rs` (`pb bench`, `parse`, `compare`) |
//! | board facts (`board=…`, `board_*` keys) in the ELF | [`facts`] | the kernel's `src/bsp.rs`, at compile time | `pb`'s `board.rs` (machine, `config.txt`), `pb`'s board tests |
//! | the final line of a halted board | [`halt`] | the kernel's `src/exit.rs` | `pb run`, `pb chainload`, `pb capture` |
//! | run directives: section name, keys, line format | [`directives`] | kernel tests (`qemu_directives!`) | `pb`'s `directives.rs` |
//! | boot arguments the runner passes (`patchbay.clock=`, `patchbay.emulator=`) | [`bootargs`] | `pb run` (`-append`, or the raspi DTB's `/chosen/bootargs`) | the kernel's `bench::clock`, `bench::record` |
//!
//! `no_std` and alloc-free: the writers are `Display`s and `const fn`s, the parsers borrow from
//! their input and return typed errors.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

pub mod bench;
pub mod bootargs;
pub mod directives;
pub mod facts;
pub mod halt;
