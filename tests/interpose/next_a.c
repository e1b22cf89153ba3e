/* next_a.c: test object for RTLD_NEXT (loaded before next_b; its next probes are b's). */
#include <dlfcn.h>

/* Two probes: a plain name (glibc answers it directly) and a "cu" name (the shim answers it with
 * its own RTLD_NEXT emulation, since it may have to route the result). */
__attribute__((visibility("default"))) int gs_next_probe(void) { return 'a'; }
__attribute__((visibility("default"))) int cuGsNextProbe(void) { return 'a'; }

/* Kept in a volatile so the call is not a tail call: RTLD_NEXT is relative to the return address,
 * which a tail call would move into the caller's object (glibc behaves the same). */
__attribute__((visibility("default"))) void *gs_next_from_a(const char *name) {
  void *volatile p = dlsym(RTLD_NEXT, name);
  return p;
}
