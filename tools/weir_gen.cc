// weir-gen: prints the W-PAY workload (include/weir/testing/wpay.h), one
// event per line, to stdout.
//
//   weir-gen --events=1000000 --seed=7 --partitions=16 | weir-produce ...
//
// Flags (--help lists them): --events, --seed, --users, --merchants, --zipf,
// --partitions, --start, --events_per_ms, --disorder, --max_disorder_ms,
// --late, --min_lateness_ms, --max_lateness_ms, --null, --malformed.
//
// Formats (--format):
//   json  the Kafka message value only (default):
//         {"user_id":"u1","merchant_id":"m9","amount":12.34,"event_timestamp":...}
//   key   <user_id> TAB <json>: the message key, which malformed lines
//         without a user_id still carry.
//   full  <partition> TAB <offset> TAB <user_id> TAB <late 0|1> TAB
//         <malformed kind> TAB <json>: everything the generator knows.
//
// Exits 0 on success, 2 on a bad flag, 1 if stdout cannot be written.

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "tools/common/command_line.h"
#include "weir/testing/wpay.h"

ABSL_FLAG(int64_t, events, 1'000'000, "Events to print.");
ABSL_FLAG(uint64_t, seed, 1, "Random seed.");
ABSL_FLAG(int64_t, users, 1'000'000, "Distinct users, Zipf-popular.");
ABSL_FLAG(int64_t, merchants, 50'000, "Distinct merchants.");
ABSL_FLAG(double, zipf, 1.0, "Zipf exponent of user popularity.");
ABSL_FLAG(int32_t, partitions, 1, "Kafka partitions, for --format=full.");
ABSL_FLAG(int64_t, start, 1767225600000,
          "In-order time of the first event, ms since the epoch.");
ABSL_FLAG(int32_t, events_per_ms, 2, "Events per ms of event time.");
ABSL_FLAG(double, disorder, 0.10,
          "Fraction of events moved back up to --max_disorder_ms.");
ABSL_FLAG(int64_t, max_disorder_ms, 5000,
          "Largest delay of a disordered event.");
ABSL_FLAG(double, late, 0.005,
          "Fraction moved back by [--min_lateness_ms, --max_lateness_ms].");
ABSL_FLAG(int64_t, min_lateness_ms, 120000, "Smallest delay of a late event.");
ABSL_FLAG(int64_t, max_lateness_ms, 600000, "Largest delay of a late event.");
ABSL_FLAG(double, null, 0.01, "Fraction of events with a null amount.");
ABSL_FLAG(double, malformed, 0.002, "Fraction of corrupted lines.");
ABSL_FLAG(std::string, format, "json", "Line format: json, key or full.");

namespace {

constexpr char kUsage[] =
    "prints the W-PAY workload, one event per line, to stdout.\n"
    "usage: weir-gen [--events=N] [--seed=N] [--format=json|key|full] ...";

enum class Format { kJson, kKey, kFull };

weir::testing::WPayOptions OptionsFromFlags() {
  weir::testing::WPayOptions o;
  o.num_events = absl::GetFlag(FLAGS_events);
  o.seed = absl::GetFlag(FLAGS_seed);
  o.num_users = absl::GetFlag(FLAGS_users);
  o.num_merchants = absl::GetFlag(FLAGS_merchants);
  o.zipf_exponent = absl::GetFlag(FLAGS_zipf);
  o.num_partitions = absl::GetFlag(FLAGS_partitions);
  o.start = absl::GetFlag(FLAGS_start);
  o.events_per_millisecond = absl::GetFlag(FLAGS_events_per_ms);
  o.disorder_fraction = absl::GetFlag(FLAGS_disorder);
  o.max_disorder = absl::Milliseconds(absl::GetFlag(FLAGS_max_disorder_ms));
  o.late_fraction = absl::GetFlag(FLAGS_late);
  o.min_lateness = absl::Milliseconds(absl::GetFlag(FLAGS_min_lateness_ms));
  o.max_lateness = absl::Milliseconds(absl::GetFlag(FLAGS_max_lateness_ms));
  o.null_amount_fraction = absl::GetFlag(FLAGS_null);
  o.malformed_fraction = absl::GetFlag(FLAGS_malformed);
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  weir::tools::ParseCommandLine(argc, argv, {.usage = kUsage});
  Format format = Format::kJson;
  if (const std::string f = absl::GetFlag(FLAGS_format); f == "key") {
    format = Format::kKey;
  } else if (f == "full") {
    format = Format::kFull;
  } else if (f != "json") {
    std::fprintf(stderr, "weir-gen: --format wants json, key or full: %s\n",
                 f.c_str());
    return 2;
  }
  auto gen = weir::testing::WPayGenerator::Create(OptionsFromFlags());
  if (!gen.ok()) {
    std::fprintf(stderr, "weir-gen: %s\n",
                 std::string(gen.status().message()).c_str());
    return 2;
  }

  static char buffer[1 << 20];
  std::setvbuf(stdout, buffer, _IOFBF, sizeof(buffer));
  weir::testing::WPayEvent event;
  std::string line;
  while ((*gen)->Next(event)) {
    line.clear();
    switch (format) {
      case Format::kJson:
        break;
      case Format::kKey:
        absl::StrAppend(&line, event.user_id, "\t");
        break;
      case Format::kFull:
        absl::StrAppend(&line, event.partition, "\t", event.offset, "\t",
                        event.user_id, "\t", event.late ? 1 : 0, "\t",
                        weir::testing::MalformedKindName(event.malformed),
                        "\t");
        break;
    }
    line.append(event.json);
    line.push_back('\n');
    if (std::fwrite(line.data(), 1, line.size(), stdout) != line.size()) {
      std::fprintf(stderr, "weir-gen: cannot write to stdout: %s\n",
                   std::strerror(errno));
      return 1;
    }
  }
  if (std::fflush(stdout) != 0) {
    std::fprintf(stderr, "weir-gen: cannot write to stdout: %s\n",
                 std::strerror(errno));
    return 1;
  }
  return 0;
}
