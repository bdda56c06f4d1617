// ThreadSanitizer support for Debian's uninstrumented Abseil and for the C11
// threads librdkafka uses. Built only by CMakeLists.txt when WEIR_SANITIZE
// contains "thread", and linked first into every executable.
//
// 1. Abseil.
// weir synchronizes with absl::Mutex, absl::CondVar and absl::Notification.
// Debian's libabsl_synchronization.so is built without -fsanitize=thread, so
// its lock and unlock are atomics and futex calls that ThreadSanitizer does
// not see: without help every access guarded by an absl::Mutex would be
// reported as a race. This library, linked first into every executable of a
// WEIR_SANITIZE=thread build, interposes the exported entry points, calls
// the real ones (found with dlsym(RTLD_NEXT)) and tells ThreadSanitizer
// what they did:
//   - a release on the mutex before anything that unlocks it (Unlock,
//     Await, CondVar::Wait), an acquire after anything that locks it;
//   - memory accesses inside the real calls are ignored: absl evaluates
//     waiters' absl::Conditions inside lock and unlock, in whichever thread
//     holds the mutex at that moment (what absl's own TSan annotations
//     divert). Races on what a Condition reads are therefore not reported;
//     everything else is.
//   - Notification::Notify releases on the notified flag, which the inline
//     HasBeenNotified() reads with an (instrumented) acquire load.
// Reader locks are treated as exclusive, which can hide a race between two
// readers but never reports a false one.
//
// 2. C11 threads. librdkafka starts its threads with thrd_create and locks
// with mtx_lock and cnd_wait. glibc implements those by calling its
// internal pthread functions directly, past ThreadSanitizer's pthread
// interceptors, and this GCC's ThreadSanitizer has no C11 interceptors: a
// thread it never saw start crashes in its allocator on the first malloc,
// and callbacks from librdkafka's threads into weir would look unordered.
// The C11 functions below forward to the public pthread functions, which
// ThreadSanitizer intercepts.

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <threads.h>

#include <cstdio>
#include <cstdlib>

#include "absl/base/options.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

extern "C" {
void __tsan_acquire(void* addr);
void __tsan_release(void* addr);
void __tsan_ignore_thread_begin();
void __tsan_ignore_thread_end();
}

namespace {

#define WEIR_STR2(x) #x
#define WEIR_STR(x) WEIR_STR2(x)
// "_ZN4absl" followed by the length-prefixed inline namespace.
constexpr char kNs[] = WEIR_STR(ABSL_OPTION_INLINE_NAMESPACE_NAME);

template <typename Fn>
Fn Real(const char* member) {
  char name[256];
  std::snprintf(name, sizeof(name), "_ZN%s4absl%zu%s%s",
                member[0] == 'K' ? "K" : "", sizeof(kNs) - 1, kNs,
                member[0] == 'K' ? member + 1 : member);
  void* fn = dlsym(RTLD_NEXT, name);
  if (fn == nullptr) {
    std::fprintf(stderr, "tsan_support: %s not found\n", name);
    std::abort();
  }
  return reinterpret_cast<Fn>(fn);
}

// Runs the real call with memory accesses ignored (see the top).
struct Ignore {
  Ignore() { __tsan_ignore_thread_begin(); }
  ~Ignore() { __tsan_ignore_thread_end(); }
};

}  // namespace

// Each wrapper: `static auto real = Real<...>("<mangled member>")`.
#define WEIR_REAL(type, member) static const auto real = Real<type>(member)

namespace absl {
ABSL_NAMESPACE_BEGIN

void Mutex::Lock() {
  WEIR_REAL(void (*)(Mutex*), "5Mutex4LockEv");
  {
    Ignore ignore;
    real(this);
  }
  __tsan_acquire(this);
}

void Mutex::ReaderLock() {
  WEIR_REAL(void (*)(Mutex*), "5Mutex10ReaderLockEv");
  {
    Ignore ignore;
    real(this);
  }
  __tsan_acquire(this);
}

bool Mutex::TryLock() {
  WEIR_REAL(bool (*)(Mutex*), "5Mutex7TryLockEv");
  bool locked;
  {
    Ignore ignore;
    locked = real(this);
  }
  if (locked) __tsan_acquire(this);
  return locked;
}

bool Mutex::ReaderTryLock() {
  WEIR_REAL(bool (*)(Mutex*), "5Mutex13ReaderTryLockEv");
  bool locked;
  {
    Ignore ignore;
    locked = real(this);
  }
  if (locked) __tsan_acquire(this);
  return locked;
}

void Mutex::Unlock() {
  WEIR_REAL(void (*)(Mutex*), "5Mutex6UnlockEv");
  __tsan_release(this);
  Ignore ignore;
  real(this);
}

void Mutex::ReaderUnlock() {
  WEIR_REAL(void (*)(Mutex*), "5Mutex12ReaderUnlockEv");
  __tsan_release(this);
  Ignore ignore;
  real(this);
}

void Mutex::LockWhen(const Condition& cond) {
  WEIR_REAL(void (*)(Mutex*, const Condition&),
            "5Mutex8LockWhenERKNS0_9ConditionE");
  {
    Ignore ignore;
    real(this, cond);
  }
  __tsan_acquire(this);
}

void Mutex::ReaderLockWhen(const Condition& cond) {
  WEIR_REAL(void (*)(Mutex*, const Condition&),
            "5Mutex14ReaderLockWhenERKNS0_9ConditionE");
  {
    Ignore ignore;
    real(this, cond);
  }
  __tsan_acquire(this);
}

bool Mutex::LockWhenWithTimeout(const Condition& cond, Duration timeout) {
  WEIR_REAL(bool (*)(Mutex*, const Condition&, Duration),
            "5Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  bool met;
  {
    Ignore ignore;
    met = real(this, cond, timeout);
  }
  __tsan_acquire(this);  // held whether or not the condition became true
  return met;
}

bool Mutex::ReaderLockWhenWithTimeout(const Condition& cond, Duration timeout) {
  WEIR_REAL(
      bool (*)(Mutex*, const Condition&, Duration),
      "5Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  bool met;
  {
    Ignore ignore;
    met = real(this, cond, timeout);
  }
  __tsan_acquire(this);
  return met;
}

void Mutex::Await(const Condition& cond) {
  WEIR_REAL(void (*)(Mutex*, const Condition&),
            "5Mutex5AwaitERKNS0_9ConditionE");
  __tsan_release(this);
  {
    Ignore ignore;
    real(this, cond);
  }
  __tsan_acquire(this);
}

bool Mutex::AwaitWithTimeout(const Condition& cond, Duration timeout) {
  WEIR_REAL(bool (*)(Mutex*, const Condition&, Duration),
            "5Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  __tsan_release(this);
  bool met;
  {
    Ignore ignore;
    met = real(this, cond, timeout);
  }
  __tsan_acquire(this);
  return met;
}

bool Mutex::AwaitWithDeadline(const Condition& cond, Time deadline) {
  WEIR_REAL(bool (*)(Mutex*, const Condition&, Time),
            "5Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  __tsan_release(this);
  bool met;
  {
    Ignore ignore;
    met = real(this, cond, deadline);
  }
  __tsan_acquire(this);
  return met;
}

void CondVar::Wait(Mutex* mu) {
  WEIR_REAL(void (*)(CondVar*, Mutex*), "7CondVar4WaitEPNS0_5MutexE");
  __tsan_release(mu);
  {
    Ignore ignore;
    real(this, mu);
  }
  __tsan_acquire(mu);
}

bool CondVar::WaitWithTimeout(Mutex* mu, Duration timeout) {
  WEIR_REAL(bool (*)(CondVar*, Mutex*, Duration),
            "7CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  __tsan_release(mu);
  bool timed_out;
  {
    Ignore ignore;
    timed_out = real(this, mu, timeout);
  }
  __tsan_acquire(mu);
  return timed_out;
}

bool CondVar::WaitWithDeadline(Mutex* mu, Time deadline) {
  WEIR_REAL(bool (*)(CondVar*, Mutex*, Time),
            "7CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  __tsan_release(mu);
  bool timed_out;
  {
    Ignore ignore;
    timed_out = real(this, mu, deadline);
  }
  __tsan_acquire(mu);
  return timed_out;
}

// Notification is { Mutex mutex_; std::atomic<bool> notified_yet_; }.
static void* NotifiedFlag(const Notification* n) {
  return const_cast<char*>(reinterpret_cast<const char*>(n)) + sizeof(Mutex);
}
static_assert(sizeof(Notification) >= sizeof(Mutex) + sizeof(bool));

void Notification::Notify() {
  WEIR_REAL(void (*)(Notification*), "12Notification6NotifyEv");
  __tsan_release(NotifiedFlag(this));
  Ignore ignore;
  real(this);
}

void Notification::WaitForNotification() const {
  WEIR_REAL(void (*)(const Notification*),
            "K12Notification19WaitForNotificationEv");
  {
    Ignore ignore;
    real(this);
  }
  __tsan_acquire(NotifiedFlag(this));
}

bool Notification::WaitForNotificationWithTimeout(Duration timeout) const {
  WEIR_REAL(bool (*)(const Notification*, Duration),
            "K12Notification30WaitForNotificationWithTimeoutENS0_8DurationE");
  bool notified;
  {
    Ignore ignore;
    notified = real(this, timeout);
  }
  __tsan_acquire(NotifiedFlag(this));
  return notified;
}

ABSL_NAMESPACE_END
}  // namespace absl

// ---- C11 threads (see the top) ---------------------------------------------

namespace {

struct ThreadStart {
  thrd_start_t fn;
  void* arg;
};

void* RunThread(void* p) {
  const ThreadStart start = *static_cast<ThreadStart*>(p);
  delete static_cast<ThreadStart*>(p);
  return reinterpret_cast<void*>(static_cast<intptr_t>(start.fn(start.arg)));
}

int C11Result(int pthread_error) {
  switch (pthread_error) {
    case 0:
      return thrd_success;
    case ENOMEM:
      return thrd_nomem;
    case EBUSY:
      return thrd_busy;
    case ETIMEDOUT:
      return thrd_timedout;
    default:
      return thrd_error;
  }
}

pthread_mutex_t* Mutex(mtx_t* m) {
  return reinterpret_cast<pthread_mutex_t*>(m);
}
pthread_cond_t* Cond(cnd_t* c) { return reinterpret_cast<pthread_cond_t*>(c); }
static_assert(sizeof(mtx_t) == sizeof(pthread_mutex_t));
static_assert(sizeof(cnd_t) == sizeof(pthread_cond_t));

}  // namespace

extern "C" {

int thrd_create(thrd_t* thr, thrd_start_t fn, void* arg) {
  auto* start = new ThreadStart{fn, arg};
  const int err = pthread_create(thr, nullptr, &RunThread, start);
  if (err != 0) delete start;
  return C11Result(err);
}

int thrd_join(thrd_t thr, int* res) {
  void* value = nullptr;
  const int err = pthread_join(thr, &value);
  if (err == 0 && res != nullptr) {
    *res = static_cast<int>(reinterpret_cast<intptr_t>(value));
  }
  return C11Result(err);
}

int thrd_detach(thrd_t thr) { return C11Result(pthread_detach(thr)); }

int mtx_init(mtx_t* m, int type) {
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  if (type & mtx_recursive) {
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
  }
  const int err = pthread_mutex_init(Mutex(m), &attr);
  pthread_mutexattr_destroy(&attr);
  return C11Result(err);
}
int mtx_lock(mtx_t* m) { return C11Result(pthread_mutex_lock(Mutex(m))); }
int mtx_trylock(mtx_t* m) { return C11Result(pthread_mutex_trylock(Mutex(m))); }
int mtx_timedlock(mtx_t* m, const struct timespec* ts) {
  return C11Result(pthread_mutex_timedlock(Mutex(m), ts));
}
int mtx_unlock(mtx_t* m) { return C11Result(pthread_mutex_unlock(Mutex(m))); }
void mtx_destroy(mtx_t* m) { pthread_mutex_destroy(Mutex(m)); }

int cnd_init(cnd_t* c) {
  return C11Result(pthread_cond_init(Cond(c), nullptr));
}
int cnd_signal(cnd_t* c) { return C11Result(pthread_cond_signal(Cond(c))); }
int cnd_broadcast(cnd_t* c) {
  return C11Result(pthread_cond_broadcast(Cond(c)));
}
int cnd_wait(cnd_t* c, mtx_t* m) {
  return C11Result(pthread_cond_wait(Cond(c), Mutex(m)));
}
int cnd_timedwait(cnd_t* c, mtx_t* m, const struct timespec* ts) {
  return C11Result(pthread_cond_timedwait(Cond(c), Mutex(m), ts));
}
void cnd_destroy(cnd_t* c) { pthread_cond_destroy(Cond(c)); }

}  // extern "C"
