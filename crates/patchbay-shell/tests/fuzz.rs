//! Fuzz-style tests over random input from a seeded generator (reproducible: a failure names
//! its seed and input). Bad input must never panic: the parser answers every line with a
//! command or an error, the editor survives any byte stream, globs agree with a slow reference
//! matcher.

use patchbay_shell::{Command, Editor, Event, Glob, PROMPT, complete, editor::MAX_LINE, parse};

/// xorshift64*: small, seeded, good enough to spread inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Words the console knows, their near misses, numbers and pattern pieces.
const WORDS: &[&str] = &[
    "help",
    "sites",
    "attach",
    "detach",
    "list",
    "stats",
    "bench",
    "trace",
    "call",
    "cpus",
    "exit",
    "clear",
    "all",
    "count",
    "record",
    "arg0=1",
    "arg7=0xff",
    "arg8=1",
    "arg=",
    "list",
    "call-ops",
    "direct",
    "direct-far-ops",
    "direct-far-veneer",
    "fexit",
    "rethook",
    "fprobe",
    "brk",
    "kretprobe",
    "mechanisms",
    "ops-scaling",
    "patch-latency",
    "leaf",
    "gen_00*",
    "gen_[0-9]",
    "gen_[",
    "[]",
    "[!]",
    "\\",
    "*",
    "?",
    "0",
    "1",
    "255",
    "256",
    "-1",
    "0x",
    "0xffffffffffffffff",
    "99999999999999999999",
    "attach",
    "::",
    "a::b*",
    "[z-a]",
    "é",
    "\u{7f}",
];

fn random_line(rng: &mut Rng) -> String {
    let mut s = String::new();
    for _ in 0..rng.below(6) {
        if rng.below(4) == 0 {
            // Raw printable or control characters.
            for _ in 0..rng.below(8) {
                s.push(char::from(rng.below(0x80) as u8));
            }
        } else {
            s.push_str(rng.pick(WORDS));
        }
        s.push_str(rng.pick(&[" ", "  ", "\t"]));
    }
    s
}

#[test]
fn the_parser_answers_every_line() {
    for seed in 1..=20_000u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let line = random_line(&mut rng);
        match parse(&line) {
            Ok(cmd) => {
                // What parses has a canonical spelling that parses to the same command.
                let again = parse(&cmd.to_string())
                    .unwrap_or_else(|e| panic!("seed {seed}: {line:?} -> {cmd} -> {e}"));
                assert_eq!(again, cmd, "seed {seed}: {line:?}");
            }
            Err(e) => {
                let msg = e.to_string();
                assert!(
                    !msg.is_empty() && !msg.contains('\n'),
                    "seed {seed}: {msg:?}"
                );
            }
        }
    }
}

#[test]
fn the_editor_survives_any_bytes() {
    let sites: Vec<String> = (0..300).map(|i| format!("x::gen_{i:04}")).collect();
    for seed in 1..=300u64 {
        let mut rng = Rng(seed.wrapping_mul(0x1234_5678_9abc_def1) | 1);
        let mut e = Editor::new(PROMPT);
        let mut out = Vec::new();
        for _ in 0..2000 {
            // Mostly printable, with escapes, controls and high bytes mixed in.
            let b = match rng.below(10) {
                0 => 0x1b,
                1 => *[b'[', b'A', b'B', b'C', b'D', b'3', b'~', b'H', b'F', b'O']
                    .get(rng.below(10))
                    .unwrap(),
                2 => rng.below(0x20) as u8,
                3 => 0x80 + rng.below(0x80) as u8,
                4 => 0x7f,
                _ => 0x20 + rng.below(0x5f) as u8,
            };
            match e.feed(b, &mut out) {
                Some(Event::Line(l)) => {
                    assert!(l.len() <= MAX_LINE);
                    let _ = parse(&l);
                }
                Some(Event::Complete) => {
                    let (line, cursor) = e.line();
                    let c = complete(&line[..cursor], sites.iter().map(String::as_str), &["off"]);
                    e.apply_completion(&c, 8, &mut out);
                }
                Some(Event::Interrupt) | None => {}
            }
            let (line, cursor) = e.line();
            assert!(cursor <= line.len(), "seed {seed}");
            assert!(line.len() <= MAX_LINE, "seed {seed}");
            assert!(
                line.bytes().all(|c| (0x20..0x7f).contains(&c)),
                "seed {seed}"
            );
        }
        assert!(out.iter().all(|&b| b != 0), "the editor never echoes NUL");
    }
}

/// The obvious recursive matcher, for comparison (no classes: `*`, `?`, literals).
fn reference(p: &[u8], t: &[u8]) -> bool {
    match (p.first(), t.first()) {
        (None, None) => true,
        (Some(b'*'), _) => reference(&p[1..], t) || (!t.is_empty() && reference(p, &t[1..])),
        (Some(b'?'), Some(_)) => reference(&p[1..], &t[1..]),
        (Some(a), Some(b)) if a == b => reference(&p[1..], &t[1..]),
        _ => false,
    }
}

#[test]
fn globs_agree_with_a_reference_matcher() {
    let mut rng = Rng(0x5eed);
    for _ in 0..50_000 {
        let pat: String = (0..1 + rng.below(7))
            .map(|_| ['a', 'b', '*', '?', '_'][rng.below(5)])
            .collect();
        let text: String = (0..rng.below(9))
            .map(|_| ['a', 'b', '_'][rng.below(3)])
            .collect();
        let g = Glob::new(&pat).unwrap();
        assert_eq!(
            g.matches(&text),
            reference(pat.as_bytes(), text.as_bytes()),
            "{pat:?} on {text:?}"
        );
    }
}

#[test]
fn random_patterns_never_panic() {
    let mut rng = Rng(77);
    for _ in 0..20_000 {
        let pat: String = (0..rng.below(12))
            .map(|_| char::from(b"ab[]!-\\*?:_z09"[rng.below(14)]))
            .collect();
        if let Ok(g) = Glob::new(&pat) {
            let _ = g.matches("x::ab_z09");
            let _ = g.literal_prefix();
        }
    }
    // And a command built from a valid glob keeps it.
    assert!(matches!(parse("sites [a-c]*"), Ok(Command::Sites { .. })));
}
