// -----------------------------------------------------------------------------
// File: bench/bench_flags.h
// -----------------------------------------------------------------------------
//
// The one flag form the benchmark binaries take: `--name=integer`. A flag
// that is absent, or whose value is not an integer, takes its default; other
// arguments are ignored.
//
// Threading: a pure function of its arguments.
//
// Example:
//   int main(int argc, char** argv) {
//     const int64_t events = weir::bench::Flag(argc, argv, "events", 1000);
//   }

#ifndef WEIR_BENCH_BENCH_FLAGS_H_
#define WEIR_BENCH_BENCH_FLAGS_H_

#include <cstdint>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace weir {
namespace bench {

// The value of the first `--<name>=N` in argv[1..argc) with an integer N,
// or `def`.
inline int64_t Flag(int argc, char** argv, const char* name, int64_t def) {
  const std::string prefix = absl::StrCat("--", name, "=");
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    int64_t v;
    if (a.rfind(prefix, 0) == 0 &&
        absl::SimpleAtoi(a.substr(prefix.size()), &v)) {
      return v;
    }
  }
  return def;
}

}  // namespace bench
}  // namespace weir

#endif  // WEIR_BENCH_BENCH_FLAGS_H_
