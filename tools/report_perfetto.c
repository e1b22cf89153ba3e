/* report_perfetto.c: Chrome/Perfetto trace JSON — counters per category and without gactshim, slices. */
#include "report.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* JSON string body with the few characters that need escaping. */
static void rp_json_str(FILE *f, const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
    else if (c < 0x20) fprintf(f, "\\u%04x", c);
    else fputc(c, f);
  }
}

static double rp_us(const rp_trace *t, uint64_t ns) { return rp_sec(t, ns) * 1e6; }

static void rp_pf_meta(FILE *f, const rp_trace *t, unsigned pid, bool *first) {
  char name[128];
  if (t->hdr.rank >= 0) snprintf(name, sizeof(name), "rank %d (pid %llu)", t->hdr.rank, (unsigned long long)t->hdr.pid);
  else snprintf(name, sizeof(name), "pid %llu", (unsigned long long)t->hdr.pid);
  fprintf(f, "%s{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%u,\"tid\":0,\"args\":{\"name\":\"", *first ? "" : ",\n", pid);
  rp_json_str(f, name);
  fprintf(f, "\"}}");
  fprintf(f, ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%u,\"tid\":1,\"args\":{\"name\":\"saved tensors\"}}", pid);
  fprintf(f, ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%u,\"tid\":2,\"args\":{\"name\":\"iterations\"}}", pid);
  fprintf(f, ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%u,\"tid\":3,\"args\":{\"name\":\"GPU kernels (CUPTI)\"}}", pid);
  *first = false;
}

static void rp_pf_counters(FILE *f, const rp_trace *t, unsigned pid) {
  for (int dev = 0; dev <= GS_DEVICE_HOST; dev++) {
    size_t n;
    gs_rec_sample *s = rp_downsample(t, dev, 20000, &n);
    for (size_t i = 0; s && i < n; i++) {
      char track[32];
      if (dev == GS_DEVICE_HOST) snprintf(track, sizeof(track), "memory host");
      else snprintf(track, sizeof(track), "memory cuda:%d", dev);
      fprintf(f, ",\n{\"name\":\"%s\",\"ph\":\"C\",\"ts\":%.3f,\"pid\":%u,\"args\":{", track, rp_us(t, s[i].t), pid);
      for (unsigned c = 0; c < GS_CAT__COUNT; c++)
        fprintf(f, "%s\"%s\":%llu", c ? "," : "", rp_cat_name(c), (unsigned long long)s[i].by_cat[c]);
      fprintf(f, "}}");
      /* The counterfactual as a counter of its own, beside the real one (2.1 traces). */
      if (s[i].without)
        fprintf(f, ",\n{\"name\":\"without gactshim %s\",\"ph\":\"C\",\"ts\":%.3f,\"pid\":%u,\"args\":{\"bytes\":%llu}}",
                track + 7, rp_us(t, s[i].t), pid,
                (unsigned long long)(s[i].without > s[i].total ? s[i].without : s[i].total));
    }
    free(s);
  }
}

static void rp_pf_events(FILE *f, const rp_trace *t, unsigned pid) {
  static const char *const ops[4] = {"pack (kept)", "compress", "unpack", "decompress"};
  for (size_t i = 0; i < t->nevents; i++) {
    const gs_trace_event *e = &t->events[i];
    if (e->type == GS_REC_SAVED && e->kind <= GS_SAVED_DECOMPRESS) {
      fprintf(f, ",\n{\"name\":\"%s\",\"ph\":\"X\",\"ts\":%.3f,\"dur\":%.3f,\"pid\":%u,\"tid\":1,"
              "\"args\":{\"bytes_before\":%llu,\"bytes_after\":%llu,\"bits\":%u}}",
              ops[e->kind], rp_us(t, e->t), (double)e->c / 1e3, pid, (unsigned long long)e->a,
              (unsigned long long)e->b, e->cat2);
    } else if (e->type == GS_REC_ITER) {
      uint64_t end = i + 1 < t->nevents ? t->t_last : e->t;
      for (size_t j = i + 1; j < t->nevents; j++)
        if (t->events[j].type == GS_REC_ITER) { end = t->events[j].t; break; }
      fprintf(f, ",\n{\"name\":\"iteration %llu\",\"ph\":\"X\",\"ts\":%.3f,\"dur\":%.3f,\"pid\":%u,\"tid\":2}",
              (unsigned long long)e->a, rp_us(t, e->t), end > e->t ? (double)(end - e->t) / 1e3 : 0.0, pid);
    } else if (e->type == GS_REC_OOM) {
      fprintf(f, ",\n{\"name\":\"out of memory\",\"ph\":\"i\",\"s\":\"p\",\"ts\":%.3f,\"pid\":%u,\"tid\":0,"
              "\"args\":{\"bytes\":%llu,\"device\":%d,\"result\":%llu}}",
              rp_us(t, e->t), pid, (unsigned long long)e->a, e->device, (unsigned long long)e->b);
    } else if (e->type == GS_REC_KERNEL) {
      fprintf(f, ",\n{\"name\":\"");
      rp_json_str(f, t->kernel_names[i] ? t->kernel_names[i] : "kernel");
      fprintf(f, "\",\"ph\":\"X\",\"ts\":%.3f,\"dur\":%.3f,\"pid\":%u,\"tid\":3}", rp_us(t, e->a),
              e->b > e->a ? (double)(e->b - e->a) / 1e3 : 0.0, pid);
    }
  }
}

int rp_write_perfetto(const char *path, rp_trace *ts, size_t n, char *err, size_t errlen) {
  FILE *f = fopen(path, "w");
  if (!f) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return -errno;
  }
  bool first = true;
  fprintf(f, "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n");
  for (size_t i = 0; i < n; i++) {
    unsigned pid = ts[i].hdr.rank >= 0 ? (unsigned)ts[i].hdr.rank : (unsigned)ts[i].hdr.pid;
    rp_pf_meta(f, &ts[i], pid, &first);
    rp_pf_counters(f, &ts[i], pid);
    rp_pf_events(f, &ts[i], pid);
  }
  fprintf(f, "\n]}\n");
  if (fclose(f) != 0) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return -EIO;
  }
  return 0;
}
