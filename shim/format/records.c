/* records.c: encode and decode trace records; the reader never trusts the bytes it is given. */
#include "format.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

_Static_assert(sizeof(gs_trace_header) == GS_TRACE_HDR_BYTES, "header is 64 bytes");
_Static_assert(sizeof(gs_event) == 56, "event payload is 56 bytes");

/* FNV-1a: cheap, and enough to tell a torn or overwritten record from a good one. */
static uint32_t gs__fnv(uint32_t h, const void *p, size_t n) {
  const uint8_t *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 16777619u;
  return h;
}

static uint32_t gs__rec_check(uint16_t type, uint16_t len, const void *p1, size_t n1,
                              const void *p2, size_t n2) {
  uint8_t tl[4] = {(uint8_t)type, (uint8_t)(type >> 8), (uint8_t)len, (uint8_t)(len >> 8)};
  uint32_t h = gs__fnv(2166136261u, tl, sizeof(tl));
  h = gs__fnv(h, p1, n1);
  return gs__fnv(h, p2, n2);
}

void gs__tracefmt_header(gs_trace_header *h, uint64_t max_bytes, uint32_t flags) {
  struct timespec rt;
  memset(h, 0, sizeof(*h));
  memcpy(h->magic, GS_TRACE_MAGIC, 8);
  h->version = GS_TRACE_VERSION;
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

size_t gs__tracefmt_encode(uint8_t *dst, size_t cap, unsigned type, const void *p1, size_t n1,
                           const void *p2, size_t n2) {
  size_t total = GS_REC_HDR_BYTES + n1 + n2;
  if (total > cap || total > 0xffff) return 0;
  uint16_t t16 = (uint16_t)type, l16 = (uint16_t)total;
  uint32_t check = gs__rec_check(t16, l16, p1, n1, p2, n2);
  memcpy(dst, &t16, 2);
  memcpy(dst + 2, &l16, 2);
  memcpy(dst + 4, &check, 4);
  if (n1) memcpy(dst + GS_REC_HDR_BYTES, p1, n1);
  if (n2) memcpy(dst + GS_REC_HDR_BYTES + n1, p2, n2);
  return total;
}

bool gs__tracefmt_is_detail(unsigned type) {
  return type == GS_REC_ALLOC || type == GS_REC_FREE || type == GS_REC_RECAT ||
         type == GS_REC_SAVED || type == GS_REC_KERNEL;
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
  memcpy(&r->hdr, buf, sizeof(r->hdr));
  if (r->hdr.version != GS_TRACE_VERSION) {
    snprintf(r->err, sizeof(r->err), "trace format version %u; this tool reads version %u",
             r->hdr.version, GS_TRACE_VERSION);
    return -EPROTONOSUPPORT;
  }
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
  uint16_t type, len;
  uint32_t check;
  memcpy(&type, r->buf + r->off, 2);
  memcpy(&len, r->buf + r->off + 2, 2);
  memcpy(&check, r->buf + r->off + 4, 4);
  if (len < GS_REC_HDR_BYTES || type == 0 || type >= 0x400) {
    snprintf(r->err, sizeof(r->err), "corrupt record at offset %zu (type %u, length %u)", r->off,
             type, len);
    return -EBADMSG;
  }
  if (len > r->len - r->off) goto truncated;
  const uint8_t *payload = r->buf + r->off + GS_REC_HDR_BYTES;
  size_t n = len - GS_REC_HDR_BYTES;
  if (gs__rec_check(type, len, payload, n, NULL, 0) != check) {
    snprintf(r->err, sizeof(r->err), "corrupt record at offset %zu (checksum mismatch)", r->off);
    return -EBADMSG;
  }
  out->type = type;
  out->payload = payload;
  out->len = n;
  out->off = r->off;
  r->off += len;
  return 1;
truncated:
  snprintf(r->err, sizeof(r->err),
           "trace ends inside a record at offset %zu of %zu (cut short, e.g. by a crash); "
           "the records before it are used", r->off, r->len);
  return -ENODATA;
}

void gs__tracefmt_get(const gs_rec *rec, void *dst, size_t n) {
  size_t k = rec->len < n ? rec->len : n;
  memcpy(dst, rec->payload, k);
  if (k < n) memset((uint8_t *)dst + k, 0, n - k);
}
