// -----------------------------------------------------------------------------
// File: testing/sanitizers.h
// -----------------------------------------------------------------------------
//
// kSanitizedBuild is true in a WEIR_SANITIZE build (AddressSanitizer or
// ThreadSanitizer). Their allocators keep freed memory (ASan's quarantine)
// and add shadow memory, so a process's resident memory says nothing about
// weir's own bounds there: tests check memory figures only when it is
// false. Everything else they check holds in every build.

#ifndef WEIR_TESTING_SANITIZERS_H_
#define WEIR_TESTING_SANITIZERS_H_

namespace weir {
namespace testing {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitizedBuild = true;
#else
inline constexpr bool kSanitizedBuild = false;
#endif

}  // namespace testing
}  // namespace weir

#endif  // WEIR_TESTING_SANITIZERS_H_
