//! The HTML report in a real browser: `pb parse` of the committed baseline writes
//! `report.html`, and headless Chromium loads it, checks that every section is there, that the
//! tables have rows and that every chart image decoded (none broken), and takes a screenshot.
//!
//! Needs Chromium, so it is `#[ignore]`d in a plain `cargo test`; `make test-report` installs
//! Debian's `chromium` if it is missing and runs it with `--ignored` (`PB_CHROMIUM` names another
//! binary).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

mod common;
use common::{output_logged, pb_command};

fn chromium() -> String {
    env::var("PB_CHROMIUM").unwrap_or_else(|_| "chromium".into())
}

/// Headless Chromium with a fresh profile and nothing reaching out to the network.
fn browser(profile: &Path) -> Command {
    let mut c = Command::new(chromium());
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--allow-file-access-from-files",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

/// The page the browser loads: the report in a frame, and a script that inspects it once
/// everything (frame, images) has loaded and writes what it found into `#result`.
const CHECK: &str = r#"<!DOCTYPE html>
<html><body>
<iframe id="r" src="report.html" width="1200" height="900"></iframe>
<pre id="result">not loaded</pre>
<script>
window.addEventListener('load', () => {
  const d = document.getElementById('r').contentDocument;
  const imgs = Array.from(d.querySelectorAll('img'));
  const result = {
    title: d.title,
    sections: Array.from(d.querySelectorAll('section')).map(s => s.id),
    tables: d.querySelectorAll('table').length,
    rows: d.querySelectorAll('tbody tr').length,
    images: imgs.length,
    broken: imgs.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.getAttribute('src')),
    captions: Array.from(d.querySelectorAll('figcaption')).map(f => f.textContent),
  };
  document.getElementById('result').textContent = 'RESULT ' + JSON.stringify(result);
});
</script>
</body></html>
"#;

fn report_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bench");
    let baseline = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/baseline.jsonl");
    let o = output_logged(
        pb_command()
            .arg("parse")
            .arg(&baseline)
            .arg("--out")
            .arg(&out),
        "parse baseline.jsonl",
    );
    assert!(o.status.success());
    assert!(out.join("report.html").is_file());
    (dir, out)
}

#[test]
#[ignore = "needs Chromium: run `make test-report`"]
fn the_report_renders_with_every_section_and_no_broken_image() {
    let (dir, out) = report_dir();
    fs::write(out.join("check.html"), CHECK).unwrap();
    let o = output_logged(
        browser(&dir.path().join("profile"))
            .arg("--virtual-time-budget=10000")
            .arg("--dump-dom")
            .arg(format!("file://{}", out.join("check.html").display())),
        "chromium --dump-dom",
    );
    assert!(o.status.success());
    let dom = String::from_utf8_lossy(&o.stdout);
    let json = dom
        .split("RESULT ")
        .nth(1)
        .and_then(|s| s.split("</pre>").next())
        .unwrap_or_else(|| panic!("the check script did not run:\n{dom}"));
    let json = json
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">");
    let r: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(r["title"], "patchbay benchmark report");
    assert_eq!(
        r["sections"],
        serde_json::json!(["run", "verdict", "tables", "charts", "files"])
    );
    // Verdict, mechanisms, ops-scaling, patch-latency.
    assert!(r["tables"].as_u64().unwrap() >= 4, "{r}");
    assert!(r["rows"].as_u64().unwrap() >= 40, "{r}");
    assert_eq!(r["images"], 5, "{r}");
    assert_eq!(r["broken"], serde_json::json!([]), "{r}");
    for caption in r["captions"].as_array().unwrap() {
        assert!(
            caption.as_str().unwrap().contains('?'),
            "a question: {caption}"
        );
    }
}

#[test]
#[ignore = "needs Chromium: run `make test-report`"]
fn a_screenshot_of_the_report_is_not_blank() {
    let (dir, out) = report_dir();
    let png = dir.path().join("report.png");
    let o = output_logged(
        browser(&dir.path().join("profile"))
            .arg("--window-size=1100,2400")
            .arg(format!("--screenshot={}", png.display()))
            .arg(format!("file://{}", out.join("report.html").display())),
        "chromium --screenshot",
    );
    assert!(o.status.success());
    let bytes = fs::read(&png).unwrap();
    assert_eq!(&bytes[1..4], b"PNG");
    // A blank 1100x2400 page compresses to a few KiB; tables and charts do not.
    assert!(bytes.len() > 60_000, "{} bytes", bytes.len());
    if let Some(keep) = env::var_os("PB_REPORT_SCREENSHOT") {
        fs::copy(&png, keep).unwrap();
    }
}
