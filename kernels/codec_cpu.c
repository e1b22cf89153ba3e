/* codec_cpu.c: the CPU twin of the GPU codec — parameters, buffer layout, compress, decompress. */
#include "gactshim.h"
#include "codec_core.h"
#include "codec_layout.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

int gs_codec_validate(const gs_codec_params *p) {
  if (p == NULL || p->n > GS_FMT_MAX_N) return -EINVAL;
  if (p->dtype == GS_DTYPE_BOOL) return 0; /* bits and group are fixed by the format */
  if ((unsigned)p->dtype > GS_DTYPE_BF16 || p->bits < 1 || p->bits > 8) return -EINVAL;
  if (p->group < 32 || p->group > 65536 || p->group % 32 != 0) return -EINVAL;
  return 0;
}

size_t gs_codec_size(const gs_codec_params *p) {
  gs__layout l;
  if (gs__layout_of(p, &l) != 0) return 0;
  return (size_t)l.total;
}

/* ---- compress ---- */

typedef struct gs__job {
  const gs_codec_params *p;
  const gs__layout *l;
  const void *src;
  uint8_t *dst;
  uint64_t g0, g1; /* group range [g0, g1) */
  uint64_t nonfinite;
  pthread_t tid;
} gs__job;

/* Min and max of elements [i0, i1) and whether one of them is Inf/NaN. Plain loops with
 * branch-free bodies so that the compiler can vectorize them. */
static int gs__minmax(const void *src, unsigned dtype, uint64_t i0, uint64_t i1, float *mn,
                      float *mx) {
  float lo = 3.4028234663852886e38f, hi = -3.4028234663852886e38f;
  uint32_t bad = 0;
  if (dtype == 0) {
    const float *s = (const float *)src;
    for (uint64_t i = i0; i < i1; i++) {
      float x = s[i];
      lo = x < lo ? x : lo;
      hi = x > hi ? x : hi;
      bad |= (gs__f2u(x) & 0x7f800000u) == 0x7f800000u;
    }
  } else {
    const uint16_t *s = (const uint16_t *)src;
    for (uint64_t i = i0; i < i1; i++) {
      float x = gs__load(s, i, dtype);
      lo = x < lo ? x : lo;
      hi = x > hi ? x : hi;
      bad |= (gs__f2u(x) & 0x7f800000u) == 0x7f800000u;
    }
  }
  *mn = lo;
  *mx = hi;
  return bad != 0;
}

static void gs__store_packed(uint8_t *out, uint64_t v, unsigned nbytes) {
  for (unsigned b = 0; b < nbytes; b++) out[b] = (uint8_t)(v >> (8 * b));
}

static void gs__compress_group(gs__job *j, uint64_t g) {
  const gs_codec_params *p = j->p;
  const gs__layout *l = j->l;
  uint64_t i0 = g * p->group, i1 = i0 + p->group < p->n ? i0 + p->group : p->n;
  float mn, mx;
  gs__meta m;
  int bad = gs__minmax(j->src, p->dtype, i0, i1, &mn, &mx);
  gs__meta_compute(mn, mx, bad, p->bits, &m);
  j->nonfinite += m.nonfinite;
  uint8_t *meta = j->dst + l->meta_off + g * GS_FMT_META_BYTES;
  meta[0] = (uint8_t)m.min_field;
  meta[1] = (uint8_t)(m.min_field >> 8);
  meta[2] = (uint8_t)m.step_field;
  meta[3] = (uint8_t)(m.step_field >> 8);
  uint32_t kmax = (1u << p->bits) - 1u;
  for (uint64_t c = i0 / 8; c * 8 < i1; c++) {
    uint32_t r[4], q[8];
    gs__chunk_random(p->seed, p->tensor_id, c, r);
    for (unsigned e = 0; e < 8; e++) {
      uint64_t i = c * 8 + e;
      q[e] = i < i1 ? gs__quant(gs__load(j->src, i, p->dtype), &m, gs__uniform(r, e), kmax) : 0;
    }
    gs__store_packed(j->dst + l->data_off + c * p->bits, gs__pack8(q, p->bits), p->bits);
  }
}

static void gs__compress_bool(gs__job *j) {
  const uint8_t *s = (const uint8_t *)j->src;
  uint8_t *out = j->dst + j->l->data_off;
  uint64_t n = j->p->n;
  for (uint64_t c = j->g0; c < j->g1; c++) {
    uint8_t v = 0;
    for (unsigned e = 0; e < 8 && c * 8 + e < n; e++) v |= (uint8_t)((s[c * 8 + e] != 0) << e);
    out[c] = v;
  }
}

static void *gs__compress_run(void *arg) {
  gs__job *j = (gs__job *)arg;
  if (j->p->dtype == GS_DTYPE_BOOL) {
    gs__compress_bool(j);
    return NULL;
  }
  for (uint64_t g = j->g0; g < j->g1; g++) gs__compress_group(j, g);
  return NULL;
}

/* ---- decompress ---- */

static void gs__decompress_group(gs__job *j, uint64_t g) {
  const gs_codec_params *p = j->p;
  const gs__layout *l = j->l;
  const uint8_t *src = (const uint8_t *)j->src;
  uint64_t i0 = g * p->group, i1 = i0 + p->group < p->n ? i0 + p->group : p->n;
  const uint8_t *meta = src + l->meta_off + g * GS_FMT_META_BYTES;
  gs__meta m;
  gs__meta_decode((uint16_t)(meta[0] | meta[1] << 8), (uint16_t)(meta[2] | meta[3] << 8), &m);
  unsigned bits = p->bits;
  for (uint64_t c = i0 / 8; c * 8 < i1; c++) {
    const uint8_t *in = src + l->data_off + c * bits;
    uint64_t v = 0;
    for (unsigned b = 0; b < bits; b++) v |= (uint64_t)in[b] << (8 * b);
    unsigned cnt = i1 - c * 8 < 8 ? (unsigned)(i1 - c * 8) : 8;
    for (unsigned e = 0; e < cnt; e++) {
      float x = gs__dequant(gs__unpack1(v, e, bits), &m);
      uint64_t i = c * 8 + e;
      if (p->dtype == GS_DTYPE_F32)
        ((float *)j->dst)[i] = x;
      else if (p->dtype == GS_DTYPE_F16)
        ((uint16_t *)j->dst)[i] = gs__out_f16(x);
      else
        ((uint16_t *)j->dst)[i] = gs__out_bf16(x);
    }
  }
}

static void gs__decompress_bool(gs__job *j) {
  const uint8_t *in = (const uint8_t *)j->src + j->l->data_off;
  uint64_t n = j->p->n;
  for (uint64_t c = j->g0; c < j->g1; c++)
    for (unsigned e = 0; e < 8 && c * 8 + e < n; e++) j->dst[c * 8 + e] = (in[c] >> e) & 1u;
}

static void *gs__decompress_run(void *arg) {
  gs__job *j = (gs__job *)arg;
  if (j->p->dtype == GS_DTYPE_BOOL) {
    gs__decompress_bool(j);
    return NULL;
  }
  for (uint64_t g = j->g0; g < j->g1; g++) gs__decompress_group(j, g);
  return NULL;
}

/* ---- threading ---- */

#define GS__MAX_THREADS 64
#define GS__ELEMS_PER_THREAD (1u << 19)

static int gs__pick_threads(uint64_t n, int nthreads) {
  if (nthreads > 0) return nthreads < GS__MAX_THREADS ? nthreads : GS__MAX_THREADS;
  if (n < 2 * (uint64_t)GS__ELEMS_PER_THREAD) return 1;
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  uint64_t want = n / GS__ELEMS_PER_THREAD;
  if (cpus < 1) cpus = 1;
  if (want > (uint64_t)cpus) want = (uint64_t)cpus;
  return want > GS__MAX_THREADS ? GS__MAX_THREADS : (int)want;
}

/* Split `units` (groups, or bool bytes) into contiguous ranges, run fn on each, and sum the
 * non-finite counts. Runs inline when one thread suffices or a thread cannot be created. */
static uint64_t gs__parallel(gs__job *proto, uint64_t units, int nthreads, void *(*fn)(void *)) {
  gs__job jobs[GS__MAX_THREADS];
  if ((uint64_t)nthreads > units) nthreads = units > 0 ? (int)units : 1;
  int started[GS__MAX_THREADS] = {0};
  for (int t = 0; t < nthreads; t++) {
    jobs[t] = *proto;
    jobs[t].g0 = units * (uint64_t)t / (uint64_t)nthreads;
    jobs[t].g1 = units * (uint64_t)(t + 1) / (uint64_t)nthreads;
    jobs[t].nonfinite = 0;
  }
  for (int t = 1; t < nthreads; t++) started[t] = pthread_create(&jobs[t].tid, NULL, fn, &jobs[t]) == 0;
  fn(&jobs[0]);
  uint64_t nonfinite = jobs[0].nonfinite;
  for (int t = 1; t < nthreads; t++) {
    if (started[t])
      pthread_join(jobs[t].tid, NULL);
    else
      fn(&jobs[t]);
    nonfinite += jobs[t].nonfinite;
  }
  return nonfinite;
}

int gs_compress_cpu(const gs_codec_params *p, const void *src, void *dst, int nthreads) {
  gs__layout l;
  if (src == NULL || dst == NULL || gs__layout_of(p, &l) != 0) return -EINVAL;
  uint8_t *out = (uint8_t *)dst;
  gs__layout_write_header(&l, out);
  /* The gap between the metas and the 16-byte aligned data is part of the format: zeros. */
  memset(out + l.meta_off + l.ngroups * GS_FMT_META_BYTES, 0,
         (size_t)(l.data_off - l.meta_off - l.ngroups * GS_FMT_META_BYTES));
  gs__job proto = {.p = &l.p, .l = &l, .src = src, .dst = out};
  uint64_t units = l.p.dtype == GS_DTYPE_BOOL ? (l.p.n + 7) / 8 : l.ngroups;
  uint64_t bad = gs__parallel(&proto, units, gs__pick_threads(l.p.n, nthreads), gs__compress_run);
  uint32_t bad32 = bad > 0xffffffffu ? 0xffffffffu : (uint32_t)bad;
  memcpy(out + offsetof(gs__header, nonfinite), &bad32, sizeof bad32);
  return bad ? -ERANGE : 0;
}

int gs_decompress_cpu(const void *src, size_t src_bytes, void *dst, const gs_codec_params *expect,
                      int nthreads) {
  gs__layout l;
  if (src == NULL || dst == NULL) return -EINVAL;
  int rc = gs__layout_read_header(src, src_bytes, &l);
  if (rc != 0) return rc;
  if (expect != NULL && (expect->n != l.p.n || expect->dtype != l.p.dtype)) return -EINVAL;
  gs__job proto = {.p = &l.p, .l = &l, .src = src, .dst = (uint8_t *)dst};
  uint64_t units = l.p.dtype == GS_DTYPE_BOOL ? (l.p.n + 7) / 8 : l.ngroups;
  gs__parallel(&proto, units, gs__pick_threads(l.p.n, nthreads), gs__decompress_run);
  return 0;
}
