// patchbay boot entry: the first instructions every board runs.
//
// Contract on entry (Linux arm64 boot protocol, which QEMU and the Raspberry Pi firmware follow
// for a raw Image / kernel8.img): x0 = physical address of the DTB, MMU and D-cache off,
// at EL2 or EL1. Only the boot CPU (MPIDR Aff0 == 0) continues; any other CPU that arrives
// here parks in a WFE loop (secondaries are started later, at `secondary_entry`, by
// src/smp.rs: PSCI CPU_ON or a spin-table release).
//
// What this file does, in order, before any Rust runs:
//   0. if entered at EL3 (a Raspberry Pi booted without the firmware's armstub), do what the
//      armstub does and drop to EL2,
//   1. drop from EL2 to EL1 if needed (no traps for timers, PMU or FP/SIMD),
//   2. make FP/SIMD trap at EL1: the kernel is built general-registers-only
//      (aarch64-unknown-none-softfloat, Linux's -mgeneral-regs-only), so no trampoline ever has
//      to save v0-v31, and any FP/SIMD instruction in kernel code is a reported bug,
//   3. set SP_EL1 (exception stack) and SP_EL0 (kernel stack) and run on SP_EL0 (EL1t),
//      so that an overflow of the kernel stack can still be reported on the exception stack,
//   4. zero .bss,
//   5. in the hardened build, turn BTI and pointer authentication on (below),
//   6. call __patchbay_early_main(dtb, entry_el).
//
// This file is assembled through global_asm! (src/arch/aarch64/mod.rs) with {harden} = 1 in the
// hardened build (README "Hardened build"), else 0.

// Load this boot's APIA key (chosen by the boot CPU's __patchbay_harden_boot) into
// APIAKeyLo/Hi_EL1 if \sctlr (the SCTLR_EL1 value this CPU runs with) has EnIA (bit 31) set.
// Before EnIA, every paciasp/autiasp was a NOP; after it, every function signs and checks x30
// with this key, so it is loaded before the first Rust function that returns.
.macro  PB_APIA_KEY_LOAD sctlr, tmp1, tmp2
        tbz     \sctlr, #31, 9f
        adrp    \tmp1, __patchbay_apia_key
        add     \tmp1, \tmp1, :lo12:__patchbay_apia_key
        ldp     \tmp1, \tmp2, [\tmp1]
        msr     s3_0_c2_c1_0, \tmp1     // APIAKeyLo_EL1
        msr     s3_0_c2_c1_1, \tmp2     // APIAKeyHi_EL1
9:
.endm

        .section .text.boot, "ax"
        .global _start
        .type   _start, %function
_start:
        // arm64 Image header (Linux Documentation/arch/arm64/booting.rst). QEMU loads a raw
        // image with this header at RAM base + text_offset and passes the DTB in x0.
        b       primary_entry           // code0
        .word   0                       // code1
        .quad   __text_offset           // text_offset: load offset from the start of RAM
        .quad   __image_size            // image_size: includes .bss and the stacks
        .quad   0x2                     // flags: little-endian, 4 KiB pages
        .quad   0                       // res2
        .quad   0                       // res3
        .quad   0                       // res4
        .ascii  "ARM\x64"               // magic
        .word   0                       // res5

primary_entry:
        mov     x19, x0                 // x19 = DTB physical address (preserved throughout)
        adr     x22, at_el1             // x22 = where from_el2 continues at EL1

        // Park every CPU but the boot CPU.
        mrs     x1, mpidr_el1
        and     x1, x1, #0xff           // Aff0
        cbnz    x1, park

        mrs     x1, CurrentEL
        lsr     x1, x1, #2
        mov     x20, x1                 // x20 = the EL we were entered at
        cmp     x1, #3
        b.eq    from_el3
        cmp     x1, #2
        b.eq    from_el2
        cmp     x1, #1
        b.ne    park                    // EL0: cannot happen on a boot path
        b       at_el1

from_el3:
        // The firmware's armstub normally does this and enters us at EL2; a custom armstub,
        // `kernel_old=1` or QEMU's -bios leaves us at EL3.
        // CNTFRQ_EL0 is writable only at EL3: give it the board's frequency if nobody did.
        // __board_counter_hz comes from the board's board.ld (weak: 0 where a board has none).
        mrs     x1, cntfrq_el0
        cbnz    x1, 1f
        ldr     x1, =__board_counter_hz
        cbz     x1, 1f
        msr     cntfrq_el0, x1
1:
        // Cortex-A53 (part 0xd03) / A72 (0xd08): CPUECTLR_EL1.SMPEN = 1, so the caches take part
        // in coherency once enabled (the armstub sets it; it must be set before caches are on).
        mrs     x1, midr_el1
        ubfx    x1, x1, #4, #12
        cmp     x1, #0xd03
        b.eq    2f
        cmp     x1, #0xd08
        b.ne    3f
2:      mrs     x1, s3_1_c15_c2_1       // CPUECTLR_EL1
        orr     x1, x1, #(1 << 6)       // SMPEN
        msr     s3_1_c15_c2_1, x1
3:
        // SCR_EL3: RW=1 (EL2 is AArch64), HCE=1 (HVC enabled), SMD=1 (no secure monitor here),
        // bits 5:4 RES1, NS=1 (EL2 and EL1 are non-secure).
        mov     x1, #0x5b1
.if {harden}
        // API, APK (bits 17, 16): pointer-authentication instructions and key registers do not
        // trap to EL3 (RES0, ignored, on a CPU without FEAT_PAuth).
        orr     x1, x1, #(3 << 16)
.endif
        msr     scr_el3, x1
        // CPTR_EL3 = 0 (no FP/SIMD traps to EL3); MDCR_EL3 = 0 (no PMU or debug traps to EL3).
        msr     cptr_el3, xzr
        msr     mdcr_el3, xzr
        // SCTLR_EL2 in a known state: MMU and caches off, RES1 bits set (0x30c50830).
        mov     x1, #0x0830
        movk    x1, #0x30c5, lsl #16
        msr     sctlr_el2, x1
        // "Return" to EL2h with D, A, I, F masked, and continue as if entered there.
        mov     x1, #0x3c9
        msr     spsr_el3, x1
        adr     x1, from_el2
        msr     elr_el3, x1
        eret
        .weak   __board_counter_hz

from_el2:
        // EL1 may read the physical counter and use the physical timer; no virtual offset.
        mrs     x1, cnthctl_el2
        orr     x1, x1, #3              // EL1PCTEN | EL1PCEN
        msr     cnthctl_el2, x1
        msr     cntvoff_el2, xzr

        // HCR_EL2: RW=1 (EL1 is AArch64); no stage 2, no traps to EL2.
        mov     x1, #(1 << 31)
.if {harden}
        // API, APK (bits 41, 40): pointer-authentication instructions and key registers at EL1
        // do not trap to EL2 (RES0, ignored, on a CPU without FEAT_PAuth).
        orr     x1, x1, #(3 << 40)
.endif
        msr     hcr_el2, x1

        // CPTR_EL2: do not trap FP/SIMD (TFP=0); bits 13:12 and 9:0 are RES1.
        mov     x1, #0x33ff
        msr     cptr_el2, x1

        // MDCR_EL2: HPMN = PMCR_EL0.N so EL1 owns every PMU counter; TPM/TPMCR = 0 (no traps).
        mrs     x1, pmcr_el0
        ubfx    x1, x1, #11, #5
        msr     mdcr_el2, x1

        // EL1 sees the real MIDR/MPIDR.
        mrs     x1, midr_el1
        msr     vpidr_el2, x1
        mrs     x1, mpidr_el1
        msr     vmpidr_el2, x1

        // SCTLR_EL1 in a known state: MMU and caches off, RES1 bits set (0x30d00800).
        mov     x1, #0x0800
        movk    x1, #0x30d0, lsl #16
        msr     sctlr_el1, x1

        // "Return" to EL1h with D, A, I, F masked.
        mov     x1, #0x3c5
        msr     spsr_el2, x1
        msr     elr_el2, x22
        eret

at_el1:
        // CPACR_EL1.FPEN = 0b00: FP/SIMD traps at EL1 and EL0 (EC 0x07). The kernel is compiled
        // for general registers only; a trap here means FP/SIMD crept in (see docs/architecture.md).
        msr     cpacr_el1, xzr
        isb

        // SP_EL1 = this CPU's exception stack; SP_EL0 = its kernel stack; then select SP_EL0.
        adrp    x1, __boot_estack_top
        add     x1, x1, :lo12:__boot_estack_top
        mov     sp, x1
        adrp    x1, __boot_kstack_top
        add     x1, x1, :lo12:__boot_kstack_top
        msr     sp_el0, x1
        msr     spsel, #0

        // Zero .bss (16-byte aligned at both ends by the linker script).
        adrp    x1, __bss_start
        add     x1, x1, :lo12:__bss_start
        adrp    x2, __bss_end
        add     x2, x2, :lo12:__bss_end
1:      cmp     x1, x2
        b.hs    2f
        stp     xzr, xzr, [x1], #16
        b       1b
2:
.if {harden}
        // BTI and pointer authentication (src/arch/aarch64/harden.rs): the Rust half picks the
        // key and returns the SCTLR_EL1 bits this CPU can enforce (BT1, EnIA); it returns before
        // they are set, as its own prologue ran with signing off.
        bl      __patchbay_harden_boot
        PB_APIA_KEY_LOAD x0, x1, x2
        mrs     x1, sctlr_el1
        orr     x1, x1, x0
        msr     sctlr_el1, x1
        // The key and SCTLR_EL1 writes take effect before the first signing instruction.
        isb
.endif
        // A null frame record terminates every backtrace.
        mov     x29, xzr
        mov     x30, xzr
        mov     x0, x19
        mov     x1, x20
        bl      __patchbay_early_main
        // not reached
park:
        wfe
        b       park
        .size   _start, . - _start

// Secondary CPUs: `smp::bring_up` starts one CPU at a time here, MMU and caches off, at EL2 or
// EL1 (PSCI CPU_ON enters at the EL the kernel was entered at; the Pis' spin tables at EL2),
// after writing `__patchbay_secondary_boot` (src/smp.rs, `SecondaryBoot`) and cleaning it to
// the point of coherency, since this CPU reads it with its caches off:
//   [0] logical CPU number, [8] MAIR_EL1, [16] TCR_EL1, [24] TTBR0_EL1, [32] SCTLR_EL1
// (the boot CPU's own values: every CPU shares the same translation tables).
// This CPU then: drops to EL1 like the boot CPU, turns its MMU on *before* touching any stack
// (so no stack line is ever written uncached under a stale cached copy), installs the stacks of
// its slot and calls __patchbay_secondary_main(cpu).
        .equ    SB_CPU,   0
        .equ    SB_MAIR,  8
        .equ    SB_TCR,   16
        .equ    SB_TTBR0, 24
        .equ    SB_SCTLR, 32

        .global secondary_entry
        .type   secondary_entry, %function
secondary_entry:
        adr     x22, secondary_el1
        mrs     x1, CurrentEL
        lsr     x1, x1, #2
        cmp     x1, #2
        b.eq    from_el2
        cmp     x1, #1
        b.ne    park                    // EL3 or EL0: no bring-up protocol enters there
secondary_el1:
        msr     cpacr_el1, xzr          // FP/SIMD traps, as on the boot CPU
        adrp    x20, __patchbay_secondary_boot
        add     x20, x20, :lo12:__patchbay_secondary_boot
        ldr     x1, [x20, #SB_MAIR]
        msr     mair_el1, x1
        ldr     x1, [x20, #SB_TCR]
        msr     tcr_el1, x1
        ldr     x1, [x20, #SB_TTBR0]
        msr     ttbr0_el1, x1
        // The register writes must take effect before the TLB invalidation; nothing translated
        // or fetched before (firmware, reset state) may survive the switch.
        isb
        tlbi    vmalle1
        ic      iallu
        dsb     nsh
        isb
        ldr     x1, [x20, #SB_SCTLR]
        msr     sctlr_el1, x1
        // MMU on before the next instruction fetch.
        isb
.if {harden}
        // The boot CPU's SCTLR_EL1 (just set) carries its BT1/EnIA; the key goes with it, and
        // takes effect before the first signing instruction.
        PB_APIA_KEY_LOAD x1, x2, x3
        isb
.endif

        // This CPU's stacks: block = __stacks_start + cpu * __cpu_stack_block, laid out
        // [guard][kernel stack][guard][exception stack] (linker.ld).
        ldr     x21, [x20, #SB_CPU]
        adrp    x1, __stacks_start
        add     x1, x1, :lo12:__stacks_start
        ldr     x2, =__cpu_stack_block
        madd    x1, x21, x2, x1
        add     x2, x1, x2
        mov     sp, x2                  // SP_EL1: the top of the block (exception stack)
        ldr     x2, =__kstack_size
        add     x1, x1, #0x1000
        add     x1, x1, x2
        msr     sp_el0, x1              // SP_EL0: the top of the kernel stack
        msr     spsel, #0

        mov     x29, xzr
        mov     x30, xzr
        mov     x0, x21
        bl      __patchbay_secondary_main
        b       park
        .size   secondary_entry, . - secondary_entry
