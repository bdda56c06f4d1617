// weir-gen: prints the W-PAY workload (include/weir/testing/wpay.h), one
// event per line, to stdout.
//
//   weir-gen --events=1000000 --seed=7 --partitions=16 | weir-produce ...
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

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "weir/testing/wpay.h"

namespace {

constexpr char kUsage[] =
    "usage: weir-gen [flags]\n"
    "  --events=N            events to print (default 1000000)\n"
    "  --seed=N              random seed (default 1)\n"
    "  --users=N             distinct users, Zipf-popular (default 1000000)\n"
    "  --merchants=N         distinct merchants (default 50000)\n"
    "  --zipf=S              Zipf exponent of user popularity (default 1.0)\n"
    "  --partitions=N        Kafka partitions, for --format=full (default 1)\n"
    "  --start=MS            in-order time of the first event, ms since the\n"
    "                        epoch (default 1767225600000)\n"
    "  --events-per-ms=N     events per ms of event time (default 2)\n"
    "  --disorder=F          fraction moved back up to --max-disorder-ms\n"
    "                        (default 0.10)\n"
    "  --max-disorder-ms=N   (default 5000)\n"
    "  --late=F              fraction moved back by [--min-lateness-ms,\n"
    "                        --max-lateness-ms] (default 0.005)\n"
    "  --min-lateness-ms=N   (default 120000)\n"
    "  --max-lateness-ms=N   (default 600000)\n"
    "  --null=F              fraction with a null amount (default 0.01)\n"
    "  --malformed=F         fraction of corrupted lines (default 0.002)\n"
    "  --format=json|key|full  line format (default json)\n";

enum class Format { kJson, kKey, kFull };

bool ParseFlag(absl::string_view arg, weir::testing::WPayOptions& o,
               Format& format, std::string& error) {
  if (arg.substr(0, 2) != "--") {
    error = absl::StrCat("not a flag: ", arg);
    return false;
  }
  arg.remove_prefix(2);
  const size_t eq = arg.find('=');
  if (eq == absl::string_view::npos) {
    error = absl::StrCat("flag --", arg, " needs =value");
    return false;
  }
  const absl::string_view name = arg.substr(0, eq);
  const absl::string_view value = arg.substr(eq + 1);
  int64_t i = 0;
  double d = 0;
  bool ok = true;
  auto as_int = [&](int64_t& out) {
    ok = absl::SimpleAtoi(value, &i);
    if (ok) out = i;
  };
  auto as_ms = [&](absl::Duration& out) {
    ok = absl::SimpleAtoi(value, &i);
    if (ok) out = absl::Milliseconds(i);
  };
  auto as_double = [&](double& out) {
    ok = absl::SimpleAtod(value, &d);
    if (ok) out = d;
  };
  if (name == "events") {
    as_int(o.num_events);
  } else if (name == "seed") {
    uint64_t seed = 0;
    ok = absl::SimpleAtoi(value, &seed);
    if (ok) o.seed = seed;
  } else if (name == "users") {
    as_int(o.num_users);
  } else if (name == "merchants") {
    as_int(o.num_merchants);
  } else if (name == "zipf") {
    as_double(o.zipf_exponent);
  } else if (name == "partitions") {
    ok = absl::SimpleAtoi(value, &o.num_partitions);
  } else if (name == "start") {
    as_int(o.start);
  } else if (name == "events-per-ms") {
    ok = absl::SimpleAtoi(value, &o.events_per_millisecond);
  } else if (name == "disorder") {
    as_double(o.disorder_fraction);
  } else if (name == "max-disorder-ms") {
    as_ms(o.max_disorder);
  } else if (name == "late") {
    as_double(o.late_fraction);
  } else if (name == "min-lateness-ms") {
    as_ms(o.min_lateness);
  } else if (name == "max-lateness-ms") {
    as_ms(o.max_lateness);
  } else if (name == "null") {
    as_double(o.null_amount_fraction);
  } else if (name == "malformed") {
    as_double(o.malformed_fraction);
  } else if (name == "format") {
    if (value == "json") {
      format = Format::kJson;
    } else if (value == "key") {
      format = Format::kKey;
    } else if (value == "full") {
      format = Format::kFull;
    } else {
      ok = false;
    }
  } else {
    error = absl::StrCat("unknown flag --", name);
    return false;
  }
  if (!ok) error = absl::StrCat("bad value for --", name, ": ", value);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  weir::testing::WPayOptions options;
  Format format = Format::kJson;
  for (int a = 1; a < argc; ++a) {
    const absl::string_view arg = argv[a];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    std::string error;
    if (!ParseFlag(arg, options, format, error)) {
      std::fprintf(stderr, "weir-gen: %s\n%s", error.c_str(), kUsage);
      return 2;
    }
  }
  auto gen = weir::testing::WPayGenerator::Create(options);
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
