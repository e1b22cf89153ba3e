/* gpu-codec.c: the GPU codec writes the same bytes as the CPU twin and decodes to the same values. */
#include "gactshim.h"
#include "cudrv.h"
#include "testdata.h"

#include <errno.h>
#include <stdlib.h>

#define SKIP 77

static gs_cudrv cu;
static int failures;

#define CHECK_CU(call)                                                           \
  do {                                                                           \
    CUresult r_ = (call);                                                        \
    if (r_ != 0) {                                                               \
      const char *s_ = "?";                                                      \
      cu.GetErrorString(r_, &s_);                                                \
      fprintf(stderr, "FAIL %s:%d: %s = %d (%s)\n", __FILE__, __LINE__, #call, r_, s_); \
      exit(1);                                                                   \
    }                                                                            \
  } while (0)

/* One case: compress on both, compare bytes; decompress on both, compare bytes. `misalign`
 * shifts the device input by one element to exercise the unaligned load path. */
static void one_case(uint64_t n, unsigned dtype, unsigned bits, uint32_t group, int misalign,
                     int poison, uint32_t flags) {
  gs_codec_params p = {.n = n, .dtype = (gs_dtype)dtype, .bits = bits, .group = group,
                       .seed = 0xfeedull * n + bits, .tensor_id = 7 + group, .flags = flags};
  size_t esz = gs_td_elem_size(dtype), size = gs_codec_size(&p), in_bytes = n * esz;
  uint8_t *src = malloc(in_bytes + 8), *cpu = malloc(size), *gpu = malloc(size + 1);
  uint8_t *out_cpu = malloc(in_bytes + 8), *out_gpu = malloc(in_bytes + 8);
  gs_td_fill(src, NULL, n, dtype, (gs_td_kind)((n + bits) % 5), n ^ group);
  if (poison && n > 300 && dtype == 0) ((float *)src)[n / 2] = 1.0f / 0.0f;
  int rc_cpu = gs_compress_cpu(&p, src, cpu, 0);
  CUdeviceptr d_src, d_buf, d_out;
  size_t off = misalign ? esz : 0;
  CHECK_CU(cu.MemAlloc(&d_src, in_bytes + 16));
  CHECK_CU(cu.MemAlloc(&d_buf, size + 16));
  CHECK_CU(cu.MemAlloc(&d_out, in_bytes + 16));
  CHECK_CU(cu.MemcpyHtoD(d_src + off, src, in_bytes));
  CHECK_CU(cu.MemsetD8(d_buf, 0xCC, size + 16));
  int rc = gs_gpu_compress(&p, d_src + off, d_buf, NULL);
  if (rc != 0) {
    fprintf(stderr, "FAIL gs_gpu_compress = %d\n", rc);
    exit(1);
  }
  CHECK_CU(cu.StreamSynchronize(NULL));
  CHECK_CU(cu.MemcpyDtoH(gpu, d_buf, size + 1));
  for (size_t i = 0; i < size; i++)
    if (gpu[i] != cpu[i]) {
      fprintf(stderr, "FAIL compress n=%llu dtype=%u bits=%u group=%u misalign=%d: byte %zu of %zu "
                      "gpu %02x cpu %02x (cpu rc %d)\n", (unsigned long long)n, dtype, bits, group,
              misalign, i, size, gpu[i], cpu[i], rc_cpu);
      failures++;
      break;
    }
  if (gpu[size] != 0xCC) {
    fprintf(stderr, "FAIL compress wrote past gs_codec_size (n=%llu)\n", (unsigned long long)n);
    failures++;
  }
  CHECK_CU(cu.MemsetD8(d_out, 0xCC, in_bytes + 16));
  rc = gs_gpu_decompress(&p, d_buf, d_out + off, NULL);
  if (rc != 0) {
    fprintf(stderr, "FAIL gs_gpu_decompress = %d\n", rc);
    exit(1);
  }
  CHECK_CU(cu.StreamSynchronize(NULL));
  CHECK_CU(cu.MemcpyDtoH(out_gpu, d_out + off, in_bytes + 1));
  if (gs_decompress_cpu(cpu, size, out_cpu, &p, 0) != 0) {
    fprintf(stderr, "FAIL cpu decompress\n");
    failures++;
  } else if (memcmp(out_cpu, out_gpu, in_bytes) != 0 || out_gpu[in_bytes] != 0xCC) {
    fprintf(stderr, "FAIL decompress n=%llu dtype=%u bits=%u group=%u misalign=%d differs\n",
            (unsigned long long)n, dtype, bits, group, misalign);
    failures++;
  }
  CHECK_CU(cu.MemFree(d_src));
  CHECK_CU(cu.MemFree(d_buf));
  CHECK_CU(cu.MemFree(d_out));
  free(src), free(cpu), free(gpu), free(out_cpu), free(out_gpu);
}

int main(void) {
  char why[256];
  if (gs_cudrv_open(&cu, why, sizeof why) != 0) {
    printf("SKIP: no CUDA device (%s)\n", why);
    return SKIP;
  }
  gs_codec_params probe = {.n = 1, .dtype = GS_DTYPE_F32, .bits = 8, .group = 256};
  if (gs_gpu_compress(&probe, 0, 0, NULL) == -ENOSYS) {
    printf("SKIP: library built without CUDA kernels (-Dcuda=disabled or no nvcc)\n");
    return SKIP;
  }
  printf("device: %s\n", cu.name);
  static const uint64_t sizes[] = {1, 5, 8, 255, 256, 257, 4099, 100003, (1u << 20) + 7};
  static const uint32_t groups[] = {32, 96, 256, 512, 2048};
  int cases = 0;
  for (unsigned dtype = 0; dtype < 4; dtype++)
    for (unsigned bits = 1; bits <= 8; bits++) {
      if (dtype == 3 && bits > 1) break;
      for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
        for (size_t g = 0; g < sizeof groups / sizeof *groups; g++) {
          uint32_t flags = dtype != 3 && ((s + g + bits) & 1) ? GS_CODEC_RELU_MASK : 0u;
          one_case(sizes[s], dtype, bits, groups[g], (int)((s + g) & 1), s == 7, flags);
          cases++;
        }
    }
  /* Large tensors, the big-group two-pass path and the maximum group. */
  one_case(16u << 20, 0, 4, 256, 0, 0, 0);
  one_case(16u << 20, 1, 3, 65536, 0, 0, GS_CODEC_RELU_MASK);
  one_case(3u << 20, 2, 8, 4096, 1, 1, 0);
  cases += 3;
  const char *nv = NULL, *src = gs_gpu_load_source(NULL, &nv);
  printf("kernels loaded from: %s%s%s\n", src ? src : "nowhere", nv ? "; NVRTC: " : "", nv ? nv : "");
  printf("%d cases, %d failures\n", cases, failures);
  return failures ? 1 : 0;
}
