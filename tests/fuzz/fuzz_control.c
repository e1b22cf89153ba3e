/* fuzz_control.c: libFuzzer target for the control socket's request parser (gs__control_parse). */
#include "format.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  int kind = gs__control_parse((const char *)data, size);
  /* Only the two exact lines are requests; everything else is refused with a reason. */
  if (kind == GS_CTL_PING && !(size == 12 && memcmp(data, "GSCTL 1 PING", 12) == 0)) abort();
  if (kind == GS_CTL_SNAPSHOT && !(size == 16 && memcmp(data, "GSCTL 1 SNAPSHOT", 16) == 0)) abort();
  if (kind < 0 && kind != -EPROTONOSUPPORT && kind != -EBADMSG && kind != -E2BIG) abort();
  return 0;
}
