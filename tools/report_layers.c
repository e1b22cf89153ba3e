/* report_layers.c: saved tensors by nn.Module path, the curve without gactshim, the step time. */
#include "report.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *rp_str(const rp_trace *t, uint32_t id) {
  return id && id < t->nstrs && t->strs[id] ? t->strs[id] : "";
}

const char *rp_layer_name(const rp_trace *t, const rp_layer *l) {
  const char *s = rp_str(t, l->module);
  return *s ? s : "(outside any nn.Module)";
}

const char *rp_frame_text(const rp_trace *t, const rp_layer *l, char *buf, size_t len) {
  const char *file = rp_str(t, l->file), *base = file + strlen(file);
  /* The last two path components: enough to find the file, short enough for a table. */
  for (int slashes = 0; base > file; base--)
    if (base[-1] == '/' && ++slashes == 2) break;
  if (!*file) snprintf(buf, len, "-");
  else snprintf(buf, len, "%s:%u %s", base, l->line, rp_str(t, l->function));
  return buf;
}

const char *rp_nodes_text(const rp_trace *t, const rp_layer *l, char *buf, size_t len) {
  size_t off = 0;
  buf[0] = '\0';
  for (int i = 0; i < 3 && l->node[i] && off < len; i++) {
    int w = snprintf(buf + off, len - off, "%s%s", i ? ", " : "", rp_str(t, l->node[i]));
    if (w < 0) break;
    off += (size_t)w;
  }
  if (!buf[0]) snprintf(buf, len, "-");
  return buf;
}

const char *rp_memory_label(const rp_trace *t, char *buf, size_t len) {
  if (t->peak_dev == GS_DEVICE_HOST) snprintf(buf, len, "saved tensors (host)");
  else snprintf(buf, len, "device memory (cuda:%d)", t->peak_dev);
  return buf;
}

const char *rp_headline(const rp_trace *t, char *buf, size_t len) {
  char b1[32], b2[32], what[48];
  int w = snprintf(buf, len, "peak %s", rp_bytes(t->peak.total, b1, sizeof(b1)));
  if (w < 0 || (size_t)w >= len) return buf;
  if (t->peak_without > t->peak.total)
    w += snprintf(buf + w, len - (size_t)w, " (%s without gactshim: %.1fx lower)",
                  rp_bytes(t->peak_without, b2, sizeof(b2)),
                  (double)t->peak_without / (double)(t->peak.total ? t->peak.total : 1));
  else if (t->peak_without)
    w += snprintf(buf + w, len - (size_t)w, " (the same without gactshim: nothing compressed was live)");
  if ((size_t)w < len)
    snprintf(buf + w, len - (size_t)w, " of %s", rp_memory_label(t, what, sizeof(what)));
  return buf;
}

/* Packs by serial: open addressing, so each unpack and release finds its pack. */
typedef struct rp_pack {
  uint64_t serial, t, held;
  uint32_t layer;
  bool unpacked;
} rp_pack;

typedef struct rp_packs {
  rp_pack *p;
  size_t mask;
} rp_packs;

static rp_pack *rp_pack_slot(rp_packs *m, uint64_t serial) {
  size_t i = (size_t)(serial * 0x9e3779b97f4a7c15ull >> 16) & m->mask;
  while (m->p[i].serial && m->p[i].serial != serial) i = (i + 1) & m->mask;
  return &m->p[i];
}

/* The layer of module id m, created on first sight (by_module: module id -> layer + 1). */
static rp_layer *rp_layer_of(rp_trace *t, uint32_t *by_module, uint32_t m) {
  uint32_t *slot = &by_module[m < t->nstrs ? m : 0];
  if (!*slot) {
    rp_layer *l = &t->layers[t->nlayers++];
    memset(l, 0, sizeof(*l));
    l->module = m < t->nstrs ? m : 0;
    l->bits_lo = 0xff;
    *slot = (uint32_t)t->nlayers;
  }
  return &t->layers[*slot - 1];
}

static const gs_rec_attr *rp_attr(const rp_trace *t, uint32_t id) {
  static const gs_rec_attr none;
  return id && id < t->nattrs ? &t->attrs[id] : &none;
}

static void rp_layer_pack(rp_trace *t, rp_layer *l, const gs_trace_event *e, rp_packs *m) {
  const gs_rec_attr *a = rp_attr(t, e->site);
  l->count++;
  l->bytes += e->a;
  l->after += e->b;
  uint8_t bits = e->kind == GS_SAVED_COMPRESS ? e->cat2 : 0;
  if (bits < l->bits_lo) l->bits_lo = bits;
  if (bits > l->bits_hi) l->bits_hi = bits;
  if (!l->file && a->file) l->file = a->file, l->line = a->line, l->function = a->function;
  if (e->t <= t->peak.t && e->device == t->peak_dev) l->at_peak += e->b;
  if (!e->d) return;
  rp_pack *p = rp_pack_slot(m, e->d);
  *p = (rp_pack){e->d, e->t, e->b, (uint32_t)(l - t->layers), false};
}

/* An unpack (its node names the layer's saving node) or a release (no longer live at the peak). */
static void rp_layer_after(rp_trace *t, const gs_trace_event *e, rp_packs *m) {
  rp_pack *p = e->d ? rp_pack_slot(m, e->d) : NULL;
  if (!p || !p->serial) return;
  rp_layer *l = &t->layers[p->layer];
  if (e->kind == GS_SAVED_RELEASE) {
    if (e->t <= t->peak.t && e->device == t->peak_dev) l->at_peak -= p->held < l->at_peak ? p->held : l->at_peak;
    return;
  }
  if (p->unpacked) return;
  p->unpacked = true;
  l->life_ns += e->t > p->t ? e->t - p->t : 0;
  l->lives++;
  uint32_t node = rp_attr(t, e->site)->node;
  for (int i = 0; node && i < 3; i++) {
    if (l->node[i] == node) break;
    if (!l->node[i]) {
      l->node[i] = node;
      break;
    }
  }
}

static int rp_cmp_layer(const void *a, const void *b) {
  const rp_layer *x = a, *y = b;
  if (x->bytes != y->bytes) return x->bytes < y->bytes ? 1 : -1;
  return x->module < y->module ? -1 : x->module > y->module; /* ties: first seen first */
}

static int rp_cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* The counterfactual peak and the median step. */
static int rp_without_and_step(rp_trace *t) {
  for (size_t i = 0; i < t->nsamples; i++)
    if (t->samples[i].device == t->peak_dev && t->samples[i].without > t->peak_without)
      t->peak_without = t->samples[i].without;
  if (t->niters < 3) return 0;
  size_t n = t->niters - 1; /* the last band runs to the end of the trace, not to a next step */
  uint64_t *d = malloc(n * sizeof(*d));
  if (!d) return -ENOMEM;
  for (size_t i = 0; i < n; i++) d[i] = t->iters[i].t1 - t->iters[i].t0;
  qsort(d, n, sizeof(*d), rp_cmp_u64);
  t->step_ns = d[n / 2];
  free(d);
  return 0;
}

int rp_layers(rp_trace *t) {
  int rc = rp_without_and_step(t);
  size_t packs = 0;
  for (size_t i = 0; i < t->nevents; i++)
    packs += t->events[i].type == GS_REC_SAVED && t->events[i].kind <= GS_SAVED_COMPRESS;
  if (rc != 0 || !packs || !t->nattrs) return rc; /* a 2.0 trace, or attribution off */
  size_t cap = 64;
  while (cap < packs * 2) cap <<= 1;
  rp_packs m = {calloc(cap, sizeof(rp_pack)), cap - 1};
  uint32_t *by_module = calloc(t->nstrs + 1, sizeof(uint32_t));
  t->layers = calloc(t->nstrs + 1, sizeof(rp_layer));
  if (!m.p || !by_module || !t->layers) {
    free(m.p), free(by_module);
    return -ENOMEM;
  }
  for (size_t i = 0; i < t->nevents; i++) {
    const gs_trace_event *e = &t->events[i];
    if (e->type != GS_REC_SAVED) continue;
    if (e->kind <= GS_SAVED_COMPRESS)
      rp_layer_pack(t, rp_layer_of(t, by_module, rp_attr(t, e->site)->module), e, &m);
    else
      rp_layer_after(t, e, &m);
  }
  for (size_t i = 0; i < t->nlayers; i++)
    if (t->layers[i].bits_lo == 0xff) t->layers[i].bits_lo = 0;
  qsort(t->layers, t->nlayers, sizeof(rp_layer), rp_cmp_layer);
  free(m.p);
  free(by_module);
  return 0;
}
