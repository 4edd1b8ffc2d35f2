//! Suite-by-suite progress instead of raw `@bench` lines on the terminal (`pb run --records`,
//! which `make qemu` uses): the records are kept in a file, the person watching sees
//!
//! ```text
//! bench: running the suite (unit instructions, mode qemu-icount)
//! bench: mechanisms     ...................................... 39 records
//! bench: ops-scaling    ................ 16 records
//! bench: patch-latency  .......... 10 records
//! ```
//!
//! Every other console line passes through unchanged.

use std::io::{self, Write};

use crate::records::{self, Record};

/// A console stream with its `@bench` records replaced by progress.
pub struct Progress<W: Write> {
    inner: W,
    /// The start of a line not yet complete.
    partial: Vec<u8>,
    /// The suite whose progress line is open, and its record count so far.
    open: Option<(String, usize)>,
}

impl<W: Write> Progress<W> {
    pub fn new(inner: W) -> Self {
        Progress {
            inner,
            partial: Vec::new(),
            open: None,
        }
    }

    /// End the open progress line with its count.
    fn close(&mut self) -> io::Result<()> {
        if let Some((_, n)) = self.open.take() {
            writeln!(self.inner, " {n} records")?;
        }
        Ok(())
    }

    fn line(&mut self, line: &[u8]) -> io::Result<()> {
        let text = String::from_utf8_lossy(line);
        match records::parse_line(text.trim_end()) {
            Some(Ok(Record::Header(h))) => {
                self.close()?;
                writeln!(
                    self.inner,
                    "bench: running the suite (unit {}, mode {})",
                    h.unit, h.mode
                )?;
            }
            Some(Ok(Record::Result(r))) => {
                if self.open.as_ref().is_none_or(|(s, _)| *s != r.suite) {
                    self.close()?;
                    write!(self.inner, "bench: {:<14}", r.suite)?;
                    self.open = Some((r.suite.clone(), 0));
                }
                if let Some((_, n)) = &mut self.open {
                    *n += 1;
                }
                write!(self.inner, ".")?;
            }
            Some(Ok(Record::End(n))) => {
                self.close()?;
                writeln!(self.inner, "bench: done, {n} result records")?;
            }
            // A malformed record is shown as it is: the person should see it.
            Some(Err(_)) | None => {
                self.close()?;
                self.inner.write_all(line)?;
            }
        }
        self.inner.flush()
    }
}

impl<W: Write> Write for Progress<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.partial.extend_from_slice(buf);
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            self.line(&line)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::tests::{HEADER, result};

    #[test]
    fn records_become_progress_and_the_rest_passes() {
        let mut log = format!("boot line\r\n@bench {HEADER}\r\n");
        for (suite, mechanism) in [
            ("mechanisms", "twin"),
            ("mechanisms", "off"),
            ("ops-scaling", "list"),
        ] {
            log += &format!("@bench {}\r\n", result(suite, mechanism, "leaf", 7, ""));
        }
        log += "@bench {\"type\":\"end\",\"records\":3}\r\nafter\n";
        let mut out = Vec::new();
        {
            let mut p = Progress::new(&mut out);
            // Arbitrary chunks, not lines.
            for chunk in log.as_bytes().chunks(5) {
                p.write_all(chunk).unwrap();
            }
        }
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("@bench"), "{text}");
        assert!(
            text.starts_with("boot line\r\nbench: running the suite (unit instructions"),
            "{text}"
        );
        assert!(
            text.contains("bench: mechanisms    .. 2 records\n"),
            "{text}"
        );
        assert!(
            text.contains("bench: ops-scaling   . 1 records\n"),
            "{text}"
        );
        assert!(text.contains("bench: done, 3 result records\n"), "{text}");
        assert!(text.ends_with("after\n"));
    }

    #[test]
    fn a_bad_record_is_shown() {
        let mut out = Vec::new();
        Progress::new(&mut out)
            .write_all(b"@bench {\"type\":\"result\"\n")
            .unwrap();
        assert_eq!(out, b"@bench {\"type\":\"result\"\n");
    }
}
