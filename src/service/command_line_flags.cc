#include "weir/internal/command_line_flags.h"

#include <string>
#include <vector>

#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace weir {
namespace internal {
namespace {

// A flag's file as --help shows it: absl's own from "absl/", the rest by
// name only (no directories of the machine that built it).
std::string ShownFileName(absl::string_view path) {
  const size_t absl_dir = path.rfind("absl/");
  if (absl_dir != absl::string_view::npos) {
    return std::string(path.substr(absl_dir));
  }
  const size_t slash = path.rfind('/');
  return std::string(slash == absl::string_view::npos ? path
                                                      : path.substr(slash + 1));
}

bool IsProgramFlagFile(absl::string_view path) {
  return !absl::StartsWith(ShownFileName(path), "absl/");
}

}  // namespace

void ShowProgramFlagsInHelp(absl::string_view usage) {
  absl::FlagsUsageConfig config;
  config.normalize_filename = ShownFileName;
  config.contains_help_flags = IsProgramFlagFile;
  config.contains_helpshort_flags = IsProgramFlagFile;
  absl::SetFlagsUsageConfig(config);
  absl::SetProgramUsageMessage(usage);
}

std::vector<std::string> TakeRepeatedFlag(absl::string_view name, int& argc,
                                          char** argv) {
  const std::string bare = absl::StrCat("--", name);
  const std::string single = absl::StrCat("-", name);
  std::vector<std::string> values;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") {  // the rest are not flags
      while (i < argc) argv[kept++] = argv[i++];
      break;
    }
    if ((arg == bare || arg == single) && i + 1 < argc) {
      values.emplace_back(argv[++i]);
      continue;
    }
    if ((absl::ConsumePrefix(&arg, bare) ||
         absl::ConsumePrefix(&arg, single)) &&
        absl::ConsumePrefix(&arg, "=")) {
      values.emplace_back(arg);
      continue;
    }
    argv[kept++] = argv[i];
  }
  argc = kept;
  argv[argc] = nullptr;
  return values;
}

}  // namespace internal
}  // namespace weir
