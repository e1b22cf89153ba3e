/* codec.cu: GPU kernels of the codec; the arithmetic is codec_core.h, shared with the CPU twin. */
#include "codec_core.h"

#define GS_FULL_MASK 0xffffffffu

/* Header of a compress call; `nonfinite` starts at 0 and gs_k_compress adds to it. Launched
 * before gs_k_compress on the same stream, so the atomics see the zero. */
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

/* Elements [c*8, c*8+8) of the input as fp32 (cnt of them exist); 16-byte loads when aligned. */
__device__ __forceinline__ unsigned gs__load_chunk(const gs__kparams &k, uint64_t c, float x[8]) {
  uint64_t i0 = c * 8;
  unsigned cnt = k.n - i0 < 8 ? (unsigned)(k.n - i0) : 8u;
  if (k.dtype == 0) {
    const float *s = (const float *)k.src + i0;
    if (cnt == 8 && ((uintptr_t)s & 15u) == 0) {
      float4 a = __ldg((const float4 *)s), b = __ldg((const float4 *)s + 1);
      x[0] = a.x, x[1] = a.y, x[2] = a.z, x[3] = a.w;
      x[4] = b.x, x[5] = b.y, x[6] = b.z, x[7] = b.w;
    } else {
      for (unsigned j = 0; j < 8; j++) x[j] = j < cnt ? s[j] : 0.0f;
    }
    return cnt;
  }
  const uint16_t *s = (const uint16_t *)k.src + i0;
  uint16_t h[8];
  if (cnt == 8 && ((uintptr_t)s & 15u) == 0) {
    uint4 v = __ldg((const uint4 *)s);
    uint32_t w[4] = {v.x, v.y, v.z, v.w};
    for (unsigned j = 0; j < 8; j++) h[j] = (uint16_t)(w[j >> 1] >> ((j & 1u) * 16u));
  } else {
    for (unsigned j = 0; j < 8; j++) h[j] = j < cnt ? s[j] : 0;
  }
  for (unsigned j = 0; j < 8; j++) x[j] = k.dtype == 1 ? gs__cvt_f16_to_f32(h[j]) : gs__bf16_to_f32(h[j]);
  return cnt;
}

/* `bits` bytes at p, which is aligned to the largest power of two dividing bits. */
__device__ __forceinline__ void gs__store_packed(uint8_t *p, uint64_t v, unsigned bits) {
  if (bits == 8) {
    *(uint64_t *)p = v;
  } else if (bits == 4) {
    *(uint32_t *)p = (uint32_t)v;
  } else if ((bits & 1u) == 0) {
    for (unsigned b = 0; b < bits; b += 2) *(uint16_t *)(p + b) = (uint16_t)(v >> (8 * b));
  } else {
    for (unsigned b = 0; b < bits; b++) p[b] = (uint8_t)(v >> (8 * b));
  }
}

__device__ __forceinline__ uint64_t gs__load_packed(const uint8_t *p, unsigned bits) {
  uint64_t v = 0;
  if (bits == 8) {
    v = *(const uint64_t *)p;
  } else if (bits == 4) {
    v = *(const uint32_t *)p;
  } else if ((bits & 1u) == 0) {
    for (unsigned b = 0; b < bits; b += 2) v |= (uint64_t)*(const uint16_t *)(p + b) << (8 * b);
  } else {
    for (unsigned b = 0; b < bits; b++) v |= (uint64_t)p[b] << (8 * b);
  }
  return v;
}

__device__ __forceinline__ void gs__minmax8(const float x[8], unsigned cnt, float *mn, float *mx,
                                            int *bad) {
  for (unsigned j = 0; j < 8; j++)
    if (j < cnt) {
      *mn = x[j] < *mn ? x[j] : *mn;
      *mx = x[j] > *mx ? x[j] : *mx;
      *bad |= gs__nonfinite(x[j]);
    }
}

/* Min/max/flag over `width` lanes (a power of two; segments of a warp reduce independently). */
__device__ __forceinline__ void gs__warp_reduce(float *mn, float *mx, int *bad, unsigned width) {
  for (unsigned off = width >> 1; off > 0; off >>= 1) {
    float a = __shfl_xor_sync(GS_FULL_MASK, *mn, off), b = __shfl_xor_sync(GS_FULL_MASK, *mx, off);
    *bad |= __shfl_xor_sync(GS_FULL_MASK, *bad, off);
    *mn = a < *mn ? a : *mn;
    *mx = b > *mx ? b : *mx;
  }
}

/* Quantize and pack chunk c (cnt elements in x) with the group meta m. */
__device__ __forceinline__ void gs__emit_chunk(const gs__kparams &k, uint64_t c, const float x[8],
                                               unsigned cnt, const gs__meta *m) {
  uint32_t r[4], q[8], kmax = (1u << k.bits) - 1u;
  gs__chunk_random(k.seed, k.tensor_id, c, r);
  for (unsigned j = 0; j < 8; j++) q[j] = j < cnt ? gs__quant(x[j], m, gs__uniform(r, j), kmax) : 0u;
  gs__store_packed((uint8_t *)k.dst + k.data_off + c * k.bits, gs__pack8(q, k.bits), k.bits);
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

/* Groups of at most 256 elements: each lane holds one chunk of 8 in registers, so the input is
 * read once. Power-of-two groups below 256 share a warp (32/C groups per warp). */
__device__ void gs__compress_small(const gs__kparams &k, unsigned C) {
  unsigned lane = threadIdx.x & 31u, seg = (C & (C - 1u)) == 0 ? C : 32u, gpw = 32u / seg;
  uint64_t warp = ((uint64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  uint64_t nwarps = ((uint64_t)gridDim.x * blockDim.x) >> 5;
  for (uint64_t g0 = warp * gpw; g0 < k.ngroups; g0 += nwarps * gpw) {
    uint64_t g = g0 + lane / seg, c = g * C + lane % seg;
    bool active = g < k.ngroups && lane % seg < C && c * 8 < k.n;
    float x[8], mn = gs__u2f(0x7f800000u), mx = gs__u2f(0xff800000u);
    int bad = 0;
    unsigned cnt = 0;
    if (active) {
      cnt = gs__load_chunk(k, c, x);
      gs__minmax8(x, cnt, &mn, &mx, &bad);
    }
    gs__warp_reduce(&mn, &mx, &bad, seg);
    if (!active) continue;
    gs__meta m;
    gs__meta_compute(mn, mx, bad, k.bits, &m);
    if (lane % seg == 0) gs__emit_meta(k, g, &m);
    gs__emit_chunk(k, c, x, cnt, &m);
  }
}

/* Groups above 256 elements: a warp per group, two sweeps (the second hits L1/L2). */
__device__ void gs__compress_large(const gs__kparams &k, unsigned C) {
  unsigned lane = threadIdx.x & 31u;
  uint64_t warp = ((uint64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  uint64_t nwarps = ((uint64_t)gridDim.x * blockDim.x) >> 5;
  for (uint64_t g = warp; g < k.ngroups; g += nwarps) {
    float x[8], mn = gs__u2f(0x7f800000u), mx = gs__u2f(0xff800000u);
    int bad = 0;
    for (uint64_t c = g * C + lane; c < (g + 1) * C && c * 8 < k.n; c += 32) {
      unsigned cnt = gs__load_chunk(k, c, x);
      gs__minmax8(x, cnt, &mn, &mx, &bad);
    }
    gs__warp_reduce(&mn, &mx, &bad, 32);
    gs__meta m;
    gs__meta_compute(mn, mx, bad, k.bits, &m);
    if (lane == 0) gs__emit_meta(k, g, &m);
    for (uint64_t c = g * C + lane; c < (g + 1) * C && c * 8 < k.n; c += 32) {
      unsigned cnt = gs__load_chunk(k, c, x);
      gs__emit_chunk(k, c, x, cnt, &m);
    }
  }
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

extern "C" __global__ void __launch_bounds__(256) gs_k_compress(gs__kparams k) {
  unsigned C = k.group / 8;
  if (k.dtype == 3)
    gs__compress_bool(k);
  else if (C <= 32)
    gs__compress_small(k, C);
  else
    gs__compress_large(k, C);
  if (k.report) gs__report(k);
}

/* Whether the buffer's header is the one p describes; if not, the output is NaN (bool: 0). */
__device__ __forceinline__ bool gs__header_ok(const gs__kparams &k) {
  const uint32_t *h = (const uint32_t *)k.src;
  return h[0] == GS_FMT_MAGIC && h[1] == gs__header_word1(k.dtype, k.bits, k.flags) &&
         h[2] == k.group && h[3] == k.check && h[4] == (uint32_t)k.n &&
         h[5] == (uint32_t)(k.n >> 32);
}

/* Output bit patterns o[0..cnt) (fp32, or fp16/bf16 in the low half) of chunk c. */
__device__ __forceinline__ void gs__store_chunk(const gs__kparams &k, uint64_t c, const uint32_t o[8],
                                                unsigned cnt) {
  if (k.dtype == 0) {
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

/* Decompress: one thread per chunk of 8 elements, grid-stride. */
extern "C" __global__ void __launch_bounds__(256) gs_k_decompress(gs__kparams k) {
  bool ok = gs__header_ok(k);
  uint64_t nchunks = (k.n + 7) / 8, stride = (uint64_t)gridDim.x * blockDim.x;
  const uint8_t *src = (const uint8_t *)k.src;
  unsigned C = k.group / 8, pow2 = C != 0 && (C & (C - 1u)) == 0, shift = C ? __ffs((int)C) - 1 : 0;
  for (uint64_t c = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; c < nchunks; c += stride) {
    unsigned cnt = k.n - c * 8 < 8 ? (unsigned)(k.n - c * 8) : 8u;
    if (k.dtype == 3) {
      uint32_t v = ok ? src[k.data_off + c] : 0u;
      uint8_t *d = (uint8_t *)k.dst + c * 8;
      for (unsigned e = 0; e < cnt; e++) d[e] = (uint8_t)((v >> e) & 1u);
      continue;
    }
    uint64_t g = pow2 ? c >> shift : c / C; /* 64-bit division is slow on a GPU: shift if we can */
    uint32_t mw = *(const uint32_t *)(src + k.meta_off + g * GS_FMT_META_BYTES);
    gs__meta m;
    gs__meta_decode((uint16_t)mw, (uint16_t)(mw >> 16), &m);
    m.nonfinite |= !ok;
    uint64_t v = gs__load_packed(src + k.data_off + c * k.bits, k.bits);
    uint32_t o[8], sign = (k.flags & GS_FMT_FLAG_RELU) && !m.nonfinite ? src[k.mask_off + c] : 0u;
    for (unsigned j = 0; j < 8; j++) {
      float y = gs__dequant(gs__unpack1(v, j, k.bits), &m);
      o[j] = k.dtype == 0 ? gs__f2u(y) : k.dtype == 1 ? gs__out_f16(y) : gs__out_bf16(y);
      if ((k.flags & GS_FMT_FLAG_RELU) && !m.nonfinite) o[j] = gs__sign_apply(o[j], (sign >> j) & 1u, k.dtype);
    }
    gs__store_chunk(k, c, o, cnt);
  }
}
