/* dlsym.c: the exported dlsym, in both glibc versions; linked into libgactshim.so only. */
#include "interpose.h"

/* Kept out of the internal static library: a sanitizer runtime (or any shared library) that calls
 * dlsym would otherwise make the linker pull this definition into every unit-test program.
 *
 * Binaries built against glibc >= 2.34 bind to the default version, older ones (and libraries
 * built on old distributions, such as cudart) to GLIBC_2.2.5. The nodes come from gactshim.map. */
__asm__(".symver gs_dlsym_v34, dlsym@@GLIBC_2.34");
__asm__(".symver gs_dlsym_v225, dlsym@GLIBC_2.2.5");

#if defined(__x86_64__)
/* RTLD_NEXT is relative to the return address of the dlsym call. For a name that cannot be a
 * driver entry point (no "cu" prefix) the stub jumps to glibc's dlsym with the caller's return
 * address still on the stack, so glibc itself answers exactly as if we were not there: no
 * emulation, no C code, nothing for a sanitizer runtime resolving its interceptors to trip on.
 * Everything else goes to gs__dlsym_hook with the return address as its third argument. */
__asm__(
    "  .text\n"
    "  .globl gs_dlsym_v34\n"
    "  .type gs_dlsym_v34, @function\n"
    "  .globl gs_dlsym_v225\n"
    "  .type gs_dlsym_v225, @function\n"
    "gs_dlsym_v34:\n"
    "gs_dlsym_v225:\n"
    "  endbr64\n"                    /* a landing pad where indirect-branch tracking is on */
    "  cmpq $-1, %rdi\n"              /* handle == RTLD_NEXT ? */
    "  jne 1f\n"
    "  testq %rsi, %rsi\n"
    "  je 1f\n"
    "  cmpb $0x63, (%rsi)\n"          /* 'c' */
    "  jne 2f\n"
    "  cmpb $0x75, 1(%rsi)\n"         /* 'u' */
    "  je 1f\n"
    "2:\n"
    "  movq gs__dlsym_real(%rip), %rax\n"
    "  testq %rax, %rax\n"
    "  je 3f\n"
    "  jmp *%rax\n"
    "3:\n"                            /* first lookup in the process: resolve glibc's dlsym */
    "  pushq %rdi\n"
    "  pushq %rsi\n"
    "  subq $8, %rsp\n"
    "  call gs__interpose_init\n"
    "  addq $8, %rsp\n"
    "  popq %rsi\n"
    "  popq %rdi\n"
    "  movq gs__dlsym_real(%rip), %rax\n"
    "  testq %rax, %rax\n"
    "  je 1f\n"
    "  jmp *%rax\n"
    "1:\n"
    "  movq (%rsp), %rdx\n"
    "  jmp gs__dlsym_hook\n"
    "  .size gs_dlsym_v34, .-gs_dlsym_v34\n"
    "  .size gs_dlsym_v225, .-gs_dlsym_v225\n");
#else
/* Elsewhere every lookup takes the C path (RTLD_NEXT emulated by gs__dlsym_next). noinline: the
 * return address must be the application's call site. */
GS_API __attribute__((noinline)) GS_NO_SANITIZE void *gs_dlsym_v34(void *handle, const char *name) {
  return gs__dlsym_hook(handle, name, __builtin_return_address(0));
}

GS_API __attribute__((noinline)) GS_NO_SANITIZE void *gs_dlsym_v225(void *handle, const char *name) {
  return gs__dlsym_hook(handle, name, __builtin_return_address(0));
}
#endif
