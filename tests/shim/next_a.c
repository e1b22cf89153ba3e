/* next_a.c: test object for RTLD_NEXT (loaded before next_b; its next gs_next_probe is b's). */
#include <dlfcn.h>

__attribute__((visibility("default"))) int gs_next_probe(void) { return 'a'; }

/* Kept in a volatile so the call is not a tail call: RTLD_NEXT is relative to the return address,
 * which a tail call would move into the caller's object (glibc behaves the same). */
__attribute__((visibility("default"))) void *gs_next_from_a(void) {
  void *volatile p = dlsym(RTLD_NEXT, "gs_next_probe");
  return p;
}
