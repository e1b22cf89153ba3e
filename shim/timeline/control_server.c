/* control_server.c: the control socket — a private Unix socket per process serving live snapshots. */
#include "timeline.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* Protocol (version 1, docs/trace-format.md): the client sends one line of at most 128 bytes,
 * "GSCTL 1 SNAPSHOT\n" or "GSCTL 1 PING\n", within 1 s of connecting. The server answers one line
 * "GSCTL 1 OK <n>\n" followed by n bytes (a trace in the file format), or "GSCTL 1 ERR <why>\n",
 * then closes. */

/* The writer thread reads the request itself, so a silent client may hold it this long; the
 * hooks never wait for it (the ring absorbs events meanwhile). */
#define GS_CONTROL_READ_MS 200
#define GS_CONTROL_SEND_S 5

/* The pid whose socket file we created, so that a forked child never unlinks its parent's. */
static pid_t gs__owner;

/* Binds and listens under a temporary name, then renames it into place: a client that sees
 * <pid>.sock can connect at once. No umask change (umask is process-wide and would race with the
 * job's own file creation); the directory is 0700, so the socket is private before its chmod. */
int gs__control_listen(void) {
  struct sockaddr_un sa, tmp;
  int rc = gs__control_sock_path((long)getpid(), &sa, true);
  if (rc != 0) return rc;
  tmp = sa;
  char *slash = strrchr(tmp.sun_path, '/');
  if (slash == NULL ||
      snprintf(slash + 1, sizeof(tmp.sun_path) - (size_t)(slash + 1 - tmp.sun_path), ".%ld.new",
               (long)getpid()) >= (int)(sizeof(tmp.sun_path) - (size_t)(slash + 1 - tmp.sun_path)))
    return -ENAMETOOLONG;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -errno;
  unlink(tmp.sun_path); /* left by an earlier process with our pid */
  rc = bind(fd, (struct sockaddr *)&tmp, sizeof(tmp));
  if (rc == 0) rc = chmod(tmp.sun_path, 0600);
  if (rc == 0) rc = listen(fd, 4);
  if (rc == 0) rc = rename(tmp.sun_path, sa.sun_path); /* replaces a stale socket atomically */
  if (rc != 0) {
    rc = -errno;
    unlink(tmp.sun_path);
    close(fd);
    return rc;
  }
  gs__owner = getpid();
  return fd;
}

void gs__control_close(int fd) {
  struct sockaddr_un sa;
  if (fd >= 0) close(fd);
  if (gs__owner == getpid() && gs__control_sock_path((long)getpid(), &sa, false) == 0) unlink(sa.sun_path);
}

/* Reads one request line within GS_CONTROL_READ_MS, without its newline. Its length, or negative
 * errno (-E2BIG: no newline in the first cap - 1 bytes). */
static int gs__read_line(int fd, char *buf, size_t cap, int timeout_ms) {
  size_t n = 0;
  uint64_t deadline = gs__now_ns() + (uint64_t)timeout_ms * 1000000u;
  while (n + 1 < cap) {
    uint64_t now = gs__now_ns();
    if (now >= deadline) return -ETIMEDOUT;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int pr = poll(&p, 1, (int)((deadline - now) / 1000000u) + 1);
    if (pr < 0 && errno == EINTR) continue;
    if (pr <= 0) return pr == 0 ? -ETIMEDOUT : -errno;
    ssize_t r = recv(fd, buf + n, 1, MSG_DONTWAIT);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (r <= 0) return r == 0 ? -ECONNRESET : -errno;
    if (buf[n] == '\n') {
      buf[n] = '\0';
      return (int)n;
    }
    n++;
  }
  return -E2BIG;
}

typedef struct gs__reply {
  int fd;
  char head[96];
  uint8_t *body;
  size_t body_n;
} gs__reply;

static int gs__send_all(int fd, const void *p, size_t n) {
  const uint8_t *b = p;
  while (n) {
    ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -errno;
    b += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Detached: a slow or stuck client holds only this thread, for at most the send timeout. */
static void *gs__sender(void *arg) {
  gs__reply *r = arg;
  if (gs__send_all(r->fd, r->head, strlen(r->head)) == 0 && r->body_n)
    gs__send_all(r->fd, r->body, r->body_n);
  close(r->fd);
  free(r->body);
  free(r);
  return NULL;
}

static int gs__reply_async(gs__reply *r) {
  int fl = fcntl(r->fd, F_GETFL);
  fcntl(r->fd, F_SETFL, fl & ~O_NONBLOCK);
  struct timeval tv = {GS_CONTROL_SEND_S, 0};
  setsockopt(r->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (gs__thread_create_detached(gs__sender, r) != 0)
    gs__sender(r); /* sends with the timeout on this thread instead */
  return 0;
}

/* Decides the answer to one request line from a checked peer. */
static void gs__answer(const char *req, size_t n, gs__reply *r) {
  int rc, kind = gs__control_parse(req, n);
  if (kind == GS_CTL_PING) {
    snprintf(r->head, sizeof(r->head), "GSCTL 1 OK 0\n");
  } else if (kind == GS_CTL_SNAPSHOT) {
    rc = gs__trace_snapshot(&r->body, &r->body_n);
    if (rc == 0) snprintf(r->head, sizeof(r->head), "GSCTL 1 OK %zu\n", r->body_n);
    else snprintf(r->head, sizeof(r->head), "GSCTL 1 ERR snapshot failed: %s\n", strerror(-rc));
  } else if (kind == -EPROTONOSUPPORT) {
    snprintf(r->head, sizeof(r->head), "GSCTL 1 ERR protocol version %d not supported\n",
             GS_CONTROL_VERSION);
  } else {
    snprintf(r->head, sizeof(r->head), "GSCTL 1 ERR unknown request\n");
  }
}

int gs__control_serve(int listen_fd) {
  int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
  gs__reply *r = calloc(1, sizeof(*r));
  if (!r) {
    close(fd);
    return -ENOMEM;
  }
  r->fd = fd;
  struct ucred cred;
  socklen_t cl = sizeof(cred);
  char req[GS_CONTROL_REQ_MAX + 1]; /* the line and its newline (replaced by a NUL) */
  int n;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) != 0 || cred.uid != geteuid()) {
    snprintf(r->head, sizeof(r->head), "GSCTL 1 ERR permission denied: not the job's user\n");
  } else if ((n = gs__read_line(fd, req, sizeof(req), GS_CONTROL_READ_MS)) == -E2BIG) {
    snprintf(r->head, sizeof(r->head), "GSCTL 1 ERR request longer than %d bytes\n",
             GS_CONTROL_REQ_MAX);
  } else if (n < 0) {
    snprintf(r->head, sizeof(r->head), "GSCTL 1 ERR no request line within %d ms\n",
             GS_CONTROL_READ_MS);
  } else {
    gs__answer(req, (size_t)n, r);
  }
  gs__reply_async(r);
  return 1;
}
