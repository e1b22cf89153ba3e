/* exitflush.c: write stats and trace on the exits that skip destructors (SIGTERM, Python's SIGINT). */
#include "init.h"

#include "interpose.h"
#include "thread.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

/* SIGTERM's default action ends the process without atexit or destructors, so a job stopped by a
 * scheduler would lose its stats and the end of its trace. The handler itself only wakes a thread
 * of ours (the signal may have interrupted malloc, whose lock the flush needs: flushing inside the
 * handler deadlocked); that thread flushes and then ends the process with SIGTERM's default
 * action, so the exit status is unchanged. If flushing hangs, SIGALRM's default action ends the
 * process after this long; a second SIGTERM ends it at once. */
#define GS_SIGTERM_FLUSH_S 10

/* Process-wide by nature, as signal dispositions are: armed once; the pipe the handler writes to
 * and the pid that armed it (a forked child has no flushing thread: it dies at once). */
static int gs__term_armed, gs__term_requested;
static int gs__term_pipe[2] = {-1, -1};
static pid_t gs__term_pid;

/* Takes SIGTERM's default action now: the process ends as it would have without the shim. */
static void gs__die_by(int sig) {
  struct sigaction dfl = {.sa_handler = SIG_DFL};
  sigemptyset(&dfl.sa_mask);
  sigaction(sig, &dfl, NULL);
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, sig);
  pthread_sigmask(SIG_UNBLOCK, &s, NULL);
  raise(sig);
}

static void gs__on_sigterm(int sig) {
  int saved = errno;
  char one = 1;
  if (getpid() != gs__term_pid || __atomic_exchange_n(&gs__term_requested, 1, __ATOMIC_ACQ_REL) ||
      write(gs__term_pipe[1], &one, 1) != 1)
    gs__die_by(sig);
  errno = saved;
}

static void *gs__terminator(void *arg) {
  (void)arg;
  char one;
  while (read(gs__term_pipe[0], &one, 1) < 0 && errno == EINTR) {}
  alarm(GS_SIGTERM_FLUSH_S);
  gs__exit_flush();
  gs__die_by(SIGTERM);
  return NULL;
}

/* Since 3.8 Python ends on an unhandled KeyboardInterrupt by killing itself with SIGINT after
 * finalizing, so no destructor runs: Py_AtExit's functions run at the end of finalization. */
static void gs__arm_python_exit(void) {
  int (*at_exit)(void (*)(void)) = (int (*)(void (*)(void)))gs__real_dlsym(RTLD_DEFAULT, "Py_AtExit");
  if (at_exit) at_exit(gs__exit_flush);
}

/* The handler, its pipe and the thread that waits on it; only while SIGTERM has its default
 * action (the program's own handler wins). */
static void gs__arm_sigterm(void) {
  struct sigaction cur;
  if (sigaction(SIGTERM, NULL, &cur) != 0 || (cur.sa_flags & SA_SIGINFO) || cur.sa_handler != SIG_DFL)
    return;
  if (pipe2(gs__term_pipe, O_CLOEXEC) != 0) return;
  if (gs__thread_create_detached(gs__terminator, NULL) != 0) {
    close(gs__term_pipe[0]);
    close(gs__term_pipe[1]);
    return;
  }
  gs__term_pid = getpid();
  struct sigaction sa = {.sa_handler = gs__on_sigterm, .sa_flags = SA_RESTART};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
}

void gs__exit_paths_arm(void) {
  if (__atomic_exchange_n(&gs__term_armed, 1, __ATOMIC_ACQ_REL)) return;
  gs__arm_python_exit();
  gs__arm_sigterm();
}
