/* config.h: the GACTSHIM_* environment variables, parsed and validated once at load. */
#ifndef GS_CONFIG_H
#define GS_CONFIG_H

#include "common.h"

typedef enum gs_policy_kind {
  GS_POLICY_FIXED = 0,
  GS_POLICY_OFF,
  GS_POLICY_ADAPTIVE,      /* average GACTSHIM_BITS, redistributed by measured sensitivity */
  GS_POLICY_BUDGET,        /* keep tracked live memory under GACTSHIM_BUDGET */
} gs_policy_kind;

/* Which saved tensors the policy may compress (GACTSHIM_SELECT). */
typedef enum gs_select_kind {
  GS_SELECT_ALL = 0,       /* every eligible saved tensor */
  GS_SELECT_LIFETIME,      /* only those alive at the iteration's memory peak (policy/lifetime.c) */
} gs_select_kind;

/* GACTSHIM_BITS when it is not set: the adaptive policy's average, the others' width. */
#define GS_CONFIG_BITS_DEFAULT 4u
#define GS_CONFIG_ADAPTIVE_BITS_DEFAULT 2u

typedef enum gs_log_level {
  GS_LOG_ERROR = 0,
  GS_LOG_WARN,
  GS_LOG_INFO,
  GS_LOG_DEBUG,
} gs_log_level;

#define GS_PATH_MAX 4096

typedef struct gs_config {
  bool disable;            /* GACTSHIM_DISABLE=1: pure pass-through */
  unsigned bits;           /* GACTSHIM_BITS: 1..8 compress; 16 or 32 keep */
  bool bits_given;         /* GACTSHIM_BITS was set (else bits is the policy's default) */
  gs_policy_kind policy;   /* GACTSHIM_POLICY */
  uint64_t budget;         /* GACTSHIM_BUDGET: bytes (budget policy; 0 = unset) */
  char budget_text[32];    /* GACTSHIM_BUDGET as given, for messages */
  uint32_t adapt_every;    /* GACTSHIM_ADAPT_EVERY: iterations between sensitivity probes */
  gs_select_kind select;   /* GACTSHIM_SELECT */
  uint64_t min_bytes;      /* GACTSHIM_MIN_BYTES: smaller saved tensors are kept */
  uint32_t group;          /* GACTSHIM_GROUP: elements per quantization group */
  uint64_t seed;           /* GACTSHIM_SEED: stochastic-rounding seed */
  char stats_path[GS_PATH_MAX]; /* GACTSHIM_STATS: JSON written at exit; empty = none */
  gs_log_level log;        /* GACTSHIM_LOG */
  bool quiet;              /* GACTSHIM_QUIET=1: no summary line at exit */
  char trace_path[GS_PATH_MAX]; /* GACTSHIM_TRACE: event trace file (%p pid, %r rank); empty = none */
  uint64_t trace_max;      /* GACTSHIM_TRACE_MAX: bound on the trace file's size in bytes */
  bool cupti;              /* GACTSHIM_CUPTI=1: time our kernels with CUPTI when it can be loaded */
} gs_config;

/* Fills *out with the defaults. */
void gs__config_defaults(gs_config *out);

/* Parses every GACTSHIM_* entry of envp (a NULL-terminated "NAME=value" array) into *out, which
 * starts from the defaults. Returns 0, or -EINVAL with one line in err naming the variable, the
 * value and what is accepted. Pure: no I/O, no globals. */
int gs__config_parse(char *const *envp, gs_config *out, char *err, size_t errlen);

/* Parses a byte count ("12GiB", "512MB", "64K", "4096"): 0 or -EINVAL. */
int gs__parse_bytes(const char *v, uint64_t *out);

/* The process's configuration. Written once by the constructor before any hook can run, read-only
 * afterwards, so readers need no lock. */
extern gs_config gs__cfg;

#endif
