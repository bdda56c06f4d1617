// ThreadSanitizer support for Debian's uninstrumented Abseil.
//
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
// Built only by CMakeLists.txt when WEIR_SANITIZE contains "thread".

#include <dlfcn.h>

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
    std::fprintf(stderr, "tsan_absl_sync: %s not found\n", name);
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
