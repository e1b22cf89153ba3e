/* control_client.c: the control socket's location and its client (used by gactshim-report attach). */
#include "format.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* Tests point the server and client at a directory of their own. Set before any thread starts. */
static char gs__test_dir[256];

void gs__control_set_dir_for_tests(const char *dir) {
  snprintf(gs__test_dir, sizeof(gs__test_dir), "%s", dir ? dir : "");
}

int gs__control_dir(char *out, size_t len, bool mkdir_ok) {
  const char *x = getenv("XDG_RUNTIME_DIR");
  int n;
  if (gs__test_dir[0]) n = snprintf(out, len, "%s", gs__test_dir);
  else if (x && x[0] == '/') n = snprintf(out, len, "%s/gactshim", x);
  else n = snprintf(out, len, "/tmp/gactshim-%u", (unsigned)geteuid());
  if (n < 0 || (size_t)n >= len) return -ENAMETOOLONG;
  if (mkdir_ok && mkdir(out, 0700) != 0 && errno != EEXIST) return -errno;
  struct stat st;
  if (lstat(out, &st) != 0) return -errno;
  /* Refuse a directory someone else made (or a symlink to one): they could reach our sockets. */
  if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid()) return -EPERM;
  if (!gs__test_dir[0] && (st.st_mode & 077)) return -EPERM;
  return 0;
}

int gs__control_sock_path(long pid, struct sockaddr_un *sa, bool mkdir_ok) {
  char dir[sizeof(sa->sun_path)];
  int rc = gs__control_dir(dir, sizeof(dir) - 24, mkdir_ok);
  if (rc != 0) return rc;
  memset(sa, 0, sizeof(*sa));
  sa->sun_family = AF_UNIX;
  int n = snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/%ld.sock", dir, pid);
  return n > 0 && (size_t)n < sizeof(sa->sun_path) ? 0 : -ENAMETOOLONG;
}

/* Reads until EOF or the deadline into a growing buffer. */
static int gs__read_all(int fd, uint8_t **out, size_t *len, int timeout_ms) {
  size_t cap = 1 << 16, n = 0;
  uint8_t *b = malloc(cap);
  if (!b) return -ENOMEM;
  for (;;) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int pr = poll(&p, 1, timeout_ms);
    if (pr < 0 && errno == EINTR) continue;
    if (pr <= 0) {
      free(b);
      return pr == 0 ? -ETIMEDOUT : -errno;
    }
    if (n == cap) {
      uint8_t *q = realloc(b, cap * 2);
      if (!q) {
        free(b);
        return -ENOMEM;
      }
      b = q;
      cap *= 2;
    }
    ssize_t r = read(fd, b + n, cap - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      int e = -errno;
      free(b);
      return e;
    }
    if (r == 0) break;
    n += (size_t)r;
  }
  *out = b;
  *len = n;
  return 0;
}

static int gs__parse_reply(uint8_t *raw, size_t n, uint8_t **out, size_t *len, char *err,
                           size_t errlen) {
  uint8_t *nl = memchr(raw, '\n', n < 256 ? n : 256);
  if (!nl) {
    snprintf(err, errlen, "the job answered with no status line");
    return -EPROTO;
  }
  *nl = '\0';
  size_t body;
  if (strncmp((char *)raw, "GSCTL 1 ERR ", 12) == 0) {
    snprintf(err, errlen, "the job refused: %s", (char *)raw + 12);
    return -EACCES;
  }
  if (sscanf((char *)raw, "GSCTL 1 OK %zu", &body) != 1 || body != n - (size_t)(nl + 1 - raw)) {
    snprintf(err, errlen, "malformed or short reply ('%.60s')", (char *)raw);
    return -EPROTO;
  }
  memmove(raw, nl + 1, body);
  *out = raw;
  *len = body;
  return 0;
}

int gs__control_request(long pid, const char *req, uint8_t **out, size_t *len, char *err,
                        size_t errlen, int timeout_ms) {
  struct sockaddr_un sa;
  int rc = gs__control_sock_path(pid, &sa, false);
  if (rc != 0) {
    snprintf(err, errlen, "no gactshim control directory for this user (%s)", strerror(-rc));
    return rc;
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    rc = -errno;
    snprintf(err, errlen,
             "process %ld has no gactshim control socket (%s: %s); is it running with "
             "LD_PRELOAD=libgactshim.so as this user, and has it allocated GPU memory or "
             "packed a tensor yet?", pid, sa.sun_path, strerror(-rc));
    close(fd);
    return rc;
  }
  uint8_t *raw = NULL;
  size_t n = 0;
  rc = send(fd, req, strlen(req), MSG_NOSIGNAL) < 0 ? -errno : 0;
  if (rc == 0) rc = gs__read_all(fd, &raw, &n, timeout_ms);
  close(fd);
  if (rc != 0) {
    snprintf(err, errlen, "no answer from process %ld: %s", pid, strerror(-rc));
    return rc;
  }
  rc = gs__parse_reply(raw, n, out, len, err, errlen);
  if (rc != 0) free(raw);
  return rc;
}
