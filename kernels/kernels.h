/* kernels.h: internals the kernels' host files share with each other and with their tests. */
#ifndef GS_KERNELS_H
#define GS_KERNELS_H

/* The kernels' room depends on nothing of shim/: its API is include/gactshim.h. Its one other
 * header, codec_core.h, holds the arithmetic both twins share and is compiled by nvcc too. */

#include "gactshim.h"
#include "codec_core.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#ifndef __cplusplus /* the emulator test includes this header as C++ */
_Static_assert(GS_FMT_REPORT_READY == GS_CODEC_REPORT_READY, "one ready bit");
_Static_assert(GS_FMT_FLAG_RELU == GS_CODEC_RELU_MASK, "one flag value");
#endif

/* ---- where header, metas and packed data sit in a compressed buffer (host only) ---- */

int gs_codec_validate(const gs_codec_params *p);

/* Normalised parameters (bool: bits 1, group 0) and byte offsets of one buffer. */
typedef struct gs__layout {
  gs_codec_params p;
  uint64_t ngroups, meta_off, data_off, mask_off, total; /* mask_off: sign plane (RELU flag) */
} gs__layout;

static inline int gs__layout_of(const gs_codec_params *p, gs__layout *l) {
  if (gs_codec_validate(p) != 0) return -EINVAL;
  l->p = *p;
  if (p->dtype == GS_DTYPE_BOOL) {
    l->p.bits = 1;
    l->p.group = 0;
    l->ngroups = 0;
  } else {
    l->ngroups = (p->n + p->group - 1) / p->group;
  }
  l->meta_off = GS_FMT_HEADER_BYTES;
  /* Data starts 16-byte aligned so that GPU threads can use wide stores. */
  l->data_off = (l->meta_off + l->ngroups * GS_FMT_META_BYTES + 15u) & ~(uint64_t)15u;
  l->mask_off = l->data_off + (l->p.n + 7) / 8 * l->p.bits;
  l->total = l->mask_off + ((l->p.flags & GS_FMT_FLAG_RELU) ? (l->p.n + 7) / 8 : 0);
  return 0;
}

static inline void gs__layout_header(const gs__layout *l, gs__header *h) {
  memset(h, 0, sizeof *h);
  h->magic = GS_FMT_MAGIC;
  h->version = GS_FMT_VERSION;
  h->dtype = (uint8_t)l->p.dtype;
  h->bits = (uint8_t)l->p.bits;
  h->group = l->p.group;
  h->flags = (uint8_t)l->p.flags;
  h->n = l->p.n;
  h->check = gs__header_check(h->dtype, h->bits, h->flags, h->group, h->n);
}

static inline void gs__layout_write_header(const gs__layout *l, uint8_t *dst) {
  gs__header h;
  gs__layout_header(l, &h);
  memcpy(dst, &h, sizeof h);
}

/* Parses and validates a header; -EINVAL for anything a writer of this version cannot have
 * produced, or a buffer shorter than the layout it announces. */
static inline int gs__layout_read_header(const void *src, size_t bytes, gs__layout *l) {
  gs__header h;
  if (bytes < sizeof h) return -EINVAL;
  memcpy(&h, src, sizeof h);
  if (h.magic != GS_FMT_MAGIC || h.version != GS_FMT_VERSION || h.reserved1 != 0 ||
      h.check != gs__header_check(h.dtype, h.bits, h.flags, h.group, h.n))
    return -EINVAL;
  gs_codec_params p = {.n = h.n, .dtype = (gs_dtype)h.dtype, .bits = h.bits, .group = h.group,
                       .seed = 0, .tensor_id = 0, .flags = h.flags, .report = 0};
  if (h.dtype == GS_DTYPE_BOOL && (h.bits != 1 || h.group != 0)) return -EINVAL;
  if (gs__layout_of(&p, l) != 0 || l->total > bytes) return -EINVAL;
  return 0;
}



/* ---- nvrtc.c: the kernels compiled at run time (GPUs and drivers the fatbin does not serve) ----
 *
 * An image of codec.cu for compute capability arch (e.g. 90) in *image (malloc'ed, *size bytes):
 * read from the disk cache ($XDG_CACHE_HOME/gactshim, else ~/.cache/gactshim; keyed by source
 * hash, arch and NVRTC version) unless retry, else compiled with an NVRTC found at run time and
 * written there. 1 (from the cache), 0 (compiled), -ENOENT (no usable NVRTC: remembered, not
 * looked for again), -ENOEXEC (the compile failed) or -ENOSYS (a build without CUDA kernels).
 * Called under the loader's lock. */
int gs__nvrtc_image(int arch, bool retry, void **image, size_t *size);

/* Why the last run-time compile could not give an image, or NULL. */
const char *gs__nvrtc_error(void);

/* ---- gputime.c: CUDA events around the codec's launches (gs_gpu_kernel_time) ----
 * begin records a start event on stream (ctx current) and returns a slot, or -1 (untimed: no
 * free pair, or no driver); end records the end event of that slot. Neither waits. */
int gs__gpu_time_begin(void *ctx, void *stream);
void gs__gpu_time_end(int slot, void *stream);

/* ---- the CPU twin's inner loops: portable C, or AVX2 (codec_avx2.c), picked at run time ---- */

enum { GS__ISA_AUTO = -1, GS__ISA_PORTABLE = 0, GS__ISA_AVX2 = 1 };

/* The path calls use now (the best the CPU has unless a test forced one). */
int gs__codec_isa(void);
/* Forces a path (tests, benchmarks): 0, or -ENOTSUP when this CPU or build lacks it; AUTO goes
 * back to the best one. Not for use while another thread is in the codec. */
int gs__codec_isa_set(int isa);

/* codec_avx2.c: whether the CPU has AVX2; quantize+pack whole 64-element runs, then one
 * 32-element run, of x[0..cnt) from chunk chunk0 (returns how many elements it did);
 * min/max/non-finite as gs__minmax; decode nch whole chunks of a finite group to dtype, with the
 * chunks' sign bytes when there is a sign plane (returns the chunks done: 0 for fp16 while this
 * thread's MXCSR flushes subnormals). */
int gs__avx2_supported(void);
unsigned gs__avx2_emit(const float *x, unsigned cnt, const gs__meta *m, uint64_t seed, uint64_t tid,
                       uint64_t chunk0, unsigned bits, uint8_t *out);
int gs__avx2_minmax(const float *x, unsigned cnt, float *mn, float *mx);
/* Min, max and Inf/NaN of the four groups of 32 at x[0..128) (for gs__avx2_meta4). */
void gs__avx2_minmax_g32x4(const float *x, float mn[4], float mx[4], int bad[4]);
/* gs__meta_compute for four groups at once (the same metas, bit for bit); -ENOTSUP while this
 * thread's MXCSR has FTZ or DAZ set (call gs__meta_compute then). */
int gs__avx2_meta4(const float mn[4], const float mx[4], const int bad[4], unsigned bits,
                   gs__meta m[4]);
/* Quantize+pack four whole, finite groups of 32 at x[0..128), from chunk chunk0, metas m[0..4). */
void gs__avx2_emit_g32x4(const float *x, const gs__meta m[4], uint64_t seed, uint64_t tid,
                         uint64_t chunk0, unsigned bits, uint8_t *out);
uint64_t gs__avx2_decode(const uint8_t *in, const uint8_t *signs, uint64_t nch, unsigned bits,
                         const gs__meta *m, unsigned dtype, void *out);
/* The sign-plane bytes (gs__sign8) of nch whole chunks at x; returns nch. */
unsigned gs__avx2_signs(const float *x, unsigned nch, uint8_t *out);
/* fp16 s[0..n) to fp32 out, exactly (F16C); -ENOTSUP while this thread's MXCSR flushes
 * subnormals (the caller converts in software then: fp16 subnormals must stay). */
int gs__avx2_f16_to_f32(const uint16_t *s, unsigned n, float *out);
/* The decode's output conversion of 8 fp32 values (finite, or inf) to fp16/bf16 (tests). */
void gs__avx2_out16(const float y[8], unsigned dtype, uint16_t out[8]);

/* Most lanes the CPU codec uses: ranges one call is split into, and threads the pool may have. */
#define GS__MAX_THREADS 64

/* ---- pool.c: the CPU codec's worker threads ----
 *
 * One process-wide pool of persistent worker threads, started on first parallel use, sized by the
 * CPUs the process may run on (its affinity mask, at most GS__MAX_THREADS lanes). Workers block
 * every signal. After fork() the child has no workers; its first parallel use starts its own. */

/* One unit of a parallel call: fn(arg, i) for i in [0, count). */
typedef void (*gs__pool_fn)(void *arg, int i);

/* Runs fn(arg, i) for every i in [0, count), on the pool's workers and the calling thread, and
 * returns once all have returned. Which thread runs which i is unspecified, so results must not
 * depend on it. Runs everything on the calling thread when count < 2, when the pool has no
 * workers (one CPU, or they could not be started) or when another caller is using it. Returns 0. */
int gs__pool_run(gs__pool_fn fn, void *arg, int count);

/* Lanes of the pool (its workers plus the caller: the CPUs of the affinity mask when it was
 * created, capped at GS__MAX_THREADS), creating it on first use; 1 if it cannot be created. */
int gs__pool_lanes(void);

/* Worker threads the pool has started (0 before its first use, or after fork() in the child);
 * creates nothing. For tests. */
int gs__pool_workers(void);

#endif
