/* config.c: parse and validate the GACTSHIM_* environment variables (table-driven, pure). */
#include "base.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Written once by the constructor before any hook runs; read-only afterwards. */
gs_config gs__cfg;

typedef int (*gs__setter)(gs_config *c, const char *value);

typedef struct gs__var {
  const char *name;      /* without the GACTSHIM_ prefix */
  gs__setter set;
  const char *accepted;  /* shown in the error line */
} gs__var;

void gs__config_defaults(gs_config *out) {
  memset(out, 0, sizeof(*out));
  out->bits = GS_CONFIG_BITS_DEFAULT;
  out->policy = GS_CFG_POLICY_FIXED;
  out->adapt_every = 50;
  out->select = GS_CFG_SELECT_LIFETIME; /* same peak, less codec work (docs/policies.md) */
  out->min_bytes = 64 * 1024;
  out->group = 256;
  out->seed = 0x9e3779b97f4a7c15ull;
  out->log = GS_LOG_WARN;
  out->trace_max = GS_TRACE_MAX_DEFAULT;
  out->attribution = true;
}

static int gs__parse_bool(const char *v, bool *out) {
  if (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "on") == 0) {
    *out = true;
    return 0;
  }
  if (strcmp(v, "0") == 0 || strcmp(v, "false") == 0 || strcmp(v, "no") == 0 || strcmp(v, "off") == 0) {
    *out = false;
    return 0;
  }
  return -EINVAL;
}

/* A decimal unsigned integer with no sign, no spaces and no overflow. */
static int gs__parse_u64(const char *v, uint64_t *out) {
  if (*v < '0' || *v > '9') return -EINVAL;
  uint64_t x = 0;
  for (; *v; v++) {
    if (*v < '0' || *v > '9') return -EINVAL;
    unsigned d = (unsigned)(*v - '0');
    if (x > (UINT64_MAX - d) / 10) return -EINVAL;
    x = x * 10 + d;
  }
  *out = x;
  return 0;
}

/* A byte count: an integer with an optional K, M, G or T suffix (powers of 1024), optionally
 * followed by "B" or "iB" ("12GiB", "12G", "512MB", "4096"). */
int gs__parse_bytes(const char *v, uint64_t *out) {
  char num[32];
  size_t i = 0;
  while (v[i] >= '0' && v[i] <= '9') {
    if (i + 1 >= sizeof(num)) return -EINVAL;
    num[i] = v[i];
    i++;
  }
  num[i] = '\0';
  uint64_t x;
  if (i == 0 || gs__parse_u64(num, &x) != 0) return -EINVAL;
  const char *s = v + i;
  unsigned shift = 0;
  switch (*s) {
    case 'K': case 'k': shift = 10; s++; break;
    case 'M': case 'm': shift = 20; s++; break;
    case 'G': case 'g': shift = 30; s++; break;
    case 'T': case 't': shift = 40; s++; break;
    default: break;
  }
  if (shift && strcmp(s, "iB") == 0) s += 2;
  else if (strcmp(s, "B") == 0) s += 1;
  if (*s != '\0') return -EINVAL;
  if (shift && x > (UINT64_MAX >> shift)) return -EINVAL;
  *out = x << shift;
  return 0;
}

static int gs__set_disable(gs_config *c, const char *v) { return gs__parse_bool(v, &c->disable); }
static int gs__set_quiet(gs_config *c, const char *v) { return gs__parse_bool(v, &c->quiet); }

static int gs__set_bits(gs_config *c, const char *v) {
  uint64_t b;
  if (gs__parse_u64(v, &b) != 0) return -EINVAL;
  if (!((b >= 1 && b <= 8) || b == 16 || b == 32)) return -EINVAL;
  c->bits = (unsigned)b;
  c->bits_given = true;
  return 0;
}

static int gs__set_policy(gs_config *c, const char *v) {
  if (strcmp(v, "fixed") == 0) c->policy = GS_CFG_POLICY_FIXED;
  else if (strcmp(v, "off") == 0) c->policy = GS_CFG_POLICY_OFF;
  else if (strcmp(v, "adaptive") == 0) c->policy = GS_CFG_POLICY_ADAPTIVE;
  else if (strcmp(v, "budget") == 0) c->policy = GS_CFG_POLICY_BUDGET;
  else return -EINVAL;
  return 0;
}

/* A budget under 1 MiB is surely a unit mistake ("12G" typed as "12"). */
static int gs__set_budget(gs_config *c, const char *v) {
  uint64_t b;
  if (gs__parse_bytes(v, &b) != 0 || b < (1ull << 20)) return -EINVAL;
  c->budget = b;
  snprintf(c->budget_text, sizeof(c->budget_text), "%s", v);
  return 0;
}

static int gs__set_adapt_every(gs_config *c, const char *v) {
  uint64_t n;
  if (gs__parse_u64(v, &n) != 0 || n < 1 || n > 1000000) return -EINVAL;
  c->adapt_every = (uint32_t)n;
  return 0;
}

static int gs__set_select(gs_config *c, const char *v) {
  if (strcmp(v, "all") == 0) c->select = GS_CFG_SELECT_ALL;
  else if (strcmp(v, "lifetime") == 0) c->select = GS_CFG_SELECT_LIFETIME;
  else return -EINVAL;
  return 0;
}

static int gs__set_min_bytes(gs_config *c, const char *v) { return gs__parse_bytes(v, &c->min_bytes); }

static int gs__set_group(gs_config *c, const char *v) {
  uint64_t g;
  if (gs__parse_u64(v, &g) != 0 || g < 32 || g > 65536 || g % 32 != 0) return -EINVAL;
  c->group = (uint32_t)g;
  return 0;
}

static int gs__set_seed(gs_config *c, const char *v) { return gs__parse_u64(v, &c->seed); }

static int gs__set_path(char *dst, const char *v) {
  size_t n = strlen(v);
  if (n == 0 || n >= GS_PATH_MAX) return -EINVAL;
  memcpy(dst, v, n + 1);
  return 0;
}

static int gs__set_stats(gs_config *c, const char *v) { return gs__set_path(c->stats_path, v); }

static int gs__set_trace(gs_config *c, const char *v) { return gs__set_path(c->trace_path, v); }
static int gs__set_cupti(gs_config *c, const char *v) { return gs__parse_bool(v, &c->cupti); }
static int gs__set_attribution(gs_config *c, const char *v) { return gs__parse_bool(v, &c->attribution); }

/* Below 1 MiB the file could not hold its summary records for long; above 1 TiB is surely a typo. */
static int gs__set_trace_max(gs_config *c, const char *v) {
  uint64_t b;
  if (gs__parse_bytes(v, &b) != 0 || b < (1ull << 20) || b > (1ull << 40)) return -EINVAL;
  c->trace_max = b;
  return 0;
}

static int gs__set_log(gs_config *c, const char *v) {
  static const char *const names[] = {"error", "warn", "info", "debug"};
  for (size_t i = 0; i < GS_ARRAY_LEN(names); i++) {
    if (strcmp(v, names[i]) == 0) {
      c->log = (gs_log_level)i;
      return 0;
    }
  }
  return -EINVAL;
}

static const gs__var gs__vars[] = {
  {"DISABLE", gs__set_disable, "1/0 (true/false, yes/no, on/off)"},
  {"BITS", gs__set_bits, "1, 2, 3, 4, 5, 6, 7, 8, or 16/32 to keep tensors uncompressed"},
  {"POLICY", gs__set_policy, "fixed, adaptive, budget (needs GACTSHIM_BUDGET) or off"},
  {"BUDGET", gs__set_budget, "a byte count of at least 1MiB such as 12GiB or 512MB (with GACTSHIM_POLICY=budget)"},
  {"ADAPT_EVERY", gs__set_adapt_every, "an integer from 1 to 1000000 (iterations between sensitivity probes; default 50)"},
  {"SELECT", gs__set_select, "lifetime (only tensors alive at the memory peak) or all"},
  {"MIN_BYTES", gs__set_min_bytes, "a byte count such as 65536, 64KiB or 1MB"},
  {"GROUP", gs__set_group, "a multiple of 32 from 32 to 65536"},
  {"SEED", gs__set_seed, "a decimal integer from 0 to 18446744073709551615"},
  {"STATS", gs__set_stats, "a file path (at most 4095 bytes)"},
  {"LOG", gs__set_log, "error, warn, info or debug"},
  {"QUIET", gs__set_quiet, "1/0 (true/false, yes/no, on/off)"},
  {"TRACE", gs__set_trace, "a file path (at most 4095 bytes); %p is replaced by the pid, %r by the rank"},
  {"TRACE_MAX", gs__set_trace_max, "a byte count from 1MiB to 1TiB such as 256MiB or 2GB (default 256MiB)"},
  {"CUPTI", gs__set_cupti, "1/0 (true/false, yes/no, on/off); default 0"},
  {"ATTRIBUTION", gs__set_attribution, "1/0 (true/false, yes/no, on/off); default 1"},
};

static void gs__list_names(char *buf, size_t len) {
  size_t off = 0;
  for (size_t i = 0; i < GS_ARRAY_LEN(gs__vars) && off < len; i++) {
    int w = snprintf(buf + off, len - off, "%sGACTSHIM_%s", i ? ", " : "", gs__vars[i].name);
    if (w < 0) break;
    off += (size_t)w;
  }
}

static int gs__config_apply(gs_config *c, const char *entry, char *err, size_t errlen) {
  const char *name = entry + strlen("GACTSHIM_");
  const char *eq = strchr(name, '=');
  size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
  const char *value = eq ? eq + 1 : "";
  for (size_t i = 0; i < GS_ARRAY_LEN(gs__vars); i++) {
    const gs__var *var = &gs__vars[i];
    if (strlen(var->name) != name_len || strncmp(var->name, name, name_len) != 0) continue;
    if (var->set(c, value) == 0) return 0;
    snprintf(err, errlen, "gactshim: GACTSHIM_%s='%s' is not valid; accepted: %s", var->name, value,
             var->accepted);
    return -EINVAL;
  }
  char names[512];
  gs__list_names(names, sizeof(names));
  snprintf(err, errlen, "gactshim: unknown variable GACTSHIM_%.*s (value '%s'); known: %s",
           (int)name_len, name, value, names);
  return -EINVAL;
}

/* Rules between variables, checked once all are read so that their order does not matter. */
static int gs__config_finish(gs_config *c, char *err, size_t errlen) {
  if (c->policy == GS_CFG_POLICY_BUDGET && c->budget == 0) {
    snprintf(err, errlen, "gactshim: GACTSHIM_POLICY='budget' needs GACTSHIM_BUDGET; accepted: a "
             "byte count of at least 1MiB such as 12GiB");
    return -EINVAL;
  }
  if (c->policy != GS_CFG_POLICY_BUDGET && c->budget != 0) {
    snprintf(err, errlen, "gactshim: GACTSHIM_BUDGET='%s' is used only by the budget policy; "
             "accepted: set GACTSHIM_POLICY=budget too, or unset GACTSHIM_BUDGET", c->budget_text);
    return -EINVAL;
  }
  if (c->policy == GS_CFG_POLICY_ADAPTIVE && !c->bits_given) c->bits = GS_CONFIG_ADAPTIVE_BITS_DEFAULT;
  return 0;
}

int gs__config_parse(char *const *envp, gs_config *out, char *err, size_t errlen) {
  gs__config_defaults(out);
  if (errlen) err[0] = '\0';
  for (; envp && *envp; envp++) {
    if (strncmp(*envp, "GACTSHIM_", 9) != 0) continue;
    int rc = gs__config_apply(out, *envp, err, errlen);
    if (rc != 0) return rc;
  }
  return gs__config_finish(out, err, errlen);
}
