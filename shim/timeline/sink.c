/* sink.c: the bounded trace file (compaction drops oldest detail first) and memory window. */
#include "timeline.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Room kept free at the end of the file for the final DROP and END records. */
#define GS_SINK_RESERVE 1024
#define GS_SINK_PENDING_MAX (1u << 20)

int gs__buf_put(gs_buf *b, const void *p, size_t n) {
  if (b->n + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + n) cap *= 2;
    uint8_t *q = realloc(b->p, cap);
    if (!q) return -ENOMEM;
    b->p = q;
    b->cap = cap;
  }
  memcpy(b->p + b->n, p, n);
  b->n += n;
  return 0;
}

void gs__buf_free(gs_buf *b) {
  free(b->p);
  memset(b, 0, sizeof(*b));
}

int gs__sink_open(gs_sink *s, const char *path, uint64_t max_bytes, size_t mem_bytes) {
  memset(s, 0, sizeof(*s));
  s->fd = -1;
  s->max_bytes = max_bytes < (64u << 10) ? (64u << 10) : max_bytes;
  s->mem_bytes = mem_bytes < (64u << 10) ? (64u << 10) : mem_bytes;
  gs__tracefmt_header(&s->hdr, s->max_bytes, 0);
  if (!path || !*path) return 0;
  snprintf(s->path, sizeof(s->path), "%s", path);
  /* Another live process writing the same path (a path without %p shared by exec'd workers)
   * holds the lock: leave its file alone instead of truncating it under it. */
  s->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (s->fd < 0) return -errno;
  if (flock(s->fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno == EWOULDBLOCK ? -EBUSY : -errno;
    close(s->fd);
    s->fd = -1;
    return e;
  }
  uint8_t hdr[GS_TRACE_HDR_BYTES];
  gs__tracefmt_put_header(hdr, &s->hdr);
  if (ftruncate(s->fd, 0) != 0 || write(s->fd, hdr, sizeof(hdr)) != (ssize_t)sizeof(hdr)) {
    int e = errno ? -errno : -EIO;
    close(s->fd);
    s->fd = -1;
    return e;
  }
  s->file_bytes = GS_TRACE_HDR_BYTES;
  return 0;
}

typedef struct gs__merge {
  bool has;
  unsigned count;
  gs_rec_sample best;     /* the group's largest total, with the group's largest `without` */
} gs__merge;

/* Per device (and the host): the group of samples being merged. */
#define GS_SINK_DEVS 64

static int gs__merge_sample(gs__merge *m, const gs_rec *r, unsigned shift, gs_buf *out,
                            uint64_t *merged) {
  gs_rec_sample smp;
  /* Only the sink's own records come here, all of the 2.1 size; anything else passes as is. */
  if (gs__tracefmt_get_sample(r, &smp) != 0 || r->len != GS_FMT_SAMPLE_BYTES_2_1)
    return gs__buf_put(out, r->payload - GS_REC_HDR_BYTES, r->len + GS_REC_HDR_BYTES);
  gs__merge *g = &m[(unsigned)smp.device % GS_SINK_DEVS];
  /* Both curves stay max-preserving: the largest total, and the largest `without`. */
  uint64_t without = g->has && g->best.without > smp.without ? g->best.without : smp.without;
  if (!g->has || smp.total > g->best.total) g->best = smp;
  g->best.without = without;
  if (g->has) (*merged)++;
  g->has = true;
  if (++g->count < (1u << shift)) return 0;
  g->has = false;
  g->count = 0;
  uint8_t rec[GS_REC_HDR_BYTES + GS_FMT_SAMPLE_BYTES_2_1];
  return gs__buf_put(out, rec, gs__tracefmt_put_sample(rec, sizeof(rec), &g->best));
}

/* Merged samples make finer iteration bands meaningless: keep every 2^shift-th boundary. */
static bool gs__keep_iter(const gs_rec *r, unsigned shift) {
  gs_trace_event ev;
  return gs__tracefmt_get_event(r, &ev, NULL, NULL) != 0 || (ev.a & ((1ull << shift) - 1)) == 0;
}

int gs__sink_compact(const uint8_t *in, size_t len, unsigned shift, size_t cut, gs_buf *out,
                     uint64_t *detail_dropped, uint64_t *samples_merged, uint64_t *first_t) {
  gs__merge *m = calloc(GS_SINK_DEVS, sizeof(gs__merge));
  if (!m) return -ENOMEM;
  gs_trace_reader rd = {.buf = in, .len = len, .off = 0};
  gs_rec r;
  int rc = 0;
  uint64_t last_t = 0;
  *first_t = 0;
  while (rc == 0 && gs__tracefmt_next(&rd, &r) == 1) {
    const uint8_t *raw = r.payload - GS_REC_HDR_BYTES;
    uint64_t t = 0;
    bool timed = gs__tracefmt_time(&r, &t);
    if (t > last_t) last_t = t;
    if (gs__tracefmt_is_detail(r.type)) {
      if (r.off < cut) {
        (*detail_dropped)++;
        continue;
      }
      if (!*first_t && timed) *first_t = t;
      rc = gs__buf_put(out, raw, r.len + GS_REC_HDR_BYTES);
    } else if (r.type == GS_REC_SAMPLE && shift > 0) {
      rc = gs__merge_sample(m, &r, shift, out, samples_merged);
    } else if (r.type == GS_REC_ITER && shift > 0 && !gs__keep_iter(&r, shift)) {
      continue;
    } else {
      rc = gs__buf_put(out, raw, r.len + GS_REC_HDR_BYTES);
    }
  }
  uint8_t rec[GS_REC_HDR_BYTES + GS_FMT_SAMPLE_BYTES_2_1];
  for (unsigned d = 0; rc == 0 && d < GS_SINK_DEVS; d++)
    if (m[d].has) rc = gs__buf_put(out, rec, gs__tracefmt_put_sample(rec, sizeof(rec), &m[d].best));
  /* No detail kept at all: it is complete only from now on. */
  if (*detail_dropped && !*first_t) *first_t = last_t + 1;
  free(m);
  return rc;
}

/* Bytes of summary, of samples and of detail in a record stream. */
static void gs__census(const uint8_t *in, size_t len, uint64_t *summ, uint64_t *samp,
                       uint64_t *det) {
  gs_trace_reader rd = {.buf = in, .len = len, .off = 0};
  gs_rec r;
  *summ = *samp = *det = 0;
  while (gs__tracefmt_next(&rd, &r) == 1) {
    uint64_t n = r.len + GS_REC_HDR_BYTES;
    if (gs__tracefmt_is_detail(r.type)) *det += n;
    else if (r.type == GS_REC_SAMPLE) *samp += n;
    else *summ += n;
  }
}

/* Chooses how hard to compact a stream to fit target: the sample merge shift and the offset
 * before which detail is dropped. */
static void gs__plan(const uint8_t *in, size_t len, uint64_t target, unsigned *shift, size_t *cut) {
  uint64_t summ, samp, det;
  gs__census(in, len, &summ, &samp, &det);
  *shift = 0;
  while (summ + (samp >> *shift) > target / 2 && *shift < 20) (*shift)++;
  uint64_t used = summ + (samp >> *shift);
  uint64_t allow = target > used ? target - used : 0;
  gs_trace_reader rd = {.buf = in, .len = len, .off = 0};
  gs_rec r;
  *cut = len;
  while (gs__tracefmt_next(&rd, &r) == 1) {
    if (det <= allow) {
      *cut = r.off;
      return;
    }
    if (gs__tracefmt_is_detail(r.type)) det -= r.len + GS_REC_HDR_BYTES;
  }
}

/* Every write to the trace file: the place a test makes the disk full. */
static int gs__sink_write(int fd, const uint8_t *p, size_t n) {
  return gs__fault(GS_FAULT_TRACE_NOSPC) ? -ENOSPC : gs__write_all(fd, p, n);
}

/* Rewrites the file to at most half the bound: the oldest detail goes first, summary stays. The
 * new file replaces the old with rename(2), so at every moment the path holds a readable trace. */
static int gs__compact_file(gs_sink *s) {
  size_t len = (size_t)s->file_bytes;
  uint8_t *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, s->fd, 0);
  if (map == MAP_FAILED) return -errno;
  const uint8_t *recs = map + GS_TRACE_HDR_BYTES;
  size_t rlen = len - GS_TRACE_HDR_BYTES;
  unsigned shift;
  size_t cut;
  gs__plan(recs, rlen, s->max_bytes / 2 - GS_TRACE_HDR_BYTES, &shift, &cut);
  gs_buf out = {0};
  uint64_t first_t = 0;
  uint8_t hdr[GS_TRACE_HDR_BYTES];
  gs__tracefmt_put_header(hdr, &s->hdr);
  int rc = gs__buf_put(&out, hdr, sizeof(hdr));
  if (rc == 0)
    rc = gs__sink_compact(recs, rlen, shift, cut, &out, &s->detail_dropped, &s->samples_merged,
                          &first_t);
  munmap(map, len);
  if (first_t > s->detail_from) s->detail_from = first_t;
  char tmp[sizeof(s->path) + 8];
  snprintf(tmp, sizeof(tmp), "%s.tmp", s->path);
  int fd = rc == 0 ? open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : -1;
  if (rc == 0 && fd < 0) rc = -errno;
  if (rc == 0 && flock(fd, LOCK_EX | LOCK_NB) != 0) rc = -errno;
  if (rc == 0) rc = gs__sink_write(fd, out.p, out.n);
  if (rc == 0 && rename(tmp, s->path) != 0) rc = -errno;
  if (rc == 0) {
    close(s->fd);
    s->fd = fd;
    s->file_bytes = out.n;
    s->compactions++;
  } else if (fd >= 0) {
    close(fd);
    unlink(tmp);
  }
  gs__buf_free(&out);
  return rc;
}

/* Drops the detail records of the pending buffer: the last resort when even the summary fills
 * the bound. */
static void gs__pending_drop_detail(gs_sink *s) {
  gs_buf out = {0};
  uint64_t t;
  uint64_t merged = 0;
  if (gs__sink_compact(s->pending.p, s->pending.n, 0, s->pending.n, &out, &s->detail_dropped,
                       &merged, &t) == 0) {
    gs__buf_free(&s->pending);
    s->pending = out;
  } else {
    gs__buf_free(&out);
  }
}

int gs__sink_flush(gs_sink *s) {
  if (s->fd < 0 || s->pending.n == 0) {
    s->pending.n = 0;
    return s->error;
  }
  uint64_t room = s->max_bytes - GS_SINK_RESERVE;
  if (s->file_bytes + s->pending.n > room) {
    int rc = gs__compact_file(s);
    if (rc != 0 && !s->error) s->error = rc;
  }
  if (s->file_bytes + s->pending.n > room) gs__pending_drop_detail(s);
  if (s->file_bytes + s->pending.n > room) s->pending.n = 0; /* counted by the caller's DROP */
  int rc = gs__sink_write(s->fd, s->pending.p, s->pending.n);
  if (rc == 0) {
    s->file_bytes += s->pending.n;
  } else {
    /* A full disk may have taken part of the batch: cut the torn record off, so the file still
     * ends at a whole record and later batches (once there is room) follow it readably. */
    if (ftruncate(s->fd, (off_t)s->file_bytes) == 0) lseek(s->fd, (off_t)s->file_bytes, SEEK_SET);
    if (!s->error) s->error = rc;
  }
  s->pending.n = 0;
  return s->error;
}

static void gs__memory_put(gs_sink *s, const uint8_t *rec, size_t n, bool detail) {
  if (detail) {
    /* The recent window: two halves; when the current one is full it becomes the older one and
     * the older one is forgotten — the oldest detail goes first. */
    if (s->recent[1].n + n > s->mem_bytes / 4) {
      gs_buf old = s->recent[0];
      s->recent[0] = s->recent[1];
      s->recent[1] = old;
      s->recent[1].n = 0;
    }
    gs__buf_put(&s->recent[1], rec, n);
    return;
  }
  if (s->summary.n + n > s->mem_bytes / 2) {
    gs_buf out = {0};
    uint64_t d = 0, t;
    if (gs__sink_compact(s->summary.p, s->summary.n, 1, 0, &out, &d, &s->samples_merged, &t) == 0) {
      gs__buf_free(&s->summary);
      s->summary = out;
    } else {
      gs__buf_free(&out);
    }
  }
  gs__buf_put(&s->summary, rec, n);
}

void gs__sink_put(gs_sink *s, const uint8_t *rec, size_t n, bool detail, uint64_t t) {
  gs__memory_put(s, rec, n, detail);
  if (s->fd < 0) return;
  if (gs__buf_put(&s->pending, rec, n) != 0) s->detail_dropped += detail;
  if (s->pending.n >= GS_SINK_PENDING_MAX) gs__sink_flush(s);
}

void gs__sink_close(gs_sink *s) {
  if (s->fd >= 0) {
    gs__sink_flush(s);
    close(s->fd);
    s->fd = -1;
  }
  gs__buf_free(&s->pending);
  gs__buf_free(&s->summary);
  gs__buf_free(&s->recent[0]);
  gs__buf_free(&s->recent[1]);
}

int gs__sink_snapshot(const gs_sink *s, const uint8_t *tail, size_t tail_n, uint8_t **out,
                      size_t *len) {
  gs_trace_header h = s->hdr;
  h.flags |= GS_TRACE_F_SNAPSHOT;
  uint8_t hdr[GS_TRACE_HDR_BYTES];
  gs__tracefmt_put_header(hdr, &h);
  gs_buf b = {0};
  int rc = gs__buf_put(&b, hdr, sizeof(hdr));
  if (rc == 0 && s->summary.n) rc = gs__buf_put(&b, s->summary.p, s->summary.n);
  if (rc == 0 && s->recent[0].n) rc = gs__buf_put(&b, s->recent[0].p, s->recent[0].n);
  if (rc == 0 && s->recent[1].n) rc = gs__buf_put(&b, s->recent[1].p, s->recent[1].n);
  if (rc == 0) rc = gs__buf_put(&b, tail, tail_n);
  if (rc != 0) {
    gs__buf_free(&b);
    return rc;
  }
  *out = b.p;
  *len = b.n;
  return 0;
}
