/* report.h: gactshim-report's model of a trace — loaded records and the analysis of the peak. */
#ifndef GS_REPORT_H
#define GS_REPORT_H

#include "format.h"

#include <stdio.h>

typedef struct rp_module {
  gs_rec_module r;
  char *path;
} rp_module;

typedef struct rp_site_bytes {
  uint32_t site;
  uint64_t bytes, count;
} rp_site_bytes;

typedef struct rp_iter {
  uint64_t n, t0, t1, peak;
} rp_iter;

typedef struct rp_comp {          /* one saved-tensor operation (gs_saved_op) */
  uint64_t count, before, after, dur_ns;
} rp_comp;

typedef struct rp_trace {
  char *name;                     /* file name, or "pid N (live)" */
  gs_trace_header hdr;
  gs_rec_sample *samples;         /* sorted by time */
  size_t nsamples;
  gs_trace_event *events;         /* every event record (detail, ITER, OOM, PLAN), by time */
  size_t nevents;
  char **kernel_names;            /* parallel to events: a KERNEL event's name, else NULL */
  uint32_t *site_parent;          /* by site id */
  uint64_t *site_ip;
  size_t nsites;
  rp_module *mods;
  size_t nmods;
  gs_rec_drop drop;
  gs_rec_end end;
  bool has_end;
  char warning[200];              /* e.g. cut short by a crash */
  /* Analysis (report_model.c). */
  int peak_dev;
  gs_rec_sample peak;             /* the largest sample */
  rp_site_bytes *top;             /* live bytes at the peak by call site, largest first */
  size_t ntop;
  uint64_t top_bytes;             /* bytes covered by detail records at the peak */
  rp_comp comp[4];
  rp_iter *iters;
  size_t niters;
  uint64_t ooms, t_last;
} rp_trace;

/* Loads a trace from a buffer (the buffer is not kept). A clean end, a trace cut short (a
 * warning), or -EBADMSG etc. with a sentence in err. */
int rp_load(rp_trace *t, const char *name, const uint8_t *buf, size_t len, char *err, size_t errlen);
int rp_load_file(rp_trace *t, const char *path, char *err, size_t errlen);
void rp_free(rp_trace *t);

/* Fills the analysis fields. */
int rp_analyze(rp_trace *t);

/* Seconds since the trace's start. */
double rp_sec(const rp_trace *t, uint64_t ns);

/* Category and kind names ("other", "activation", "compressed"; "device", ...). */
const char *rp_cat_name(unsigned cat);
const char *rp_kind_name(unsigned kind);

/* "1.50 GiB" into buf. */
const char *rp_bytes(uint64_t n, char *buf, size_t len);

/* Samples of one device reduced to at most max points, keeping each bucket's maximum.
 * Returns a malloc'd array and its length in *n. */
gs_rec_sample *rp_downsample(const rp_trace *t, int device, size_t max, size_t *n);

/* The timeline as nb equal time buckets from t0 to t1, each holding the largest sample that fell
 * in it (or the value live when it began): a chart drawn from it never hides a peak. */
gs_rec_sample *rp_buckets(const rp_trace *t, int device, size_t nb, uint64_t t0, uint64_t t1);

/* A call site's description ("leaf ← caller ← caller"), symbolized from the recorded modules. */
void rp_site_text(rp_trace *t, uint32_t site, char *buf, size_t len);

/* Symbolization (symbolize.c): the function containing ip in the recorded module, or NULL. */
const char *rp_symbolize(const rp_trace *t, uint64_t ip, const char **module, uint64_t *offset);
void rp_symbolize_cleanup(void);
/* sym demangled and without its parameter list when it is a C++ name (into buf), else sym. */
const char *rp_pretty(const char *sym, char *buf, size_t len);

/* Outputs. */
void rp_print_text(FILE *out, rp_trace *ts, size_t n);
int rp_write_html(const char *path, rp_trace *ts, size_t n, char *err, size_t errlen);
int rp_write_perfetto(const char *path, rp_trace *ts, size_t n, char *err, size_t errlen);

#endif
