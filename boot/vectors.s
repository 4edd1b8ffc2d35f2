// Exception vector table for EL1 (VBAR_EL1).
//
// Kernel code runs on SP_EL0 (EL1t), so its exceptions arrive at the "current EL with SP_EL0"
// vectors and are handled on SP_EL1, this CPU's separate exception stack: a kernel stack
// overflow can still be reported. Exceptions inside an exception handler arrive at the
// "current EL with SP_ELx" vectors. Lower-EL vectors exist only to report that something
// impossible happened.
//
// Every vector saves the full register state as an `ExceptionFrame` (src/exception.rs; the
// offsets below are asserted there) and calls
//     extern "C" fn __patchbay_exception(kind: u64, frame: &mut ExceptionFrame)
// which may change the frame (e.g. ELR to skip an instruction); the frame is then restored and
// ERET returns to the (possibly changed) ELR.

        .equ    FRAME_SIZE, 288         // 31 GPRs + sp + elr + spsr + esr + far = 36 * 8
        .equ    FRAME_SP,   248
        .equ    FRAME_ELR,  256
        .equ    FRAME_ESR,  272

// One vector slot: 0x80 bytes. Save x0/x1, pass the kind in x0, share the rest.
.macro  VECTOR kind
        .balign 0x80
        sub     sp, sp, #FRAME_SIZE
        stp     x0, x1, [sp, #0]
        mov     x0, #\kind
        b       exception_common
.endm

        .section .text.vectors, "ax"
        .balign 0x800
        .global __patchbay_vectors
        .type   __patchbay_vectors, %function
__patchbay_vectors:
        // kinds: 0..3 current EL SP_EL0, 4..7 current EL SP_ELx, 8..11 lower EL AArch64,
        // 12..15 lower EL AArch32; within each group sync, IRQ, FIQ, SError.
        VECTOR 0
        VECTOR 1
        VECTOR 2
        VECTOR 3
        VECTOR 4
        VECTOR 5
        VECTOR 6
        VECTOR 7
        VECTOR 8
        VECTOR 9
        VECTOR 10
        VECTOR 11
        VECTOR 12
        VECTOR 13
        VECTOR 14
        VECTOR 15

exception_common:
        // General-purpose registers x2..x30.
        stp     x2, x3, [sp, #16]
        stp     x4, x5, [sp, #32]
        stp     x6, x7, [sp, #48]
        stp     x8, x9, [sp, #64]
        stp     x10, x11, [sp, #80]
        stp     x12, x13, [sp, #96]
        stp     x14, x15, [sp, #112]
        stp     x16, x17, [sp, #128]
        stp     x18, x19, [sp, #144]
        stp     x20, x21, [sp, #160]
        stp     x22, x23, [sp, #176]
        stp     x24, x25, [sp, #192]
        stp     x26, x27, [sp, #208]
        stp     x28, x29, [sp, #224]
        // The interrupted stack pointer: SP_EL0 for kinds 0..3, else this stack before the frame.
        mrs     x2, sp_el0
        add     x3, sp, #FRAME_SIZE
        cmp     x0, #4
        csel    x2, x2, x3, lo
        stp     x30, x2, [sp, #240]
        // Exception syndrome registers.
        mrs     x2, elr_el1
        mrs     x3, spsr_el1
        stp     x2, x3, [sp, #FRAME_ELR]
        mrs     x2, esr_el1
        mrs     x3, far_el1
        stp     x2, x3, [sp, #FRAME_ESR]

        // A frame record (fp = interrupted x29, lr = interrupted pc) so backtraces taken
        // inside the handler continue into the interrupted code.
        ldr     x2, [sp, #FRAME_ELR]
        ldr     x3, [sp, #232]
        stp     x3, x2, [sp, #-16]!
        mov     x29, sp

        add     x1, sp, #16
        bl      __patchbay_exception

        add     sp, sp, #16
        // Restore: the handler may have changed ELR/SPSR or any register.
        ldp     x2, x3, [sp, #FRAME_ELR]
        msr     elr_el1, x2
        msr     spsr_el1, x3
        ldp     x2, x3, [sp, #16]
        ldp     x4, x5, [sp, #32]
        ldp     x6, x7, [sp, #48]
        ldp     x8, x9, [sp, #64]
        ldp     x10, x11, [sp, #80]
        ldp     x12, x13, [sp, #96]
        ldp     x14, x15, [sp, #112]
        ldp     x16, x17, [sp, #128]
        ldp     x18, x19, [sp, #144]
        ldp     x20, x21, [sp, #160]
        ldp     x22, x23, [sp, #176]
        ldp     x24, x25, [sp, #192]
        ldp     x26, x27, [sp, #208]
        ldp     x28, x29, [sp, #224]
        ldr     x30, [sp, #240]
        ldp     x0, x1, [sp, #0]
        add     sp, sp, #FRAME_SIZE
        eret
        .size   __patchbay_vectors, . - __patchbay_vectors
