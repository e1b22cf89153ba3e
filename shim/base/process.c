/* process.c: facts about the process every room asks for — active, its rank, its paths, writes. */
#include "base.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Set once at the end of the constructor; read by every hook to decide whether to act. Global
 * because the hooks of every room, in every thread, ask it. */
static bool gs__is_active;

bool gs__active(void) { return __atomic_load_n(&gs__is_active, __ATOMIC_ACQUIRE); }

void gs__set_active(bool on) { __atomic_store_n(&gs__is_active, on, __ATOMIC_RELEASE); }

const char *gs__rank_env(void) {
  const char *r = getenv("RANK");
  if (!r || !*r) r = getenv("LOCAL_RANK");
  return (r && *r) ? r : NULL;
}

int gs__expand_path(const char *tmpl, char *out, size_t len) {
  size_t o = 0;
  for (const char *p = tmpl; *p; p++) {
    char piece[32];
    const char *add = piece;
    if (p[0] == '%' && p[1] == 'p') {
      snprintf(piece, sizeof(piece), "%ld", (long)getpid());
      p++;
    } else if (p[0] == '%' && p[1] == 'r') {
      add = gs__rank_env();
      if (add == NULL) add = "0";
      p++;
    } else {
      piece[0] = *p;
      piece[1] = '\0';
    }
    size_t n = strlen(add);
    if (o + n + 1 > len) return -ENAMETOOLONG;
    memcpy(out + o, add, n);
    o += n;
  }
  out[o] = '\0';
  return 0;
}

int gs__write_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len > 0) {
    ssize_t w = write(fd, p, len);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return w < 0 ? -errno : -EIO; /* 0: no progress would loop forever */
    p += w;
    len -= (size_t)w;
  }
  return 0;
}
