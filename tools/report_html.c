/* report_html.c: a self-contained HTML page — memory timeline (inline SVG), its data, and tables. */
#include "report.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define RP_POINTS 2000 /* a long run stays light: max-preserving downsampling to this many */
#define RP_DATA 20000  /* samples embedded for hover and zoom (max-preserving too) */

/* Bottom to top of the stack, with their colours. */
static const unsigned rp_stack[GS_CAT__COUNT] = {GS_CAT_ACTIVATION, GS_CAT_COMPRESSED, GS_CAT_OTHER};
static const char *const rp_colour[GS_CAT__COUNT] = {"#e15759", "#59a14f", "#bab0ac"};
#define RP_WITHOUT_COLOUR "#4e79a7"
#define RP_VS_COLOUR "#f28e2b"

void rp_esc(FILE *f, const char *s) {
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

/* Whether category cat is ever non-zero on the device: a series nothing produces is not drawn. */
static bool rp_cat_used(const rp_trace *t, unsigned cat) {
  for (size_t i = 0; i < t->nsamples; i++)
    if (t->samples[i].device == t->peak_dev && t->samples[i].by_cat[cat]) return true;
  return false;
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

/* A step line of total (or of `without`) values. */
static void rp_line(FILE *f, const rp_scale *sc, const gs_rec_sample *p, size_t n, bool without,
                    const char *cls, const char *colour) {
  fprintf(f, "<path class=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s d=\"", cls, colour,
          without ? " stroke-dasharray=\"6 3\"" : "");
  for (size_t i = 0; i < n; i++) {
    uint64_t v = without ? (p[i].without > p[i].total ? p[i].without : p[i].total) : p[i].total;
    double x = rp_x(sc, p[i].t), xn = rp_x(sc, i + 1 < n ? p[i + 1].t : sc->t1);
    fprintf(f, "%s%.1f,%.1f L%.1f,%.1f ", i ? "L" : "M", x, rp_y(sc, v), xn, rp_y(sc, v));
  }
  fprintf(f, "\"/>\n");
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
    fprintf(f, "<text class=\"xlabel\" x=\"%.1f\" y=\"%d\" text-anchor=\"%s\" font-size=\"11\">%.*f %s</text>\n", rp_x(sc, tt),
            RP_H - 10, anchor, ms ? 1 : 2, ms ? rp_sec(t, tt) * 1e3 : rp_sec(t, tt), ms ? "ms" : "s");
  }
}

/* Alternating bands, one per iteration (grouped when there are too many to see); a click zooms. */
static void rp_bands(FILE *f, const rp_trace *t, const rp_scale *sc) {
  size_t group = t->niters > 400 ? (t->niters + 399) / 400 : 1;
  for (size_t i = 0; i < t->niters; i += group) {
    size_t last = i + group - 1 < t->niters ? i + group - 1 : t->niters - 1;
    double x0 = rp_x(sc, t->iters[i].t0), x1 = rp_x(sc, t->iters[last].t1);
    fprintf(f, "<rect class=\"iteration\" data-n=\"%llu\" data-t0=\"%.9f\" data-t1=\"%.9f\" x=\"%.1f\" y=\"10\" width=\"%.1f\" height=\"%d\" fill=\"%s\"><title>iteration %llu (click to zoom)</title></rect>\n",
            (unsigned long long)t->iters[i].n, rp_sec(t, t->iters[i].t0), rp_sec(t, t->iters[last].t1), x0,
            x1 > x0 ? x1 - x0 : 0.5, RP_H - RP_B - 10, (i / group) % 2 ? "#f4f4f4" : "#e9eef6", (unsigned long long)t->iters[i].n);
  }
}

/* The samples behind the chart as JSON, for the hover details and the zoom (report_html_js.c). */
static void rp_chart_data(FILE *f, const rp_trace *t, const rp_scale *sc) {
  size_t n;
  gs_rec_sample *p = rp_downsample(t, t->peak_dev, RP_DATA, &n);
  fprintf(f, "<script type=\"application/json\" class=\"gs-data\">{\"t0\":%.9f,\"t1\":%.9f,\"ymax\":%llu,\"pts\":[",
          rp_sec(t, sc->t0), rp_sec(t, sc->t1), (unsigned long long)sc->ymax);
  for (size_t i = 0; p && i < n; i++)
    fprintf(f, "%s[%.9f,%llu,%llu,%llu,%llu]", i ? "," : "", rp_sec(t, p[i].t),
            (unsigned long long)p[i].by_cat[GS_CAT_ACTIVATION], (unsigned long long)p[i].by_cat[GS_CAT_COMPRESSED],
            (unsigned long long)p[i].by_cat[GS_CAT_OTHER], (unsigned long long)p[i].without);
  fprintf(f, "],\"iters\":[");
  for (size_t i = 0; i < t->niters; i++)
    fprintf(f, "%s[%llu,%.9f,%.9f]", i ? "," : "", (unsigned long long)t->iters[i].n, rp_sec(t, t->iters[i].t0),
            rp_sec(t, t->iters[i].t1));
  fprintf(f, "]}</script>\n");
  free(p);
}

static void rp_legend(FILE *f, const rp_trace *t, size_t n) {
  char label[48];
  fprintf(f, "<div class=\"legend\">");
  for (unsigned l = GS_CAT__COUNT; l-- > 0;)
    if (rp_cat_used(t, rp_stack[l]))
      fprintf(f, "<span><i style=\"background:%s\"></i>%s</span>", rp_colour[l], rp_cat_name(rp_stack[l]));
  if (t->peak_without)
    fprintf(f, "<span><i style=\"background:%s\"></i>without gactshim (dashed)</span>", RP_WITHOUT_COLOUR);
  fprintf(f, "<span>%s; %zu points, max-preserving; hover for details, click an iteration to zoom "
          "<button class=\"reset\" type=\"button\">whole run</button></span></div>\n",
          rp_memory_label(t, label, sizeof(label)), n);
}

static void rp_chart(FILE *f, const rp_trace *t) {
  if (!t->nsamples || t->peak_dev < 0) {
    fprintf(f, "<p>No memory samples.</p>\n");
    return;
  }
  uint64_t top = t->peak_without > t->peak.total ? t->peak_without : t->peak.total;
  rp_scale sc = {t->samples[0].t, t->t_last + 1, top + top / 10 + 1};
  if (t->niters && t->iters[0].t0 < sc.t0) sc.t0 = t->iters[0].t0;
  /* One point per pixel column or so, never more than RP_POINTS, each its bucket's maximum. */
  size_t n = RP_W - RP_L - 10 < RP_POINTS ? RP_W - RP_L - 10 : RP_POINTS;
  gs_rec_sample *p = rp_buckets(t, t->peak_dev, n, sc.t0, sc.t1);
  if (!p) return;
  fprintf(f, "<div class=\"gs-chart\"><svg class=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">\n", RP_W, RP_H, RP_W, RP_H);
  rp_bands(f, t, &sc);
  rp_axes(f, t, &sc);
  for (unsigned l = 0; l < GS_CAT__COUNT; l++)
    if (rp_cat_used(t, rp_stack[l])) rp_series(f, &sc, p, n, l);
  if (t->peak_without) rp_line(f, &sc, p, n, true, "without", RP_WITHOUT_COLOUR);
  double px = rp_x(&sc, t->peak.t), py = rp_y(&sc, t->peak.total);
  char b[32];
  fprintf(f, "<g class=\"peak\"><line x1=\"%.1f\" x2=\"%.1f\" y1=\"10\" y2=\"%d\" stroke=\"#000\" stroke-dasharray=\"4 3\"/>", px, px, RP_H - RP_B);
  bool left = px > RP_W - 160; /* near the right edge the label goes on the marker's left */
  fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"#000\"/><text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" font-size=\"12\" font-weight=\"bold\">peak %s</text></g>\n",
          px, py, left ? px - 6 : px + 6, py < 30 ? py + 16 : py - 6, left ? "end" : "start", rp_bytes(t->peak.total, b, sizeof(b)));
  fprintf(f, "<line class=\"cursor\" x1=\"0\" x2=\"0\" y1=\"10\" y2=\"%d\" stroke=\"#333\" visibility=\"hidden\"/>", RP_H - RP_B);
  fprintf(f, "</svg><div class=\"tip\" hidden></div>\n");
  rp_chart_data(f, t, &sc);
  rp_legend(f, t, n);
  fprintf(f, "</div>\n");
  free(p);
}

/* --vs: the totals of A and B (each from its own start) on one chart. */
static void rp_vs_chart(FILE *f, const rp_trace *a, const rp_trace *b) {
  uint64_t top = a->peak.total > b->peak.total ? a->peak.total : b->peak.total;
  uint64_t da = a->t_last > a->hdr.t0_mono_ns ? a->t_last - a->hdr.t0_mono_ns : 1;
  uint64_t db = b->t_last > b->hdr.t0_mono_ns ? b->t_last - b->hdr.t0_mono_ns : 1;
  rp_scale sc = {0, (da > db ? da : db) + 1, top + top / 10 + 1};
  size_t n = RP_W - RP_L - 10;
  fprintf(f, "<svg class=\"vs\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">\n", RP_W, RP_H, RP_W, RP_H);
  rp_axes(f, a, &(rp_scale){a->hdr.t0_mono_ns, a->hdr.t0_mono_ns + sc.t1, sc.ymax});
  for (int side = 0; side < 2; side++) {
    const rp_trace *t = side ? b : a;
    gs_rec_sample *p = t->peak_dev >= 0 ? rp_buckets(t, t->peak_dev, n, t->hdr.t0_mono_ns, t->hdr.t0_mono_ns + sc.t1) : NULL;
    for (size_t i = 0; p && i < n; i++) p[i].t -= t->hdr.t0_mono_ns;
    if (p) rp_line(f, &sc, p, n, false, side ? "vs-b" : "vs-a", side ? RP_VS_COLOUR : RP_WITHOUT_COLOUR);
    free(p);
  }
  fprintf(f, "</svg>\n<div class=\"legend\"><span><i style=\"background:%s\"></i>A: ", RP_WITHOUT_COLOUR);
  rp_esc(f, a->name);
  fprintf(f, "</span><span><i style=\"background:%s\"></i>B: ", RP_VS_COLOUR);
  rp_esc(f, b->name);
  fprintf(f, "</span><span>time since each run's start</span></div>\n");
}

static void rp_section(FILE *f, rp_trace *t) {
  char h[200];
  fprintf(f, "<h2>");
  rp_esc(f, t->name);
  if (t->hdr.rank >= 0) /* -1: the job set no RANK/LOCAL_RANK */
    fprintf(f, " &mdash; rank %d, pid %llu</h2>\n", t->hdr.rank, (unsigned long long)t->hdr.pid);
  else
    fprintf(f, " &mdash; pid %llu</h2>\n", (unsigned long long)t->hdr.pid);
  fprintf(f, "<p class=\"headline\">");
  rp_esc(f, t->peak_dev >= 0 ? rp_headline(t, h, sizeof(h)) : "no memory samples");
  fprintf(f, "%s", t->peak_dev >= 0 ? "" : ".");
  if (t->peak_dev >= 0) fprintf(f, " at %.3f s.", rp_sec(t, t->peak.t));
  if (t->warning[0]) {
    fprintf(f, " <i>");
    rp_esc(f, t->warning);
    fprintf(f, "</i>");
  }
  fprintf(f, "</p>\n");
  rp_chart(f, t);
  rp_html_tables(f, t);
}

static void rp_vs_section(FILE *f, rp_trace *as, size_t na, rp_trace *bs, size_t nb) {
  fprintf(f, "<h2>A vs B (--vs)</h2>\n");
  rp_html_vs_table(f, as, na, bs, nb);
  for (size_t i = 0; i < na; i++) {
    const rp_trace *p = rp_vs_partner(&as[i], i, bs, nb);
    if (p) rp_vs_chart(f, &as[i], p);
    if (p) rp_html_vs_layers(f, &as[i], p);
  }
}

int rp_write_html(const char *path, rp_trace *ts, size_t n, rp_trace *bs, size_t nb, char *err,
                  size_t errlen) {
  FILE *f = fopen(path, "w");
  if (!f) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return -errno;
  }
  fprintf(f, "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>gactshim memory report</title>\n<style>%s</style></head><body>\n"
             "<h1>gactshim memory report</h1>\n", rp_html_css);
  if (nb) rp_vs_section(f, ts, n, bs, nb);
  if (n + nb > 1) rp_rank_table(f, ts, n, bs, nb);
  for (size_t i = 0; i < n; i++) rp_section(f, &ts[i]);
  for (size_t i = 0; i < nb; i++) rp_section(f, &bs[i]);
  fprintf(f, "<script>%s</script>\n</body></html>\n", rp_html_js);
  if (fclose(f) != 0) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return -EIO;
  }
  return 0;
}
