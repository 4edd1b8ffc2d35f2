//! The patchbay chainloader protocol: how a host pushes a kernel image over a UART to the
//! loader on a Raspberry Pi, with its size and CRC32 checked before anything runs.
//!
//! Pure and `no_std`: the loader (`src/main.rs`, bare metal) and the host tool (`pb chainload`)
//! both use this file, and its tests run on the host with `cargo test`.
//!
//! ```text
//! loader -> host   PBCL READY v1 max=0x1f80000 load=0x80000       (every second while idle)
//! host -> loader   header: 32 bytes (magic, version, lengths, CRC32, baud, header CRC32)
//! loader -> host   PBCL ACK len=2765968 baud=921600               or  PBCL ERR <why>
//!                  (both sides switch to the transfer baud rate, if one was asked for)
//! host -> loader   payload: per 4 KiB page a tag byte, then the page unless it is all zeros;
//!                  the host sends the next page only after the loader's PAGE_ACK byte (0x06)
//! loader -> host   PBCL OK crc=0x1234abcd jumping to 0x80000      or  PBCL ERR <why>
//!                  (both sides return to the console baud rate; the kernel runs)
//! ```
//!
//! Unlike the classic tutorial loader (which trusts a bare size and has no checksum), every
//! header carries its own CRC32, the image's length is checked against the room the loader has,
//! and the image's CRC32 is verified before the loader jumps. A refused transfer is reported in
//! words and the loader waits for the next one; a stall (lost bytes, host gone) times out.
//! Page-by-page flow control means the UART's receive FIFO never overruns while the loader is
//! busy (it runs with caches off), and the host's progress bar shows what the loader has.
//!
//! ```
//! use patchbay_chainloader::{Header, Memory, Receiver, Step, encode_payload};
//! struct Ram(Vec<u8>);
//! impl Memory for Ram {
//!     fn write(&mut self, offset: u32, byte: u8) { self.0[offset as usize] = byte }
//!     fn zero(&mut self, offset: u32, len: u32) {
//!         self.0[offset as usize..(offset + len) as usize].fill(0)
//!     }
//! }
//! let image = [7u8; 5000];
//! let header = Header::new(&image, image.len() as u32, 0);
//! let (mut rx, mut ram, mut last) = (Receiver::new(1 << 20), Ram(vec![0; 5000]), Step::Idle);
//! let mut wire = header.to_bytes().to_vec();
//! encode_payload(&image, &mut |chunk| wire.extend_from_slice(chunk));
//! for b in wire {
//!     last = rx.feed(b, &mut ram);
//! }
//! assert_eq!(last, Step::Done(Ok(header.crc)));
//! assert_eq!(ram.0, image);
//! ```
#![no_std]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

use core::fmt;

/// Protocol version carried in the header and announced by the loader.
pub const VERSION: u16 = 1;
/// The header's first four bytes.
pub const MAGIC: [u8; 4] = *b"PBIM";
/// Header length in bytes.
pub const HEADER_LEN: usize = 32;
/// Payload page size: each page is sent as a tag byte, then its bytes unless all are zero.
pub const PAGE: usize = 4096;
/// Page tags.
pub const TAG_ZERO: u8 = 0x00;
pub const TAG_DATA: u8 = 0x01;
/// The loader's answer to every page but the last (ASCII ACK: never part of a text line).
pub const PAGE_ACK: u8 = 0x06;
/// Every line the loader sends starts with this.
pub const LINE_PREFIX: &str = "PBCL ";
/// The console baud rate: the loader starts at it and returns to it before jumping.
pub const CONSOLE_BAUD: u32 = 115_200;

// ---------------------------------------------------------------------------------------------
// CRC32

/// CRC-32/ISO-HDLC (the zlib/PNG/Ethernet CRC): reflected polynomial 0xEDB88320, initial value
/// and final XOR 0xFFFFFFFF. Check value: `crc32(b"123456789") == 0xCBF4_3926`.
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// A running CRC32.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Crc32(u32);

impl Default for Crc32 {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc32 {
    pub const fn new() -> Self {
        Crc32(0xFFFF_FFFF)
    }

    #[inline]
    pub fn byte(&mut self, b: u8) {
        self.0 = CRC_TABLE[((self.0 ^ u32::from(b)) & 0xff) as usize] ^ (self.0 >> 8);
    }

    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.byte(b);
        }
    }

    pub const fn finish(self) -> u32 {
        self.0 ^ 0xFFFF_FFFF
    }
}

/// CRC32 of `bytes`.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut c = Crc32::new();
    c.update(bytes);
    c.finish()
}

// ---------------------------------------------------------------------------------------------
// Header

/// What the host announces before the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub version: u16,
    /// Bytes of the image, placed at the load address.
    pub image_len: u32,
    /// Bytes the kernel occupies once running (`image_size` of its arm64 Image header: with
    /// .bss and stacks), at least `image_len`; checked against the loader's room.
    pub mem_len: u32,
    /// CRC32 of the image bytes.
    pub crc: u32,
    /// Baud rate for the payload; 0 keeps the current one.
    pub baud: u32,
}

impl Header {
    /// The header for `image`.
    pub fn new(image: &[u8], mem_len: u32, baud: u32) -> Self {
        let image_len = image.len() as u32;
        Header {
            version: VERSION,
            image_len,
            mem_len: mem_len.max(image_len),
            crc: crc32(image),
            baud,
        }
    }

    /// The 32 wire bytes: magic, version (u16), flags (u16, 0), image_len, mem_len, crc, baud,
    /// reserved (0), then the CRC32 of the 28 bytes before it. Little-endian.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..4].copy_from_slice(&MAGIC);
        b[4..6].copy_from_slice(&self.version.to_le_bytes());
        b[8..12].copy_from_slice(&self.image_len.to_le_bytes());
        b[12..16].copy_from_slice(&self.mem_len.to_le_bytes());
        b[16..20].copy_from_slice(&self.crc.to_le_bytes());
        b[20..24].copy_from_slice(&self.baud.to_le_bytes());
        let check = crc32(&b[..28]);
        b[28..32].copy_from_slice(&check.to_le_bytes());
        b
    }

    /// Decodes and checks 32 wire bytes against the loader's room (`max_len` bytes).
    pub fn parse(b: &[u8; HEADER_LEN], max_len: u32) -> Result<Self, Refusal> {
        let word = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        if b[0..4] != MAGIC {
            return Err(Refusal::BadMagic);
        }
        let computed = crc32(&b[..28]);
        if word(28) != computed {
            return Err(Refusal::HeaderChecksum {
                expected: word(28),
                computed,
            });
        }
        let version = u16::from_le_bytes([b[4], b[5]]);
        if version != VERSION {
            return Err(Refusal::Version(version));
        }
        let h = Header {
            version,
            image_len: word(8),
            mem_len: word(12),
            crc: word(16),
            baud: word(20),
        };
        if h.image_len == 0 {
            return Err(Refusal::Empty);
        }
        let need = h.mem_len.max(h.image_len);
        if need > max_len {
            return Err(Refusal::TooLarge { need, max: max_len });
        }
        Ok(h)
    }
}

/// Why the loader refused a transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    BadMagic,
    HeaderChecksum {
        expected: u32,
        computed: u32,
    },
    Version(u16),
    Empty,
    TooLarge {
        need: u32,
        max: u32,
    },
    /// The loader cannot run its UART at this rate.
    Baud(u32),
    /// A page tag that is neither [`TAG_ZERO`] nor [`TAG_DATA`]: bytes were lost or garbled.
    BadTag {
        tag: u8,
        offset: u32,
    },
    /// No byte arrived for too long in the middle of a transfer.
    Stalled {
        received: u32,
        expected: u32,
    },
    /// The image's CRC32 does not match the header's.
    Checksum {
        expected: u32,
        computed: u32,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Refusal::BadMagic => f.write_str("not a patchbay image header"),
            Refusal::HeaderChecksum { expected, computed } => write!(
                f,
                "header checksum mismatch (header says {expected:#010x}, computed \
                 {computed:#010x}): header garbled in transit"
            ),
            Refusal::Version(v) => write!(
                f,
                "protocol version {v} not supported (this loader speaks {VERSION}): \
                 flash the chainloader that matches your pb"
            ),
            Refusal::Empty => f.write_str("empty image"),
            Refusal::TooLarge { need, max } => write!(
                f,
                "image too large: {need} bytes, this loader accepts at most {max}"
            ),
            Refusal::Baud(b) => write!(f, "baud rate {b} not possible with this UART clock"),
            Refusal::BadTag { tag, offset } => write!(
                f,
                "bad page tag {tag:#04x} at offset {offset:#x}: bytes lost or garbled"
            ),
            Refusal::Stalled { received, expected } => {
                write!(f, "transfer stalled after {received} of {expected} bytes")
            }
            Refusal::Checksum { expected, computed } => write!(
                f,
                "image checksum mismatch (header says {expected:#010x}, received data has \
                 {computed:#010x}): image refused"
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Payload

/// The payload for `image`: for each [`PAGE`]-byte page (the last may be shorter), [`TAG_ZERO`]
/// if it is all zeros, else [`TAG_DATA`] and the page. `out` receives the wire bytes in order.
pub fn encode_payload(image: &[u8], out: &mut dyn FnMut(&[u8])) {
    for page in image.chunks(PAGE) {
        if page.iter().all(|&b| b == 0) {
            out(&[TAG_ZERO]);
        } else {
            out(&[TAG_DATA]);
            out(page);
        }
    }
}

/// Bytes [`encode_payload`] produces for `image`.
pub fn payload_len(image: &[u8]) -> usize {
    image
        .chunks(PAGE)
        .map(|p| {
            if p.iter().all(|&b| b == 0) {
                1
            } else {
                1 + p.len()
            }
        })
        .sum()
}

// ---------------------------------------------------------------------------------------------
// The loader's side: a byte-at-a-time state machine

/// Where the received image goes: offsets are relative to the load address.
pub trait Memory {
    fn write(&mut self, offset: u32, byte: u8);
    fn zero(&mut self, offset: u32, len: u32);
}

/// What one received byte meant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing to report (hunting for a header, inside one, or inside the payload).
    Idle,
    /// A valid header: say ACK, switch baud rate if asked, expect the payload.
    Accepted(Header),
    /// A page is in place and more are to come: send [`PAGE_ACK`].
    Page,
    /// The transfer ended: the image's CRC32 if it checks, or why it was refused. The receiver
    /// is hunting for the next header again.
    Done(Result<u32, Refusal>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Matching [`MAGIC`]: how many bytes of it have been seen.
    Hunting(usize),
    /// Collecting the header: bytes so far.
    Header(usize),
    /// Expecting a page tag.
    Tag(Header),
    /// Inside a data page: bytes of it still to come.
    Data(Header, u32),
}

/// The loader's receive state machine: feed it every byte from the UART.
#[derive(Clone, Debug)]
pub struct Receiver {
    max_len: u32,
    state: State,
    buf: [u8; HEADER_LEN],
    offset: u32,
    crc: Crc32,
}

impl Receiver {
    /// A receiver whose images may occupy at most `max_len` bytes.
    pub fn new(max_len: u32) -> Self {
        Receiver {
            max_len,
            state: State::Hunting(0),
            buf: [0; HEADER_LEN],
            offset: 0,
            crc: Crc32::new(),
        }
    }

    /// The most bytes an image may occupy.
    pub fn max_len(&self) -> u32 {
        self.max_len
    }

    /// Whether a transfer is under way (a header or payload partly received): a stall then is
    /// an error, while idle silence is normal.
    pub fn busy(&self) -> bool {
        !matches!(self.state, State::Hunting(0))
    }

    /// Bytes of the image received so far, and the image's length (0 before a header).
    pub fn progress(&self) -> (u32, u32) {
        match self.state {
            State::Tag(h) | State::Data(h, _) => (self.offset, h.image_len),
            _ => (0, 0),
        }
    }

    /// Drop whatever is in progress (the caller refused it) and hunt for a header again.
    pub fn cancel(&mut self) {
        self.reset();
    }

    /// Abandon the transfer in progress (the caller saw it stall) and hunt for a header again.
    pub fn abort(&mut self) -> Refusal {
        let (received, expected) = self.progress();
        self.reset();
        Refusal::Stalled { received, expected }
    }

    fn reset(&mut self) {
        self.state = State::Hunting(0);
        self.offset = 0;
        self.crc = Crc32::new();
    }

    fn finish(&mut self, r: Result<u32, Refusal>) -> Step {
        self.reset();
        Step::Done(r)
    }

    /// After a page: the next tag, or the verdict if the image is complete.
    fn page_done(&mut self, h: Header) -> Step {
        if self.offset < h.image_len {
            self.state = State::Tag(h);
            return Step::Page;
        }
        let computed = self.crc.finish();
        self.finish(if computed == h.crc {
            Ok(computed)
        } else {
            Err(Refusal::Checksum {
                expected: h.crc,
                computed,
            })
        })
    }

    /// Consume one byte, writing payload bytes into `mem`.
    pub fn feed(&mut self, b: u8, mem: &mut dyn Memory) -> Step {
        match self.state {
            State::Hunting(n) => {
                if b == MAGIC[n] {
                    self.buf[n] = b;
                    self.state = if n + 1 == MAGIC.len() {
                        State::Header(MAGIC.len())
                    } else {
                        State::Hunting(n + 1)
                    };
                } else if b == MAGIC[0] {
                    self.buf[0] = b;
                    self.state = State::Hunting(1);
                } else {
                    self.state = State::Hunting(0);
                }
                Step::Idle
            }
            State::Header(n) => {
                self.buf[n] = b;
                if n + 1 < HEADER_LEN {
                    self.state = State::Header(n + 1);
                    return Step::Idle;
                }
                match Header::parse(&self.buf, self.max_len) {
                    Ok(h) => {
                        self.offset = 0;
                        self.crc = Crc32::new();
                        self.state = State::Tag(h);
                        Step::Accepted(h)
                    }
                    Err(e) => self.finish(Err(e)),
                }
            }
            State::Tag(h) => {
                let len = (h.image_len - self.offset).min(PAGE as u32);
                match b {
                    TAG_ZERO => {
                        mem.zero(self.offset, len);
                        for _ in 0..len {
                            self.crc.byte(0);
                        }
                        self.offset += len;
                        self.page_done(h)
                    }
                    TAG_DATA => {
                        self.state = State::Data(h, len);
                        Step::Idle
                    }
                    tag => {
                        let offset = self.offset;
                        self.finish(Err(Refusal::BadTag { tag, offset }))
                    }
                }
            }
            State::Data(h, left) => {
                mem.write(self.offset, b);
                self.crc.byte(b);
                self.offset += 1;
                if left > 1 {
                    self.state = State::Data(h, left - 1);
                    Step::Idle
                } else {
                    self.page_done(h)
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The loader's lines

/// A line the loader sends (after [`LINE_PREFIX`]); `Display` writes it without the line end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// Waiting for a header; images may occupy `max` bytes from `load`.
    Ready { version: u16, max: u32, load: u64 },
    /// Header accepted; the payload follows at `baud` (0: unchanged).
    Ack { len: u32, baud: u32 },
    /// Image verified; the loader jumps to `load`.
    Ok { crc: u32, load: u64 },
    /// Refused, in words.
    Err(&'a str),
}

impl fmt::Display for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(LINE_PREFIX)?;
        match *self {
            Message::Ready { version, max, load } => {
                write!(f, "READY v{version} max={max:#x} load={load:#x}")
            }
            Message::Ack { len, baud } => write!(f, "ACK len={len} baud={baud}"),
            Message::Ok { crc, load } => write!(f, "OK crc={crc:#010x} jumping to {load:#x}"),
            Message::Err(why) => write!(f, "ERR {why}"),
        }
    }
}

fn number(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// The value of `key=` among the words of `rest`.
fn field(rest: &str, key: &str) -> Option<u64> {
    rest.split_ascii_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .and_then(number)
}

impl<'a> Message<'a> {
    /// Finds a loader message in a received line (anything before the prefix is ignored: line
    /// noise, or the tail of the previous output).
    pub fn parse(line: &'a str) -> Option<Self> {
        let at = line.find(LINE_PREFIX)?;
        let rest = line[at + LINE_PREFIX.len()..].trim_end();
        let (word, tail) = rest.split_once(' ').unwrap_or((rest, ""));
        match word {
            "READY" => Some(Message::Ready {
                version: tail
                    .split_ascii_whitespace()
                    .next()?
                    .strip_prefix('v')?
                    .parse()
                    .ok()?,
                max: u32::try_from(field(tail, "max")?).ok()?,
                load: field(tail, "load")?,
            }),
            "ACK" => Some(Message::Ack {
                len: u32::try_from(field(tail, "len")?).ok()?,
                baud: u32::try_from(field(tail, "baud")?).ok()?,
            }),
            "OK" => Some(Message::Ok {
                crc: u32::try_from(field(tail, "crc")?).ok()?,
                load: number(tail.rsplit(' ').next()?)?,
            }),
            "ERR" => Some(Message::Err(tail)),
            _ => None,
        }
    }
}

/// The PL011 divisor for `baud` from `clock_hz`, as (integer, 6-bit fraction), if the rate is
/// reachable within 2%.
pub fn baud_divisor(clock_hz: u32, baud: u32) -> Option<(u32, u32)> {
    if baud == 0 {
        return None;
    }
    // Divisor in 1/64ths: clock / (16 * baud) * 64 = clock * 4 / baud, rounded.
    let div64 = (u64::from(clock_hz) * 4 + u64::from(baud) / 2) / u64::from(baud);
    let (int, frac) = (div64 >> 6, div64 & 0x3f);
    if int == 0 || int > 0xffff {
        return None;
    }
    let actual = u64::from(clock_hz) * 4 / div64;
    let error = actual.abs_diff(u64::from(baud)) * 100;
    (error <= 2 * u64::from(baud)).then_some((int as u32, frac as u32))
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::{format, string::String, vec, vec::Vec};

    struct Ram(Vec<u8>);
    impl Memory for Ram {
        fn write(&mut self, offset: u32, byte: u8) {
            self.0[offset as usize] = byte;
        }
        fn zero(&mut self, offset: u32, len: u32) {
            self.0[offset as usize..(offset + len) as usize].fill(0);
        }
    }

    fn wire(image: &[u8], mem_len: u32) -> Vec<u8> {
        let mut w = Header::new(image, mem_len, 0).to_bytes().to_vec();
        encode_payload(image, &mut |c| w.extend_from_slice(c));
        w
    }

    /// Feeds `bytes`; returns every non-idle step and the memory.
    fn run(bytes: &[u8], max: u32, ram_len: usize) -> (Vec<Step>, Vec<u8>) {
        let mut rx = Receiver::new(max);
        let mut ram = Ram(vec![0xAA; ram_len]);
        let steps = bytes
            .iter()
            .map(|&b| rx.feed(b, &mut ram))
            .filter(|s| !matches!(s, Step::Idle | Step::Page))
            .collect();
        (steps, ram.0)
    }

    /// An image with data pages, a zero page in the middle and a short last page.
    fn image() -> Vec<u8> {
        let mut v: Vec<u8> = (0..3 * PAGE + 100).map(|i| (i * 7 % 251) as u8).collect();
        v[PAGE..2 * PAGE].fill(0);
        v
    }

    #[test]
    fn crc32_check_values_and_independent_implementation() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        let img = image();
        assert_eq!(crc32(&img), crc32fast::hash(&img));
        let mut c = Crc32::new();
        c.update(&img[..10]);
        c.update(&img[10..]);
        assert_eq!(c.finish(), crc32fast::hash(&img));
    }

    #[test]
    fn header_round_trip_and_layout() {
        let h = Header::new(b"abc", 100, 921_600);
        let b = h.to_bytes();
        assert_eq!(&b[..4], b"PBIM");
        assert_eq!(&b[8..12], &3u32.to_le_bytes());
        assert_eq!(Header::parse(&b, 100), Ok(h));
        assert_eq!(h.mem_len, 100);
        assert_eq!(
            Header::new(b"abc", 0, 0).mem_len,
            3,
            "mem_len is at least the image"
        );
    }

    #[test]
    fn header_refusals() {
        let b = Header::new(b"abc", 100, 0).to_bytes();
        assert_eq!(
            Header::parse(&b, 99),
            Err(Refusal::TooLarge { need: 100, max: 99 })
        );
        let mut bad = b;
        bad[9] ^= 1;
        assert!(matches!(
            Header::parse(&bad, 1000),
            Err(Refusal::HeaderChecksum { .. })
        ));
        let mut v2 = Header::new(b"abc", 100, 0);
        v2.version = 2;
        assert_eq!(
            Header::parse(&v2.to_bytes(), 1000),
            Err(Refusal::Version(2))
        );
        assert_eq!(
            Header::parse(&Header::new(b"", 0, 0).to_bytes(), 1000),
            Err(Refusal::Empty)
        );
    }

    #[test]
    fn transfer_places_the_image_and_verifies_it() {
        let img = image();
        let mut bytes = b"noise PBI PB".to_vec(); // garbage and false starts before the magic
        bytes.extend(wire(&img, 0));
        let (steps, ram) = run(&bytes, 1 << 20, img.len());
        assert!(matches!(steps[0], Step::Accepted(h) if h.image_len == img.len() as u32));
        assert_eq!(steps[1], Step::Done(Ok(crc32(&img))));
        assert_eq!(steps.len(), 2);
        assert_eq!(ram, img, "zero page written as zeros, data pages verbatim");
        // A page acknowledgement after each page but the last.
        let mut rx = Receiver::new(1 << 20);
        let mut ram = Ram(vec![0; img.len()]);
        let pages = wire(&img, 0)
            .iter()
            .filter(|&&b| rx.feed(b, &mut ram) == Step::Page)
            .count();
        assert_eq!(pages, img.len().div_ceil(PAGE) - 1);
        // Zero pages cost one byte on the wire.
        assert_eq!(payload_len(&img), 1 + PAGE + 1 + 1 + PAGE + 1 + 100);
    }

    #[test]
    fn corrupted_payload_is_refused_then_the_next_transfer_works() {
        let img = image();
        let mut bytes = wire(&img, 0);
        let last = bytes.len() - 1;
        bytes[last] ^= 0x40;
        bytes.extend(wire(&img, 0));
        let (steps, ram) = run(&bytes, 1 << 20, img.len());
        assert!(matches!(
            steps[1],
            Step::Done(Err(Refusal::Checksum { expected, .. })) if expected == crc32(&img)
        ));
        assert_eq!(steps[3], Step::Done(Ok(crc32(&img))));
        assert_eq!(ram, img);
    }

    #[test]
    fn oversized_and_garbled_transfers_are_refused() {
        let img = image();
        let (steps, _) = run(&wire(&img, 0), img.len() as u32 - 1, img.len());
        assert_eq!(
            steps,
            [Step::Done(Err(Refusal::TooLarge {
                need: img.len() as u32,
                max: img.len() as u32 - 1
            }))]
        );
        let (steps, _) = run(&wire(&img, 1 << 30), 1 << 20, img.len());
        assert!(matches!(
            steps[0],
            Step::Done(Err(Refusal::TooLarge { .. }))
        ));
        // A lost byte in a data page shifts the stream: the next tag is a data byte.
        let img: Vec<u8> = (0..3 * PAGE).map(|i| (i % 200 + 2) as u8).collect();
        let mut bytes = wire(&img, 0);
        bytes.remove(HEADER_LEN + 10);
        let (steps, _) = run(&bytes, 1 << 20, img.len());
        assert!(matches!(
            steps[1],
            Step::Done(Err(Refusal::BadTag { offset, .. })) if offset == PAGE as u32
        ));
    }

    #[test]
    fn stall_is_reported_with_progress() {
        let img = image();
        let bytes = wire(&img, 0);
        let mut rx = Receiver::new(1 << 20);
        let mut ram = Ram(vec![0; img.len()]);
        assert!(!rx.busy());
        for &b in &bytes[..HEADER_LEN + 1 + 50] {
            rx.feed(b, &mut ram);
        }
        assert!(rx.busy());
        assert_eq!(
            rx.abort(),
            Refusal::Stalled {
                received: 50,
                expected: img.len() as u32
            }
        );
        assert!(!rx.busy());
    }

    #[test]
    fn messages_round_trip() {
        for m in [
            Message::Ready {
                version: 1,
                max: 0x1f8_0000,
                load: 0x8_0000,
            },
            Message::Ack {
                len: 2_765_968,
                baud: 921_600,
            },
            Message::Ok {
                crc: 0x1234_abcd,
                load: 0x8_0000,
            },
            Message::Err("image checksum mismatch: image refused"),
        ] {
            let line = format!("{m}\r");
            assert_eq!(Message::parse(&line), Some(m), "{line}");
            let noisy = format!("\u{0}junk{m}");
            assert_eq!(Message::parse(&noisy), Some(m), "{noisy}");
        }
        assert_eq!(
            format!(
                "{}",
                Message::Ready {
                    version: 1,
                    max: 0x100,
                    load: 0x8_0000
                }
            ),
            "PBCL READY v1 max=0x100 load=0x80000"
        );
        assert_eq!(Message::parse("patchbay: hello"), None);
        assert_eq!(Message::parse("PBCL READY v1 max=zz load=0x80000"), None);
        let text: String = format!("{}", Refusal::TooLarge { need: 5, max: 4 });
        assert!(text.contains("at most 4"), "{text}");
    }

    #[test]
    fn baud_divisors() {
        assert_eq!(baud_divisor(48_000_000, 115_200), Some((26, 3)));
        assert_eq!(baud_divisor(48_000_000, 921_600), Some((3, 16)));
        assert_eq!(baud_divisor(48_000_000, 3_000_000), Some((1, 0)));
        assert_eq!(baud_divisor(48_000_000, 4_000_000), None);
        assert_eq!(baud_divisor(48_000_000, 0), None);
        assert_eq!(baud_divisor(48_000_000, 10), None, "divisor beyond 16 bits");
    }
}
