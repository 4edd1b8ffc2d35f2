//! `pb linux-table`: the Linux/patchbay table redrawn from the committed records, no download
//! and no QEMU (`make linux-compare` is what boots Linux).

use std::path::PathBuf;

mod common;
use common::{output_logged, pb_command, stderr, stdout};

/// A file of the repository's `bench/`.
fn bench(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../bench")
        .join(name)
}

#[test]
fn redraws_the_committed_comparison() {
    for (release, call_ops) in [
        ("6.12.95+deb12-arm64", "CALL_OPS"),
        ("6.1.0-50-arm64", "no CALL_OPS"),
    ] {
        let out = output_logged(
            pb_command()
                .arg("linux-table")
                .arg(bench(&format!("linux-{release}.jsonl")))
                .arg(bench("baseline.jsonl")),
            "",
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let text = stdout(&out);
        assert!(
            text.contains(&format!("(board linux-{release}, {call_ops})")),
            "{text}"
        );
        for row in [
            "call-ops ",
            "list, 2 ops ",
            "brk ",
            "call-ops+record          ",
            "n/a (patchbay: not yet)  -           kprobe event, recording",
        ] {
            assert!(text.lines().any(|l| l.starts_with(row)), "{row}: {text}");
        }
        assert!(text.contains("fprobe events entry+exit, recording  unavailable"));
        let recording = text
            .lines()
            .find(|l| l.starts_with("call-ops+record "))
            .unwrap();
        assert!(
            recording.contains("function tracer, recording"),
            "{recording}"
        );
        assert!(text.contains("\ncross-check: the PMU's instruction counter"));
    }
}

#[test]
fn refuses_records_that_are_not_linux_runs() {
    let out = output_logged(
        pb_command()
            .arg("linux-table")
            .arg(bench("baseline.jsonl"))
            .arg(bench("baseline.jsonl")),
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not the records of `pb linux-compare`"),
        "{}",
        stderr(&out)
    );
}
