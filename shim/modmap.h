/* modmap.h: the loaded objects (path, load bias, address range) so the report can symbolize ips. */
#ifndef GS_MODMAP_H
#define GS_MODMAP_H

#include "common.h"
#include "tracefmt.h"

#define GS_MODMAP_MAX 2048

typedef struct gs_module {
  gs_rec_module r;
  char path[1024];
} gs_module;

typedef void (*gs_module_cb)(const gs_module *m, void *arg);

/* Used by the writer thread only, so it needs no lock. */
typedef struct gs_modmap {
  gs_module *mods;
  size_t n;
  uint64_t rescans;
} gs_modmap;

/* Scans the loaded objects with dl_iterate_phdr and calls cb for each one not seen before.
 * Returns how many were new, or -ENOMEM. */
int gs__modmap_scan(gs_modmap *m, gs_module_cb cb, void *arg);

/* Whether ip lies in a known object. */
bool gs__modmap_contains(const gs_modmap *m, uint64_t ip);

void gs__modmap_free(gs_modmap *m);

#endif
