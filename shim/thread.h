/* thread.h: the shim's own threads are started with every signal blocked. */
#ifndef GS_THREAD_H
#define GS_THREAD_H

#include <pthread.h>
#include <signal.h>

/* pthread_create, but the new thread blocks all signals, so that the program's handlers (Python's
 * SIGINT, the shim's SIGTERM flush) never run on a thread of ours in the middle of its work. */
static inline int gs__thread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *),
                                    void *arg) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int rc = pthread_create(t, attr, fn, arg);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return rc;
}

/* The same, detached: nobody joins it. 0 or an errno value (as pthread_create). */
static inline int gs__thread_create_detached(void *(*fn)(void *), void *arg) {
  pthread_attr_t attr;
  pthread_t t;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  int rc = gs__thread_create(&t, &attr, fn, arg);
  pthread_attr_destroy(&attr);
  return rc;
}

#endif
