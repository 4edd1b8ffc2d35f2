//! The serial console's shell, driven as a terminal would drive it: bytes in, text out. Every
//! command works; bad input of every kind prints one `error:` line and leaves the text and the
//! attachments as they were; recorded events name function, caller and mechanism.
#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(patchbay::ktest::runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

use alloc::string::String;

use patchbay_shell::Mechanism;

use patchbay::{
    kernel_test,
    patch::{sites, text::text_hash},
    shell::{self, Flow, Shell},
    subjects,
    trace::{self, recorder},
};

patchbay::qemu_directives!("timeout=120");

patchbay::test_kernel_main!();

/// Run `line` and return what it printed.
fn run(sh: &mut Shell, line: &str) -> String {
    let mut out = String::new();
    assert_eq!(sh.execute(line, &mut out), Flow::Continue, "{line}");
    out
}

/// `line` must be refused with one error line containing `why`, changing nothing.
fn refused(sh: &mut Shell, line: &str, why: &str) {
    let text = text_hash();
    let attached = trace::attach::attached();
    let ids: alloc::vec::Vec<u32> = sh.attachments().iter().map(|a| a.id).collect();
    let out = run(sh, line);
    assert!(out.starts_with("error: "), "{line}: {out}");
    assert_eq!(out.lines().count(), 1, "{line}: one line, got {out}");
    assert!(out.contains(why), "{line}: {out}");
    assert_eq!(text_hash(), text, "{line}: text changed");
    assert_eq!(trace::attach::attached(), attached, "{line}: ops changed");
    let after: alloc::vec::Vec<u32> = sh.attachments().iter().map(|a| a.id).collect();
    assert_eq!(after, ids, "{line}: attachments changed");
}

#[kernel_test]
fn self_check_passes() {
    shell::self_check().unwrap();
}

#[kernel_test]
fn help_sites_cpus_stats() {
    let mut sh = Shell::new();
    let help = run(&mut sh, "help");
    for cmd in [
        "sites", "attach", "detach", "list", "stats", "bench", "trace", "cpus", "exit",
    ] {
        assert!(help.contains(cmd), "{cmd} missing from help");
    }
    let all = run(&mut sh, "sites");
    // Header, 32 rows, the "more" line: a 4096-site table is bounded.
    assert_eq!(all.lines().count(), 1 + 32 + 1, "{all}");
    assert!(all.contains(" more of "), "{all}");
    let generated = run(&mut sh, "sites gen_00[0-1]? all");
    assert_eq!(generated.lines().count(), 1 + 20);
    let leaf = run(&mut sh, "sites leaf");
    assert!(
        leaf.contains("patchbay::subjects::leaf") && leaf.contains(" off "),
        "{leaf}"
    );
    assert!(run(&mut sh, "cpus").contains("cpu0: online"));
    let stats = run(&mut sh, "stats");
    for what in [
        "recursion guard",
        "shadow stack",
        "near pool",
        "far pool",
        "patch:",
        "trace:",
    ] {
        assert!(stats.contains(what), "{what}: {stats}");
    }
    assert_eq!(run(&mut sh, ""), "");
}

#[kernel_test]
fn every_mechanism_attaches_counts_and_detaches() {
    let boot = text_hash();
    let mut sh = Shell::new();
    for m in Mechanism::ALL.map(Mechanism::name) {
        let out = run(&mut sh, &alloc::format!("attach {m} observe"));
        assert!(out.starts_with("attached #"), "{m}: {out}");
        let site = run(&mut sh, "sites observe");
        assert!(!site.contains(" off "), "{m}: {site}");
        assert_eq!(
            subjects::observe(10),
            37,
            "{m}: the traced function still works"
        );
        run(&mut sh, "call observe 4");
        let list = run(&mut sh, "list");
        assert!(list.contains(&alloc::format!(" {m} ")), "{list}");
        assert!(list.contains("          5 "), "{m}: 5 hits: {list}");
        let id = sh.attachments().iter().next().unwrap().id;
        let out = run(&mut sh, &alloc::format!("detach {id}"));
        assert!(out.contains("restored (5 hits)"), "{m}: {out}");
        assert_eq!(text_hash(), boot, "{m}: text restored");
    }
    assert!(run(&mut sh, "list").starts_with("no attachments"));
}

#[kernel_test]
fn set_arg_changes_what_the_function_sees() {
    let mut sh = Shell::new();
    for m in [
        "list",
        "call-ops",
        "direct",
        "rethook",
        "fprobe",
        "brk",
        "kretprobe",
    ] {
        run(&mut sh, &alloc::format!("attach {m} observe arg0=5"));
        // observe(x) = 3x + 7 (subjects): called with 10, it sees 5.
        assert_eq!(subjects::observe(10), 22, "{m}");
        run(&mut sh, "detach all");
        assert_eq!(subjects::observe(10), 37, "{m}");
    }
}

#[kernel_test]
fn record_then_trace_names_function_caller_and_mechanism() {
    let mut sh = Shell::new();
    run(&mut sh, "trace clear");
    run(&mut sh, "attach call-ops gen_000[0-3] record");
    run(&mut sh, "attach direct fib record");
    run(&mut sh, "call gen_0002 2");
    assert_eq!(subjects::fib(4), 3);
    let trace = run(&mut sh, "trace all");
    let lines: alloc::vec::Vec<&str> = trace.lines().filter(|l| l.starts_with('[')).collect();
    // 2 calls of gen_0002, fib(4): 9 calls.
    assert_eq!(lines.len(), 2 + 9, "{trace}");
    assert!(lines[0].starts_with("[000]"), "{trace}");
    assert!(
        lines[0]
            .contains(": patchbay::subjects::generated::gen_0002 <- patchbay::shell::call_site+0x"),
        "{}",
        lines[0]
    );
    assert!(lines[0].ends_with("(call-ops)"));
    assert!(
        lines[2].contains(": patchbay::subjects::fib <- "),
        "{}",
        lines[2]
    );
    assert!(
        lines[3].contains(": patchbay::subjects::fib <- patchbay::subjects::fib+0x"),
        "{}",
        lines[3]
    );
    assert!(lines[2].ends_with("(direct)"));
    // Timestamps never go backwards.
    let ts = |l: &str| -> u64 { l[6..].split(':').next().unwrap().trim().parse().unwrap() };
    assert!(lines.windows(2).all(|w| ts(w[0]) <= ts(w[1])), "{trace}");
    // Bounded by default, and clear empties it.
    assert!(run(&mut sh, "trace 3").contains("11 event(s), 3 shown"));
    run(&mut sh, "trace clear");
    assert!(run(&mut sh, "trace").contains("trace: 0 event(s)"));
    run(&mut sh, "detach all");
}

#[kernel_test]
fn the_ring_overwrites_and_reports_losses() {
    let mut sh = Shell::new();
    run(&mut sh, "trace clear");
    run(&mut sh, "attach list leaf record");
    let n = recorder::CAPACITY as u64 + 100;
    run(&mut sh, &alloc::format!("call leaf {n}"));
    let out = run(&mut sh, "trace 1");
    assert!(out.starts_with("trace: 100 event(s) lost"), "{out}");
    assert!(out.contains(&alloc::format!("{} event(s), 1 shown", recorder::CAPACITY)));
    run(&mut sh, "detach all");
    run(&mut sh, "trace clear");
}

#[kernel_test]
fn bad_input_changes_nothing() {
    let mut sh = Shell::new();
    run(&mut sh, "attach call-ops leaf");
    run(&mut sh, "attach brk fib");
    refused(&mut sh, "frobnicate", "unknown command");
    refused(&mut sh, "attach", "missing mechanism");
    refused(&mut sh, "attach ftrace leaf", "unknown mechanism");
    refused(&mut sh, "attach list gen_[0-", "bad pattern");
    refused(
        &mut sh,
        "attach list nothing_like_this*",
        "no patch site matches",
    );
    refused(&mut sh, "sites nothing_like_this*", "no patch site matches");
    refused(
        &mut sh,
        "attach call-ops leaf",
        "already attached with call-ops (#1)",
    );
    refused(
        &mut sh,
        "attach call-ops gen_0001 arg1=3",
        "takes 1 argument(s)",
    );
    refused(&mut sh, "attach fexit leaf arg0=1", "fexit runs after");
    // The site has a BRK at its entry: the patcher's validation refuses, text unchanged.
    refused(&mut sh, "attach call-ops fib", "");
    refused(&mut sh, "attach brk fib", "already attached with brk (#2)");
    refused(&mut sh, "detach 99", "no attachment #99");
    refused(&mut sh, "detach x", "not a valid attachment id");
    refused(&mut sh, "call gen_0001 2000000", "at most");
    refused(&mut sh, "call bt_*x", "no patch site matches");
    refused(&mut sh, "bench", "detach all first");
    refused(&mut sh, "exit 300", "not a valid exit code");
    refused(&mut sh, "list extra", "unexpected");
    // fprobe attachments are refused like any other only where they overlap.
    run(&mut sh, "attach fprobe args8");
    run(&mut sh, "attach fprobe observe");
    refused(
        &mut sh,
        "attach fprobe args8",
        "already attached with fprobe (#3)",
    );
    assert!(run(&mut sh, "detach all").contains("detached 4 attachment(s)"));
}

/// Feed terminal bytes; the flow after the last one and everything printed.
fn feed(sh: &mut Shell, bytes: &[u8]) -> (Flow, String) {
    let mut out = String::new();
    let mut flow = Flow::Continue;
    for &b in bytes {
        flow = sh.feed(b, &mut out);
    }
    (flow, out)
}

#[kernel_test]
fn keys_edit_complete_and_recall() {
    let mut sh = Shell::new();
    // Tab completes the command, the mechanism and the site; Enter runs it.
    let (_, out) = feed(&mut sh, b"att\tcall-o\tobser\t\r");
    assert!(
        out.contains("attached #1: call-ops on 1 site(s) (observe)"),
        "{out:?}"
    );
    // Backspace and arrows edit; the line that runs is the edited one.
    let (_, out) = feed(&mut sh, b"lsit\x7f\x7f\x7fist\r");
    assert!(out.contains("observe"), "{out:?}");
    let (_, out) = feed(&mut sh, b"detach al\x1b[D\x1b[Dx\x7f\x1b[C\x1b[Cl\r");
    assert!(out.contains("detached 1 attachment(s)"), "{out:?}");
    // Up recalls the attach; Enter runs it again.
    let (_, out) = feed(&mut sh, b"\x1b[A\x1b[A\x1b[A\r");
    assert!(out.contains("attached #2"), "{out:?}");
    assert_eq!(feed(&mut sh, b"detach all\rexit 7\r").0, Flow::Exit(7));
    // Many candidates: listed, bounded.
    let (_, out) = feed(&mut sh, b"sites gen_0\t");
    assert!(out.contains("more; type more of the name"), "{out:?}");
    feed(&mut sh, b"\x03");
    assert!(sites::all().len() > 4096);
}
