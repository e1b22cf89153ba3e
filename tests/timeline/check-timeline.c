/* check-timeline.c: unit tests of the memory timeline — tree, ring, format, bounds, socket. */
#include "report.h"
#include "timeline.h"

#include <check.h>
#include "../check_run.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- prefix tree ---- */

START_TEST(tree_dedups_paths) {
  ck_assert_int_eq(gs__sites_init(64, 8, true), 0);
  uint64_t a[] = {0x30, 0x20, 0x10}; /* innermost first: root is 0x10 */
  uint64_t b[] = {0x31, 0x20, 0x10};
  uint32_t la = gs__sites_insert(a, 3), lb = gs__sites_insert(b, 3);
  ck_assert_uint_ne(la, 0);
  ck_assert_uint_ne(la, lb);
  ck_assert_uint_eq(gs__sites_insert(a, 3), la);
  uint32_t pa, pb;
  uint64_t ipa, ipb;
  ck_assert(gs__sites_get(la, &pa, &ipa) && gs__sites_get(lb, &pb, &ipb));
  ck_assert_uint_eq(pa, pb); /* shared prefix 0x10 -> 0x20 */
  ck_assert_uint_eq(ipa, 0x30);
  ck_assert_uint_eq(gs__sites_next_id(), 5); /* 4 nodes: 0x10, 0x20, 0x30, 0x31 */
  gs__sites_fini();
}
END_TEST

START_TEST(tree_full_cuts_paths) {
  ck_assert_int_eq(gs__sites_init(16, 8, true), 0);
  uint64_t p[8];
  uint32_t last = 0;
  for (int i = 0; i < 10; i++) {
    for (int k = 0; k < 8; k++) p[k] = 0x1000u * (unsigned)i + (unsigned)k;
    last = gs__sites_insert(p, 8);
  }
  ck_assert_uint_gt(gs__sites_dropped(), 0);
  ck_assert_uint_lt(last, 16);
  ck_assert_uint_eq(gs__sites_next_id() <= 16, 1);
  gs__sites_fini();
}
END_TEST

START_TEST(tree_captures_stack) {
  ck_assert_int_eq(gs__sites_init(1024, 16, false), 0);
  uint32_t a = gs__sites_capture();
  ck_assert_uint_ne(a, 0);
  ck_assert_str_ne(gs__sites_unwinder(), "none");
  gs__sites_fini();
}
END_TEST

static uint32_t tree_leaves[4][64];

static void *tree_worker(void *arg) {
  long w = (long)arg;
  for (int rep = 0; rep < 200; rep++)
    for (int i = 0; i < 64; i++) {
      uint64_t p[6] = {0x500u + (unsigned)i, 0x400u + (unsigned)(i % 7), 0x300, 0x200, 0x100, 0x1};
      uint32_t id = gs__sites_insert(p, 6);
      if (rep == 0) tree_leaves[w][i] = id;
      else if (tree_leaves[w][i] != id) tree_leaves[w][i] = 0;
    }
  return NULL;
}

START_TEST(tree_concurrent_same_ids) {
  ck_assert_int_eq(gs__sites_init(4096, 8, true), 0);
  pthread_t t[4];
  for (long i = 0; i < 4; i++) pthread_create(&t[i], NULL, tree_worker, (void *)i);
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  for (int w = 0; w < 4; w++)
    for (int i = 0; i < 64; i++) {
      ck_assert_uint_ne(tree_leaves[w][i], 0);
      ck_assert_uint_eq(tree_leaves[w][i], tree_leaves[0][i]);
    }
  gs__sites_fini();
}
END_TEST

/* ---- ring ---- */

#define RING_PER_THREAD 200000
static gs_ring ring;
static int ring_done;

static void *ring_producer(void *arg) {
  gs_event ev = {.tid = (uint32_t)(uintptr_t)arg};
  for (uint64_t i = 0; i < RING_PER_THREAD; i++) {
    ev.a = i;
    while (gs__ring_push(&ring, &ev) != 0) sched_yield();
  }
  return NULL;
}

START_TEST(ring_four_writers) {
  ck_assert_int_eq(gs__ring_init(&ring, 1024), 0);
  pthread_t t[4];
  for (uintptr_t i = 0; i < 4; i++) pthread_create(&t[i], NULL, ring_producer, (void *)i);
  uint64_t next[4] = {0}, got = 0;
  gs_event buf[256];
  while (got < 4ull * RING_PER_THREAD) {
    size_t n = gs__ring_pop(&ring, buf, 256);
    for (size_t i = 0; i < n; i++) {
      ck_assert_uint_lt(buf[i].tid, 4);
      ck_assert_uint_eq(buf[i].a, next[buf[i].tid]); /* per producer, in order, nothing lost */
      next[buf[i].tid]++;
    }
    got += n;
  }
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  ck_assert_uint_eq(gs__ring_pop(&ring, buf, 256), 0); /* nothing left over */
  gs__ring_free(&ring);
  (void)ring_done;
}
END_TEST

/* Pages of the ring's slots the kernel holds (mincore). */
static size_t ring_resident_pages(const gs_ring *r) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE), n = ((r->mask + 1) * sizeof(gs_ring_slot) + page - 1) / page;
  unsigned char *v = malloc(n);
  ck_assert_ptr_nonnull(v);
  ck_assert_int_eq(mincore(r->slots, n * page, v), 0);
  size_t res = 0;
  for (size_t i = 0; i < n; i++) res += v[i] & 1;
  free(v);
  return res;
}

/* A 4 MiB ring costs resident memory only for the slots it has used, and a reset gives the pages
 * back: the default ring was written whole at start, 4 MiB of every process's RSS. */
START_TEST(ring_pages_backed_on_use) {
  ck_assert_int_eq(gs__ring_init(&ring, 1u << 16), 0);
  size_t total = (ring.mask + 1) * sizeof(gs_ring_slot) / (size_t)sysconf(_SC_PAGESIZE);
  ck_assert_uint_eq(ring_resident_pages(&ring), 0);
  gs_event ev = {0}, out[256];
  for (uint64_t i = 0; i < 10; i++) {
    ev.a = i;
    ck_assert_int_eq(gs__ring_push(&ring, &ev), 0);
  }
  ck_assert_uint_eq(gs__ring_pop(&ring, out, 256), 10);
  ck_assert_uint_le(ring_resident_pages(&ring), 2);
  uint64_t pushed = 10;
  while (gs__ring_push(&ring, &ev) == 0) pushed++; /* one lap: every slot written */
  ck_assert_uint_eq(pushed, 10 + (ring.mask + 1));
  ck_assert_uint_eq(ring_resident_pages(&ring), total);
  gs__ring_reset(&ring);
  ck_assert_uint_eq(ring_resident_pages(&ring), 0);
  for (uint64_t i = 0; i < 3; i++) {
    ev.a = 100 + i;
    ck_assert_int_eq(gs__ring_push(&ring, &ev), 0);
  }
  ck_assert_uint_eq(gs__ring_pop(&ring, out, 256), 3);
  ck_assert_uint_eq(out[0].a, 100);
  ck_assert_uint_eq(out[2].a, 102);
  gs__ring_free(&ring);
}
END_TEST

START_TEST(ring_full_drops_and_counts) {
  ck_assert_int_eq(gs__ring_init(&ring, 64), 0);
  gs_event ev = {0};
  int ok = 0;
  for (int i = 0; i < 100; i++) ok += gs__ring_push(&ring, &ev) == 0;
  ck_assert_int_eq(ok, 64);
  ck_assert_uint_eq(ring.dropped, 36);
  gs_event out[128];
  ck_assert_uint_eq(gs__ring_pop(&ring, out, 128), 64);
  ck_assert_int_eq(gs__ring_push(&ring, &ev), 0);
  gs__ring_free(&ring);
}
END_TEST

/* ---- recorder, sink and report (the format itself: tests/format) ---- */

/* Until the writer has taken every queued event. A fixed sleep was not enough on a loaded
 * 2-core machine under TSan (18 864 events dropped). */
static void wait_for_writer(void) {
  for (int i = 0; i < 20000 && gs__trace_queued() != 0; i++) usleep(100);
}

/* Records a small run with the recorder into path; returns the true peak. */
static uint64_t record_run(const char *path, uint64_t max_bytes, int iters) {
  gs_trace_options o;
  gs__trace_defaults(&o);
  snprintf(o.path, sizeof(o.path), "%s", path);
  o.max_bytes = max_bytes;
  o.control = false;
  o.keep_own_frames = true;
  ck_assert_int_eq(gs__trace_configure(&o), 0);
  uint64_t live = 0, peak = 0;
  for (int it = 0; it < iters; it++) {
    gs__trace_iteration((uint64_t)it);
    for (int l = 0; l < 20; l++) {
      gs_alloc_record r = {.size = (uint64_t)(l + 1 + it % 3) << 12, .device = 0, .category = GS_CAT_ACTIVATION};
      gs__trace_alloc(0x1000 + (uint64_t)l, &r);
      gs__trace_saved(GS_SAVED_COMPRESS, r.size * 8, r.size, 4, 1000, 0, NULL);
      live += r.size;
      if (live > peak) peak = live;
    }
    for (int l = 0; l < 20; l++) {
      gs_alloc_record r = {.size = (uint64_t)(l + 1 + it % 3) << 12, .device = 0, .category = GS_CAT_ACTIVATION};
      gs__trace_free(0x1000 + (uint64_t)l, &r);
      live -= r.size;
    }
    if (it % 8 == 0) wait_for_writer(); /* the 4 MiB ring never fills: no ring drops */
  }
  ck_assert_int_eq(gs__trace_stop(), 0);
  return peak;
}

static uint8_t *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  ck_assert_ptr_nonnull(f);
  fseek(f, 0, SEEK_END);
  *len = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *b = malloc(*len + 1);
  ck_assert_uint_eq(fread(b, 1, *len, f), *len);
  fclose(f);
  return b;
}

static char tmpdir[64];

static void make_tmpdir(void) {
  snprintf(tmpdir, sizeof(tmpdir), "/tmp/gs-timeline-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

START_TEST(recorder_peak_matches) {
  make_tmpdir();
  char path[128];
  snprintf(path, sizeof(path), "%s/t.trace", tmpdir);
  uint64_t peak = record_run(path, 64ull << 20, 50);
  rp_trace t;
  char err[256];
  ck_assert_int_eq(rp_load_file(&t, path, err, sizeof(err)), 0);
  ck_assert_int_eq(rp_analyze(&t), 0);
  ck_assert_uint_eq(t.peak.total, peak);
  ck_assert_uint_eq(t.peak.by_cat[GS_CAT_ACTIVATION], peak);
  ck_assert(t.has_end);
  ck_assert_uint_eq(t.niters, 50);
  ck_assert_uint_eq(t.comp[GS_SAVED_COMPRESS].count, 1000);
  ck_assert_uint_eq(t.top_bytes, peak);
  rp_free(&t);
}
END_TEST

START_TEST(size_bound_respected) {
  make_tmpdir();
  char path[128];
  snprintf(path, sizeof(path), "%s/b.trace", tmpdir);
  const uint64_t max = 256u << 10;
  uint64_t peak = record_run(path, max, 3000);
  struct stat st;
  ck_assert_int_eq(stat(path, &st), 0);
  ck_assert_uint_le((uint64_t)st.st_size, max);
  rp_trace t;
  char err[256];
  ck_assert_int_eq(rp_load_file(&t, path, err, sizeof(err)), 0);
  ck_assert_int_eq(rp_analyze(&t), 0);
  ck_assert_uint_eq(t.drop.ring_dropped, 0);         /* else totals are resynced, not exact */
  ck_assert_uint_gt(t.drop.detail_dropped, 0);       /* detail went first ... */
  ck_assert_uint_eq(t.peak.total, peak);             /* ... the peak survived in the samples */
  ck_assert_uint_gt(t.drop.detail_from, t.hdr.t0_mono_ns); /* the oldest detail went, not the newest */
  ck_assert(t.has_end);
  rp_free(&t);
}
END_TEST

START_TEST(truncated_and_corrupt_traces) {
  make_tmpdir();
  char path[128];
  snprintf(path, sizeof(path), "%s/c.trace", tmpdir);
  record_run(path, 64ull << 20, 5);
  size_t len;
  uint8_t *b = slurp(path, &len);
  char err[256];
  rp_trace t;
  /* Every prefix loads (a crash leaves one) or is refused with a sentence: never a crash. */
  for (size_t cut = 0; cut < len; cut += 1 + cut / 16) {
    err[0] = '\0';
    int rc = rp_load(&t, "cut", b, cut, err, sizeof(err));
    if (cut < GS_TRACE_HDR_BYTES) {
      ck_assert_int_eq(rc, -EBADMSG);
      ck_assert_ptr_nonnull(strstr(err, "not a gactshim trace"));
    } else {
      ck_assert_int_eq(rc, 0);
      ck_assert_int_eq(rp_analyze(&t), 0);
    }
    rp_free(&t);
  }
  ck_assert_int_eq(rp_load(&t, "cut", b, len - 3, err, sizeof(err)), 0);
  ck_assert_ptr_nonnull(strstr(t.warning, "ends inside a record"));
  rp_free(&t);
  /* A flipped byte anywhere: loaded up to the bad record, or refused; never a crash. */
  uint8_t *c = malloc(len);
  for (size_t i = 0; i < len; i += 7) {
    memcpy(c, b, len);
    c[i] ^= 0x5a;
    if (rp_load(&t, "flip", c, len, err, sizeof(err)) == 0) rp_analyze(&t);
    rp_free(&t);
  }
  memcpy(c, b, len);
  c[GS_TRACE_HDR_BYTES + 20] ^= 1;
  gs_trace_reader r;
  gs_rec rec;
  ck_assert_int_eq(gs__tracefmt_open(&r, c, len), 0);
  int rc;
  while ((rc = gs__tracefmt_next(&r, &rec)) == 1) {}
  ck_assert_int_eq(rc, -EBADMSG);
  ck_assert_ptr_nonnull(strstr(r.err, "corrupt record at offset"));
  memcpy(c, b, len);
  c[8] = 9; /* version 9: a newer major */
  ck_assert_int_eq(rp_load(&t, "v9", c, len, err, sizeof(err)), -EPROTONOSUPPORT);
  ck_assert_str_eq(err, "v9: unsupported trace version 9 (this tool reads version 2); "
                        "read it with a newer gactshim-report");
  rp_free(&t);
  c[8] = 1; /* a file of the first format, records and all: refused, not misread */
  ck_assert_int_eq(rp_load(&t, "v1", c, len, err, sizeof(err)), -EPROTONOSUPPORT);
  ck_assert_str_eq(err, "v1: unsupported trace version 1 (this tool reads version 2); "
                        "record it again with this version of libgactshim");
  rp_free(&t);
  free(c);
  free(b);
}
END_TEST

/* A job that stops right after its allocations (before the writer's second round) still gets
 * the SITE records its ALLOC records name. */
START_TEST(short_run_keeps_sites) {
  make_tmpdir();
  char path[128];
  snprintf(path, sizeof(path), "%s/short.trace", tmpdir);
  gs_trace_options o;
  gs__trace_defaults(&o);
  snprintf(o.path, sizeof(o.path), "%s", path);
  o.control = false;
  o.keep_own_frames = true;
  ck_assert_int_eq(gs__trace_configure(&o), 0);
  gs_alloc_record r = {.size = 1 << 20, .device = 0, .category = GS_CAT_ACTIVATION};
  gs__trace_alloc(0x5000, &r);
  ck_assert_int_eq(gs__trace_stop(), 0);
  rp_trace t;
  char err[256];
  ck_assert_int_eq(rp_load_file(&t, path, err, sizeof(err)), 0);
  ck_assert_uint_eq(t.nevents, 1);
  ck_assert_uint_ne(t.events[0].site, 0);
  ck_assert_uint_lt(t.events[0].site, t.nsites);  /* its SITE record was written ... */
  ck_assert_uint_ne(t.site_ip[t.events[0].site], 0); /* ... with its frame */
  rp_free(&t);
}
END_TEST

START_TEST(carve_keeps_device_total) {
  make_tmpdir();
  char path[128];
  snprintf(path, sizeof(path), "%s/carve.trace", tmpdir);
  gs_trace_options o;
  gs__trace_defaults(&o);
  snprintf(o.path, sizeof(o.path), "%s", path);
  o.control = false;
  ck_assert_int_eq(gs__trace_configure(&o), 0);
  gs_alloc_record seg = {.size = 10 << 20, .device = 1, .kind = GS_KIND_DEVICE};
  gs__trace_alloc(0x7000, &seg);                       /* a caching-allocator segment */
  gs__trace_carve(1, GS_CAT_COMPRESSED, 3 << 20, true); /* saved tensors inside it */
  gs__trace_carve(1, GS_CAT_ACTIVATION, 4 << 20, true);
  ck_assert_int_eq(gs__trace_stop(), 0);
  rp_trace t;
  char err[256];
  ck_assert_int_eq(rp_load_file(&t, path, err, sizeof(err)), 0);
  ck_assert_int_eq(rp_analyze(&t), 0);
  ck_assert_uint_eq(t.peak.total, 10 << 20);
  ck_assert_uint_eq(t.peak.by_cat[GS_CAT_OTHER], 3 << 20);
  ck_assert_uint_eq(t.peak.by_cat[GS_CAT_COMPRESSED], 3 << 20);
  ck_assert_uint_eq(t.peak.by_cat[GS_CAT_ACTIVATION], 4 << 20);
  rp_free(&t);
}
END_TEST

START_TEST(second_writer_leaves_file_alone) {
  make_tmpdir();
  char path[128];
  snprintf(path, sizeof(path), "%s/shared.trace", tmpdir);
  gs_sink a, b;
  ck_assert_int_eq(gs__sink_open(&a, path, 1 << 20, 1 << 20), 0);
  uint8_t rec[64];
  gs_rec_end end = {1, 2, 3, 4};
  size_t n = gs__tracefmt_put_end(rec, sizeof(rec), &end);
  gs__sink_put(&a, rec, n, false, 1);
  ck_assert_int_eq(gs__sink_flush(&a), 0);
  ck_assert_int_eq(gs__sink_open(&b, path, 1 << 20, 1 << 20), -EBUSY); /* no truncation */
  gs__sink_close(&b);
  struct stat st;
  ck_assert_int_eq(stat(path, &st), 0);
  ck_assert_uint_eq((uint64_t)st.st_size, GS_TRACE_HDR_BYTES + n);
  gs__sink_close(&a);
  ck_assert_int_eq(gs__sink_open(&b, path, 1 << 20, 1 << 20), 0); /* free again once closed */
  gs__sink_close(&b);
}
END_TEST

START_TEST(config_trace_variables) {
  gs_config c;
  char err[512];
  char *ok[] = {"GACTSHIM_TRACE=/tmp/t-%p-%r.trace", "GACTSHIM_TRACE_MAX=2GiB", "GACTSHIM_CUPTI=1", NULL};
  ck_assert_int_eq(gs__config_parse(ok, &c, err, sizeof(err)), 0);
  ck_assert_str_eq(c.trace_path, "/tmp/t-%p-%r.trace");
  ck_assert_uint_eq(c.trace_max, 2ull << 30);
  ck_assert(c.cupti);
  char *small[] = {"GACTSHIM_TRACE_MAX=512KiB", NULL};
  ck_assert_int_eq(gs__config_parse(small, &c, err, sizeof(err)), -EINVAL);
  ck_assert_ptr_nonnull(strstr(err, "GACTSHIM_TRACE_MAX='512KiB'"));
  ck_assert_ptr_nonnull(strstr(err, "1MiB to 1TiB"));
  char *cupti[] = {"GACTSHIM_CUPTI=maybe", NULL};
  ck_assert_int_eq(gs__config_parse(cupti, &c, err, sizeof(err)), -EINVAL);
  gs__config_defaults(&c);
  ck_assert_uint_eq(c.trace_max, 256ull << 20);
  ck_assert(!c.cupti);
}
END_TEST

START_TEST(cupti_fails_open) {
  /* No GPU here: whether libcupti is absent or refuses, the answer is -ENOTSUP, never a crash. */
  int rc = gs__cupti_start();
  ck_assert(rc == 0 || rc == -ENOTSUP);
  gs__cupti_stop();
  ck_assert(gs__cupti_is_ours("gs_k_compress"));
  ck_assert(!gs__cupti_is_ours("void at::native::kernel_args_gs_(float)"));
  ck_assert_str_eq(gs__cupti_name(12345), "?");
}
END_TEST

/* ---- control socket ---- */

static void start_memory_recorder(void) {
  make_tmpdir();
  gs__control_set_dir_for_tests(tmpdir);
  gs_trace_options o;
  gs__trace_defaults(&o);
  o.keep_own_frames = true;
  ck_assert_int_eq(gs__trace_configure(&o), 0);
  gs_alloc_record r = {.size = 1 << 20, .device = 0, .category = GS_CAT_OTHER};
  gs__trace_alloc(0x42, &r); /* the first event starts the writer and the socket */
  char sock[160];
  snprintf(sock, sizeof(sock), "%s/%ld.sock", tmpdir, (long)getpid());
  for (int i = 0; i < 400 && access(sock, F_OK) != 0; i++) usleep(5000);
  ck_assert_int_eq(access(sock, F_OK), 0);
  struct stat st;
  ck_assert_int_eq(stat(sock, &st), 0);
  ck_assert_int_eq(st.st_mode & 0777, 0600);
}

START_TEST(socket_snapshot) {
  start_memory_recorder();
  uint8_t *buf;
  size_t len;
  char err[512];
  ck_assert_int_eq(gs__control_request(getpid(), "GSCTL 1 PING\n", &buf, &len, err, sizeof(err), 2000), 0);
  free(buf);
  ck_assert_int_eq(gs__control_request(getpid(), "GSCTL 2 PING\n", &buf, &len, err, sizeof(err), 2000), -EACCES);
  ck_assert_ptr_nonnull(strstr(err, "version"));
  ck_assert_int_eq(gs__control_request(getpid(), "GSCTL 1 SNAPSHOT\n", &buf, &len, err, sizeof(err), 2000), 0);
  rp_trace t;
  ck_assert_int_eq(rp_load(&t, "live", buf, len, err, sizeof(err)), 0);
  ck_assert_int_eq(rp_analyze(&t), 0);
  ck_assert_uint_eq(t.peak.total, 1 << 20);
  ck_assert(t.hdr.flags & GS_TRACE_F_SNAPSHOT);
  rp_free(&t);
  free(buf);
  ck_assert_int_eq(gs__trace_stop(), 0);
  char sock[160];
  snprintf(sock, sizeof(sock), "%s/%ld.sock", tmpdir, (long)getpid());
  ck_assert_int_ne(access(sock, F_OK), 0); /* removed at stop */
}
END_TEST

START_TEST(socket_slow_client_does_not_block) {
  start_memory_recorder();
  struct sockaddr_un sa;
  ck_assert_int_eq(gs__control_sock_path(getpid(), &sa, false), 0);
  int silent = socket(AF_UNIX, SOCK_STREAM, 0);
  ck_assert_int_eq(connect(silent, (struct sockaddr *)&sa, sizeof(sa)), 0);
  uint64_t t0 = gs__now_ns();
  gs_alloc_record r = {.size = 4096, .device = 0};
  for (int i = 0; i < 1000; i++) gs__trace_alloc(0x100000 + (uint64_t)i, &r); /* never waits */
  ck_assert_uint_lt(gs__now_ns() - t0, 100000000ull);
  uint8_t *buf;
  size_t len;
  char err[512];
  ck_assert_int_eq(gs__control_request(getpid(), "GSCTL 1 SNAPSHOT\n", &buf, &len, err, sizeof(err), 3000), 0);
  free(buf);
  char line[128] = {0};
  ck_assert_int_gt(read(silent, line, sizeof(line) - 1), 0);
  ck_assert_ptr_nonnull(strstr(line, "ERR no request"));
  close(silent);
  ck_assert_int_eq(gs__trace_stop(), 0);
}
END_TEST

/* Needs root, to become another user: case "root", a meson test of its own that exits 77 (SKIP) with
 * the reason where it is not root (the directory's mode refuses other users anyway). */
START_TEST(socket_other_user_refused) {
  ck_assert_msg(geteuid() == 0, "needs root to connect as another user");
  start_memory_recorder();
  chmod(tmpdir, 0777); /* let the other user reach the socket file: SO_PEERCRED must refuse */
  char sock[160];
  snprintf(sock, sizeof(sock), "%s/%ld.sock", tmpdir, (long)getpid());
  chmod(sock, 0666);
  pid_t child = fork();
  if (child == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(3);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%.100s", sock);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) _exit(4);
    /* The server refuses before reading the request and may have closed by now: the write can
     * fail with EPIPE (without MSG_NOSIGNAL, SIGPIPE killed this child now and then in CI); the
     * answer is still there to read. */
    if (send(fd, "GSCTL 1 SNAPSHOT\n", 17, MSG_NOSIGNAL) != 17 && errno != EPIPE) _exit(5);
    char line[128] = {0};
    if (read(fd, line, sizeof(line) - 1) <= 0) _exit(6);
    _exit(strstr(line, "ERR permission denied") ? 0 : 7);
  }
  int st;
  waitpid(child, &st, 0);
  ck_assert(WIFEXITED(st));
  ck_assert_int_eq(WEXITSTATUS(st), 0);
  ck_assert_int_eq(gs__trace_stop(), 0);
}
END_TEST

START_TEST(socket_missing_is_explained) {
  make_tmpdir();
  gs__control_set_dir_for_tests(tmpdir);
  uint8_t *buf;
  size_t len;
  char err[512];
  ck_assert_int_lt(gs__control_request(999999, "GSCTL 1 SNAPSHOT\n", &buf, &len, err, sizeof(err), 500), 0);
  ck_assert_ptr_nonnull(strstr(err, "has no gactshim control socket"));
}
END_TEST

/* ---- recorder under concurrent hooks ---- */

static void *hook_worker(void *arg) {
  uint64_t base = (uint64_t)(uintptr_t)arg << 32;
  for (int i = 0; i < 20000; i++) {
    gs_alloc_record r = {.size = 4096 + (uint64_t)(i % 64) * 4096, .device = 0, .category = GS_CAT_ACTIVATION};
    gs__trace_alloc(base + (uint64_t)i, &r);
    gs__trace_saved(GS_SAVED_PACK, r.size, r.size, 32, 10, 0, NULL);
    gs__trace_free(base + (uint64_t)i, &r);
    if (i % 5000 == 0) gs__trace_iteration((uint64_t)i);
  }
  return NULL;
}

START_TEST(concurrent_recorder) {
  start_memory_recorder();
  pthread_t t[4];
  for (uintptr_t i = 0; i < 4; i++) pthread_create(&t[i], NULL, hook_worker, (void *)(i + 1));
  for (int k = 0; k < 5; k++) {
    uint8_t *buf;
    size_t len;
    char err[512];
    ck_assert_int_eq(gs__control_request(getpid(), "GSCTL 1 SNAPSHOT\n", &buf, &len, err, sizeof(err), 3000), 0);
    free(buf);
  }
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  gs_trace_counters c;
  gs__trace_counters(&c);
  ck_assert_uint_eq(c.events, 1 + 4 * (20000 * 3 + 4));
  ck_assert_int_eq(gs__trace_stop(), 0);
}
END_TEST

static Suite *timeline_suite(void) {
  Suite *s = suite_create("timeline");
  TCase *unit = tcase_create("unit");
  tcase_set_timeout(unit, 60);
  tcase_add_test(unit, tree_dedups_paths);
  tcase_add_test(unit, tree_full_cuts_paths);
  tcase_add_test(unit, tree_captures_stack);
  tcase_add_test(unit, ring_full_drops_and_counts);
  tcase_add_test(unit, ring_pages_backed_on_use);
  tcase_add_test(unit, recorder_peak_matches);
  tcase_add_test(unit, size_bound_respected);
  tcase_add_test(unit, truncated_and_corrupt_traces);
  tcase_add_test(unit, second_writer_leaves_file_alone);
  tcase_add_test(unit, carve_keeps_device_total);
  tcase_add_test(unit, short_run_keeps_sites);
  tcase_add_test(unit, config_trace_variables);
  tcase_add_test(unit, cupti_fails_open);
  tcase_add_test(unit, socket_snapshot);
  tcase_add_test(unit, socket_slow_client_does_not_block);
  tcase_add_test(unit, socket_missing_is_explained);
  suite_add_tcase(s, unit);
  if (geteuid() == 0) {
    TCase *root = tcase_create("root");
    tcase_set_timeout(root, 60);
    tcase_add_test(root, socket_other_user_refused);
    suite_add_tcase(s, root);
  } else if (!getenv("CK_RUN_CASE")) { /* every case: say which one did not run */
    printf("SKIP: case root (socket_other_user_refused): needs root to connect as another user\n");
  }
  TCase *conc = tcase_create("concurrent");
  tcase_set_timeout(conc, 120);
  tcase_add_test(conc, tree_concurrent_same_ids);
  tcase_add_test(conc, ring_four_writers);
  tcase_add_test(conc, concurrent_recorder);
  suite_add_tcase(s, conc);
  return s;
}

int main(void) {
  const char *only = getenv("CK_RUN_CASE");
  if (only && strcmp(only, "root") == 0 && geteuid() != 0) {
    printf("SKIP: socket_other_user_refused needs root, to connect to the socket as another user\n");
    return 77; /* meson's SKIP */
  }
  return gs_check_run(timeline_suite());
}
