// -----------------------------------------------------------------------------
// File: tools/common/command_line.h
// -----------------------------------------------------------------------------
//
// The one command-line parser of weir's tools, examples and benchmarks: absl
// flags (ABSL_FLAG in the program's own file), spelled `--snake_case`.
// `ParseCommandLine` parses argv with them and makes every program behave
// alike:
//
// - A mistyped flag or a value that does not parse is an error: absl prints
//   "ERROR: ..." and the program exits with 2 (bad usage, as each tool
//   documents), never runs with the flag ignored.
// - `--help` prints the usage message and the program's own flags (not
//   absl's; `--helpfull` has all), each under its file's name without
//   directories, so no build machine's path shows.
// - Arguments that are not flags are refused unless the program takes them.
// - Named list flags (std::vector<std::string>) may be repeated, their
//   values adding up (`--topic=a:1 --topic=b:4` is `--topic=a:1,b:4`); absl
//   alone would keep the last.
// - Optionally, `-X key=value` (repeatable) collects librdkafka properties,
//   whose values may hold commas.
//
// Not part of the library: linked by weir's own binaries only (the CMake
// target weir_command_line).
//
// Example:
//   ABSL_FLAG(int64_t, events, 1000, "Events to generate.");
//   int main(int argc, char** argv) {
//     weir::tools::ParseCommandLine(argc, argv, {.usage = "generates events"});
//     const int64_t events = absl::GetFlag(FLAGS_events);
//   }

#ifndef WEIR_TOOLS_COMMON_COMMAND_LINE_H_
#define WEIR_TOOLS_COMMON_COMMAND_LINE_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace weir {
namespace tools {

struct CommandLineOptions {
  // What the program does and how it is called, shown first by --help.
  std::string_view usage;

  // Whether arguments that are not flags are taken (returned in
  // `CommandLine::positional`); otherwise they are an error.
  // Default: false
  bool positional = false;

  // List flags that may be given more than once, their values joined with
  // commas.
  std::vector<std::string_view> repeatable;

  // Whether `-X key=value` (also `-Xkey=value`, `--property=key=value`) is
  // taken, repeatably, into `CommandLine::properties`.
  // Default: false
  bool properties = false;
};

struct CommandLine {
  std::vector<std::string> positional;  // in order, argv[0] excluded
  std::vector<std::pair<std::string, std::string>> properties;  // in order
};

// Parses argv[1..argc) into the program's absl flags. Exits the process
// with 2 on a bad argument (and like absl on --help and --version).
CommandLine ParseCommandLine(int argc, char** argv,
                             const CommandLineOptions& options);

}  // namespace tools
}  // namespace weir

#endif  // WEIR_TOOLS_COMMON_COMMAND_LINE_H_
