/* fuzz_trace.c: libFuzzer target for the trace reader (tracefmt decoder + the report's loader). */
#include "report.h"
#include "format.h"

#include <stdlib.h>
#include <string.h>

/* Decodes a record with the decoder of its type: a record the reader handed over must decode,
 * and what a decoder points into must lie inside the record. */
static void gs__decode(const gs_rec *rec) {
  const uint8_t *tail = NULL;
  size_t tail_n = 0;
  int rc = 0;
  union {
    gs_trace_event ev;
    gs_rec_module m;
    gs_rec_site s;
    gs_rec_sample smp;
    gs_rec_drop d;
    gs_rec_end e;
  } u;
  if (gs__tracefmt_is_event(rec->type)) rc = gs__tracefmt_get_event(rec, &u.ev, &tail, &tail_n);
  else if (rec->type == GS_REC_MODULE) rc = gs__tracefmt_get_module(rec, &u.m, &tail, &tail_n);
  else if (rec->type == GS_REC_SITE) rc = gs__tracefmt_get_site(rec, &u.s);
  else if (rec->type == GS_REC_SAMPLE) rc = gs__tracefmt_get_sample(rec, &u.smp);
  else if (rec->type == GS_REC_DROP) rc = gs__tracefmt_get_drop(rec, &u.d);
  else if (rec->type == GS_REC_END) rc = gs__tracefmt_get_end(rec, &u.e);
  if (rc != 0 || (tail && tail + tail_n != rec->payload + rec->len)) abort();
}

/* Walks the records as the low-level reader sees them: offsets must only grow and stay inside. */
static void gs__walk(const uint8_t *data, size_t size) {
  gs_trace_reader r;
  if (gs__tracefmt_open(&r, data, size) != 0) return;
  gs_rec rec;
  size_t last = 0;
  while (gs__tracefmt_next(&r, &rec) == 1) {
    if (rec.off < last || rec.payload + rec.len > data + size) abort();
    last = rec.off + 1;
    gs__decode(&rec);
  }
}

/* Copies in to out with every record's check recomputed by the writer's own framing, so that
 * mutated payloads get past the checksum and reach the loader's handling of each record type. */
static void gs__repair(const uint8_t *in, size_t n, uint8_t *out) {
  memcpy(out, in, n);
  size_t i = GS_TRACE_HDR_BYTES;
  while (i + GS_REC_HDR_BYTES <= n) {
    size_t type = (size_t)in[i] | (size_t)in[i + 1] << 8, len = (size_t)in[i + 2] | (size_t)in[i + 3] << 8;
    if (len < GS_REC_HDR_BYTES || len > n - i) break;
    if (gs__tracefmt_frame(out + i, n - i, (unsigned)type, in + i + GS_REC_HDR_BYTES,
                           len - GS_REC_HDR_BYTES, NULL, 0) != len)
      break;
    i += len;
  }
}

static void gs__load(const uint8_t *data, size_t size) {
  gs__walk(data, size);
  rp_trace t;
  char err[256];
  rp_load(&t, "fuzz", data, size, err, sizeof(err));
  rp_free(&t); /* on failure too: a half-loaded trace must still free cleanly */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  gs__load(data, size);
  uint8_t *fixed = malloc(size ? size : 1);
  if (!fixed) return 0;
  gs__repair(data, size, fixed);
  gs__load(fixed, size);
  free(fixed);
  return 0;
}
