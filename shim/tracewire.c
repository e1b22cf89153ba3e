/* tracewire.c: the recorder's configuration from GACTSHIM_* and its registry callbacks. */
#include "tracewire.h"

#include "config.h"
#include "init.h"
#include "log.h"
#include "registry.h"
#include "stats.h"
#include "trace.h"

#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#include <string.h>

/* The registry keeps live bytes by category, not by kind: after ring drops the by-kind split
 * keeps the writer's own figures and only the category totals are corrected. */
static int gs__registry_totals(int device, uint64_t by_cat[GS_CAT__COUNT], uint64_t by_kind[GS_KIND__COUNT]) {
  for (unsigned c = 0; c < GS_CAT__COUNT; c++) by_cat[c] = gs__registry_live_bytes_cat(device, (gs_category)c);
  return 0;
}

void gs__tracewire_init(void) {
  gs_trace_options o;
  gs__trace_defaults(&o);
  o.max_bytes = gs__cfg.trace_max;
  o.cupti = gs__cfg.cupti;
  o.totals = gs__registry_totals;
  o.registry_peak = gs__registry_peak_any;
  o.expand = gs__expand_path;
  o.on_start = gs__exit_paths_arm;
  if (gs__cfg.trace_path[0]) {
    snprintf(o.path_template, sizeof(o.path_template), "%s", gs__cfg.trace_path);
    if (gs__expand_path(gs__cfg.trace_path, o.path, sizeof(o.path)) != 0) {
      gs__log(GS_LOG_ERROR, "GACTSHIM_TRACE=%s is too long once expanded; no trace", gs__cfg.trace_path);
      o.path[0] = '\0';
    }
  }
  /* Unwinding costs a microsecond or two per allocation: only for a trace file, not for the
   * in-memory window every process keeps for attach. */
  o.callsites = o.path[0] != '\0';
  int rc = gs__trace_configure(&o);
  if (rc != 0) {
    gs__stat_fail(GS_FAIL_TRACE);
    gs__log(GS_LOG_ERROR, "cannot record the trace %s: %s", o.path[0] ? o.path : "(memory)", strerror(-rc));
  }
}

void gs__tracewire_fini(void) {
  int rc = gs__trace_stop();
  if (rc == -EBUSY)
    gs__log(GS_LOG_WARN, "GACTSHIM_TRACE=%s was being written by another process, so this one (pid %ld) "
            "wrote no trace; put %%p or %%r in the path for one file per process", gs__cfg.trace_path, (long)getpid());
  else if (rc != 0) {
    /* The stats JSON is written after this, so it counts the failure. */
    gs__stat_fail(GS_FAIL_TRACE);
    gs__log(GS_LOG_ERROR, "could not write the trace GACTSHIM_TRACE=%s: %s", gs__cfg.trace_path, strerror(-rc));
  }
}

void gs__tracewire_atfork_child(void) { gs__trace_atfork_child(); }
