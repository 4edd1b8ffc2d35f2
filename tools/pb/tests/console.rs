//! `pb console` against the real console kernel under QEMU: a scripted session with checks
//! (`tests/console/session.pbsh`), a script whose check fails, and a person typing in a real
//! terminal (tmux) — completion, Backspace, arrows and history as the screen shows them.
//!
//! They need the console kernel built for aarch64, so they are `#[ignore]`d in a plain
//! `cargo test`; `make test-console` builds it and runs them with `--ignored`, passing its path
//! in `PB_CONSOLE_ELF` (and installs tmux if it is missing).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use std::{env, fs};

mod common;
use common::{output_logged, pb_command, stdout};

const WHY: &str = "needs the console kernel: run `make test-console`";

fn console_elf() -> PathBuf {
    let path = env::var_os("PB_CONSOLE_ELF").unwrap_or_else(|| panic!("PB_CONSOLE_ELF: {WHY}"));
    let path = PathBuf::from(path);
    assert!(path.exists(), "{} does not exist", path.display());
    path
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/console")
        .join(name)
}

#[test]
#[ignore = "needs the console kernel: run `make test-console`"]
fn a_scripted_session_passes_every_check() {
    let out = output_logged(
        pb_command()
            .arg("console")
            .arg("--script")
            .arg(script("session.pbsh"))
            .arg(console_elf()),
        "console --script session.pbsh",
    );
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    let last = text.lines().last().unwrap_or("");
    assert!(last.ends_with(" passed, 0 failed"), "{last}");
    let passed: usize = last
        .trim_start_matches("console script: ")
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(passed >= 35, "{last}");
}

#[test]
#[ignore = "needs the console kernel: run `make test-console`"]
fn a_wrong_expectation_fails_the_script() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wrong.pbsh");
    fs::write(
        &path,
        "> sites leaf\n? patchbay::subjects::leaf\n? this text is not there\n! patchbay::subjects::leaf\n> exit 4\n= 0\n",
    )
    .unwrap();
    let out = output_logged(
        pb_command()
            .arg("console")
            .arg("--script")
            .arg(&path)
            .arg(console_elf()),
        "console --script wrong.pbsh",
    );
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.ends_with("console script: 1 passed, 3 failed\n"),
        "{text}"
    );
    assert!(
        text.contains("pb: FAILED: exit code 0 (got Some(4))"),
        "{text}"
    );
}

/// A tmux session running `pb console`, driven with send-keys and read with capture-pane.
struct Tmux {
    name: String,
}

impl Tmux {
    fn start(command: &str) -> Tmux {
        let name = format!("pbconsole{}", std::process::id());
        let ok = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-x",
                "160",
                "-y",
                "60",
                "-s",
                &name,
                command,
            ])
            .status()
            .expect("tmux is installed (make test-console installs it)");
        assert!(ok.success());
        Tmux { name }
    }

    /// Keys in tmux's names (`Tab`, `BSpace`, `Left`, `Up`, `Enter`, `C-u`) or literal text.
    fn keys(&self, keys: &[&str]) {
        for k in keys {
            let ok = Command::new("tmux")
                .args(["send-keys", "-t", &self.name, k])
                .status()
                .unwrap();
            assert!(ok.success());
            // One key at a time, as a person types: the kernel's editor answers each.
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.name, "-S", "-200"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Wait until the screen shows `text` `times` times.
    fn wait_for(&self, text: &str, times: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = self.screen();
            if s.matches(text).count() >= times {
                return s;
            }
            assert!(Instant::now() < deadline, "waiting for {text:?}:\n{s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.name])
            .status();
    }
}

#[test]
#[ignore = "needs the console kernel: run `make test-console`"]
fn a_person_edits_completes_and_recalls_in_a_real_terminal() {
    let pb = env!("CARGO_BIN_EXE_pb");
    let cmd = format!(
        "{pb} console {}; echo pb-exited-with-$?; sleep 60",
        console_elf().display()
    );
    let t = Tmux::start(&cmd);
    // capture-pane drops trailing blanks: the prompt is "patchbay>" on the screen.
    t.wait_for("patchbay>", 1);
    // Tab completes the command, the mechanism and the site name.
    t.keys(&["att", "Tab", "call-o", "Tab", "lea", "Tab", "Enter"]);
    let s = t.wait_for("attached #1: call-ops on 1 site(s) (leaf)", 1);
    assert!(s.contains("patchbay> attach call-ops leaf\n"), "{s}");
    // A typo fixed with Backspace.
    t.keys(&["lsit", "BSpace", "BSpace", "BSpace", "ist", "Enter"]);
    let s = t.wait_for("handler", 1);
    assert!(
        s.contains("patchbay> list\n"),
        "the screen shows the edited line:\n{s}"
    );
    // Arrows move inside the line: "detach al" -> insert and delete in the middle -> "all".
    t.keys(&[
        "detach al",
        "Left",
        "Left",
        "x",
        "BSpace",
        "Right",
        "Right",
        "l",
        "Enter",
    ]);
    let s = t.wait_for("detached 1 attachment(s)", 1);
    assert!(s.contains("patchbay> detach all\n"), "{s}");
    // Up twice recalls the list, Up again the attach: run it again.
    t.keys(&["Up", "Up", "Up", "Enter"]);
    let s = t.wait_for("attached #2: call-ops on 1 site(s) (leaf)", 1);
    assert_eq!(
        s.matches("patchbay> attach call-ops leaf\n").count(),
        2,
        "{s}"
    );
    // Ctrl-U clears a line; several candidates are listed.
    t.keys(&["garbage", "C-u", "sites gen_000", "Tab"]);
    let s = t.wait_for("gen_0009", 1);
    assert!(s.contains("gen_0000  gen_0001"), "{s}");
    t.keys(&["C-u", "exit 5", "Enter"]);
    let s = t.wait_for("pb-exited-with-5", 1);
    assert!(
        !s.contains("^[["),
        "no raw escape sequences on the screen:\n{s}"
    );
    assert!(!s.contains("error:"), "{s}");
}

#[test]
#[ignore = "needs the console kernel: run `make test-console`"]
fn a_recorded_trace_becomes_text_folded_stacks_and_a_picture() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("trace.pbsh");
    fs::write(
        &script,
        "> attach call-ops gen_000[0-3] record\n> attach direct fib record\n> call gen_0002 2\n\
         > call fib 3\n> trace all\n? trace: 5 event(s), 5 shown\n> exit\n= 0\n",
    )
    .unwrap();
    let log = dir.path().join("console.log");
    let out = output_logged(
        pb_command()
            .arg("console")
            .arg("--script")
            .arg(&script)
            .arg("--log")
            .arg(&log)
            .arg(console_elf()),
        "console --script trace.pbsh --log",
    );
    assert!(out.status.success());
    let out_dir = dir.path().join("trace");
    let out = output_logged(
        pb_command()
            .arg("trace")
            .arg(&log)
            .arg("--out")
            .arg(&out_dir),
        "trace",
    );
    assert!(out.status.success());
    let text = fs::read_to_string(out_dir.join("trace.txt")).unwrap();
    assert!(text.starts_with("5 event(s)\n"), "{text}");
    assert!(text.contains("    3  patchbay::subjects::fib\n"), "{text}");
    let folded = fs::read_to_string(out_dir.join("trace.folded")).unwrap();
    assert_eq!(
        folded,
        "patchbay::shell::call_site;patchbay::subjects::fib 3\n\
         patchbay::shell::call_site;patchbay::subjects::generated::gen_0002 2\n"
    );
    let svg = fs::read_to_string(out_dir.join("trace.svg")).unwrap();
    assert!(svg.contains("When was each function called?"));
}
