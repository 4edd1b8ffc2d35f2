//! The host end of a board's UART: a serial device (a USB-serial adapter on `/dev/ttyUSB0`, or
//! a pty) or a TCP socket (QEMU's `-serial tcp:127.0.0.1:PORT,server=on`). Both sit behind
//! [`Link`], so the chainload protocol and console capture are the same code for a real board
//! and for the QEMU tests.
//!
//! Also the console side every board command shares: [`Lines`] (bytes to lines) and
//! [`stream_console`] (echo, log, stop at the board's final line).

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::board;

/// A byte pipe to a board's UART.
pub trait Link {
    /// Reads what is available, waiting at most `timeout` for the first byte; `Ok(0)` if nothing
    /// came. The other end closing is an error of kind `UnexpectedEof`.
    fn read_some(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize>;
    fn write_all(&mut self, data: &[u8]) -> io::Result<()>;
    /// Changes the line rate. False if this link has none (TCP: QEMU ignores baud rates).
    fn set_baud(&mut self, baud: u32) -> io::Result<bool>;
    /// For messages: the device or address.
    fn describe(&self) -> String;
}

/// Where to reach the board (`--serial` or `--tcp`).
#[derive(Clone, Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub struct Target {
    /// The serial device wired to the board's UART, e.g. /dev/ttyUSB0
    #[arg(long, value_name = "DEVICE")]
    pub serial: Option<PathBuf>,
    /// A TCP address speaking the UART instead (QEMU -serial tcp:HOST:PORT,server=on), loopback
    #[arg(long, value_name = "HOST:PORT")]
    pub tcp: Option<String>,
}

/// Opens the link: the serial device at `baud`, or a TCP connection (retried for up to `wait`,
/// since QEMU may still be starting).
pub fn open(target: &Target, baud: u32, wait: Duration) -> Result<Box<dyn Link>> {
    if let Some(dev) = &target.serial {
        return Ok(Box::new(Serial::open(dev, baud)?));
    }
    let addr = target
        .tcp
        .as_deref()
        .context("--serial or --tcp is required")?;
    let deadline = Instant::now() + wait;
    loop {
        match TcpStream::connect(addr) {
            Ok(stream) => {
                stream.set_nodelay(true).ok();
                return Ok(Box::new(Tcp {
                    stream,
                    addr: addr.to_string(),
                }));
            }
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(e).with_context(|| format!("cannot connect to {addr}")),
        }
    }
}

/// A serial device in raw mode, 8N1, no flow control.
pub struct Serial {
    port: serialport::TTYPort,
    path: PathBuf,
}

impl Serial {
    pub fn open(path: &Path, baud: u32) -> Result<Self> {
        let port = serialport::new(path.to_string_lossy(), baud)
            .data_bits(serialport::DataBits::Eight)
            .parity(serialport::Parity::None)
            .stop_bits(serialport::StopBits::One)
            .flow_control(serialport::FlowControl::None)
            .timeout(Duration::from_millis(100))
            .open_native()
            .with_context(|| {
                format!(
                    "cannot open {} (is the USB-serial adapter plugged in, and may you use it? \
                     e.g. add yourself to the `dialout` group)",
                    path.display()
                )
            })?;
        Ok(Serial {
            port,
            path: path.to_path_buf(),
        })
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

impl Link for Serial {
    fn read_some(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        use serialport::SerialPort;
        self.port
            .set_timeout(timeout.max(Duration::from_millis(1)))
            .map_err(io::Error::other)?;
        match self.port.read(buf) {
            Ok(n) => Ok(n),
            Err(e) if is_timeout(&e) => Ok(0),
            Err(e) => Err(e),
        }
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        Write::write_all(&mut self.port, data)?;
        self.port.flush()
    }

    fn set_baud(&mut self, baud: u32) -> io::Result<bool> {
        use serialport::SerialPort;
        // Let what is queued leave at the old rate first.
        self.port.flush()?;
        self.port.set_baud_rate(baud).map_err(io::Error::other)?;
        Ok(true)
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

/// A TCP connection (QEMU's serial backend).
pub struct Tcp {
    stream: TcpStream,
    addr: String,
}

impl Link for Tcp {
    fn read_some(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        self.stream
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))?;
        match self.stream.read(buf) {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} closed the connection", self.addr),
            )),
            Ok(n) => Ok(n),
            Err(e) if is_timeout(&e) => Ok(0),
            Err(e) => Err(e),
        }
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.stream.write_all(data)?;
        self.stream.flush()
    }

    fn set_baud(&mut self, _baud: u32) -> io::Result<bool> {
        Ok(false)
    }

    fn describe(&self) -> String {
        format!("tcp:{}", self.addr)
    }
}

/// Splits a byte stream into lines (without `\n`, `\r` and NUL bytes, lossy UTF-8).
#[derive(Debug, Default)]
pub struct Lines {
    partial: Vec<u8>,
}

impl Lines {
    /// Adds bytes; returns the lines they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        for &b in bytes {
            match b {
                b'\n' => out.push(self.take()),
                b'\r' | 0 => {}
                _ => self.partial.push(b),
            }
        }
        out
    }

    /// The unterminated rest, if any.
    pub fn rest(&mut self) -> Option<String> {
        (!self.partial.is_empty()).then(|| self.take())
    }

    fn take(&mut self) -> String {
        let line = String::from_utf8_lossy(&self.partial).into_owned();
        self.partial.clear();
        line
    }
}

/// How a console stream ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The board's final line, with its exit code.
    Halted(i32),
    /// The other end closed (QEMU exited).
    Closed,
    /// `timeout` passed.
    TimedOut,
}

/// Copies the console from `link` to `echo` as it arrives and, line by line, to `log`, until
/// the board's final line (`patchbay_wire::halt`), the end of the link, or `timeout`. `first`
/// are lines already received (and not yet shown); `lines` may hold the start of the next.
pub fn stream_console(
    link: &mut dyn Link,
    first: Vec<String>,
    lines: &mut Lines,
    echo: &mut dyn Write,
    mut log: Option<&mut File>,
    timeout: Option<Duration>,
) -> Result<End> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut buf = [0u8; 4096];
    let write_log = |log: &mut Option<&mut File>, line: &str| -> Result<()> {
        if let Some(f) = log {
            writeln!(f, "{line}").context("cannot write the log")?;
            f.flush().context("cannot write the log")?;
        }
        Ok(())
    };
    for line in first {
        let _ = writeln!(echo, "{line}");
        write_log(&mut log, &line)?;
        if let Some(code) = board::halt_code(&line) {
            return Ok(End::Halted(code));
        }
    }
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            if let Some(rest) = lines.rest() {
                write_log(&mut log, &rest)?;
            }
            return Ok(End::TimedOut);
        }
        let n = match link.read_some(&mut buf, Duration::from_millis(200)) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                if let Some(rest) = lines.rest() {
                    write_log(&mut log, &rest)?;
                }
                return Ok(End::Closed);
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", link.describe())),
        };
        if n == 0 {
            continue;
        }
        let _ = echo.write_all(&buf[..n]).and_then(|()| echo.flush());
        for line in lines.push(&buf[..n]) {
            write_log(&mut log, &line)?;
            if let Some(code) = board::halt_code(&line) {
                return Ok(End::Halted(code));
            }
        }
    }
}

/// Exit status of a console stream: the board's code, 1 if it never said, 124 on timeout.
pub fn exit_code(end: End, what: &str) -> u8 {
    match end {
        End::Halted(code) => u8::try_from(code).unwrap_or(1),
        End::Closed => {
            eprintln!("pb: {what}: the connection closed before the kernel's final line");
            1
        }
        End::TimedOut => {
            eprintln!("pb: {what}: timeout before the kernel's final line");
            crate::cmd::run::EXIT_TIMEOUT
        }
    }
}

/// Refuses a TCP address that is not on this machine: the tests and QEMU only ever use
/// loopback, and a board's UART is never on the network.
pub fn check_loopback(target: &Target) -> Result<()> {
    if let Some(addr) = &target.tcp {
        let host = addr.rsplit_once(':').map_or(addr.as_str(), |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if !matches!(host, "127.0.0.1" | "localhost" | "::1") {
            bail!("--tcp {addr}: only loopback addresses (127.0.0.1, localhost, ::1) are allowed");
        }
    }
    Ok(())
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// A link that plays back scripted input and records what is written.
    pub struct Script {
        pub input: VecDeque<Vec<u8>>,
        pub written: Vec<u8>,
        pub closes: bool,
    }

    impl Link for Script {
        fn read_some(&mut self, buf: &mut [u8], _timeout: Duration) -> io::Result<usize> {
            match self.input.pop_front() {
                Some(chunk) => {
                    buf[..chunk.len()].copy_from_slice(&chunk);
                    Ok(chunk.len())
                }
                None if self.closes => Err(io::ErrorKind::UnexpectedEof.into()),
                None => Ok(0),
            }
        }
        fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
            self.written.extend_from_slice(data);
            Ok(())
        }
        fn set_baud(&mut self, _: u32) -> io::Result<bool> {
            Ok(false)
        }
        fn describe(&self) -> String {
            "script".into()
        }
    }

    #[test]
    fn lines_split_and_clean() {
        let mut l = Lines::default();
        assert_eq!(l.push(b"ab\r\nc\0d"), ["ab"]);
        assert_eq!(l.push(b"e\n\n"), ["cde", ""]);
        assert_eq!(l.push(b"tail"), Vec::<String>::new());
        assert_eq!(l.rest().as_deref(), Some("tail"));
        assert_eq!(l.rest(), None);
    }

    #[test]
    fn console_stops_at_the_final_line_and_logs() {
        let mut link = Script {
            input: [
                &b"boot\r\n@bench {}\r"[..],
                b"\npatchbay: halted with exit code 4 (reset",
                b" the board to run again)\r\nafter\r\n",
            ]
            .map(|c| c.to_vec())
            .into(),
            written: vec![],
            closes: true,
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut log = File::create(&path).unwrap();
        let mut echo = Vec::new();
        let end = stream_console(
            &mut link,
            vec!["early".into()],
            &mut Lines::default(),
            &mut echo,
            Some(&mut log),
            Some(Duration::from_secs(5)),
        )
        .unwrap();
        assert_eq!(end, End::Halted(4));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "early\nboot\n@bench {}\npatchbay: halted with exit code 4 (reset the board to run again)\n"
        );
        assert!(echo.starts_with(b"early\nboot\r\n"));
        // Without a final line: the end of the link.
        let mut link = Script {
            input: [b"x\ny".to_vec()].into(),
            written: vec![],
            closes: true,
        };
        let end = stream_console(
            &mut link,
            vec![],
            &mut Lines::default(),
            &mut io::sink(),
            None,
            None,
        );
        assert_eq!(end.unwrap(), End::Closed);
        assert_eq!(exit_code(End::Halted(0), "t"), 0);
        assert_eq!(exit_code(End::TimedOut, "t"), 124);
    }

    #[test]
    fn only_loopback() {
        let t = |a: &str| Target {
            serial: None,
            tcp: Some(a.into()),
        };
        assert!(check_loopback(&t("127.0.0.1:4000")).is_ok());
        assert!(check_loopback(&t("localhost:4000")).is_ok());
        assert!(check_loopback(&t("[::1]:4000")).is_ok());
        assert!(check_loopback(&t("10.0.0.2:4000")).is_err());
    }
}
