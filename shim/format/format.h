/* format.h: the trace file format and the control protocol, shared by the shim and its tools. */
#ifndef GS_FORMAT_H
#define GS_FORMAT_H

/* The format room depends on base only. The recorder (shim/timeline), gactshim-report (tools/)
 * and the fuzzers (tests/fuzz) all read and write traces through it. Layouts: docs/trace-format.md. */

#include "base.h"

/* ---- little-endian stores and loads at byte offsets (layouts.c, records.c) -----------------
 * Byte by byte, so the result never depends on the host's endianness or alignment; compilers
 * turn these loops into single moves on little-endian hosts. */

/* Stores the low `width` bytes of v at p + off, least significant first. */
static inline void gs__le_put(uint8_t *p, size_t off, unsigned width, uint64_t v) {
  for (unsigned i = 0; i < width; i++) p[off + i] = (uint8_t)(v >> (8 * i));
}

/* Loads `width` bytes at off from a payload of n bytes; 0 when the field lies past its end (a
 * record from an older minor version, which did not have the field). */
static inline uint64_t gs__le_get(const uint8_t *p, size_t n, size_t off, unsigned width) {
  uint64_t v = 0;
  if (off + width > n) return 0;
  for (unsigned i = 0; i < width; i++) v |= (uint64_t)p[off + i] << (8 * i);
  return v;
}

/* ---- trace records: framing and reader (records.c), payload layouts (layouts.c) ----------- */

/* Every byte that reaches a file or the socket is written here with explicit little-endian
 * stores at the offsets docs/trace-format.md lists, and read back with explicit loads into the
 * plain structs below. Those structs are decoded values: their in-memory layout (padding, enum
 * widths, array sizes) is never copied to disk, so changing them does not change the format. */

#define GS_TRACE_MAGIC "GSTRACE\n"
#define GS_TRACE_VERSION 2   /* major: a reader refuses every other (u16 at offset 8, always) */
#define GS_TRACE_MINOR 1     /* additions within a major: new record types, longer payloads */
#define GS_TRACE_HDR_BYTES 64
#define GS_REC_HDR_BYTES 8
#define GS_REC_MAX 4096 /* largest record we write (a module path is the longest) */

/* Payload sizes of version 2.0: what the writer writes, and the least a reader accepts for a
 * known type (a later minor may append fields; a reader ignores bytes past those it knows). */
#define GS_FMT_EVENT_BYTES 56
#define GS_FMT_MODULE_BYTES 24 /* then the path bytes */
#define GS_FMT_SITE_BYTES 16
#define GS_FMT_SAMPLE_CATS 4   /* by_cat slots on disk (gs_category); unused ones hold 0 */
#define GS_FMT_SAMPLE_KINDS 8  /* by_kind slots on disk (gs_alloc_kind); unused ones hold 0 */
#define GS_FMT_SAMPLE_BYTES (24 + 8 * (GS_FMT_SAMPLE_CATS + GS_FMT_SAMPLE_KINDS))
#define GS_FMT_SAMPLE_BYTES_2_1 (GS_FMT_SAMPLE_BYTES + 8) /* 2.1 appends `without` */
#define GS_FMT_STRING_BYTES 16 /* then the string's bytes */
#define GS_FMT_ATTR_BYTES 32
#define GS_FMT_DROP_BYTES 48
#define GS_FMT_END_BYTES 32

/* A new category or kind takes a spare slot (a minor change); one more than the slots is a new
 * major version. Both are written as u8 in events. */
_Static_assert(GS_CAT__COUNT <= GS_FMT_SAMPLE_CATS, "categories exceed the sample's on-disk slots");
_Static_assert(GS_KIND__COUNT <= GS_FMT_SAMPLE_KINDS, "kinds exceed the sample's on-disk slots");
_Static_assert(GS_CAT__COUNT <= 256 && GS_KIND__COUNT <= 256, "events store them in one byte");

/* Record types. Values are part of the format: append, never renumber. Every type but MODULE
 * and SITE starts its payload with u64 t (gs__tracefmt_time), new ones included. */
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
  GS_REC_STRING = 14, /* summary (2.1): an interned string (id, bytes) */
  GS_REC_ATTR = 15,  /* summary (2.1): a saved tensor's attribution (module, node, file:line, function) */
  GS_REC__COUNT
} gs_rec_type;

typedef enum gs_saved_op {
  GS_SAVED_PACK = 0,       /* kept at full precision */
  GS_SAVED_COMPRESS = 1,   /* packed and compressed; a = bytes before, b = bytes after */
  GS_SAVED_UNPACK = 2,     /* a full-precision tensor given back */
  GS_SAVED_DECOMPRESS = 3, /* a compressed tensor restored */
  GS_SAVED_RELEASE = 4,    /* (2.1) a handle died: a = bytes it held, b = full bytes */
} gs_saved_op;

/* SAVED records' flags (2.1): what a what-if replay needs to know of the tensor. */
#define GS_SAVED_F_CANDIDATE 0x1u /* the policy could compress it (not a param, small, ...) */
#define GS_SAVED_F_SENSITIVE 0x2u /* softmax-like producer: the fixed policy's 8-bit floor */
#define GS_SAVED_F_RELU 0x4u      /* ReLU output: compressed with a 1-bit sign mask */
#define GS_SAVED_F_ELEM_SHIFT 8   /* bits 8..11: bytes per element at full precision */

/* PLAN records' reasons (policy/policy.h gs_plan_reason), by value: part of the format. */
#define GS_PLAN_REASON_NAMES                                                                     \
  {"skipped", "fixed", "warmup", "adaptive", "budget", "budget-fits", "not-at-peak", "at-peak"}

/* The file header, decoded (64 bytes on disk, starting with the magic). */
typedef struct gs_trace_header {
  uint16_t version;      /* GS_TRACE_VERSION */
  uint16_t minor;        /* GS_TRACE_MINOR of the writer */
  uint16_t header_bytes; /* records start here; a later minor may write a longer header */
  uint32_t flags;        /* GS_TRACE_F_* */
  int32_t rank;          /* RANK, else LOCAL_RANK, else -1 */
  uint64_t pid;
  uint64_t t0_mono_ns;   /* CLOCK_MONOTONIC at start: record times are on this clock */
  uint64_t t0_real_ns;   /* CLOCK_REALTIME at the same moment */
  uint64_t max_bytes;    /* GACTSHIM_TRACE_MAX the writer honoured */
} gs_trace_header;

#define GS_TRACE_F_SNAPSHOT 1u /* a live snapshot served over the control socket */

/* ALLOC, FREE, RECAT, SAVED, ITER, OOM, KERNEL and PLAN records, decoded. Field use per type is
 * listed in docs/trace-format.md. */
typedef struct gs_trace_event {
  uint64_t t;
  uint8_t type;      /* gs_rec_type (from the record header) */
  uint8_t kind;      /* gs_alloc_kind, or the saved-tensor operation */
  uint8_t cat;       /* gs_category */
  uint8_t cat2;      /* new category (recategorize), bits (saved tensors) */
  int16_t device;
  uint16_t flags;
  uint32_t site;     /* call-site node id, 0 = none */
  uint32_t tid;
  uint64_t a, b, c, d;
} gs_trace_event;

typedef struct gs_rec_module { uint64_t bias, lo, hi; } gs_rec_module; /* + path bytes */
typedef struct gs_rec_site { uint32_t id, parent; uint64_t ip; } gs_rec_site;
typedef struct gs_rec_sample {
  uint64_t t;
  int16_t device;
  uint64_t total;
  uint64_t by_cat[GS_FMT_SAMPLE_CATS];   /* indexed by gs_category; spare slots 0 */
  uint64_t by_kind[GS_FMT_SAMPLE_KINDS]; /* indexed by gs_alloc_kind; spare slots 0 */
  uint64_t without; /* (2.1) the window's maximum of total + Σ (full − held) over live compressed
                     * saved tensors: the curve without gactshim; 0 = not recorded (2.0) */
} gs_rec_sample;
/* A saved tensor's attribution (2.1): string ids (0 = unknown) and a line. */
typedef struct gs_rec_attr {
  uint64_t t;
  uint32_t id, module, node, file, line, function;
} gs_rec_attr;
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

/* The header's 64 bytes on disk (magic included). */
void gs__tracefmt_put_header(uint8_t out[GS_TRACE_HDR_BYTES], const gs_trace_header *h);

/* Frames a payload that is already in its on-disk form (payload, then tail) as one record into
 * dst (cap bytes): the record's length, or 0 if it does not fit. */
size_t gs__tracefmt_frame(uint8_t *dst, size_t cap, unsigned type, const void *payload, size_t n,
                          const void *tail, size_t tail_n);

/* Encoders: one whole record into dst (cap bytes); its length, or 0 if it does not fit. An event
 * takes its type from ev->type; name (KERNEL only, else NULL) follows its fixed part. */
size_t gs__tracefmt_put_event(uint8_t *dst, size_t cap, const gs_trace_event *ev, const char *name,
                              size_t name_n);
size_t gs__tracefmt_put_module(uint8_t *dst, size_t cap, const gs_rec_module *m, const char *path,
                               size_t path_n);
size_t gs__tracefmt_put_site(uint8_t *dst, size_t cap, const gs_rec_site *s);
size_t gs__tracefmt_put_sample(uint8_t *dst, size_t cap, const gs_rec_sample *s);
size_t gs__tracefmt_put_drop(uint8_t *dst, size_t cap, const gs_rec_drop *d);
size_t gs__tracefmt_put_string(uint8_t *dst, size_t cap, uint64_t t, uint32_t id, const char *s,
                               size_t n);
size_t gs__tracefmt_put_attr(uint8_t *dst, size_t cap, const gs_rec_attr *a);
size_t gs__tracefmt_put_end(uint8_t *dst, size_t cap, const gs_rec_end *e);

/* Detail records are what the size bound drops first. */
bool gs__tracefmt_is_detail(unsigned type);

/* The types whose payload is an event (gs__tracefmt_get_event). */
bool gs__tracefmt_is_event(unsigned type);

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

/* 0, or -EBADMSG (not a trace, or a corrupt header: err says why) / -EPROTONOSUPPORT (another
 * major version: err is the "unsupported trace version N" line). */
int gs__tracefmt_open(gs_trace_reader *r, const void *buf, size_t len);

/* 1 with *out, 0 at a clean end, -ENODATA when the buffer ends inside a record (a trace cut by a
 * crash: everything before is valid), -EBADMSG for a corrupt record (bad length or check, or a
 * known type shorter than its 2.0 payload). err names the offset. Unknown types are returned
 * as they are, for the caller to skip. */
int gs__tracefmt_next(gs_trace_reader *r, gs_rec *out);

/* Decoders of a record gs__tracefmt_next returned: 0, or -EBADMSG when it is not of that type or
 * too short. Fields past the payload's end read 0 (a record of an older minor); bytes past the
 * fields known here are ignored (a newer minor). */
int gs__tracefmt_get_event(const gs_rec *r, gs_trace_event *ev, const uint8_t **tail,
                           size_t *tail_n);
int gs__tracefmt_get_module(const gs_rec *r, gs_rec_module *m, const uint8_t **path,
                            size_t *path_n);
int gs__tracefmt_get_site(const gs_rec *r, gs_rec_site *s);
int gs__tracefmt_get_sample(const gs_rec *r, gs_rec_sample *s);
int gs__tracefmt_get_drop(const gs_rec *r, gs_rec_drop *d);
int gs__tracefmt_get_string(const gs_rec *r, uint32_t *id, const uint8_t **s, size_t *n);
int gs__tracefmt_get_attr(const gs_rec *r, gs_rec_attr *a);
int gs__tracefmt_get_end(const gs_rec *r, gs_rec_end *e);

/* The record's time (its first 8 bytes) for every type but MODULE and SITE: true with *t. */
bool gs__tracefmt_time(const gs_rec *r, uint64_t *t);


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
