/* init.c: the constructor (configuration, hooks), the exit report, and fork handling. */
#include "init.h"

#include "config.h"
#include "fault.h"
#include "interpose.h"
#include "log.h"
#include "python.h"
#include "registry.h"
#include "stats.h"
#include "tracewire.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

/* Set once at the end of the constructor; read by every hook to decide whether to act. */
static bool gs__is_active;

bool gs__active(void) { return __atomic_load_n(&gs__is_active, __ATOMIC_ACQUIRE); }

/* Whether this process is the one the constructor ran in, not a forked child. A forked child
 * writes its own stats only when the path names it (%p), so it cannot clobber its parent's file. */
static pid_t gs__owner_pid;

static void gs__atfork_child(void) {
  gs__interpose_atfork_child();
  gs__registry_reset();
  gs__tracewire_atfork_child();
}

/* Expands %p (pid) and %r (RANK, else LOCAL_RANK, else 0) in a path template. */
int gs__expand_path(const char *tmpl, char *out, size_t len) {
  size_t o = 0;
  for (const char *p = tmpl; *p; p++) {
    char piece[32];
    const char *add = piece;
    if (p[0] == '%' && p[1] == 'p') {
      snprintf(piece, sizeof(piece), "%ld", (long)getpid());
      p++;
    } else if (p[0] == '%' && p[1] == 'r') {
      const char *r = getenv("RANK");
      if (!r || !*r) r = getenv("LOCAL_RANK");
      add = (r && *r) ? r : "0";
      p++;
    } else {
      piece[0] = *p;
      piece[1] = '\0';
    }
    size_t n = strlen(add);
    if (o + n + 1 > len) return -1;
    memcpy(out + o, add, n);
    o += n;
  }
  out[o] = '\0';
  return 0;
}

static void gs__report_at_exit(void) {
  if (!gs__active()) return;
  bool used = __atomic_load_n(&gs__stats.allocs, __ATOMIC_RELAXED) ||
              __atomic_load_n(&gs__stats.packed, __ATOMIC_RELAXED);
  /* Only a process that used the shim writes stats: a launcher (torchrun's agent), a DataLoader
   * worker or a helper the job execs would otherwise write zeros over a rank's file (%r is 0 where
   * RANK is unset) or litter per-%p files. */
  if (used && gs__cfg.stats_path[0] && (getpid() == gs__owner_pid || strstr(gs__cfg.stats_path, "%p"))) {
    char path[GS_PATH_MAX];
    int rc = gs__expand_path(gs__cfg.stats_path, path, sizeof(path));
    if (rc == 0) rc = gs__stats_write_json(path);
    if (rc != 0) gs__log(GS_LOG_ERROR, "could not write GACTSHIM_STATS=%s: %s", gs__cfg.stats_path, strerror(-rc));
  }
  if (used && !gs__cfg.quiet) {
    char line[256];
    if (gs__stats_summary(line, sizeof(line)) == 0) gs__log(GS_LOG_ERROR, "%s", line);
  }
}

__attribute__((constructor)) static void gs__init(void) {
  gs__interpose_init();
  char err[1024];
  if (gs__config_parse(environ, &gs__cfg, err, sizeof(err)) != 0 ||
      gs__fault_parse(environ, err, sizeof(err)) != 0) {
    /* The one place the shim ends the process: a bad variable must stop the job before it runs,
     * with one line saying what was wrong and what is accepted. */
    fprintf(stderr, "%s\n", err);
    _exit(2);
  }
  if (gs__cfg.disable) return;
  gs__owner_pid = getpid();
  pthread_atfork(NULL, NULL, gs__atfork_child);
  gs__python_preinit();
  gs__tracewire_init();
  __atomic_store_n(&gs__is_active, true, __ATOMIC_RELEASE);
}

/* Set by the first of the destructor and the SIGTERM handler: the exit report is written once. */
static int gs__flushed;

void gs__exit_flush(void) {
  if (__atomic_exchange_n(&gs__flushed, 1, __ATOMIC_ACQ_REL)) return;
  if (gs__active()) gs__tracewire_fini();
  gs__report_at_exit();
}

__attribute__((destructor)) static void gs__fini(void) { gs__exit_flush(); }
