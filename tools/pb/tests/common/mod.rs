//! Helpers shared by pb's integration tests (each test file uses some of them).
#![allow(dead_code)]

use std::process::{Command, Output};

/// A `Command` for the `pb` binary under test.
pub fn pb_command() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pb"))
}

/// Run `cmd` and echo its status and output on stderr (shown when a test fails).
pub fn output_logged(cmd: &mut Command, what: &str) -> Output {
    let out = cmd.output().expect("run pb");
    eprintln!(
        "--- pb {what}: {}\n--- stdout:\n{}--- stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
