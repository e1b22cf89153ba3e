/* control_proto.c: the control socket's request parser, pure so that it can be fuzzed on its own. */
#include "format.h"

#include <errno.h>
#include <string.h>

static bool gs__line_is(const char *line, size_t n, const char *want) {
  return n == strlen(want) && memcmp(line, want, n) == 0;
}

int gs__control_parse(const char *line, size_t n) {
  if (n >= GS_CONTROL_REQ_MAX) return -E2BIG; /* its newline would make it longer than allowed */
  if (gs__line_is(line, n, "GSCTL 1 PING")) return GS_CTL_PING;
  if (gs__line_is(line, n, "GSCTL 1 SNAPSHOT")) return GS_CTL_SNAPSHOT;
  if (n >= 8 && memcmp(line, "GSCTL ", 6) == 0 && memcmp(line, "GSCTL 1 ", 8) != 0)
    return -EPROTONOSUPPORT;
  return -EBADMSG;
}
