// Runs the weir-gen tool and checks that it prints exactly the W-PAY stream
// of the library generator.

#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "weir/testing/missing_part.h"
#include "weir/testing/subprocess.h"
#include "weir/testing/wpay.h"

namespace weir {
namespace testing {
namespace {

const std::string kWeirGen = std::string(WEIR_BINARY_DIR) + "/weir-gen";

class WeirGenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WEIR_REQUIRE_PART(
        testing::NeedExecutable(kWeirGen, "build the weir-gen target"));
  }

  // Runs weir-gen with `args`; returns its stdout and sets `exit_code`.
  std::string Run(const std::vector<std::string>& args, int& exit_code) {
    std::vector<std::string> argv = {kWeirGen};
    argv.insert(argv.end(), args.begin(), args.end());
    auto child = Subprocess::Start(argv);
    EXPECT_TRUE(child.ok()) << child.status();
    if (!child.ok()) return "";
    auto out = (*child)->ReadAll(absl::Seconds(30));
    EXPECT_TRUE(out.ok()) << out.status();
    auto status = (*child)->Wait(absl::Seconds(30));
    EXPECT_TRUE(status.ok()) << status.status();
    exit_code = status.ok() && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
    return out.ok() ? *out : "";
  }
};

TEST_F(WeirGenTest, PrintsTheGeneratorsJsonLines) {
  WPayOptions options;
  options.num_events = 5000;
  options.seed = 99;
  options.num_users = 1000;
  options.malformed_fraction = 0.05;
  int exit_code = -1;
  const std::string out =
      Run({"--events=5000", "--seed=99", "--users=1000", "--malformed=0.05"},
          exit_code);
  EXPECT_EQ(exit_code, 0);

  auto events = WPayGenerator::GenerateAll(options);
  ASSERT_TRUE(events.ok()) << events.status();
  std::string expected;
  for (const WPayEvent& e : *events) absl::StrAppend(&expected, e.json, "\n");
  EXPECT_EQ(out, expected);
}

TEST_F(WeirGenTest, FullFormatCarriesPartitionOffsetAndKind) {
  WPayOptions options;
  options.num_events = 2000;
  options.num_partitions = 8;
  options.malformed_fraction = 0.1;
  int exit_code = -1;
  const std::string out = Run(
      {"--events=2000", "--partitions=8", "--malformed=0.1", "--format=full"},
      exit_code);
  EXPECT_EQ(exit_code, 0);
  auto events = WPayGenerator::GenerateAll(options);
  ASSERT_TRUE(events.ok()) << events.status();
  std::vector<std::string> lines = absl::StrSplit(out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), events->size());
  for (size_t i = 0; i < lines.size(); ++i) {
    const WPayEvent& e = (*events)[i];
    EXPECT_EQ(lines[i],
              absl::StrCat(e.partition, "\t", e.offset, "\t", e.user_id, "\t",
                           e.late ? 1 : 0, "\t", MalformedKindName(e.malformed),
                           "\t", e.json));
  }
}

TEST_F(WeirGenTest, BadFlagsExitWithTwo) {
  int exit_code = -1;
  Run({"--no-such-flag=1"}, exit_code);
  EXPECT_EQ(exit_code, 2);
  Run({"--events=abc"}, exit_code);
  EXPECT_EQ(exit_code, 2);
  Run({"--late=2"}, exit_code);
  EXPECT_EQ(exit_code, 2);
}

}  // namespace
}  // namespace testing
}  // namespace weir
