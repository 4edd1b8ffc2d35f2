//! The line editor: bytes from a VT100-style terminal in, echo bytes and finished lines out.
//!
//! | key | bytes | effect |
//! |---|---|---|
//! | printable | `0x20..=0x7e` | insert at the cursor |
//! | Backspace | `0x7f`, `0x08` | delete before the cursor |
//! | Delete | `ESC [ 3 ~` | delete at the cursor |
//! | ← → | `ESC [ D`, `ESC [ C` | move |
//! | ↑ ↓ | `ESC [ A`, `ESC [ B` | previous / next history line |
//! | Home End, Ctrl-A Ctrl-E | `ESC [ H`, `ESC [ F`, `ESC O H`, `ESC O F`, `ESC [ 1 ~`, `ESC [ 4 ~`, `0x01`, `0x05` | start / end of line |
//! | Ctrl-U | `0x15` | clear the line |
//! | Ctrl-C | `0x03` | abandon the line (`^C`, new prompt) |
//! | Tab | `0x09` | [`Event::Complete`]: the caller asks [`crate::complete`] and calls [`Editor::apply_completion`] |
//! | Enter | `\r`, `\n`, `\r\n` | [`Event::Line`] |
//!
//! Anything else (other control bytes, unknown escape sequences, bytes ≥ 0x80) is ignored, so
//! line noise cannot put the editor into a state it does not leave at the next Enter.

use alloc::{string::String, vec::Vec};
use core::fmt::Write;

use crate::complete::Completion;

/// Lines kept for ↑/↓.
pub const HISTORY: usize = 64;
/// Longest line; further printable bytes are refused with a bell.
pub const MAX_LINE: usize = 512;

const BELL: &[u8] = b"\x07";

/// What a byte completed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Enter: the finished line (also added to the history when not blank).
    Line(String),
    /// Tab: complete the word before the cursor.
    Complete,
    /// Ctrl-C: the line was abandoned and a new prompt printed.
    Interrupt,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Esc {
    None,
    /// After `ESC`.
    Start,
    /// After `ESC [` or `ESC O`, with the numeric parameter so far.
    Csi(u16),
}

/// One terminal line being edited.
#[derive(Clone, Debug)]
pub struct Editor {
    prompt: &'static str,
    line: Vec<u8>,
    cursor: usize,
    history: Vec<String>,
    /// Which history line ↑/↓ shows (`None`: the line being typed).
    browsing: Option<usize>,
    /// The line being typed, kept while browsing the history.
    draft: Vec<u8>,
    esc: Esc,
    /// The last byte was `\r` (so a following `\n` is the same Enter).
    after_cr: bool,
}

impl Editor {
    pub fn new(prompt: &'static str) -> Self {
        Editor {
            prompt,
            line: Vec::new(),
            cursor: 0,
            history: Vec::new(),
            browsing: None,
            draft: Vec::new(),
            esc: Esc::None,
            after_cr: false,
        }
    }

    /// The prompt, to print before the first line.
    pub fn prompt(&self) -> &'static str {
        self.prompt
    }

    /// The line so far and the cursor's byte offset in it.
    pub fn line(&self) -> (&str, usize) {
        // Only printable ASCII is ever inserted.
        (core::str::from_utf8(&self.line).unwrap_or(""), self.cursor)
    }

    pub fn history(&self) -> &[String] {
        &self.history
    }

    /// Feed one byte from the terminal; what the terminal must show is appended to `out`.
    pub fn feed(&mut self, b: u8, out: &mut Vec<u8>) -> Option<Event> {
        let after_cr = core::mem::replace(&mut self.after_cr, b == b'\r');
        match self.esc {
            Esc::Start => {
                self.esc = match b {
                    b'[' | b'O' => Esc::Csi(0),
                    _ => Esc::None,
                };
                return None;
            }
            Esc::Csi(param) => {
                self.esc = Esc::None;
                match b {
                    b'0'..=b'9' => {
                        let p = param.saturating_mul(10).saturating_add(u16::from(b - b'0'));
                        self.esc = Esc::Csi(p);
                    }
                    b'A' => self.history_step(true, out),
                    b'B' => self.history_step(false, out),
                    b'C' => self.move_to(self.cursor + 1, out),
                    b'D' => self.move_to(self.cursor.saturating_sub(1), out),
                    b'H' => self.move_to(0, out),
                    b'F' => self.move_to(self.line.len(), out),
                    b'~' => match param {
                        1 | 7 => self.move_to(0, out),
                        4 | 8 => self.move_to(self.line.len(), out),
                        3 => self.delete_at_cursor(out),
                        _ => {}
                    },
                    // Any other final byte ends an unknown sequence; parameter separators go on.
                    b';' => self.esc = Esc::Csi(0),
                    _ => {}
                }
                return None;
            }
            Esc::None => {}
        }
        match b {
            b'\r' | b'\n' => {
                if b == b'\n' && after_cr {
                    return None;
                }
                out.extend_from_slice(b"\r\n");
                let line: String = core::mem::take(&mut self.line)
                    .into_iter()
                    .map(char::from)
                    .collect();
                self.cursor = 0;
                self.browsing = None;
                self.draft.clear();
                if !line.trim().is_empty() && self.history.last() != Some(&line) {
                    if self.history.len() == HISTORY {
                        self.history.remove(0);
                    }
                    self.history.push(line.clone());
                }
                return Some(Event::Line(line));
            }
            0x1b => self.esc = Esc::Start,
            b'\t' => return Some(Event::Complete),
            0x03 => {
                out.extend_from_slice(b"^C\r\n");
                self.line.clear();
                self.cursor = 0;
                self.browsing = None;
                out.extend_from_slice(self.prompt.as_bytes());
                return Some(Event::Interrupt);
            }
            0x7f | 0x08 => {
                if self.cursor == 0 {
                    out.extend_from_slice(BELL);
                } else {
                    self.cursor -= 1;
                    self.line.remove(self.cursor);
                    if self.cursor == self.line.len() {
                        out.extend_from_slice(b"\x08 \x08");
                    } else {
                        self.redraw(out);
                    }
                }
            }
            0x01 => self.move_to(0, out),
            0x05 => self.move_to(self.line.len(), out),
            0x15 => {
                self.line.clear();
                self.cursor = 0;
                self.redraw(out);
            }
            0x20..=0x7e => self.insert(&[b], out),
            _ => {}
        }
        None
    }

    fn insert(&mut self, text: &[u8], out: &mut Vec<u8>) {
        if self.line.len() + text.len() > MAX_LINE {
            out.extend_from_slice(BELL);
            return;
        }
        let at_end = self.cursor == self.line.len();
        self.line
            .splice(self.cursor..self.cursor, text.iter().copied());
        self.cursor += text.len();
        if at_end {
            out.extend_from_slice(text);
        } else {
            self.redraw(out);
        }
    }

    fn delete_at_cursor(&mut self, out: &mut Vec<u8>) {
        if self.cursor < self.line.len() {
            self.line.remove(self.cursor);
            self.redraw(out);
        } else {
            out.extend_from_slice(BELL);
        }
    }

    fn move_to(&mut self, to: usize, out: &mut Vec<u8>) {
        let to = to.min(self.line.len());
        if to < self.cursor {
            cursor_left(out, self.cursor - to);
        } else if to > self.cursor {
            out.extend_from_slice(&self.line[self.cursor..to]);
        }
        self.cursor = to;
    }

    fn history_step(&mut self, back: bool, out: &mut Vec<u8>) {
        let n = self.history.len();
        let next = match (self.browsing, back) {
            (None, true) if n > 0 => Some(n - 1),
            (Some(i), true) => Some(i.saturating_sub(1)),
            (Some(i), false) if i + 1 < n => Some(i + 1),
            (Some(_), false) => None,
            _ => {
                out.extend_from_slice(BELL);
                return;
            }
        };
        if self.browsing.is_none() {
            self.draft = core::mem::take(&mut self.line);
        }
        self.browsing = next;
        self.line = match next {
            Some(i) => self.history[i].as_bytes().to_vec(),
            None => core::mem::take(&mut self.draft),
        };
        self.cursor = self.line.len();
        self.redraw(out);
    }

    /// Rewrite the whole line: carriage return, prompt, text, erase to end of line, cursor back.
    fn redraw(&self, out: &mut Vec<u8>) {
        out.push(b'\r');
        out.extend_from_slice(self.prompt.as_bytes());
        out.extend_from_slice(&self.line);
        out.extend_from_slice(b"\x1b[K");
        cursor_left(out, self.line.len() - self.cursor);
    }

    /// Apply what [`crate::complete`] found for the word before the cursor: extend it by the
    /// candidates' common prefix (plus a space when there is exactly one), or list them (at most
    /// `limit`) and redraw the line, or ring the bell when there is nothing.
    pub fn apply_completion(&mut self, c: &Completion, limit: usize, out: &mut Vec<u8>) {
        let typed = self.cursor.saturating_sub(c.start);
        let common = c.common_prefix();
        match c.candidates.len() {
            0 => out.extend_from_slice(BELL),
            1 => {
                let mut add = common.as_bytes()[typed.min(common.len())..].to_vec();
                add.push(b' ');
                self.insert(&add, out);
            }
            _ if common.len() > typed => self.insert(&common.as_bytes()[typed..], out),
            n => {
                out.extend_from_slice(b"\r\n");
                let mut text = String::new();
                for cand in c.candidates.iter().take(limit) {
                    let _ = write!(text, "{cand}  ");
                }
                if n > limit {
                    let _ = write!(text, "... {} more; type more of the name", n - limit);
                }
                out.extend_from_slice(text.trim_end().as_bytes());
                out.extend_from_slice(b"\r\n");
                self.redraw(out);
            }
        }
    }
}

fn cursor_left(out: &mut Vec<u8>, n: usize) {
    if n > 0 {
        let _ = write!(Bytes(out), "\x1b[{n}D");
    }
}

/// `fmt::Write` into a byte vector.
struct Bytes<'a>(&'a mut Vec<u8>);

impl Write for Bytes<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    /// Feed `keys`; the events and everything echoed.
    fn type_keys(e: &mut Editor, keys: &[u8]) -> (Vec<Event>, Vec<u8>) {
        let mut out = Vec::new();
        let events = keys.iter().filter_map(|&b| e.feed(b, &mut out)).collect();
        (events, out)
    }

    fn line(s: &str) -> Event {
        Event::Line(s.into())
    }

    #[test]
    fn typing_and_enter() {
        let mut e = Editor::new("> ");
        let (ev, out) = type_keys(&mut e, b"list\r\n");
        assert_eq!(ev, [line("list")]);
        assert_eq!(out, b"list\r\n", "CR LF is one Enter");
        let (ev, _) = type_keys(&mut e, b"stats\n\n");
        assert_eq!(ev, [line("stats"), line("")]);
        assert_eq!(e.history(), ["list", "stats"], "blank lines are not kept");
    }

    #[test]
    fn backspace_at_end_and_in_the_middle() {
        let mut e = Editor::new("> ");
        let (_, out) = type_keys(&mut e, b"lisx\x7f");
        assert_eq!(out, b"lisx\x08 \x08");
        assert_eq!(e.line(), ("lis", 3));
        let (_, out) = type_keys(&mut e, b"t\x1b[D\x1b[D\x08");
        assert_eq!(e.line(), ("lst", 1));
        assert!(out.ends_with(b"\r> lst\x1b[K\x1b[2D"), "{:?}", out);
        let (ev, _) = type_keys(&mut e, b"i\r");
        assert_eq!(ev, [line("list")]);
        let (_, out) = type_keys(&mut e, b"\x7f");
        assert_eq!(out, BELL, "nothing to delete");
    }

    #[test]
    fn arrows_home_end_delete() {
        let mut e = Editor::new("> ");
        type_keys(&mut e, b"ac\x1b[Db");
        assert_eq!(e.line(), ("abc", 2));
        type_keys(&mut e, b"\x1b[H");
        assert_eq!(e.line().1, 0);
        type_keys(&mut e, b"\x1b[3~");
        assert_eq!(e.line(), ("bc", 0));
        type_keys(&mut e, b"\x05");
        assert_eq!(e.line().1, 2);
        type_keys(&mut e, b"\x01\x1b[C\x1b[C\x1b[C\x1b[C");
        assert_eq!(e.line().1, 2, "right stops at the end");
        type_keys(&mut e, b"\x1bOH");
        assert_eq!(e.line().1, 0);
        type_keys(&mut e, b"\x1b[4~");
        assert_eq!(e.line().1, 2);
        type_keys(&mut e, b"\x15");
        assert_eq!(e.line(), ("", 0));
    }

    #[test]
    fn history_up_down_keeps_the_draft() {
        let mut e = Editor::new("> ");
        type_keys(&mut e, b"one\rtwo\rtwo\rdra");
        assert_eq!(e.history(), ["one", "two"], "repeats are kept once");
        type_keys(&mut e, b"\x1b[A");
        assert_eq!(e.line(), ("two", 3));
        type_keys(&mut e, b"\x1b[A\x1b[A");
        assert_eq!(e.line(), ("one", 3), "stops at the oldest");
        type_keys(&mut e, b"\x1b[B");
        assert_eq!(e.line().0, "two");
        type_keys(&mut e, b"\x1b[B");
        assert_eq!(e.line().0, "dra", "back to the draft");
        let (_, out) = type_keys(&mut e, b"\x1b[B");
        assert_eq!(out, BELL);
        // Editing a recalled line and entering it.
        let (ev, _) = type_keys(&mut e, b"\x15\x1b[A\x7f\x7f\x7fthree\r");
        assert_eq!(ev, [line("three")]);
    }

    #[test]
    fn history_is_bounded() {
        let mut e = Editor::new("> ");
        for i in 0..HISTORY + 10 {
            type_keys(&mut e, alloc::format!("cmd{i}\r").as_bytes());
        }
        assert_eq!(e.history().len(), HISTORY);
        assert_eq!(e.history()[0], "cmd10");
    }

    #[test]
    fn ctrl_c_abandons_the_line() {
        let mut e = Editor::new("> ");
        let (ev, out) = type_keys(&mut e, b"attach li\x03");
        assert_eq!(ev, [Event::Interrupt]);
        assert!(out.ends_with(b"^C\r\n> "));
        assert_eq!(e.line(), ("", 0));
        assert!(e.history().is_empty());
    }

    #[test]
    fn tab_asks_for_completion() {
        let mut e = Editor::new("> ");
        let (ev, _) = type_keys(&mut e, b"att\t");
        assert_eq!(ev, [Event::Complete]);
        let mut out = Vec::new();
        let c = Completion {
            start: 0,
            candidates: vec!["attach".into()],
        };
        e.apply_completion(&c, 32, &mut out);
        assert_eq!(e.line(), ("attach ", 7));
        assert_eq!(out, b"ach ");
        // Several: the common prefix first, then a listing.
        type_keys(&mut e, b"direct");
        let c = Completion {
            start: 7,
            candidates: vec![
                "direct".into(),
                "direct-far-ops".into(),
                "direct-far-veneer".into(),
            ],
        };
        let mut out = Vec::new();
        e.apply_completion(&c, 32, &mut out);
        assert_eq!(
            out,
            b"\r\ndirect  direct-far-ops  direct-far-veneer\r\n\r> attach direct\x1b[K"
        );
        let c = Completion {
            start: 7,
            candidates: vec!["direct-far-ops".into(), "direct-far-veneer".into()],
        };
        let mut out = Vec::new();
        e.apply_completion(&c, 32, &mut out);
        assert_eq!(e.line().0, "attach direct-far-");
        let mut out2 = Vec::new();
        e.apply_completion(&Completion::default(), 32, &mut out2);
        assert_eq!(out2, BELL);
        // A bounded listing.
        let c = Completion {
            start: 7,
            candidates: (0..100).map(|i| alloc::format!("direct-far-{i}")).collect(),
        };
        let mut out = Vec::new();
        e.apply_completion(&c, 3, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("direct-far-2  ... 97 more"), "{text}");
    }

    #[test]
    fn noise_is_ignored_and_lines_stay_bounded() {
        let mut e = Editor::new("> ");
        let (ev, _) = type_keys(&mut e, b"\x00\x02\x1b[99;5Z\xff\x80\x1bxok\r");
        assert_eq!(ev, [line("ok")]);
        let long = vec![b'a'; MAX_LINE + 5];
        let (_, out) = type_keys(&mut e, &long);
        assert_eq!(e.line().0.len(), MAX_LINE);
        assert!(out.ends_with(BELL));
    }
}
