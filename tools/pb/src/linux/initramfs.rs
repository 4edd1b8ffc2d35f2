//! The guest's initramfs: an uncompressed cpio archive in the `newc` format the kernel unpacks
//! (Documentation/driver-api/early-userspace/buffer-format.rst), holding busybox, `hookbench`
//! (the static test program) and `/init`; and building `hookbench` with Debian's cross compiler.
//!
//! The archive writer is pure.

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The guest program's source and the init script, built into `pb` so it needs no source tree.
pub const HOOKBENCH_C: &str = include_str!("../../../linux-guest/hookbench.c");
pub const INIT: &str = include_str!("../../../linux-guest/init");

/// The cross compiler (Debian package `gcc-aarch64-linux-gnu`).
pub const CC: &str = "aarch64-linux-gnu-gcc";

/// One file system object in the archive. Paths are relative (`bin/busybox`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    Dir(String),
    File {
        path: String,
        /// Permission bits, e.g. `0o755`.
        mode: u32,
        data: Vec<u8>,
    },
    /// A character device node, e.g. `dev/console` (5, 1): the kernel opens it for init's
    /// standard streams before any file system is mounted.
    CharDevice {
        path: String,
        major: u32,
        minor: u32,
    },
}

/// File type bits of `st_mode` (`<sys/stat.h>`).
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFCHR: u32 = 0o020000;
/// The magic of `newc` headers (no checksums).
const NEWC_MAGIC: &str = "070701";
/// The name of the entry that ends an archive.
const TRAILER: &str = "TRAILER!!!";

/// Pads `out` with zeros to a multiple of 4 bytes (headers+names and data are 4-aligned).
fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// Appends one header, the name (NUL-terminated) and the data.
fn member(out: &mut Vec<u8>, ino: u32, mode: u32, name: &str, data: &[u8], rdev: (u32, u32)) {
    let nlink = if mode & S_IFDIR != 0 { 2 } else { 1 };
    // Fields, each 8 hex digits: ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor,
    // rdevmajor, rdevminor, namesize (with the NUL), check.
    let fields = [
        ino,
        mode,
        0,
        0,
        nlink,
        0,
        u32::try_from(data.len()).expect("a file under 4 GiB"),
        0,
        0,
        rdev.0,
        rdev.1,
        u32::try_from(name.len() + 1).expect("a short name"),
        0,
    ];
    out.extend_from_slice(NEWC_MAGIC.as_bytes());
    for f in fields {
        out.extend_from_slice(format!("{f:08X}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
    out.extend_from_slice(data);
    pad4(out);
}

/// The archive of `entries`, in order (a directory before what it holds), then the trailer.
pub fn newc(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let ino = u32::try_from(i + 1).expect("few entries");
        match e {
            Entry::Dir(path) => member(&mut out, ino, S_IFDIR | 0o755, path, &[], (0, 0)),
            Entry::File { path, mode, data } => {
                member(&mut out, ino, S_IFREG | mode, path, data, (0, 0))
            }
            Entry::CharDevice { path, major, minor } => {
                member(&mut out, ino, S_IFCHR | 0o600, path, &[], (*major, *minor))
            }
        }
    }
    member(&mut out, 0, 0, TRAILER, &[], (0, 0));
    out
}

/// The guest's file system: busybox (which `/init` turns into the usual commands), hookbench,
/// `/init`, the mount points and the console.
pub fn guest(busybox: Vec<u8>, hookbench: Vec<u8>) -> Vec<Entry> {
    let mut entries: Vec<Entry> = [
        "bin", "dev", "proc", "sbin", "sys", "usr", "usr/bin", "usr/sbin",
    ]
    .into_iter()
    .map(|d| Entry::Dir(d.to_string()))
    .collect();
    entries.push(Entry::CharDevice {
        path: "dev/console".to_string(),
        major: 5,
        minor: 1,
    });
    for (path, data) in [
        ("bin/busybox", busybox),
        ("hookbench", hookbench),
        ("init", INIT.as_bytes().to_vec()),
    ] {
        entries.push(Entry::File {
            path: path.to_string(),
            mode: 0o755,
            data,
        });
    }
    entries
}

/// Compiles [`HOOKBENCH_C`] into a static arm64 executable at `out` (warnings are errors).
pub fn build_hookbench(out: &Path) -> Result<()> {
    let src = out.with_extension("c");
    fs::write(&src, HOOKBENCH_C).with_context(|| format!("cannot write {}", src.display()))?;
    let status = Command::new(CC)
        .args(["-static", "-O2", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(out)
        .arg(&src)
        .status()
        .with_context(|| {
            format!("cannot run {CC}: install gcc-aarch64-linux-gnu (make linux-compare does)")
        })?;
    if !status.success() {
        bail!("{CC} failed to build {}", src.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fields of the header at `at`: (the 13 numbers, the name, the offset after the data).
    fn read(archive: &[u8], at: usize) -> (Vec<u32>, String, usize) {
        assert_eq!(&archive[at..at + 6], NEWC_MAGIC.as_bytes());
        let fields: Vec<u32> = (0..13)
            .map(|i| {
                let s = std::str::from_utf8(&archive[at + 6 + 8 * i..at + 14 + 8 * i]).unwrap();
                u32::from_str_radix(s, 16).unwrap()
            })
            .collect();
        let name_at = at + 110;
        let name_len = fields[11] as usize;
        assert_eq!(
            archive[name_at + name_len - 1],
            0,
            "the name is NUL-terminated"
        );
        let name = std::str::from_utf8(&archive[name_at..name_at + name_len - 1]).unwrap();
        let data_at = (name_at + name_len).next_multiple_of(4);
        let next = (data_at + fields[6] as usize).next_multiple_of(4);
        (fields, name.to_string(), next)
    }

    #[test]
    fn layout_of_every_kind() {
        let archive = newc(&[
            Entry::Dir("bin".into()),
            Entry::File {
                path: "bin/x".into(),
                mode: 0o755,
                data: b"hello".to_vec(),
            },
            Entry::CharDevice {
                path: "dev/console".into(),
                major: 5,
                minor: 1,
            },
        ]);
        assert_eq!(
            &archive[..110 + 4],
            b"07070100000001000041ED00000000000000000000000200000000000000000000000000000000\
              00000000000000000000000400000000bin\0"
        );
        let (dir, name, at) = read(&archive, 0);
        assert_eq!((name.as_str(), dir[1], dir[4]), ("bin", 0o040755, 2));
        let (file, name, next) = read(&archive, at);
        assert_eq!((name.as_str(), file[1], file[6]), ("bin/x", 0o100755, 5));
        let data_at = (at + 110 + "bin/x\0".len()).next_multiple_of(4);
        assert_eq!(&archive[data_at..data_at + 5], b"hello");
        assert_eq!(&archive[data_at + 5..next], &[0, 0, 0], "data padded to 4");
        let (dev, name, next) = read(&archive, next);
        assert_eq!(
            (name.as_str(), dev[1], dev[9], dev[10]),
            ("dev/console", 0o020600, 5, 1)
        );
        let (trailer, name, end) = read(&archive, next);
        assert_eq!((name.as_str(), trailer[6]), (TRAILER, 0));
        assert_eq!(end, archive.len());
        assert!(archive.len().is_multiple_of(4));
    }

    #[test]
    fn guest_has_init_busybox_and_the_console() {
        let entries = guest(b"bb".to_vec(), b"hb".to_vec());
        let paths: Vec<&str> = entries
            .iter()
            .map(|e| match e {
                Entry::Dir(p) | Entry::File { path: p, .. } | Entry::CharDevice { path: p, .. } => {
                    p.as_str()
                }
            })
            .collect();
        for p in [
            "bin",
            "dev",
            "dev/console",
            "bin/busybox",
            "hookbench",
            "init",
            "proc",
            "sys",
        ] {
            assert!(paths.contains(&p), "{p} missing from {paths:?}");
        }
        // Every directory precedes what it holds.
        for (i, p) in paths.iter().enumerate() {
            if let Some((parent, _)) = p.rsplit_once('/') {
                assert!(paths[..i].contains(&parent), "{parent} after {p}");
            }
        }
        assert!(INIT.starts_with("#!/bin/busybox sh\n"));
        assert!(INIT.contains("/hookbench"));
    }
}
