//! `pb chainload`: push a kernel over the UART to the patchbay chainloader on a board, then
//! stream its console (`make chainboot`).
//!
//! 1. wait for the loader's `PBCL READY` (reset the board if it does not come),
//! 2. send the header (length, CRC32, transfer baud rate) and wait for `ACK`,
//! 3. send the payload page by page (zero pages as one byte), each after the loader acknowledged
//!    the one before, with a progress bar,
//! 4. wait for `OK` (CRC32 verified by the loader) — or `ERR`, then start over; after two
//!    failures at the fast rate, fall back to the console rate,
//! 5. stream the console until the kernel's final line; exit with its code.
//!
//! Protocol and framing: the `patchbay-chainloader` crate, shared with the loader.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use patchbay_chainloader::{
    CONSOLE_BAUD, Header, Message, PAGE, PAGE_ACK, TAG_DATA, encode_payload,
};

use crate::image;
use crate::link::{self, Lines, Link, Target};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Flash the chainloader once (make BSP=rpi4 flash-chainloader BOOT=...), then every `make \
chainboot` pushes the new kernel: the loader checks the length against its room and the CRC32 \
before it jumps, and refuses (with the reason) a corrupt or oversized image; pb then retries. \
Reset the board at any time: pb waits for the loader and starts over.

Exit status: the kernel's exit code (from its final line); 1 if the connection closed before \
it; 124 on --timeout; 2 if the push failed (after --retries) or pb itself failed.")]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    /// Baud rate for the transfer (the console stays at 115200); 115200 disables switching
    #[arg(long, value_name = "BAUD", default_value_t = 921_600)]
    pub baud: u32,
    /// Attempts after the first one fails
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub retries: u32,
    /// Seconds to wait for the chainloader to announce itself; 0: forever
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub wait: u64,
    /// Stop streaming the console after this many seconds; 0: at the kernel's final line only
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    pub timeout: u64,
    /// Also write the console (from the kernel's start) to this file, for `pb parse`
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Testing: make attempt N (in order given) fail on purpose: `corrupt` flips a payload
    /// byte, `oversize` claims more room than the loader has
    #[arg(long, value_name = "FAULT", hide = true)]
    pub inject: Vec<Fault>,
    /// The kernel: an ELF (its raw image is built as `pb objcopy` does) or a raw kernel8.img
    #[arg(value_name = "KERNEL")]
    pub kernel: PathBuf,
}

/// A deliberate failure, for the end-to-end tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Fault {
    Corrupt,
    Oversize,
}

/// A reply from the loader, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Reply {
    Ready { max: u32, load: u64, version: u16 },
    Ack,
    Ok { crc: u32 },
    Err(String),
}

impl Reply {
    fn from_line(line: &str) -> Option<Self> {
        Some(match Message::parse(line)? {
            Message::Ready { version, max, load } => Reply::Ready { max, load, version },
            Message::Ack { .. } => Reply::Ack,
            Message::Ok { crc, .. } => Reply::Ok { crc },
            Message::Err(why) => Reply::Err(why.to_string()),
        })
    }
}

/// The raw image and the memory it needs once running (the arm64 Image header's image_size).
pub fn load_kernel(path: &std::path::Path) -> Result<(Vec<u8>, u32)> {
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let bytes = if bytes.starts_with(b"\x7fELF") {
        image::load(path)?.bytes
    } else {
        bytes
    };
    let mem_len = if bytes.len() >= 64 && &bytes[56..60] == b"ARM\x64" {
        u64::from_le_bytes(bytes[16..24].try_into().unwrap_or_default())
    } else {
        0
    };
    let len = u32::try_from(bytes.len()).context("the image is larger than 4 GiB")?;
    let mem_len = u32::try_from(mem_len).unwrap_or(u32::MAX).max(len);
    Ok((bytes, mem_len))
}

/// What [`push`] needs.
pub struct Push<'a> {
    pub image: &'a [u8],
    pub mem_len: u32,
    /// Transfer baud rate; [`CONSOLE_BAUD`] for none.
    pub baud: u32,
    pub retries: u32,
    /// How long to wait for `READY`; `None`: forever.
    pub wait: Option<Duration>,
    pub inject: &'a [Fault],
}

/// What was received after the loader's `OK`: the kernel's first output.
#[derive(Debug, Default)]
pub struct Rest {
    pub lines: Vec<String>,
    pub partial: Lines,
}

// ---------------------------------------------------------------------------------------------
// The retry policy: pure, so each transition has a host test.
// ---------------------------------------------------------------------------------------------

/// Why one attempt failed, in a way that allows another.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Failure {
    /// `ERR` in answer to the header (e.g. the image does not fit).
    HeaderRefused(String),
    /// No `ACK` to the header in time (`None`), or another reply instead.
    HeaderUnanswered(Option<Reply>),
    /// `ERR` after the payload (e.g. the CRC32 did not match).
    ImageRefused(String),
    /// `READY` instead of a verdict: the board was reset during the transfer.
    Reset,
    /// No verdict in time (`None`), or another reply instead.
    NoVerdict(Option<Reply>),
}

impl Failure {
    /// The problem, as the final error quotes it.
    fn problem(&self) -> String {
        match self {
            Failure::HeaderRefused(why) | Failure::ImageRefused(why) => why.clone(),
            Failure::HeaderUnanswered(other) => format!("no answer to the header ({other:?})"),
            Failure::Reset => "the board was reset during the transfer".into(),
            Failure::NoVerdict(other) => format!("no verdict from the chainloader ({other:?})"),
        }
    }

    /// What pb prints when it happens.
    fn notice(&self) -> String {
        match self {
            Failure::HeaderRefused(why) => format!("the chainloader refused the header: {why}"),
            Failure::ImageRefused(why) => format!("the chainloader refused the image: {why}"),
            Failure::HeaderUnanswered(_) | Failure::Reset => {
                format!("{}; starting over", self.problem())
            }
            Failure::NoVerdict(_) => self.problem(),
        }
    }

    /// Did the payload go over the wire (at the transfer rate) before it failed?
    fn after_payload(&self) -> bool {
        matches!(
            self,
            Failure::ImageRefused(_) | Failure::Reset | Failure::NoVerdict(_)
        )
    }
}

/// The loader's answer to the header: go on with the payload, or a [`Failure`].
fn header_answer(reply: Option<Reply>) -> Result<(), Failure> {
    match reply {
        Some(Reply::Ack) => Ok(()),
        Some(Reply::Err(why)) => Err(Failure::HeaderRefused(why)),
        other => Err(Failure::HeaderUnanswered(other)),
    }
}

/// How an attempt ended after the payload.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// `OK` with the CRC32 pb sent: the kernel runs.
    Verified,
    /// `OK` with another CRC32: pb and the loader disagree on the checksum; retrying cannot help.
    CrcDisagrees { loader: u32 },
    /// Worth another attempt.
    Retry(Failure),
}

/// The loader's reply after the payload, for an image whose CRC32 is `sent_crc`.
fn verdict(reply: Option<Reply>, sent_crc: u32) -> Verdict {
    match reply {
        Some(Reply::Ok { crc }) if crc == sent_crc => Verdict::Verified,
        Some(Reply::Ok { crc }) => Verdict::CrcDisagrees { loader: crc },
        Some(Reply::Err(why)) => Verdict::Retry(Failure::ImageRefused(why)),
        Some(Reply::Ready { .. }) => Verdict::Retry(Failure::Reset),
        other => Verdict::Retry(Failure::NoVerdict(other)),
    }
}

/// After a failed attempt: try again (at `baud`), or give up.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// `fell_back`: this failure moved the transfer to [`CONSOLE_BAUD`].
    Retry {
        fell_back: bool,
    },
    GiveUp {
        attempts: u32,
        problem: String,
    },
}

/// Attempts left, and the transfer rate: two failures after a payload sent at a fast rate move
/// the rest to [`CONSOLE_BAUD`] (a marginal cable or adapter).
#[derive(Debug)]
struct RetryPolicy {
    /// Attempts made so far (the current one included once it failed).
    attempt: u32,
    retries: u32,
    baud: u32,
    fast_failures: u32,
}

impl RetryPolicy {
    fn new(retries: u32, baud: u32) -> Self {
        RetryPolicy {
            attempt: 0,
            retries,
            baud,
            fast_failures: 0,
        }
    }

    /// The transfer rate for the next attempt.
    fn baud(&self) -> u32 {
        self.baud
    }

    /// The attempt about to start, from 0.
    fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Records that the current attempt failed.
    fn failed(&mut self, failure: &Failure) -> Next {
        self.attempt += 1;
        let mut fell_back = false;
        if failure.after_payload() && self.baud != CONSOLE_BAUD {
            self.fast_failures += 1;
            if self.fast_failures >= 2 {
                self.baud = CONSOLE_BAUD;
                fell_back = true;
            }
        }
        if self.attempt > self.retries {
            Next::GiveUp {
                attempts: self.attempt,
                problem: failure.problem(),
            }
        } else {
            Next::Retry { fell_back }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The wire: one attempt's steps.
// ---------------------------------------------------------------------------------------------

/// How long the loader may take to acknowledge the header.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the loader may take to check the image after the last page.
const VERDICT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the loader may take to acknowledge a page (4 KiB at 115200 baud is 0.36 s).
const PAGE_TIMEOUT: Duration = Duration::from_secs(5);

/// The link to the loader and what was read from it but not yet consumed.
struct Wire<'a> {
    link: &'a mut dyn Link,
    lines: Lines,
    pending: Vec<String>,
    /// Where the board's own lines (not loader messages) are echoed.
    out: &'a mut dyn Write,
}

/// What the handshake found.
enum Handshake {
    /// `READY`: the loader's room and load address.
    Ready { max: u32, load: u64 },
    /// A late `OK` for this very image (a previous attempt's verdict that timed out): it runs.
    AlreadyRunning,
}

/// What came back after a page.
enum PageAck {
    Acked,
    /// A loader message instead (a refusal, or READY after a reset).
    Instead(Reply),
    /// Nothing within [`PAGE_TIMEOUT`].
    Silent,
}

impl Wire<'_> {
    /// Waits for the next loader message, echoing other lines (the board's own output). `None`
    /// on timeout.
    fn next_reply(&mut self, timeout: Option<Duration>) -> Result<Option<Reply>> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut buf = [0u8; 1024];
        loop {
            while !self.pending.is_empty() {
                let line = self.pending.remove(0);
                match Reply::from_line(&line) {
                    Some(r) => return Ok(Some(r)),
                    None if !line.trim().is_empty() => {
                        let _ = writeln!(self.out, "{line}");
                    }
                    None => {}
                }
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
            let n = self
                .link
                .read_some(&mut buf, Duration::from_millis(100))
                .with_context(|| format!("reading {}", self.link.describe()))?;
            self.pending.extend(self.lines.push(&buf[..n]));
        }
    }

    /// Step 1: the loader announces itself about once a second; stale replies of an earlier
    /// attempt are skipped.
    fn handshake(&mut self, image: &[u8], wait: Option<Duration>) -> Result<Handshake> {
        loop {
            match self.next_reply(wait)? {
                Some(Reply::Ready { max, load, version }) => {
                    if version != patchbay_chainloader::VERSION {
                        bail!(
                            "the chainloader speaks protocol v{version}, pb v{}: flash the \
                             chainloader built with this pb (make flash-chainloader)",
                            patchbay_chainloader::VERSION
                        );
                    }
                    return Ok(Handshake::Ready { max, load });
                }
                Some(Reply::Ok { crc }) if crc == patchbay_chainloader::crc32(image) => {
                    eprintln!("pb: the chainloader verified the image late (CRC32 {crc:#010x})");
                    return Ok(Handshake::AlreadyRunning);
                }
                Some(_) => continue,
                None => bail!(
                    "no chainloader on {} after {} s: is it flashed (make flash-chainloader), \
                     the board powered and reset, TX/RX crossed?",
                    self.link.describe(),
                    wait.map_or(0, |w| w.as_secs())
                ),
            }
        }
    }

    /// Step 2: the header, then the loader's `ACK`.
    fn send_header(&mut self, header: &Header) -> Result<Result<(), Failure>> {
        self.link.write_all(&header.to_bytes())?;
        Ok(header_answer(self.next_reply(Some(HEADER_TIMEOUT))?))
    }

    /// Step 3: the pages, each after the loader acknowledged the one before. `Ok(None)` when
    /// all are sent (the verdict follows); `Ok(Some(reply))` if the loader said something else
    /// instead (a refusal, or READY after a reset); an error if it went quiet.
    fn send_pages(&mut self, pages: &[Vec<u8>]) -> Result<Option<Reply>> {
        let total: usize = pages.iter().map(Vec::len).sum();
        let bar = ProgressBar::new(total as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)",
            )
            .context("progress bar template")?,
        );
        for (i, page) in pages.iter().enumerate() {
            self.link
                .write_all(page)
                .with_context(|| format!("writing to {}", self.link.describe()))?;
            bar.inc(page.len() as u64);
            if i + 1 == pages.len() {
                break;
            }
            match self.await_page_ack(&bar)? {
                PageAck::Acked => {}
                PageAck::Instead(reply) => {
                    bar.abandon();
                    return Ok(Some(reply));
                }
                PageAck::Silent => {
                    bar.abandon();
                    bail!(
                        "the chainloader stopped acknowledging pages (page {} of {})",
                        i + 1,
                        pages.len()
                    );
                }
            }
        }
        bar.finish_and_clear();
        Ok(None)
    }

    /// Waits up to [`PAGE_TIMEOUT`] for one page's [`PAGE_ACK`] byte, echoing the board's lines
    /// above the progress bar.
    fn await_page_ack(&mut self, bar: &ProgressBar) -> Result<PageAck> {
        let deadline = Instant::now() + PAGE_TIMEOUT;
        let mut buf = [0u8; 256];
        loop {
            if Instant::now() >= deadline {
                return Ok(PageAck::Silent);
            }
            let n = self
                .link
                .read_some(&mut buf, Duration::from_millis(50))
                .with_context(|| format!("reading {}", self.link.describe()))?;
            let text: Vec<u8> = buf[..n]
                .iter()
                .copied()
                .filter(|&b| b != PAGE_ACK)
                .collect();
            let acked = text.len() < n;
            self.pending.extend(self.lines.push(&text));
            while !self.pending.is_empty() {
                let line = self.pending.remove(0);
                match Reply::from_line(&line) {
                    Some(reply) => return Ok(PageAck::Instead(reply)),
                    None if !line.trim().is_empty() => {
                        let _ = bar.suspend(|| writeln!(self.out, "{line}"));
                    }
                    None => {}
                }
            }
            if acked {
                return Ok(PageAck::Acked);
            }
        }
    }

    /// Steps 2 to 4 of one attempt at `baud`: header, payload (`pages`), verdict.
    fn attempt(
        &mut self,
        header: &Header,
        pages: &[Vec<u8>],
        baud: u32,
        ready: (u32, u64),
    ) -> Result<Verdict> {
        if let Err(failure) = self.send_header(header)? {
            return Ok(Verdict::Retry(failure));
        }
        let switched = baud != CONSOLE_BAUD && self.link.set_baud(baud)?;
        if switched {
            // The loader reprograms its UART after sending ACK: give it a moment.
            std::thread::sleep(Duration::from_millis(100));
        }
        let reply = match self.send_pages(pages)? {
            Some(reply) => Some(reply),
            // Step 4: the loader checks the CRC32 and answers OK or ERR.
            None => self.next_reply(Some(VERDICT_TIMEOUT))?,
        };
        if switched {
            self.link.set_baud(CONSOLE_BAUD)?;
        }
        let verdict = verdict(reply, header.crc);
        if verdict == Verdict::Retry(Failure::Reset) {
            // That READY starts the next attempt.
            let (max, load) = ready;
            let version = patchbay_chainloader::VERSION;
            let ready = Message::Ready { version, max, load };
            self.pending.insert(0, ready.to_string());
        }
        Ok(verdict)
    }

    fn into_rest(self) -> Rest {
        Rest {
            lines: self.pending,
            partial: self.lines,
        }
    }
}

/// The wire form of each page: its tag, then its bytes unless it is all zeros.
fn wire_pages(image: &[u8]) -> Vec<Vec<u8>> {
    image
        .chunks(PAGE)
        .map(|page| {
            let mut w = Vec::new();
            encode_payload(page, &mut |c| w.extend_from_slice(c));
            w
        })
        .collect()
}

/// Pushes the image until the loader verifies it: `Ok` once it jumps to the kernel, with what
/// the kernel already printed. Each attempt is handshake, header, pages, verdict; the
/// [`RetryPolicy`] decides what follows a failed one.
pub fn push(link: &mut dyn Link, p: &Push, out: &mut dyn Write) -> Result<Rest> {
    eprintln!(
        "pb: waiting for the chainloader on {} (reset the board if nothing happens)",
        link.describe()
    );
    let mut wire = Wire {
        link,
        lines: Lines::default(),
        pending: Vec::new(),
        out,
    };
    let pages = wire_pages(p.image);
    let mut policy = RetryPolicy::new(p.retries, p.baud);
    loop {
        let attempt = policy.attempt();
        let fault = p.inject.get(attempt as usize).copied();
        if attempt > 0 {
            eprintln!("pb: attempt {} of {}", attempt + 1, p.retries + 1);
        }
        let (max, load) = match wire.handshake(p.image, p.wait)? {
            Handshake::Ready { max, load } => (max, load),
            Handshake::AlreadyRunning => return Ok(wire.into_rest()),
        };
        if p.mem_len > max && fault != Some(Fault::Oversize) {
            bail!(
                "the kernel needs {} bytes from {load:#x}, the chainloader has room for {max}",
                p.mem_len
            );
        }
        let baud = policy.baud();
        let mut header = Header::new(
            p.image,
            p.mem_len,
            if baud != CONSOLE_BAUD { baud } else { 0 },
        );
        let mut pages = pages.clone();
        match fault {
            Some(Fault::Oversize) => header.mem_len = max.saturating_add(1),
            Some(Fault::Corrupt) => corrupt(&mut pages),
            None => {}
        }
        let failure = match wire.attempt(&header, &pages, baud, (max, load))? {
            Verdict::Verified => {
                eprintln!(
                    "pb: the chainloader verified the image (CRC32 {:#010x}); the kernel runs",
                    header.crc
                );
                return Ok(wire.into_rest());
            }
            Verdict::CrcDisagrees { loader } => bail!(
                "the chainloader reports CRC32 {loader:#010x}, pb sent {:#010x}: version mismatch?",
                header.crc
            ),
            Verdict::Retry(failure) => failure,
        };
        eprintln!("pb: {}", failure.notice());
        match policy.failed(&failure) {
            Next::Retry { fell_back: true } => {
                eprintln!("pb: falling back to {CONSOLE_BAUD} baud for the transfer");
            }
            Next::Retry { fell_back: false } => {}
            Next::GiveUp { attempts, problem } => {
                bail!("gave up after {attempts} attempts; last problem: {problem}")
            }
        }
    }
}

/// Flips one byte inside the first data page (never a tag byte).
fn corrupt(pages: &mut [Vec<u8>]) {
    if let Some(page) = pages.iter_mut().find(|p| p[0] == TAG_DATA) {
        let mid = 1 + (page.len() - 1) / 2;
        page[mid] ^= 0x5a;
    }
}

pub fn main(args: Args) -> Result<ExitCode> {
    link::check_loopback(&args.target)?;
    let (image, mem_len) = load_kernel(&args.kernel)?;
    let wait = (args.wait > 0).then(|| Duration::from_secs(args.wait));
    let mut link = link::open(&args.target, CONSOLE_BAUD, wait.unwrap_or(Duration::MAX))?;
    let push_args = Push {
        image: &image,
        mem_len,
        baud: args.baud,
        retries: args.retries,
        wait,
        inject: &args.inject,
    };
    let mut rest = match push(link.as_mut(), &push_args, &mut io::stdout()) {
        Ok(rest) => rest,
        Err(e) => {
            eprintln!("pb: chainload: {e:#}");
            return Ok(ExitCode::from(crate::EXIT_ERROR));
        }
    };
    let mut log = match &args.log {
        Some(path) => {
            Some(File::create(path).with_context(|| format!("cannot create {}", path.display()))?)
        }
        None => None,
    };
    let timeout = (args.timeout > 0).then(|| Duration::from_secs(args.timeout));
    let end = link::stream_console(
        link.as_mut(),
        rest.lines,
        &mut rest.partial,
        &mut io::stdout(),
        log.as_mut(),
        timeout,
    )?;
    if let Some(path) = &args.log {
        eprintln!("pb: console saved to {}", path.display());
    }
    Ok(ExitCode::from(link::exit_code(end, "chainload")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use patchbay_chainloader::{Memory, Receiver, Step};
    use std::collections::VecDeque;

    /// The real receiver behind a fake UART: what the board would do, in-process.
    struct FakeLoader {
        rx: Receiver,
        ram: Vec<u8>,
        to_host: VecDeque<u8>,
        booted: Option<u32>,
        /// Stay silent (a board that is off) for this many reads.
        silent_reads: u32,
    }

    struct Ram<'a>(&'a mut Vec<u8>);
    impl Memory for Ram<'_> {
        fn write(&mut self, offset: u32, byte: u8) {
            self.0[offset as usize] = byte;
        }
        fn zero(&mut self, offset: u32, len: u32) {
            self.0[offset as usize..(offset + len) as usize].fill(0);
        }
    }

    impl FakeLoader {
        fn new(max: u32) -> Self {
            FakeLoader {
                rx: Receiver::new(max),
                ram: vec![0; max as usize],
                to_host: VecDeque::new(),
                booted: None,
                silent_reads: 0,
            }
        }
        fn say(&mut self, m: Message<'_>) {
            self.to_host.extend(format!("{m}\r\n").bytes());
        }
    }

    impl Link for FakeLoader {
        fn read_some(&mut self, buf: &mut [u8], _: Duration) -> io::Result<usize> {
            if self.silent_reads > 0 {
                self.silent_reads -= 1;
                return Ok(0);
            }
            if self.to_host.is_empty() && !self.rx.busy() && self.booted.is_none() {
                self.to_host.extend(b"boot chatter\r\n");
                let max = self.rx.max_len();
                self.say(Message::Ready {
                    version: 1,
                    max,
                    load: 0x80000,
                });
            }
            let n = buf.len().min(self.to_host.len());
            for b in buf.iter_mut().take(n) {
                *b = self.to_host.pop_front().unwrap_or(0);
            }
            Ok(n)
        }
        fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
            for &b in data {
                let mut ram = Ram(&mut self.ram);
                match self.rx.feed(b, &mut ram) {
                    Step::Idle => {}
                    Step::Page => self.to_host.push_back(PAGE_ACK),
                    Step::Accepted(h) => self.say(Message::Ack {
                        len: h.image_len,
                        baud: h.baud,
                    }),
                    Step::Done(Ok(crc)) => {
                        self.say(Message::Ok { crc, load: 0x80000 });
                        self.booted = Some(crc);
                    }
                    Step::Done(Err(e)) => {
                        let text = e.to_string();
                        self.say(Message::Err(&text));
                    }
                }
            }
            Ok(())
        }
        fn set_baud(&mut self, _: u32) -> io::Result<bool> {
            Ok(false)
        }
        fn describe(&self) -> String {
            "fake".into()
        }
    }

    fn image() -> Vec<u8> {
        let mut v: Vec<u8> = (0..3 * PAGE + 17).map(|i| (i % 251) as u8 | 1).collect();
        v[PAGE..2 * PAGE].fill(0);
        v
    }

    fn args<'a>(image: &'a [u8], inject: &'a [Fault], retries: u32) -> Push<'a> {
        Push {
            image,
            mem_len: image.len() as u32,
            baud: 921_600,
            retries,
            wait: Some(Duration::from_secs(5)),
            inject,
        }
    }

    #[test]
    fn push_places_the_image() {
        let img = image();
        let mut loader = FakeLoader::new(1 << 16);
        loader.silent_reads = 3;
        let mut out = Vec::new();
        push(&mut loader, &args(&img, &[], 0), &mut out).unwrap();
        assert_eq!(loader.booted, Some(patchbay_chainloader::crc32(&img)));
        assert_eq!(&loader.ram[..img.len()], &img[..]);
        assert!(String::from_utf8_lossy(&out).contains("boot chatter"));
    }

    #[test]
    fn refused_transfers_are_retried() {
        let img = image();
        let mut loader = FakeLoader::new(1 << 16);
        push(
            &mut loader,
            &args(&img, &[Fault::Oversize, Fault::Corrupt], 2),
            &mut io::sink(),
        )
        .unwrap();
        assert_eq!(loader.booted, Some(patchbay_chainloader::crc32(&img)));
        // Out of retries: the last refusal is the error.
        let mut loader = FakeLoader::new(1 << 16);
        let err = push(
            &mut loader,
            &args(&img, &[Fault::Corrupt, Fault::Corrupt], 1),
            &mut io::sink(),
        )
        .unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("gave up after 2 attempts"), "{msg}");
        assert!(msg.contains("image checksum mismatch"), "{msg}");
        assert_eq!(loader.booted, None);
    }

    #[test]
    fn too_large_for_the_loader_is_refused_before_sending() {
        let img = image();
        let mut loader = FakeLoader::new(4096);
        let err = push(&mut loader, &args(&img, &[], 0), &mut io::sink()).unwrap_err();
        assert!(format!("{err}").contains("room for 4096"), "{err}");
    }

    #[test]
    fn header_ack_goes_on_and_anything_else_fails_the_attempt() {
        assert_eq!(header_answer(Some(Reply::Ack)), Ok(()));
        assert_eq!(
            header_answer(Some(Reply::Err("too large".into()))),
            Err(Failure::HeaderRefused("too large".into()))
        );
        assert_eq!(header_answer(None), Err(Failure::HeaderUnanswered(None)));
        let stale = Reply::Ok { crc: 1 };
        assert_eq!(
            header_answer(Some(stale.clone())),
            Err(Failure::HeaderUnanswered(Some(stale)))
        );
    }

    #[test]
    fn verdict_of_each_reply() {
        assert_eq!(verdict(Some(Reply::Ok { crc: 7 }), 7), Verdict::Verified);
        assert_eq!(
            verdict(Some(Reply::Ok { crc: 8 }), 7),
            Verdict::CrcDisagrees { loader: 8 }
        );
        let nak = Reply::Err("image checksum mismatch".into());
        assert_eq!(
            verdict(Some(nak), 7),
            Verdict::Retry(Failure::ImageRefused("image checksum mismatch".into()))
        );
        let ready = Reply::Ready {
            max: 1,
            load: 0,
            version: 1,
        };
        assert_eq!(verdict(Some(ready), 7), Verdict::Retry(Failure::Reset));
        assert_eq!(verdict(None, 7), Verdict::Retry(Failure::NoVerdict(None)));
        assert_eq!(
            verdict(Some(Reply::Ack), 7),
            Verdict::Retry(Failure::NoVerdict(Some(Reply::Ack)))
        );
    }

    #[test]
    fn failures_say_what_happened() {
        let refused = Failure::ImageRefused("image checksum mismatch".into());
        assert_eq!(refused.problem(), "image checksum mismatch");
        assert_eq!(
            refused.notice(),
            "the chainloader refused the image: image checksum mismatch"
        );
        assert_eq!(
            Failure::Reset.notice(),
            "the board was reset during the transfer; starting over"
        );
        assert_eq!(
            Failure::HeaderUnanswered(None).notice(),
            "no answer to the header (None); starting over"
        );
        assert_eq!(
            Failure::NoVerdict(None).notice(),
            "no verdict from the chainloader (None)"
        );
    }

    #[test]
    fn two_failed_fast_transfers_fall_back_to_the_console_rate() {
        let mut policy = RetryPolicy::new(4, 921_600);
        // A refused header sent nothing at the fast rate: it does not count.
        let nak = Failure::HeaderRefused("too large".into());
        assert_eq!(policy.failed(&nak), Next::Retry { fell_back: false });
        let timeout = Failure::NoVerdict(None);
        assert_eq!(policy.failed(&timeout), Next::Retry { fell_back: false });
        assert_eq!(policy.baud(), 921_600);
        let crc = Failure::ImageRefused("image checksum mismatch".into());
        assert_eq!(policy.failed(&crc), Next::Retry { fell_back: true });
        assert_eq!(policy.baud(), CONSOLE_BAUD);
        assert_eq!(policy.attempt(), 3);
        // Already at the console rate: nothing more to fall back to.
        assert_eq!(policy.failed(&crc), Next::Retry { fell_back: false });
        assert_eq!(policy.baud(), CONSOLE_BAUD);
    }

    #[test]
    fn gives_up_after_the_last_retry_with_its_problem() {
        let mut policy = RetryPolicy::new(1, CONSOLE_BAUD);
        assert_eq!(policy.attempt(), 0);
        assert_eq!(
            policy.failed(&Failure::Reset),
            Next::Retry { fell_back: false }
        );
        assert_eq!(policy.attempt(), 1);
        assert_eq!(
            policy.failed(&Failure::HeaderUnanswered(None)),
            Next::GiveUp {
                attempts: 2,
                problem: "no answer to the header (None)".into()
            }
        );
        // No retries: the first failure ends it.
        let mut policy = RetryPolicy::new(0, 921_600);
        assert!(matches!(
            policy.failed(&Failure::Reset),
            Next::GiveUp { attempts: 1, .. }
        ));
    }

    #[test]
    fn kernel_image_size_comes_from_the_image_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kernel8.img");
        let mut img = vec![0u8; 100];
        img[16..24].copy_from_slice(&0x5000u64.to_le_bytes());
        img[56..60].copy_from_slice(b"ARM\x64");
        fs::write(&path, &img).unwrap();
        assert_eq!(load_kernel(&path).unwrap(), (img, 0x5000));
        fs::write(&path, b"raw").unwrap();
        assert_eq!(load_kernel(&path).unwrap().1, 3);
    }
}
