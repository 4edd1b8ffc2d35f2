//! The console's commands and their parser.
//!
//! A line is split at ASCII whitespace; the first word names the command. Every way a line can
//! be wrong is a [`ParseError`] whose `Display` is the one line the console prints: what is wrong
//! and what to type instead. Parsing never touches kernel state, so a bad line changes nothing.

use alloc::{
    borrow::ToOwned,
    string::{String, ToString},
    vec::Vec,
};
use core::fmt;

use crate::glob::{Glob, GlobError};

/// A tracing mechanism the console can attach with: the rows of the benchmark table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mechanism {
    List,
    CallOps,
    Direct,
    DirectFarOps,
    DirectFarVeneer,
    Fexit,
    Rethook,
    Fprobe,
    Brk,
    Kretprobe,
}

impl Mechanism {
    pub const ALL: [Mechanism; 10] = [
        Mechanism::List,
        Mechanism::CallOps,
        Mechanism::Direct,
        Mechanism::DirectFarOps,
        Mechanism::DirectFarVeneer,
        Mechanism::Fexit,
        Mechanism::Rethook,
        Mechanism::Fprobe,
        Mechanism::Brk,
        Mechanism::Kretprobe,
    ];

    /// The name in commands and in benchmark records.
    pub const fn name(self) -> &'static str {
        match self {
            Mechanism::List => "list",
            Mechanism::CallOps => "call-ops",
            Mechanism::Direct => "direct",
            Mechanism::DirectFarOps => "direct-far-ops",
            Mechanism::DirectFarVeneer => "direct-far-veneer",
            Mechanism::Fexit => "fexit",
            Mechanism::Rethook => "rethook",
            Mechanism::Fprobe => "fprobe",
            Mechanism::Brk => "brk",
            Mechanism::Kretprobe => "kretprobe",
        }
    }

    pub fn from_name(name: &str) -> Option<Mechanism> {
        Mechanism::ALL.into_iter().find(|m| m.name() == name)
    }

    /// A small number that names the mechanism in a trace event (1-based: 0 is "unknown").
    pub const fn code(self) -> u8 {
        self as u8 + 1
    }

    pub fn from_code(code: u8) -> Option<Mechanism> {
        Mechanism::ALL.into_iter().find(|m| m.code() == code)
    }
}

/// What runs when an attached function is called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandlerKind {
    /// Count the call.
    Count,
    /// Count it and write one event into this CPU's trace ring (read with `trace`).
    Record,
    /// Count it and set argument `index` (x0..x7) to `value` before the body runs.
    SetArg { index: u8, value: u64 },
}

impl fmt::Display for HandlerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandlerKind::Count => f.write_str("count"),
            HandlerKind::Record => f.write_str("record"),
            HandlerKind::SetArg { index, value } => write!(f, "arg{index}={value:#x}"),
        }
    }
}

/// The handler names Tab offers (`arg<N>=<value>` is typed out).
pub const HANDLERS: [&str; 3] = ["count", "record", "arg0="];

/// Which part of the benchmark suite `bench` runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchSuite {
    All,
    Mechanisms,
    OpsScaling,
    PatchLatency,
}

impl BenchSuite {
    pub const ALL: [BenchSuite; 4] = [
        BenchSuite::All,
        BenchSuite::Mechanisms,
        BenchSuite::OpsScaling,
        BenchSuite::PatchLatency,
    ];

    /// The suite's name in records (`all`: every suite).
    pub const fn name(self) -> &'static str {
        match self {
            BenchSuite::All => "all",
            BenchSuite::Mechanisms => "mechanisms",
            BenchSuite::OpsScaling => "ops-scaling",
            BenchSuite::PatchLatency => "patch-latency",
        }
    }
}

/// What `detach` removes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DetachTarget {
    Id(u32),
    All,
}

/// One parsed console line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// A blank line: print nothing.
    Empty,
    Help,
    /// List the sites matching `glob` (all without one), at most `limit` lines (`None`: all).
    Sites {
        glob: Option<Glob>,
        limit: Option<usize>,
    },
    Attach {
        mechanism: Mechanism,
        glob: Glob,
        handler: HandlerKind,
    },
    Detach(DetachTarget),
    /// The console's attachments, their sites and hit counts.
    List,
    /// Guard refusals, shadow-stack overflows, pool usage, patch counts, trace ring.
    Stats,
    /// Run (part of) the benchmark suite; `mechanism` narrows the mechanisms suite to one row.
    Bench {
        suite: BenchSuite,
        mechanism: Option<String>,
    },
    /// Print the recorded events (at most `limit`; `None`: all).
    Trace {
        limit: Option<usize>,
    },
    TraceClear,
    /// Call the function of one site `times` times (arguments 1, 2, ... as it takes them).
    Call {
        glob: Glob,
        times: u64,
    },
    Cpus,
    Exit(i32),
}

/// The commands: name, arguments, what it does. `help` prints this table.
pub const COMMANDS: &[(&str, &str, &str)] = &[
    ("help", "", "this list"),
    (
        "sites",
        "[glob] [N|all]",
        "patch sites: name, address, state, owners, mode (first 32 unless N or all)",
    ),
    (
        "attach",
        "<mechanism> <glob> [count|record|argN=V]",
        "trace the matching sites; the handler counts (default), records, or sets an argument",
    ),
    (
        "detach",
        "<id|all>",
        "remove an attachment (or all of them)",
    ),
    ("list", "", "attachments: mechanism, handler, sites, hits"),
    (
        "stats",
        "",
        "guard refusals, shadow-stack overflows, pools, patch counts, trace ring",
    ),
    (
        "bench",
        "[all|mechanisms|ops-scaling|patch-latency] [mechanism]",
        "run the benchmark suite and print its @bench records",
    ),
    (
        "trace",
        "[N|all|clear]",
        "recorded events, oldest first (last 32 unless N or all); clear empties the rings",
    ),
    (
        "call",
        "<site> [times]",
        "call a site's function (arguments 1, 2, ...) to exercise what is attached",
    ),
    ("cpus", "", "the CPUs: id, state, trace ring use"),
    ("exit", "[code]", "end the run with this exit code (0)"),
];

/// Every command name, for completion and suggestions.
pub fn command_names() -> impl Iterator<Item = &'static str> {
    COMMANDS.iter().map(|c| c.0)
}

/// The usage line of `name`: `attach <mechanism> <glob> [count|record|argN=V]`.
pub fn usage(name: &str) -> String {
    match COMMANDS.iter().find(|c| c.0 == name) {
        Some((n, "", _)) => (*n).to_owned(),
        Some((n, args, _)) => alloc::format!("{n} {args}"),
        None => name.to_owned(),
    }
}

/// Why a line is not a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    UnknownCommand {
        word: String,
        suggestion: Option<&'static str>,
    },
    MissingArgument {
        command: &'static str,
        what: &'static str,
    },
    TooManyArguments {
        command: &'static str,
        extra: String,
    },
    UnknownMechanism(String),
    UnknownHandler(String),
    UnknownSuite(String),
    BadNumber {
        what: &'static str,
        text: String,
    },
    BadGlob {
        pattern: String,
        error: GlobError,
    },
    /// A non-printable or non-ASCII byte in the line.
    BadChar(char),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::UnknownCommand { word, suggestion } => {
                write!(f, "unknown command {word:?}; ")?;
                if let Some(s) = suggestion {
                    write!(f, "did you mean {s:?}? ")?;
                }
                f.write_str("(type help for the list)")
            }
            ParseError::MissingArgument { command, what } => {
                write!(f, "{command}: missing {what}; usage: {}", usage(command))
            }
            ParseError::TooManyArguments { command, extra } => write!(
                f,
                "{command}: unexpected {extra:?}; usage: {}",
                usage(command)
            ),
            ParseError::UnknownMechanism(m) => {
                write!(f, "unknown mechanism {m:?}; one of: ")?;
                list(f, Mechanism::ALL.iter().map(|m| m.name()))
            }
            ParseError::UnknownHandler(h) => write!(
                f,
                "unknown handler {h:?}; one of: count, record, argN=V (N in 0..7, e.g. arg0=42)"
            ),
            ParseError::UnknownSuite(s) => {
                write!(f, "unknown suite {s:?}; one of: ")?;
                list(f, BenchSuite::ALL.iter().map(|s| s.name()))
            }
            ParseError::BadNumber { what, text } => {
                write!(f, "{text:?} is not a valid {what}")
            }
            ParseError::BadGlob { pattern, error } => {
                write!(f, "bad pattern {pattern:?}: {error}")
            }
            ParseError::BadChar(c) => {
                write!(f, "the line contains {c:?}; commands are printable ASCII")
            }
        }
    }
}

fn list<'a>(f: &mut fmt::Formatter<'_>, names: impl Iterator<Item = &'a str>) -> fmt::Result {
    for (i, n) in names.enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        f.write_str(n)?;
    }
    Ok(())
}

/// Parse one console line.
pub fn parse(line: &str) -> Result<Command, ParseError> {
    if let Some(c) = line
        .chars()
        .find(|&c| !(c.is_ascii_graphic() || c == ' ' || c == '\t'))
    {
        return Err(ParseError::BadChar(c));
    }
    let mut words = line.split_ascii_whitespace();
    let Some(name) = words.next() else {
        return Ok(Command::Empty);
    };
    let args: Vec<&str> = words.collect();
    let Some(&(command, _, _)) = COMMANDS.iter().find(|c| c.0 == name) else {
        return Err(ParseError::UnknownCommand {
            word: name.to_owned(),
            suggestion: suggest(name),
        });
    };
    let mut args = Args {
        command,
        rest: args.into_iter(),
    };
    let cmd = match command {
        "help" => Command::Help,
        "sites" => {
            let mut glob = None;
            let mut limit = Some(crate::DEFAULT_LIMIT);
            if let Some(first) = args.next() {
                match count_arg(first) {
                    Some(n) => limit = n,
                    None => {
                        glob = Some(glob_arg(first)?);
                        if let Some(second) = args.next() {
                            limit = count_arg(second).ok_or_else(|| ParseError::BadNumber {
                                what: "line count (a number or all)",
                                text: second.into(),
                            })?;
                        }
                    }
                }
            }
            Command::Sites { glob, limit }
        }
        "attach" => {
            let m = args.required("mechanism")?;
            let mechanism =
                Mechanism::from_name(m).ok_or_else(|| ParseError::UnknownMechanism(m.into()))?;
            let glob = glob_arg(args.required("site glob")?)?;
            let handler = match args.next() {
                None => HandlerKind::Count,
                Some(h) => handler_arg(h)?,
            };
            Command::Attach {
                mechanism,
                glob,
                handler,
            }
        }
        "detach" => {
            let t = args.required("attachment id (or all)")?;
            if t == "all" {
                Command::Detach(DetachTarget::All)
            } else {
                let id = number(t, "attachment id (a number from list, or all)")?;
                let id = u32::try_from(id).map_err(|_| ParseError::BadNumber {
                    what: "attachment id (a number from list, or all)",
                    text: t.into(),
                })?;
                Command::Detach(DetachTarget::Id(id))
            }
        }
        "list" => Command::List,
        "stats" => Command::Stats,
        "bench" => {
            let suite = match args.next() {
                None => BenchSuite::All,
                Some(s) => BenchSuite::ALL
                    .into_iter()
                    .find(|b| b.name() == s)
                    .ok_or_else(|| ParseError::UnknownSuite(s.into()))?,
            };
            let mechanism = args.next().map(String::from);
            Command::Bench { suite, mechanism }
        }
        "trace" => match args.next() {
            None => Command::Trace {
                limit: Some(crate::DEFAULT_LIMIT),
            },
            Some("clear") => Command::TraceClear,
            Some(n) => Command::Trace {
                limit: count_arg(n).ok_or_else(|| ParseError::BadNumber {
                    what: "event count (a number, all, or clear)",
                    text: n.into(),
                })?,
            },
        },
        "call" => {
            let glob = glob_arg(args.required("site")?)?;
            let times = match args.next() {
                None => 1,
                Some(t) => number(t, "call count")?,
            };
            Command::Call { glob, times }
        }
        "cpus" => Command::Cpus,
        "exit" => Command::Exit(match args.next() {
            None => 0,
            Some(c) => {
                let v = number(c, "exit code (0..255)")?;
                if v > 255 {
                    return Err(ParseError::BadNumber {
                        what: "exit code (0..255)",
                        text: c.into(),
                    });
                }
                v as i32
            }
        }),
        _ => unreachable!("every entry of COMMANDS is parsed above"),
    };
    args.done()?;
    Ok(cmd)
}

struct Args<'a> {
    command: &'static str,
    rest: alloc::vec::IntoIter<&'a str>,
}

impl<'a> Args<'a> {
    fn next(&mut self) -> Option<&'a str> {
        self.rest.next()
    }

    fn required(&mut self, what: &'static str) -> Result<&'a str, ParseError> {
        self.next().ok_or(ParseError::MissingArgument {
            command: self.command,
            what,
        })
    }

    fn done(mut self) -> Result<(), ParseError> {
        match self.next() {
            None => Ok(()),
            Some(extra) => Err(ParseError::TooManyArguments {
                command: self.command,
                extra: extra.into(),
            }),
        }
    }
}

fn glob_arg(p: &str) -> Result<Glob, ParseError> {
    Glob::new(p).map_err(|error| ParseError::BadGlob {
        pattern: p.into(),
        error,
    })
}

/// `all` (no limit) or a positive number; `None` if neither.
fn count_arg(s: &str) -> Option<Option<usize>> {
    if s == "all" {
        return Some(None);
    }
    match number(s, "") {
        Ok(n) if n > 0 => usize::try_from(n).ok().map(Some),
        _ => None,
    }
}

/// A decimal or `0x` hexadecimal number.
fn number(s: &str, what: &'static str) -> Result<u64, ParseError> {
    let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    parsed.map_err(|_| ParseError::BadNumber {
        what,
        text: s.into(),
    })
}

fn handler_arg(h: &str) -> Result<HandlerKind, ParseError> {
    match h {
        "count" => return Ok(HandlerKind::Count),
        "record" => return Ok(HandlerKind::Record),
        _ => {}
    }
    let bad = || ParseError::UnknownHandler(h.into());
    let rest = h.strip_prefix("arg").ok_or_else(bad)?;
    let (index, value) = rest.split_once('=').ok_or_else(bad)?;
    let index: u8 = index.parse().map_err(|_| bad())?;
    if index > 7 {
        return Err(bad());
    }
    let value = number(value, "argument value").map_err(|_| bad())?;
    Ok(HandlerKind::SetArg { index, value })
}

/// The command `word` most likely meant: one edit away (or a prefix of exactly one).
fn suggest(word: &str) -> Option<&'static str> {
    let mut prefixed = command_names().filter(|n| n.starts_with(word));
    if let (Some(only), None) = (prefixed.next(), prefixed.next()) {
        return Some(only);
    }
    command_names().find(|n| edit_distance(word, n) == 1)
}

/// Levenshtein distance, capped work: both strings are short command names or typos of them.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len().abs_diff(b.len()) > 2 || a.len() > 32 {
        return usize::MAX;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, &ca) in a.iter().enumerate() {
        let mut cur = alloc::vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

impl fmt::Display for Command {
    /// The canonical spelling of the command (parses back to the same command).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let limit = |l: &Option<usize>| l.map_or("all".to_string(), |n| n.to_string());
        match self {
            Command::Empty => Ok(()),
            Command::Help => f.write_str("help"),
            Command::Sites { glob, limit: l } => match glob {
                Some(g) => write!(f, "sites {} {}", g.as_str(), limit(l)),
                None => write!(f, "sites {}", limit(l)),
            },
            Command::Attach {
                mechanism,
                glob,
                handler,
            } => write!(f, "attach {} {} {handler}", mechanism.name(), glob.as_str()),
            Command::Detach(DetachTarget::All) => f.write_str("detach all"),
            Command::Detach(DetachTarget::Id(id)) => write!(f, "detach {id}"),
            Command::List => f.write_str("list"),
            Command::Stats => f.write_str("stats"),
            Command::Bench { suite, mechanism } => {
                write!(f, "bench {}", suite.name())?;
                match mechanism {
                    Some(m) => write!(f, " {m}"),
                    None => Ok(()),
                }
            }
            Command::Trace { limit: l } => write!(f, "trace {}", limit(l)),
            Command::TraceClear => f.write_str("trace clear"),
            Command::Call { glob, times } => write!(f, "call {} {times}", glob.as_str()),
            Command::Cpus => f.write_str("cpus"),
            Command::Exit(code) => write!(f, "exit {code}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Command {
        parse(line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
    }

    fn err(line: &str) -> String {
        parse(line).unwrap_err().to_string()
    }

    #[test]
    fn every_command_parses() {
        assert_eq!(ok(""), Command::Empty);
        assert_eq!(ok("   \t "), Command::Empty);
        assert_eq!(ok("help"), Command::Help);
        assert_eq!(
            ok("sites"),
            Command::Sites {
                glob: None,
                limit: Some(crate::DEFAULT_LIMIT)
            }
        );
        assert_eq!(
            ok("sites all"),
            Command::Sites {
                glob: None,
                limit: None
            }
        );
        assert_eq!(
            ok("sites gen_* 5"),
            Command::Sites {
                glob: Some(Glob::new("gen_*").unwrap()),
                limit: Some(5)
            }
        );
        assert_eq!(
            ok("  attach   list  leaf "),
            Command::Attach {
                mechanism: Mechanism::List,
                glob: Glob::new("leaf").unwrap(),
                handler: HandlerKind::Count
            }
        );
        assert_eq!(
            ok("attach fexit args8 arg3=0x10"),
            Command::Attach {
                mechanism: Mechanism::Fexit,
                glob: Glob::new("args8").unwrap(),
                handler: HandlerKind::SetArg {
                    index: 3,
                    value: 16
                }
            }
        );
        assert_eq!(ok("detach 3"), Command::Detach(DetachTarget::Id(3)));
        assert_eq!(ok("detach all"), Command::Detach(DetachTarget::All));
        assert_eq!(ok("list"), Command::List);
        assert_eq!(ok("stats"), Command::Stats);
        assert_eq!(
            ok("bench"),
            Command::Bench {
                suite: BenchSuite::All,
                mechanism: None
            }
        );
        assert_eq!(
            ok("bench mechanisms call-ops+record"),
            Command::Bench {
                suite: BenchSuite::Mechanisms,
                mechanism: Some("call-ops+record".into())
            }
        );
        assert_eq!(ok("trace clear"), Command::TraceClear);
        assert_eq!(ok("trace all"), Command::Trace { limit: None });
        assert_eq!(ok("trace 7"), Command::Trace { limit: Some(7) });
        assert_eq!(
            ok("call fib 3"),
            Command::Call {
                glob: Glob::new("fib").unwrap(),
                times: 3
            }
        );
        assert_eq!(ok("cpus"), Command::Cpus);
        assert_eq!(ok("exit"), Command::Exit(0));
        assert_eq!(ok("exit 3"), Command::Exit(3));
    }

    #[test]
    fn display_round_trips() {
        for line in [
            "help",
            "sites 32",
            "sites gen_0* all",
            "attach kretprobe fib record",
            "attach direct-far-veneer gen_00[0-3]? arg7=0xffffffffffffffff",
            "detach all",
            "detach 12",
            "bench patch-latency",
            "bench mechanisms brk",
            "trace 5",
            "trace clear",
            "call leaf 1000",
            "cpus",
            "exit 255",
        ] {
            let c = ok(line);
            assert_eq!(ok(&c.to_string()), c, "{line}");
        }
    }

    #[test]
    fn errors_are_one_clear_line() {
        assert_eq!(
            err("atach list leaf"),
            "unknown command \"atach\"; did you mean \"attach\"? (type help for the list)"
        );
        assert_eq!(
            err("st"),
            "unknown command \"st\"; did you mean \"stats\"? (type help for the list)"
        );
        assert_eq!(
            err("frobnicate"),
            "unknown command \"frobnicate\"; (type help for the list)"
        );
        assert_eq!(
            err("attach"),
            "attach: missing mechanism; usage: attach <mechanism> <glob> [count|record|argN=V]"
        );
        assert_eq!(
            err("attach list"),
            "attach: missing site glob; usage: attach <mechanism> <glob> [count|record|argN=V]"
        );
        assert!(
            err("attach ftrace leaf")
                .starts_with("unknown mechanism \"ftrace\"; one of: list, call-ops,")
        );
        assert_eq!(
            err("attach list gen_[0-"),
            "bad pattern \"gen_[0-\": '[' at column 5 has no closing ']'"
        );
        assert!(err("attach list leaf arg8=1").starts_with("unknown handler \"arg8=1\""));
        assert!(err("attach list leaf argx=1").starts_with("unknown handler"));
        assert!(err("attach list leaf arg1").starts_with("unknown handler"));
        assert_eq!(
            err("attach list leaf count extra"),
            "attach: unexpected \"extra\"; usage: attach <mechanism> <glob> [count|record|argN=V]"
        );
        assert_eq!(
            err("detach x"),
            "\"x\" is not a valid attachment id (a number from list, or all)"
        );
        assert_eq!(
            err("detach 99999999999"),
            "\"99999999999\" is not a valid attachment id (a number from list, or all)"
        );
        assert!(err("bench fast").starts_with("unknown suite \"fast\""));
        assert_eq!(err("exit 256"), "\"256\" is not a valid exit code (0..255)");
        assert_eq!(err("exit -1"), "\"-1\" is not a valid exit code (0..255)");
        assert!(err("sites leaf 0").contains("not a valid line count"));
        assert!(err("trace -3").contains("not a valid event count"));
        assert_eq!(
            err("list\u{7}"),
            "the line contains '\\u{7}'; commands are printable ASCII"
        );
        assert_eq!(err("help me"), "help: unexpected \"me\"; usage: help");
    }

    #[test]
    fn mechanism_codes_round_trip() {
        for m in Mechanism::ALL {
            assert_eq!(Mechanism::from_code(m.code()), Some(m));
            assert_eq!(Mechanism::from_name(m.name()), Some(m));
            assert_ne!(m.code(), 0);
        }
        assert_eq!(Mechanism::from_code(0), None);
    }

    #[test]
    fn help_table_is_complete() {
        let names: Vec<&str> = command_names().collect();
        for required in [
            "help", "sites", "attach", "detach", "list", "stats", "bench", "trace", "cpus", "exit",
        ] {
            assert!(names.contains(&required), "{required}");
        }
        // Every command of the table parses (the `unreachable!` above never fires).
        for name in names {
            let _ = parse(name);
        }
    }
}
