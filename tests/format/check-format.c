/* check-format.c: unit tests of the trace format — byte layouts, codecs, versions, the reader. */
#include "format.h"

#include <check.h>
#include "../check_run.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The expected bytes below are written by hand from docs/trace-format.md, not produced by the
 * encoders: a layout change that the document does not make fails here. */

/* FNV-1a over the record's type, length and payload, as the document defines the check. */
static uint32_t fnv(const uint8_t *p, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
  return h;
}

/* Fills bytes 4..7 of a hand-written record with its check (over bytes 0..3 and the payload). */
static void seal(uint8_t *rec, size_t n) {
  uint8_t tmp[256];
  ck_assert_uint_le(n, sizeof(tmp));
  memcpy(tmp, rec, 4);
  memcpy(tmp + 4, rec + 8, n - 8);
  uint32_t h = fnv(tmp, n - 4);
  for (int i = 0; i < 4; i++) rec[4 + i] = (uint8_t)(h >> (8 * i));
}

static gs_trace_header sample_header(void) {
  return (gs_trace_header){.version = GS_TRACE_VERSION, .minor = 0x0102, .header_bytes = 64,
                           .flags = 0x04030201u, .rank = -2, .pid = 0x1122334455667788ull,
                           .t0_mono_ns = 0x0102030405060708ull,
                           .t0_real_ns = 0xa0a1a2a3a4a5a6a7ull, .max_bytes = 256ull << 20};
}

static const uint8_t golden_header[64] = {
    'G', 'S', 'T', 'R', 'A', 'C', 'E', '\n',        /*  0 magic */
    0x02, 0x00,                                     /*  8 version */
    0x02, 0x01,                                     /* 10 minor */
    0x40, 0x00,                                     /* 12 header_bytes */
    0x00, 0x00,                                     /* 14 reserved */
    0x01, 0x02, 0x03, 0x04,                         /* 16 flags */
    0xfe, 0xff, 0xff, 0xff,                         /* 20 rank -2 */
    0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, /* 24 pid */
    0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* 32 t0_mono_ns */
    0xa7, 0xa6, 0xa5, 0xa4, 0xa3, 0xa2, 0xa1, 0xa0, /* 40 t0_real_ns */
    0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, /* 48 max_bytes 256 MiB */
    0, 0, 0, 0, 0, 0, 0, 0,                         /* 56 reserved */
};

static void assert_header_eq(const gs_trace_header *x, const gs_trace_header *y) {
  ck_assert_uint_eq(x->version, y->version);
  ck_assert_uint_eq(x->minor, y->minor);
  ck_assert_uint_eq(x->header_bytes, y->header_bytes);
  ck_assert_uint_eq(x->flags, y->flags);
  ck_assert_int_eq(x->rank, y->rank);
  ck_assert_uint_eq(x->pid, y->pid);
  ck_assert_uint_eq(x->t0_mono_ns, y->t0_mono_ns);
  ck_assert_uint_eq(x->t0_real_ns, y->t0_real_ns);
  ck_assert_uint_eq(x->max_bytes, y->max_bytes);
}

START_TEST(header_golden_bytes) {
  gs_trace_header h = sample_header(), back;
  uint8_t out[GS_TRACE_HDR_BYTES];
  gs__tracefmt_put_header(out, &h);
  ck_assert_int_eq(memcmp(out, golden_header, sizeof(out)), 0);
  gs_trace_reader r;
  ck_assert_int_eq(gs__tracefmt_open(&r, golden_header, sizeof(golden_header)), 0);
  back = r.hdr;
  assert_header_eq(&back, &h);
  ck_assert_uint_eq(r.off, 64);
  gs_rec rec;
  ck_assert_int_eq(gs__tracefmt_next(&r, &rec), 0); /* a header alone is an empty trace */
}
END_TEST

START_TEST(header_of_this_process) {
  gs_trace_header h;
  gs__tracefmt_header(&h, 1 << 20, GS_TRACE_F_SNAPSHOT);
  ck_assert_uint_eq(h.version, GS_TRACE_VERSION);
  ck_assert_uint_eq(h.minor, GS_TRACE_MINOR);
  ck_assert_uint_eq(h.header_bytes, GS_TRACE_HDR_BYTES);
  ck_assert_uint_eq(h.flags, GS_TRACE_F_SNAPSHOT);
  ck_assert_uint_gt(h.t0_mono_ns, 0);
  ck_assert_uint_gt(h.t0_real_ns, 0);
}
END_TEST

static const gs_trace_event golden_event_value = {
    .t = 0x0102030405060708ull, .type = GS_REC_ALLOC, .kind = 2, .cat = 1, .cat2 = 0xfe,
    .device = -1, .flags = 0x0123, .site = 0x0a0b0c0du, .tid = 0x11223344u,
    .a = 0xdeadbeefcafef00dull, .b = 4096, .c = 0x8000000000000001ull, .d = 7};

START_TEST(event_golden_bytes) {
  uint8_t want[64] = {
      0x03, 0x00, 0x40, 0x00, 0, 0, 0, 0,             /* type 3, length 64, check (sealed) */
      0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /*  0 t */
      0x00, 0x02, 0x01, 0xfe,                         /*  8 reserved, kind, cat, cat2 */
      0xff, 0xff,                                     /* 12 device -1 */
      0x23, 0x01,                                     /* 14 flags */
      0x0d, 0x0c, 0x0b, 0x0a,                         /* 16 site */
      0x44, 0x33, 0x22, 0x11,                         /* 20 tid */
      0x0d, 0xf0, 0xfe, 0xca, 0xef, 0xbe, 0xad, 0xde, /* 24 a */
      0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 32 b */
      0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, /* 40 c */
      0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 48 d */
  };
  seal(want, sizeof(want));
  uint8_t got[128];
  ck_assert_uint_eq(gs__tracefmt_put_event(got, sizeof(got), &golden_event_value, NULL, 0), 64);
  ck_assert_int_eq(memcmp(got, want, sizeof(want)), 0);
}
END_TEST

/* The SAMPLE layout's fixed slots: by_cat[i] at 24 + 8i, by_kind[i] at 56 + 8i, `without` at
 * 120 (2.1), 128 bytes. */
START_TEST(sample_layout) {
  gs_rec_sample s = {.t = 1, .device = 32, .total = 2, .without = 0x0102030405060708ull};
  for (unsigned i = 0; i < GS_FMT_SAMPLE_CATS; i++) s.by_cat[i] = 0x10 + i;
  for (unsigned i = 0; i < GS_FMT_SAMPLE_KINDS; i++) s.by_kind[i] = 0x20 + i;
  uint8_t rec[256];
  ck_assert_uint_eq(gs__tracefmt_put_sample(rec, sizeof(rec), &s), 8 + 128);
  const uint8_t *p = rec + 8;
  ck_assert_uint_eq(rec[0], 10);
  ck_assert_uint_eq(rec[2], 136);
  for (unsigned i = 0; i < 8; i++) ck_assert_uint_eq(p[120 + i], 8 - i);
  ck_assert_uint_eq(p[0], 1);
  ck_assert_uint_eq(p[8], 32);
  ck_assert_uint_eq(p[16], 2);
  ck_assert_uint_eq(GS_FMT_SAMPLE_CATS, 4);
  ck_assert_uint_eq(GS_FMT_SAMPLE_KINDS, 8);
  for (unsigned i = 0; i < 4; i++) ck_assert_uint_eq(p[24 + 8 * i], 0x10 + i);
  for (unsigned i = 0; i < 8; i++) ck_assert_uint_eq(p[56 + 8 * i], 0x20 + i);
  for (unsigned i = 9; i < 16; i++) ck_assert_uint_eq(p[i], 0); /* device's high byte, reserved */
}
END_TEST

/* ---- round trips ---- */

static void assert_event_eq(const gs_trace_event *x, const gs_trace_event *y) {
  ck_assert_uint_eq(x->t, y->t);
  ck_assert_uint_eq(x->type, y->type);
  ck_assert_uint_eq(x->kind, y->kind);
  ck_assert_uint_eq(x->cat, y->cat);
  ck_assert_uint_eq(x->cat2, y->cat2);
  ck_assert_int_eq(x->device, y->device);
  ck_assert_uint_eq(x->flags, y->flags);
  ck_assert_uint_eq(x->site, y->site);
  ck_assert_uint_eq(x->tid, y->tid);
  ck_assert_uint_eq(x->a, y->a);
  ck_assert_uint_eq(x->b, y->b);
  ck_assert_uint_eq(x->c, y->c);
  ck_assert_uint_eq(x->d, y->d);
}

static const unsigned event_types[] = {GS_REC_ALLOC, GS_REC_FREE, GS_REC_RECAT, GS_REC_SAVED,
                                       GS_REC_ITER, GS_REC_OOM, GS_REC_KERNEL, GS_REC_PLAN};

/* Distinct, full-width values per record, so a swapped or narrowed field shows. */
static gs_trace_event event_for(unsigned i) {
  return (gs_trace_event){.t = 0xf00000000000000full + i, .type = (uint8_t)event_types[i],
                          .kind = (uint8_t)(0x80 + i), .cat = (uint8_t)(0x90 + i),
                          .cat2 = (uint8_t)(0xa0 + i), .device = (int16_t)(-1 - (int)i),
                          .flags = (uint16_t)(0xfff0 + i), .site = 0xfffffff0u + i,
                          .tid = 0x7ffffff0u + i, .a = ~0ull - i, .b = 1ull << (40 + i),
                          .c = 0x0123456789abcdefull ^ i, .d = i};
}

static const gs_rec_module a_module = {0x7f0000001000ull, 0x7f0000000000ull, 0x7f00ffffffffull};
static const gs_rec_site a_site = {0xfffffffeu, 0x80000001u, 0xffffffff12345678ull};
static const gs_rec_drop a_drop = {1, ~0ull, 3, 1ull << 63, 5, 6};
static const gs_rec_end an_end = {~0ull - 1, 1ull << 40, 123456789, GS_TRACE_F_SNAPSHOT};

static gs_rec_sample a_sample(void) {
  gs_rec_sample s = {.t = 99, .device = GS_DEVICE_HOST, .total = ~0ull};
  for (unsigned i = 0; i < GS_FMT_SAMPLE_CATS; i++) s.by_cat[i] = (1ull << 50) + i;
  for (unsigned i = 0; i < GS_FMT_SAMPLE_KINDS; i++) s.by_kind[i] = (3ull << 60) + i;
  return s;
}

/* Header, one record of every type (and one of a type from the future), into buf. */
static size_t build_trace(uint8_t *buf, size_t cap) {
  gs_trace_header h = sample_header();
  gs__tracefmt_put_header(buf, &h);
  size_t off = GS_TRACE_HDR_BYTES;
  off += gs__tracefmt_put_module(buf + off, cap - off, &a_module, "/lib/x.so", 9);
  off += gs__tracefmt_put_site(buf + off, cap - off, &a_site);
  for (unsigned i = 0; i < GS_ARRAY_LEN(event_types); i++) {
    gs_trace_event ev = event_for(i);
    bool kernel = ev.type == GS_REC_KERNEL;
    off += gs__tracefmt_put_event(buf + off, cap - off, &ev, kernel ? "gs_k_pack" : NULL, 9);
  }
  gs_rec_sample s = a_sample();
  off += gs__tracefmt_put_sample(buf + off, cap - off, &s);
  off += gs__tracefmt_put_drop(buf + off, cap - off, &a_drop);
  off += gs__tracefmt_put_end(buf + off, cap - off, &an_end);
  off += gs__tracefmt_frame(buf + off, cap - off, 300, "future", 6, NULL, 0);
  return off;
}

START_TEST(round_trip_every_record) {
  uint8_t buf[4096];
  size_t len = build_trace(buf, sizeof(buf));
  gs_trace_reader r;
  gs_rec rec;
  ck_assert_int_eq(gs__tracefmt_open(&r, buf, len), 0);
  ck_assert_int_eq(gs__tracefmt_next(&r, &rec), 1);
  gs_rec_module m;
  const uint8_t *tail;
  size_t tail_n;
  ck_assert_int_eq(gs__tracefmt_get_module(&rec, &m, &tail, &tail_n), 0);
  ck_assert(m.bias == a_module.bias && m.lo == a_module.lo && m.hi == a_module.hi);
  ck_assert_uint_eq(tail_n, 9);
  ck_assert_int_eq(memcmp(tail, "/lib/x.so", 9), 0);
  ck_assert_int_eq(gs__tracefmt_next(&r, &rec), 1);
  gs_rec_site site;
  ck_assert_int_eq(gs__tracefmt_get_site(&rec, &site), 0);
  ck_assert(site.id == a_site.id && site.parent == a_site.parent && site.ip == a_site.ip);
  for (unsigned i = 0; i < GS_ARRAY_LEN(event_types); i++) {
    gs_trace_event want = event_for(i), got;
    ck_assert_int_eq(gs__tracefmt_next(&r, &rec), 1);
    ck_assert_uint_eq(rec.type, event_types[i]);
    ck_assert_int_eq(gs__tracefmt_get_event(&rec, &got, &tail, &tail_n), 0);
    assert_event_eq(&got, &want);
    ck_assert_uint_eq(tail_n, want.type == GS_REC_KERNEL ? 9 : 0);
    if (tail_n) ck_assert_int_eq(memcmp(tail, "gs_k_pack", 9), 0);
  }
  ck_assert_int_eq(gs__tracefmt_next(&r, &rec), 1);
  gs_rec_sample s, want_s = a_sample();
  ck_assert_int_eq(gs__tracefmt_get_sample(&rec, &s), 0);
  ck_assert_uint_eq(s.t, want_s.t);
  ck_assert_int_eq(s.device, want_s.device);
  ck_assert_uint_eq(s.total, want_s.total);
  ck_assert_int_eq(memcmp(s.by_cat, want_s.by_cat, sizeof(s.by_cat)), 0);
  ck_assert_int_eq(memcmp(s.by_kind, want_s.by_kind, sizeof(s.by_kind)), 0);
  ck_assert_int_eq(gs__tracefmt_next(&r, &rec), 1);
  gs_rec_drop d;
  ck_assert_int_eq(gs__tracefmt_get_drop(&rec, &d), 0);
  ck_assert_int_eq(memcmp(&d, &a_drop, sizeof(d)), 0); /* all u64: no padding */
  ck_assert_int_eq(gs__tracefmt_next(&r, &rec), 1);
  gs_rec_end e;
  ck_assert_int_eq(gs__tracefmt_get_end(&rec, &e), 0);
  ck_assert_int_eq(memcmp(&e, &an_end, sizeof(e)), 0);
  ck_assert_int_eq(gs__tracefmt_next(&r, &rec), 1); /* an unknown type is handed over, */
  ck_assert_uint_eq(rec.type, 300);                  /* for the caller to skip */
  ck_assert_uint_eq(rec.len, 6);
  ck_assert_int_eq(gs__tracefmt_next(&r, &rec), 0);
}
END_TEST

START_TEST(decoders_check_the_type) {
  uint8_t buf[256];
  size_t n = gs__tracefmt_put_end(buf, sizeof(buf), &an_end);
  gs_rec rec = {.type = GS_REC_END, .payload = buf + 8, .len = n - 8};
  gs_rec_sample s;
  gs_rec_drop d;
  gs_trace_event ev;
  ck_assert_int_eq(gs__tracefmt_get_sample(&rec, &s), -EBADMSG);
  ck_assert_int_eq(gs__tracefmt_get_drop(&rec, &d), -EBADMSG);
  ck_assert_int_eq(gs__tracefmt_get_event(&rec, &ev, NULL, NULL), -EBADMSG);
  rec.type = GS_REC_DROP; /* a DROP 32 bytes long: shorter than 2.0's */
  ck_assert_int_eq(gs__tracefmt_get_drop(&rec, &d), -EBADMSG);
  uint64_t t;
  ck_assert(gs__tracefmt_time(&rec, &t));
  ck_assert_uint_eq(t, an_end.t);
  n = gs__tracefmt_put_site(buf, sizeof(buf), &a_site);
  rec = (gs_rec){.type = GS_REC_SITE, .payload = buf + 8, .len = n - 8};
  ck_assert(!gs__tracefmt_time(&rec, &t)); /* MODULE and SITE have no time */
}
END_TEST

START_TEST(encoders_refuse_small_buffers) {
  uint8_t buf[64];
  ck_assert_uint_eq(gs__tracefmt_put_event(buf, 63, &golden_event_value, NULL, 0), 0);
  ck_assert_uint_eq(gs__tracefmt_put_event(buf, 64, &golden_event_value, "x", 1), 0);
  gs_rec_sample s = a_sample();
  ck_assert_uint_eq(gs__tracefmt_put_sample(buf, sizeof(buf), &s), 0);
  static char big[70000];
  uint8_t *huge = malloc(sizeof(big) + 64);
  ck_assert_uint_eq(gs__tracefmt_put_module(huge, sizeof(big) + 64, &a_module, big, sizeof(big)), 0);
  free(huge); /* a record's length is a u16 */
}
END_TEST

/* STRING (2.1): u64 t, u32 id, 4 reserved, then the bytes. ATTR: u64 t, then six u32. */
START_TEST(string_and_attr_layout) {
  uint8_t rec[128];
  ck_assert_uint_eq(gs__tracefmt_put_string(rec, sizeof(rec), 0x11, 0x01020304, "ab.c", 4), 8 + 16 + 4);
  ck_assert_uint_eq(rec[0], 14);
  ck_assert_uint_eq(rec[8], 0x11);
  ck_assert_uint_eq(rec[16], 4);
  ck_assert_uint_eq(rec[19], 1);
  ck_assert_int_eq(memcmp(rec + 24, "ab.c", 4), 0);
  gs_rec r = {.type = 14, .payload = rec + 8, .len = 20};
  uint32_t id;
  const uint8_t *str;
  size_t n;
  ck_assert_int_eq(gs__tracefmt_get_string(&r, &id, &str, &n), 0);
  ck_assert_uint_eq(id, 0x01020304);
  ck_assert_uint_eq(n, 4);
  gs_rec_attr a = {.t = 9, .id = 1, .module = 2, .node = 3, .file = 4, .line = 5, .function = 6}, b;
  ck_assert_uint_eq(gs__tracefmt_put_attr(rec, sizeof(rec), &a), 8 + 32);
  ck_assert_uint_eq(rec[0], 15);
  for (unsigned i = 0; i < 6; i++) ck_assert_uint_eq(rec[16 + 4 * i], i + 1);
  r = (gs_rec){.type = 15, .payload = rec + 8, .len = 32};
  ck_assert_int_eq(gs__tracefmt_get_attr(&r, &b), 0);
  ck_assert_uint_eq(b.t, 9);
  ck_assert_uint_eq(b.line, 5);
  ck_assert_uint_eq(b.function, 6);
  r.len = 31; /* shorter than its size: refused */
  ck_assert_int_eq(gs__tracefmt_get_attr(&r, &b), -EBADMSG);
}
END_TEST

/* A 2.0 SAMPLE (120 bytes, no `without`) still reads, with `without` 0. */
START_TEST(sample_2_0_reads) {
  gs_rec_sample s = {.t = 1, .device = 0, .total = 77, .without = 99}, back;
  uint8_t rec[256];
  gs__tracefmt_put_sample(rec, sizeof(rec), &s);
  gs_rec r = {.type = GS_REC_SAMPLE, .payload = rec + 8, .len = GS_FMT_SAMPLE_BYTES};
  ck_assert_int_eq(gs__tracefmt_get_sample(&r, &back), 0);
  ck_assert_uint_eq(back.total, 77);
  ck_assert_uint_eq(back.without, 0);
}
END_TEST

/* ---- compatibility: newer minors, other majors ---- */

/* A later minor: a longer header, longer payloads, a new type. All read, the extra ignored. */
START_TEST(newer_minor_is_read) {
  uint8_t buf[1024] = {0};
  gs_trace_header h = sample_header();
  gs__tracefmt_put_header(buf, &h);
  buf[10] = 9, buf[11] = 0; /* minor 9 */
  buf[12] = 96; /* a 96-byte header */
  memset(buf + 64, 0xee, 32);
  size_t off = 96;
  uint8_t p[GS_FMT_EVENT_BYTES + 8], q[GS_FMT_SAMPLE_BYTES + 16];
  gs__tracefmt_put_event(buf + 512, 512, &golden_event_value, NULL, 0);
  memcpy(p, buf + 512 + 8, GS_FMT_EVENT_BYTES);
  memset(p + GS_FMT_EVENT_BYTES, 0x55, 8); /* a field appended by minor 9 */
  off += gs__tracefmt_frame(buf + off, sizeof(buf) - off, GS_REC_ALLOC, p, sizeof(p), NULL, 0);
  gs_rec_sample s = a_sample();
  gs__tracefmt_put_sample(buf + 512, 512, &s);
  memcpy(q, buf + 512 + 8, GS_FMT_SAMPLE_BYTES);
  memset(q + GS_FMT_SAMPLE_BYTES, 0x66, 16);
  off += gs__tracefmt_frame(buf + off, sizeof(buf) - off, GS_REC_SAMPLE, q, sizeof(q), NULL, 0);
  gs_trace_reader r;
  gs_rec rec;
  ck_assert_int_eq(gs__tracefmt_open(&r, buf, off), 0);
  ck_assert_uint_eq(r.hdr.minor, 9);
  ck_assert_uint_eq(r.off, 96);
  ck_assert_int_eq(gs__tracefmt_next(&r, &rec), 1);
  gs_trace_event ev;
  ck_assert_int_eq(gs__tracefmt_get_event(&rec, &ev, NULL, NULL), 0);
  assert_event_eq(&ev, &golden_event_value);
  ck_assert_int_eq(gs__tracefmt_next(&r, &rec), 1);
  gs_rec_sample back;
  ck_assert_int_eq(gs__tracefmt_get_sample(&rec, &back), 0);
  ck_assert_uint_eq(back.total, s.total);
  ck_assert_uint_eq(back.by_kind[GS_FMT_SAMPLE_KINDS - 1], s.by_kind[GS_FMT_SAMPLE_KINDS - 1]);
  ck_assert_int_eq(gs__tracefmt_next(&r, &rec), 0);
}
END_TEST

/* The version 1 header, byte for byte as libgactshim 0.1 wrote it (its in-memory struct). */
static size_t v1_trace(uint8_t *buf) {
  static const uint8_t hdr[64] = {'G', 'S', 'T', 'R', 'A', 'C', 'E', '\n',
                                  0x01, 0x00, 0x40, 0x00, /* version 1, header_bytes 64 */
                                  0x00, 0x00, 0x00, 0x00, /* flags */
                                  0x39, 0x30};            /* pid 12345, the rest 0 */
  memcpy(buf, hdr, sizeof(hdr));
  return sizeof(hdr);
}

START_TEST(version_1_refused) {
  uint8_t buf[64];
  size_t n = v1_trace(buf);
  gs_trace_reader r;
  ck_assert_int_eq(gs__tracefmt_open(&r, buf, n), -EPROTONOSUPPORT);
  ck_assert_str_eq(r.err, "unsupported trace version 1 (this tool reads version 2); "
                          "record it again with this version of libgactshim");
  buf[8] = 0;
  ck_assert_int_eq(gs__tracefmt_open(&r, buf, n), -EPROTONOSUPPORT);
  ck_assert_ptr_nonnull(strstr(r.err, "unsupported trace version 0 "));
}
END_TEST

START_TEST(newer_major_refused) {
  uint8_t buf[64];
  gs_trace_header h = sample_header();
  gs__tracefmt_put_header(buf, &h);
  buf[8] = 3;
  gs_trace_reader r;
  ck_assert_int_eq(gs__tracefmt_open(&r, buf, sizeof(buf)), -EPROTONOSUPPORT);
  ck_assert_str_eq(r.err, "unsupported trace version 3 (this tool reads version 2); "
                          "read it with a newer gactshim-report");
  buf[8] = 0x01, buf[9] = 0x01; /* 257: the version is a u16, little-endian */
  ck_assert_int_eq(gs__tracefmt_open(&r, buf, sizeof(buf)), -EPROTONOSUPPORT);
  ck_assert_ptr_nonnull(strstr(r.err, "version 257 "));
}
END_TEST

/* ---- damaged input ---- */

START_TEST(bad_headers) {
  uint8_t buf[4096];
  size_t len = build_trace(buf, sizeof(buf));
  gs_trace_reader r;
  ck_assert_int_eq(gs__tracefmt_open(&r, buf, 63), -EBADMSG);
  ck_assert_str_eq(r.err, "not a gactshim trace (shorter than the 64-byte header)");
  buf[0] = 'g';
  ck_assert_int_eq(gs__tracefmt_open(&r, buf, len), -EBADMSG);
  ck_assert_str_eq(r.err, "not a gactshim trace (bad magic)");
  buf[0] = 'G';
  buf[12] = 32; /* header_bytes below 64 */
  ck_assert_int_eq(gs__tracefmt_open(&r, buf, len), -EBADMSG);
  ck_assert_str_eq(r.err, "corrupt header (header length 32)");
  buf[12] = 0x00, buf[13] = 0xff; /* beyond the buffer */
  ck_assert_int_eq(gs__tracefmt_open(&r, buf, len), -EBADMSG);
}
END_TEST

/* Reads records until the end or an error: the last return of gs__tracefmt_next. */
static int read_all(gs_trace_reader *r, const uint8_t *buf, size_t len, int *count) {
  gs_rec rec;
  int rc;
  *count = 0;
  ck_assert_int_eq(gs__tracefmt_open(r, buf, len), 0);
  while ((rc = gs__tracefmt_next(r, &rec)) == 1) (*count)++;
  return rc;
}

START_TEST(truncated_records) {
  uint8_t buf[4096];
  size_t len = build_trace(buf, sizeof(buf));
  gs_trace_reader r;
  int n, all;
  ck_assert_int_eq(read_all(&r, buf, len, &all), 0);
  ck_assert_int_eq(all, 14);
  /* Every cut inside the records: the whole records before it, then -ENODATA. */
  for (size_t cut = GS_TRACE_HDR_BYTES; cut < len; cut++) {
    int rc = read_all(&r, buf, cut, &n);
    ck_assert(rc == 0 || rc == -ENODATA);
    ck_assert_int_le(n, all);
    if (rc == -ENODATA) ck_assert_ptr_nonnull(strstr(r.err, "trace ends inside a record at offset"));
  }
  ck_assert_int_eq(read_all(&r, buf, len - 1, &n), -ENODATA);
  ck_assert_int_eq(n, all - 1);
}
END_TEST

START_TEST(corrupt_records) {
  uint8_t buf[4096], c[4096];
  size_t len = build_trace(buf, sizeof(buf));
  gs_trace_reader r;
  int n;
  size_t first = GS_TRACE_HDR_BYTES; /* the MODULE record */
  memcpy(c, buf, len);
  c[first + 8 + 3] ^= 1; /* a payload bit: the check */
  ck_assert_int_eq(read_all(&r, c, len, &n), -EBADMSG);
  ck_assert_str_eq(r.err, "corrupt record at offset 64 (checksum mismatch)");
  memcpy(c, buf, len);
  c[first + 2] = 4, c[first + 3] = 0; /* length below the record header */
  ck_assert_int_eq(read_all(&r, c, len, &n), -EBADMSG);
  ck_assert_str_eq(r.err, "corrupt record at offset 64 (type 1, length 4)");
  memcpy(c, buf, len);
  c[first] = 0; /* type 0 */
  ck_assert_int_eq(read_all(&r, c, len, &n), -EBADMSG);
  /* A known type shorter than its 2.0 payload, with a good check: refused, not zero-filled. */
  uint8_t p[GS_FMT_SAMPLE_BYTES] = {0};
  memcpy(c, buf, GS_TRACE_HDR_BYTES);
  size_t off = GS_TRACE_HDR_BYTES;
  off += gs__tracefmt_frame(c + off, sizeof(c) - off, GS_REC_SAMPLE, p, sizeof(p) - 8, NULL, 0);
  ck_assert_int_eq(read_all(&r, c, off, &n), -EBADMSG);
  ck_assert_str_eq(r.err, "corrupt record at offset 64 (type 10 with 112 payload bytes, at least "
                          "120 expected)");
  off = GS_TRACE_HDR_BYTES;
  off += gs__tracefmt_frame(c + off, sizeof(c) - off, GS_REC_OOM, p, GS_FMT_EVENT_BYTES - 1, NULL, 0);
  ck_assert_int_eq(read_all(&r, c, off, &n), -EBADMSG);
}
END_TEST

/* Every single-byte change anywhere: the reader stops or goes on, never reads out of bounds
 * (ASan checks) and never returns a record past the buffer. */
START_TEST(flipped_bytes_never_crash) {
  uint8_t buf[4096], c[4096];
  size_t len = build_trace(buf, sizeof(buf));
  for (size_t i = 0; i < len; i++) {
    memcpy(c, buf, len);
    c[i] ^= 0xa5;
    gs_trace_reader r;
    gs_rec rec;
    if (gs__tracefmt_open(&r, c, len) != 0) continue;
    while (gs__tracefmt_next(&r, &rec) == 1) ck_assert(rec.payload + rec.len <= c + len);
  }
}
END_TEST

static Suite *format_suite(void) {
  Suite *s = suite_create("format");
  TCase *tc = tcase_create("format");
  tcase_add_test(tc, header_golden_bytes);
  tcase_add_test(tc, header_of_this_process);
  tcase_add_test(tc, event_golden_bytes);
  tcase_add_test(tc, sample_layout);
  tcase_add_test(tc, round_trip_every_record);
  tcase_add_test(tc, decoders_check_the_type);
  tcase_add_test(tc, encoders_refuse_small_buffers);
  tcase_add_test(tc, newer_minor_is_read);
  tcase_add_test(tc, string_and_attr_layout);
  tcase_add_test(tc, sample_2_0_reads);
  tcase_add_test(tc, version_1_refused);
  tcase_add_test(tc, newer_major_refused);
  tcase_add_test(tc, bad_headers);
  tcase_add_test(tc, truncated_records);
  tcase_add_test(tc, corrupt_records);
  tcase_add_test(tc, flipped_bytes_never_crash);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return gs_check_run(format_suite());
}
