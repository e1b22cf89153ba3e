/* trace-demo.c: a stand-in training loop that drives the recorder directly (no CUDA, no torch). */
#include "timeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Usage: trace-demo PATH ITERATIONS [SLEEP_MS] — PATH may be "-" for memory only (attach). It
 * allocates parameters once (as "other": the shim does not tell them apart from the rest of the
 * allocator's memory), then each iteration activations that are "saved" (half compressed 4x),
 * a temporary, and frees those after a backward. Saved tensors carry attributions (model.layers.N).
 * Prints the true peak and the true peak without compression on stdout. */

static uint64_t live, peak, expand, peak_without;
static uint32_t layer_attr[32]; /* each layer's attribution (module, node, line) */

static void demo_alloc(uint64_t key, uint64_t size, int dev, gs_category cat) {
  gs_alloc_record r = {.size = size, .device = (int16_t)dev, .kind = GS_KIND_DEVICE, .category = (uint8_t)cat,
                       .time_ns = gs__now_ns()};
  gs__trace_alloc(key, &r);
  live += size;
  if (live > peak) peak = live;
  if (live + expand > peak_without) peak_without = live + expand;
}

static void demo_free(uint64_t key, uint64_t size, int dev, gs_category cat) {
  gs_alloc_record r = {.size = size, .device = (int16_t)dev, .kind = GS_KIND_DEVICE, .category = (uint8_t)cat};
  gs__trace_free(key, &r);
  live -= size;
}

/* Separate functions so the call sites differ. */
/* Layer l is "model.layers.<l>", saved by GeluBackward0 (odd, compressed 4x) or AddmmBackward0. */
static void make_attributions(void) {
  char name[64];
  uint32_t file = gs__trace_intern("demo/model.py", 13), fn = gs__trace_intern("Layer.forward", 13);
  for (unsigned l = 0; l < 32; l++) {
    snprintf(name, sizeof(name), "model.layers.%u", l);
    const char *node = l % 2 ? "GeluBackward0" : "AddmmBackward0";
    gs_rec_attr a = {.module = gs__trace_intern(name, strlen(name)), .node = gs__trace_intern(node, strlen(node)),
                     .file = file, .line = 10 + l, .function = fn};
    layer_attr[l] = gs__trace_attr(&a);
  }
}

static uint64_t serial;

__attribute__((noinline)) static uint64_t forward_layer(uint64_t key, uint64_t size, unsigned l, bool compress) {
  gs_trace_saved_id id = {.attr = layer_attr[l], .serial = ++serial, .flags = GS_SAVED_F_CANDIDATE | (4u << GS_SAVED_F_ELEM_SHIFT)};
  if (compress) expand += 3 * size; /* it would have held 4x its bytes */
  demo_alloc(key, size, 0, compress ? GS_CAT_COMPRESSED : GS_CAT_ACTIVATION);
  gs__trace_saved(compress ? GS_SAVED_COMPRESS : GS_SAVED_PACK, compress ? size * 4 : size, size,
                  compress ? 4 : 0, 100, 0, &id); /* a short "duration": its slice starts before the push */
  return id.serial;
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
  make_attributions();
  uint64_t serials[32];
  for (int it = 0; it < iters; it++) {
    gs__trace_iteration((uint64_t)it);
    int layers = 16 + (it % 5);
    for (int l = 0; l < layers; l++)
      serials[l] = forward_layer(0x100000 + (uint64_t)l, (uint64_t)(l + 1) << 16, (unsigned)l, l % 2);
    demo_alloc(0x9000, 3u << 20, 0, GS_CAT_OTHER);
    demo_free(0x9000, 3u << 20, 0, GS_CAT_OTHER);
    for (int l = layers; l-- > 0;) {
      uint64_t size = (uint64_t)(l + 1) << 16;
      gs_trace_saved_id id = {.attr = layer_attr[l], .serial = serials[l]};
      gs__trace_saved(l % 2 ? GS_SAVED_DECOMPRESS : GS_SAVED_UNPACK, size, l % 2 ? size * 4 : size,
                      l % 2 ? 4 : 0, 100, 0, &id);
      gs__trace_saved(GS_SAVED_RELEASE, size, l % 2 ? size * 4 : size, l % 2 ? 4 : 0, 0, 0, &id);
      demo_free(0x100000 + (uint64_t)l, size, 0, l % 2 ? GS_CAT_COMPRESSED : GS_CAT_ACTIVATION);
      if (l % 2) expand -= 3 * size;
    }
    if (it == iters / 2) gs__trace_oom(1ull << 34, 0, 2);
    if (sleep_ms) usleep((useconds_t)sleep_ms * 1000);
  }
  int rc = gs__trace_stop();
  printf("%llu %llu\n", (unsigned long long)peak, (unsigned long long)peak_without);
  return rc == 0 ? 0 : 1;
}
