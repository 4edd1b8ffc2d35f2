//! Debian's arm64 packages without touching the host's package configuration: a private apt
//! state (lists, cache, sources, an empty dpkg status) under one directory, for the `arm64`
//! architecture only, with bookworm and bookworm-backports `main` as sources. `apt-get download`
//! fetches a `.deb`; `dpkg-deb --fsys-tarfile` + `tar` take out only the files needed.
//!
//! What is pure (the apt options, choosing the kernel package, recognising an arm64 Image) is
//! separate from what runs programs.

use std::fmt;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// The sources: the release and its backports (where the newer kernels are), `main` only.
pub const SOURCES: &str = "\
deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-backports main
";

/// The package with a static busybox for arm64.
pub const BUSYBOX: &str = "busybox-static";

/// A private apt state rooted at one directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Apt {
    /// Absolute: apt resolves a relative `Dir::` path against its own directories, not ours.
    root: PathBuf,
}

impl Apt {
    pub fn new(root: &Path) -> Result<Self> {
        Ok(Apt {
            root: std::path::absolute(root)?,
        })
    }

    /// The `-o` options that point apt at this state and nothing of the host's.
    /// `as_root`: apt then drops to user `_apt` for downloads, who cannot write here; keep root.
    pub fn options(&self, as_root: bool) -> Vec<String> {
        let p = |sub: &str| self.root.join(sub).display().to_string();
        let mut o = vec![
            format!("Dir::State={}", p("state")),
            format!("Dir::State::status={}", p("state/status")),
            format!("Dir::Cache={}", p("cache")),
            format!("Dir::Etc::SourceList={}", p("etc/sources.list")),
            format!("Dir::Etc::SourceParts={}", p("etc/sources.list.d")),
            format!("Dir::Etc::Preferences={}", p("etc/preferences")),
            format!("Dir::Etc::PreferencesParts={}", p("etc/preferences.d")),
            "APT::Architecture=arm64".to_string(),
            "APT::Architectures::=arm64".to_string(),
            // The lock files live in the private state; no other apt uses it.
            "Debug::NoLocking=1".to_string(),
        ];
        if as_root {
            o.push("APT::Sandbox::User=root".to_string());
        }
        o.into_iter().flat_map(|o| ["-o".to_string(), o]).collect()
    }

    /// Creates the directories, the sources list and the empty dpkg status.
    fn prepare(&self) -> Result<()> {
        for dir in [
            "state/lists/partial",
            "cache/archives/partial",
            "etc/sources.list.d",
            "etc/preferences.d",
        ] {
            let d = self.root.join(dir);
            fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
        }
        fs::write(self.root.join("etc/sources.list"), SOURCES)?;
        let status = self.root.join("state/status");
        if !status.exists() {
            fs::write(status, "")?;
        }
        Ok(())
    }

    fn command(&self, program: &str) -> Command {
        let as_root = fs::metadata("/proc/self")
            .map(|m| m.uid() == 0)
            .unwrap_or(false);
        let mut c = Command::new(program);
        c.args(self.options(as_root));
        c
    }

    /// Makes sure package lists exist (`apt-get update` once; delete the directory to refresh).
    pub fn update_once(&self) -> Result<()> {
        self.prepare()?;
        let lists = self.root.join("state/lists");
        let has_lists = fs::read_dir(&lists)?
            .flatten()
            // `..._binary-arm64_Packages`, possibly compressed (`.lz4`).
            .any(|e| e.file_name().to_string_lossy().contains("_Packages"));
        if !has_lists {
            println!(
                "linux: apt-get update (private arm64 state in {})",
                self.root.display()
            );
            run(self.command("apt-get").args(["-q", "update"]))?;
        }
        Ok(())
    }

    /// The names of every arm64 kernel image package.
    pub fn kernel_names(&self) -> Result<String> {
        output(self.command("apt-cache").args([
            "search",
            "--names-only",
            "^linux-image-.*-arm64-unsigned$",
        ]))
    }

    /// Downloads `package` into `dir` (unless a `.deb` of it is there) and returns its path.
    pub fn download(&self, package: &str, dir: &Path) -> Result<PathBuf> {
        fs::create_dir_all(dir)?;
        let find = || -> Result<Option<PathBuf>> {
            let prefix = format!("{}_", package.replace(':', "%3a"));
            Ok(fs::read_dir(dir)?.flatten().map(|e| e.path()).find(|p| {
                p.file_name().is_some_and(|n| {
                    let n = n.to_string_lossy();
                    n.starts_with(&prefix) && n.ends_with(".deb")
                })
            }))
        };
        if let Some(deb) = find()? {
            return Ok(deb);
        }
        println!("linux: apt-get download {package}");
        run(self
            .command("apt-get")
            .current_dir(dir)
            .args(["-q", "download", package]))?;
        find()?.with_context(|| {
            format!(
                "apt-get download {package} left no .deb in {}",
                dir.display()
            )
        })
    }
}

/// Extracts the members matching `patterns` (tar wildcards, e.g. `./boot/vmlinuz-*`) of a
/// `.deb`'s data into `dir`, without unpacking the rest.
pub fn extract(deb: &Path, dir: &Path, patterns: &[&str]) -> Result<()> {
    fs::create_dir_all(dir)?;
    let mut dpkg = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot run dpkg-deb")?;
    let data = dpkg.stdout.take().context("dpkg-deb's output")?;
    let status = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(dir)
        .arg("--wildcards")
        .args(patterns)
        .stdin(data)
        .status()
        .context("cannot run tar")?;
    let dpkg_status = dpkg.wait()?;
    if !status.success() || !dpkg_status.success() {
        bail!("extracting {patterns:?} from {} failed", deb.display());
    }
    Ok(())
}

fn run(c: &mut Command) -> Result<()> {
    let status = c.status().with_context(|| format!("cannot run {c:?}"))?;
    if !status.success() {
        bail!("{c:?} failed ({status})");
    }
    Ok(())
}

fn output(c: &mut Command) -> Result<String> {
    let out = c.output().with_context(|| format!("cannot run {c:?}"))?;
    if !out.status.success() {
        bail!(
            "{c:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One generic arm64 kernel package (not the `cloud` or `rt` flavours).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelPackage {
    /// e.g. `linux-image-6.12.95+deb12-arm64-unsigned`.
    pub name: String,
    /// The kernel's release, `uname -r`: e.g. `6.12.95+deb12-arm64`.
    pub release: String,
    /// The numbers of the release, in order, for sorting: `[6, 12, 95, 12]`.
    key: Vec<u64>,
}

/// The generic kernel packages among `apt-cache search` lines (`name - description`).
pub fn kernel_packages(search: &str) -> Vec<KernelPackage> {
    search
        .lines()
        .filter_map(|line| {
            let name = line.split_whitespace().next()?;
            let release = name
                .strip_prefix("linux-image-")?
                .strip_suffix("-unsigned")?;
            let version = release.strip_suffix("-arm64")?;
            if version.ends_with("-cloud") || version.ends_with("-rt") {
                return None;
            }
            let key = version
                .split(|c: char| !c.is_ascii_digit())
                .filter(|s| !s.is_empty())
                .map(|s| s.parse().ok())
                .collect::<Option<Vec<u64>>>()?;
            Some(KernelPackage {
                name: name.to_string(),
                release: release.to_string(),
                key,
            })
        })
        .collect()
}

/// Why no kernel package was chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChooseError {
    /// No generic arm64 kernel in the lists at all.
    None,
    /// None matches what `KERNEL=` asked for.
    NoMatch {
        wanted: String,
        offered: Vec<String>,
    },
}

impl fmt::Display for ChooseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChooseError::None => f.write_str(
                "Debian's package lists name no arm64 kernel (linux-image-*-arm64-unsigned)",
            ),
            ChooseError::NoMatch { wanted, offered } => write!(
                f,
                "no arm64 kernel matches {wanted:?}; Debian offers: {}",
                offered.join(", ")
            ),
        }
    }
}

impl std::error::Error for ChooseError {}

/// The newest package whose release is `wanted` or starts with it followed by `.`, `-` or `+`
/// (`6.1` picks the newest 6.1, not 6.12); the newest of all without `wanted`.
pub fn choose<'a>(
    packages: &'a [KernelPackage],
    wanted: Option<&str>,
) -> Result<&'a KernelPackage, ChooseError> {
    let matches = |p: &&KernelPackage| match wanted {
        None => true,
        Some(w) => p
            .release
            .strip_prefix(w)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '-', '+'])),
    };
    packages
        .iter()
        .filter(matches)
        .max_by(|a, b| a.key.cmp(&b.key))
        .ok_or_else(|| match wanted {
            None => ChooseError::None,
            Some(w) => ChooseError::NoMatch {
                wanted: w.to_string(),
                offered: packages.iter().map(|p| p.release.clone()).collect(),
            },
        })
}

/// The arm64 Image header's magic, `ARM\x64`, at byte 56 (Documentation/arch/arm64/booting.rst).
const IMAGE_MAGIC: [u8; 4] = *b"ARM\x64";
const IMAGE_MAGIC_OFFSET: usize = 56;
/// gzip's first two bytes (RFC 1952).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// What a `vmlinuz` is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vmlinuz {
    /// A raw arm64 Image, bootable as is.
    Image,
    /// gzip-compressed (an Image inside, presumably).
    Gzip,
    Unknown,
}

/// Recognises a `vmlinuz` from its first bytes.
pub fn vmlinuz_kind(bytes: &[u8]) -> Vmlinuz {
    if bytes.starts_with(&GZIP_MAGIC) {
        Vmlinuz::Gzip
    } else if bytes.get(IMAGE_MAGIC_OFFSET..IMAGE_MAGIC_OFFSET + 4) == Some(&IMAGE_MAGIC[..]) {
        Vmlinuz::Image
    } else {
        Vmlinuz::Unknown
    }
}

/// Writes the raw Image of `vmlinuz` (gunzipped with `gzip -dc` if compressed) to `image`.
pub fn write_image(vmlinuz: &Path, image: &Path) -> Result<()> {
    let bytes = fs::read(vmlinuz).with_context(|| format!("cannot read {}", vmlinuz.display()))?;
    let raw = match vmlinuz_kind(&bytes) {
        Vmlinuz::Image => bytes,
        Vmlinuz::Gzip => {
            let out = Command::new("gzip")
                .arg("-dc")
                .arg(vmlinuz)
                .output()
                .context("cannot run gzip")?;
            if !out.status.success() {
                bail!("gzip -dc {} failed", vmlinuz.display());
            }
            out.stdout
        }
        Vmlinuz::Unknown => bail!("{} is neither an arm64 Image nor gzip", vmlinuz.display()),
    };
    if vmlinuz_kind(&raw) != Vmlinuz::Image {
        bail!("{} does not hold an arm64 Image", vmlinuz.display());
    }
    fs::write(image, raw).with_context(|| format!("cannot write {}", image.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `apt-cache search` printed on this machine (bookworm + backports, arm64).
    const SEARCH: &str = "\
linux-image-6.1.0-47-arm64-unsigned - Linux 6.1 for 64-bit ARMv8 machines
linux-image-6.1.0-47-cloud-arm64-unsigned - Linux 6.1 for arm64 cloud
linux-image-6.1.0-47-rt-arm64-unsigned - Linux 6.1 for 64-bit ARMv8 machines, PREEMPT_RT
linux-image-6.1.0-50-arm64-unsigned - Linux 6.1 for 64-bit ARMv8 machines
linux-image-6.1.0-50-cloud-arm64-unsigned - Linux 6.1 for arm64 cloud
linux-image-6.12.95+deb12-arm64-unsigned - Linux 6.12 for 64-bit ARMv8 machines
linux-image-6.12.95+deb12-rt-arm64-unsigned - Linux 6.12 for 64-bit ARMv8 machines, PREEMPT_RT
";

    #[test]
    fn generic_flavour_only() {
        let releases: Vec<String> = kernel_packages(SEARCH)
            .into_iter()
            .map(|p| p.release)
            .collect();
        assert_eq!(
            releases,
            ["6.1.0-47-arm64", "6.1.0-50-arm64", "6.12.95+deb12-arm64"]
        );
    }

    #[test]
    fn newest_by_default_and_prefix_match() {
        let p = kernel_packages(SEARCH);
        assert_eq!(
            choose(&p, None).unwrap().name,
            "linux-image-6.12.95+deb12-arm64-unsigned"
        );
        assert_eq!(choose(&p, Some("6.1")).unwrap().release, "6.1.0-50-arm64");
        assert_eq!(
            choose(&p, Some("6.1.0-47")).unwrap().release,
            "6.1.0-47-arm64"
        );
        assert_eq!(
            choose(&p, Some("6.12")).unwrap().release,
            "6.12.95+deb12-arm64"
        );
        assert_eq!(
            choose(&p, Some("6.12.95+deb12-arm64")).unwrap().release,
            "6.12.95+deb12-arm64"
        );
        let err = choose(&p, Some("5.10")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no arm64 kernel matches \"5.10\"; Debian offers: 6.1.0-47-arm64, 6.1.0-50-arm64, \
             6.12.95+deb12-arm64"
        );
        assert_eq!(choose(&[], None), Err(ChooseError::None));
    }

    #[test]
    fn options_point_everything_at_the_private_state() {
        let apt = Apt::new(Path::new("/t/apt")).unwrap();
        let o = apt.options(false);
        assert!(o.chunks(2).all(|pair| pair[0] == "-o"), "{o:?}");
        let values: Vec<&str> = o.iter().skip(1).step_by(2).map(String::as_str).collect();
        for dir in [
            "Dir::State=/t/apt/state",
            "Dir::State::status=/t/apt/state/status",
            "Dir::Cache=/t/apt/cache",
            "Dir::Etc::SourceList=/t/apt/etc/sources.list",
            "Dir::Etc::SourceParts=/t/apt/etc/sources.list.d",
            "APT::Architecture=arm64",
        ] {
            assert!(values.contains(&dir), "{dir} missing from {values:?}");
        }
        assert!(!values.iter().any(|v| v.starts_with("APT::Sandbox")));
        assert!(
            apt.options(true)
                .contains(&"APT::Sandbox::User=root".to_string())
        );
    }

    #[test]
    fn vmlinuz_kinds() {
        let mut image = vec![0u8; 64];
        image[56..60].copy_from_slice(b"ARM\x64");
        assert_eq!(vmlinuz_kind(&image), Vmlinuz::Image);
        assert_eq!(vmlinuz_kind(&[0x1f, 0x8b, 8, 0]), Vmlinuz::Gzip);
        assert_eq!(vmlinuz_kind(b"MZ"), Vmlinuz::Unknown);
        assert_eq!(vmlinuz_kind(&image[..58]), Vmlinuz::Unknown);
    }

    #[test]
    fn gzip_vmlinuz_is_unpacked() {
        let dir = tempfile::tempdir().unwrap();
        let mut image = vec![7u8; 4096];
        image[56..60].copy_from_slice(b"ARM\x64");
        let raw = dir.path().join("raw");
        fs::write(&raw, &image).unwrap();
        let status = Command::new("gzip").arg("-k").arg(&raw).status().unwrap();
        assert!(status.success());
        let out = dir.path().join("Image");
        write_image(&dir.path().join("raw.gz"), &out).unwrap();
        assert_eq!(fs::read(&out).unwrap(), image);
        fs::write(&raw, b"not a kernel").unwrap();
        let err = write_image(&raw, &out).unwrap_err().to_string();
        assert!(err.contains("neither an arm64 Image nor gzip"), "{err}");
    }
}
