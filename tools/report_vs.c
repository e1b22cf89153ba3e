/* report_vs.c: two runs side by side (--vs) — peaks, step time and bytes per layer, rank by rank. */
#include "report.h"

#include <string.h>

const rp_trace *rp_vs_partner(const rp_trace *a, size_t i, const rp_trace *bs, size_t nb) {
  /* Ranks of one job keep their rows: rank r of A against rank r of B, else by position. */
  if (a->hdr.rank >= 0)
    for (size_t j = 0; j < nb; j++)
      if (bs[j].hdr.rank == a->hdr.rank) return &bs[j];
  return i < nb ? &bs[i] : NULL;
}

const rp_layer *rp_vs_layer(const rp_trace *t, const char *name) {
  for (size_t i = 0; i < t->nlayers; i++)
    if (strcmp(rp_layer_name(t, &t->layers[i]), name) == 0) return &t->layers[i];
  return NULL;
}

static void rp_vs_ms(char *buf, size_t len, uint64_t ns) {
  if (ns) snprintf(buf, len, "%.2f ms", (double)ns / 1e6);
  else snprintf(buf, len, "-");
}

static void rp_vs_rows(FILE *out, rp_trace *as, size_t na, rp_trace *bs, size_t nb) {
  char b[6][32];
  fprintf(out, "%-6s %12s %12s %7s %12s %12s  %s\n", "rank", "peak A", "peak B", "B/A", "step A", "step B",
          "A | B");
  for (size_t i = 0; i < na; i++) {
    const rp_trace *a = &as[i], *p = rp_vs_partner(a, i, bs, nb);
    if (!p) continue;
    rp_vs_ms(b[2], 32, a->step_ns);
    rp_vs_ms(b[3], 32, p->step_ns);
    snprintf(b[4], 32, "%d", a->hdr.rank);
    fprintf(out, "%-6s %12s %12s %6.2fx %12s %12s  %s | %s\n", a->hdr.rank >= 0 ? b[4] : "-",
            rp_bytes(a->peak.total, b[0], 32), rp_bytes(p->peak.total, b[1], 32),
            a->peak.total ? (double)p->peak.total / (double)a->peak.total : 0.0, b[2], b[3], a->name, p->name);
  }
}

/* Bytes held per layer (over the run) in A and B: A's largest layers, then B's that A lacks. */
static void rp_vs_layers(FILE *out, const rp_trace *a, const rp_trace *p) {
  char b[4][32];
  if (!a->nlayers && !p->nlayers) return;
  char rank[24] = "";
  if (a->hdr.rank >= 0) snprintf(rank, sizeof(rank), " (rank %d)", a->hdr.rank);
  fprintf(out, "bytes saved -> held per layer, A | B%s:\n", rank);
  size_t shown = 0;
  for (int side = 0; side < 2; side++) {
    const rp_trace *x = side ? p : a, *y = side ? a : p;
    for (size_t i = 0; i < x->nlayers && shown < 15; i++) {
      const char *name = rp_layer_name(x, &x->layers[i]);
      const rp_layer *la = side ? rp_vs_layer(a, name) : &x->layers[i];
      const rp_layer *lb = side ? &x->layers[i] : rp_vs_layer(p, name);
      if (side && rp_vs_layer(y, name)) continue; /* shown in A's pass */
      fprintf(out, "  %10s -> %10s | %10s -> %10s  %s\n", la ? rp_bytes(la->bytes, b[0], 32) : "-",
              la ? rp_bytes(la->after, b[1], 32) : "-", lb ? rp_bytes(lb->bytes, b[2], 32) : "-",
              lb ? rp_bytes(lb->after, b[3], 32) : "-", name);
      shown++;
    }
  }
}

void rp_print_vs(FILE *out, rp_trace *as, size_t na, rp_trace *bs, size_t nb) {
  char h[160];
  fprintf(out, "A: %zu trace%s, B (--vs): %zu trace%s\n", na, na > 1 ? "s" : "", nb, nb > 1 ? "s" : "");
  rp_vs_rows(out, as, na, bs, nb);
  for (size_t i = 0; i < na; i++) {
    const rp_trace *p = rp_vs_partner(&as[i], i, bs, nb);
    fprintf(out, "\nA %s: %s\n", as[i].name, rp_headline(&as[i], h, sizeof(h)));
    if (!p) continue;
    fprintf(out, "B %s: %s\n", p->name, rp_headline(p, h, sizeof(h)));
    rp_vs_layers(out, &as[i], p);
  }
}
