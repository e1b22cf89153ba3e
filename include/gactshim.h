/* gactshim.h: public API of libgactshim — the activation codec, on the CPU and on the GPU. */
#ifndef GACTSHIM_H
#define GACTSHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(GS_BUILDING_LIBRARY)
#define GS_API __attribute__((visibility("default")))
#else
#define GS_API
#endif

#define GS_VERSION_MAJOR 0
#define GS_VERSION_MINOR 1

/* Every function returns 0 on success or a negative errno; none aborts the process. */

/* Element types the codec accepts. The numeric values are part of the format (docs/codec-format.md). */
typedef enum gs_dtype {
  GS_DTYPE_F32 = 0,
  GS_DTYPE_F16 = 1,
  GS_DTYPE_BF16 = 2,
  GS_DTYPE_BOOL = 3, /* lossless 1-bit path */
} gs_dtype;

/* Bytes per element of a dtype (bool: one byte per element before compression). */
static inline unsigned gs_dtype_bytes(gs_dtype d) {
  return d == GS_DTYPE_F32 ? 4u : d == GS_DTYPE_BOOL ? 1u : 2u;
}

/* What to compress and how. */
typedef struct gs_codec_params {
  uint64_t n;         /* number of elements, 0..2^48 (0: a header-only buffer) */
  gs_dtype dtype;
  unsigned bits;      /* 1..8; ignored for GS_DTYPE_BOOL (always 1, lossless) */
  uint32_t group;     /* elements per group: a multiple of 32, 32..65536; ignored for BOOL */
  uint64_t seed;      /* stochastic-rounding key, with tensor_id */
  uint64_t tensor_id; /* distinct per compressed tensor */
  uint32_t flags;     /* GS_CODEC_*; 0 for a plain tensor; must be 0 for BOOL */
  /* GPU compress only (ignored elsewhere, not part of the format): 0, or the device address of a
   * host-mapped uint32 (pinned host memory under unified addressing) that the kernel sets to
   * GS_CODEC_REPORT_READY | (number of non-finite groups) once it has finished, so that the host
   * can learn the count by reading memory, without a synchronization. */
  uint64_t report;
} gs_codec_params;

/* flags: the buffer also keeps the exact sign of every element (`x > 0`, 1 bit per element), and
 * decompress restores it: an element that was > 0 decodes > 0 (at least the dtype's tiny value),
 * every other element decodes to +0. For ReLU outputs, whose backward reads only the sign. */
#define GS_CODEC_RELU_MASK 1u
/* Bit of the word at params.report that says the count beside it is final. */
#define GS_CODEC_REPORT_READY 0x80000000u

/* Bytes the compressed form of p takes, header included (exactly what compress writes; layout in
 * docs/codec-format.md); 0 if p is invalid. */
GS_API size_t gs_codec_size(const gs_codec_params *p);

/* 0 if p is valid, else -EINVAL. */
GS_API int gs_codec_validate(const gs_codec_params *p);

/* CPU twin. compress: src holds p->n elements of p->dtype; dst holds gs_codec_size(p) bytes.
 * Returns 0, -EINVAL (bad parameters), or -ERANGE when a group holds a non-finite value
 * (dst is then fully written, with those groups marked non-finite; see docs/codec-format.md). nthreads <= 0
 * chooses by size. Both CPU functions split the work into nthreads ranges, run on the library's
 * worker threads (started on first use, one per CPU of the process's affinity mask, every signal
 * blocked) and the calling thread; the bytes do not depend on nthreads. Safe to call from several
 * threads at once and in a child after fork(). */
GS_API int gs_compress_cpu(const gs_codec_params *p, const void *src, void *dst, int nthreads);

/* CPU twin. decompress: src is a buffer written by either compressor (src_bytes long); dst
 * receives n elements of the dtype recorded in the header. Returns 0 or -EINVAL (bad or
 * truncated buffer, or n/dtype/flags not matching expect, when expect is not NULL). */
GS_API int gs_decompress_cpu(const void *src, size_t src_bytes, void *dst,
                             const gs_codec_params *expect, int nthreads);

/* GPU kernels, launched through the CUDA Driver API on `stream` (a CUstream) in the calling
 * thread's current context. The compressed buffer must be 16-byte aligned, the tensor aligned to
 * its element size (-EINVAL otherwise). Compress cannot return -ERANGE without a host sync: the
 * count of non-finite groups is the uint32 at byte 24 of the header (docs/codec-format.md). The GPU
 * decompress trusts p; a header that does not match p yields NaN (bool: 0), not garbage.
 * Asynchronous: no host synchronization, no allocation.
 * -ENOSYS: library built without kernels; -ENODEV: no driver or no current context; -ENOEXEC: the
 * kernels could not be loaded in the current context (tried once per context; gs_gpu_load_status
 * says why); compress: -EBUSY when the stream is capturing a CUDA graph (nothing launched: the
 * caller keeps the tensor); decompress: -EBUSY likewise (the caller cannot restore the tensor on
 * that stream). A query of the legacy stream (0) while another stream captures in global mode
 * counts as capturing: a launch there would invalidate that capture. */
GS_API int gs_gpu_compress(const gs_codec_params *p, uint64_t src_dptr, uint64_t dst_dptr,
                           void *stream);
GS_API int gs_gpu_decompress(const gs_codec_params *p, uint64_t src_dptr, uint64_t dst_dptr,
                             void *stream);
/* Makes device's primary context current in the calling thread unless a context of that device
 * already is: PyTorch's autograd thread may have none at all (pytorch#124565). Call it before
 * gs_gpu_compress/gs_gpu_decompress on a thread PyTorch may not have prepared. The primary context
 * is retained once per device and kept. 0, -EINVAL (device out of range), -ENODEV (no driver, or
 * the device has no primary context), -ENOSYS (built without kernels). */
GS_API int gs_gpu_use_device(int device);

/* 1 if stream (a CUstream) is capturing a CUDA graph (cuStreamIsCapturing, resolved at run time;
 * no synchronization), 0 if not, -ENODEV without a loaded driver, -ENOSYS without kernels. */
GS_API int gs_gpu_stream_capturing(void *stream);

/* Whether the GPU kernels are loaded in ctx (a CUcontext; NULL: the calling thread's current
 * context). The first gs_gpu_compress or gs_gpu_decompress in a context loads them; a failure is
 * remembered for that context and not retried, and both then return -ENOEXEC at once. Returns
 * 0 (loaded), -ENOENT (not tried in ctx yet, or forgotten: the library remembers the last 16
 * contexts), -ENOEXEC (loading failed: *curesult receives the CUresult of the failed driver call,
 * e.g. 209 CUDA_ERROR_NO_BINARY_FOR_GPU), -ENODEV (no driver, or ctx NULL and no current context),
 * -ENOSYS (built without kernels). *curesult is 0 unless -ENOEXEC; curesult may be NULL. Loads and
 * launches nothing, so that a caller can name the error in one warning when it first sees
 * -ENOEXEC. */
GS_API int gs_gpu_load_status(void *ctx, int *curesult);

/* How the kernels were loaded in ctx (NULL: the current context): "fatbin" (the image built in),
 * "nvrtc" (codec.cu compiled at run time for this GPU, when the fatbin had no code for it or its
 * PTX was too new for the driver), or NULL (not loaded, or loading failed). *why (may be NULL)
 * receives why the run-time compile gave no image (no NVRTC found, the compile failed), or NULL. */
GS_API const char *gs_gpu_load_source(void *ctx, const char **why);

/* GPU time of the codec's own launches so far, measured with CUDA events recorded around each
 * compress and decompress on its stream (no CUPTI, no synchronization: a launch counts once its
 * end event has completed, as seen by this call or a later launch). *ns: the sum; *timed: the
 * calls measured; *untimed: calls that could not be (no free event pair, a failed record).
 * 0, or -ENOSYS without kernels (all three 0). */
GS_API int gs_gpu_kernel_time(uint64_t *ns, uint64_t *timed, uint64_t *untimed);

#ifdef __cplusplus
}
#endif
#endif
