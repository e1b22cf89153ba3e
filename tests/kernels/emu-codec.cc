/* emu-codec.cc: runs the CUDA kernels of kernels/codec.cu on the CPU, one pthread per GPU thread,
 * and checks their bytes against the CPU twin — a check of the kernels' indexing, packing and
 * warp logic on machines without a GPU (the real-GPU test is gpu-codec.c). */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a minimal CUDA execution model: threads of a launch run concurrently, warps of 32
 * exchange shuffle values through a per-warp slot array and barrier. ---- */
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(x)
struct emu_dim3 {
  unsigned x, y, z;
};
struct float4 {
  float x, y, z, w;
};
struct uint4 {
  unsigned x, y, z, w;
};
static inline float4 make_float4(float a, float b, float c, float d) { return float4{a, b, c, d}; }
static inline uint4 make_uint4(unsigned a, unsigned b, unsigned c, unsigned d) { return uint4{a, b, c, d}; }
static thread_local emu_dim3 threadIdx, blockIdx;
static emu_dim3 gridDim, blockDim;
enum { EMU_MAX_WARPS = 8 };
static pthread_barrier_t emu_bar[EMU_MAX_WARPS], emu_block_bar[EMU_MAX_WARPS];
static uint64_t emu_slot[EMU_MAX_WARPS][32];
template <class T> static T __ldg(const T *p) { return *p; }
template <class T> static T __shfl_xor_sync(unsigned, T v, unsigned off) {
  unsigned g = blockIdx.x * blockDim.x + threadIdx.x, w = g / 32, lane = g % 32;
  uint64_t b = 0;
  memcpy(&b, &v, sizeof v);
  emu_slot[w][lane] = b;
  pthread_barrier_wait(&emu_bar[w]);
  T r;
  memcpy(&r, &emu_slot[w][lane ^ off], sizeof r);
  pthread_barrier_wait(&emu_bar[w]);
  return r;
}
static int __ffs(int x) { return __builtin_ffs(x); }
static void __syncthreads(void) { pthread_barrier_wait(&emu_block_bar[blockIdx.x]); }
static void __threadfence(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
static void __threadfence_system(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
static unsigned atomicAdd(unsigned *p, unsigned v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }

/* The kernels' conversion instructions, as the PTX ISA documents them (check-hwround proves the
 * twin's integer code equal to this model). */
#include "hwmodel.h"
#define GS_CVT_MODEL_F16(f, mode) hm_round(0, f, mode)
#define GS_CVT_MODEL_BF16(f, mode) hm_round(1, f, mode)
#define GS_CVT_MODEL_F16_TO_F32(h) hm_f16_to_f32(h)
#include "codec.cu"

#include "gactshim.h"
#include "kernels.h"
#include "testdata.h"

typedef void (*emu_kernel)(gs__kparams);
struct emu_thread {
  emu_kernel fn;
  gs__kparams k;
  unsigned block, thread;
  pthread_t tid;
};
static void *emu_run(void *arg) {
  emu_thread *t = (emu_thread *)arg;
  blockIdx = emu_dim3{t->block, 0, 0};
  threadIdx = emu_dim3{t->thread, 0, 0};
  t->fn(t->k);
  return NULL;
}
/* Launch with `grid` blocks of `block` threads (grid*block <= 32*EMU_MAX_WARPS). */
static void emu_launch(emu_kernel fn, unsigned grid, unsigned block, const gs__kparams &k) {
  static emu_thread th[32 * EMU_MAX_WARPS];
  gridDim = emu_dim3{grid, 1, 1};
  blockDim = emu_dim3{block, 1, 1};
  unsigned n = grid * block;
  for (unsigned w = 0; w < n / 32; w++) pthread_barrier_init(&emu_bar[w], NULL, 32);
  for (unsigned b = 0; b < grid; b++) pthread_barrier_init(&emu_block_bar[b], NULL, block);
  for (unsigned i = 0; i < n; i++) {
    th[i] = emu_thread{fn, k, i / block, i % block, pthread_t()};
    pthread_create(&th[i].tid, NULL, emu_run, &th[i]);
  }
  for (unsigned i = 0; i < n; i++) pthread_join(th[i].tid, NULL);
  for (unsigned w = 0; w < n / 32; w++) pthread_barrier_destroy(&emu_bar[w]);
  for (unsigned b = 0; b < grid; b++) pthread_barrier_destroy(&emu_block_bar[b]);
}

static int failures, cases;

static void *alloc16(size_t bytes) { return aligned_alloc(16, (bytes + 15) / 16 * 16); }

/* The parameters gpu.c passes (gs__kparams_of), built from the layout. */
static gs__kparams kparams_of(const gs__layout &l, const void *src, void *dst, uint32_t *report) {
  gs__kparams k;
  memset(&k, 0, sizeof k);
  k.src = (uint64_t)(uintptr_t)src, k.dst = (uint64_t)(uintptr_t)dst;
  k.n = l.p.n, k.seed = l.p.seed, k.tensor_id = l.p.tensor_id, k.meta_off = l.meta_off;
  k.data_off = l.data_off, k.mask_off = l.mask_off, k.ngroups = l.ngroups, k.group = l.p.group;
  k.bits = l.p.bits, k.dtype = l.p.dtype, k.flags = l.p.flags, k.report = (uint64_t)(uintptr_t)report;
  k.check = gs__header_check((uint8_t)l.p.dtype, (uint8_t)l.p.bits, (uint8_t)l.p.flags, l.p.group, l.p.n);
  return k;
}

/* Input patterns beyond testdata.h: attention-mask-like rows (-inf, or the dtype's lowest finite
 * value, on part of each row), the cases of issue 14's defect 2. */
enum { IN_TD, IN_NEG_INF, IN_LOWEST };
static void fill_mask_rows(uint8_t *src, uint64_t n, unsigned dtype, int how) {
  for (uint64_t i = 0; i < n; i++) {
    if ((i % 61) < 40) continue; /* the first 40 of each 61-element row stay as filled */
    uint32_t f32 = how == IN_NEG_INF ? 0xff800000u : 0xff7fffffu;
    uint16_t h16 = how == IN_NEG_INF ? (dtype == 1 ? 0xfc00u : 0xff80u) : (dtype == 1 ? 0xfbffu : 0xff7fu);
    if (dtype == 0) memcpy(src + 4 * i, &f32, 4);
    else memcpy(src + 2 * i, &h16, 2);
  }
}

/* Compress on both twins, compare bytes and the host-mapped count; decompress on both, compare. */
static void one_case(uint64_t n, unsigned dtype, unsigned bits, uint32_t group, int misalign,
                     uint32_t flags, int input) {
  gs_codec_params p = {n, (gs_dtype)dtype, bits, group, 0xabcdull + n, 3 + bits, flags, 0};
  gs__layout l;
  if (gs__layout_of(&p, &l) != 0) abort();
  size_t esz = gs_td_elem_size(dtype), size = l.total, off = misalign ? esz : 0;
  uint8_t *src = (uint8_t *)alloc16(n * esz + 32), *cpu = (uint8_t *)malloc(size);
  uint8_t *gpu = (uint8_t *)alloc16(size + 16);
  uint8_t *out_cpu = (uint8_t *)malloc(n * esz + 1), *out_gpu = (uint8_t *)alloc16(n * esz + 32);
  gs_td_fill(src + off, NULL, n, dtype, (gs_td_kind)((n + bits) % 5), n * 7 + group);
  if (input == IN_TD && n > 100 && dtype != 3) {
    memset(src + off + (n / 3) * esz, 0xff, esz); /* a NaN */
    static const uint8_t pos_inf[3][4] = {{0, 0, 0x80, 0x7f}, {0, 0x7c}, {0x80, 0x7f}};
    memcpy(src + off + (2 * n / 3) * esz, pos_inf[dtype], esz); /* and +Inf in another group */
  }
  if (input != IN_TD) fill_mask_rows(src + off, n, dtype, input);
  int rc = gs_compress_cpu(&p, src + off, cpu, 1);
  uint32_t report = 0x12345u, cpu_count;
  memcpy(&cpu_count, cpu + 24, 4);
  gs__kparams k = kparams_of(l, src + off, gpu, &report);
  memset(gpu, 0xCC, size + 16);
  emu_launch(gs_k_header, 1, 32, k);
  emu_launch(gs_k_compress, 2, 64, k);
  cases++;
  if (memcmp(gpu, cpu, size) != 0 || gpu[size] != 0xCC) {
    size_t i = 0;
    while (i < size && gpu[i] == cpu[i]) i++;
    printf("FAIL compress n=%llu dtype=%u bits=%u G=%u flags=%u in=%d: byte %zu of %zu\n",
           (unsigned long long)n, dtype, bits, group, flags, input, i, size);
    failures++;
  }
  if (report != (GS_CODEC_REPORT_READY | cpu_count) || (rc == -ERANGE) != (cpu_count > 0) ||
      (input != IN_TD && dtype != 1 && n >= 61 && cpu_count == 0)) {
    printf("FAIL report n=%llu dtype=%u bits=%u G=%u in=%d: word %#x, CPU count %u, rc %d\n",
           (unsigned long long)n, dtype, bits, group, input, report, cpu_count, rc);
    failures++;
  }
  gs_decompress_cpu(cpu, size, out_cpu, &p, 1);
  k = kparams_of(l, cpu, out_gpu + off, NULL);
  memset(out_gpu, 0xCC, n * esz + 32);
  emu_launch(gs_k_decompress, 2, 64, k);
  if (memcmp(out_gpu + off, out_cpu, n * esz) != 0 || out_gpu[off + n * esz] != 0xCC) {
    printf("FAIL decompress n=%llu dtype=%u bits=%u G=%u flags=%u in=%d\n", (unsigned long long)n,
           dtype, bits, group, flags, input);
    failures++;
  }
  free(src), free(cpu), free(gpu), free(out_cpu), free(out_gpu);
}

/* Metas no compress of real data writes, planted in a compressed buffer: levels beyond the 16-bit
 * output's range (saturated), levels whose fp32 value overflows (Inf kept: the kernel's out-of-line
 * path), a flagged group. Decompress on both twins, compare. */
static void crafted_metas_case(unsigned dtype, unsigned bits, uint32_t group, uint32_t flags) {
  static const uint16_t metas[][2] = {
      {0xc2c8u, 0x447au | GS_FMT_STEP_BF16}, /* -100 + q * 1000: past fp16's 65504 */
      {0x0000u, 0x7e3cu | GS_FMT_STEP_BF16}, /* q * 6.3e37: Inf from q = 6 */
      {0xff7fu, 0x7e00u | GS_FMT_STEP_BF16}, /* -3.4e38 + q * 4.3e37 */
      {0xfbffu, 0x7bffu},                    /* fp16 meta: -65504 + q * 65504 */
      {0x0000u, GS_FMT_NONFINITE},           /* flagged */
      {0x3c00u, 0x2e66u},                    /* an ordinary one: 1 + q * 0.1 */
  };
  uint64_t n = 1000;
  gs_codec_params p = {n, (gs_dtype)dtype, bits, group, 7, 11, flags, 0};
  gs__layout l;
  if (gs__layout_of(&p, &l) != 0) abort();
  size_t esz = gs_td_elem_size(dtype), size = l.total;
  uint8_t *src = (uint8_t *)alloc16(n * esz), *buf = (uint8_t *)alloc16(size);
  uint8_t *out_cpu = (uint8_t *)malloc(n * esz), *out_gpu = (uint8_t *)alloc16(n * esz + 16);
  gs_td_fill(src, NULL, n, dtype, GS_TD_NORMAL, 99);
  gs_compress_cpu(&p, src, buf, 1);
  for (uint64_t g = 0; g < l.ngroups; g++) {
    const uint16_t *m = metas[g % (sizeof metas / sizeof *metas)];
    uint8_t *d = buf + l.meta_off + g * GS_FMT_META_BYTES;
    d[0] = (uint8_t)m[0], d[1] = (uint8_t)(m[0] >> 8), d[2] = (uint8_t)m[1], d[3] = (uint8_t)(m[1] >> 8);
  }
  gs_decompress_cpu(buf, size, out_cpu, &p, 1);
  memset(out_gpu, 0xCC, n * esz + 16);
  emu_launch(gs_k_decompress, 2, 64, kparams_of(l, buf, out_gpu, NULL));
  cases++;
  if (memcmp(out_gpu, out_cpu, n * esz) != 0 || out_gpu[n * esz] != 0xCC) {
    size_t i = 0;
    while (i < n * esz && out_gpu[i] == out_cpu[i]) i++;
    printf("FAIL crafted metas dtype=%u bits=%u G=%u flags=%u: byte %zu\n", dtype, bits, group, flags, i);
    failures++;
  }
  free(src), free(buf), free(out_cpu), free(out_gpu);
}

int main(void) {
  static const uint64_t sizes[] = {1, 9, 256, 1000, 5003};
  static const uint32_t groups[] = {32, 64, 96, 256, 512, 2080};
  for (unsigned dtype = 0; dtype < 4; dtype++)
    for (unsigned bits = 1; bits <= 8; bits++) {
      if (dtype == 3 && bits > 1) break;
      for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
        for (size_t g = 0; g < sizeof groups / sizeof *groups; g++) {
          uint32_t flags = dtype != 3 && ((s + g + bits) & 1) ? GS_CODEC_RELU_MASK : 0u;
          one_case(sizes[s], dtype, bits, groups[g], (int)((s + g) & 1), flags, IN_TD);
        }
    }
  /* Attention-mask-like inputs: flagged groups counted alike and decoded alike on both twins. */
  for (unsigned dtype = 0; dtype < 3; dtype++)
    for (unsigned bits = 2; bits <= 8; bits *= 2)
      for (int input = IN_NEG_INF; input <= IN_LOWEST; input++) {
        one_case(1000, dtype, bits, 32, 0, 0, input);
        one_case(5003, dtype, bits, 256, 1, 0, input);
        one_case(3000, dtype, bits, 512, 0, GS_CODEC_RELU_MASK, input);
      }
  for (unsigned dtype = 0; dtype < 3; dtype++)
    for (unsigned bits = 2; bits <= 8; bits *= 2)
      for (uint32_t flags = 0; flags <= GS_CODEC_RELU_MASK; flags += GS_CODEC_RELU_MASK) {
        crafted_metas_case(dtype, bits, 32, flags);
        crafted_metas_case(dtype, bits, 256, flags);
      }
#if GS__NAN_MINMAX
  const char *device = "sm_80+ (NaN-carrying min/max, cvt.rn.bf16.f32)";
#else
  const char *device = "before sm_80 (min/max with a magnitude test, bf16 by integer code)";
#endif
  printf("%d emulated cases as on a GPU %s, %d failures\n", cases, device, failures);
  return failures ? 1 : 0;
}
