/* report_text.c: the terminal summary — peak, breakdown, call sites, compression, iterations. */
#include "report.h"

#include <string.h>

static void rp_text_ranks(FILE *out, rp_trace *ts, size_t n) {
  fprintf(out, "%-6s %-8s %-12s %-10s %-12s %-12s %-12s %s\n", "rank", "pid", "peak", "at (s)",
          "activation", "compressed", "other", "trace");
  for (size_t i = 0; i < n; i++) {
    rp_trace *t = &ts[i];
    char b[4][32];
    fprintf(out, "%-6d %-8llu %-12s %-10.3f %-12s %-12s %-12s %s\n", t->hdr.rank,
            (unsigned long long)t->hdr.pid, rp_bytes(t->peak.total, b[0], 32), rp_sec(t, t->peak.t),
            rp_bytes(t->peak.by_cat[GS_CAT_ACTIVATION], b[1], 32),
            rp_bytes(t->peak.by_cat[GS_CAT_COMPRESSED], b[2], 32),
            rp_bytes(t->peak.by_cat[GS_CAT_OTHER], b[3], 32), t->name);
  }
  fputc('\n', out);
}

static void rp_text_peak(FILE *out, rp_trace *t) {
  char b[32], d[48];
  if (t->peak_dev < 0) {
    fprintf(out, "no memory samples recorded (no tracked allocation)\n");
    return;
  }
  fprintf(out, "peak: %s (%llu bytes) of %s at %.3f s\n", rp_bytes(t->peak.total, b, sizeof(b)),
          (unsigned long long)t->peak.total, rp_memory_label(t, d, sizeof(d)), rp_sec(t, t->peak.t));
  if (t->peak_without > t->peak.total)
    fprintf(out, "without gactshim: %s (%llu bytes): %.1fx lower with it\n", rp_bytes(t->peak_without, b, sizeof(b)),
            (unsigned long long)t->peak_without, (double)t->peak_without / (double)(t->peak.total ? t->peak.total : 1));
  else if (t->peak_without)
    fprintf(out, "without gactshim: the same (nothing compressed was live at the peak)\n");
  else
    fprintf(out, "without gactshim: not recorded (a trace of format 2.0)\n");
  if (t->has_end && t->end.registry_peak && t->end.registry_peak != t->peak.total)
    fprintf(out, "  (the registry counted a peak of %llu bytes over all devices)\n",
            (unsigned long long)t->end.registry_peak);
  fprintf(out, "live at the peak by category:\n");
  for (unsigned c = 0; c < GS_CAT__COUNT; c++) {
    double pct = t->peak.total ? 100.0 * (double)t->peak.by_cat[c] / (double)t->peak.total : 0;
    fprintf(out, "  %-12s %12s  %5.1f%%  (%llu bytes)\n", rp_cat_name(c), rp_bytes(t->peak.by_cat[c], b, sizeof(b)),
            pct, (unsigned long long)t->peak.by_cat[c]);
  }
  fprintf(out, "by kind (reserved segments vs saved tensors):\n");
  for (unsigned k = 0; k < GS_KIND__COUNT; k++)
    if (t->peak.by_kind[k]) fprintf(out, "  %-12s %12s\n", rp_kind_name(k), rp_bytes(t->peak.by_kind[k], b, sizeof(b)));
}

static void rp_text_sites(FILE *out, rp_trace *t) {
  char b[32], where[512];
  if (!t->ntop) return;
  fprintf(out, "top call sites live at the peak (%s in recorded allocations%s):\n",
          rp_bytes(t->top_bytes, b, sizeof(b)), t->nattrs ? ", saved tensors aside" : "");
  for (size_t i = 0; i < t->ntop && i < 10; i++) {
    rp_site_text(t, t->top[i].site, where, sizeof(where));
    fprintf(out, "  %12s  %6llu allocs  %s\n", rp_bytes(t->top[i].bytes, b, sizeof(b)),
            (unsigned long long)t->top[i].count, where);
  }
}

static void rp_text_comp(FILE *out, rp_trace *t) {
  static const char *const ops[4] = {"kept", "compressed", "unpacked", "decompressed"};
  char b1[32], b2[32];
  if (!t->comp[0].count && !t->comp[1].count) return;
  fprintf(out, "saved tensors:\n");
  for (int i = 0; i < 4; i++) {
    const rp_comp *c = &t->comp[i];
    if (!c->count) continue;
    fprintf(out, "  %-13s %8llu  %12s -> %12s", ops[i], (unsigned long long)c->count,
            rp_bytes(c->before, b1, 32), rp_bytes(c->after, b2, 32));
    if (c->after && i == GS_SAVED_COMPRESS) fprintf(out, "  ratio %.2fx", (double)c->before / (double)c->after);
    if (c->dur_ns) fprintf(out, "  %.3f ms", (double)c->dur_ns / 1e6);
    fputc('\n', out);
  }
  uint64_t before = t->comp[0].before + t->comp[1].before, after = t->comp[0].after + t->comp[1].after;
  if (after) fprintf(out, "  all packed: %s -> %s, ratio %.2fx\n", rp_bytes(before, b1, 32),
                     rp_bytes(after, b2, 32), (double)before / (double)after);
}

/* The layers that saved the most, with what compression made of them. */
static void rp_text_layers(FILE *out, rp_trace *t) {
  char b[4][32], bits[16], nodes[96], where[160];
  if (!t->nlayers) {
    fprintf(out, "saved tensors by layer: no attributions recorded (trace format 2.0, or GACTSHIM_ATTRIBUTION=0)\n");
    return;
  }
  fprintf(out, "saved tensors by layer (top %zu of %zu, by bytes saved over the run):\n",
          t->nlayers < 10 ? t->nlayers : 10, t->nlayers);
  fprintf(out, "  %10s %10s %5s %10s %9s %6s  %-28s %-22s %s\n", "saved", "held", "bits", "at peak",
          "life ms", "count", "layer", "node", "where");
  for (size_t i = 0; i < t->nlayers && i < 10; i++) {
    const rp_layer *l = &t->layers[i];
    if (l->bits_lo == l->bits_hi) snprintf(bits, sizeof(bits), "%s", l->bits_hi ? "" : "full");
    else snprintf(bits, sizeof(bits), "%u-%u", l->bits_lo, l->bits_hi);
    if (l->bits_lo == l->bits_hi && l->bits_hi) snprintf(bits, sizeof(bits), "%u", l->bits_hi);
    fprintf(out, "  %10s %10s %5s %10s %9.2f %6llu  %-28s %-22s %s\n", rp_bytes(l->bytes, b[0], 32),
            rp_bytes(l->after, b[1], 32), bits, rp_bytes(l->at_peak, b[2], 32),
            l->lives ? (double)l->life_ns / (double)l->lives / 1e6 : 0.0, (unsigned long long)l->count,
            rp_layer_name(t, l), rp_nodes_text(t, l, nodes, sizeof(nodes)), rp_frame_text(t, l, where, sizeof(where)));
  }
}

static void rp_text_whatif(FILE *out, rp_trace *t) {
  const rp_whatif *w = &t->whatif;
  char b[2][32];
  if (!w->ok) {
    fprintf(out, "what-if: %s\n", w->why);
    return;
  }
  fprintf(out, "what-if, iteration %llu (%llu saved tensors, %llu compressible; measured peak %s):\n",
          (unsigned long long)w->iteration, (unsigned long long)w->tensors, (unsigned long long)w->candidates,
          rp_bytes(w->measured, b[0], 32));
  for (size_t i = 0; i < w->nrows; i++)
    fprintf(out, "  %-42s %12s  (%llu compressed)\n", w->rows[i].what, rp_bytes(w->rows[i].peak, b[0], 32),
            (unsigned long long)w->rows[i].compressed);
  fprintf(out, "  smallest GACTSHIM_BUDGET the budget policy could meet: %s (%llu bytes)\n",
          rp_bytes(w->min_budget, b[1], 32), (unsigned long long)w->min_budget);
  fprintf(out, "  how: %s\n", rp_whatif_method);
}

static void rp_text_iters(FILE *out, rp_trace *t) {
  char b[32];
  if (!t->niters) return;
  size_t step = t->niters > 12 ? t->niters / 12 : 1, hi = 0;
  for (size_t i = 0; i < t->niters; i++) if (t->iters[i].peak > t->iters[hi].peak) hi = i;
  fprintf(out, "per-iteration peak (%zu iterations%s):\n", t->niters, step > 1 ? ", sampled" : "");
  for (size_t i = 0; i < t->niters; i++) {
    if (i % step && i != hi && i != t->niters - 1) continue;
    fprintf(out, "  iter %-8llu %8.3f s  %12s%s\n", (unsigned long long)t->iters[i].n,
            rp_sec(t, t->iters[i].t0), rp_bytes(t->iters[i].peak, b, sizeof(b)), i == hi ? "  <- highest" : "");
  }
}

static void rp_text_drops(FILE *out, rp_trace *t) {
  const gs_rec_drop *d = &t->drop;
  if (t->warning[0]) fprintf(out, "warning: %s\n", t->warning);
  if (t->ooms) fprintf(out, "out-of-memory errors: %llu\n", (unsigned long long)t->ooms);
  if (d->ring_dropped || d->detail_dropped || d->samples_merged || d->sites_dropped)
    fprintf(out, "bounded recording: %llu events lost to a full queue, %llu detail records dropped "
            "(detail complete from %.3f s), %llu samples merged, %llu call paths cut\n",
            (unsigned long long)d->ring_dropped, (unsigned long long)d->detail_dropped,
            d->detail_from ? rp_sec(t, d->detail_from) : 0.0, (unsigned long long)d->samples_merged,
            (unsigned long long)d->sites_dropped);
}

/* The per-tensor decisions of the last iteration whose plan was recorded (PLAN records). */
static void rp_text_plan(FILE *out, rp_trace *t) {
  static const char *const reasons[] = GS_PLAN_REASON_NAMES;
  uint64_t last = 0;
  size_t n = 0, shown = 0;
  for (size_t i = 0; i < t->nevents; i++)
    if (t->events[i].type == GS_REC_PLAN && (!n++ || t->events[i].a > last)) last = t->events[i].a;
  if (!n) return;
  fprintf(out, "decisions of iteration %llu (index, full size, bits, why; then the next iteration's):\n",
          (unsigned long long)last);
  for (size_t i = 0; i < t->nevents; i++) {
    const gs_trace_event *e = &t->events[i];
    if (e->type != GS_REC_PLAN || e->a != last || e->kind == 0) continue;
    char b[32];
    const char *why = e->kind < GS_ARRAY_LEN(reasons) ? reasons[e->kind] : "?";
    const char *next = e->cat < GS_ARRAY_LEN(reasons) ? reasons[e->cat] : "?";
    if (shown++ < 40)
      fprintf(out, "  #%-5llu %12s  %u bits  %-12s -> %u bits %s%s\n", (unsigned long long)e->b,
              rp_bytes(e->c, b, sizeof(b)), e->cat2, why, e->flags & 0xff, next,
              (e->flags & 0x100) ? "  (alive at peak)" : "");
  }
  if (shown > 40) fprintf(out, "  ... %zu more\n", shown - 40);
}

/* "== name (pid N, rank R)"; no rank when the job set none, and a snapshot says so once. */
static void rp_text_heading(FILE *out, const rp_trace *t) {
  char rank[32] = "";
  if (t->hdr.rank >= 0) snprintf(rank, sizeof(rank), ", rank %d", t->hdr.rank);
  if (t->hdr.flags & GS_TRACE_F_SNAPSHOT)
    fprintf(out, "== %s: live snapshot%s\n", t->name, rank);
  else
    fprintf(out, "== %s (pid %llu%s)\n", t->name, (unsigned long long)t->hdr.pid, rank);
}

void rp_print_text(FILE *out, rp_trace *ts, size_t n) {
  if (n > 1) rp_text_ranks(out, ts, n);
  for (size_t i = 0; i < n; i++) {
    rp_trace *t = &ts[i];
    rp_text_heading(out, t);
    rp_text_peak(out, t);
    rp_text_layers(out, t);
    rp_text_whatif(out, t);
    rp_text_sites(out, t);
    rp_text_comp(out, t);
    rp_text_iters(out, t);
    rp_text_plan(out, t);
    rp_text_drops(out, t);
    if (i + 1 < n) fputc('\n', out);
  }
}
