//! `pb trace`: the recording tracer's events, from a console log (`pb console --log`, `pb
//! capture`, `make chainboot`), as text and as pictures.
//!
//! The console's `trace` command prints one line per event:
//!
//! ```text
//! [000]     95804825: patchbay::subjects::generated::gen_0002 <- patchbay::shell::call_site+0x30 (call-ops)
//! ```
//!
//! From those lines `pb trace` writes into the output directory
//!
//! - `trace.txt`: calls per function, and per caller → function (the caller without its offset);
//! - `trace.folded`: the same as folded stacks (`caller;function count`), the input format of
//!   flame-graph tools;
//! - `trace.svg`: a timeline (one lane per function, one tick per call, coloured by mechanism)
//!   above a flame-graph-style picture (callers at the bottom, the functions they called above,
//!   widths proportional to calls).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A console log holding the output of the console's `trace` command
    #[arg(value_name = "LOG")]
    pub log: PathBuf,
    /// Output directory
    #[arg(long, value_name = "DIR", default_value = "target/trace")]
    pub out: PathBuf,
}

/// One recorded call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub cpu: u32,
    pub ts: u64,
    pub func: String,
    /// `symbol+0xoff`, or an address when the kernel had no name for it.
    pub parent: String,
    pub mechanism: String,
}

impl Event {
    /// The caller without its offset: `patchbay::shell::call_site`.
    pub fn caller(&self) -> &str {
        self.parent
            .rsplit_once("+0x")
            .map_or(self.parent.as_str(), |(name, _)| name)
    }
}

/// Parse one `trace` line; `None` for any other line.
pub fn parse_line(line: &str) -> Option<Event> {
    let line = line.trim_end_matches('\r').trim_start();
    let rest = line.strip_prefix('[')?;
    let (cpu, rest) = rest.split_once("] ")?;
    let (ts, rest) = rest.split_once(": ")?;
    let (func, rest) = rest.split_once(" <- ")?;
    let (parent, rest) = rest.rsplit_once(" (")?;
    let mechanism = rest.strip_suffix(')')?;
    Some(Event {
        cpu: cpu.parse().ok()?,
        ts: ts.trim().parse().ok()?,
        func: func.to_string(),
        parent: parent.to_string(),
        mechanism: mechanism.to_string(),
    })
}

/// Every trace event in `log`, in order; a repeated `trace` listing is kept once (events are
/// identified by CPU and timestamp).
pub fn parse_log(log: &str) -> Vec<Event> {
    let mut seen = std::collections::HashSet::new();
    log.lines()
        .filter_map(parse_line)
        .filter(|e| seen.insert((e.cpu, e.ts)))
        .collect()
}

/// `(caller, function) -> calls`, sorted.
fn edges(events: &[Event]) -> BTreeMap<(String, String), u64> {
    let mut m = BTreeMap::new();
    for e in events {
        *m.entry((e.caller().to_string(), e.func.clone()))
            .or_insert(0) += 1;
    }
    m
}

/// The text summary.
pub fn text(events: &[Event]) -> String {
    let mut per_func: BTreeMap<&str, u64> = BTreeMap::new();
    for e in events {
        *per_func.entry(&e.func).or_insert(0) += 1;
    }
    let mut funcs: Vec<(&str, u64)> = per_func.into_iter().collect();
    funcs.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut out = format!("{} event(s)\n\ncalls  function\n", events.len());
    for (f, n) in &funcs {
        let _ = writeln!(out, "{n:>5}  {f}");
    }
    out += "\ncalls  caller -> function\n";
    for ((caller, func), n) in edges(events) {
        let _ = writeln!(out, "{n:>5}  {caller} -> {func}");
    }
    out
}

/// Folded stacks: `caller;function count`, one per line.
pub fn folded(events: &[Event]) -> String {
    edges(events)
        .into_iter()
        .map(|((c, f), n)| format!("{c};{f} {n}\n"))
        .collect()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The last `::` segment, for labels.
fn short(s: &str) -> &str {
    s.rsplit("::").next().unwrap_or(s)
}

const COLORS: [&str; 6] = [
    "#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
];

/// The timeline and the flame-graph-style picture, as one SVG.
pub fn svg(events: &[Event]) -> String {
    const W: f64 = 960.0;
    const LEFT: f64 = 200.0;
    const LANE: f64 = 22.0;
    let mut funcs: Vec<&str> = Vec::new();
    let mut mechs: Vec<&str> = Vec::new();
    for e in events {
        if !funcs.contains(&e.func.as_str()) {
            funcs.push(&e.func);
        }
        if !mechs.contains(&e.mechanism.as_str()) {
            mechs.push(&e.mechanism);
        }
    }
    let timeline_h = 60.0 + LANE * funcs.len() as f64;
    let flame_top = timeline_h + 40.0;
    let height = flame_top + 2.0 * LANE + 60.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"20\" font-size=\"16\" text-anchor=\"middle\">When was each function called? ({} events, timestamps of the kernel's clock)</text>",
        W / 2.0,
        events.len()
    );
    let (t0, t1) = events
        .iter()
        .fold((u64::MAX, 0), |(lo, hi), e| (lo.min(e.ts), hi.max(e.ts)));
    let span = (t1.saturating_sub(t0)).max(1) as f64;
    let x_of = |ts: u64| LEFT + (ts.saturating_sub(t0)) as f64 / span * (W - LEFT - 20.0);
    for (i, f) in funcs.iter().enumerate() {
        let y = 40.0 + LANE * i as f64;
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n<line x1=\"{LEFT}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#ddd\"/>",
            LEFT - 8.0,
            y + 14.0,
            esc(short(f)),
            y + 10.0,
            W - 20.0,
            y + 10.0
        );
    }
    for e in events {
        let lane = funcs.iter().position(|f| *f == e.func).unwrap_or(0);
        let color =
            COLORS[mechs.iter().position(|m| *m == e.mechanism).unwrap_or(0) % COLORS.len()];
        let y = 40.0 + LANE * lane as f64;
        let _ = writeln!(
            s,
            "<rect x=\"{:.1}\" y=\"{y}\" width=\"2\" height=\"{}\" fill=\"{color}\"><title>{} at {} from {} ({})</title></rect>",
            x_of(e.ts),
            LANE - 4.0,
            esc(&e.func),
            e.ts,
            esc(&e.parent),
            esc(&e.mechanism)
        );
    }
    for (i, m) in mechs.iter().enumerate() {
        let _ = writeln!(
            s,
            "<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"{}\">{}</text>",
            LEFT + 120.0 * i as f64,
            timeline_h - 12.0,
            COLORS[i % COLORS.len()],
            LEFT + 14.0 + 120.0 * i as f64,
            timeline_h - 3.0,
            esc(m)
        );
    }
    // Flame-graph style: callers along the bottom, what each called stacked above, widths by
    // calls.
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" font-size=\"16\" text-anchor=\"middle\">Who called what? (callers below, the traced functions above; width = calls)</text>",
        W / 2.0,
        flame_top
    );
    let total = events.len().max(1) as f64;
    let mut callers: BTreeMap<String, Vec<(String, u64)>> = BTreeMap::new();
    for ((c, f), n) in edges(events) {
        callers.entry(c).or_default().push((f, n));
    }
    let mut x = 20.0;
    let unit = (W - 40.0) / total;
    for (caller, called) in &callers {
        let n: u64 = called.iter().map(|c| c.1).sum();
        let w = n as f64 * unit;
        let y = flame_top + 20.0 + LANE;
        let _ = writeln!(
            s,
            "<rect x=\"{x:.1}\" y=\"{y}\" width=\"{:.1}\" height=\"{}\" fill=\"#f4a261\" stroke=\"white\"><title>{} ({n})</title></rect><text x=\"{:.1}\" y=\"{}\">{}</text>",
            w,
            LANE - 2.0,
            esc(caller),
            x + 3.0,
            y + 15.0,
            esc(&clip(short(caller), w))
        );
        let mut fx = x;
        for (f, k) in called {
            let fw = *k as f64 * unit;
            let fy = flame_top + 20.0;
            let _ = writeln!(
                s,
                "<rect x=\"{fx:.1}\" y=\"{fy}\" width=\"{:.1}\" height=\"{}\" fill=\"#e76f51\" stroke=\"white\"><title>{} ({k})</title></rect><text x=\"{:.1}\" y=\"{}\">{}</text>",
                fw,
                LANE - 2.0,
                esc(f),
                fx + 3.0,
                fy + 15.0,
                esc(&clip(short(f), fw))
            );
            fx += fw;
        }
        x += w;
    }
    s + "</svg>\n"
}

/// `label` cut to what fits in `width` pixels (about 7 per character).
fn clip(label: &str, width: f64) -> String {
    let fits = ((width - 6.0) / 7.0).max(0.0) as usize;
    if label.len() <= fits {
        label.to_string()
    } else if fits > 1 {
        format!("{}…", &label[..fits - 1])
    } else {
        String::new()
    }
}

pub fn main(args: Args) -> Result<ExitCode> {
    let log = fs::read_to_string(&args.log)
        .with_context(|| format!("cannot read {}", args.log.display()))?;
    let events = parse_log(&log);
    if events.is_empty() {
        bail!(
            "{}: no trace events (lines of the console's `trace` command) in it",
            args.log.display()
        );
    }
    fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let summary = text(&events);
    for (name, content) in [
        ("trace.txt", summary.clone()),
        ("trace.folded", folded(&events)),
        ("trace.svg", svg(&events)),
    ] {
        let path = args.out.join(name);
        fs::write(&path, content).with_context(|| format!("cannot write {}", path.display()))?;
    }
    print!("{summary}");
    eprintln!(
        "pb: wrote {}/{{trace.txt,trace.folded,trace.svg}}",
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
patchbay> trace\r
[000]     95804825: patchbay::subjects::generated::gen_0002 <- patchbay::shell::call_site+0x30 (call-ops)\r
[000]     95847184: patchbay::subjects::fib <- patchbay::shell::call_site+0x44 (direct)\r
[000]     95847190: patchbay::subjects::fib <- patchbay::subjects::fib+0x2c (direct)\r
[001]     95847200: patchbay::subjects::fib <- 0x40001234 (direct)\r
trace: 4 event(s), 4 shown\r
patchbay> trace\r
[000]     95804825: patchbay::subjects::generated::gen_0002 <- patchbay::shell::call_site+0x30 (call-ops)\r
";

    #[test]
    fn lines_parse() {
        let e = parse_line("[003]   12: a::b <- c::d+0x10 (brk)").unwrap();
        assert_eq!(
            e,
            Event {
                cpu: 3,
                ts: 12,
                func: "a::b".into(),
                parent: "c::d+0x10".into(),
                mechanism: "brk".into()
            }
        );
        assert_eq!(e.caller(), "c::d");
        for bad in [
            "trace: 4 event(s)",
            "[x] 1: a <- b (c)",
            "[0] 1: a b (c)",
            "[0] 1: a <- b",
            "patchbay> ",
        ] {
            assert_eq!(parse_line(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_log_gives_events_once() {
        let events = parse_log(LOG);
        assert_eq!(events.len(), 4, "the repeated listing is not counted twice");
        assert_eq!(events[3].caller(), "0x40001234");
    }

    #[test]
    fn text_and_folded_stacks() {
        let events = parse_log(LOG);
        let t = text(&events);
        assert!(t.starts_with("4 event(s)\n"), "{t}");
        assert!(t.contains("    3  patchbay::subjects::fib\n"), "{t}");
        assert!(t.contains("    1  patchbay::subjects::fib -> patchbay::subjects::fib\n"));
        assert_eq!(
            folded(&events),
            "0x40001234;patchbay::subjects::fib 1\n\
             patchbay::shell::call_site;patchbay::subjects::fib 1\n\
             patchbay::shell::call_site;patchbay::subjects::generated::gen_0002 1\n\
             patchbay::subjects::fib;patchbay::subjects::fib 1\n"
        );
    }

    #[test]
    fn the_picture_has_a_lane_per_function_and_a_box_per_edge() {
        let s = svg(&parse_log(LOG));
        assert!(s.starts_with("<svg") && s.ends_with("</svg>\n"));
        // 4 ticks, 2 mechanism keys, 3 callers, 4 caller -> function boxes.
        assert_eq!(s.matches("<rect x=").count(), 4 + 2 + 3 + 4, "{s}");
        assert!(s.contains(">gen_0002</text>") && s.contains(">fib</text>"));
        assert!(s.contains("When was each function called?"));
        assert!(s.contains("Who called what?"));
    }

    #[test]
    fn labels_are_clipped_to_their_box() {
        assert_eq!(clip("call_site", 200.0), "call_site");
        assert_eq!(clip("call_site", 40.0), "cal…");
        assert_eq!(clip("call_site", 5.0), "");
    }
}
