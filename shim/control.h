/* control.h: the per-process control socket that `gactshim-report attach PID` talks to. */
#ifndef GS_CONTROL_H
#define GS_CONTROL_H

#include "common.h"

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

/* Creates <dir>/<pid>.sock (0600) and listens. Returns the listening fd or negative errno. */
int gs__control_listen(void);

/* Accepts and serves at most one pending client on listen_fd without blocking the caller for
 * long: the request is read with a short timeout, the peer's uid is checked with SO_PEERCRED,
 * the reply is built (snapshot) and sent from a detached thread with a send timeout.
 * Returns 1 if a client was handled, 0 if none was waiting, negative errno on error. */
int gs__control_serve(int listen_fd);

/* Closes the socket and removes its file (only in the process that created it). */
void gs__control_close(int listen_fd);

/* Client side (the report tool): sends `req` to pid's socket and reads the whole reply into *out
 * (malloc'd) — the payload after the status line. err gets a sentence on failure.
 * 0 or negative errno. */
int gs__control_request(long pid, const char *req, uint8_t **out, size_t *len, char *err,
                        size_t errlen, int timeout_ms);

/* Lets tests serve clients of other users by relaxing the directory mode check. */
void gs__control_set_dir_for_tests(const char *dir);

#endif
