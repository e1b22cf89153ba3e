/* format.h: the trace file format and the control protocol, shared by the shim and its tools. */
#ifndef GS_FORMAT_H
#define GS_FORMAT_H

/* The format room depends on base only. The recorder (shim/timeline), gactshim-report (tools/)
 * and the fuzzers (tests/fuzz) all read and write traces through it. Layouts: docs/trace-format.md. */

#include "base.h"

/* ---- trace records (records.c) ------------------------------------------------------------ */

#define GS_TRACE_MAGIC "GSTRACE\n"
#define GS_TRACE_VERSION 1
#define GS_TRACE_HDR_BYTES 64
#define GS_REC_HDR_BYTES 8
#define GS_REC_MAX 4096 /* largest record we write (a module path is the longest) */

/* Record types. Values are part of the format: append, never renumber. */
typedef enum gs_rec_type {
  GS_REC_MODULE = 1, /* summary: a loaded object (bias, range, path) */
  GS_REC_SITE = 2,   /* summary: a call-site tree node (id, parent, ip) */
  GS_REC_ALLOC = 3,  /* detail */
  GS_REC_FREE = 4,   /* detail */
  GS_REC_RECAT = 5,  /* detail: category change of a live allocation */
  GS_REC_SAVED = 6,  /* detail: saved-tensor operation (gs_saved_op) */
  GS_REC_ITER = 7,   /* summary: iteration boundary */
  GS_REC_OOM = 8,    /* summary: out-of-memory error from the driver */
  GS_REC_KERNEL = 9, /* detail: a kernel's GPU duration (CUPTI) + its name */
  GS_REC_SAMPLE = 10, /* summary: the window's maximum of live bytes on one device */
  GS_REC_DROP = 11,  /* summary: what was dropped so far */
  GS_REC_END = 12,   /* summary: clean end of recording, or end of a live snapshot */
  GS_REC_PLAN = 13,  /* summary: one saved tensor's decision, when an iteration's plan changed */
  GS_REC__COUNT
} gs_rec_type;

typedef enum gs_saved_op {
  GS_SAVED_PACK = 0,       /* kept at full precision */
  GS_SAVED_COMPRESS = 1,   /* packed and compressed; a = bytes before, b = bytes after */
  GS_SAVED_UNPACK = 2,     /* a full-precision tensor given back */
  GS_SAVED_DECOMPRESS = 3, /* a compressed tensor restored */
} gs_saved_op;

/* PLAN records' reasons (policy/policy.h gs_plan_reason), by value: part of the format. */
#define GS_PLAN_REASON_NAMES                                                                     \
  {"skipped", "fixed", "warmup", "adaptive", "budget", "budget-fits", "not-at-peak", "at-peak"}

/* The 64-byte file header; all integers little-endian. */
typedef struct gs_trace_header {
  char magic[8];
  uint16_t version;
  uint16_t header_bytes;
  uint32_t flags;        /* GS_TRACE_F_* */
  uint64_t pid;
  uint64_t t0_mono_ns;   /* CLOCK_MONOTONIC at start: record times are on this clock */
  uint64_t t0_real_ns;   /* CLOCK_REALTIME at the same moment */
  int32_t rank;          /* RANK, else LOCAL_RANK, else -1 */
  uint32_t reserved0;
  uint64_t max_bytes;    /* GACTSHIM_TRACE_MAX the writer honoured */
  uint64_t reserved1;
} gs_trace_header;

#define GS_TRACE_F_SNAPSHOT 1u /* a live snapshot served over the control socket */

typedef struct gs_rec_module { uint64_t bias, lo, hi; } gs_rec_module; /* + path bytes */
typedef struct gs_rec_site { uint32_t id, parent; uint64_t ip; } gs_rec_site;
typedef struct gs_rec_sample {
  uint64_t t;
  int16_t device;
  uint16_t pad0;
  uint32_t pad1;
  uint64_t total;
  uint64_t by_cat[GS_CAT__COUNT];
  uint64_t by_kind[GS_KIND__COUNT];
} gs_rec_sample;
typedef struct gs_rec_drop {
  uint64_t t;
  uint64_t ring_dropped;   /* events refused by the full ring (never reached the writer) */
  uint64_t detail_dropped; /* detail records removed to respect the size bound */
  uint64_t detail_from;    /* detail records are complete from this time on (0 = all) */
  uint64_t sites_dropped;  /* call paths cut short because the tree was full */
  uint64_t samples_merged; /* samples merged pairwise (max kept) to respect the bound */
} gs_rec_drop;
typedef struct gs_rec_end { uint64_t t, registry_peak, events, flags; } gs_rec_end;

/* Fills a header for this process. */
void gs__tracefmt_header(gs_trace_header *h, uint64_t max_bytes, uint32_t flags);

/* Encodes one record into dst (cap bytes): its length, or 0 if it does not fit. */
size_t gs__tracefmt_encode(uint8_t *dst, size_t cap, unsigned type, const void *p1, size_t n1,
                           const void *p2, size_t n2);

/* Detail records are what the size bound drops first. */
bool gs__tracefmt_is_detail(unsigned type);

/* A reader over a buffer holding a whole trace (or its prefix). */
typedef struct gs_trace_reader {
  const uint8_t *buf;
  size_t len, off;
  gs_trace_header hdr;
  char err[160];
} gs_trace_reader;

typedef struct gs_rec {
  unsigned type;
  const uint8_t *payload;
  size_t len;   /* payload bytes */
  size_t off;   /* offset of the record in the buffer */
} gs_rec;

/* 0, or -EBADMSG (not a trace, err says why) / -EPROTONOSUPPORT (a newer major version). */
int gs__tracefmt_open(gs_trace_reader *r, const void *buf, size_t len);

/* 1 with *out, 0 at a clean end, -ENODATA when the buffer ends inside a record (a trace cut by a
 * crash: everything before is valid), -EBADMSG for a corrupt record. err names the offset. */
int gs__tracefmt_next(gs_trace_reader *r, gs_rec *out);

/* Copies a fixed-size payload, zero-filling what an older writer did not have. */
void gs__tracefmt_get(const gs_rec *rec, void *dst, size_t n);


/* One trace event as the hot path hands it over: 56 bytes, so a slot with its sequence number is
 * one 64-byte cache line. Field use per type is listed in docs/trace-format.md. */
typedef struct gs_event {
  uint64_t t;        /* gs__now_ns() */
  uint8_t type;      /* gs_rec_type */
  uint8_t kind;      /* gs_alloc_kind, or the saved-tensor operation */
  uint8_t cat;       /* gs_category */
  uint8_t cat2;      /* new category (recategorize), bits (saved tensors) */
  int16_t device;
  uint16_t flags;
  uint32_t site;     /* call-site node id, 0 = none */
  uint32_t tid;
  uint64_t a, b, c, d;
} gs_event;


/* ---- the control socket's protocol (control_proto.c) and client (control_client.c) -------- */

#define GS_CONTROL_VERSION 1
#define GS_CONTROL_REQ_MAX 128

/* What a request line asks for. */
enum { GS_CTL_PING = 1, GS_CTL_SNAPSHOT = 2 };

/* Parses one request line of n bytes (without its newline; may hold any byte, NUL included).
 * Returns GS_CTL_*, -EPROTONOSUPPORT for another protocol version, -E2BIG when the line and its
 * newline exceed GS_CONTROL_REQ_MAX bytes, or -EBADMSG. Pure: no I/O, no globals (the fuzzer's entry point). */
int gs__control_parse(const char *line, size_t n);

/* Directory of the sockets: $XDG_RUNTIME_DIR/gactshim, else /tmp/gactshim-<uid>. Created 0700
 * (mkdir_ok) and checked to be ours and private. 0 or negative errno. */
int gs__control_dir(char *out, size_t len, bool mkdir_ok);

/* The socket path of pid: 0 or negative errno (the directory is checked as above). */
struct sockaddr_un;
int gs__control_sock_path(long pid, struct sockaddr_un *sa, bool mkdir_ok);

/* Client side (the report tool): sends `req` to pid's socket and reads the whole reply into *out
 * (malloc'd) — the payload after the status line. err gets a sentence on failure.
 * 0 or negative errno. */
int gs__control_request(long pid, const char *req, uint8_t **out, size_t *len, char *err,
                        size_t errlen, int timeout_ms);

/* Lets tests serve clients of other users by relaxing the directory mode check. */
void gs__control_set_dir_for_tests(const char *dir);

#endif
