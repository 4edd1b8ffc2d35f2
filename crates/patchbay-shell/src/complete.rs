//! Tab completion: which word the cursor is in, and what may stand there.
//!
//! | position | candidates |
//! |---|---|
//! | the first word | command names |
//! | `attach` 1st / 2nd / 3rd | mechanisms / site names / handlers |
//! | `sites`, `call` 1st | site names |
//! | `bench` 1st / 2nd | suites / the suite's mechanisms |
//! | `detach` 1st | `all` |
//! | `trace` 1st | `all`, `clear` |
//! | `help` | nothing (it takes no argument) |
//!
//! Site names complete by their short name (`gen_0012`) unless the word contains `::`, then by
//! the full path. A word that already holds a wildcard is a pattern, not a name: no candidates.

use alloc::{string::String, vec::Vec};

use crate::command::{BenchSuite, HANDLERS, Mechanism, command_names};
use crate::glob::short_name;

/// The candidates for the word that starts at byte `start` of the line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Completion {
    pub start: usize,
    /// Sorted, without duplicates.
    pub candidates: Vec<String>,
}

impl Completion {
    /// The longest prefix every candidate shares.
    pub fn common_prefix(&self) -> &str {
        let Some(first) = self.candidates.first() else {
            return "";
        };
        let mut len = first.len();
        for c in &self.candidates[1..] {
            len = first
                .bytes()
                .zip(c.bytes())
                .take(len)
                .take_while(|(a, b)| a == b)
                .count();
        }
        &first[..len]
    }
}

/// Complete the last word of `before` (the line up to the cursor). `sites` are full site names;
/// `bench_mechanisms` the mechanism names of the benchmark suite.
pub fn complete<'a>(
    before: &str,
    sites: impl Iterator<Item = &'a str>,
    bench_mechanisms: &[&str],
) -> Completion {
    let start = before
        .rfind(|c: char| c.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    let word = &before[start..];
    let previous: Vec<&str> = before[..start].split_ascii_whitespace().collect();
    let mut out: Vec<String> = Vec::new();
    let mut offer = |name: &str| {
        if name.starts_with(word) {
            out.push(name.into());
        }
    };
    let site_names = |out: &mut Vec<String>| {
        if word.contains(['*', '?', '[', '\\']) {
            return;
        }
        let full = word.contains("::");
        for s in sites {
            let name = if full { s } else { short_name(s) };
            if name.starts_with(word) {
                out.push(name.into());
            }
        }
    };
    match previous.as_slice() {
        [] => command_names().for_each(&mut offer),
        ["attach"] => Mechanism::ALL.iter().for_each(|m| offer(m.name())),
        ["attach", _] | ["sites"] | ["call"] => site_names(&mut out),
        ["attach", _, _] => HANDLERS.iter().for_each(|h| offer(h)),
        ["bench"] => BenchSuite::ALL.iter().for_each(|s| offer(s.name())),
        ["bench", "mechanisms"] => bench_mechanisms.iter().for_each(|m| offer(m)),
        ["detach"] => offer("all"),
        ["trace"] => ["all", "clear"].iter().for_each(|w| offer(w)),
        _ => {}
    }
    out.sort_unstable();
    out.dedup();
    Completion {
        start,
        candidates: out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::{format, vec};

    fn sites() -> Vec<String> {
        let mut v: Vec<String> = ["leaf", "args8", "fib", "observe"]
            .iter()
            .map(|n| format!("patchbay::subjects::{n}"))
            .collect();
        v.extend((0..4096).map(|i| format!("patchbay::subjects::generated::gen_{i:04}")));
        v
    }

    fn c(before: &str) -> Completion {
        let s = sites();
        complete(
            before,
            s.iter().map(String::as_str),
            &["twin", "off", "call-ops"],
        )
    }

    #[test]
    fn commands() {
        assert_eq!(c("at").candidates, ["attach"]);
        assert_eq!(c("").candidates.len(), crate::command::COMMANDS.len());
        assert_eq!(c("s").candidates, ["sites", "stats"]);
        assert_eq!(c("s").common_prefix(), "s");
        assert_eq!(c("  tr").start, 2);
        assert_eq!(c("zz").candidates, Vec::<String>::new());
    }

    #[test]
    fn attach_arguments() {
        assert_eq!(
            c("attach direct").candidates,
            ["direct", "direct-far-ops", "direct-far-veneer"]
        );
        assert_eq!(c("attach direct").common_prefix(), "direct");
        assert_eq!(c("attach list le").candidates, ["leaf"]);
        let gen00 = c("attach list gen_00");
        assert_eq!(gen00.candidates.len(), 100);
        assert_eq!(gen00.common_prefix(), "gen_00");
        assert_eq!(gen00.start, 12);
        assert_eq!(c("attach list leaf r").candidates, ["record"]);
        assert_eq!(
            c("attach list leaf ").candidates,
            ["arg0=", "count", "record"]
        );
        assert!(c("attach list gen_00* ").candidates.len() == 3);
        assert!(c("attach list leaf count ").candidates.is_empty());
    }

    #[test]
    fn site_names_short_full_and_patterns() {
        assert_eq!(c("sites fi").candidates, ["fib"]);
        assert_eq!(
            c("sites patchbay::subjects::f").candidates,
            ["patchbay::subjects::fib"]
        );
        assert!(
            c("sites gen_*").candidates.is_empty(),
            "a pattern, not a name"
        );
        assert_eq!(c("call obs").candidates, ["observe"]);
        assert_eq!(c("call ").candidates.len(), 4100);
    }

    #[test]
    fn other_commands() {
        assert_eq!(
            c("bench ").candidates,
            ["all", "mechanisms", "ops-scaling", "patch-latency"]
        );
        assert_eq!(c("bench mechanisms c").candidates, ["call-ops"]);
        assert!(c("bench ops-scaling ").candidates.is_empty());
        assert_eq!(c("detach a").candidates, ["all"]);
        assert_eq!(c("trace c").candidates, ["clear"]);
        assert!(c("help ").candidates.is_empty());
    }

    #[test]
    fn common_prefix_of_nothing_and_one() {
        assert_eq!(Completion::default().common_prefix(), "");
        let one = Completion {
            start: 0,
            candidates: vec!["abc".into()],
        };
        assert_eq!(one.common_prefix(), "abc");
    }
}
