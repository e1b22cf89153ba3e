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

/* One nn.Module path's saved tensors over the run (report_layers.c). */
typedef struct rp_layer {
  uint32_t module;                /* string id; 0: packed outside any nn.Module */
  uint32_t node[3];               /* distinct autograd nodes that unpacked them (string ids) */
  uint32_t file, line, function;  /* the first Python frame seen */
  uint64_t count, bytes, after;   /* packs; bytes at full precision; bytes held */
  uint64_t at_peak;               /* bytes held at the peak's moment */
  uint64_t life_ns, lives;        /* Σ pack → first unpack, and how many were unpacked */
  uint8_t bits_lo, bits_hi;       /* widths used (0: kept at full precision) */
} rp_layer;

/* One row of the what-if table (report_whatif.c). */
typedef struct rp_whatif_row {
  const char *what;               /* e.g. "4 bits, all" */
  uint64_t peak;                  /* predicted peak */
  uint64_t compressed;            /* tensors it would compress */
  unsigned bits;                  /* 0: as recorded */
} rp_whatif_row;

#define RP_WHATIF_ROWS 9

typedef struct rp_whatif {
  bool ok;
  char why[160];                  /* why there is no table (ok false) */
  uint64_t iteration, tensors, candidates, base, measured;
  rp_whatif_row rows[RP_WHATIF_ROWS];
  size_t nrows;
  uint64_t min_budget;            /* the smallest GACTSHIM_BUDGET the budget policy could meet */
} rp_whatif;

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
  /* 2.1: interned strings and attributions (ids index them; entry 0 is none). */
  char **strs;
  size_t nstrs;
  gs_rec_attr *attrs;
  size_t nattrs;
  rp_layer *layers;               /* by bytes at full precision, largest first */
  size_t nlayers;
  uint64_t peak_without;          /* largest `without` on the peak device; 0: not recorded */
  uint64_t step_ns;               /* median iteration duration (0: fewer than 2 iterations) */
  rp_whatif whatif;
} rp_trace;

/* Loads a trace from a buffer (the buffer is not kept). A clean end, a trace cut short (a
 * warning), or -EBADMSG etc. with a sentence in err. */
int rp_load(rp_trace *t, const char *name, const uint8_t *buf, size_t len, char *err, size_t errlen);
int rp_load_file(rp_trace *t, const char *path, char *err, size_t errlen);
void rp_free(rp_trace *t);

/* Fills the analysis fields. */
int rp_analyze(rp_trace *t);

/* report_layers.c: the layer table, the curve without gactshim and the step time. */
int rp_layers(rp_trace *t);
/* String id's text ("" for 0 or unknown). */
const char *rp_str(const rp_trace *t, uint32_t id);
/* "file.py:12 Block.forward" of a layer's frame into buf (the file's last two components). */
const char *rp_frame_text(const rp_trace *t, const rp_layer *l, char *buf, size_t len);
/* A layer's node names, comma-separated, into buf. */
const char *rp_nodes_text(const rp_trace *t, const rp_layer *l, char *buf, size_t len);
/* The module path of a layer ("(outside any nn.Module)" for 0). */
const char *rp_layer_name(const rp_trace *t, const rp_layer *l);
/* The headline: "peak 6.25 MiB (43.1 MiB without gactshim: 6.9x lower) on host (saved tensors)". */
const char *rp_headline(const rp_trace *t, char *buf, size_t len);
/* What the curve counts on the peak device: "saved tensors (host)" or "device memory (cuda:0)". */
const char *rp_memory_label(const rp_trace *t, char *buf, size_t len);

/* report_whatif.c: predicted peaks of the last complete iteration under other settings. */
int rp_whatif_run(rp_trace *t);
/* How the prediction is made, in one paragraph. */
extern const char rp_whatif_method[];

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

/* Outputs. With nb > 0, bs are the traces of a second run (--vs), compared rank by rank. */
void rp_print_text(FILE *out, rp_trace *ts, size_t n);
void rp_print_vs(FILE *out, rp_trace *as, size_t na, rp_trace *bs, size_t nb);
/* report_vs.c: the trace of B that A's i-th trace is compared with (same rank, else same
 * position), or NULL; the layer of t named name, or NULL. */
const rp_trace *rp_vs_partner(const rp_trace *a, size_t i, const rp_trace *bs, size_t nb);
const rp_layer *rp_vs_layer(const rp_trace *t, const char *name);
int rp_write_html(const char *path, rp_trace *ts, size_t n, rp_trace *bs, size_t nb, char *err,
                  size_t errlen);
/* The HTML page's parts: the chart's geometry, its script and style (report_html_js.c) and its
 * tables (report_html_tables.c). */
#define RP_W 1200
#define RP_H 380
#define RP_L 80        /* left margin: y labels */
#define RP_B 30        /* bottom margin: x labels */
extern const char rp_html_js[], rp_html_css[];
void rp_esc(FILE *f, const char *s);
void rp_html_tables(FILE *f, rp_trace *t);
void rp_rank_table(FILE *f, rp_trace *ts, size_t n, rp_trace *bs, size_t nb);
void rp_html_vs_table(FILE *f, rp_trace *as, size_t na, rp_trace *bs, size_t nb);
void rp_html_vs_layers(FILE *f, const rp_trace *a, const rp_trace *b);
int rp_write_perfetto(const char *path, rp_trace *ts, size_t n, char *err, size_t errlen);

#endif
