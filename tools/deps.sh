#!/usr/bin/env bash
# Install what `make qemu` and `make test` need and is missing, on a Debian bookworm machine:
#
#   * the pinned Rust toolchain with its target and components (rust-toolchain.toml);
#   * QEMU >= $QEMU_MIN (qemu-system-aarch64) from Debian's bookworm-backports suite, which is
#     added to apt's sources if it is not there. bookworm's own QEMU (7.2) has no `raspi4b`
#     machine and only version 1 of the TCG plugin API; backports has 10.0 with both;
#   * LLVM's llvm-mc, the independent assembler the encoders are checked against.
#
# Each step runs only when its tool is missing or too old. A QEMU that is still too old after
# that (not a Debian machine, apt pinned elsewhere) is refused with a message saying what to do.
set -euo pipefail

QEMU=${QEMU:-qemu-system-aarch64}
QEMU_MIN=${QEMU_MIN:-10.0}
BACKPORTS=/etc/apt/sources.list.d/patchbay-bookworm-backports.sources

sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_() { sudo_ env DEBIAN_FRONTEND=noninteractive apt-get "$@"; }

# "10.0.2" from "QEMU emulator version 10.0.2 (Debian ...)"; empty when QEMU is absent.
qemu_version() {
    command -v "$QEMU" >/dev/null 2>&1 || return 0
    "$QEMU" --version | sed -n 's/^QEMU emulator version \([0-9][0-9.]*\).*/\1/p' | head -n 1
}

# version_ge A B: is version A >= version B (dotted numbers)?
version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n 1)" = "$2" ]; }

qemu_ok() {
    local v
    v=$(qemu_version)
    [ -n "$v" ] && version_ge "$v" "$QEMU_MIN"
}

have_backports() {
    grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/
}

rustup toolchain install >/dev/null 2>&1 || rustup toolchain install

updated=
apt_update() {
    if [ -z "$updated" ]; then
        apt_ update -qq
        updated=1
    fi
}

if ! qemu_ok; then
    echo "deps: installing QEMU >= $QEMU_MIN (qemu-system-arm) from Debian's bookworm-backports" \
        "(found: $(qemu_version || true))"
    if ! have_backports; then
        echo "deps: adding bookworm-backports to apt's sources ($BACKPORTS)"
        sudo_ tee "$BACKPORTS" >/dev/null <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    fi
    apt_update
    apt_ install -y -qq --no-install-recommends -t bookworm-backports qemu-system-arm >/dev/null
fi

if ! command -v llvm-mc >/dev/null 2>&1; then
    echo "deps: installing llvm (llvm-mc) from Debian's packages"
    apt_update
    apt_ install -y -qq --no-install-recommends llvm >/dev/null
fi

if ! qemu_ok; then
    found=$(qemu_version)
    echo "deps: patchbay needs QEMU >= $QEMU_MIN (raspi4b, TCG plugin API v4); found ${found:-none}." >&2
    echo "  On Debian bookworm: add the bookworm-backports suite, then" >&2
    echo "  apt-get install -t bookworm-backports qemu-system-arm. Or put a newer $QEMU on PATH." >&2
    exit 1
fi
command -v llvm-mc >/dev/null || { echo "deps: llvm-mc is still missing" >&2; exit 1; }
