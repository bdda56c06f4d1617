// Checks tsan_support.cc in a WEIR_SANITIZE=thread build (CMakeLists.txt
// adds two tests that run this program):
//   tsan_support_check          counters incremented by threads started
//                               with std::thread and with C11 thrd_create,
//                               under an absl::Mutex, a CondVar handshake
//                               and an absl::Notification: no report.
//   tsan_support_check racy     the same counter without the mutex:
//                               ThreadSanitizer must report the race (the
//                               test looks for its report).
#include <threads.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"

namespace {

absl::Mutex mu;
absl::CondVar cv;
bool racy = false;
int counter = 0;  // guarded by mu unless racy
int turn = 0;     // guarded by mu
std::string* handed_over = nullptr;
absl::Notification handed;

void Work() {
  for (int i = 0; i < 10000; ++i) {
    if (racy) {
      ++counter;
    } else {
      absl::MutexLock lock(&mu);
      ++counter;
    }
  }
}

int C11Work(void*) {
  Work();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  racy = argc > 1 && std::strcmp(argv[1], "racy") == 0;
  std::thread a(Work);
  thrd_t b;
  if (thrd_create(&b, C11Work, nullptr) != thrd_success) return 2;
  a.join();
  if (thrd_join(b, nullptr) != thrd_success) return 2;

  // A CondVar handshake and a Notification hand data between threads.
  std::thread c([] {
    absl::MutexLock lock(&mu);
    while (turn != 1) cv.Wait(&mu);
    turn = 2;
    cv.Signal();
  });
  std::thread d([] {
    handed_over = new std::string("payload");
    handed.Notify();
  });
  {
    absl::MutexLock lock(&mu);
    turn = 1;
    cv.Signal();
    while (turn != 2) cv.Wait(&mu);
  }
  handed.WaitForNotification();
  const bool ok = *handed_over == "payload";
  delete handed_over;
  c.join();
  d.join();
  std::printf("counter %d\n", counter);
  return ok && counter == 20000 ? 0 : 1;
}
