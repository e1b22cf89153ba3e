/* codec-cpu.c: the CPU twin on one core, per path (portable, AVX2), beside memcpy on that core.
 * Times are the thread's CPU time, so a loaded shared machine slows the figures less than wall
 * time would (caches and memory bandwidth are still shared).
 * Usage: codec-cpu [MiB] [all | BITS] [group]: every dtype and width, or fp32 and bf16 at BITS
 * (default 4), in groups of `group` elements (default 256). */
#include "kernels.h"
#include "testdata.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RUNS 5

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}
static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Median seconds of one of: 0 memcpy, 1 compress, 2 decompress, on the calling thread. */
static double timed(int what, const gs_codec_params *p, const void *src, void *buf, void *out,
                    size_t bytes) {
  double t[RUNS];
  for (int r = -1; r < RUNS; r++) { /* -1: warm-up (page faults) */
    double t0 = now_s();
    if (what == 0) memcpy(out, src, bytes);
    else if (what == 1) gs_compress_cpu(p, src, buf, 1);
    else gs_decompress_cpu(buf, gs_codec_size(p), out, p, 1);
    if (r >= 0) t[r] = now_s() - t0;
  }
  qsort(t, RUNS, sizeof *t, cmp_double);
  return t[RUNS / 2];
}

/* Prints `codec <path> <dtype> bits=<b> compress=<GB/s> decompress=<GB/s>` lines (GB/s of the
 * uncompressed tensor's bytes, one thread), and `memcpy GB/s=<x>`, for the driver to parse. */
int main(int argc, char **argv) {
  size_t mib = argc > 1 ? (size_t)atoi(argv[1]) : 64, bytes = mib << 20;
  int all = argc > 2 && strcmp(argv[2], "all") == 0;
  unsigned only = argc > 2 && !all ? (unsigned)atoi(argv[2]) : 4;
  if (only < 1 || only > 8) return fprintf(stderr, "codec-cpu: bits must be 1..8 or 'all'\n"), 2;
  /* Optional: the group (8 bits encodes in groups of 32, policy/model.c gs__group_at_bits). */
  uint32_t group = argc > 3 ? (uint32_t)atoi(argv[3]) : 256;
  uint8_t *src = malloc(bytes), *out = malloc(bytes);
  if (src == NULL || out == NULL) return 1;
  static const char *names[] = {"f32", "f16", "bf16"}, *paths[] = {"portable", "avx2"};
  printf("memcpy GB/s=%.2f\n", bytes / timed(0, NULL, src, NULL, out, bytes) / 1e9);
  for (unsigned dtype = 0; dtype < 3; dtype++) {
    uint64_t n = bytes / gs_dtype_bytes((gs_dtype)dtype);
    gs_td_fill(src, NULL, n, dtype, GS_TD_NORMAL, 1);
    for (unsigned bits = 1; bits <= 8; bits++) {
      if (!all && (dtype == 1 || bits != only)) continue;
      gs_codec_params p = {.n = n, .dtype = (gs_dtype)dtype, .bits = bits, .group = group};
      void *buf = malloc(gs_codec_size(&p));
      for (int isa = GS__ISA_PORTABLE; isa <= GS__ISA_AVX2; isa++) {
        if (gs__codec_isa_set(isa) != 0) continue;
        double c = timed(1, &p, src, buf, out, bytes), d = timed(2, &p, src, buf, out, bytes);
        printf("codec %s %s bits=%u compress=%.2f decompress=%.2f\n", paths[isa], names[dtype],
               bits, bytes / c / 1e9, bytes / d / 1e9);
        fflush(stdout);
      }
      free(buf);
    }
  }
  gs__codec_isa_set(GS__ISA_AUTO);
  /* Where compress time goes beside the SIMD loops: the scalar per-group metadata (codec_core.h,
   * shared with the GPU), over the groups of the f32 tensor. */
  uint64_t groups = (bytes / 4) / 256;
  float *x = (float *)src;
  gs_td_fill(src, NULL, bytes / 4, 0, GS_TD_NORMAL, 1);
  volatile uint32_t sink = 0;
  double t0 = now_s();
  for (uint64_t g = 0; g < groups; g++) {
    gs__meta m;
    gs__meta_compute(x[g * 256], x[g * 256] + 3.0f + x[g * 256 + 1], 0, 4, &m);
    sink += m.step_field;
  }
  printf("meta ns/group=%.1f (group 256, f32 4 bits: %.1f%% of a 4 GB/s budget)\n",
         (now_s() - t0) / groups * 1e9, (now_s() - t0) / groups * 1e9 / (1024.0 / 4.0) * 100.0);
  printf("memcpy GB/s=%.2f\n", bytes / timed(0, NULL, src, NULL, out, bytes) / 1e9);
  free(src), free(out);
  return 0;
}
