/* python.c: puts the shim's Python bootstrap on PYTHONPATH in Python processes (no Python call). */
#include "engine.h"

#include <dlfcn.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The bootstrap directory sits beside the library, in the build tree and once installed. */
#define GS__BOOTSTRAP_DIR "gactshim-python"

static bool gs__is_python_process(void) {
  /* The interpreter exports its C API; any other program does not. A lookup, not a call. */
  return dlsym(RTLD_DEFAULT, "Py_BytesMain") != NULL || dlsym(RTLD_DEFAULT, "Py_Main") != NULL;
}

static int gs__bootstrap_dir(char *out, size_t len) {
  Dl_info info;
  if (dladdr((void *)gs__bootstrap_dir, &info) == 0 || info.dli_fname == NULL) return -1;
  char lib[PATH_MAX];
  if (snprintf(lib, sizeof(lib), "%s", info.dli_fname) >= (int)sizeof(lib)) return -1;
  if (snprintf(out, len, "%s/" GS__BOOTSTRAP_DIR, dirname(lib)) >= (int)len) return -1;
  return access(out, R_OK | X_OK) == 0 ? 0 : -1;
}

void gs__python_preinit(void) {
  if (!gs__is_python_process()) return;
  char dir[PATH_MAX];
  if (gs__bootstrap_dir(dir, sizeof(dir)) != 0) {
    gs__log(GS_LOG_WARN, "Python bootstrap directory not found beside the library; torch hooks stay off");
    return;
  }
  const char *old = getenv("PYTHONPATH");
  size_t need = strlen(dir) + (old ? strlen(old) + 2 : 1);
  char *val = malloc(need);
  if (val == NULL) return;
  if (old && *old) snprintf(val, need, "%s:%s", dir, old);
  else snprintf(val, need, "%s", dir);
  /* The bootstrap takes its directory off PYTHONPATH again, so the script sees what it was given. */
  setenv("PYTHONPATH", val, 1);
  free(val);
}
