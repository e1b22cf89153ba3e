/* report_html.c: a self-contained HTML page — stacked memory timeline (inline SVG) and tables. */
#include "report.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define RP_POINTS 2000 /* a long run stays light: max-preserving downsampling to this many */
#define RP_W 1200
#define RP_H 380
#define RP_L 80        /* left margin: y labels */
#define RP_B 30        /* bottom margin: x labels */

/* Bottom to top of the stack, with their colours. */
static const unsigned rp_stack[GS_CAT__COUNT] = {GS_CAT_ACTIVATION, GS_CAT_COMPRESSED, GS_CAT_OTHER};
static const char *const rp_colour[GS_CAT__COUNT] = {"#e15759", "#59a14f", "#bab0ac"};

static void rp_esc(FILE *f, const char *s) {
  for (; *s; s++) {
    if (*s == '<') fputs("&lt;", f);
    else if (*s == '>') fputs("&gt;", f);
    else if (*s == '&') fputs("&amp;", f);
    else if (*s == '"') fputs("&quot;", f);
    else fputc(*s, f);
  }
}

typedef struct rp_scale {
  uint64_t t0, t1, ymax;
} rp_scale;

static double rp_x(const rp_scale *s, uint64_t t) {
  return RP_L + (double)(t - s->t0) / (double)(s->t1 > s->t0 ? s->t1 - s->t0 : 1) * (RP_W - RP_L - 10);
}
static double rp_y(const rp_scale *s, uint64_t v) {
  return 10 + (RP_H - RP_B - 10) * (1.0 - (double)v / (double)(s->ymax ? s->ymax : 1));
}

/* One stacked band: upper edge left to right, lower edge back; values held until the next point. */
static void rp_series(FILE *f, const rp_scale *sc, const gs_rec_sample *p, size_t n, unsigned level) {
  unsigned cat = rp_stack[level];
  fprintf(f, "<path class=\"series\" data-category=\"%s\" fill=\"%s\" stroke=\"none\" d=\"", rp_cat_name(cat), rp_colour[level]);
  for (size_t i = 0; i < n; i++) {
    uint64_t top = 0;
    for (unsigned l = 0; l <= level; l++) top += p[i].by_cat[rp_stack[l]];
    double x = rp_x(sc, p[i].t), xn = rp_x(sc, i + 1 < n ? p[i + 1].t : sc->t1);
    fprintf(f, "%s%.1f,%.1f L%.1f,%.1f ", i ? "L" : "M", x, rp_y(sc, top), xn, rp_y(sc, top));
  }
  for (size_t i = n; i-- > 0;) {
    uint64_t bot = 0;
    for (unsigned l = 0; l < level; l++) bot += p[i].by_cat[rp_stack[l]];
    double x = rp_x(sc, p[i].t), xn = rp_x(sc, i + 1 < n ? p[i + 1].t : sc->t1);
    fprintf(f, "L%.1f,%.1f L%.1f,%.1f ", xn, rp_y(sc, bot), x, rp_y(sc, bot));
  }
  fprintf(f, "Z\"/>\n");
}

static void rp_axes(FILE *f, const rp_trace *t, const rp_scale *sc) {
  char b[32];
  for (int i = 0; i <= 4; i++) {
    uint64_t v = sc->ymax / 4 * (uint64_t)i;
    double y = rp_y(sc, v);
    fprintf(f, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>", RP_L, RP_W - 10, y, y);
    fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\">%s</text>\n", RP_L - 4, y + 4, rp_bytes(v, b, sizeof(b)));
  }
  bool ms = sc->t1 - sc->t0 < 2000000000ull; /* short runs read better in milliseconds */
  for (int i = 0; i <= 6; i++) {
    uint64_t tt = sc->t0 + (sc->t1 - sc->t0) / 6 * (uint64_t)i;
    const char *anchor = i == 0 ? "start" : i == 6 ? "end" : "middle";
    fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"%s\" font-size=\"11\">%.*f %s</text>\n", rp_x(sc, tt),
            RP_H - 10, anchor, ms ? 1 : 2, ms ? rp_sec(t, tt) * 1e3 : rp_sec(t, tt), ms ? "ms" : "s");
  }
}

/* Alternating bands, one per iteration (grouped when there are too many to see). */
static void rp_bands(FILE *f, const rp_trace *t, const rp_scale *sc) {
  size_t group = t->niters > 400 ? (t->niters + 399) / 400 : 1;
  for (size_t i = 0; i < t->niters; i += group) {
    size_t last = i + group - 1 < t->niters ? i + group - 1 : t->niters - 1;
    double x0 = rp_x(sc, t->iters[i].t0), x1 = rp_x(sc, t->iters[last].t1);
    fprintf(f, "<rect class=\"iteration\" x=\"%.1f\" y=\"10\" width=\"%.1f\" height=\"%d\" fill=\"%s\"><title>iteration %llu</title></rect>\n",
            x0, x1 > x0 ? x1 - x0 : 0.5, RP_H - RP_B - 10, (i / group) % 2 ? "#f4f4f4" : "#e9eef6", (unsigned long long)t->iters[i].n);
  }
}

static void rp_chart(FILE *f, const rp_trace *t) {
  size_t n;
  gs_rec_sample *raw = rp_downsample(t, t->peak_dev, 1, &n);
  if (!raw || !n || !t->nsamples) {
    free(raw);
    fprintf(f, "<p>No memory samples.</p>\n");
    return;
  }
  free(raw);
  rp_scale sc = {t->samples[0].t, t->t_last + 1, t->peak.total + t->peak.total / 10 + 1};
  if (t->niters && t->iters[0].t0 < sc.t0) sc.t0 = t->iters[0].t0;
  /* One point per pixel column or so, never more than RP_POINTS, each its bucket's maximum. */
  n = RP_W - RP_L - 10 < RP_POINTS ? RP_W - RP_L - 10 : RP_POINTS;
  gs_rec_sample *p = rp_buckets(t, t->peak_dev, n, sc.t0, sc.t1);
  if (!p) return;
  fprintf(f, "<svg class=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">\n", RP_W, RP_H, RP_W, RP_H);
  rp_bands(f, t, &sc);
  rp_axes(f, t, &sc);
  for (unsigned l = 0; l < GS_CAT__COUNT; l++) rp_series(f, &sc, p, n, l);
  double px = rp_x(&sc, t->peak.t), py = rp_y(&sc, t->peak.total);
  char b[32];
  fprintf(f, "<line class=\"peak\" x1=\"%.1f\" x2=\"%.1f\" y1=\"10\" y2=\"%d\" stroke=\"#000\" stroke-dasharray=\"4 3\"/>", px, px, RP_H - RP_B);
  bool left = px > RP_W - 160; /* near the right edge the label goes on the marker's left */
  fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"#000\"/><text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" font-size=\"12\" font-weight=\"bold\">peak %s</text>\n",
          px, py, left ? px - 6 : px + 6, py < 30 ? py + 16 : py - 6, left ? "end" : "start", rp_bytes(t->peak.total, b, sizeof(b)));
  fprintf(f, "</svg>\n<div class=\"legend\">");
  for (unsigned l = GS_CAT__COUNT; l-- > 0;)
    fprintf(f, "<span><i style=\"background:%s\"></i>%s</span>", rp_colour[l], rp_cat_name(rp_stack[l]));
  fprintf(f, "<span>%zu points, max-preserving</span></div>\n", n);
  free(p);
}

static void rp_tables(FILE *f, rp_trace *t) {
  char b[32], b2[32], where[512];
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
  fprintf(f, "</table></div>\n<table class=\"wide\"><tr><th>live at the peak</th><th>allocations</th><th>call site</th></tr>\n");
  for (size_t i = 0; i < t->ntop && i < 15; i++) {
    rp_site_text(t, t->top[i].site, where, sizeof(where));
    fprintf(f, "<tr><td>%s</td><td>%llu</td><td class=\"site\">", rp_bytes(t->top[i].bytes, b, 32), (unsigned long long)t->top[i].count);
    rp_esc(f, where);
    fprintf(f, "</td></tr>\n");
  }
  fprintf(f, "</table>\n");
}

static void rp_section(FILE *f, rp_trace *t) {
  char b[32];
  fprintf(f, "<h2>");
  rp_esc(f, t->name);
  if (t->hdr.rank >= 0) /* -1: the job set no RANK/LOCAL_RANK */
    fprintf(f, " &mdash; rank %d, pid %llu</h2>\n", t->hdr.rank, (unsigned long long)t->hdr.pid);
  else
    fprintf(f, " &mdash; pid %llu</h2>\n", (unsigned long long)t->hdr.pid);
  char dev[16];
  if (t->peak_dev == GS_DEVICE_HOST) snprintf(dev, sizeof(dev), "host");
  else snprintf(dev, sizeof(dev), "cuda:%d", t->peak_dev);
  fprintf(f, "<p class=\"peak\">Peak <b>%s</b> at %.3f s on %s.", rp_bytes(t->peak.total, b, 32), rp_sec(t, t->peak.t), dev);
  if (t->warning[0]) {
    fprintf(f, " <i>");
    rp_esc(f, t->warning);
    fprintf(f, "</i>");
  }
  fprintf(f, "</p>\n");
  rp_chart(f, t);
  rp_tables(f, t);
}

static void rp_rank_table(FILE *f, rp_trace *ts, size_t n) {
  char b[4][32];
  fprintf(f, "<table class=\"wide\"><tr><th>rank</th><th>pid</th><th>peak</th><th>at</th><th>activation</th><th>compressed</th><th>other</th></tr>\n");
  for (size_t i = 0; i < n; i++)
    fprintf(f, "<tr><td>%d</td><td>%llu</td><td>%s</td><td>%.3f s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n",
            ts[i].hdr.rank, (unsigned long long)ts[i].hdr.pid, rp_bytes(ts[i].peak.total, b[0], 32), rp_sec(&ts[i], ts[i].peak.t),
            rp_bytes(ts[i].peak.by_cat[GS_CAT_ACTIVATION], b[1], 32), rp_bytes(ts[i].peak.by_cat[GS_CAT_COMPRESSED], b[2], 32),
            rp_bytes(ts[i].peak.by_cat[GS_CAT_OTHER], b[3], 32));
  fprintf(f, "</table>\n");
}

int rp_write_html(const char *path, rp_trace *ts, size_t n, char *err, size_t errlen) {
  FILE *f = fopen(path, "w");
  if (!f) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return -errno;
  }
  fprintf(f, "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>gactshim memory report</title>\n<style>\n"
             "body{font-family:sans-serif;margin:20px;color:#222;background:#fff}table{border-collapse:collapse;margin:8px 16px 8px 0}\n"
             "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:right}th{background:#f0f0f0}\n"
             "td.site{text-align:left;font-family:monospace}.cols{display:flex;flex-wrap:wrap}.legend span{margin-right:14px;font-size:13px}\n"
             ".legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:middle}\n"
             "</style></head><body>\n<h1>gactshim memory report</h1>\n");
  if (n > 1) rp_rank_table(f, ts, n);
  for (size_t i = 0; i < n; i++) rp_section(f, &ts[i]);
  fprintf(f, "</body></html>\n");
  if (fclose(f) != 0) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return -EIO;
  }
  return 0;
}
