//! Links the kernel with `linker.ld` plus the selected board's memory constants
//! (`src/bsp/<board>/board.ld`), chosen by the `bsp_*` cargo feature.

use std::{env, path::PathBuf};

const BOARDS: &[&str] = &["qemu_virt"];

/// `git describe`-style revision for the banner and benchmark headers.
fn git_rev() -> String {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let rev = run(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty =
        run(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    if dirty { format!("{rev}-dirty") } else { rev }
}

fn main() {
    println!("cargo:rustc-env=PATCHBAY_GIT_REV={}", git_rev());
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/index");
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    println!("cargo:rerun-if-changed=linker.ld");
    println!("cargo:rerun-if-changed=boot");
    if env::var("CARGO_CFG_TARGET_ARCH").as_deref() != Ok("aarch64") {
        return;
    }
    let selected: Vec<&str> = BOARDS
        .iter()
        .copied()
        .filter(|b| env::var_os(format!("CARGO_FEATURE_BSP_{}", b.to_uppercase())).is_some())
        .collect();
    let board = match selected.as_slice() {
        [one] => *one,
        [] => panic!("no board selected: build with `--features bsp_<board>` (one of {BOARDS:?})"),
        many => panic!("select exactly one board feature, got {many:?}"),
    };
    let bsp_dir = dir.join("src/bsp").join(board);
    println!(
        "cargo:rerun-if-changed={}",
        bsp_dir.join("board.ld").display()
    );
    println!("cargo:rustc-link-arg=-L{}", bsp_dir.display());
    println!("cargo:rustc-link-arg=-T{}", dir.join("linker.ld").display());
}
