/* codec-error.c: measures the quantization error of candidate group-meta encodings (docs/codec-format.md). */
#include "codec_core.h"
#include "testdata.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

enum { M_F32, M_BF16_NEAREST, M_BF16_DOWN, M_F16_DOWN, M_CHOICE, M_COUNT };
static const char *mode_names[M_COUNT] = {"fp32 meta (ideal)", "bf16 nearest", "bf16 min-down/step-up",
                                          "fp16 min-down/step-up", "per-group fp16|bf16 (chosen)"};

/* Meta of one group under a candidate encoding; decode is always min + q * step. */
static gs__meta meta_of(int mode, float mn, float mx, unsigned bits) {
  float k = (float)((1u << bits) - 1u);
  gs__meta m = {0};
  switch (mode) {
  case M_F32:
    m.minf = mn;
    m.stepf = (mx - mn) / k;
    break;
  case M_BF16_NEAREST: /* what a plain bf16 store of min and step gives */
    m.minf = gs__bf16_to_f32(gs__f32_to_bf16(mn, GS_RN));
    m.stepf = gs__bf16_to_f32(gs__f32_to_bf16((mx - mn) / k, GS_RN));
    break;
  case M_BF16_DOWN:
  case M_F16_DOWN:
    if (!gs__meta_try(mn, mx, k, mode == M_BF16_DOWN, &m)) gs__meta_try(mn, mx, k, 1, &m);
    return m;
  default:
    gs__meta_compute(mn, mx, 0, bits, &m);
    return m;
  }
  m.inv = m.stepf > 0 ? 1.0f / m.stepf : 0.0f;
  return m;
}

typedef struct stats {
  double se, maxerr_steps, bias;
} stats;

static stats measure(const float *x, uint64_t n, int mode, unsigned bits, uint32_t group) {
  stats st = {0};
  uint64_t rs = 99;
  for (uint64_t g0 = 0; g0 < n; g0 += group) {
    float mn = x[g0], mx = x[g0];
    for (uint64_t i = g0; i < g0 + group; i++) {
      mn = x[i] < mn ? x[i] : mn;
      mx = x[i] > mx ? x[i] : mx;
    }
    gs__meta m = meta_of(mode, mn, mx, bits);
    double ideal = ((double)mx - mn) / ((1u << bits) - 1u);
    for (uint64_t i = g0; i < g0 + group; i++) {
      float u = (float)gs_td_unit(&rs);
      double y = gs__dequant(gs__quant(x[i], &m, u, (1u << bits) - 1u), &m);
      double e = y - x[i];
      st.se += e * e;
      st.bias += e;
      if (ideal > 0 && fabs(e) / ideal > st.maxerr_steps) st.maxerr_steps = fabs(e) / ideal;
    }
  }
  return st;
}

int main(void) {
  const uint64_t n = 1u << 20;
  const uint32_t group = 256;
  static const char *data_names[] = {"N(0,1)", "LayerNorm 100+N(0,1)", "ReLU(N(0,1))"};
  float *x = malloc(n * sizeof *x);
  printf("RMS error relative to fp32 meta; max |error| in ideal steps (range/(2^b-1)); "
         "mean error (bias) / ideal RMS. G=%u, n=%llu.\n", group, (unsigned long long)n);
  for (int d = 0; d < 3; d++) {
    gs_td_fill(x, NULL, n, 0, (gs_td_kind)d, 1234 + d);
    for (unsigned bits = 2; bits <= 8; bits *= 2) {
      stats ref = measure(x, n, M_F32, bits, group);
      double ref_rms = sqrt(ref.se / n);
      printf("%-22s bits=%u  ideal RMS %.4g\n", data_names[d], bits, ref_rms);
      for (int mode = 1; mode < M_COUNT; mode++) {
        stats st = measure(x, n, mode, bits, group);
        printf("    %-30s rms x%.4f  max %.3f steps  bias %+.4f\n", mode_names[mode],
               sqrt(st.se / n) / ref_rms, st.maxerr_steps, st.bias / n / ref_rms);
      }
    }
  }
  free(x);
  return 0;
}
