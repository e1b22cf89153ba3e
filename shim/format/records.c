/* records.c: record framing and the trace reader; the reader never trusts the bytes it is given. */
#include "format.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* FNV-1a: cheap, and enough to tell a torn or overwritten record from a good one. */
static uint32_t gs__fnv(uint32_t h, const void *p, size_t n) {
  const uint8_t *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 16777619u;
  return h;
}

/* The check covers the record's type and length (as stored) and its payload. */
static uint32_t gs__rec_check(uint16_t type, uint16_t len, const void *p1, size_t n1,
                              const void *p2, size_t n2) {
  uint8_t tl[4];
  gs__le_put(tl, 0, 2, type);
  gs__le_put(tl, 2, 2, len);
  uint32_t h = gs__fnv(2166136261u, tl, sizeof(tl));
  h = gs__fnv(h, p1, n1);
  return gs__fnv(h, p2, n2);
}

size_t gs__tracefmt_frame(uint8_t *dst, size_t cap, unsigned type, const void *payload, size_t n,
                          const void *tail, size_t tail_n) {
  size_t total = GS_REC_HDR_BYTES + n + tail_n;
  if (total > cap || total > 0xffff || type > 0xffff) return 0;
  uint32_t check = gs__rec_check((uint16_t)type, (uint16_t)total, payload, n, tail, tail_n);
  gs__le_put(dst, 0, 2, type);
  gs__le_put(dst, 2, 2, total);
  gs__le_put(dst, 4, 4, check);
  if (n) memcpy(dst + GS_REC_HDR_BYTES, payload, n);
  if (tail_n) memcpy(dst + GS_REC_HDR_BYTES + n, tail, tail_n);
  return total;
}

bool gs__tracefmt_is_detail(unsigned type) {
  return type == GS_REC_ALLOC || type == GS_REC_FREE || type == GS_REC_RECAT ||
         type == GS_REC_SAVED || type == GS_REC_KERNEL;
}

bool gs__tracefmt_is_event(unsigned type) {
  return gs__tracefmt_is_detail(type) || type == GS_REC_ITER || type == GS_REC_OOM ||
         type == GS_REC_PLAN;
}

/* The least payload a known type may have (its 2.0 size); 0 for types this reader skips. */
static size_t gs__min_payload(unsigned type) {
  if (gs__tracefmt_is_event(type)) return GS_FMT_EVENT_BYTES;
  switch (type) {
    case GS_REC_MODULE: return GS_FMT_MODULE_BYTES;
    case GS_REC_SITE: return GS_FMT_SITE_BYTES;
    case GS_REC_SAMPLE: return GS_FMT_SAMPLE_BYTES;
    case GS_REC_DROP: return GS_FMT_DROP_BYTES;
    case GS_REC_END: return GS_FMT_END_BYTES;
    case GS_REC_STRING: return GS_FMT_STRING_BYTES;
    case GS_REC_ATTR: return GS_FMT_ATTR_BYTES;
    default: return 0;
  }
}

bool gs__tracefmt_time(const gs_rec *r, uint64_t *t) {
  if (r->type == GS_REC_MODULE || r->type == GS_REC_SITE || r->len < 8) return false;
  *t = gs__le_get(r->payload, r->len, 0, 8);
  return true;
}

/* Decodes the header's fields (offsets in docs/trace-format.md). */
static void gs__header_get(const uint8_t *p, gs_trace_header *h) {
  h->version = (uint16_t)gs__le_get(p, GS_TRACE_HDR_BYTES, 8, 2);
  h->minor = (uint16_t)gs__le_get(p, GS_TRACE_HDR_BYTES, 10, 2);
  h->header_bytes = (uint16_t)gs__le_get(p, GS_TRACE_HDR_BYTES, 12, 2);
  h->flags = (uint32_t)gs__le_get(p, GS_TRACE_HDR_BYTES, 16, 4);
  h->rank = (int32_t)(uint32_t)gs__le_get(p, GS_TRACE_HDR_BYTES, 20, 4);
  h->pid = gs__le_get(p, GS_TRACE_HDR_BYTES, 24, 8);
  h->t0_mono_ns = gs__le_get(p, GS_TRACE_HDR_BYTES, 32, 8);
  h->t0_real_ns = gs__le_get(p, GS_TRACE_HDR_BYTES, 40, 8);
  h->max_bytes = gs__le_get(p, GS_TRACE_HDR_BYTES, 48, 8);
}

/* Another major version: one line that says what to do about it. */
static int gs__refuse_version(gs_trace_reader *r) {
  snprintf(r->err, sizeof(r->err), "unsupported trace version %u (this tool reads version %u); %s",
           r->hdr.version, GS_TRACE_VERSION,
           r->hdr.version < GS_TRACE_VERSION
               ? "record it again with this version of libgactshim"
               : "read it with a newer gactshim-report");
  return -EPROTONOSUPPORT;
}

int gs__tracefmt_open(gs_trace_reader *r, const void *buf, size_t len) {
  memset(r, 0, sizeof(*r));
  r->buf = buf;
  r->len = len;
  if (len < GS_TRACE_HDR_BYTES || memcmp(buf, GS_TRACE_MAGIC, 8) != 0) {
    snprintf(r->err, sizeof(r->err), "not a gactshim trace (%s)",
             len < GS_TRACE_HDR_BYTES ? "shorter than the 64-byte header" : "bad magic");
    return -EBADMSG;
  }
  gs__header_get(buf, &r->hdr);
  /* The version is the one field every version keeps in place: check it before the rest. */
  if (r->hdr.version != GS_TRACE_VERSION) return gs__refuse_version(r);
  if (r->hdr.header_bytes < GS_TRACE_HDR_BYTES || r->hdr.header_bytes > len) {
    snprintf(r->err, sizeof(r->err), "corrupt header (header length %u)", r->hdr.header_bytes);
    return -EBADMSG;
  }
  r->off = r->hdr.header_bytes;
  return 0;
}

int gs__tracefmt_next(gs_trace_reader *r, gs_rec *out) {
  if (r->off == r->len) return 0;
  if (r->len - r->off < GS_REC_HDR_BYTES) goto truncated;
  const uint8_t *p = r->buf + r->off;
  unsigned type = (unsigned)gs__le_get(p, GS_REC_HDR_BYTES, 0, 2);
  size_t len = (size_t)gs__le_get(p, GS_REC_HDR_BYTES, 2, 2);
  uint32_t check = (uint32_t)gs__le_get(p, GS_REC_HDR_BYTES, 4, 4);
  if (len < GS_REC_HDR_BYTES || type == 0 || type >= 0x400) {
    snprintf(r->err, sizeof(r->err), "corrupt record at offset %zu (type %u, length %zu)", r->off,
             type, len);
    return -EBADMSG;
  }
  if (len > r->len - r->off) goto truncated;
  const uint8_t *payload = p + GS_REC_HDR_BYTES;
  size_t n = len - GS_REC_HDR_BYTES;
  if (gs__rec_check((uint16_t)type, (uint16_t)len, payload, n, NULL, 0) != check) {
    snprintf(r->err, sizeof(r->err), "corrupt record at offset %zu (checksum mismatch)", r->off);
    return -EBADMSG;
  }
  if (n < gs__min_payload(type)) {
    snprintf(r->err, sizeof(r->err),
             "corrupt record at offset %zu (type %u with %zu payload bytes, at least %zu expected)",
             r->off, type, n, gs__min_payload(type));
    return -EBADMSG;
  }
  *out = (gs_rec){.type = type, .payload = payload, .len = n, .off = r->off};
  r->off += len;
  return 1;
truncated:
  snprintf(r->err, sizeof(r->err),
           "trace ends inside a record at offset %zu of %zu (cut short, e.g. by a crash); "
           "the records before it are used", r->off, r->len);
  return -ENODATA;
}
