#include "tools/common/command_line.h"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "weir/internal/command_line_flags.h"
#include "weir/internal/string_view.h"

// absl calls this before it exits on a bad command line (an unknown flag, a
// value that does not parse): the tools' convention for bad usage is exit
// status 2, and absl's own is 1, which several tools use for a result
// (weir-shadow: divergence; weir-produce: undelivered messages).
extern "C" void ABSL_INTERNAL_C_SYMBOL(AbslInternalReportFatalUsageError)(
    absl::string_view) {
  std::fflush(stderr);
  std::exit(2);
}

namespace weir {
namespace tools {
namespace {

using internal::Sv;

[[noreturn]] void Fail(const std::string& message) {
  std::fprintf(stderr, "ERROR: %s\n", message.c_str());
  std::exit(2);
}

// Moves `-X key=value` arguments out of argv (absl flags cannot repeat).
std::vector<std::pair<std::string, std::string>> TakeProperties(int& argc,
                                                                char** argv) {
  std::vector<std::pair<std::string, std::string>> out;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") {  // the rest are not flags
      while (i < argc) argv[kept++] = argv[i++];
      break;
    }
    if (arg != "-X" && !absl::ConsumePrefix(&arg, "--property=") &&
        !absl::ConsumePrefix(&arg, "-X")) {
      argv[kept++] = argv[i];
      continue;
    }
    if (arg == "-X") {
      if (i + 1 >= argc) Fail("-X wants key=value");
      arg = argv[++i];
    }
    const size_t eq = arg.find('=');
    if (eq == absl::string_view::npos || eq == 0) {
      Fail(absl::StrCat("-X wants key=value, got '", arg, "'"));
    }
    out.emplace_back(std::string(arg.substr(0, eq)),
                     std::string(arg.substr(eq + 1)));
  }
  argc = kept;
  argv[argc] = nullptr;
  return out;
}

// Joins every `--name=value` of a repeatable flag into one, put first.
void JoinRepeated(std::string_view name, int& argc, char** argv,
                  std::vector<std::string>* storage) {
  const std::vector<std::string> values =
      internal::TakeRepeatedFlag(Sv(name), argc, argv);
  if (values.empty()) return;
  // At least one argument was taken: argv has room for one more.
  storage->push_back(
      absl::StrCat("--", Sv(name), "=", absl::StrJoin(values, ",")));
  for (int i = argc; i > 1; --i) argv[i] = argv[i - 1];
  argv[1] = storage->back().data();
  ++argc;
  argv[argc] = nullptr;
}

}  // namespace

CommandLine ParseCommandLine(int argc, char** argv,
                             const CommandLineOptions& options) {
  internal::ShowProgramFlagsInHelp(Sv(options.usage));

  CommandLine out;
  if (options.properties) out.properties = TakeProperties(argc, argv);
  // Joined arguments live as long as the process: absl keeps no pointer to
  // them, but argv may be read again by the caller.
  static auto* const joined = new std::vector<std::string>();
  joined->reserve(options.repeatable.size());
  for (std::string_view name : options.repeatable) {
    JoinRepeated(name, argc, argv, joined);
  }
  const std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  for (size_t i = 1; i < rest.size(); ++i) out.positional.emplace_back(rest[i]);
  if (!options.positional && !out.positional.empty()) {
    Fail(absl::StrCat("unexpected argument '", out.positional[0],
                      "' (flags are spelled --name=value)"));
  }
  return out;
}

}  // namespace tools
}  // namespace weir
