/* GLib's mutexes and condition variables for ThreadSanitizer runs
 * (scripts/test --tsan preloads this library into every process).
 *
 * On Linux, GLib 2.74 implements GMutex and GCond with its own futex code:
 * atomics in an uninstrumented library, which ThreadSanitizer cannot see.
 * Every hand-off GStreamer makes through them (queue elements, the bus,
 * GstTask, GAsyncQueue, GThreadPool) then looks unsynchronised, so a buffer
 * filled on one thread and read on the next is reported as a data race, and
 * real races of ours would drown among them. This library replaces those
 * functions with ones built on pthread mutexes and condition variables,
 * which ThreadSanitizer intercepts, for every library that calls GLib:
 * GStreamer, its plugins, GIO, libsoup and ours. GRecMutex and GRWLock are
 * pthread objects in GLib already, but locked from inside libglib, whose
 * interceptor calls the suppressions ignore (called_from_lib, for its
 * reference counting), so they are taken from here too, as the same
 * recursive mutex and rwlock GLib makes (the two stay interchangeable).
 *
 * Limits: libglib calls its own GMutex/GCond functions directly, not through
 * its PLT, so GLib's internal objects (main contexts, async queues, thread
 * pools, g_once) keep the futex implementation and their hand-offs stay
 * invisible. A GMutex or GCond used both inside libglib and from outside
 * would be handled two ways; none in these tests is (they would fail or
 * hang). This is a test harness, never shipped.
 *
 * A GMutex/GCond is a pointer-sized union; as in GLib's own non-futex
 * implementation, the pointer holds the pthread object, made on first use
 * (a zeroed or statically initialised one holds NULL).
 */
#define _GNU_SOURCE
#include <execinfo.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

typedef union {
  void* p;
  unsigned int i[2];
} GMutex;
typedef struct {
  void* p;
  unsigned int i[2];
} GCond, GRecMutex, GRWLock;

/* This file is not instrumented, so TSan does not see the atomics that
 * publish a lazily made object; the runtime's annotations say it instead. */
extern void __tsan_acquire(void* addr) __attribute__((weak));
extern void __tsan_release(void* addr) __attribute__((weak));

static void* made_on_first_use(void** slot, void* (*make)(void), void (*unmake)(void*)) {
  void* impl = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
  if (impl) {
    if (__tsan_acquire) __tsan_acquire(slot);
    return impl;
  }
  void* fresh = make();
  void* expected = NULL;
  if (__tsan_release) __tsan_release(slot);
  if (__atomic_compare_exchange_n(slot, &expected, fresh, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) return fresh;
  unmake(fresh);  // another thread made it first
  if (__tsan_acquire) __tsan_acquire(slot);
  return expected;
}

/* Diagnosis: with DFD_TSAN_SHIM_FRAMES=N, each g_mutex_lock and
 * g_rec_mutex_lock pushes its N callers (unwound with backtrace()) onto
 * TSan's shadow stack for the time of the call. TSan keeps stacks only of
 * instrumented code, so a lock-order report between two GStreamer or FFmpeg
 * locks otherwise ends at g_mutex_lock and says nothing of who took them.
 * The suppressions of third-party lock-order cycles (tsan.supp) match
 * library frames, so they need these too: scripts/test --tsan sets 16.
 * Off when unset: unwinding on every lock costs time. The frames of
 * uninstrumented libraries print as library+offset (Debian strips them). */
extern void __tsan_func_entry(void* pc) __attribute__((weak));
extern void __tsan_func_exit(void) __attribute__((weak));

static int frames_wanted(void) {
  static int wanted = -1;
  int n = __atomic_load_n(&wanted, __ATOMIC_RELAXED);
  if (n < 0) {
    const char* env = getenv("DFD_TSAN_SHIM_FRAMES");
    n = env ? atoi(env) : 0;
    n = n < 0 ? 0 : n > 28 ? 28 : n;
    __atomic_store_n(&wanted, n, __ATOMIC_RELAXED);
  }
  return n;
}
/* Returns how many frames it pushed; pop them with pop_callers. */
__attribute__((noinline)) static int push_callers(void) {
  const int wanted = frames_wanted();
  if (!wanted || !__tsan_func_entry || !__tsan_func_exit) return 0;
  void* pcs[32];
  const int n = backtrace(pcs, wanted + 2);  // [0] us, [1] the g_*_lock, then its callers
  for (int i = n - 1; i >= 2; --i) __tsan_func_entry(pcs[i]);
  return n > 2 ? n - 2 : 0;
}
static void pop_callers(int pushed) {
  while (pushed-- > 0) __tsan_func_exit();
}

static void* make_mutex(void) {
  pthread_mutex_t* m = malloc(sizeof *m);
  if (!m) abort();
  pthread_mutex_init(m, NULL);
  return m;
}
static void unmake_mutex(void* m) {
  pthread_mutex_destroy(m);
  free(m);
}
static void* make_cond(void) {
  pthread_cond_t* c = malloc(sizeof *c);
  pthread_condattr_t attr;
  if (!c) abort();
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);  // g_cond_wait_until takes monotonic time
  pthread_cond_init(c, &attr);
  pthread_condattr_destroy(&attr);
  return c;
}
static void unmake_cond(void* c) {
  pthread_cond_destroy(c);
  free(c);
}

static void* make_rec_mutex(void) {
  pthread_mutex_t* m = malloc(sizeof *m);
  pthread_mutexattr_t attr;
  if (!m) abort();
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
  pthread_mutex_init(m, &attr);
  pthread_mutexattr_destroy(&attr);
  return m;
}
static void* make_rw_lock(void) {
  pthread_rwlock_t* l = malloc(sizeof *l);
  if (!l) abort();
  pthread_rwlock_init(l, NULL);
  return l;
}
static void unmake_rw_lock(void* l) {
  pthread_rwlock_destroy(l);
  free(l);
}

static pthread_mutex_t* mutex_of(GMutex* m) { return made_on_first_use(&m->p, make_mutex, unmake_mutex); }
static pthread_cond_t* cond_of(GCond* c) { return made_on_first_use(&c->p, make_cond, unmake_cond); }

void g_mutex_init(GMutex* m) {
  m->p = make_mutex();
  if (__tsan_release) __tsan_release(&m->p);
}
void g_mutex_clear(GMutex* m) {
  if (m->p) unmake_mutex(m->p);
  m->p = NULL;
}
void g_mutex_lock(GMutex* m) {
  const int pushed = push_callers();
  pthread_mutex_lock(mutex_of(m));
  pop_callers(pushed);
}
void g_mutex_unlock(GMutex* m) { pthread_mutex_unlock(mutex_of(m)); }
int g_mutex_trylock(GMutex* m) { return pthread_mutex_trylock(mutex_of(m)) == 0; }

void g_cond_init(GCond* c) {
  c->p = make_cond();
  if (__tsan_release) __tsan_release(&c->p);
}
void g_cond_clear(GCond* c) {
  if (c->p) unmake_cond(c->p);
  c->p = NULL;
}
void g_cond_wait(GCond* c, GMutex* m) { pthread_cond_wait(cond_of(c), mutex_of(m)); }
void g_cond_signal(GCond* c) { pthread_cond_signal(cond_of(c)); }
void g_cond_broadcast(GCond* c) { pthread_cond_broadcast(cond_of(c)); }
/* end_time: g_get_monotonic_time() microseconds; TRUE unless it passed. */
int g_cond_wait_until(GCond* c, GMutex* m, int64_t end_time) {
  struct timespec ts = {.tv_sec = end_time / 1000000, .tv_nsec = (end_time % 1000000) * 1000};
  return pthread_cond_timedwait(cond_of(c), mutex_of(m), &ts) == 0;
}

static pthread_mutex_t* rec_mutex_of(GRecMutex* m) { return made_on_first_use(&m->p, make_rec_mutex, unmake_mutex); }
void g_rec_mutex_init(GRecMutex* m) {
  m->p = make_rec_mutex();
  if (__tsan_release) __tsan_release(&m->p);
}
void g_rec_mutex_clear(GRecMutex* m) {
  if (m->p) unmake_mutex(m->p);
  m->p = NULL;
}
void g_rec_mutex_lock(GRecMutex* m) {
  const int pushed = push_callers();
  pthread_mutex_lock(rec_mutex_of(m));
  pop_callers(pushed);
}
void g_rec_mutex_unlock(GRecMutex* m) { pthread_mutex_unlock(rec_mutex_of(m)); }
int g_rec_mutex_trylock(GRecMutex* m) { return pthread_mutex_trylock(rec_mutex_of(m)) == 0; }

static pthread_rwlock_t* rw_lock_of(GRWLock* l) { return made_on_first_use(&l->p, make_rw_lock, unmake_rw_lock); }
void g_rw_lock_init(GRWLock* l) {
  l->p = make_rw_lock();
  if (__tsan_release) __tsan_release(&l->p);
}
void g_rw_lock_clear(GRWLock* l) {
  if (l->p) unmake_rw_lock(l->p);
  l->p = NULL;
}
void g_rw_lock_writer_lock(GRWLock* l) { pthread_rwlock_wrlock(rw_lock_of(l)); }
int g_rw_lock_writer_trylock(GRWLock* l) { return pthread_rwlock_trywrlock(rw_lock_of(l)) == 0; }
void g_rw_lock_writer_unlock(GRWLock* l) { pthread_rwlock_unlock(rw_lock_of(l)); }
void g_rw_lock_reader_lock(GRWLock* l) { pthread_rwlock_rdlock(rw_lock_of(l)); }
int g_rw_lock_reader_trylock(GRWLock* l) { return pthread_rwlock_tryrdlock(rw_lock_of(l)) == 0; }
void g_rw_lock_reader_unlock(GRWLock* l) { pthread_rwlock_unlock(rw_lock_of(l)); }
