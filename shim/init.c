/* init.c: the one place that wires the rooms together — constructor, exit flush, trace wiring. */
#include "base.h"
#include "engine.h"
#include "interpose.h"
#include "registry.h"
#include "timeline.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* per_tensor entries in the stats JSON: the last iteration's first ones (bounded size), and the
 * room they may take. */
#define GS__PER_TENSOR_MAX 512
#define GS__PER_TENSOR_JSON_BYTES 400

/* Whether this process is the one the constructor ran in, not a forked child. A forked child
 * writes its own stats only when the path names it (%p), so it cannot clobber its parent's file. */
static pid_t gs__owner_pid;

/* ---- the stats JSON: counters (base), memory (registry), the plan (engine) ---------------- */

/* Live and peak bytes of every device that was ever used ("host" for pinned and host memory). */
static void gs__append_devices(char *buf, size_t len, size_t *off) {
  bool first = true;
  for (int d = 0; d < GS_DEVICE_SLOTS; d++) {
    uint64_t peak = gs__registry_peak_bytes(d);
    if (peak == 0) continue;
    char name[16];
    if (d == GS_DEVICE_HOST) snprintf(name, sizeof(name), "host");
    else snprintf(name, sizeof(name), "%d", d);
    gs__json_append(buf, len, off, "%s\"%s\":{\"live\":%llu,\"peak\":%llu}", first ? "" : ",", name,
                    (unsigned long long)gs__registry_live_bytes(d), (unsigned long long)peak);
    first = false;
  }
}

static bool gs__stats_extra(char *buf, size_t len, size_t *off) {
  gs_registry_counts c = gs__registry_counts();
  gs__json_append(buf, len, off, ",\"allocs\":%llu,\"frees\":%llu,\"alloc_bytes\":%llu",
                  (unsigned long long)c.allocs, (unsigned long long)c.frees,
                  (unsigned long long)c.alloc_bytes);
  gs__json_append(buf, len, off,
                  ",\"live_bytes_peak\":%llu,\"live_bytes_peak_host\":%llu,\"live_bytes\":%llu,"
                  "\"untracked_frees\":%llu,\"hook_failures\":%llu,\"devices\":{",
                  (unsigned long long)gs__registry_peak_any(),
                  (unsigned long long)gs__registry_peak_bytes(GS_DEVICE_HOST),
                  (unsigned long long)gs__registry_live_total(),
                  (unsigned long long)gs__registry_untracked_frees(),
                  (unsigned long long)gs__registry_failures());
  gs__append_devices(buf, len, off);
  gs__json_append(buf, len, off, "},");
  return gs__engine_plan_json(buf, len, off, GS__PER_TENSOR_MAX);
}

static void gs__report_at_exit(void) {
  if (!gs__active()) return;
  bool used = gs__registry_counts().allocs || gs__stat_get(packed);
  /* Only a process that used the shim writes stats: a launcher (torchrun's agent), a DataLoader
   * worker or a helper the job execs would otherwise write zeros over a rank's file (%r is 0 where
   * RANK is unset) or litter per-%p files. */
  if (used && gs__cfg.stats_path[0] &&
      (getpid() == gs__owner_pid || strstr(gs__cfg.stats_path, "%p"))) {
    char path[GS_PATH_MAX];
    int rc = gs__expand_path(gs__cfg.stats_path, path, sizeof(path));
    if (rc == 0)
      rc = gs__stats_write_json(path, gs__stats_extra, GS__PER_TENSOR_MAX * GS__PER_TENSOR_JSON_BYTES);
    if (rc != 0)
      gs__log(GS_LOG_ERROR, "could not write GACTSHIM_STATS=%s: %s", gs__cfg.stats_path, strerror(-rc));
  }
  if (used && !gs__cfg.quiet) {
    char line[256];
    if (gs__stats_summary(line, sizeof(line), gs__registry_peak_any()) == 0) gs__log(GS_LOG_ERROR, "%s", line);
  }
}

/* ---- the trace: the recorder's options from GACTSHIM_*, and its place as an observer ------- */

/* The registry keeps live bytes by category, not by kind: after ring drops the by-kind split
 * keeps the writer's own figures and only the category totals are corrected. */
static int gs__registry_totals(int device, uint64_t by_cat[GS_CAT__COUNT], uint64_t by_kind[GS_KIND__COUNT]) {
  (void)by_kind;
  for (unsigned c = 0; c < GS_CAT__COUNT; c++) by_cat[c] = gs__registry_live_bytes_cat(device, (gs_category)c);
  return 0;
}

static void gs__exit_paths_arm(void);

/* Stores the recorder's options and, when GACTSHIM_TRACE names a file, the path it writes. Makes
 * no CUDA call and starts no thread: the writer starts at the first event. Logs and goes on
 * without a trace if the options are refused. */
static void gs__trace_wire(void) {
  gs_trace_options o;
  gs__trace_defaults(&o);
  o.max_bytes = gs__cfg.trace_max;
  o.cupti = gs__cfg.cupti;
  o.totals = gs__registry_totals;
  o.registry_peak = gs__registry_peak_any;
  o.expand = gs__expand_path;
  o.on_start = gs__exit_paths_arm;
  if (gs__cfg.trace_path[0]) {
    snprintf(o.path_template, sizeof(o.path_template), "%s", gs__cfg.trace_path);
    if (gs__expand_path(gs__cfg.trace_path, o.path, sizeof(o.path)) != 0) {
      gs__log(GS_LOG_ERROR, "GACTSHIM_TRACE=%s is too long once expanded; no trace", gs__cfg.trace_path);
      o.path[0] = '\0';
    }
  }
  /* Unwinding costs a microsecond or two per allocation: only for a trace file, not for the
   * in-memory window every process keeps for attach. */
  o.callsites = o.path[0] != '\0';
  int rc = gs__trace_configure(&o);
  if (rc != 0) {
    gs__stat_fail(GS_FAIL_TRACE);
    gs__log(GS_LOG_ERROR, "cannot record the trace %s: %s", o.path[0] ? o.path : "(memory)", strerror(-rc));
    return;
  }
  gs__registry_observe(&gs__trace_observer);
}

/* Drains and closes the trace (before the stats are written, so that they count its failure). */
static void gs__trace_unwire(void) {
  int rc = gs__trace_stop();
  if (rc == -EBUSY)
    gs__log(GS_LOG_WARN, "GACTSHIM_TRACE=%s was being written by another process, so this one (pid %ld) "
            "wrote no trace; put %%p or %%r in the path for one file per process", gs__cfg.trace_path, (long)getpid());
  else if (rc != 0) {
    gs__stat_fail(GS_FAIL_TRACE);
    gs__log(GS_LOG_ERROR, "could not write the trace GACTSHIM_TRACE=%s: %s", gs__cfg.trace_path, strerror(-rc));
  }
}

/* ---- the exit flush: once per process, whoever comes first; later callers wait ------------- */

/* 0: not flushed, 1: a thread is flushing, 2: done. With its lock and condition: the destructor,
 * the SIGTERM thread and Python's Py_AtExit may all call gs__exit_flush, and none of them may
 * return (or end the process) while another is still writing the trace or the stats. Global
 * because an exit is a process-wide event. */
static int gs__flush_state;
static pthread_mutex_t gs__flush_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gs__flush_done = PTHREAD_COND_INITIALIZER;

static void gs__exit_flush(void) {
  pthread_mutex_lock(&gs__flush_lock);
  if (gs__flush_state != 0) {
    while (gs__flush_state != 2) pthread_cond_wait(&gs__flush_done, &gs__flush_lock);
    pthread_mutex_unlock(&gs__flush_lock);
    return;
  }
  gs__flush_state = 1;
  pthread_mutex_unlock(&gs__flush_lock);
  if (gs__fault(GS_FAULT_FLUSH_SLOW)) {
    gs__log(GS_LOG_ERROR, "exit flush under way (slowed by _GACTSHIM_FAULT=flush_slow)");
    struct timespec left = {1, 0}; /* the whole second, signals or not */
    while (nanosleep(&left, &left) != 0 && errno == EINTR) {}
  }
  if (gs__active()) gs__trace_unwire();
  gs__report_at_exit();
  pthread_mutex_lock(&gs__flush_lock);
  gs__flush_state = 2;
  pthread_cond_broadcast(&gs__flush_done);
  pthread_mutex_unlock(&gs__flush_lock);
}

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

/* Takes sig's default action now: the process ends as it would have without the shim. */
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
  gs__exit_flush(); /* waits for a flush already under way (the destructor's) to finish */
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

/* Once the process first uses the shim (the recorder's first event): in Python, registers the
 * flush with Py_AtExit; if SIGTERM still has its default action, installs the handler. Not at
 * load: processes that never use the shim, and Python's own view of its handlers, stay untouched. */
static void gs__exit_paths_arm(void) {
  if (__atomic_exchange_n(&gs__term_armed, 1, __ATOMIC_ACQ_REL)) return;
  gs__arm_python_exit();
  gs__arm_sigterm();
}

/* ---- load, fork, unload -------------------------------------------------------------------- */

static void gs__atfork_child(void) {
  gs__interpose_atfork_child();
  gs__registry_reset();
  gs__trace_atfork_child();
  /* A flush under way in another thread of the parent does not exist here. */
  pthread_mutex_init(&gs__flush_lock, NULL);
  pthread_cond_init(&gs__flush_done, NULL);
  gs__flush_state = 0;
}

__attribute__((constructor)) static void gs__init(void) {
  gs__interpose_init();
  char err[1024];
  if (gs__config_parse(environ, &gs__cfg, err, sizeof(err)) != 0 ||
      gs__fault_parse(environ, err, sizeof(err)) != 0) {
    /* The one place the shim ends the process: a bad variable must stop the job before it runs,
     * with one line saying what was wrong and what is accepted. */
    fprintf(stderr, "%s\n", err);
    _exit(2);
  }
  if (gs__cfg.disable) return;
  gs__owner_pid = getpid();
  pthread_atfork(NULL, NULL, gs__atfork_child);
  gs__python_preinit();
  gs__trace_wire();
  gs__set_active(true);
}

__attribute__((destructor)) static void gs__fini(void) { gs__exit_flush(); }
