/* fault.c: test-only fault injection — which of the shim's own operations a test makes fail. */
#include "base.h"

#ifdef GS_FAULT_INJECTION
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const gs__fault_names[GS_FAULT__COUNT] = {
  [GS_FAULT_ALLOC] = "alloc", [GS_FAULT_CODEC] = "codec", [GS_FAULT_LAUNCH] = "launch",
  [GS_FAULT_TRACE_NOSPC] = "trace_nospc", [GS_FAULT_FLUSH_SLOW] = "flush_slow",
};

/* Global because the faults are a property of the test run, set once by the constructor before
 * any hook runs: from[f] is the occurrence from which f fails (0 = never); seen[f] counts them. */
static uint64_t gs__fault_from[GS_FAULT__COUNT];
static uint64_t gs__fault_seen[GS_FAULT__COUNT];

/* One "name[@N]" item of length n. 0 or -EINVAL. */
static int gs__fault_item(const char *item, size_t n) {
  const char *at = memchr(item, '@', n);
  size_t name_n = at ? (size_t)(at - item) : n;
  uint64_t from = 1;
  if (at) {
    char num[21];
    size_t k = n - name_n - 1;
    if (k == 0 || k >= sizeof(num) || strspn(at + 1, "0123456789") < k) return -EINVAL;
    memcpy(num, at + 1, k);
    num[k] = '\0';
    from = strtoull(num, NULL, 10);
    if (from == 0) return -EINVAL;
  }
  for (int f = 0; f < GS_FAULT__COUNT; f++)
    if (strlen(gs__fault_names[f]) == name_n && memcmp(gs__fault_names[f], item, name_n) == 0) {
      gs__fault_from[f] = from;
      return 0;
    }
  return -EINVAL;
}

int gs__fault_parse(char *const *envp, char *err, size_t errlen) {
  static const char key[] = "_GACTSHIM_FAULT=";
  for (; envp && *envp; envp++) {
    if (strncmp(*envp, key, sizeof(key) - 1) != 0) continue;
    const char *v = *envp + sizeof(key) - 1;
    for (const char *p = v; *p;) {
      size_t n = strcspn(p, ",");
      if (n && gs__fault_item(p, n) != 0) {
        snprintf(err, errlen, "gactshim: _GACTSHIM_FAULT='%s' is not valid; accepted: a comma-separated "
                 "list of alloc, codec, launch, trace_nospc, flush_slow, each optionally @N (fail from the N-th time on)", v);
        return -EINVAL;
      }
      p += n + (p[n] == ',');
    }
  }
  return 0;
}

bool gs__fault(gs_fault f) {
  uint64_t from = gs__fault_from[f];
  if (from == 0) return false;
  return __atomic_add_fetch(&gs__fault_seen[f], 1, __ATOMIC_RELAXED) >= from;
}
#endif
