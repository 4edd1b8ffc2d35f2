//! End-to-end tests of `pb parse` and `pb compare` on small files in a temporary directory (no
//! QEMU needed).

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::{output_logged, pb_command, stderr, stdout};

const ICOUNT_HEADER: &str = r#"{"type":"header","version":1,"git":"7e91686","board":"qemu_virt","cpu":"Cortex-A72","midr":"0x410fd083","ctr_el0":"0x8444c004","clock":"pmccntr","mode":"qemu-icount","unit":"instructions","read_cost":6}"#;
const HARDWARE_HEADER: &str = r#"{"type":"header","version":1,"board":"rpi4","clock":"pmccntr","mode":"hardware","unit":"cycles"}"#;

fn result(mechanism: &str, subject: &str, unit: &str, median: u64, extra: &str) -> String {
    format!(
        r#"{{"type":"result","suite":"mechanisms","mechanism":"{mechanism}","subject":"{subject}","metric":"call","unit":"{unit}","iters":1000,"min":{median},"median":{median},"mean":{median}.0,"p99":{median},"max":{median}{extra}}}"#
    )
}

/// A JSON-lines file: `header`, then results (mechanism, median) on subject `leaf`.
fn jsonl(dir: &Path, name: &str, header: &str, unit: &str, results: &[(&str, u64)]) -> PathBuf {
    let mut text = format!("{header}\n");
    for (m, median) in results {
        text += &result(
            m,
            "leaf",
            unit,
            *median,
            r#","baseline":null,"overhead":null"#,
        );
        text += "\n";
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn pb(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    output_logged(pb_command().args(args.iter().map(|a| a.as_ref())), "")
}

#[test]
fn compare_identical_runs_passes() {
    let dir = tempfile::tempdir().unwrap();
    let runs = [("twin", 7), ("off", 9)];
    let a = jsonl(dir.path(), "a.jsonl", ICOUNT_HEADER, "instructions", &runs);
    let b = jsonl(dir.path(), "b.jsonl", ICOUNT_HEADER, "instructions", &runs);
    let out = pb(&[&"compare", &a, &b]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(
        text.contains("mechanisms/off/leaf/call   9  9      0     0.0%  ok"),
        "{text}"
    );
    assert!(
        text.contains("2 records: 2 ok, 0 better, 0 REGRESSION, 0 missing, 0 new (threshold 0%)")
    );
}

#[test]
fn compare_one_instruction_more_fails() {
    let dir = tempfile::tempdir().unwrap();
    let a = jsonl(
        dir.path(),
        "a.jsonl",
        ICOUNT_HEADER,
        "instructions",
        &[("twin", 7), ("off", 9)],
    );
    let b = jsonl(
        dir.path(),
        "b.jsonl",
        ICOUNT_HEADER,
        "instructions",
        &[("twin", 7), ("off", 10)],
    );
    let out = pb(&[&"compare", &a, &b]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("+1   +11.1%  REGRESSION"),
        "{}",
        stdout(&out)
    );
    assert!(stderr(&out).contains("pb: REGRESSION mechanisms/off/leaf/call: median 9 -> 10"));
    // Within an explicit threshold it passes.
    let out = pb(&[&"compare", &"--threshold", &"20", &a, &b]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn compare_missing_record_fails() {
    let dir = tempfile::tempdir().unwrap();
    let a = jsonl(
        dir.path(),
        "a.jsonl",
        ICOUNT_HEADER,
        "instructions",
        &[("twin", 7), ("off", 9)],
    );
    let b = jsonl(
        dir.path(),
        "b.jsonl",
        ICOUNT_HEADER,
        "instructions",
        &[("off", 9)],
    );
    let out = pb(&[&"compare", &a, &b]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("pb: missing from B: mechanisms/twin/leaf/call"));
}

#[test]
fn compare_hardware_needs_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let a = jsonl(
        dir.path(),
        "a.jsonl",
        HARDWARE_HEADER,
        "cycles",
        &[("off", 100)],
    );
    let b = jsonl(
        dir.path(),
        "b.jsonl",
        HARDWARE_HEADER,
        "cycles",
        &[("off", 104)],
    );
    let out = pb(&[&"compare", &a, &b]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("hardware/qemu numbers are noisy: pass --threshold PCT"));
    let out = pb(&[&"compare", &"--threshold", &"5", &a, &b]);
    assert_eq!(out.status.code(), Some(0));
    let out = pb(&[&"compare", &"--threshold", &"2", &a, &b]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn compare_refuses_different_units() {
    let dir = tempfile::tempdir().unwrap();
    let a = jsonl(
        dir.path(),
        "a.jsonl",
        ICOUNT_HEADER,
        "instructions",
        &[("off", 9)],
    );
    let b = jsonl(
        dir.path(),
        "b.jsonl",
        HARDWARE_HEADER,
        "cycles",
        &[("off", 9)],
    );
    let out = pb(&[&"compare", &"--threshold", &"10", &a, &b]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("different units"), "{}", stderr(&out));
}

/// A console log as a real board's serial capture might look: noise, `\r\n`.
fn console_log(with_end: bool) -> String {
    let mut lines = vec![
        "U-Boot 2024.01\r".to_string(),
        format!("@bench {HARDWARE_HEADER}\r"),
        format!(
            "@bench {}\r",
            result(
                "twin",
                "leaf",
                "cycles",
                20,
                r#","baseline":null,"overhead":null"#
            )
        ),
        "some kernel chatter\r".to_string(),
        format!(
            "@bench {}\r",
            result(
                "off",
                "leaf",
                "cycles",
                23,
                r#","baseline":"twin","overhead":3"#
            )
        ),
    ];
    if with_end {
        lines.push(r#"@bench {"type":"end","records":2}"#.to_string() + "\r");
    }
    lines.join("\n") + "\n"
}

#[test]
fn parse_console_log_writes_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("board.log");
    std::fs::write(&log, console_log(true)).unwrap();
    let out_dir = dir.path().join("out");
    let out = pb(&[&"parse", &log, &"--out", &out_dir]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(
        text.contains("unit: cycles (hardware, pmccntr) — medians; (+n) = over baseline twin"),
        "{text}"
    );
    assert!(text.contains("off        23 (+3)"), "{text}");
    let jsonl = std::fs::read_to_string(out_dir.join("latest.jsonl")).unwrap();
    assert_eq!(jsonl.lines().count(), 3);
    assert_eq!(jsonl.lines().next(), Some(HARDWARE_HEADER));
    let csv = std::fs::read_to_string(out_dir.join("latest.csv")).unwrap();
    assert_eq!(
        csv.lines().nth(2),
        Some("mechanisms,off,leaf,call,cycles,1000,23,23,23,23,23,twin,3,,,")
    );
    let svg = std::fs::read_to_string(out_dir.join("latest.svg")).unwrap();
    assert!(svg.starts_with("<svg"));

    // The written JSON lines parse back into the same outputs.
    let again = dir.path().join("again");
    let out = pb(&[&"parse", &out_dir.join("latest.jsonl"), &"--out", &again]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        std::fs::read_to_string(again.join("latest.csv")).unwrap(),
        csv
    );
    // And compare as identical to the console log.
    let out = pb(&[
        &"compare",
        &"--threshold",
        &"0",
        &log,
        &out_dir.join("latest.jsonl"),
    ]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn parse_truncated_log_fails() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("cut.log");
    std::fs::write(&log, console_log(false)).unwrap();
    let out_dir = dir.path().join("out");
    let out = pb(&[&"parse", &log, &"--out", &out_dir]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no end record: the log is truncated (2 result records parsed)"),
        "{}",
        stderr(&out)
    );
    assert!(!out_dir.join("latest.jsonl").exists());

    std::fs::write(
        &log,
        console_log(true).replace("\"median\":23", "\"median\":\"23\""),
    )
    .unwrap();
    let out = pb(&[&"parse", &log, &"--out", &out_dir]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("line 5: result: invalid type: string \"23\""),
        "{err}"
    );
    assert!(err.contains("1 bad record line in the log"), "{err}");

    let out = pb(&[&"parse", &dir.path().join("nonexistent.log")]);
    assert_eq!(out.status.code(), Some(2));
}
