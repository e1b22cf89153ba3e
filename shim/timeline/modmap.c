/* modmap.c: the module map — for each loaded object its path, load bias and address range. */
#include "timeline.h"

#include <errno.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct gs__scan {
  gs_modmap *m;
  gs_module_cb cb;
  void *arg;
  int added;
} gs__scan;

static bool gs__known(const gs_modmap *m, const gs_module *mod) {
  for (size_t i = 0; i < m->n; i++)
    if (m->mods[i].r.lo == mod->r.lo && strcmp(m->mods[i].path, mod->path) == 0) return true;
  return false;
}

static int gs__scan_one(struct dl_phdr_info *info, size_t size, void *data) {
  gs__scan *s = data;
  gs_module mod;
  memset(&mod, 0, sizeof(mod));
  uint64_t lo = UINT64_MAX, hi = 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD) continue;
    uint64_t a = info->dlpi_addr + ph->p_vaddr;
    if (a < lo) lo = a;
    if (a + ph->p_memsz > hi) hi = a + ph->p_memsz;
  }
  if (hi == 0) return 0;
  mod.r.bias = info->dlpi_addr;
  mod.r.lo = lo;
  mod.r.hi = hi;
  const char *name = info->dlpi_name;
  if (!name || !*name) {
    /* The main program has no name here; the report needs a path to read its symbols. */
    ssize_t n = readlink("/proc/self/exe", mod.path, sizeof(mod.path) - 1);
    mod.path[n > 0 ? n : 0] = '\0';
  } else {
    strncpy(mod.path, name, sizeof(mod.path) - 1);
  }
  if (gs__known(s->m, &mod) || s->m->n >= GS_MODMAP_MAX) return 0;
  s->m->mods[s->m->n++] = mod;
  s->added++;
  if (s->cb) s->cb(&mod, s->arg);
  return 0;
}

int gs__modmap_scan(gs_modmap *m, gs_module_cb cb, void *arg) {
  if (!m->mods) {
    m->mods = calloc(GS_MODMAP_MAX, sizeof(gs_module));
    if (!m->mods) return -ENOMEM;
  }
  gs__scan s = {m, cb, arg, 0};
  dl_iterate_phdr(gs__scan_one, &s);
  m->rescans++;
  return s.added;
}

bool gs__modmap_contains(const gs_modmap *m, uint64_t ip) {
  for (size_t i = 0; i < m->n; i++)
    if (ip >= m->mods[i].r.lo && ip < m->mods[i].r.hi) return true;
  return false;
}

void gs__modmap_free(gs_modmap *m) {
  free(m->mods);
  memset(m, 0, sizeof(*m));
}
