# patchbay -- the user's surface. `make help` lists the targets.
#
# Two commands work on a fresh machine with nothing installed by hand:
#   make qemu   build, boot on QEMU virt, print the system summary, exit with the kernel's code
#   make test   host unit tests + every QEMU-booted kernel test
# Both first run `deps`, which installs what is missing (QEMU and LLVM from Debian's packages,
# the Rust target and components named in rust-toolchain.toml).

SHELL      := /bin/bash
BSP        ?= qemu_virt
TARGET     := aarch64-unknown-none
KERNEL_ELF := target/$(TARGET)/release/kernel
PB         := target/release/pb
QEMU       := qemu-system-aarch64
CARGO      := cargo
KFLAGS     := -p patchbay --target $(TARGET) --release --no-default-features --features bsp_$(BSP)
SYSROOT     = $(shell rustc --print sysroot)
LLVM_BIN    = $(SYSROOT)/lib/rustlib/x86_64-unknown-linux-gnu/bin
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT        := DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get
# Extra arguments for `pb run` (e.g. make qemu RUN_ARGS=--icount).
RUN_ARGS   ?=

BASE       ?= bench/baseline.jsonl

.PHONY: help deps build pb qemu test test-host test-kernel bench bench-compare bench-baseline \
        clippy fmt fmt-check gdb objdump nm clean

help:
	@echo "patchbay make targets (BSP=$(BSP)):"
	@echo "  make qemu       build, boot on QEMU virt (icount), run the suite, print the tables, exit"
	@echo "  make test       host unit tests + QEMU-booted kernel tests (what CI runs)"
	@echo "  make bench      run the benchmark suite: target/bench/latest.{jsonl,csv,svg,log}"
	@echo "  make bench-compare [BASE=file]  bench, then compare with the baseline (CI gate)"
	@echo "  make bench-baseline  adopt target/bench/latest.jsonl as bench/baseline.jsonl"
	@echo "  make build      build the kernel ELF ($(KERNEL_ELF))"
	@echo "  make deps       install QEMU, LLVM and the Rust target/components if missing"
	@echo "  make clippy     clippy on host crates and the kernel, warnings are errors"
	@echo "  make fmt        rustfmt everything (fmt-check: verify only)"
	@echo "  make gdb        boot halted under QEMU's gdbstub and attach gdb-multiarch"
	@echo "  make objdump    disassemble the kernel (llvm-objdump)"
	@echo "  make nm         list kernel symbols by address (llvm-nm)"
	@echo "  make clean      remove build outputs"

# --- dependencies -------------------------------------------------------------------------------
# Each is installed only when missing; apt lists may be stale on a fresh machine, so update first.
deps:
	@rustup toolchain install >/dev/null 2>&1 || rustup toolchain install
	@if ! command -v $(QEMU) >/dev/null 2>&1 || ! command -v llvm-mc >/dev/null 2>&1; then \
	    echo "deps: installing qemu-system-arm and llvm from Debian's packages"; \
	    $(APT) update -qq && $(APT) install -y -qq qemu-system-arm llvm >/dev/null; \
	fi
	@command -v $(QEMU) >/dev/null && command -v llvm-mc >/dev/null

# --- build --------------------------------------------------------------------------------------
build:
	$(CARGO) build $(KFLAGS) --bin kernel

pb:
	$(CARGO) build --release -p patchbay-tool

# --- run ----------------------------------------------------------------------------------------
# Under icount PMCCNTR counts retired instructions exactly, so the table is reproducible.
qemu: deps build pb
	$(PB) run --icount --table $(RUN_ARGS) $(KERNEL_ELF)

# --- benchmarks ---------------------------------------------------------------------------------
bench: deps build pb
	$(PB) bench --kernel $(KERNEL_ELF) --out target/bench

# Instruction counts are exact under icount: any increase over the baseline is a regression.
bench-compare: bench
	$(PB) compare $(BASE) target/bench/latest.jsonl

# Deliberately adopt the latest run as the baseline (commit it with the change that explains it).
bench-baseline:
	@test -f target/bench/latest.jsonl || { echo "run 'make bench' first"; exit 1; }
	cp target/bench/latest.jsonl bench/baseline.jsonl

# --- tests --------------------------------------------------------------------------------------
test: deps test-host test-kernel

test-host:
	$(CARGO) test --workspace --exclude patchbay

# Every kernel test binary (the library's unit tests and tests/*.rs) is booted by `pb run`,
# which reads the binary's QEMU directives, enforces its timeout and checks its exit code.
# The last line sums the kernel test cases: each binary's "N passed" (the custom test runner)
# or 1 for a kernel whose expected failure report `pb run` verified (fault and panic tests).
test-kernel: pb
	@mkdir -p target
	set -o pipefail; CARGO_TARGET_AARCH64_UNKNOWN_NONE_RUNNER="$(abspath $(PB)) run" \
	    $(CARGO) test $(KFLAGS) 2>&1 | tee target/test-kernel.log
	@passed=$$(tr -d '\r' < target/test-kernel.log | awk '/ Running /{bin=$$2} \
	    /^[0-9]+ passed, 0 failed$$/{n[bin]=$$1} /^pb: exited with [0-9]+ as expected$$/{n[bin]=1} \
	    END{for (b in n) s+=n[b]; print s+0}'); \
	echo "kernel: $$passed passed, 0 failed"

# --- quality ------------------------------------------------------------------------------------
clippy:
	$(CARGO) clippy --workspace --exclude patchbay --all-targets -- -D warnings
	$(CARGO) clippy $(KFLAGS) --lib --bins --tests -- -D warnings

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

# --- kernel developer tools -----------------------------------------------------------------------
gdb: deps build pb
	@command -v gdb-multiarch >/dev/null || $(APT) install -y -qq gdb-multiarch
	$(PB) run --gdb $(KERNEL_ELF) & \
	sleep 1; gdb-multiarch -q $(KERNEL_ELF) -ex 'target remote :1234'; \
	kill %1 2>/dev/null || true

objdump: build
	$(LLVM_BIN)/llvm-objdump -d --no-show-raw-insn --demangle $(KERNEL_ELF)

nm: build
	$(LLVM_BIN)/llvm-nm -n --demangle $(KERNEL_ELF)

clean:
	$(CARGO) clean
