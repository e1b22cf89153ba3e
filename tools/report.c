/* report.c: gactshim-report — terminal, HTML and Perfetto reports from traces or a live job. */
#include "report.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void rp_usage(FILE *f) {
  fprintf(f,
          "usage: gactshim-report [--html OUT.html] [--perfetto OUT.json] [--text] TRACE [TRACE...]\n"
          "                       [--vs TRACE [TRACE...]]\n"
          "       gactshim-report attach PID [--html OUT.html] [--perfetto OUT.json] [--text] [--save OUT.trace]\n"
          "\n"
          "TRACE is a file written with GACTSHIM_TRACE=path; several (one per rank) give a row per\n"
          "rank. --vs compares with a second run (e.g. GACTSHIM_POLICY=off), rank by rank: peaks,\n"
          "bytes per layer and step time side by side, both curves on one chart. The text report goes\n"
          "to stdout unless --html or --perfetto is given (then only with --text). attach asks a\n"
          "running job (same user) for a live snapshot without stopping it.\n");
}

typedef struct rp_args {
  const char *html, *perfetto, *save;
  bool text;
  long attach_pid;
  const char **files;
  size_t nfiles, nvs; /* the last nvs files came after --vs */
} rp_args;

static int rp_parse_args(int argc, char **argv, rp_args *a) {
  memset(a, 0, sizeof(*a));
  a->files = calloc((size_t)argc, sizeof(char *));
  if (a->files == NULL) return -ENOMEM;
  size_t vs_at = 0; /* 1 + the index of the first file after --vs */
  int i = 1;
  if (argc > 2 && strcmp(argv[1], "attach") == 0) {
    char *end;
    a->attach_pid = strtol(argv[2], &end, 10);
    if (*end || a->attach_pid <= 0) return -EINVAL;
    i = 3;
  }
  for (; i < argc; i++) {
    const char **opt = strcmp(argv[i], "--html") == 0       ? &a->html
                       : strcmp(argv[i], "--perfetto") == 0 ? &a->perfetto
                       : strcmp(argv[i], "--save") == 0     ? &a->save
                                                            : NULL;
    if (opt) {
      if (i + 1 >= argc) return -EINVAL;
      *opt = argv[++i];
    } else if (strcmp(argv[i], "--text") == 0) {
      a->text = true;
    } else if (strcmp(argv[i], "--vs") == 0) {
      if (a->attach_pid || vs_at) return -EINVAL;
      vs_at = a->nfiles + 1;
    } else if (argv[i][0] == '-' && argv[i][1]) {
      return -EINVAL;
    } else {
      a->files[a->nfiles++] = argv[i];
    }
  }
  if (a->attach_pid ? a->nfiles != 0 : a->nfiles == 0) return -EINVAL;
  if (vs_at) {
    a->nvs = a->nfiles - (vs_at - 1);
    if (!a->nvs || vs_at == 1) return -EINVAL; /* --vs needs traces on both sides */
  }
  return 0;
}

static int rp_attach(const rp_args *a, rp_trace *t, char *err, size_t errlen) {
  uint8_t *buf = NULL;
  size_t len = 0;
  int rc = gs__control_request(a->attach_pid, "GSCTL 1 SNAPSHOT\n", &buf, &len, err, errlen, 10000);
  if (rc != 0) return rc;
  if (a->save) {
    FILE *f = fopen(a->save, "wb");
    if (!f || fwrite(buf, 1, len, f) != len) fprintf(stderr, "gactshim-report: cannot write %s\n", a->save);
    if (f) fclose(f);
  }
  char name[64];
  snprintf(name, sizeof(name), "pid %ld (live)", a->attach_pid);
  rc = rp_load(t, name, buf, len, err, errlen);
  free(buf);
  return rc;
}

static int rp_outputs(const rp_args *a, rp_trace *ts, size_t n) {
  char err[512];
  size_t na = n - a->nvs; /* the first run; the rest (--vs) the second */
  if (a->text || (!a->html && !a->perfetto)) {
    if (a->nvs) rp_print_vs(stdout, ts, na, ts + na, a->nvs);
    else rp_print_text(stdout, ts, n);
  }
  if (a->html && rp_write_html(a->html, ts, na, ts + na, a->nvs, err, sizeof(err)) != 0) {
    fprintf(stderr, "gactshim-report: %s\n", err);
    return 1;
  }
  if (a->perfetto && rp_write_perfetto(a->perfetto, ts, n, err, sizeof(err)) != 0) {
    fprintf(stderr, "gactshim-report: %s\n", err);
    return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  rp_args a;
  if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    rp_usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (rp_parse_args(argc, argv, &a) != 0) {
    free(a.files); /* whatever it parsed before it stopped */
    rp_usage(stderr);
    return 2;
  }
  size_t n = a.attach_pid ? 1 : a.nfiles;
  rp_trace *ts = calloc(n, sizeof(rp_trace));
  char err[512];
  int status = 0;
  for (size_t i = 0; i < n && !status; i++) {
    int rc = a.attach_pid ? rp_attach(&a, &ts[i], err, sizeof(err)) : rp_load_file(&ts[i], a.files[i], err, sizeof(err));
    if (rc == 0) rc = rp_analyze(&ts[i]);
    if (rc != 0) {
      fprintf(stderr, "gactshim-report: %s\n", err);
      status = 1;
    }
  }
  if (!status) status = rp_outputs(&a, ts, n);
  for (size_t i = 0; i < n; i++) rp_free(&ts[i]);
  free(ts);
  free(a.files);
  rp_symbolize_cleanup();
  return status;
}
