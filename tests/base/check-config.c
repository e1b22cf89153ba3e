/* check-config.c: unit tests of GACTSHIM_* parsing (shim/config.c): every variable, every class of
 * bad value, and the byte-count parser. */
#include "base.h"

#include <check.h>
#include "../check_run.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>

static gs_config cfg;
static char err[1024];

/* Parses a single "NAME=value" entry (plus an unrelated variable, which must be ignored). */
static int parse1(const char *entry) {
  char *env[] = {"PATH=/bin", (char *)entry, "GACTSHIMX=ignored", NULL};
  return gs__config_parse(env, &cfg, err, sizeof(err));
}

/* A rejected entry: -EINVAL and one line naming the variable and its value. */
static void assert_rejected(const char *entry) {
  ck_assert_msg(parse1(entry) == -EINVAL, "%s was accepted", entry);
  const char *eq = strchr(entry, '=');
  char name[64];
  size_t n = eq ? (size_t)(eq - entry) : strlen(entry);
  memcpy(name, entry, n);
  name[n] = '\0';
  ck_assert_msg(strstr(err, name) != NULL, "message for %s does not name it: %s", entry, err);
  ck_assert_msg(strchr(err, '\n') == NULL, "message is not one line: %s", err);
  if (eq && eq[1]) ck_assert_msg(strstr(err, eq + 1) != NULL, "message does not show the value: %s", err);
}

START_TEST(defaults_without_variables) {
  char *env[] = {"HOME=/root", NULL};
  ck_assert_int_eq(gs__config_parse(env, &cfg, err, sizeof(err)), 0);
  ck_assert(!cfg.disable);
  ck_assert_uint_eq(cfg.bits, 4);
  ck_assert_int_eq(cfg.policy, GS_CFG_POLICY_FIXED);
  ck_assert_uint_eq(cfg.min_bytes, 64 * 1024);
  ck_assert_uint_eq(cfg.group, 256);
  ck_assert_str_eq(cfg.stats_path, "");
  ck_assert_int_eq(cfg.log, GS_LOG_WARN);
  ck_assert(!cfg.quiet);
  ck_assert_int_eq(cfg.select, GS_CFG_SELECT_LIFETIME);
  ck_assert_uint_eq(cfg.adapt_every, 50);
  ck_assert_uint_eq(cfg.budget, 0);
}
END_TEST

START_TEST(booleans) {
  const char *yes[] = {"1", "true", "yes", "on"}, *no[] = {"0", "false", "no", "off"};
  char e[64];
  for (int i = 0; i < 4; i++) {
    snprintf(e, sizeof(e), "GACTSHIM_DISABLE=%s", yes[i]);
    ck_assert_int_eq(parse1(e), 0);
    ck_assert(cfg.disable);
    snprintf(e, sizeof(e), "GACTSHIM_QUIET=%s", yes[i]);
    ck_assert_int_eq(parse1(e), 0);
    ck_assert(cfg.quiet);
    snprintf(e, sizeof(e), "GACTSHIM_DISABLE=%s", no[i]);
    ck_assert_int_eq(parse1(e), 0);
    ck_assert(!cfg.disable);
  }
  assert_rejected("GACTSHIM_DISABLE=2");
  assert_rejected("GACTSHIM_DISABLE=");
  assert_rejected("GACTSHIM_QUIET=maybe");
}
END_TEST

START_TEST(bits) {
  const unsigned good[] = {1, 2, 3, 4, 5, 6, 7, 8, 16, 32};
  char e[64];
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
    snprintf(e, sizeof(e), "GACTSHIM_BITS=%u", good[i]);
    ck_assert_int_eq(parse1(e), 0);
    ck_assert_uint_eq(cfg.bits, good[i]);
  }
  assert_rejected("GACTSHIM_BITS=0");
  assert_rejected("GACTSHIM_BITS=9");
  assert_rejected("GACTSHIM_BITS=3x");         /* non-numeric tail */
  assert_rejected("GACTSHIM_BITS=four");       /* non-numeric */
  assert_rejected("GACTSHIM_BITS=-4");         /* sign */
  assert_rejected("GACTSHIM_BITS= 4");         /* space */
  assert_rejected("GACTSHIM_BITS=18446744073709551620"); /* overflow */
  assert_rejected("GACTSHIM_BITS=");           /* empty */
  assert_rejected("GACTSHIM_BITS");            /* no '=' at all */
}
END_TEST

START_TEST(policy_log_stats) {
  ck_assert_int_eq(parse1("GACTSHIM_POLICY=fixed"), 0);
  ck_assert_int_eq(cfg.policy, GS_CFG_POLICY_FIXED);
  ck_assert_int_eq(parse1("GACTSHIM_POLICY=off"), 0);
  ck_assert_int_eq(cfg.policy, GS_CFG_POLICY_OFF);
  assert_rejected("GACTSHIM_POLICY=nonsense");
  assert_rejected("GACTSHIM_POLICY=");
  const char *levels[] = {"error", "warn", "info", "debug"};
  char e[64];
  for (int i = 0; i < 4; i++) {
    snprintf(e, sizeof(e), "GACTSHIM_LOG=%s", levels[i]);
    ck_assert_int_eq(parse1(e), 0);
    ck_assert_int_eq(cfg.log, i);
  }
  assert_rejected("GACTSHIM_LOG=verbose");
  assert_rejected("GACTSHIM_LOG=");
  ck_assert_int_eq(parse1("GACTSHIM_STATS=/tmp/s-%p.json"), 0);
  ck_assert_str_eq(cfg.stats_path, "/tmp/s-%p.json");
  assert_rejected("GACTSHIM_STATS=");
  static char long_path[GS_PATH_MAX + 32];
  strcpy(long_path, "GACTSHIM_STATS=");
  memset(long_path + strlen(long_path), 'a', GS_PATH_MAX);
  ck_assert_int_eq(parse1(long_path), -EINVAL);
}
END_TEST

START_TEST(sizes_group_seed) {
  ck_assert_int_eq(parse1("GACTSHIM_MIN_BYTES=1MiB"), 0);
  ck_assert_uint_eq(cfg.min_bytes, 1 << 20);
  ck_assert_int_eq(parse1("GACTSHIM_MIN_BYTES=0"), 0);
  ck_assert_uint_eq(cfg.min_bytes, 0);
  assert_rejected("GACTSHIM_MIN_BYTES=12X");
  assert_rejected("GACTSHIM_MIN_BYTES=-1");
  assert_rejected("GACTSHIM_MIN_BYTES=99999999999999999999");
  assert_rejected("GACTSHIM_MIN_BYTES=");
  const unsigned good[] = {32, 64, 256, 65536};
  char e[64];
  for (int i = 0; i < 4; i++) {
    snprintf(e, sizeof(e), "GACTSHIM_GROUP=%u", good[i]);
    ck_assert_int_eq(parse1(e), 0);
    ck_assert_uint_eq(cfg.group, good[i]);
  }
  assert_rejected("GACTSHIM_GROUP=0");
  assert_rejected("GACTSHIM_GROUP=31");
  assert_rejected("GACTSHIM_GROUP=48");     /* not a multiple of 32 */
  assert_rejected("GACTSHIM_GROUP=65568");  /* out of range */
  assert_rejected("GACTSHIM_GROUP=abc");
  assert_rejected("GACTSHIM_GROUP=");
  ck_assert_int_eq(parse1("GACTSHIM_SEED=0"), 0);
  ck_assert_uint_eq(cfg.seed, 0);
  ck_assert_int_eq(parse1("GACTSHIM_SEED=18446744073709551615"), 0);
  ck_assert_uint_eq(cfg.seed, UINT64_MAX);
  assert_rejected("GACTSHIM_SEED=18446744073709551616"); /* overflow by one */
  assert_rejected("GACTSHIM_SEED=-1");
  assert_rejected("GACTSHIM_SEED=0x10");
  assert_rejected("GACTSHIM_SEED=");
}
END_TEST

/* Parses two entries together (for the rules between variables). */
static int parse2(const char *a, const char *b) {
  char *env[] = {(char *)a, (char *)b, NULL};
  return gs__config_parse(env, &cfg, err, sizeof(err));
}

START_TEST(policies_budget_select) {
  ck_assert_int_eq(parse1("GACTSHIM_POLICY=adaptive"), 0);
  ck_assert_int_eq(cfg.policy, GS_CFG_POLICY_ADAPTIVE);
  ck_assert_uint_eq(cfg.bits, 2);              /* the adaptive default average */
  ck_assert_int_eq(parse2("GACTSHIM_POLICY=adaptive", "GACTSHIM_BITS=3"), 0);
  ck_assert_uint_eq(cfg.bits, 3);              /* an explicit average wins, in either order */
  ck_assert_int_eq(parse2("GACTSHIM_BITS=3", "GACTSHIM_POLICY=adaptive"), 0);
  ck_assert_uint_eq(cfg.bits, 3);
  ck_assert_int_eq(parse2("GACTSHIM_POLICY=budget", "GACTSHIM_BUDGET=12GiB"), 0);
  ck_assert_int_eq(cfg.policy, GS_CFG_POLICY_BUDGET);
  ck_assert_uint_eq(cfg.budget, 12ull << 30);
  ck_assert_uint_eq(cfg.bits, 4);              /* budget keeps the fixed default width */
  ck_assert_int_eq(parse2("GACTSHIM_BUDGET=1MiB", "GACTSHIM_POLICY=budget"), 0);
  ck_assert_uint_eq(cfg.budget, 1 << 20);
  /* Bad values and bad combinations. */
  assert_rejected("GACTSHIM_POLICY=budget");   /* needs GACTSHIM_BUDGET */
  ck_assert_ptr_nonnull(strstr(err, "GACTSHIM_BUDGET"));
  assert_rejected("GACTSHIM_BUDGET=8GiB");     /* without the budget policy */
  ck_assert_ptr_nonnull(strstr(err, "GACTSHIM_POLICY=budget"));
  ck_assert_int_eq(parse2("GACTSHIM_POLICY=fixed", "GACTSHIM_BUDGET=8GiB"), -EINVAL);
  ck_assert_int_eq(parse2("GACTSHIM_POLICY=budget", "GACTSHIM_BUDGET=1000"), -EINVAL); /* < 1 MiB */
  ck_assert_ptr_nonnull(strstr(err, "GACTSHIM_BUDGET='1000'"));
  ck_assert_int_eq(parse2("GACTSHIM_POLICY=budget", "GACTSHIM_BUDGET=12QB"), -EINVAL);
  ck_assert_int_eq(parse2("GACTSHIM_POLICY=budget", "GACTSHIM_BUDGET="), -EINVAL);
  assert_rejected("GACTSHIM_POLICY=Adaptive"); /* case-sensitive */
  /* ADAPT_EVERY */
  ck_assert_uint_eq(cfg.adapt_every, 50);
  ck_assert_int_eq(parse1("GACTSHIM_ADAPT_EVERY=1"), 0);
  ck_assert_uint_eq(cfg.adapt_every, 1);
  ck_assert_int_eq(parse1("GACTSHIM_ADAPT_EVERY=1000000"), 0);
  ck_assert_uint_eq(cfg.adapt_every, 1000000);
  assert_rejected("GACTSHIM_ADAPT_EVERY=0");
  assert_rejected("GACTSHIM_ADAPT_EVERY=1000001");
  assert_rejected("GACTSHIM_ADAPT_EVERY=ten");
  assert_rejected("GACTSHIM_ADAPT_EVERY=-5");
  assert_rejected("GACTSHIM_ADAPT_EVERY=");
  /* SELECT */
  ck_assert_int_eq(parse1("GACTSHIM_SELECT=all"), 0);
  ck_assert_int_eq(cfg.select, GS_CFG_SELECT_ALL);
  ck_assert_int_eq(parse1("GACTSHIM_SELECT=lifetime"), 0);
  ck_assert_int_eq(cfg.select, GS_CFG_SELECT_LIFETIME);
  assert_rejected("GACTSHIM_SELECT=peak");
  assert_rejected("GACTSHIM_SELECT=");
  ck_assert_ptr_nonnull(strstr(err, "lifetime"));
}
END_TEST

START_TEST(unknown_name) {
  ck_assert_int_eq(parse1("GACTSHIM_NOPE=1"), -EINVAL);
  ck_assert_ptr_nonnull(strstr(err, "GACTSHIM_NOPE"));
  ck_assert_ptr_nonnull(strstr(err, "GACTSHIM_BITS")); /* lists what is known */
  ck_assert_int_eq(parse1("GACTSHIM_=1"), -EINVAL);
  ck_assert_int_eq(parse1("GACTSHIM_bits=4"), -EINVAL); /* names are case-sensitive */
  /* The first bad entry stops parsing; a later good one does not hide it. */
  char *env[] = {"GACTSHIM_BITS=2", "GACTSHIM_NOPE=", "GACTSHIM_BITS=8", NULL};
  ck_assert_int_eq(gs__config_parse(env, &cfg, err, sizeof(err)), -EINVAL);
}
END_TEST

START_TEST(byte_parser) {
  static const struct { const char *in; uint64_t want; } ok[] = {
    {"0", 0}, {"4096", 4096}, {"64K", 65536}, {"64k", 65536}, {"64KB", 65536}, {"64KiB", 65536},
    {"512MB", 512ull << 20}, {"1M", 1 << 20}, {"12GiB", 12ull << 30}, {"12G", 12ull << 30},
    {"2T", 2ull << 40}, {"7B", 7}, {"18446744073709551615", UINT64_MAX}, {"16777215T", 16777215ull << 40},
  };
  for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
    uint64_t v = 1;
    ck_assert_msg(gs__parse_bytes(ok[i].in, &v) == 0, "%s rejected", ok[i].in);
    ck_assert_msg(v == ok[i].want, "%s -> %llu", ok[i].in, (unsigned long long)v);
  }
  static const char *const bad[] = {
    "", "K", "GiB", "1.5G", "1 G", " 1", "1KiBB", "1iB", "1Bi", "1X", "-1", "+1", "0x10",
    "18446744073709551616", "16777216T", "99999999999999999999999999999999999",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    uint64_t v = 0;
    ck_assert_msg(gs__parse_bytes(bad[i], &v) == -EINVAL, "'%s' accepted", bad[i]);
  }
}
END_TEST

/* gs__now_ns follows CLOCK_MONOTONIC past calibration and re-anchors (clock.c): never backwards on
 * a thread, and within 100 µs of clock_gettime read right around it. */
static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

START_TEST(clock_follows_monotonic) {
  uint64_t prev = gs__now_ns(), end = mono_ns() + 20000000u, worst = 0;
  while (mono_ns() < end) { /* 20 ms: the 2 ms calibration and ~20 re-anchors */
    uint64_t a = mono_ns(), t = gs__now_ns(), b = mono_ns();
    ck_assert_uint_ge(t, prev);
    uint64_t off = t < a ? a - t : t > b ? t - b : 0;
    worst = off > worst ? off : worst;
    prev = t;
  }
  ck_assert_msg(worst < 100000u, "gs__now_ns strayed %llu ns from CLOCK_MONOTONIC",
                (unsigned long long)worst);
}
END_TEST

int main(void) {
  Suite *s = suite_create("config");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, defaults_without_variables);
  tcase_add_test(tc, booleans);
  tcase_add_test(tc, bits);
  tcase_add_test(tc, policy_log_stats);
  tcase_add_test(tc, sizes_group_seed);
  tcase_add_test(tc, policies_budget_select);
  tcase_add_test(tc, unknown_name);
  tcase_add_test(tc, byte_parser);
  tcase_add_test(tc, clock_follows_monotonic);
  suite_add_tcase(s, tc);
  return gs_check_run(s);
}
