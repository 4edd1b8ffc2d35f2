//! What `pb` knows about boards: the facts a kernel's BSP writes into its ELF (`board=rpi3`,
//! `board_*` keys in `.patchbay.qemu`, format and parser in `patchbay_wire::facts`), the
//! `config.txt` a Raspberry Pi needs to boot the image, and how to recognise a Raspberry Pi OS
//! boot partition.
//!
//! Pure apart from [`flash`] (file copies, with the checks done first).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use patchbay_board::{ClockMode, ExitMethod, RPI3, RPI4};
use patchbay_wire::{facts::Fact, halt};

/// The facts of the board a kernel was built for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// `qemu_virt`, `rpi3`, `rpi4`.
    pub name: Option<String>,
    /// The QEMU machine that emulates the board; `none` if QEMU has none.
    pub machine: Option<String>,
    pub kernel_load: Option<u64>,
    pub uart_base: Option<u64>,
    pub uart_clock_hz: Option<u64>,
    pub counter_hz: Option<u64>,
    pub exit: Option<ExitMethod>,
    /// The clock mode without a `patchbay.clock=` argument.
    pub clock: Option<ClockMode>,
    /// Device-memory ranges `[start, end)`.
    pub mmio: Vec<(u64, u64)>,
}

impl Facts {
    /// Takes one `board`/`board_*` key; `Ok(false)` if the key is not a board fact.
    pub fn set(&mut self, key: &str, value: &str) -> Result<bool> {
        let Some(fact) = Fact::parse(key, value).map_err(|e| anyhow!("{e}"))? else {
            return Ok(false);
        };
        match fact {
            Fact::Board(name) => self.name = Some(name.to_string()),
            Fact::Machine(machine) => self.machine = Some(machine.to_string()),
            Fact::KernelLoad(v) => self.kernel_load = Some(v),
            Fact::UartBase(v) => self.uart_base = Some(v),
            Fact::UartClockHz(v) => self.uart_clock_hz = Some(v),
            Fact::CounterHz(v) => self.counter_hz = Some(v),
            Fact::Exit(e) => self.exit = Some(e),
            Fact::Clock(c) => self.clock = Some(c),
            Fact::Mmio(r) => self.mmio.push((r.start, r.end)),
        }
        Ok(true)
    }
}

/// The boards `pb image` / `pb flash` can prepare an SD card for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Pi {
    Rpi3,
    Rpi4,
}

impl Pi {
    /// The board's row in the `patchbay-board` table.
    pub fn board(self) -> &'static patchbay_board::RaspberryPi {
        match self {
            Pi::Rpi3 => &RPI3,
            Pi::Rpi4 => &RPI4,
        }
    }

    pub fn name(self) -> &'static str {
        self.board().board.name
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [Pi::Rpi3, Pi::Rpi4]
            .into_iter()
            .find(|pi| pi.name() == name)
    }
}

/// The exit code on a console line, if it is the final line of a halted board
/// (`patchbay_wire::halt`).
pub fn halt_code(line: &str) -> Option<i32> {
    halt::parse(line)
        .ok()
        .and_then(|code| i32::try_from(code).ok())
}

/// The image file the firmware loads for a 64-bit kernel.
pub const KERNEL_IMG: &str = "kernel8.img";
pub const CONFIG_TXT: &str = "config.txt";

/// The `config.txt` that boots `kernel8.img` for patchbay on `pi`, with the UART clock the
/// image's BSP expects.
pub fn config_txt(pi: Pi, uart_clock_hz: u64, kernel_load: u64, what: &str) -> String {
    let mut s = format!(
        "# Written by `pb image` for patchbay ({what}) on a Raspberry Pi {}.\n\
         # The files this replaced are kept next to it as *.orig (first flash) and *.prev.\n\
         [all]\n\
         # 64-bit: the firmware loads kernel8.img at kernel_address and enters it at EL2\n\
         # with the DTB's address in x0.\n\
         arm_64bit=1\n\
         kernel={KERNEL_IMG}\n\
         kernel_address={kernel_load:#x}\n\
         # The console: PL011 UART0 on GPIO 14 (TXD, pin 8) / 15 (RXD, pin 10), 115200 8N1.\n\
         enable_uart=1\n\
         # Take the PL011 back from Bluetooth (it is wired to the BT chip by default).\n\
         dtoverlay=disable-bt\n\
         # A fixed UART clock, so the baud-rate divisor patchbay computes from it is right.\n\
         init_uart_clock={uart_clock_hz}\n\
         # No rainbow splash, no boot delay.\n\
         disable_splash=1\n\
         boot_delay=0\n",
        match pi {
            Pi::Rpi3 => 3,
            Pi::Rpi4 => 4,
        }
    );
    if pi == Pi::Rpi4 {
        s.push_str(
            "# Low-peripheral mode: peripherals at 0xFE000000 (the BSP's addresses).\n\
             arm_peri_high=0\n",
        );
    }
    s
}

/// Why a directory is not a Raspberry Pi boot partition; `None` if it looks like one: it holds
/// the VideoCore firmware (a `start*.elf` and a `fixup*.dat`).
pub fn not_a_boot_partition(dir: &Path) -> Option<String> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => return Some(format!("cannot read {}: {e}", dir.display())),
    };
    let names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_lowercase())
        .collect();
    let has = |prefix: &str, suffix: &str| {
        names
            .iter()
            .any(|n| n.starts_with(prefix) && n.ends_with(suffix))
    };
    let mut missing = Vec::new();
    if !has("start", ".elf") {
        missing.push("start*.elf");
    }
    if !has("fixup", ".dat") {
        missing.push("fixup*.dat");
    }
    (!missing.is_empty()).then(|| {
        format!(
            "{} does not look like a Raspberry Pi boot partition: no {} (the VideoCore \
             firmware). Mount the SD card's first (FAT) partition of a Raspberry Pi OS card \
             and pass its path, e.g. BOOT=/media/$USER/bootfs",
            dir.display(),
            missing.join(" and no ")
        )
    })
}

/// One file `flash` wrote, and what it kept of the file it replaced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flashed {
    pub path: PathBuf,
    /// Where the replaced file went, if there was one and it differed.
    pub backup: Option<PathBuf>,
}

/// Copies `files` (name in the boot partition, contents) into `boot` after checking it is a boot
/// partition. A replaced file is kept: as `NAME.orig` the first time (the card's original, never
/// overwritten), else as `NAME.prev`; a file identical to the new one is not backed up.
pub fn flash(boot: &Path, files: &[(&str, Vec<u8>)]) -> Result<Vec<Flashed>> {
    if let Some(why) = not_a_boot_partition(boot) {
        bail!("refusing to flash: {why}");
    }
    let mut done = Vec::new();
    for (name, contents) in files {
        let path = boot.join(name);
        let mut backup = None;
        if let Ok(old) = fs::read(&path)
            && old != *contents
        {
            let orig = boot.join(format!("{name}.orig"));
            let keep = if orig.exists() {
                boot.join(format!("{name}.prev"))
            } else {
                orig
            };
            fs::write(&keep, &old)
                .with_context(|| format!("cannot back up to {}", keep.display()))?;
            backup = Some(keep);
        }
        fs::write(&path, contents).with_context(|| format!("cannot write {}", path.display()))?;
        done.push(Flashed { path, backup });
    }
    Ok(done)
}

/// Puts the `.orig` files back (undoing every flash): the names restored.
pub fn restore(boot: &Path, names: &[&str]) -> Result<Vec<PathBuf>> {
    if let Some(why) = not_a_boot_partition(boot) {
        bail!("refusing to restore: {why}");
    }
    let mut restored = Vec::new();
    for name in names {
        let orig = boot.join(format!("{name}.orig"));
        if orig.exists() {
            let path = boot.join(name);
            fs::copy(&orig, &path).with_context(|| format!("cannot restore {}", path.display()))?;
            restored.push(path);
        }
    }
    Ok(restored)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boot_partition() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, contents) in [
            ("bootcode.bin", "bc"),
            ("start4.elf", "fw"),
            ("fixup4.dat", "fx"),
            ("config.txt", "# Raspberry Pi OS\ndtoverlay=vc4-kms-v3d\n"),
            ("kernel8.img", "linux"),
            (
                "cmdline.txt",
                "console=serial0,115200 root=PARTUUID=1234-02",
            ),
        ] {
            fs::write(dir.path().join(name), contents).unwrap();
        }
        dir
    }

    #[test]
    fn facts_parse() {
        let mut f = Facts::default();
        for (k, v) in [
            ("board", "rpi4"),
            ("board_machine", "raspi4b"),
            ("board_kernel_load", "0x80000"),
            ("board_uart_base", "0xfe201000"),
            ("board_uart_clock_hz", "48000000"),
            ("board_mmio", "0xfc000000-0x100000000"),
            ("board_exit", "halt"),
        ] {
            assert!(f.set(k, v).unwrap(), "{k}");
        }
        assert!(!f.set("machine", "virt").unwrap());
        assert!(f.set("board_uart_base", "zz").is_err());
        assert!(f.set("board_mmio", "0x1").is_err());
        assert!(f.set("board_exit", "reboot").is_err());
        assert_eq!(f.kernel_load, Some(0x80000));
        assert_eq!(f.mmio, [(0xfc00_0000, 0x1_0000_0000)]);
        assert_eq!(f.exit, Some(ExitMethod::Halt));
    }

    #[test]
    fn halt_line() {
        assert_eq!(
            halt_code("patchbay: halted with exit code 0 (reset the board to run again)\r"),
            Some(0)
        );
        assert_eq!(
            halt_code("\u{0}noise patchbay: halted with exit code 17"),
            Some(17)
        );
        assert_eq!(halt_code("patchbay: halted with exit code x"), None);
        assert_eq!(
            halt_code("patchbay: exit code 1 (no semihosting); powering off"),
            None
        );
        assert_eq!(
            halt_code("patchbay: halted with exit code 4294967295"),
            None
        );
    }

    #[test]
    fn config_txt_per_board() {
        let c3 = config_txt(Pi::Rpi3, 48_000_000, 0x80000, "kernel");
        for line in [
            "arm_64bit=1",
            "kernel=kernel8.img",
            "kernel_address=0x80000",
            "enable_uart=1",
            "init_uart_clock=48000000",
            "dtoverlay=disable-bt",
        ] {
            assert!(c3.lines().any(|l| l == line), "{line} in\n{c3}");
        }
        assert!(!c3.contains("arm_peri_high"));
        let c4 = config_txt(Pi::Rpi4, 48_000_000, 0x80000, "kernel");
        assert!(c4.lines().any(|l| l == "arm_peri_high=0"));
    }

    #[test]
    fn flash_keeps_the_original_then_the_previous() {
        let boot = boot_partition();
        let b = boot.path();
        let done = flash(
            b,
            &[
                ("kernel8.img", b"pb1".to_vec()),
                ("config.txt", b"c1".to_vec()),
            ],
        )
        .unwrap();
        assert_eq!(done[0].backup, Some(b.join("kernel8.img.orig")));
        assert_eq!(fs::read(b.join("kernel8.img")).unwrap(), b"pb1");
        assert_eq!(fs::read(b.join("kernel8.img.orig")).unwrap(), b"linux");
        // Second flash: the original stays, the first flash becomes .prev.
        let done = flash(
            b,
            &[
                ("kernel8.img", b"pb2".to_vec()),
                ("config.txt", b"c1".to_vec()),
            ],
        )
        .unwrap();
        assert_eq!(done[0].backup, Some(b.join("kernel8.img.prev")));
        assert_eq!(
            done[1].backup, None,
            "identical config.txt: nothing to keep"
        );
        assert_eq!(fs::read(b.join("kernel8.img.orig")).unwrap(), b"linux");
        assert_eq!(fs::read(b.join("kernel8.img.prev")).unwrap(), b"pb1");
        // Undo.
        let restored = restore(b, &["kernel8.img", "config.txt"]).unwrap();
        assert_eq!(restored.len(), 2);
        assert_eq!(fs::read(b.join("kernel8.img")).unwrap(), b"linux");
        assert!(
            fs::read_to_string(b.join("config.txt"))
                .unwrap()
                .contains("vc4-kms")
        );
    }

    #[test]
    fn flash_refuses_what_is_not_a_boot_partition() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("start.elf"), "fw").unwrap();
        let err = flash(dir.path(), &[("kernel8.img", b"x".to_vec())]).unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("does not look like a Raspberry Pi boot partition"),
            "{msg}"
        );
        assert!(
            msg.contains("fixup*.dat") && !msg.contains("start*.elf"),
            "{msg}"
        );
        assert!(!dir.path().join("kernel8.img").exists(), "nothing written");
        let msg = format!("{:#}", flash(&dir.path().join("nope"), &[]).unwrap_err());
        assert!(msg.contains("cannot read"), "{msg}");
        assert!(not_a_boot_partition(boot_partition().path()).is_none());
    }
}
