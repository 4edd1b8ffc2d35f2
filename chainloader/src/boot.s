// patchbay chainloader entry. Loaded at 0x80000 (kernel8.img) by the Raspberry Pi firmware (or
// QEMU -kernel), linked at LOADER_BASE (link.ld). Contract on entry: x0 = DTB, MMU off, EL2
// (EL3 without an armstub). Only the boot CPU (MPIDR Aff0 == 0) continues.
//
//   1. copy the image from where it was loaded to its link address (position-independent code
//      only until the jump),
//   2. make the copy visible to instruction fetch (IC IALLU, DSB, ISB),
//   3. enable FP/SIMD at the current EL (rustc emits SIMD), set SP, zero .bss,
//   4. jump (absolute) to loader_main(dtb, entry_el) at the link address.

        .section .text.boot, "ax"
        .global _start
_start:
        // arm64 Image header, so QEMU places the raw image at RAM + text_offset like the firmware.
        b       1f                      // code0
        .word   0                       // code1
        .quad   __loader_text_offset    // text_offset
        .quad   __loader_size           // image_size
        .quad   0x2                     // flags: little-endian, 4 KiB pages
        .quad   0, 0, 0                 // res2-4
        .ascii  "ARM\x64"               // magic
        .word   0                       // res5
1:
        mov     x19, x0                 // DTB
        mrs     x1, mpidr_el1
        and     x1, x1, #0xff
        cbnz    x1, park

        // 1. Relocate: [where we run, + size) -> [__loader_start, __loader_copy_end).
        adr     x1, _start
        ldr     x2, =__loader_start
        ldr     x3, =__loader_copy_end
        cmp     x1, x2
        b.eq    3f
2:      ldp     x4, x5, [x1], #16
        stp     x4, x5, [x2], #16
        cmp     x2, x3
        b.lo    2b
3:
        // 2. The copy is code: no stale instruction may be fetched from the new place.
        dsb     sy
        ic      iallu
        dsb     sy
        isb

        // 3. FP/SIMD on at the current EL; the instruction cache on (SCTLR.I: allowed with the
        //    MMU off, and it makes the CRC loops fast). x20 = entry EL.
        mrs     x20, CurrentEL
        lsr     x20, x20, #2
        cmp     x20, #3
        b.ne    4f
        msr     cptr_el3, xzr
        mrs     x1, sctlr_el3
        orr     x1, x1, #(1 << 12)
        msr     sctlr_el3, x1
        b       6f
4:      cmp     x20, #2
        b.ne    5f
        mov     x1, #0x33ff             // CPTR_EL2: TFP=0, RES1 bits
        msr     cptr_el2, x1
        mrs     x1, sctlr_el2
        orr     x1, x1, #(1 << 12)
        msr     sctlr_el2, x1
        b       6f
5:      mov     x1, #(3 << 20)          // CPACR_EL1.FPEN
        msr     cpacr_el1, x1
        mrs     x1, sctlr_el1
        orr     x1, x1, #(1 << 12)
        msr     sctlr_el1, x1
6:      isb

        ldr     x1, =__stack_top
        mov     sp, x1
        ldr     x1, =__bss_start
        ldr     x2, =__bss_end
7:      cmp     x1, x2
        b.hs    8f
        stp     xzr, xzr, [x1], #16
        b       7b
8:
        mov     x29, xzr
        mov     x30, xzr
        mov     x0, x19
        mov     x1, x20
        ldr     x2, =loader_main
        br      x2

park:
        wfe
        b       park
        .ltorg
