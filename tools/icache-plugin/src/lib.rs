//! `libpatchbay_icache_plugin.so`: a QEMU TCG plugin that runs the stale-instruction-cache
//! model (`patchbay-icache-model`) on a booting patchbay kernel.
//!
//! QEMU keeps instruction fetch coherent with stores, so a kernel that forgets a `DC CVAU`, a
//! `DSB`, an `IC IVAU` or the `ISB` passes every emulated test. This plugin feeds the model:
//!
//! * every store whose physical address lies in an executable mapping (found by walking the
//!   guest's translation tables whenever TTBR0/TCR/SCTLR change), with the store's PC, its
//!   virtual address (the poke window's RW alias) and physical address (QEMU's `hwaddr`);
//! * `DC CVAU/CVAC/CIVAC/CVAP/CVADP` and `IC IVAU`: the operand register is read at execution
//!   and translated through the guest's tables, so exactly that line is maintained; `IC
//!   IALLU[IS]`, maintenance-completing `DSB`s, `ISB`, `ERET` and the first instruction of each
//!   VBAR_EL1 vector (exception entry);
//! * execution of the kernel's publication mark (the entry of `patchbay_icache_published`);
//! * every translation block executed while the model tracks stale lines (with one vCPU a
//!   conditional callback: when nothing is stale it costs one inline compare per block; with
//!   several, a callback per block that returns at once when nothing is stale, see [`Blocks`]).
//!
//! **Which vCPU.** QEMU 10.0 hands a callback the index of the vCPU that *translated* its block
//! whenever all vCPUs share one host thread (`-icount`, `-accel tcg,thread=single`): there
//! `accel/tcg/plugin-gen.c` `gen_cpu_index()` bakes `current_cpu->cpu_index` into the block as
//! a constant (its single-vCPU fast path tests only that `CF_PARALLEL` is clear), and every vCPU
//! runs the same block. So the plugin asks the guest which CPU runs ([`State::cpu`]): TPIDR_EL1
//! points at that CPU's slot of `patchbay::percpu::CPUS`, whose first field is its number. The
//! index QEMU passes is used only before the CPU has set TPIDR_EL1 (the first instructions of
//! its bring-up, where nothing is stale) — and with one thread per vCPU it is right anyway.
//!
//! Arguments (`-plugin libpatchbay_icache_plugin.so,elf=KERNEL,mode=strict[,cmodx=local]`):
//! `elf` gives symbols and markers; `mode=strict` exits QEMU with [`EXIT_VIOLATION`] at the first
//! violation, `mode=report` reports them all and exits normally. Output lines start with
//! `icache: ` on stderr: one banner, one `VIOLATION` line per violation, one `summary` at exit.

#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

mod elf;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use patchbay_icache_model::decode::{self, Insn};
use patchbay_icache_model::walk::{self, Regime};
use patchbay_icache_model::{Config, Model, Store, Violation};
use patchbay_pure::cache::Ctr;
use qemu_plugin::{
    Args, CallbackFlags, HasCallbacks, Info, MemRW, MemValue, PluginCondition, PluginId, PluginU64,
    Register, RegisterDescriptor, TranslationBlock, VCPUIndex, register,
};

/// QEMU's exit status when strict mode stops at a violation (the kernel's own codes are 0-3 and
/// pb's timeout is 124).
pub const EXIT_VIOLATION: i32 = 86;
/// QEMU's exit status when the plugin cannot do its job (bad arguments, untranslatable address).
pub const EXIT_PLUGIN_ERROR: i32 = 87;

/// How long the summary at exit waits for a vCPU that holds the model.
const SUMMARY_WAIT: Duration = Duration::from_millis(500);

/// Architectural size of the VBAR_EL1 vector table and of one entry.
const VECTORS_SIZE: u64 = 0x800;
const VECTOR_ENTRY: u64 = 0x80;
/// Offset bits of the smallest (4 KiB) page: one translation covers at least this much.
const PAGE_MASK: u64 = 0xfff;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Strict,
    Report,
}

/// The guest registers the plugin reads.
struct Regs {
    x: Vec<RegisterDescriptor<'static>>,
    sctlr: RegisterDescriptor<'static>,
    tcr: RegisterDescriptor<'static>,
    ttbr0: RegisterDescriptor<'static>,
    ttbr1: RegisterDescriptor<'static>,
    vbar: RegisterDescriptor<'static>,
    ctr: RegisterDescriptor<'static>,
    tpidr: RegisterDescriptor<'static>,
}

/// Reads a register (only inside a callback allowed to, or at translation time).
fn try_read(r: &RegisterDescriptor<'static>) -> qemu_plugin::Result<u64> {
    let bytes = r.read()?;
    let mut v = [0u8; 8];
    let n = bytes.len().min(8);
    v[..n].copy_from_slice(&bytes[..n]);
    Ok(u64::from_le_bytes(v))
}

/// [`try_read`], 0 when QEMU refuses.
fn read(r: &RegisterDescriptor<'static>) -> u64 {
    try_read(r).unwrap_or_default()
}

impl Regs {
    fn find(all: &[RegisterDescriptor<'static>]) -> Result<Regs, String> {
        let get = |name: &str| {
            all.iter()
                .find(|r| r.name == name)
                .cloned()
                .ok_or_else(|| format!("QEMU offers no register {name}"))
        };
        Ok(Regs {
            x: (0..31)
                .map(|n| get(&format!("x{n}")))
                .collect::<Result<_, _>>()?,
            // QEMU names the AArch64 EL1 registers without the suffix when they alias AArch32 ones.
            sctlr: get("SCTLR")?,
            tcr: get("TCR_EL1")?,
            ttbr0: get("TTBR0_EL1")?,
            ttbr1: get("TTBR1_EL1")?,
            vbar: get("VBAR")?,
            ctr: get("CTR_EL0")?,
            tpidr: get("TPIDR_EL1")?,
        })
    }

    fn regime(&self) -> Regime {
        Regime {
            sctlr: read(&self.sctlr),
            tcr: read(&self.tcr),
            ttbr0: read(&self.ttbr0),
            ttbr1: read(&self.ttbr1),
        }
    }

    /// `Xt` (register 31 is XZR for these instructions).
    fn xt(&self, rt: u8) -> u64 {
        self.x.get(usize::from(rt)).map_or(0, read)
    }
}

/// A descriptor read for the walker: through the current CPU's virtual address space at
/// VA = PA. v4 of the API cannot read physical memory (that came in v5 / QEMU 10.1); this is
/// exact because the kernel identity-maps all RAM, where its tables live, and with the MMU off
/// virtual is physical.
///
/// The call goes to the raw API: the crate's wrapper hands QEMU a stack buffer dressed as a
/// `GByteArray`, which QEMU resizes with GLib and crashes.
fn read_phys_u64(pa: u64) -> Option<u64> {
    // SAFETY: a fresh, empty GLib byte array; QEMU's GLib provides the function.
    let buf = unsafe { g_byte_array_new() };
    // SAFETY: `buf` is a valid GByteArray that QEMU may resize; called from a vCPU callback
    // (translation or execution), where QEMU has a current CPU.
    let ok = unsafe { qemu_plugin::sys::qemu_plugin_read_memory_vaddr(pa, buf, 8) };
    let mut b = [0u8; 8];
    // SAFETY: on success QEMU filled `len` bytes at `data`; we copy at most 8 of them.
    unsafe {
        let n = ((*buf).len as usize).min(8);
        if ok {
            std::ptr::copy_nonoverlapping((*buf).data, b.as_mut_ptr(), n);
        }
        g_byte_array_free(buf, true);
    }
    ok.then(|| u64::from_le_bytes(b))
}

// GLib, provided by the QEMU binary the plugin is loaded into.
unsafe extern "C" {
    fn g_byte_array_new() -> *mut qemu_plugin::sys::GByteArray;
    fn g_byte_array_free(array: *mut qemu_plugin::sys::GByteArray, free_segment: bool) -> *mut u8;
}

/// The scoreboard entry "some line is stale" (per vCPU), tested inline before each block.
struct Flag(PluginU64);
// SAFETY: the entry is a handle into QEMU's scoreboard, which QEMU allows any thread to set
// for any vCPU with `qemu_plugin_u64_set`.
unsafe impl Send for Flag {}
// SAFETY: as above; the handle itself is never mutated.
unsafe impl Sync for Flag {}

/// How a block learns that some line is stale.
///
/// With one vCPU: an inline compare of a scoreboard entry (a conditional callback). With several
/// it cannot be: QEMU 10.0's `gen_plugin_u64_ptr()` scales the vCPU index *in place*
/// (`tcg_gen_muli_i32(cpu_index, cpu_index, entry_size)`), and under one-thread TCG that index
/// is the block's interned constant temp (see the crate docs), so every later use of the same
/// integer in the block becomes index x 8 — a block translated on vCPU 1 then passes 8 as the
/// exception level of `helper_rebuild_hflags_a64` and QEMU aborts in `arm_mmu_idx_el` ("code
/// should not be reached"); with index 0 the product is 0 and nothing changes. So with several
/// vCPUs every block calls [`check_block`], which first tests a plain flag.
enum Blocks {
    Inline(Flag),
    Called(AtomicBool),
}

struct State {
    mode: Mode,
    cmodx_local: bool,
    cpus: usize,
    symbols: elf::Symbols,
    markers: Vec<u64>,
    /// `patchbay::percpu::CPUS` (address, size), and the CPU number of each slot seen in
    /// TPIDR_EL1 (read from the slot once).
    percpu: Option<(u64, u64)>,
    slots: Mutex<Vec<(u64, usize)>>,
    /// The text as linked: the old word of a code word no store or translation has shown yet.
    text: elf::Text,
    regs: OnceLock<Regs>,
    model: Mutex<Option<Model>>,
    /// Executable physical ranges, and the regime they were computed under.
    code: RwLock<(Regime, Vec<(u64, u64)>)>,
    /// Last known instruction word per physical address (for the CMODX old word), from stores
    /// and translations (`None`: overwritten by a store of another size, unknown); before
    /// either, the ELF's text.
    words: Mutex<HashMap<u64, Option<u32>>>,
    stale: Blocks,
    done: AtomicBool,
}

static STATE: OnceLock<State> = OnceLock::new();

fn state() -> &'static State {
    STATE.get().expect("plugin installed")
}

fn fatal(msg: &str) -> ! {
    eprintln!("icache: ERROR {msg}");
    std::process::exit(EXIT_PLUGIN_ERROR)
}

impl State {
    fn regs(&self) -> &Regs {
        self.regs.get().expect("registers found at vCPU init")
    }

    /// The model, created on first use (CTR_EL0 is read from the guest then).
    fn with_model<R>(&self, f: impl FnOnce(&mut Model) -> R) -> R {
        let mut guard = self.model.lock().unwrap_or_else(|e| e.into_inner());
        let model = guard.get_or_insert_with(|| {
            let ctr = Ctr(read(&self.regs().ctr));
            eprintln!(
                "icache: model on ({}), {} CPU(s), CTR_EL0 {:#x} (I-line {} B, D-line {} B, IDC {}, \
                 DIC {}), CMODX exception for the writing CPU {}, {} publication marker(s)",
                if self.mode == Mode::Strict { "strict" } else { "report" },
                self.cpus,
                ctr.0,
                ctr.icache_line(),
                ctr.dcache_line(),
                u8::from(ctr.idc()),
                u8::from(ctr.dic()),
                if self.cmodx_local { "on" } else { "off" },
                self.markers.len()
            );
            Model::new(Config {
                cpus: self.cpus,
                ctr,
                cmodx_local: self.cmodx_local,
            })
        });
        let r = f(model);
        let stale = model.pending() > 0;
        drop(guard);
        match &self.stale {
            Blocks::Inline(flag) => {
                for cpu in 0..self.cpus {
                    qemu_plugin::qemu_plugin_u64_set(flag.0, cpu as VCPUIndex, u64::from(stale));
                }
            }
            Blocks::Called(flag) => flag.store(stale, Ordering::Relaxed),
        }
        r
    }

    /// The CPU running the current callback (`vcpu`: the index QEMU passed; the crate docs say
    /// why it is not trusted).
    fn cpu(&self, vcpu: VCPUIndex) -> usize {
        let fallback = vcpu as usize;
        let Some((base, size)) = self.percpu else {
            return fallback;
        };
        // A QEMU that refused the read (one that enforces the callback's register flags) must
        // not leave the plugin trusting QEMU's index silently.
        let slot = try_read(&self.regs().tpidr)
            .unwrap_or_else(|e| fatal(&format!("cannot read TPIDR_EL1 to tell the vCPU: {e}")));
        if slot.wrapping_sub(base) >= size {
            return fallback;
        }
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&(_, cpu)) = slots.iter().find(|s| s.0 == slot) {
            return cpu;
        }
        // `PerCpu::id`, a u32 at offset 0 (the kernel identity-maps its data).
        let id = read_phys_u64(slot)
            .map(|v| v as u32 as usize)
            .filter(|&id| id < self.cpus)
            .unwrap_or_else(|| fatal(&format!("TPIDR_EL1 {slot:#x}: no CPU number in the slot")));
        slots.push((slot, id));
        id
    }

    /// Translate `va` under the current regime, or stop: a maintenance address the model
    /// cannot place would make every later verdict meaningless.
    fn pa(&self, va: u64) -> u64 {
        let regime = self.regs().regime();
        walk::translate(&regime, va, read_phys_u64)
            .unwrap_or_else(|e| fatal(&format!("cannot translate va {va:#x}: {e:?}")))
            .pa
    }

    /// Recompute the executable ranges when the regime changed.
    fn refresh_code(&self, regime: Regime) {
        if self.code.read().unwrap_or_else(|e| e.into_inner()).0 == regime {
            return;
        }
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        walk::executable_leaves(&regime, read_phys_u64, |_, pa, size| {
            ranges.push((pa, pa + size));
        })
        .unwrap_or_else(|e| fatal(&format!("cannot walk the translation tables: {e:?}")));
        ranges.sort_unstable();
        ranges.dedup_by(|b, a| {
            let merge = b.0 <= a.1;
            if merge {
                a.1 = a.1.max(b.1);
            }
            merge
        });
        *self.code.write().unwrap_or_else(|e| e.into_inner()) = (regime, ranges);
    }

    fn is_code(&self, pa: u64) -> bool {
        let code = self.code.read().unwrap_or_else(|e| e.into_inner());
        let i = code.1.partition_point(|r| r.1 <= pa);
        code.1.get(i).is_some_and(|r| r.0 <= pa)
    }

    fn report(&self, v: &Violation) {
        eprintln!(
            "icache: VIOLATION {v} [executed in {}; store in {}]",
            self.symbols.describe(v.va),
            self.symbols.describe(v.store.pc)
        );
        if self.mode == Mode::Strict {
            self.summary();
            std::process::exit(EXIT_VIOLATION);
        }
    }

    fn summary(&self) {
        if self.done.swap(true, Ordering::SeqCst) {
            return;
        }
        // At exit another vCPU may be inside a callback holding the lock (multi-threaded TCG
        // keeps running the others): wait for it a little, but never block — the exiting thread
        // itself holds it after a fatal error inside a callback.
        let give_up = Instant::now() + SUMMARY_WAIT;
        let stats = loop {
            match self.model.try_lock() {
                Ok(m) => break m.as_ref().map(Model::stats).unwrap_or_default(),
                Err(_) if Instant::now() < give_up => std::thread::sleep(Duration::from_millis(1)),
                Err(_) => {
                    eprintln!("icache: summary unavailable (model busy at exit)");
                    return;
                }
            }
        };
        eprintln!(
            "icache: summary: {} stores to code, {} lines completed the sequence, {} executions \
             of pending CMODX-safe changes tolerated, {} violations",
            stats.stores, stats.completed, stats.cmodx_tolerated, stats.violations
        );
    }
}

/// One piece of a translation block inside one page: `len` bytes at `va` / `pa`.
#[derive(Clone, Copy)]
struct Segment {
    va: u64,
    pa: u64,
    len: u64,
}

struct Plugin;

impl Register for Plugin {
    fn register(&mut self, id: PluginId, args: &Args, info: &Info) -> qemu_plugin::Result<()> {
        let mut elf_path = None;
        let mut mode = Mode::Strict;
        let mut cmodx_local = false;
        for kv in &args.raw {
            match kv.split_once('=') {
                Some(("elf", p)) => elf_path = Some(p.to_string()),
                Some(("mode", "strict")) => mode = Mode::Strict,
                Some(("mode", "report")) => mode = Mode::Report,
                Some(("cmodx", "local")) => cmodx_local = true,
                Some(("cmodx", "off")) => cmodx_local = false,
                _ => fatal(&format!(
                    "unknown argument {kv:?} (elf=PATH, mode=strict|report, cmodx=local|off)"
                )),
            }
        }
        let elf_path = elf_path.unwrap_or_else(|| fatal("missing argument elf=KERNEL_ELF"));
        let elf::Kernel {
            symbols,
            markers,
            text,
            percpu,
        } = elf::load(&elf_path).unwrap_or_else(|e| fatal(&e));
        let cpus = info.system.as_ref().map_or(1, |s| s.smp_vcpus.max(1)) as usize;
        if cpus > 64 {
            fatal("the model handles at most 64 CPUs");
        }
        let stale = if cpus == 1 {
            // SAFETY: creating a scoreboard of 8-byte entries has no precondition.
            let score = unsafe { qemu_plugin::sys::qemu_plugin_scoreboard_new(8) };
            Blocks::Inline(Flag(PluginU64 { score, offset: 0 }))
        } else {
            Blocks::Called(AtomicBool::new(false))
        };
        let installed = State {
            mode,
            cmodx_local,
            cpus,
            symbols,
            markers,
            percpu,
            slots: Mutex::new(Vec::new()),
            text,
            regs: OnceLock::new(),
            model: Mutex::new(None),
            code: RwLock::new((Regime::default(), Vec::new())),
            words: Mutex::new(HashMap::new()),
            stale,
            done: AtomicBool::new(false),
        };
        if STATE.set(installed).is_err() {
            fatal("installed twice");
        }
        qemu_plugin::qemu_plugin_register_atexit_cb(id, |_| state().summary())?;
        Ok(())
    }
}

impl HasCallbacks for Plugin {
    fn on_vcpu_init(&mut self, _id: PluginId, _vcpu: VCPUIndex) -> qemu_plugin::Result<()> {
        let s = state();
        if s.regs.get().is_none() {
            let all = qemu_plugin::qemu_plugin_get_registers()?;
            let regs = Regs::find(&all).unwrap_or_else(|e| fatal(&e));
            let _ = s.regs.set(regs);
        }
        Ok(())
    }

    fn on_translation_block_translate(
        &mut self,
        _id: PluginId,
        tb: TranslationBlock,
    ) -> qemu_plugin::Result<()> {
        let s = state();
        let regs = s.regs();
        let regime = regs.regime();
        s.refresh_code(regime);
        let vbar = read(&regs.vbar);
        let mut segments: Vec<Segment> = Vec::new();
        let mut words = Vec::new();
        for insn in tb.instructions() {
            let va = insn.vaddr();
            let data = insn.data();
            let word = u32::from_le_bytes(
                data.get(..4)
                    .and_then(|b| b.try_into().ok())
                    .unwrap_or_default(),
            );
            let len = data.len() as u64;
            let pa = match segments.last_mut() {
                // Same page as the segment and right after it: same translation.
                Some(seg) if seg.va & !PAGE_MASK == va & !PAGE_MASK && seg.va + seg.len == va => {
                    seg.len += len;
                    seg.pa + (va - seg.va)
                }
                _ => {
                    let pa = walk::translate(&regime, va, read_phys_u64).unwrap_or_else(|e| {
                        fatal(&format!("cannot translate executed va {va:#x}: {e:?}"))
                    });
                    segments.push(Segment { va, pa: pa.pa, len });
                    pa.pa
                }
            };
            words.push((pa, Some(word)));
            instrument(&insn, va, word, vbar, &s.markers);
        }
        s.words
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(words);
        let check = move |vcpu| check_block(vcpu, &segments);
        match &s.stale {
            Blocks::Inline(flag) => tb.register_conditional_execute_callback(
                check,
                PluginCondition::QEMU_PLUGIN_COND_NE,
                flag.0,
                0,
            ),
            Blocks::Called(_) => tb.register_execute_callback(check),
        }
        Ok(())
    }
}

/// Callbacks for one instruction at `va`.
fn instrument(insn: &qemu_plugin::Instruction, va: u64, word: u32, vbar: u64, markers: &[u64]) {
    let no_regs = CallbackFlags::QEMU_PLUGIN_CB_NO_REGS;
    insn.register_memory_access_callback(
        move |vcpu, info, vaddr| {
            let Some(hw) = info.hwaddr(vaddr) else { return };
            if hw.is_io() {
                return;
            }
            let spa = hw.hwaddr();
            let s = state();
            if !s.is_code(spa) {
                return;
            }
            let size = 1u64 << info.size_shift();
            let new = match info.value() {
                MemValue::U8(v) => u64::from(v),
                MemValue::U16(v) => u64::from(v),
                MemValue::U32(v) => u64::from(v),
                MemValue::U64(v) => v,
                MemValue::U128(v) => v as u64,
            };
            let old = {
                let mut words = s.words.lock().unwrap_or_else(|e| e.into_inner());
                let old = words.get(&spa).copied().unwrap_or_else(|| s.text.word(spa));
                if size == 4 {
                    words.insert(spa, Some(new as u32));
                } else {
                    for w in (spa & !3..spa + size).step_by(4) {
                        words.insert(w, None);
                    }
                }
                old
            };
            let store = Store {
                cpu: s.cpu(vcpu),
                pc: va,
                va: vaddr,
                pa: spa,
            };
            s.with_model(|m| m.store(store, size, old, new));
        },
        MemRW::QEMU_PLUGIN_MEM_W,
    );
    match decode::decode(word) {
        Insn::DcClean { rt, .. } => by_address(insn, rt, Model::dc_clean),
        Insn::IcIvau { rt } => by_address(insn, rt, Model::ic_ivau),
        Insn::IcIall { broadcast } => insn.register_execute_callback_flags(
            move |vcpu| {
                let s = state();
                s.with_model(|m| m.ic_iall(s.cpu(vcpu), broadcast))
            },
            no_regs,
        ),
        Insn::Dsb { completes: true } => insn.register_execute_callback_flags(
            move |vcpu| {
                let s = state();
                s.with_model(|m| m.dsb(s.cpu(vcpu)))
            },
            no_regs,
        ),
        Insn::Isb | Insn::Eret => insn.register_execute_callback_flags(
            move |vcpu| {
                let s = state();
                s.with_model(|m| m.cse(s.cpu(vcpu)))
            },
            no_regs,
        ),
        Insn::Dsb { completes: false } | Insn::Other => {}
    }
    if va.wrapping_sub(vbar) < VECTORS_SIZE && (va - vbar).is_multiple_of(VECTOR_ENTRY) {
        // Exception entry: the first instruction of a vector runs only when one is taken.
        insn.register_execute_callback_flags(
            move |vcpu| {
                let s = state();
                s.with_model(|m| m.cse(s.cpu(vcpu)))
            },
            no_regs,
        );
    }
    if markers.contains(&va) {
        insn.register_execute_callback_flags(
            move |vcpu| {
                let s = state();
                s.with_model(|m| m.published(s.cpu(vcpu)))
            },
            no_regs,
        );
    }
}

/// A by-VA maintenance instruction with its address in `Xrt`: `apply` it to the physical line.
fn by_address(insn: &qemu_plugin::Instruction, rt: u8, apply: fn(&mut Model, usize, u64)) {
    insn.register_execute_callback_flags(
        move |vcpu| {
            let s = state();
            let target = s.pa(s.regs().xt(rt));
            let cpu = s.cpu(vcpu);
            s.with_model(|m| apply(m, cpu, target));
        },
        CallbackFlags::QEMU_PLUGIN_CB_R_REGS,
    );
}

/// A block starts executing on `vcpu` while some line is stale (with several vCPUs: maybe
/// stale, see [`Blocks`]): check each chunk it covers.
fn check_block(vcpu: VCPUIndex, segments: &[Segment]) {
    let s = state();
    if let Blocks::Called(stale) = &s.stale
        && !stale.load(Ordering::Relaxed)
    {
        return;
    }
    let cpu = s.cpu(vcpu);
    let violation = s.with_model(|m| {
        segments.iter().find_map(|seg| {
            // One check per instruction word: the model keys by chunk, repeats are cheap.
            (0..seg.len)
                .step_by(4)
                .find_map(|off| m.execute(cpu, seg.va + off, seg.pa + off))
        })
    });
    if let Some(v) = violation {
        s.report(&v);
    }
}

register!(Plugin);
