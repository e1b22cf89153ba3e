/* trace-demo.c: a stand-in training loop that drives the recorder directly (no CUDA, no torch). */
#include "timeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Usage: trace-demo PATH ITERATIONS [SLEEP_MS] — PATH may be "-" for memory only (attach). It
 * allocates parameters once (as "other": the shim does not tell them apart from the rest of the
 * allocator's memory), then each iteration activations that are "saved" (half compressed 4x),
 * a temporary, and frees those after a backward. Prints the true peak on stdout. */

static uint64_t live, peak;

static void demo_alloc(uint64_t key, uint64_t size, int dev, gs_category cat) {
  gs_alloc_record r = {.size = size, .device = (int16_t)dev, .kind = GS_KIND_DEVICE, .category = (uint8_t)cat,
                       .time_ns = gs__now_ns()};
  gs__trace_alloc(key, &r);
  live += size;
  if (live > peak) peak = live;
}

static void demo_free(uint64_t key, uint64_t size, int dev, gs_category cat) {
  gs_alloc_record r = {.size = size, .device = (int16_t)dev, .kind = GS_KIND_DEVICE, .category = (uint8_t)cat};
  gs__trace_free(key, &r);
  live -= size;
}

/* Separate functions so the call sites differ. */
__attribute__((noinline)) static void forward_layer(uint64_t key, uint64_t size, bool compress) {
  demo_alloc(key, size, 0, compress ? GS_CAT_COMPRESSED : GS_CAT_ACTIVATION);
  gs__trace_saved(compress ? GS_SAVED_COMPRESS : GS_SAVED_PACK, compress ? size * 4 : size, size,
                  compress ? 4 : 32, 20000, 0);
}

__attribute__((noinline)) static void make_parameters(int n) {
  for (int i = 0; i < n; i++) demo_alloc(0x1000 + (uint64_t)i, 1u << 20, 0, GS_CAT_OTHER);
}

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  gs_trace_options o;
  gs__trace_defaults(&o);
  o.keep_own_frames = true;
  if (strcmp(argv[1], "-") != 0) snprintf(o.path, sizeof(o.path), "%s", argv[1]);
  if (getenv("DEMO_TRACE_MAX")) o.max_bytes = strtoull(getenv("DEMO_TRACE_MAX"), NULL, 10);
  int iters = atoi(argv[2]);
  int sleep_ms = argc > 3 ? atoi(argv[3]) : 0;
  if (gs__trace_configure(&o) != 0) return 1;
  make_parameters(8);
  for (int it = 0; it < iters; it++) {
    gs__trace_iteration((uint64_t)it);
    int layers = 16 + (it % 5);
    for (int l = 0; l < layers; l++) forward_layer(0x100000 + (uint64_t)l, (uint64_t)(l + 1) << 16, l % 2);
    demo_alloc(0x9000, 3u << 20, 0, GS_CAT_OTHER);
    demo_free(0x9000, 3u << 20, 0, GS_CAT_OTHER);
    for (int l = layers; l-- > 0;) {
      gs__trace_saved(l % 2 ? GS_SAVED_DECOMPRESS : GS_SAVED_UNPACK, (uint64_t)(l + 1) << 16,
                      (uint64_t)(l + 1) << (l % 2 ? 18 : 16), 4, 15000, 0);
      demo_free(0x100000 + (uint64_t)l, (uint64_t)(l + 1) << 16, 0, l % 2 ? GS_CAT_COMPRESSED : GS_CAT_ACTIVATION);
    }
    if (it == iters / 2) gs__trace_oom(1ull << 34, 0, 2);
    if (sleep_ms) usleep((useconds_t)sleep_ms * 1000);
  }
  int rc = gs__trace_stop();
  printf("%llu\n", (unsigned long long)peak);
  return rc == 0 ? 0 : 1;
}
