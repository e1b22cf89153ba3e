/* report_load.c: reads a trace (file or live snapshot) into memory, tolerating a cut-off tail. */
#include "report.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Grows *p (elements of size sz) so that index i fits. */
static int rp_grow(void **p, size_t *cap, size_t i, size_t sz) {
  if (i < *cap) return 0;
  size_t c = *cap ? *cap : 256;
  while (c <= i) c *= 2;
  void *q = realloc(*p, c * sz);
  if (!q) return -ENOMEM;
  memset((char *)q + *cap * sz, 0, (c - *cap) * sz);
  *p = q;
  *cap = c;
  return 0;
}

typedef struct rp_caps {
  size_t samples, events, sites, mods, strs, attrs;
  size_t site_limit; /* site ids above it cannot be honest (see rp_add_site) */
} rp_caps;

static int rp_add_site(rp_trace *t, rp_caps *c, const gs_rec *r) {
  gs_rec_site s;
  if (gs__tracefmt_get_site(r, &s) != 0) return 0;
  /* The writer numbers sites densely from 1 and writes every one, so a buffer of n bytes names no
   * id above the number of SITE records it can hold; a larger one is nonsense, and ignoring it
   * keeps a hostile 16-byte record from making us allocate hundreds of megabytes. */
  if (s.id > c->site_limit) return 0;
  size_t cap = c->sites;
  if (rp_grow((void **)&t->site_parent, &cap, s.id, sizeof(uint32_t)) != 0) return -ENOMEM;
  cap = c->sites;
  if (rp_grow((void **)&t->site_ip, &cap, s.id, sizeof(uint64_t)) != 0) return -ENOMEM;
  c->sites = cap;
  t->site_parent[s.id] = s.parent < s.id ? s.parent : 0; /* parents come first: no cycles */
  t->site_ip[s.id] = s.ip;
  if (s.id >= t->nsites) t->nsites = s.id + 1;
  return 0;
}

static int rp_add_module(rp_trace *t, rp_caps *c, const gs_rec *r) {
  gs_rec_module mod;
  const uint8_t *path;
  size_t path_n;
  if (gs__tracefmt_get_module(r, &mod, &path, &path_n) != 0) return 0;
  if (rp_grow((void **)&t->mods, &c->mods, t->nmods, sizeof(rp_module)) != 0) return -ENOMEM;
  rp_module *m = &t->mods[t->nmods];
  m->r = mod;
  m->path = strndup((const char *)path, path_n);
  if (!m->path) return -ENOMEM;
  t->nmods++;
  return 0;
}

/* STRING and ATTR (2.1). Ids are dense from 1 (a bound as for sites keeps a hostile id from
 * making us allocate much); a repeated id keeps its first text. */
static int rp_add_string(rp_trace *t, rp_caps *c, const gs_rec *r) {
  uint32_t id;
  const uint8_t *s;
  size_t n;
  if (gs__tracefmt_get_string(r, &id, &s, &n) != 0 || id == 0 || id > c->site_limit) return 0;
  if (rp_grow((void **)&t->strs, &c->strs, id, sizeof(char *)) != 0) return -ENOMEM;
  if (t->strs[id]) return 0;
  if (!(t->strs[id] = strndup((const char *)s, n))) return -ENOMEM;
  if (id >= t->nstrs) t->nstrs = id + 1;
  return 0;
}

static int rp_add_attr(rp_trace *t, rp_caps *c, const gs_rec *r) {
  gs_rec_attr a;
  if (gs__tracefmt_get_attr(r, &a) != 0 || a.id == 0 || a.id > c->site_limit) return 0;
  if (rp_grow((void **)&t->attrs, &c->attrs, a.id, sizeof(gs_rec_attr)) != 0) return -ENOMEM;
  t->attrs[a.id] = a;
  if (a.id >= t->nattrs) t->nattrs = a.id + 1;
  return 0;
}

static int rp_add_event(rp_trace *t, rp_caps *c, const gs_rec *r) {
  size_t cap = c->events;
  if (rp_grow((void **)&t->events, &cap, t->nevents, sizeof(gs_trace_event)) != 0) return -ENOMEM;
  cap = c->events;
  if (rp_grow((void **)&t->kernel_names, &cap, t->nevents, sizeof(char *)) != 0) return -ENOMEM;
  c->events = cap;
  const uint8_t *name;
  size_t name_n;
  if (gs__tracefmt_get_event(r, &t->events[t->nevents], &name, &name_n) != 0) return 0;
  if (r->type == GS_REC_KERNEL && name_n)
    t->kernel_names[t->nevents] = strndup((const char *)name, name_n);
  t->nevents++;
  return 0;
}

static int rp_add(rp_trace *t, rp_caps *c, const gs_rec *r) {
  switch (r->type) {
    case GS_REC_MODULE: return rp_add_module(t, c, r);
    case GS_REC_SITE: return rp_add_site(t, c, r);
    case GS_REC_SAMPLE:
      if (rp_grow((void **)&t->samples, &c->samples, t->nsamples, sizeof(gs_rec_sample)) != 0)
        return -ENOMEM;
      t->nsamples += gs__tracefmt_get_sample(r, &t->samples[t->nsamples]) == 0;
      return 0;
    case GS_REC_DROP: gs__tracefmt_get_drop(r, &t->drop); return 0;
    case GS_REC_STRING: return rp_add_string(t, c, r);
    case GS_REC_ATTR: return rp_add_attr(t, c, r);
    case GS_REC_END:
      t->has_end = gs__tracefmt_get_end(r, &t->end) == 0 || t->has_end;
      return 0;
    case GS_REC_ALLOC: case GS_REC_FREE: case GS_REC_RECAT: case GS_REC_SAVED:
    case GS_REC_ITER: case GS_REC_OOM: case GS_REC_KERNEL: case GS_REC_PLAN:
      return rp_add_event(t, c, r);
    default:
      return 0; /* a record type from a newer minor version: skipped */
  }
}

static int rp_cmp_sample(const void *a, const void *b) {
  const gs_rec_sample *x = a, *y = b;
  return x->t < y->t ? -1 : x->t > y->t;
}

typedef struct rp_ord {
  uint64_t t;
  size_t i;
} rp_ord;

static int rp_cmp_ord(const void *a, const void *b) {
  const rp_ord *x = a, *y = b;
  if (x->t != y->t) return x->t < y->t ? -1 : 1;
  return x->i < y->i ? -1 : x->i > y->i;
}

/* Sorts events by time, keeping the recorded order of equal times (and the names with them):
 * CUPTI's kernel records arrive late, and threads interleave. */
static int rp_sort_events(rp_trace *t) {
  rp_ord *o = malloc((t->nevents + 1) * sizeof(*o));
  gs_trace_event *ev = malloc((t->nevents + 1) * sizeof(*ev));
  char **kn = malloc((t->nevents + 1) * sizeof(*kn));
  if (!o || !ev || !kn) {
    free(o), free(ev), free(kn);
    return -ENOMEM;
  }
  for (size_t i = 0; i < t->nevents; i++) o[i] = (rp_ord){t->events[i].t, i};
  qsort(o, t->nevents, sizeof(*o), rp_cmp_ord);
  for (size_t i = 0; i < t->nevents; i++) {
    ev[i] = t->events[o[i].i];
    kn[i] = t->kernel_names[o[i].i];
  }
  free(o);
  free(t->events);
  free(t->kernel_names);
  t->events = ev;
  t->kernel_names = kn;
  return 0;
}

int rp_load(rp_trace *t, const char *name, const uint8_t *buf, size_t len, char *err, size_t errlen) {
  memset(t, 0, sizeof(*t));
  t->name = strdup(name);
  gs_trace_reader rd;
  int rc = gs__tracefmt_open(&rd, buf, len);
  if (rc != 0) {
    snprintf(err, errlen, "%s: %s", name, rd.err);
    return rc;
  }
  t->hdr = rd.hdr;
  rp_caps caps = {.site_limit = len / (GS_REC_HDR_BYTES + GS_FMT_SITE_BYTES)};
  gs_rec r;
  while ((rc = gs__tracefmt_next(&rd, &r)) == 1)
    if (rp_add(t, &caps, &r) != 0) {
      snprintf(err, errlen, "%s: out of memory", name);
      return -ENOMEM;
    }
  if (rc == -EBADMSG && rd.off == rd.hdr.header_bytes) {
    snprintf(err, errlen, "%s: %s", name, rd.err);
    return rc;
  }
  if (rc < 0) snprintf(t->warning, sizeof(t->warning), "%s", rd.err);
  else if (!t->has_end) snprintf(t->warning, sizeof(t->warning), "no END record: the process was still running or was killed");
  if (t->nsamples) qsort(t->samples, t->nsamples, sizeof(gs_rec_sample), rp_cmp_sample);
  if (rp_sort_events(t) != 0) {
    snprintf(err, errlen, "%s: out of memory", name);
    return -ENOMEM;
  }
  return 0;
}

int rp_load_file(rp_trace *t, const char *path, char *err, size_t errlen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    int e = -errno;
    snprintf(err, errlen, "%s: %s", path, strerror(-e));
    if (fd >= 0) close(fd);
    memset(t, 0, sizeof(*t));
    return e;
  }
  size_t len = (size_t)st.st_size;
  uint8_t *map = len ? mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
  close(fd);
  if (len && map == MAP_FAILED) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    memset(t, 0, sizeof(*t));
    return -EIO;
  }
  static const uint8_t empty[1];
  int rc = rp_load(t, path, map ? map : empty, len, err, errlen);
  if (map) munmap(map, len);
  return rc;
}

void rp_free(rp_trace *t) {
  for (size_t i = 0; i < t->nmods; i++) free(t->mods[i].path);
  for (size_t i = 0; t->kernel_names && i < t->nevents; i++) free(t->kernel_names[i]);
  free(t->kernel_names);
  free(t->mods);
  free(t->samples);
  free(t->events);
  free(t->site_parent);
  free(t->site_ip);
  for (size_t i = 0; i < t->nstrs; i++) free(t->strs[i]);
  free(t->strs);
  free(t->attrs);
  free(t->layers);
  free(t->top);
  free(t->iters);
  free(t->name);
  memset(t, 0, sizeof(*t));
}
