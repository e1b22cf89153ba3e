/* codec-bench.c: codec throughput — GPU compress/decompress vs cuMemcpyDtoD, and the CPU twin.
 * usage: codec-bench [MiB] | codec-bench check [MiB] (f32/bf16 at 2/4/8 bits) | codec-bench cpu [MiB [threads]] */
#include "gactshim.h"
#include "cudrv.h"
#include "policy.h" /* gs__group_at_bits: the groups the engine encodes with */
#include "testdata.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RUNS 7
/* Launches between one pair of events: one launch of a small kernel is mostly launch overhead. */
#define LAUNCHES 20

static int cmp_float(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}
static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}
static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static const char *dtype_names[] = {"f32", "f16", "bf16", "bool"};

/* Median milliseconds of one `what` (0 copy, 1 compress, 2 decompress): CUDA events around
 * LAUNCHES back-to-back launches, RUNS times. */
static float gpu_time(gs_cudrv *cu, int what, const gs_codec_params *p, CUdeviceptr in,
                      CUdeviceptr buf, CUdeviceptr out, size_t bytes, CUstream st) {
  float ms[RUNS];
  CUevent a, b;
  cu->EventCreate(&a, 0);
  cu->EventCreate(&b, 0);
  for (int r = -1; r < RUNS; r++) { /* r = -1: warm-up */
    cu->EventRecord(a, st);
    for (int i = 0; i < LAUNCHES; i++) {
      if (what == 0) cu->MemcpyDtoDAsync(out, in, bytes, st);
      else if (what == 1) gs_gpu_compress(p, in, buf, st);
      else gs_gpu_decompress(p, buf, out, st);
    }
    cu->EventRecord(b, st);
    cu->EventSynchronize(b);
    if (r >= 0) cu->EventElapsedTime(&ms[r], a, b);
    if (r >= 0) ms[r] /= LAUNCHES;
  }
  qsort(ms, RUNS, sizeof *ms, cmp_float);
  return ms[RUNS / 2];
}

/* all: every dtype at 1..8 bits; else (the GPU check's table) f32 and bf16 at 2, 4 and 8 bits. */
static int gpu_bench(size_t mib, int all) {
  gs_cudrv cu;
  char why[256];
  if (gs_cudrv_open(&cu, why, sizeof why) != 0) {
    printf("SKIP: no CUDA device (%s)\n", why);
    return 0;
  }
  gs_codec_params probe = {.n = 1, .dtype = GS_DTYPE_F32, .bits = 8, .group = 256};
  if (gs_gpu_compress(&probe, 0, 0, NULL) == -ENOSYS) {
    printf("SKIP: library built without CUDA kernels\n");
    return 0;
  }
  printf("device: %s; tensor %zu MiB; GB/s = (bytes read + bytes written) / median over %d runs "
         "of %d launches between CUDA events\n", cu.name, mib, RUNS, LAUNCHES);
  size_t bytes = mib << 20;
  CUdeviceptr in, buf, out;
  CUstream st;
  cu.StreamCreate(&st, 0);
  cu.MemAlloc(&in, bytes);
  cu.MemAlloc(&out, bytes);
  cu.MemAlloc(&buf, bytes + (bytes >> 4) + 4096);
  void *host = malloc(bytes);
  float copy_ms = gpu_time(&cu, 0, NULL, in, buf, out, bytes, st);
  double copy_gbs = 2.0 * bytes / copy_ms / 1e6;
  printf("cuMemcpyDtoD: %.3f ms, %.1f GB/s\n", copy_ms, copy_gbs);
  printf("groups as the engine encodes (gs__group_at_bits): 256 elements, 32 at 8 bits\n");
  for (unsigned dtype = 0; dtype < 4; dtype++) {
    if (!all && dtype != GS_DTYPE_F32 && dtype != GS_DTYPE_BF16) continue;
    uint64_t n = bytes / gs_td_elem_size(dtype);
    gs_td_fill(host, NULL, n < (1u << 22) ? n : (1u << 22), dtype, GS_TD_NORMAL, 1);
    for (size_t off = 1u << 22; off < n; off += 1u << 22) /* replicate the first 4M elements */
      memcpy((char *)host + off * gs_td_elem_size(dtype), host,
             ((n - off) < (1u << 22) ? (n - off) : (1u << 22)) * gs_td_elem_size(dtype));
    cu.MemcpyHtoD(in, host, bytes);
    for (unsigned bits = 1; bits <= 8; bits++) {
      if (dtype == 3 && bits > 1) break;
      if (!all && bits != 2 && bits != 4 && bits != 8) continue;
      gs_codec_params p = {.n = n, .dtype = (gs_dtype)dtype, .bits = bits,
                           .group = gs__group_at_bits(256, bits), .seed = 1};
      double moved = (double)bytes + gs_codec_size(&p);
      float c = gpu_time(&cu, 1, &p, in, buf, out, bytes, st);
      float d = gpu_time(&cu, 2, &p, in, buf, out, bytes, st);
      printf("%-4s bits=%u  compress %7.1f GB/s (%3.0f%% of copy)  decompress %7.1f GB/s (%3.0f%%)\n",
             dtype_names[dtype], bits, moved / c / 1e6, 100 * moved / c / 1e6 / copy_gbs,
             moved / d / 1e6, 100 * moved / d / 1e6 / copy_gbs);
    }
  }
  free(host);
  return 0;
}

static int cpu_bench(size_t mib, int nthreads) {
  size_t bytes = mib << 20;
  void *src = malloc(bytes), *out = malloc(bytes);
  printf("CPU twin, %zu MiB, threads=%d (0 = by size); GB/s of input bytes, median of 3; groups as "
         "the engine encodes (256 elements, 32 at 8 bits)\n", mib, nthreads);
  for (unsigned dtype = 0; dtype < 4; dtype++) {
    uint64_t n = bytes / gs_td_elem_size(dtype);
    gs_td_fill(src, NULL, n, dtype, GS_TD_NORMAL, 1);
    for (unsigned bits = 1; bits <= 8; bits *= 2) {
      if (dtype == 3 && bits > 1) break;
      gs_codec_params p = {.n = n, .dtype = (gs_dtype)dtype, .bits = bits,
                           .group = gs__group_at_bits(256, bits)};
      void *buf = malloc(gs_codec_size(&p));
      double tc[3], td[3];
      for (int r = 0; r < 3; r++) {
        double t0 = now_s();
        gs_compress_cpu(&p, src, buf, nthreads);
        double t1 = now_s();
        gs_decompress_cpu(buf, gs_codec_size(&p), out, &p, nthreads);
        tc[r] = t1 - t0;
        td[r] = now_s() - t1;
      }
      qsort(tc, 3, sizeof *tc, cmp_double);
      qsort(td, 3, sizeof *td, cmp_double);
      printf("%-4s bits=%u  compress %6.2f GB/s  decompress %6.2f GB/s\n", dtype_names[dtype], bits,
             bytes / tc[1] / 1e9, bytes / td[1] / 1e9);
      free(buf);
    }
  }
  free(src), free(out);
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "cpu") == 0)
    return cpu_bench(argc > 2 ? (size_t)atoi(argv[2]) : 64, argc > 3 ? atoi(argv[3]) : 0);
  if (argc > 1 && strcmp(argv[1], "check") == 0)
    return gpu_bench(argc > 2 ? (size_t)atoi(argv[2]) : 256, 0);
  return gpu_bench(argc > 1 ? (size_t)atoi(argv[1]) : 256, 1);
}
