// -----------------------------------------------------------------------------
// File: internal/command_line_flags.h
// -----------------------------------------------------------------------------
//
// What every weir program (the service, the tools, the benchmarks) does
// around absl flags, in one place: --help that lists the program's own
// flags without the build machine's paths, and flags that may be given more
// than once (absl keeps only a repeated flag's last value).

#ifndef WEIR_INTERNAL_COMMAND_LINE_FLAGS_H_
#define WEIR_INTERNAL_COMMAND_LINE_FLAGS_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace weir {
namespace internal {

// Makes --help print `usage`, then the program's own flags (not absl's),
// each under its file's name alone.
void ShowProgramFlagsInHelp(absl::string_view usage);

// Takes every `--name=value` (also `-name=value` and `--name value`) out of
// argv, in order, and returns the values; argv[argc] stays nullptr. `--`
// ends the flags: what follows it is left alone.
std::vector<std::string> TakeRepeatedFlag(absl::string_view name, int& argc,
                                          char** argv);

}  // namespace internal
}  // namespace weir

#endif  // WEIR_INTERNAL_COMMAND_LINE_FLAGS_H_
