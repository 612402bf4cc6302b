/*
 * Minimal start-up for qemu's mps2-an386 (Cortex-M4F): the vector table, a reset
 * handler that turns on the FPU, copies .data, clears .bss, opens the semihosting
 * stdio and calls main (no static constructors: this is C), and a
 * semihosting exit that reports success or failure to qemu (exit status 0 or 1).
 */
#include <stdint.h>
#include <string.h>

extern uint32_t __stack_top, __data_load, __data_start, __data_end, __bss_start, __bss_end;
extern int main(void);
extern void initialise_monitor_handles(void);
void semihosting_exit(int ok);

/* SYS_EXIT with ADP_Stopped_ApplicationExit (qemu exits 0) or
 * ADP_Stopped_RunTimeErrorUnknown (qemu exits 1). */
void semihosting_exit(int ok) {
    register uint32_t r0 __asm__("r0") = 0x18;
    register uint32_t r1 __asm__("r1") = ok ? 0x20026u : 0x20023u;
    __asm__ volatile("bkpt 0xab" : : "r"(r0), "r"(r1) : "memory");
    for (;;) {
    }
}

void Reset_Handler(void) {
    /* Full access to CP10 and CP11 (the FPU) before any float instruction. */
    volatile uint32_t *cpacr = (volatile uint32_t *)0xE000ED88u;
    *cpacr |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    memcpy(&__data_start, &__data_load, (size_t)((char *)&__data_end - (char *)&__data_start));
    memset(&__bss_start, 0, (size_t)((char *)&__bss_end - (char *)&__bss_start));
    initialise_monitor_handles();
    semihosting_exit(main() == 0);
}

/* A fault (or a panic in flowmlp: its panic handler executes an undefined
 * instruction) ends the run with a failure status. */
void Fault_Handler(void) {
    static const char msg[] = "fault (a panic in flowmlp, or a bug)\n";
    register uint32_t r0 __asm__("r0") = 0x04; /* SYS_WRITE0 */
    register const char *r1 __asm__("r1") = msg;
    __asm__ volatile("bkpt 0xab" : : "r"(r0), "r"(r1) : "memory");
    semihosting_exit(0);
}

#define HANDLER(f) ((uintptr_t)(f))
__attribute__((section(".vectors"), used)) static const uintptr_t vectors[16] = {
    (uintptr_t)&__stack_top, HANDLER(Reset_Handler), HANDLER(Fault_Handler), HANDLER(Fault_Handler),
    HANDLER(Fault_Handler),  HANDLER(Fault_Handler), HANDLER(Fault_Handler), 0,
    0,                       0,                      0,                      HANDLER(Fault_Handler),
    HANDLER(Fault_Handler),  0,                      HANDLER(Fault_Handler), HANDLER(Fault_Handler),
};
