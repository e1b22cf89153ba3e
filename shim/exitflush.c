/* exitflush.c: write stats and trace on the exits that skip destructors (SIGTERM, Python's SIGINT). */
#include "init.h"

#include "interpose.h"

#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <unistd.h>

/* SIGTERM's default action ends the process without atexit or destructors, so a job stopped by a
 * scheduler would lose its stats and the end of its trace. The handler flushes them and then dies
 * of SIGTERM as before (same exit status). If flushing hangs (the signal interrupted a thread
 * holding a lock the flush needs), SIGALRM's default action ends the process after this long. */
#define GS_SIGTERM_FLUSH_S 10

/* Process-wide by nature (signal dispositions are): armed once, flushed once. */
static int gs__sigterm_armed, gs__sigterm_flushing;

static void gs__on_sigterm(int sig) {
  int saved = errno;
  struct sigaction dfl = {.sa_handler = SIG_DFL};
  sigemptyset(&dfl.sa_mask);
  sigaction(sig, &dfl, NULL); /* a second SIGTERM, or the re-raise below, takes the default action */
  if (!__atomic_exchange_n(&gs__sigterm_flushing, 1, __ATOMIC_ACQ_REL)) {
    alarm(GS_SIGTERM_FLUSH_S);
    gs__exit_flush();
  }
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, sig);
  pthread_sigmask(SIG_UNBLOCK, &s, NULL);
  raise(sig);
  errno = saved; /* not reached: the default action ends the process */
}

/* Since 3.8 Python ends on an unhandled KeyboardInterrupt by killing itself with SIGINT after
 * finalizing, so no destructor runs: Py_AtExit's functions run at the end of finalization. */
static void gs__arm_python_exit(void) {
  int (*at_exit)(void (*)(void)) = (int (*)(void (*)(void)))gs__real_dlsym(RTLD_DEFAULT, "Py_AtExit");
  if (at_exit) at_exit(gs__exit_flush);
}

void gs__exit_paths_arm(void) {
  if (__atomic_exchange_n(&gs__sigterm_armed, 1, __ATOMIC_ACQ_REL)) return;
  gs__arm_python_exit();
  struct sigaction cur;
  if (sigaction(SIGTERM, NULL, &cur) != 0) return;
  if ((cur.sa_flags & SA_SIGINFO) || cur.sa_handler != SIG_DFL) return; /* the program's choice */
  struct sigaction sa = {.sa_handler = gs__on_sigterm, .sa_flags = SA_RESTART};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
}
