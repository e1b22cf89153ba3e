/* codec_cpu.c: the CPU twin of the GPU codec — parameters, buffer layout, compress, decompress. */
#include "gactshim.h"
#include "kernels.h"

#include <errno.h>
#include <string.h>

int gs_codec_validate(const gs_codec_params *p) {
  if (p == NULL || p->n > GS_FMT_MAX_N) return -EINVAL;
  if (p->flags & ~GS_FMT_FLAGS_KNOWN) return -EINVAL;
  if (p->dtype == GS_DTYPE_BOOL) return p->flags ? -EINVAL : 0; /* bits, group: fixed */
  if ((unsigned)p->dtype > GS_DTYPE_BF16 || p->bits < 1 || p->bits > 8) return -EINVAL;
  if (p->group < 32 || p->group > 65536 || p->group % 32 != 0) return -EINVAL;
  return 0;
}

size_t gs_codec_size(const gs_codec_params *p) {
  gs__layout l;
  if (gs__layout_of(p, &l) != 0) return 0;
  return (size_t)l.total;
}

/* ---- which inner loops run ---- */

/* The instruction set of the inner loops: a property of the CPU, picked on first use. Global
 * because every call would pick the same; tests force each path with gs__codec_isa_set. */
static int gs__isa = -1;

int gs__codec_isa(void) {
  int isa = __atomic_load_n(&gs__isa, __ATOMIC_RELAXED);
  if (__builtin_expect(isa >= 0, 1)) return isa;
  isa = gs__avx2_supported() ? GS__ISA_AVX2 : GS__ISA_PORTABLE;
  __atomic_store_n(&gs__isa, isa, __ATOMIC_RELAXED);
  return isa;
}

int gs__codec_isa_set(int isa) {
  if (isa == GS__ISA_AUTO) {
    __atomic_store_n(&gs__isa, -1, __ATOMIC_RELAXED);
    return 0;
  }
  if (isa != GS__ISA_PORTABLE && (isa != GS__ISA_AVX2 || !gs__avx2_supported())) return -ENOTSUP;
  __atomic_store_n(&gs__isa, isa, __ATOMIC_RELAXED);
  return 0;
}

/* ---- compress ---- */

typedef struct gs__job {
  int isa; /* GS__ISA_*, read once per call so that one call uses one path */
  const gs_codec_params *p;
  const gs__layout *l;
  const void *src;
  uint8_t *dst;
  uint64_t g0, g1; /* group range [g0, g1) */
  uint64_t nonfinite;
} gs__job;

#define GS__BLOCK 256u /* elements converted and quantized at a time: stack arrays, L1-resident */

/* Elements [i, i+cnt) as fp32: the input itself for f32, else converted into buf (exactly: every
 * fp16 and bf16 value is an fp32 value). */
static const float *gs__as_f32(const gs__job *j, uint64_t i, unsigned cnt, float *buf) {
  unsigned dtype = j->p->dtype;
  if (dtype == GS_DTYPE_F32) return (const float *)j->src + i;
  const uint16_t *s = (const uint16_t *)j->src + i;
  if (dtype == GS_DTYPE_F16 && j->isa == GS__ISA_AVX2 && gs__avx2_f16_to_f32(s, cnt, buf) == 0)
    return buf;
  if (dtype == GS_DTYPE_BF16)
    for (unsigned e = 0; e < cnt; e++) buf[e] = gs__bf16_to_f32(s[e]);
  else
    for (unsigned e = 0; e < cnt; e++) buf[e] = gs__f16_to_f32(s[e]);
  return buf;
}

/* Running min/max of x[0..cnt) and whether one is Inf/NaN. Eight independent lanes (min and max
 * are exact, and -0/+0 is folded later, so the order does not matter) let the compiler use SIMD
 * without -ffast-math. */
static int gs__minmax(const float *x, unsigned cnt, float *mn, float *mx) {
  float lo[8], hi[8];
  uint32_t bad[8] = {0};
  unsigned e = 0;
  for (unsigned l = 0; l < 8; l++) lo[l] = *mn, hi[l] = *mx;
  for (; e + 8 <= cnt; e += 8)
    for (unsigned l = 0; l < 8; l++) {
      float v = x[e + l];
      lo[l] = v < lo[l] ? v : lo[l];
      hi[l] = v > hi[l] ? v : hi[l];
      bad[l] |= (gs__f2u(v) & 0x7f800000u) == 0x7f800000u;
    }
  for (unsigned l = 0; e + l < cnt; l++) {
    float v = x[e + l];
    lo[l] = v < lo[l] ? v : lo[l];
    hi[l] = v > hi[l] ? v : hi[l];
    bad[l] |= (gs__f2u(v) & 0x7f800000u) == 0x7f800000u;
  }
  for (unsigned l = 1; l < 8; l++) {
    lo[0] = lo[l] < lo[0] ? lo[l] : lo[0];
    hi[0] = hi[l] > hi[0] ? hi[l] : hi[0];
    bad[0] |= bad[l];
  }
  *mn = lo[0];
  *mx = hi[0];
  return bad[0] != 0;
}

static void gs__store_packed(uint8_t *out, uint64_t v, unsigned nbytes) {
  for (unsigned b = 0; b < nbytes; b++) out[b] = (uint8_t)(v >> (8 * b));
}

/* The sign plane's bytes of x[0..cnt), the elements from index i (a multiple of 8). */
static void gs__emit_signs(const gs__job *j, uint64_t i, const float *x, unsigned cnt) {
  uint8_t *out = j->dst + j->l->mask_off + i / 8;
  unsigned c = j->isa == GS__ISA_AVX2 ? gs__avx2_signs(x, cnt / 8, out) : 0;
  for (; c * 8 < cnt; c++) out[c] = (uint8_t)gs__sign8(x + c * 8, cnt - c * 8 < 8 ? cnt - c * 8 : 8);
}

/* Quantizes and packs x[0..cnt), the elements from index i (a multiple of 8). */
static void gs__emit_block(const gs__job *j, const gs__meta *m, uint64_t i, const float *x,
                           unsigned cnt) {
  const gs_codec_params *p = j->p;
  if (p->flags & GS_FMT_FLAG_RELU) gs__emit_signs(j, i, x, cnt);
  if (j->isa == GS__ISA_AVX2) { /* whole 64- and 32-element runs; the tail below */
    unsigned done = gs__avx2_emit(x, cnt, m, p->seed, p->tensor_id, i / 8, p->bits,
                                  j->dst + j->l->data_off + i / 8 * p->bits);
    i += done, x += done, cnt -= done;
    if (cnt == 0) return;
  }
  float u[GS__BLOCK];
  uint32_t q[GS__BLOCK], kmax = (1u << p->bits) - 1u;
  unsigned nch = (cnt + 7) / 8;
  for (unsigned c = 0; c < nch; c++) {
    uint32_t r[4];
    gs__chunk_random(p->seed, p->tensor_id, i / 8 + c, r);
    for (unsigned e = 0; e < 8; e++) u[c * 8 + e] = gs__uniform(r, e);
  }
  for (unsigned e = 0; e < cnt; e++) q[e] = gs__quant(x[e], m, u[e], kmax);
  for (unsigned e = cnt; e < nch * 8; e++) q[e] = 0;
  uint8_t *out = j->dst + j->l->data_off + i / 8 * p->bits;
  for (unsigned c = 0; c < nch; c++)
    gs__store_packed(out + c * p->bits, gs__pack8(q + c * 8, p->bits), p->bits);
}

static void gs__put_meta(const gs__job *j, uint64_t g, const gs__meta *m) {
  uint8_t *meta = j->dst + j->l->meta_off + g * GS_FMT_META_BYTES;
  meta[0] = (uint8_t)m->min_field;
  meta[1] = (uint8_t)(m->min_field >> 8);
  meta[2] = (uint8_t)m->step_field;
  meta[3] = (uint8_t)(m->step_field >> 8);
}

static void gs__compress_group(gs__job *j, uint64_t g) {
  const gs_codec_params *p = j->p;
  uint64_t i0 = g * p->group, i1 = i0 + p->group < p->n ? i0 + p->group : p->n;
  float buf[GS__BLOCK], mn = 3.4028234663852886e38f, mx = -3.4028234663852886e38f;
  const float *x = NULL;
  int bad = 0;
  for (uint64_t i = i0; i < i1; i += GS__BLOCK) {
    unsigned cnt = i1 - i < GS__BLOCK ? (unsigned)(i1 - i) : GS__BLOCK;
    x = gs__as_f32(j, i, cnt, buf);
    bad |= j->isa == GS__ISA_AVX2 ? gs__avx2_minmax(x, cnt, &mn, &mx) : gs__minmax(x, cnt, &mn, &mx);
  }
  gs__meta m;
  gs__meta_compute(mn, mx, bad, p->bits, &m);
  j->nonfinite += m.nonfinite;
  gs__put_meta(j, g, &m);
  for (uint64_t i = i0; i < i1; i += GS__BLOCK) {
    unsigned cnt = i1 - i < GS__BLOCK ? (unsigned)(i1 - i) : GS__BLOCK;
    if (i1 - i0 > GS__BLOCK) x = gs__as_f32(j, i, cnt, buf); /* else still there */
    gs__emit_block(j, &m, i, x, cnt);
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

/* The metas of groups g .. g+3 in one SIMD pass (scalar where it declines), written to the
 * output. Returns 0, or -1 (nothing written) when one of the four is not finite or has a range no
 * meta format holds: gs__compress_group then does them one by one, flagging and counting it. */
static int gs__put_metas4(gs__job *j, uint64_t g, const float mn[4], const float mx[4],
                          const int bad[4], gs__meta m[4]) {
  unsigned bits = j->p->bits;
  if (bad[0] | bad[1] | bad[2] | bad[3]) return -1;
  if (gs__avx2_meta4(mn, mx, bad, bits, m) != 0)
    for (unsigned k = 0; k < 4; k++) gs__meta_compute(mn[k], mx[k], bad[k], bits, &m[k]);
  for (unsigned k = 0; k < 4; k++)
    if (m[k].nonfinite) return -1;
  for (unsigned k = 0; k < 4; k++) gs__put_meta(j, g + k, &m[k]);
  return 0;
}

/* Groups g .. g+3 of 32 (8 bits' groups): one Philox call and two 8-lane passes for the four,
 * where each alone computed Philox for 8 chunks to use 4 (8-bit fp32 compress was 4x slower per
 * element than with groups of 256). */
static unsigned gs__compress_g32x4(gs__job *j, uint64_t g) {
  const gs_codec_params *p = j->p;
  float buf[128], mn[4], mx[4];
  int bad[4];
  gs__meta m[4];
  const float *x = gs__as_f32(j, g * 32, 128, buf);
  gs__avx2_minmax_g32x4(x, mn, mx, bad);
  if (gs__put_metas4(j, g, mn, mx, bad, m) != 0) return 0;
  if (p->flags & GS_FMT_FLAG_RELU) gs__emit_signs(j, g * 32, x, 128);
  uint8_t *out = j->dst + j->l->data_off + g * 4 * p->bits;
  gs__avx2_emit_g32x4(x, m, p->seed, p->tensor_id, g * 4, p->bits, out);
  return 4;
}

/* Groups g .. g+3 of up to GS__BLOCK elements each, the metas four at a time: the scalar meta
 * (two directed fp16/bf16 roundings and two IEEE divisions, ~30 ns) was ~10 % of fp32 4-bit
 * compress in groups of 256. */
static unsigned gs__compress_gnx4(gs__job *j, uint64_t g) {
  unsigned n = j->p->group;
  float buf[4][GS__BLOCK], mn[4], mx[4];
  const float *x[4];
  int bad[4];
  gs__meta m[4];
  for (unsigned k = 0; k < 4; k++) {
    mn[k] = 3.4028234663852886e38f, mx[k] = -3.4028234663852886e38f;
    x[k] = gs__as_f32(j, (g + k) * n, n, buf[k]);
    bad[k] = gs__avx2_minmax(x[k], n, &mn[k], &mx[k]);
  }
  if (gs__put_metas4(j, g, mn, mx, bad, m) != 0) return 0;
  size_t esz = gs_dtype_bytes(j->p->dtype);
  const char *next = (const char *)j->src + (g + 4) * n * esz;
  for (unsigned k = 0; k < 4; k++) {
    /* The next four groups' input, a group's worth per emit: read in one burst by the min/max
     * pass, it stalled there (min/max 1.5x slower than when each group's read overlapped the
     * previous group's emit). A hint: no fault past the end. */
    for (size_t b = 0; b < n * esz; b += 64) __builtin_prefetch(next + k * n * esz + b);
    gs__emit_block(j, &m[k], (g + k) * n, x[k], n);
  }
  return 4;
}

/* Groups g .. g+3 four at a time on the AVX2 path when they are whole and fit a block. Returns
 * the groups done: 4, or 0 (nothing written) for gs__compress_group to do them one by one. */
static unsigned gs__compress_x4(gs__job *j, uint64_t g) {
  const gs_codec_params *p = j->p;
  if (j->isa != GS__ISA_AVX2 || p->group > GS__BLOCK || g + 4 > j->g1 || (g + 4) * p->group > p->n)
    return 0;
  return p->group == 32 ? gs__compress_g32x4(j, g) : gs__compress_gnx4(j, g);
}

/* Range i of the array of jobs at arg (a gs__pool_fn). */
static void gs__compress_run(void *arg, int i) {
  gs__job *j = (gs__job *)arg + i;
  if (j->p->dtype == GS_DTYPE_BOOL) {
    gs__compress_bool(j);
    return;
  }
  for (uint64_t g = j->g0; g < j->g1;) {
    unsigned done = gs__compress_x4(j, g);
    if (done == 0) gs__compress_group(j, g), done = 1;
    g += done;
  }
}

/* ---- decompress ---- */

/* The chunks from c0 of a group ending at element i1 that the AVX2 loop decodes: whole chunks
 * with 8 bytes readable at their start (the buffer's last few are left to the scalar loop), of a
 * finite group. Returns how many it did. */
static uint64_t gs__decode_wide(const gs__job *j, const gs__meta *m, uint64_t c0, uint64_t i1) {
  const gs__layout *l = j->l;
  unsigned bits = l->p.bits, esize = l->p.dtype == GS_DTYPE_F32 ? 4 : 2;
  uint64_t nch = i1 / 8 - c0;
  while (nch && l->data_off + (c0 + nch - 1) * bits + 8 > l->total) nch--;
  if (nch == 0) return 0;
  const uint8_t *in = (const uint8_t *)j->src + l->data_off + c0 * bits;
  const uint8_t *signs = NULL;
  if (l->p.flags & GS_FMT_FLAG_RELU) signs = (const uint8_t *)j->src + l->mask_off + c0;
  return gs__avx2_decode(in, signs, nch, bits, m, l->p.dtype, j->dst + c0 * 8 * esize);
}

/* Output bit pattern of level q; with the sign plane, of an element whose sign bit is pos (a
 * positive element keeps its level, see gs__sign_apply; any other decodes to +0). */
static uint32_t gs__level_bits(const gs__meta *m, unsigned q, unsigned dtype, int sign,
                               unsigned pos) {
  float x = gs__dequant(q, m);
  uint32_t b = dtype == GS_DTYPE_F32   ? gs__f2u(x)
               : dtype == GS_DTYPE_F16 ? gs__out_f16(x)
                                       : gs__out_bf16(x);
  if (!sign) return b;
  return pos ? gs__sign_apply(b, 1, dtype) : 0u;
}

/* A group decodes to at most 2^bits distinct values: where it has at least as many elements as
 * levels, each level is converted once into a table (the same function of q as everywhere, so the
 * same bytes) and decoding is a lookup per element; a smaller group (8 bits' groups of 32: 256
 * levels for 32 elements) converts its elements one by one instead. The AVX2 loop needs no table:
 * it converts in the lanes (sign planes too), faster than a gather; non-finite groups take the
 * scalar loop. */
static void gs__decompress_group(gs__job *j, uint64_t g) {
  const gs_codec_params *p = j->p;
  const gs__layout *l = j->l;
  const uint8_t *src = (const uint8_t *)j->src;
  uint64_t i0 = g * p->group, i1 = i0 + p->group < p->n ? i0 + p->group : p->n;
  const uint8_t *meta = src + l->meta_off + g * GS_FMT_META_BYTES;
  gs__meta m;
  gs__meta_decode((uint16_t)(meta[0] | meta[1] << 8), (uint16_t)(meta[2] | meta[3] << 8), &m);
  unsigned bits = p->bits, levels = 1u << bits;
  int sign = (p->flags & GS_FMT_FLAG_RELU) && !m.nonfinite;
  int wide = j->isa == GS__ISA_AVX2 && !m.nonfinite;
  int table = levels <= i1 - i0 && !wide;
  uint32_t lut[512]; /* [pos * levels + q] */
  for (unsigned q = 0; table && q < levels; q++) {
    lut[q] = gs__level_bits(&m, q, p->dtype, sign, 0);
    lut[levels + q] = gs__level_bits(&m, q, p->dtype, sign, 1);
  }
  uint64_t c = i0 / 8;
  if (wide) c += gs__decode_wide(j, &m, c, i1);
  for (; c * 8 < i1; c++) {
    const uint8_t *in = src + l->data_off + c * bits;
    uint64_t v = 0;
    for (unsigned b = 0; b < bits; b++) v |= (uint64_t)in[b] << (8 * b);
    unsigned cnt = i1 - c * 8 < 8 ? (unsigned)(i1 - c * 8) : 8;
    unsigned s = sign ? src[l->mask_off + c] : 0u;
    for (unsigned e = 0; e < cnt; e++) {
      unsigned q = gs__unpack1(v, e, bits), pos = (s >> e) & 1u;
      uint32_t out = table ? lut[pos * levels + q] : gs__level_bits(&m, q, p->dtype, sign, pos);
      if (p->dtype == GS_DTYPE_F32) ((uint32_t *)j->dst)[c * 8 + e] = out;
      else ((uint16_t *)j->dst)[c * 8 + e] = (uint16_t)out;
    }
  }
}

static void gs__decompress_bool(gs__job *j) {
  const uint8_t *in = (const uint8_t *)j->src + j->l->data_off;
  uint64_t n = j->p->n;
  for (uint64_t c = j->g0; c < j->g1; c++)
    for (unsigned e = 0; e < 8 && c * 8 + e < n; e++) j->dst[c * 8 + e] = (in[c] >> e) & 1u;
}

static void gs__decompress_run(void *arg, int i) {
  gs__job *j = (gs__job *)arg + i;
  if (j->p->dtype == GS_DTYPE_BOOL) {
    gs__decompress_bool(j);
    return;
  }
  for (uint64_t g = j->g0; g < j->g1; g++) gs__decompress_group(j, g);
}

/* ---- threading ---- */

#define GS__ELEMS_PER_THREAD (1u << 19)

/* Ranges to split a call into: nthreads if given, else one per 2^19 elements, at most one per lane
 * of the worker pool (the CPUs the process may use). Small tensors never start the pool. */
static int gs__pick_threads(uint64_t n, int nthreads) {
  if (nthreads > 0) return nthreads < GS__MAX_THREADS ? nthreads : GS__MAX_THREADS;
  if (n < 2 * (uint64_t)GS__ELEMS_PER_THREAD) return 1;
  uint64_t want = n / GS__ELEMS_PER_THREAD, lanes = (uint64_t)gs__pool_lanes();
  return (int)(want < lanes ? want : lanes);
}

/* Split `units` (groups, or bool bytes) into contiguous ranges, run fn on each (on the worker
 * pool), and sum the non-finite counts. The ranges depend on units and nthreads only, and each is
 * computed alone, so the bytes do not depend on which thread ran which range. */
static uint64_t gs__parallel(gs__job *proto, uint64_t units, int nthreads, gs__pool_fn fn) {
  gs__job jobs[GS__MAX_THREADS];
  if ((uint64_t)nthreads > units) nthreads = units > 0 ? (int)units : 1;
  for (int t = 0; t < nthreads; t++) {
    jobs[t] = *proto;
    jobs[t].g0 = units * (uint64_t)t / (uint64_t)nthreads;
    jobs[t].g1 = units * (uint64_t)(t + 1) / (uint64_t)nthreads;
    jobs[t].nonfinite = 0;
  }
  gs__pool_run(fn, jobs, nthreads);
  uint64_t nonfinite = 0;
  for (int t = 0; t < nthreads; t++) nonfinite += jobs[t].nonfinite;
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
  gs__job proto = {.isa = gs__codec_isa(), .p = &l.p, .l = &l, .src = src, .dst = out};
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
  if (expect != NULL &&
      (expect->n != l.p.n || expect->dtype != l.p.dtype || expect->flags != l.p.flags))
    return -EINVAL;
  gs__job proto = {.isa = gs__codec_isa(), .p = &l.p, .l = &l, .src = src, .dst = (uint8_t *)dst};
  uint64_t units = l.p.dtype == GS_DTYPE_BOOL ? (l.p.n + 7) / 8 : l.ngroups;
  gs__parallel(&proto, units, gs__pick_threads(l.p.n, nthreads), gs__decompress_run);
  return 0;
}
