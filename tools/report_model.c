/* report_model.c: the analysis — peak, what was live at the peak, call sites, compression. */
#include "report.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const rp_cats[GS_CAT__COUNT] = {"other", "activation", "compressed"};
static const char *const rp_kinds[GS_KIND__COUNT] = {"device", "async-pool", "vmm", "managed",
                                                     "host-pinned", "saved"};

const char *rp_cat_name(unsigned cat) { return cat < GS_CAT__COUNT ? rp_cats[cat] : "?"; }
const char *rp_kind_name(unsigned kind) { return kind < GS_KIND__COUNT ? rp_kinds[kind] : "?"; }

const char *rp_bytes(uint64_t n, char *buf, size_t len) {
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = (double)n;
  unsigned u = 0;
  while (v >= 1024 && u < 4) v /= 1024, u++;
  if (u == 0) snprintf(buf, len, "%llu B", (unsigned long long)n);
  else snprintf(buf, len, "%.2f %s", v, units[u]);
  return buf;
}

double rp_sec(const rp_trace *t, uint64_t ns) {
  return ns > t->hdr.t0_mono_ns ? (double)(ns - t->hdr.t0_mono_ns) / 1e9 : 0.0;
}

/* The peak: the largest sample over all devices (samples hold each window's maximum). */
static void rp_find_peak(rp_trace *t) {
  t->peak_dev = -1;
  for (size_t i = 0; i < t->nsamples; i++) {
    const gs_rec_sample *s = &t->samples[i];
    if (t->peak_dev < 0 || s->total >= t->peak.total) { /* ties: the latest, best categorized */
      t->peak = *s;
      t->peak_dev = s->device;
    }
    if (s->t > t->t_last) t->t_last = s->t;
  }
}

/* Live detail allocations: open addressing from key to event index. */
typedef struct rp_live {
  uint64_t *keys;
  size_t *idx;
  size_t mask, n;
} rp_live;

static size_t rp_slot(const rp_live *l, uint64_t key) {
  size_t i = (size_t)((key * 0x9e3779b97f4a7c15ull) >> 20) & l->mask;
  while (l->keys[i] && l->keys[i] != key) i = (i + 1) & l->mask;
  return i;
}

/* Tombstone-free delete: re-insert the rest of the cluster. */
static void rp_live_del(rp_live *l, uint64_t key) {
  size_t i = rp_slot(l, key);
  if (!l->keys[i]) return;
  l->keys[i] = 0;
  l->n--;
  for (size_t j = (i + 1) & l->mask; l->keys[j]; j = (j + 1) & l->mask) {
    uint64_t k = l->keys[j];
    size_t v = l->idx[j];
    l->keys[j] = 0;
    size_t s = rp_slot(l, k);
    l->keys[s] = k;
    l->idx[s] = v;
  }
}

static int rp_cmp_top(const void *a, const void *b) {
  const rp_site_bytes *x = a, *y = b;
  return x->bytes < y->bytes ? 1 : x->bytes > y->bytes ? -1 : 0;
}

/* Replays detail allocations of the peak device up to the peak and sums what is live by site. */
static int rp_sites_at_peak(rp_trace *t) {
  size_t cap = 1024;
  while (cap < t->nevents * 2) cap <<= 1;
  rp_live l = {calloc(cap, sizeof(uint64_t)), calloc(cap, sizeof(size_t)), cap - 1, 0};
  if (!l.keys || !l.idx) {
    free(l.keys), free(l.idx);
    return -ENOMEM;
  }
  for (size_t i = 0; i < t->nevents && t->events[i].t <= t->peak.t; i++) {
    const gs_trace_event *e = &t->events[i];
    if (e->device != t->peak_dev || e->a == 0) continue;
    /* Saved tensors are named by layer (report_layers.c) when the trace attributes them: the
     * call-site tree is for the allocations outside autograd. */
    if (e->kind == GS_KIND_SAVED && t->nattrs) continue;
    if (e->type == GS_REC_ALLOC) {
      size_t s = rp_slot(&l, e->a);
      if (!l.keys[s]) l.n++;
      l.keys[s] = e->a;
      l.idx[s] = i;
    } else if (e->type == GS_REC_FREE) {
      rp_live_del(&l, e->a);
    }
  }
  t->top = calloc(t->nsites + 1, sizeof(rp_site_bytes));
  if (!t->top) {
    free(l.keys), free(l.idx);
    return -ENOMEM;
  }
  for (size_t i = 0; i <= t->nsites; i++) t->top[i].site = (uint32_t)i;
  for (size_t s = 0; s < cap; s++) {
    if (!l.keys[s]) continue;
    const gs_trace_event *e = &t->events[l.idx[s]];
    uint32_t site = e->site < t->nsites ? e->site : 0;
    t->top[site].bytes += e->b;
    t->top[site].count++;
    t->top_bytes += e->b;
  }
  free(l.keys);
  free(l.idx);
  qsort(t->top, t->nsites + 1, sizeof(rp_site_bytes), rp_cmp_top);
  t->ntop = 0;
  while (t->ntop <= t->nsites && t->top[t->ntop].bytes) t->ntop++;
  return 0;
}

/* Per-iteration peaks on the peak device, from the ITER boundaries. */
static int rp_iterations(rp_trace *t) {
  size_t n = 0;
  /* OOMs are counted here, before the return for a job without iterations (a program outside
   * PyTorch, or one that fails before its first backward): those need the count most. */
  for (size_t i = 0; i < t->nevents; i++) {
    n += t->events[i].type == GS_REC_ITER;
    t->ooms += t->events[i].type == GS_REC_OOM;
  }
  if (!n) return 0;
  t->iters = calloc(n, sizeof(rp_iter));
  if (!t->iters) return -ENOMEM;
  for (size_t i = 0; i < t->nevents; i++) {
    const gs_trace_event *e = &t->events[i];
    if (e->type != GS_REC_ITER) continue;
    if (t->niters) t->iters[t->niters - 1].t1 = e->t;
    t->iters[t->niters++] = (rp_iter){e->a, e->t, t->t_last > e->t ? t->t_last : e->t, 0};
  }
  size_t k = 0;
  for (size_t i = 0; i < t->nsamples; i++) {
    const gs_rec_sample *s = &t->samples[i];
    if (s->device != t->peak_dev) continue;
    while (k + 1 < t->niters && s->t >= t->iters[k].t1) k++;
    /* A window closes at each boundary, so a sample belongs to the iteration it ends in. */
    if (s->t >= t->iters[k].t0 && s->total > t->iters[k].peak) t->iters[k].peak = s->total;
  }
  return 0;
}

static void rp_compression(rp_trace *t) {
  for (size_t i = 0; i < t->nevents; i++) {
    const gs_trace_event *e = &t->events[i];
    if (e->type == GS_REC_OOM) continue;
    if (e->type != GS_REC_SAVED || e->kind > GS_SAVED_DECOMPRESS) continue;
    rp_comp *c = &t->comp[e->kind];
    c->count++;
    c->before += e->a;
    c->after += e->b;
    c->dur_ns += e->c;
  }
}

int rp_analyze(rp_trace *t) {
  rp_find_peak(t);
  rp_compression(t);
  int rc = t->peak_dev >= 0 ? rp_sites_at_peak(t) : 0;
  if (rc == 0) rc = rp_iterations(t);
  if (rc == 0) rc = rp_layers(t);
  if (rc == 0) rc = rp_whatif_run(t);
  return rc;
}

gs_rec_sample *rp_downsample(const rp_trace *t, int device, size_t max, size_t *n) {
  uint64_t t0 = UINT64_MAX, t1 = 0;
  size_t count = 0;
  for (size_t i = 0; i < t->nsamples; i++) {
    const gs_rec_sample *s = &t->samples[i];
    if (s->device != device) continue;
    if (s->t < t0) t0 = s->t;
    if (s->t > t1) t1 = s->t;
    count++;
  }
  gs_rec_sample *out = calloc(max ? max : 1, sizeof(*out));
  *n = 0;
  if (!out || !count) return out;
  uint64_t span = t1 > t0 ? t1 - t0 : 1;
  long last = -1;
  for (size_t i = 0; i < t->nsamples; i++) {
    const gs_rec_sample *s = &t->samples[i];
    if (s->device != device) continue;
    long b = count <= max ? (long)*n : (long)((double)(s->t - t0) / (double)span * (double)(max - 1));
    if (b != last) {
      out[(*n)++] = *s;
      last = b;
    } else if (s->total > out[*n - 1].total) {
      out[*n - 1] = *s; /* the bucket keeps its maximum: the peak always survives */
    }
  }
  return out;
}

void rp_site_text(rp_trace *t, uint32_t site, char *buf, size_t len) {
  size_t off = 0;
  int shown = 0;
  buf[0] = '\0';
  for (uint32_t s = site; s && s < t->nsites && shown < 6 && off + 8 < len; s = t->site_parent[s]) {
    const char *mod = NULL;
    uint64_t rel;
    const char *fn = rp_symbolize(t, t->site_ip[s], &mod, &rel);
    /* The shim's own frames say nothing about who allocated. */
    if ((mod && strstr(mod, "libgactshim")) || (fn && strncmp(fn, "gs__", 4) == 0)) continue;
    char tmp[96], pretty[160];
    if (fn) fn = rp_pretty(fn, pretty, sizeof(pretty));
    if (!fn) {
      const char *base = mod ? strrchr(mod, '/') : NULL;
      snprintf(tmp, sizeof(tmp), "%s+0x%llx", base ? base + 1 : mod ? mod : "?", (unsigned long long)rel);
      fn = tmp;
    }
    int w = snprintf(buf + off, len - off, "%s%s", shown ? " <- " : "", fn);
    if (w < 0) break;
    off += (size_t)w < len - off ? (size_t)w : len - off - 1;
    shown++;
  }
  if (!shown) snprintf(buf, len, site ? "(unsymbolized)" : "(no call site recorded)");
}

gs_rec_sample *rp_buckets(const rp_trace *t, int device, size_t nb, uint64_t t0, uint64_t t1) {
  gs_rec_sample *out = calloc(nb ? nb : 1, sizeof(*out));
  if (!out) return NULL;
  gs_rec_sample carry = {.device = (int16_t)device};
  size_t j = 0;
  uint64_t span = t1 > t0 ? t1 - t0 : 1;
  for (size_t b = 0; b < nb; b++) {
    uint64_t start = t0 + (uint64_t)((double)span * (double)b / (double)nb);
    uint64_t end = t0 + (uint64_t)((double)span * (double)(b + 1) / (double)nb);
    gs_rec_sample best = carry; /* what was live when the bucket began */
    for (; j < t->nsamples && (t->samples[j].t < end || b + 1 == nb); j++) {
      const gs_rec_sample *s = &t->samples[j];
      if (s->device != device) continue;
      if (s->total > best.total) best = *s;
      carry = *s;
    }
    best.t = start;
    out[b] = best;
  }
  return out;
}
