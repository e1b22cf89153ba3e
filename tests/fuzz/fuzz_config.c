/* fuzz_config.c: libFuzzer target for the GACTSHIM_* environment parser (gs__config_parse). */
#include "base.h"

#include <stdlib.h>
#include <string.h>

#define GS_FUZZ_MAX_VARS 16

/* The input is split at newlines into environment entries; an entry not starting with '_' gets
 * the GACTSHIM_ prefix, so most inputs reach the variable table rather than being ignored. */
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  char *copy = malloc(size + 1), *env[GS_FUZZ_MAX_VARS + 1];
  char store[GS_FUZZ_MAX_VARS][512];
  if (!copy) return 0;
  memcpy(copy, data, size);
  copy[size] = '\0';
  size_t n = 0;
  for (char *line = copy, *next; line && n < GS_FUZZ_MAX_VARS; line = next) {
    next = strchr(line, '\n');
    if (next) *next++ = '\0';
    const char *prefix = line[0] == '_' ? "" : "GACTSHIM_";
    size_t pl = strlen(prefix), ll = strnlen(line, sizeof(store[n]) - pl - 1);
    memcpy(store[n], prefix, pl);
    memcpy(store[n] + pl, line, ll);
    store[n][pl + ll] = '\0';
    env[n] = store[n];
    n++;
  }
  env[n] = NULL;
  gs_config cfg;
  char err[1024];
  int rc = gs__config_parse(env, &cfg, err, sizeof(err));
  if (rc != 0 && (rc != -22 || err[0] == '\0')) abort(); /* errors are -EINVAL with a sentence */
  if (rc == 0 && (cfg.group < 32 || cfg.group % 32 || strlen(cfg.stats_path) >= GS_PATH_MAX)) abort();
  free(copy);
  return 0;
}
