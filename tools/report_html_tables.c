/* report_html_tables.c: the HTML report's tables — peak breakdown, layers, what-if, call sites. */
#include "report.h"

#include <string.h>

static void rp_peak_tables(FILE *f, const rp_trace *t) {
  char b[32], b2[32];
  fprintf(f, "<div class=\"cols\"><table><tr><th>live at the peak</th><th>bytes</th><th>%%</th></tr>\n");
  for (unsigned c = 0; c < GS_CAT__COUNT; c++)
    fprintf(f, "<tr><td>%s</td><td>%s</td><td>%.1f</td></tr>\n", rp_cat_name(c), rp_bytes(t->peak.by_cat[c], b, 32),
            t->peak.total ? 100.0 * (double)t->peak.by_cat[c] / (double)t->peak.total : 0.0);
  for (unsigned k = 0; k < GS_KIND__COUNT; k++)
    if (t->peak.by_kind[k]) fprintf(f, "<tr><td>kind: %s</td><td>%s</td><td></td></tr>\n", rp_kind_name(k), rp_bytes(t->peak.by_kind[k], b, 32));
  fprintf(f, "</table>\n<table><tr><th>saved tensors</th><th>count</th><th>before</th><th>after</th><th>ratio</th></tr>\n");
  static const char *const ops[4] = {"kept", "compressed", "unpacked", "decompressed"};
  for (int i = 0; i < 4; i++)
    fprintf(f, "<tr><td>%s</td><td>%llu</td><td>%s</td><td>%s</td><td>%.2f</td></tr>\n", ops[i], (unsigned long long)t->comp[i].count,
            rp_bytes(t->comp[i].before, b, 32), rp_bytes(t->comp[i].after, b2, 32),
            i == GS_SAVED_COMPRESS && t->comp[i].after ? (double)t->comp[i].before / (double)t->comp[i].after : 1.0);
  fprintf(f, "</table></div>\n");
}

/* A sortable table (report_html_js.c): data-v holds each cell's sort key. */
static void rp_layer_table(FILE *f, const rp_trace *t) {
  char b[32], s[160];
  if (!t->nlayers) {
    fprintf(f, "<p>Saved tensors by layer: no attributions recorded (trace format 2.0, or GACTSHIM_ATTRIBUTION=0).</p>\n");
    return;
  }
  fprintf(f, "<h3>Saved tensors by layer</h3>\n<table class=\"wide sortable layers\"><thead><tr><th>layer</th><th>node</th>"
             "<th>saved</th><th>held</th><th>bits</th><th>held at the peak</th><th>mean lifetime</th><th>count</th>"
             "<th>where</th></tr></thead><tbody>\n");
  for (size_t i = 0; i < t->nlayers && i < 500; i++) {
    const rp_layer *l = &t->layers[i];
    fprintf(f, "<tr><td class=\"site\" data-v=\"");
    rp_esc(f, rp_layer_name(t, l));
    fprintf(f, "\">");
    rp_esc(f, rp_layer_name(t, l));
    fprintf(f, "</td><td class=\"site\">");
    rp_esc(f, rp_nodes_text(t, l, s, sizeof(s)));
    fprintf(f, "</td><td data-v=\"%llu\">%s</td>", (unsigned long long)l->bytes, rp_bytes(l->bytes, b, 32));
    fprintf(f, "<td data-v=\"%llu\">%s</td>", (unsigned long long)l->after, rp_bytes(l->after, b, 32));
    if (l->bits_lo == l->bits_hi) snprintf(s, sizeof(s), l->bits_hi ? "%u" : "full", l->bits_hi);
    else snprintf(s, sizeof(s), "%u&ndash;%u", l->bits_lo, l->bits_hi);
    fprintf(f, "<td data-v=\"%u\">%s</td>", l->bits_hi ? l->bits_hi : 32, s);
    fprintf(f, "<td data-v=\"%llu\">%s</td>", (unsigned long long)l->at_peak, rp_bytes(l->at_peak, b, 32));
    double ms = l->lives ? (double)l->life_ns / (double)l->lives / 1e6 : 0.0;
    fprintf(f, "<td data-v=\"%.6f\">%.2f ms</td><td data-v=\"%llu\">%llu</td><td class=\"site\">", ms, ms,
            (unsigned long long)l->count, (unsigned long long)l->count);
    rp_esc(f, rp_frame_text(t, l, s, sizeof(s)));
    fprintf(f, "</td></tr>\n");
  }
  fprintf(f, "</tbody></table>\n");
}

static void rp_whatif_table(FILE *f, const rp_trace *t) {
  const rp_whatif *w = &t->whatif;
  char b[32];
  if (!w->ok) {
    fprintf(f, "<p>What-if: ");
    rp_esc(f, w->why);
    fprintf(f, ".</p>\n");
    return;
  }
  fprintf(f, "<h3>What if (iteration %llu: %llu saved tensors, %llu compressible; measured peak %s)</h3>\n",
          (unsigned long long)w->iteration, (unsigned long long)w->tensors, (unsigned long long)w->candidates,
          rp_bytes(w->measured, b, 32));
  fprintf(f, "<table class=\"whatif\"><tr><th>setting</th><th>predicted peak</th><th>compressed tensors</th></tr>\n");
  for (size_t i = 0; i < w->nrows; i++)
    fprintf(f, "<tr><td>%s</td><td>%s</td><td>%llu</td></tr>\n", w->rows[i].what, rp_bytes(w->rows[i].peak, b, 32),
            (unsigned long long)w->rows[i].compressed);
  fprintf(f, "<tr><td>smallest GACTSHIM_BUDGET the budget policy could meet</td><td>%s</td><td></td></tr></table>\n",
          rp_bytes(w->min_budget, b, 32));
  fprintf(f, "<p class=\"how\">How: %s</p>\n", rp_whatif_method);
}

static void rp_sites_table(FILE *f, rp_trace *t) {
  char b[32], where[512];
  if (!t->ntop) return;
  fprintf(f, "<h3>Call sites live at the peak%s</h3>\n<table class=\"wide\"><tr><th>bytes</th><th>allocations</th><th>call site</th></tr>\n",
          t->nattrs ? " (allocations outside autograd)" : "");
  for (size_t i = 0; i < t->ntop && i < 15; i++) {
    rp_site_text(t, t->top[i].site, where, sizeof(where));
    fprintf(f, "<tr><td>%s</td><td>%llu</td><td class=\"site\">", rp_bytes(t->top[i].bytes, b, 32), (unsigned long long)t->top[i].count);
    rp_esc(f, where);
    fprintf(f, "</td></tr>\n");
  }
  fprintf(f, "</table>\n");
}

void rp_html_tables(FILE *f, rp_trace *t) {
  rp_peak_tables(f, t);
  rp_layer_table(f, t);
  rp_whatif_table(f, t);
  rp_sites_table(f, t);
}

static void rp_rank_row(FILE *f, const char *run, const rp_trace *t) {
  char b[4][32], rank[16], step[32] = "-";
  snprintf(rank, sizeof(rank), "%d", t->hdr.rank);
  if (t->step_ns) snprintf(step, sizeof(step), "%.2f ms", (double)t->step_ns / 1e6);
  fprintf(f, "<tr><td>%s</td><td>%s</td><td>%llu</td><td>%s</td><td>%s</td><td>%.3f s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n",
          run, t->hdr.rank >= 0 ? rank : "-", (unsigned long long)t->hdr.pid, rp_bytes(t->peak.total, b[0], 32),
          t->peak_without ? rp_bytes(t->peak_without, b[1], 32) : "-", rp_sec(t, t->peak.t),
          rp_bytes(t->peak.by_cat[GS_CAT_ACTIVATION], b[2], 32), rp_bytes(t->peak.by_cat[GS_CAT_COMPRESSED], b[3], 32),
          step);
}

void rp_rank_table(FILE *f, rp_trace *ts, size_t n, rp_trace *bs, size_t nb) {
  fprintf(f, "<table class=\"wide ranks\"><tr><th>run</th><th>rank</th><th>pid</th><th>peak</th><th>without gactshim</th>"
             "<th>at</th><th>activation</th><th>compressed</th><th>step (median)</th></tr>\n");
  for (size_t i = 0; i < n; i++) rp_rank_row(f, nb ? "A" : "", &ts[i]);
  for (size_t i = 0; i < nb; i++) rp_rank_row(f, "B", &bs[i]);
  fprintf(f, "</table>\n");
}

void rp_html_vs_table(FILE *f, rp_trace *as, size_t na, rp_trace *bs, size_t nb) {
  char b[4][32];
  fprintf(f, "<table class=\"wide vs\"><tr><th>rank</th><th>peak A</th><th>peak B</th><th>B/A</th><th>step A</th>"
             "<th>step B</th><th>A</th><th>B</th></tr>\n");
  for (size_t i = 0; i < na; i++) {
    const rp_trace *a = &as[i], *p = rp_vs_partner(a, i, bs, nb);
    if (!p) continue;
    snprintf(b[2], 32, "%.2f ms", (double)a->step_ns / 1e6);
    snprintf(b[3], 32, "%.2f ms", (double)p->step_ns / 1e6);
    fprintf(f, "<tr><td>%d</td><td>%s</td><td>%s</td><td>%.2fx</td><td>%s</td><td>%s</td><td class=\"site\">", a->hdr.rank,
            rp_bytes(a->peak.total, b[0], 32), rp_bytes(p->peak.total, b[1], 32),
            a->peak.total ? (double)p->peak.total / (double)a->peak.total : 0.0, a->step_ns ? b[2] : "-", p->step_ns ? b[3] : "-");
    rp_esc(f, a->name);
    fprintf(f, "</td><td class=\"site\">");
    rp_esc(f, p->name);
    fprintf(f, "</td></tr>\n");
  }
  fprintf(f, "</table>\n");
}

void rp_html_vs_layers(FILE *f, const rp_trace *a, const rp_trace *b) {
  char x[4][32];
  if (!a->nlayers && !b->nlayers) return;
  fprintf(f, "<table class=\"wide sortable vs-layers\"><thead><tr><th>layer</th><th>saved A</th><th>held A</th><th>saved B</th>"
             "<th>held B</th></tr></thead><tbody>\n");
  for (int side = 0; side < 2; side++) {
    const rp_trace *t = side ? b : a;
    for (size_t i = 0; i < t->nlayers && i < 300; i++) {
      const char *name = rp_layer_name(t, &t->layers[i]);
      if (side && rp_vs_layer(a, name)) continue; /* A's pass showed it */
      const rp_layer *la = rp_vs_layer(a, name), *lb = rp_vs_layer(b, name);
      fprintf(f, "<tr><td class=\"site\">");
      rp_esc(f, name);
      fprintf(f, "</td><td data-v=\"%llu\">%s</td><td data-v=\"%llu\">%s</td><td data-v=\"%llu\">%s</td><td data-v=\"%llu\">%s</td></tr>\n",
              la ? (unsigned long long)la->bytes : 0ull, la ? rp_bytes(la->bytes, x[0], 32) : "-",
              la ? (unsigned long long)la->after : 0ull, la ? rp_bytes(la->after, x[1], 32) : "-",
              lb ? (unsigned long long)lb->bytes : 0ull, lb ? rp_bytes(lb->bytes, x[2], 32) : "-",
              lb ? (unsigned long long)lb->after : 0ull, lb ? rp_bytes(lb->after, x[3], 32) : "-");
    }
  }
  fprintf(f, "</tbody></table>\n");
}
