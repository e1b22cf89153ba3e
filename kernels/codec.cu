/* codec.cu: GPU kernels of the codec; the arithmetic is codec_core.h, shared with the CPU twin. */
#include "codec_core.h"

#define GS_FULL_MASK 0xffffffffu

/* Header of a compress call; `nonfinite` starts at 0 and gs_k_compress adds to it. Launched
 * before gs_k_compress on the same stream, so the atomics see the zero. */
#if !defined(GS_PTX_PROBES) /* the probe build holds only the probes */
extern "C" __global__ void gs_k_header(gs__kparams k) {
  if (threadIdx.x != 0 || blockIdx.x != 0) return;
  uint32_t *h = (uint32_t *)k.dst;
  h[0] = GS_FMT_MAGIC;
  h[1] = gs__header_word1(k.dtype, k.bits, k.flags);
  h[2] = k.group;
  h[3] = k.check;
  h[4] = (uint32_t)k.n;
  h[5] = (uint32_t)(k.n >> 32);
  h[6] = 0;
  h[7] = 0;
  /* The gap between the metas and the 16-byte aligned data is zero, as on the CPU. */
  for (uint64_t i = k.meta_off + k.ngroups * GS_FMT_META_BYTES; i < k.data_off; i++)
    ((uint8_t *)k.dst)[i] = 0;
}
#endif

/* Kernels are specialised by input dtype DT (0 f32, 1 f16, 2 bf16) and width BITS (templates):
 * the element loads, the level arithmetic and the packed stores are straight-line code for each. */

/* Eight elements at s (16-byte aligned) as fp32: one or two 128-bit loads. */
template <int DT> __device__ __forceinline__ void gs__load8(const void *s, float x[8]) {
  if (DT == 0) {
    float4 a = __ldg((const float4 *)s), b = __ldg((const float4 *)s + 1);
    x[0] = a.x, x[1] = a.y, x[2] = a.z, x[3] = a.w;
    x[4] = b.x, x[5] = b.y, x[6] = b.z, x[7] = b.w;
    return;
  }
  uint4 v = __ldg((const uint4 *)s);
  uint32_t w[4] = {v.x, v.y, v.z, v.w};
  for (unsigned j = 0; j < 8; j++) {
    uint16_t h = (uint16_t)(w[j >> 1] >> ((j & 1u) * 16u));
    x[j] = DT == 1 ? gs__cvt_f16_to_f32(h) : gs__bf16_to_f32(h);
  }
}

/* Elements [c*8, c*8+8) of the input as fp32 (cnt of them exist; the rest 0). */
template <int DT> __device__ __forceinline__ unsigned gs__load_chunk(const gs__kparams &k, uint64_t c,
                                                                     float x[8]) {
  uint64_t i0 = c * 8;
  unsigned cnt = k.n - i0 < 8 ? (unsigned)(k.n - i0) : 8u;
  const uint8_t *s = (const uint8_t *)k.src + i0 * (DT == 0 ? 4 : 2);
  if (cnt == 8 && ((uintptr_t)s & 15u) == 0) {
    gs__load8<DT>(s, x);
    return cnt;
  }
  for (unsigned j = 0; j < 8; j++) x[j] = j < cnt ? gs__load(s, j, DT) : 0.0f;
  return cnt;
}

/* `BITS` bytes at p, which is aligned to the largest power of two dividing BITS. */
template <int BITS> __device__ __forceinline__ void gs__store_packed(uint8_t *p, uint64_t v) {
  if (BITS == 8) {
    *(uint64_t *)p = v;
  } else if (BITS == 4) {
    *(uint32_t *)p = (uint32_t)v;
  } else if ((BITS & 1) == 0) {
    for (unsigned b = 0; b < BITS; b += 2) *(uint16_t *)(p + b) = (uint16_t)(v >> (8 * b));
  } else {
    for (unsigned b = 0; b < BITS; b++) p[b] = (uint8_t)(v >> (8 * b));
  }
}

template <int BITS> __device__ __forceinline__ uint64_t gs__load_packed(const uint8_t *p) {
  uint64_t v = 0;
  if (BITS == 8) {
    v = *(const uint64_t *)p;
  } else if (BITS == 4) {
    v = *(const uint32_t *)p;
  } else if ((BITS & 1) == 0) {
    for (unsigned b = 0; b < BITS; b += 2) v |= (uint64_t)*(const uint16_t *)(p + b) << (8 * b);
  } else {
    for (unsigned b = 0; b < BITS; b++) v |= (uint64_t)p[b] << (8 * b);
  }
  return v;
}

/* Where min.NaN/max.NaN exist (sm_80+, and the emulator unless GS_EMU_PRE_SM80 makes it play an
 * older GPU), min and max carry NaN along, and Inf and -Inf are extremes anyway: a group holds
 * Inf/NaN exactly when its reduced min or max is not finite, so the flag is read once per group
 * instead of tested per element (2.3-3 instructions per element fewer in the PTX than
 * compare-and-select plus a magnitude maximum). -0/+0 may come out in another order than on the
 * CPU twin: gs__meta_compute folds -0 first, so the meta is the same. */
#if (!defined(__CUDA_ARCH__) && !defined(GS_EMU_PRE_SM80)) || __CUDA_ARCH__ >= 800
#define GS__NAN_MINMAX 1
__device__ __forceinline__ float gs__min_nan(float a, float b) {
#if defined(__CUDA_ARCH__)
  asm("min.NaN.f32 %0, %0, %1;" : "+f"(a) : "f"(b));
  return a;
#else
  return a != a ? a : b != b ? b : a < b ? a : b;
#endif
}
__device__ __forceinline__ float gs__max_nan(float a, float b) {
#if defined(__CUDA_ARCH__)
  asm("max.NaN.f32 %0, %0, %1;" : "+f"(a) : "f"(b));
  return a;
#else
  return a != a ? a : b != b ? b : a > b ? a : b;
#endif
}
#else
#define GS__NAN_MINMAX 0
#endif

/* Running min/max of the first cnt elements of x, and (without NaN-carrying min/max) the
 * non-finite flag; with them, gs__warp_reduce sets the flag. */
__device__ __forceinline__ void gs__minmax8(const float x[8], unsigned cnt, float *mn, float *mx,
                                            int *bad) {
#if GS__NAN_MINMAX
  (void)bad;
  for (unsigned j = 0; j < 8; j++)
    if (j < cnt) *mn = gs__min_nan(x[j], *mn), *mx = gs__max_nan(x[j], *mx);
#else
  uint32_t amax = 0; /* largest |x| as bits: Inf and NaN are the patterns >= 0x7f800000 */
  for (unsigned j = 0; j < 8; j++)
    if (j < cnt) {
      *mn = x[j] < *mn ? x[j] : *mn;
      *mx = x[j] > *mx ? x[j] : *mx;
      uint32_t a = gs__f2u(x[j]) & 0x7fffffffu;
      amax = a > amax ? a : amax;
    }
  *bad |= amax >= 0x7f800000u;
#endif
}

/* Min/max/flag over `width` lanes (a power of two; segments of a warp reduce independently), so
 * that every lane of a group's segment holds the group's values: the meta is then computed once
 * per lane for all the chunks that lane holds, in lockstep with the other lanes. */
__device__ __forceinline__ void gs__warp_reduce(float *mn, float *mx, int *bad, unsigned width) {
  for (unsigned off = width >> 1; off > 0; off >>= 1) {
    float a = __shfl_xor_sync(GS_FULL_MASK, *mn, off), b = __shfl_xor_sync(GS_FULL_MASK, *mx, off);
#if GS__NAN_MINMAX
    *mn = gs__min_nan(a, *mn);
    *mx = gs__max_nan(b, *mx);
#else
    *bad |= __shfl_xor_sync(GS_FULL_MASK, *bad, off);
    *mn = a < *mn ? a : *mn;
    *mx = b > *mx ? b : *mx;
#endif
  }
#if GS__NAN_MINMAX
  *bad |= gs__nonfinite(*mn) | gs__nonfinite(*mx);
#endif
}

/* Levels of 8 elements (cnt exist) packed LSB-first: straight-line for a full chunk. */
template <int BITS> __device__ __forceinline__ uint64_t gs__quant8(const float x[8], unsigned cnt,
                                                                   const gs__meta *m,
                                                                   const uint32_t r[4]) {
  uint32_t q[8];
  for (unsigned j = 0; j < 8; j++)
    q[j] = j < cnt ? gs__quant(x[j], m, gs__uniform(r, j), (1u << BITS) - 1u) : 0u;
  return gs__pack8(q, BITS);
}

/* Quantize and pack chunk c (cnt elements in x) with the group meta m. */
template <int BITS> __device__ __forceinline__ void gs__emit_chunk(const gs__kparams &k, uint64_t c,
                                                                   const float x[8], unsigned cnt,
                                                                   const gs__meta *m) {
  uint32_t r[4];
  gs__chunk_random(k.seed, k.tensor_id, c, r);
  gs__store_packed<BITS>((uint8_t *)k.dst + k.data_off + c * BITS, gs__quant8<BITS>(x, cnt, m, r));
  if (k.flags & GS_FMT_FLAG_RELU) ((uint8_t *)k.dst)[k.mask_off + c] = (uint8_t)gs__sign8(x, cnt);
}

__device__ __forceinline__ void gs__emit_meta(const gs__kparams &k, uint64_t g, const gs__meta *m) {
  *(uint32_t *)((uint8_t *)k.dst + k.meta_off + g * GS_FMT_META_BYTES) =
      (uint32_t)m->min_field | ((uint32_t)m->step_field << 16);
  if (m->nonfinite) atomicAdd((unsigned *)((uint8_t *)k.dst + 24), 1u);
}

/* Bool: one thread packs 8 bytes into one byte. */
__device__ void gs__compress_bool(const gs__kparams &k) {
  uint64_t nbytes = (k.n + 7) / 8, stride = (uint64_t)gridDim.x * blockDim.x;
  const uint8_t *s = (const uint8_t *)k.src;
  for (uint64_t c = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; c < nbytes; c += stride) {
    uint32_t v = 0;
    if (c * 8 + 8 <= k.n && (((uintptr_t)(s + c * 8)) & 7u) == 0) {
      uint64_t w = __ldg((const unsigned long long *)(s + c * 8));
      for (unsigned e = 0; e < 8; e++) v |= (uint32_t)(((w >> (8 * e)) & 0xffu) != 0) << e;
    } else {
      for (unsigned e = 0; e < 8 && c * 8 + e < k.n; e++) v |= (uint32_t)(s[c * 8 + e] != 0) << e;
    }
    ((uint8_t *)k.dst)[k.data_off + c] = (uint8_t)v;
  }
}

/* Chunks each lane holds in registers: the group's meta (reduction, two candidate formats, one
 * division and one reciprocal) is paid once per GS__R chunks, i.e. per 32 elements. */
#define GS__R 4u

/* Groups of up to 32*GS__R chunks (G <= 1024): a segment of L = ceil(C/GS__R) lanes (rounded up to
 * a power of two) per group, each lane holding GS__R chunks, so the input is read once; segments
 * of one warp take consecutive groups (32/seg groups per warp). Chunk r*L + l of the group goes to
 * lane l: consecutive lanes read consecutive 32-byte chunks. */
template <int DT, int BITS> __device__ void gs__compress_seg(const gs__kparams &k, unsigned C) {
  unsigned L = (C + GS__R - 1) / GS__R, seg = 1, lane = threadIdx.x & 31u;
  while (seg < L) seg <<= 1;
  unsigned gpw = 32u / seg, l = lane % seg;
  uint64_t warp = ((uint64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  uint64_t nwarps = ((uint64_t)gridDim.x * blockDim.x) >> 5;
  for (uint64_t g0 = warp * gpw; g0 < k.ngroups; g0 += nwarps * gpw) {
    uint64_t g = g0 + lane / seg;
    bool active = g < k.ngroups && l < L;
    float x[GS__R][8], mn = gs__u2f(0x7f800000u), mx = gs__u2f(0xff800000u);
    unsigned cnt[GS__R];
    int bad = 0;
#pragma unroll
    for (unsigned r = 0; r < GS__R; r++) {
      uint64_t c = g * C + r * L + l;
      cnt[r] = 0;
      if (active && r * L + l < C && c * 8 < k.n) {
        cnt[r] = gs__load_chunk<DT>(k, c, x[r]);
        gs__minmax8(x[r], cnt[r], &mn, &mx, &bad);
      }
    }
    gs__warp_reduce(&mn, &mx, &bad, seg);
    if (!active) continue;
    gs__meta m;
    gs__meta_compute(mn, mx, bad, BITS, &m);
    if (l == 0) gs__emit_meta(k, g, &m);
#pragma unroll
    for (unsigned r = 0; r < GS__R; r++)
      if (cnt[r]) gs__emit_chunk<BITS>(k, g * C + r * L + l, x[r], cnt[r], &m);
  }
}

/* Larger groups: a warp per group, two sweeps (the second is served by L1/L2). */
template <int DT, int BITS> __device__ void gs__compress_large(const gs__kparams &k, unsigned C) {
  unsigned lane = threadIdx.x & 31u;
  uint64_t warp = ((uint64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  uint64_t nwarps = ((uint64_t)gridDim.x * blockDim.x) >> 5;
  for (uint64_t g = warp; g < k.ngroups; g += nwarps) {
    float x[8], mn = gs__u2f(0x7f800000u), mx = gs__u2f(0xff800000u);
    int bad = 0;
    for (uint64_t c = g * C + lane; c < (g + 1) * C && c * 8 < k.n; c += 32) {
      unsigned cnt = gs__load_chunk<DT>(k, c, x);
      gs__minmax8(x, cnt, &mn, &mx, &bad);
    }
    gs__warp_reduce(&mn, &mx, &bad, 32);
    gs__meta m;
    gs__meta_compute(mn, mx, bad, BITS, &m);
    if (lane == 0) gs__emit_meta(k, g, &m);
    for (uint64_t c = g * C + lane; c < (g + 1) * C && c * 8 < k.n; c += 32) {
      unsigned cnt = gs__load_chunk<DT>(k, c, x);
      gs__emit_chunk<BITS>(k, c, x, cnt, &m);
    }
  }
}

template <int DT, int BITS> __device__ void gs__compress_t(const gs__kparams &k) {
  unsigned C = k.group / 8;
  if (C <= 32 * GS__R)
    gs__compress_seg<DT, BITS>(k, C);
  else
    gs__compress_large<DT, BITS>(k, C);
}

/* The levels of chunk v decoded through gs__out_finite: for flagged groups (NaN) and for 16-bit
 * outputs of groups whose top level overflows fp32 (a bf16 meta near FLT_MAX, or a crafted
 * buffer), where Inf must stay Inf. Out of line, since real data rarely comes here, and returning
 * by value, so the caller's patterns stay in registers. */
struct gs__out8 {
  uint32_t o[8];
};
template <int DT, int BITS>
__device__ __noinline__ gs__out8 gs__decode_general(uint64_t v, gs__meta m) {
  gs__out8 r;
  uint32_t nan = DT == 0 ? 0x7fc00000u : DT == 1 ? 0x7e00u : 0x7fc0u; /* as gs__out_* give NaN */
  for (unsigned j = 0; j < 8; j++) {
    float y = gs__dequant(gs__unpack1(v, j, BITS), &m);
    r.o[j] = m.nonfinite ? nan : gs__out_finite(y, DT);
  }
  return r;
}

/* Decompress chunk c of group g with meta word mw: BITS-wide levels to output patterns. The
 * levels' values rise with the level (steps are >= 0, rounding is monotone), so when the top
 * level's is finite all are, and the saturation is a clamp before the conversion. */
template <int DT, int BITS> __device__ __forceinline__ void gs__decode_chunk(const gs__kparams &k,
                                                                             uint64_t c, uint32_t mw,
                                                                             bool ok, uint32_t o[8]) {
  const uint8_t *src = (const uint8_t *)k.src;
  gs__meta m;
  gs__meta_decode((uint16_t)mw, (uint16_t)(mw >> 16), &m);
  m.nonfinite |= !ok;
  uint64_t v = gs__load_packed<BITS>(src + k.data_off + c * BITS);
  bool sign = (k.flags & GS_FMT_FLAG_RELU) && !m.nonfinite;
  uint32_t s = sign ? src[k.mask_off + c] : 0u;
  /* fp32: a flagged group's levels are gs__dequant's NaN, the pattern gs__out_finite gives. */
  if (DT != 0 && (m.nonfinite || gs__nonfinite(gs__dequant((1u << BITS) - 1u, &m)))) {
    gs__out8 r = gs__decode_general<DT, BITS>(v, m);
    for (unsigned j = 0; j < 8; j++) o[j] = r.o[j];
  } else {
    for (unsigned j = 0; j < 8; j++) o[j] = gs__out_sat(gs__dequant(gs__unpack1(v, j, BITS), &m), DT);
  }
  if (sign)
    for (unsigned j = 0; j < 8; j++) o[j] = gs__sign_apply(o[j], (s >> j) & 1u, DT);
}

/* With k.report: the last block to finish publishes the header's non-finite count to the host-
 * mapped word, with the ready bit, and puts the header's block counter (bytes 28..31, zeroed by
 * gs_k_header) back to 0 as the format wants. The host reads the word: no sync, no event. */
__device__ __forceinline__ void gs__report(const gs__kparams &k) {
  __syncthreads();
  if (threadIdx.x != 0) return;
  uint32_t *h = (uint32_t *)k.dst;
  __threadfence(); /* this block's count atomics before its arrival */
  if (atomicAdd(&h[7], 1u) != gridDim.x - 1) return;
  __threadfence(); /* every block's atomics before the read */
  uint32_t count = atomicAdd(&h[6], 0u);
  h[7] = 0;
  *(volatile uint32_t *)k.report = GS_FMT_REPORT_READY | (count & ~GS_FMT_REPORT_READY);
  __threadfence_system();
}

/* One switch per launch (uniform over the grid) picks the specialised body. */
#define GS__SPECIALISE(FN, k)                                                                     \
  switch ((k).dtype * 16u + (k).bits) {                                                           \
    GS__CASES(FN, 0) GS__CASES(FN, 1) GS__CASES(FN, 2)                                            \
  }
#define GS__CASES(FN, DT)                                                                         \
  case DT * 16 + 1: FN<DT, 1>(k); break;                                                          \
  case DT * 16 + 2: FN<DT, 2>(k); break;                                                          \
  case DT * 16 + 3: FN<DT, 3>(k); break;                                                          \
  case DT * 16 + 4: FN<DT, 4>(k); break;                                                          \
  case DT * 16 + 5: FN<DT, 5>(k); break;                                                          \
  case DT * 16 + 6: FN<DT, 6>(k); break;                                                          \
  case DT * 16 + 7: FN<DT, 7>(k); break;                                                          \
  case DT * 16 + 8: FN<DT, 8>(k); break;

#if !defined(GS_PTX_PROBES) /* the probe build holds only the probes */
extern "C" __global__ void __launch_bounds__(256) gs_k_compress(gs__kparams k) {
  if (k.dtype == 3) {
    gs__compress_bool(k);
  } else {
    GS__SPECIALISE(gs__compress_t, k)
  }
  if (k.report) gs__report(k);
}
#endif

/* Whether the buffer's header is the one p describes; if not, the output is NaN (bool: 0). */
__device__ __forceinline__ bool gs__header_ok(const gs__kparams &k) {
  const uint32_t *h = (const uint32_t *)k.src;
  return h[0] == GS_FMT_MAGIC && h[1] == gs__header_word1(k.dtype, k.bits, k.flags) &&
         h[2] == k.group && h[3] == k.check && h[4] == (uint32_t)k.n &&
         h[5] == (uint32_t)(k.n >> 32);
}

/* Output bit patterns o[0..cnt) (fp32, or fp16/bf16 in the low half) of chunk c: 128-bit
 * stores when the chunk is whole and aligned. */
template <int DT> __device__ __forceinline__ void gs__store_chunk(const gs__kparams &k, uint64_t c,
                                                                  const uint32_t o[8], unsigned cnt) {
  if (DT == 0) {
    uint32_t *d = (uint32_t *)k.dst + c * 8;
    if (cnt == 8 && ((uintptr_t)d & 15u) == 0) {
      ((uint4 *)d)[0] = make_uint4(o[0], o[1], o[2], o[3]);
      ((uint4 *)d)[1] = make_uint4(o[4], o[5], o[6], o[7]);
    } else {
      for (unsigned j = 0; j < cnt; j++) d[j] = o[j];
    }
    return;
  }
  uint16_t *d = (uint16_t *)k.dst + c * 8;
  if (cnt == 8 && ((uintptr_t)d & 15u) == 0) {
    *(uint4 *)d = make_uint4(o[0] | o[1] << 16, o[2] | o[3] << 16, o[4] | o[5] << 16, o[6] | o[7] << 16);
  } else {
    for (unsigned j = 0; j < cnt; j++) d[j] = (uint16_t)o[j];
  }
}

__device__ void gs__decompress_bool(const gs__kparams &k) {
  bool ok = gs__header_ok(k);
  uint64_t nchunks = (k.n + 7) / 8, stride = (uint64_t)gridDim.x * blockDim.x;
  for (uint64_t c = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; c < nchunks; c += stride) {
    unsigned cnt = k.n - c * 8 < 8 ? (unsigned)(k.n - c * 8) : 8u;
    uint32_t v = ok ? ((const uint8_t *)k.src)[k.data_off + c] : 0u;
    uint8_t *d = (uint8_t *)k.dst + c * 8;
    for (unsigned e = 0; e < cnt; e++) d[e] = (uint8_t)((v >> e) & 1u);
  }
}

/* One thread per chunk of 8 elements, grid-stride. */
template <int DT, int BITS> __device__ void gs__decompress_t(const gs__kparams &k) {
  bool ok = gs__header_ok(k);
  uint64_t nchunks = (k.n + 7) / 8, stride = (uint64_t)gridDim.x * blockDim.x;
  const uint8_t *src = (const uint8_t *)k.src;
  unsigned C = k.group / 8, pow2 = (C & (C - 1u)) == 0, shift = __ffs((int)C) - 1;
  for (uint64_t c = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; c < nchunks; c += stride) {
    unsigned cnt = k.n - c * 8 < 8 ? (unsigned)(k.n - c * 8) : 8u;
    uint64_t g = pow2 ? c >> shift : c / C; /* 64-bit division is slow on a GPU: shift if we can */
    uint32_t o[8];
    gs__decode_chunk<DT, BITS>(k, c, *(const uint32_t *)(src + k.meta_off + g * GS_FMT_META_BYTES), ok, o);
    gs__store_chunk<DT>(k, c, o, cnt);
  }
}

#if !defined(GS_PTX_PROBES) /* the probe build holds only the probes */
extern "C" __global__ void __launch_bounds__(256) gs_k_decompress(gs__kparams k) {
  if (k.dtype == 3) {
    gs__decompress_bool(k);
  } else {
    GS__SPECIALISE(gs__decompress_t, k)
  }
}
#endif
#if defined(GS_PTX_PROBES)
/* Probes of the bandwidth model (bench/kernels/ptx_model.py, test kernels-ptx-model): the
 * straight-line work of one whole aligned chunk of 8 elements in the steady state, built from the
 * same functions as the kernels, into build/kernels/codec-probes.ptx only. Loop and index
 * arithmetic (a few instructions per 32 elements) is not in them. */
template <int DT, int BITS> __device__ __forceinline__ void gs__probe_compress(const gs__kparams &k,
                                                                               const gs__meta &m) {
  uint64_t c = threadIdx.x;
  float x[8], mn = 0.0f, mx = 0.0f;
  int bad = 0;
  gs__load8<DT>((const uint8_t *)k.src + c * 8 * (DT == 0 ? 4 : 2), x);
  gs__minmax8(x, 8, &mn, &mx, &bad);
  uint32_t r[4];
  gs__chunk_random(k.seed, k.tensor_id, c, r);
  gs__store_packed<BITS>((uint8_t *)k.dst + k.data_off + c * BITS, gs__quant8<BITS>(x, 8, &m, r));
  ((float *)k.dst)[0] = mn + mx + (float)bad; /* keeps the reduction alive */
}

/* Once per group and lane: the segment reduction over LANES lanes (8 for G = 256; 1, none, for
 * 8 bits' groups of 32) and the meta. */
template <int BITS, int LANES> __device__ __forceinline__ void gs__probe_meta(const gs__kparams &k,
                                                                             float mn, float mx,
                                                                             int bad) {
  gs__warp_reduce(&mn, &mx, &bad, LANES);
  gs__meta m;
  gs__meta_compute(mn, mx, bad, BITS, &m);
  gs__emit_meta(k, threadIdx.x, &m);
  ((float *)k.dst)[1] = m.minf + m.inv;
}

template <int DT, int BITS> __device__ __forceinline__ void gs__probe_decompress(gs__kparams k,
                                                                                 uint32_t mw) {
  uint64_t c = threadIdx.x;
  uint32_t o[8];
  k.flags = 0;
  gs__decode_chunk<DT, BITS>(k, c, mw, true, o);
  gs__store_chunk<DT>(k, c, o, 8);
}

#define GS__PROBES(NAME, DT, BITS)                                                                \
  extern "C" __global__ void gs_probe_compress_##NAME##_b##BITS(gs__kparams k, gs__meta m) {      \
    gs__probe_compress<DT, BITS>(k, m);                                                           \
  }                                                                                               \
  extern "C" __global__ void gs_probe_decompress_##NAME##_b##BITS(gs__kparams k, uint32_t mw) {   \
    gs__probe_decompress<DT, BITS>(k, mw);                                                        \
  }
#define GS__PROBE_WIDTHS(NAME, DT) GS__PROBES(NAME, DT, 2) GS__PROBES(NAME, DT, 4) GS__PROBES(NAME, DT, 8)
GS__PROBE_WIDTHS(f32, 0)
GS__PROBE_WIDTHS(f16, 1)
GS__PROBE_WIDTHS(bf16, 2)
#define GS__PROBE_META(BITS, LANES)                                                               \
  extern "C" __global__ void gs_probe_meta_b##BITS##_l##LANES(gs__kparams k, float mn, float mx,  \
                                                              int bad) {                          \
    gs__probe_meta<BITS, LANES>(k, mn, mx, bad);                                                  \
  }
GS__PROBE_META(2, 8)
GS__PROBE_META(4, 8)
GS__PROBE_META(8, 1)
#endif
