/* tracesink.h: where the writer thread puts records — the bounded file and the in-memory window. */
#ifndef GS_TRACESINK_H
#define GS_TRACESINK_H

#include "common.h"
#include "tracefmt.h"

/* A growable byte buffer. */
typedef struct gs_buf {
  uint8_t *p;
  size_t n, cap;
} gs_buf;

int gs__buf_put(gs_buf *b, const void *p, size_t n);
void gs__buf_free(gs_buf *b);

/* Owned by the writer thread alone, so it needs no lock. */
typedef struct gs_sink {
  gs_trace_header hdr;
  char path[4096];
  int fd;                 /* -1: memory only */
  uint64_t max_bytes;
  uint64_t file_bytes;    /* bytes in the file now */
  gs_buf pending;         /* encoded, not yet written */
  size_t mem_bytes;
  gs_buf summary;         /* every summary record (samples merged when over mem_bytes / 2) */
  gs_buf recent[2];       /* detail: the older and the current half of the recent window */
  uint64_t detail_dropped, samples_merged, compactions, detail_from;
  int error;              /* first write error (negative errno); the file is then closed */
} gs_sink;

/* path may be empty (memory only). 0 or negative errno. */
int gs__sink_open(gs_sink *s, const char *path, uint64_t max_bytes, size_t mem_bytes);

/* Adds one encoded record. */
void gs__sink_put(gs_sink *s, const uint8_t *rec, size_t n, bool detail, uint64_t t);

/* Writes what is pending to the file, compacting it first when it would exceed the bound. */
int gs__sink_flush(gs_sink *s);

/* Closes the file (after a final flush) and frees the memory. */
void gs__sink_close(gs_sink *s);

/* Header (snapshot flag) + summary + recent detail + tail (the caller's DROP and END records). */
int gs__sink_snapshot(const gs_sink *s, const uint8_t *tail, size_t tail_n, uint8_t **out,
                      size_t *len);

/* Rewrites the records in[0..len) into out keeping every summary record, merging samples in
 * groups of 2^shift per device (the largest total of a group survives), and detail records only
 * at offsets >= cut. Counts what it removed. Used by the file bound and the memory bound. */
int gs__sink_compact(const uint8_t *in, size_t len, unsigned shift, size_t cut, gs_buf *out,
                     uint64_t *detail_dropped, uint64_t *samples_merged, uint64_t *first_t);

#endif
