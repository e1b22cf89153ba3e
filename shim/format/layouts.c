/* layouts.c: each trace payload's on-disk layout — explicit little-endian encoders and decoders. */
#include "format.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The offsets below are the tables of docs/trace-format.md; tests/format checks them against
 * bytes written by hand, so a change here that the document does not make fails. */

void gs__tracefmt_header(gs_trace_header *h, uint64_t max_bytes, uint32_t flags) {
  struct timespec rt;
  memset(h, 0, sizeof(*h));
  h->version = GS_TRACE_VERSION;
  h->minor = GS_TRACE_MINOR;
  h->header_bytes = GS_TRACE_HDR_BYTES;
  h->flags = flags;
  h->pid = (uint64_t)getpid();
  h->t0_mono_ns = gs__now_ns();
  clock_gettime(CLOCK_REALTIME, &rt);
  h->t0_real_ns = (uint64_t)rt.tv_sec * 1000000000u + (uint64_t)rt.tv_nsec;
  const char *rank = gs__rank_env();
  h->rank = rank ? atoi(rank) : -1;
  h->max_bytes = max_bytes;
}

void gs__tracefmt_put_header(uint8_t out[GS_TRACE_HDR_BYTES], const gs_trace_header *h) {
  memset(out, 0, GS_TRACE_HDR_BYTES); /* reserved fields: 14..15, 56..63 */
  memcpy(out, GS_TRACE_MAGIC, 8);
  gs__le_put(out, 8, 2, h->version);
  gs__le_put(out, 10, 2, h->minor);
  gs__le_put(out, 12, 2, GS_TRACE_HDR_BYTES); /* what we write, whatever h says */
  gs__le_put(out, 16, 4, h->flags);
  gs__le_put(out, 20, 4, (uint32_t)h->rank);
  gs__le_put(out, 24, 8, h->pid);
  gs__le_put(out, 32, 8, h->t0_mono_ns);
  gs__le_put(out, 40, 8, h->t0_real_ns);
  gs__le_put(out, 48, 8, h->max_bytes);
}

/* ---- events: ALLOC, FREE, RECAT, SAVED, ITER, OOM, KERNEL, PLAN ---- */

size_t gs__tracefmt_put_event(uint8_t *dst, size_t cap, const gs_trace_event *ev, const char *name,
                              size_t name_n) {
  uint8_t p[GS_FMT_EVENT_BYTES];
  gs__le_put(p, 0, 8, ev->t);
  p[8] = 0; /* reserved: the record header holds the type */
  p[9] = ev->kind;
  p[10] = ev->cat;
  p[11] = ev->cat2;
  gs__le_put(p, 12, 2, (uint16_t)ev->device);
  gs__le_put(p, 14, 2, ev->flags);
  gs__le_put(p, 16, 4, ev->site);
  gs__le_put(p, 20, 4, ev->tid);
  gs__le_put(p, 24, 8, ev->a);
  gs__le_put(p, 32, 8, ev->b);
  gs__le_put(p, 40, 8, ev->c);
  gs__le_put(p, 48, 8, ev->d);
  return gs__tracefmt_frame(dst, cap, ev->type, p, sizeof(p), name, name ? name_n : 0);
}

int gs__tracefmt_get_event(const gs_rec *r, gs_trace_event *ev, const uint8_t **tail,
                           size_t *tail_n) {
  const uint8_t *p = r->payload;
  size_t n = r->len;
  if (!gs__tracefmt_is_event(r->type) || n < GS_FMT_EVENT_BYTES) return -EBADMSG;
  *ev = (gs_trace_event){
      .t = gs__le_get(p, n, 0, 8), .type = (uint8_t)r->type,
      .kind = (uint8_t)gs__le_get(p, n, 9, 1), .cat = (uint8_t)gs__le_get(p, n, 10, 1),
      .cat2 = (uint8_t)gs__le_get(p, n, 11, 1),
      .device = (int16_t)(uint16_t)gs__le_get(p, n, 12, 2),
      .flags = (uint16_t)gs__le_get(p, n, 14, 2), .site = (uint32_t)gs__le_get(p, n, 16, 4),
      .tid = (uint32_t)gs__le_get(p, n, 20, 4), .a = gs__le_get(p, n, 24, 8),
      .b = gs__le_get(p, n, 32, 8), .c = gs__le_get(p, n, 40, 8), .d = gs__le_get(p, n, 48, 8)};
  /* KERNEL: the name; other types: fields of a later minor, which this reader does not know. */
  if (tail) *tail = p + GS_FMT_EVENT_BYTES;
  if (tail_n) *tail_n = n - GS_FMT_EVENT_BYTES;
  return 0;
}

/* ---- MODULE and SITE: the call-site tree and the objects that symbolize it ---- */

size_t gs__tracefmt_put_module(uint8_t *dst, size_t cap, const gs_rec_module *m, const char *path,
                               size_t path_n) {
  uint8_t p[GS_FMT_MODULE_BYTES];
  gs__le_put(p, 0, 8, m->bias);
  gs__le_put(p, 8, 8, m->lo);
  gs__le_put(p, 16, 8, m->hi);
  return gs__tracefmt_frame(dst, cap, GS_REC_MODULE, p, sizeof(p), path, path ? path_n : 0);
}

int gs__tracefmt_get_module(const gs_rec *r, gs_rec_module *m, const uint8_t **path,
                            size_t *path_n) {
  const uint8_t *p = r->payload;
  if (r->type != GS_REC_MODULE || r->len < GS_FMT_MODULE_BYTES) return -EBADMSG;
  m->bias = gs__le_get(p, r->len, 0, 8);
  m->lo = gs__le_get(p, r->len, 8, 8);
  m->hi = gs__le_get(p, r->len, 16, 8);
  *path = p + GS_FMT_MODULE_BYTES;
  *path_n = r->len - GS_FMT_MODULE_BYTES;
  return 0;
}

size_t gs__tracefmt_put_site(uint8_t *dst, size_t cap, const gs_rec_site *s) {
  uint8_t p[GS_FMT_SITE_BYTES];
  gs__le_put(p, 0, 4, s->id);
  gs__le_put(p, 4, 4, s->parent);
  gs__le_put(p, 8, 8, s->ip);
  return gs__tracefmt_frame(dst, cap, GS_REC_SITE, p, sizeof(p), NULL, 0);
}

int gs__tracefmt_get_site(const gs_rec *r, gs_rec_site *s) {
  if (r->type != GS_REC_SITE || r->len < GS_FMT_SITE_BYTES) return -EBADMSG;
  s->id = (uint32_t)gs__le_get(r->payload, r->len, 0, 4);
  s->parent = (uint32_t)gs__le_get(r->payload, r->len, 4, 4);
  s->ip = gs__le_get(r->payload, r->len, 8, 8);
  return 0;
}

/* ---- SAMPLE: fixed slot counts, whatever base's enums hold today ---- */

#define GS_SAMPLE_CAT_OFF 24
#define GS_SAMPLE_KIND_OFF (GS_SAMPLE_CAT_OFF + 8 * GS_FMT_SAMPLE_CATS)
_Static_assert(GS_SAMPLE_KIND_OFF + 8 * GS_FMT_SAMPLE_KINDS == GS_FMT_SAMPLE_BYTES, "sample size");
#define GS_SAMPLE_WITHOUT_OFF GS_FMT_SAMPLE_BYTES /* 2.1 */

size_t gs__tracefmt_put_sample(uint8_t *dst, size_t cap, const gs_rec_sample *s) {
  uint8_t p[GS_FMT_SAMPLE_BYTES_2_1];
  gs__le_put(p, 0, 8, s->t);
  gs__le_put(p, 8, 2, (uint16_t)s->device);
  gs__le_put(p, 10, 6, 0); /* reserved */
  gs__le_put(p, 16, 8, s->total);
  for (unsigned i = 0; i < GS_FMT_SAMPLE_CATS; i++)
    gs__le_put(p, GS_SAMPLE_CAT_OFF + 8 * i, 8, s->by_cat[i]);
  for (unsigned i = 0; i < GS_FMT_SAMPLE_KINDS; i++)
    gs__le_put(p, GS_SAMPLE_KIND_OFF + 8 * i, 8, s->by_kind[i]);
  gs__le_put(p, GS_SAMPLE_WITHOUT_OFF, 8, s->without);
  return gs__tracefmt_frame(dst, cap, GS_REC_SAMPLE, p, sizeof(p), NULL, 0);
}

int gs__tracefmt_get_sample(const gs_rec *r, gs_rec_sample *s) {
  const uint8_t *p = r->payload;
  size_t n = r->len;
  if (r->type != GS_REC_SAMPLE || n < GS_FMT_SAMPLE_BYTES) return -EBADMSG;
  memset(s, 0, sizeof(*s));
  s->t = gs__le_get(p, n, 0, 8);
  s->device = (int16_t)(uint16_t)gs__le_get(p, n, 8, 2);
  s->total = gs__le_get(p, n, 16, 8);
  for (unsigned i = 0; i < GS_FMT_SAMPLE_CATS; i++)
    s->by_cat[i] = gs__le_get(p, n, GS_SAMPLE_CAT_OFF + 8 * i, 8);
  for (unsigned i = 0; i < GS_FMT_SAMPLE_KINDS; i++)
    s->by_kind[i] = gs__le_get(p, n, GS_SAMPLE_KIND_OFF + 8 * i, 8);
  s->without = gs__le_get(p, n, GS_SAMPLE_WITHOUT_OFF, 8); /* 0 in a 2.0 record */
  return 0;
}

/* ---- DROP and END: runs of u64 ---- */

/* Encodes n u64 fields in order as one record. */
static size_t gs__put_u64s(uint8_t *dst, size_t cap, unsigned type, const uint64_t *v, size_t n) {
  uint8_t p[8 * 8];
  for (size_t i = 0; i < n; i++) gs__le_put(p, 8 * i, 8, v[i]);
  return gs__tracefmt_frame(dst, cap, type, p, 8 * n, NULL, 0);
}

static void gs__get_u64s(const gs_rec *r, uint64_t *v, size_t n) {
  for (size_t i = 0; i < n; i++) v[i] = gs__le_get(r->payload, r->len, 8 * i, 8);
}

size_t gs__tracefmt_put_drop(uint8_t *dst, size_t cap, const gs_rec_drop *d) {
  const uint64_t v[6] = {d->t, d->ring_dropped, d->detail_dropped, d->detail_from,
                         d->sites_dropped, d->samples_merged};
  return gs__put_u64s(dst, cap, GS_REC_DROP, v, 6);
}

int gs__tracefmt_get_drop(const gs_rec *r, gs_rec_drop *d) {
  uint64_t v[6];
  if (r->type != GS_REC_DROP || r->len < GS_FMT_DROP_BYTES) return -EBADMSG;
  gs__get_u64s(r, v, 6);
  *d = (gs_rec_drop){v[0], v[1], v[2], v[3], v[4], v[5]};
  return 0;
}

size_t gs__tracefmt_put_end(uint8_t *dst, size_t cap, const gs_rec_end *e) {
  const uint64_t v[4] = {e->t, e->registry_peak, e->events, e->flags};
  return gs__put_u64s(dst, cap, GS_REC_END, v, 4);
}

int gs__tracefmt_get_end(const gs_rec *r, gs_rec_end *e) {
  uint64_t v[4];
  if (r->type != GS_REC_END || r->len < GS_FMT_END_BYTES) return -EBADMSG;
  gs__get_u64s(r, v, 4);
  *e = (gs_rec_end){v[0], v[1], v[2], v[3]};
  return 0;
}

/* ---- STRING and ATTR (2.1): interned strings and the saved tensors' attributions ---- */

size_t gs__tracefmt_put_string(uint8_t *dst, size_t cap, uint64_t t, uint32_t id, const char *s,
                               size_t n) {
  uint8_t p[GS_FMT_STRING_BYTES];
  gs__le_put(p, 0, 8, t);
  gs__le_put(p, 8, 4, id);
  gs__le_put(p, 12, 4, 0); /* reserved */
  return gs__tracefmt_frame(dst, cap, GS_REC_STRING, p, sizeof(p), s, s ? n : 0);
}

int gs__tracefmt_get_string(const gs_rec *r, uint32_t *id, const uint8_t **s, size_t *n) {
  if (r->type != GS_REC_STRING || r->len < GS_FMT_STRING_BYTES) return -EBADMSG;
  *id = (uint32_t)gs__le_get(r->payload, r->len, 8, 4);
  *s = r->payload + GS_FMT_STRING_BYTES;
  *n = r->len - GS_FMT_STRING_BYTES;
  return 0;
}

size_t gs__tracefmt_put_attr(uint8_t *dst, size_t cap, const gs_rec_attr *a) {
  uint8_t p[GS_FMT_ATTR_BYTES];
  const uint32_t v[6] = {a->id, a->module, a->node, a->file, a->line, a->function};
  gs__le_put(p, 0, 8, a->t);
  for (unsigned i = 0; i < 6; i++) gs__le_put(p, 8 + 4 * i, 4, v[i]);
  return gs__tracefmt_frame(dst, cap, GS_REC_ATTR, p, sizeof(p), NULL, 0);
}

int gs__tracefmt_get_attr(const gs_rec *r, gs_rec_attr *a) {
  uint32_t v[6];
  if (r->type != GS_REC_ATTR || r->len < GS_FMT_ATTR_BYTES) return -EBADMSG;
  for (unsigned i = 0; i < 6; i++) v[i] = (uint32_t)gs__le_get(r->payload, r->len, 8 + 4 * i, 4);
  *a = (gs_rec_attr){gs__le_get(r->payload, r->len, 0, 8), v[0], v[1], v[2], v[3], v[4], v[5]};
  return 0;
}
