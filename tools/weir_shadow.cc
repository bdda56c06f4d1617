// weir-shadow: compares the feature values a streaming pipeline served with
// the values a batch system computed for the same windows (weir/shadow.h),
// prints a report and exits non-zero when the comparison alerts, so a
// scheduler can page on training/serving skew.
//
//   $ weir-shadow --online=file:/var/lib/ff/features.jsonl \
//         --batch=/exports/features.csv --tolerance=amount_avg_1d=1e-9 \
//         --tolerance=distinct_merchants_1h=0.0244 --json_report=r.json \
//         --late_output=file:/var/lib/ff/late.jsonl
//   $ weir-shadow --online=redis://127.0.0.1:6379 --redis_prefix=staging: \
//         --batch=redis://127.0.0.1:6379 --batch_redis_prefix=live: \
//         --from=2026-12-05T00:00:00Z      # a replay against the live store
//
// Exit status: 0 no alert, 1 the comparison alerts, 2 bad flags or input.

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "tools/common/command_line.h"
#include "weir/redis/redis_reader.h"
#include "weir/shadow.h"
#include "weir/sinks.h"
#include "weir/status_macros.h"

ABSL_FLAG(std::string, online, "",
          "The online side: file:PATH, a feature file FileSink wrote (every "
          "window), or redis://HOST:PORT, the hashes a Redis sink wrote (the "
          "newest window per entity and feature). Required.");
ABSL_FLAG(std::string, redis_prefix, "",
          "With --online=redis://: the sink's key prefix.");
ABSL_FLAG(int, redis_db, 0, "With redis:// stores: the database number.");
ABSL_FLAG(std::string, batch, "",
          "The batch side: a CSV file with columns entity, feature, "
          "window_start (ms or RFC 3339) and value; or another store, "
          "file:PATH or redis://HOST:PORT (with --batch_redis_prefix), e.g. "
          "the live store against a replay's staging store. Required.");
ABSL_FLAG(std::string, batch_redis_prefix, "",
          "With --batch=redis://: the key prefix of the store compared "
          "against (e.g. the live service's, against a replay's staging "
          "store in --online).");
ABSL_FLAG(std::string, late_output, "",
          "The stream's late records: file:PATH (or PATH), the service's "
          "--late_output file. Differences they explain are reported apart "
          "(column late) and do not alert.");
ABSL_FLAG(std::vector<std::string>, features, {},
          "Compare only these features (comma-separated), e.g. those the "
          "batch system computes. Default: every feature.");
ABSL_FLAG(std::vector<std::string>, tolerance, {},
          "FEATURE=RELATIVE[:ABSOLUTE], repeatable or comma-separated: "
          "compare FEATURE within this tolerance instead of exactly (mean, "
          "stddev: e.g. 1e-9; sketches: their documented error).");
ABSL_FLAG(std::string, from, "",
          "Compare only windows starting at or after this RFC 3339 time.");
ABSL_FLAG(std::string, to, "",
          "Compare only windows starting before this RFC 3339 time.");
ABSL_FLAG(double, max_divergent_share, 0.001,
          "Alert when more than this share of values diverge or are missing.");
ABSL_FLAG(double, max_relative_difference, 0.01,
          "Alert when any value differs by more than this fraction.");
ABSL_FLAG(int, sample, 10, "Divergent rows shown per feature.");
ABSL_FLAG(std::string, json_report, "", "Also write the report as JSON here.");
ABSL_FLAG(std::string, prometheus_report, "",
          "Also write the report as Prometheus text here (for a textfile "
          "collector).");

namespace {

absl::StatusOr<int64_t> ParseTimeFlag(const char* name,
                                      const std::string& text) {
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, text, &t, &err)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, "=", text, ": ", err));
  }
  return absl::ToUnixMillis(t);
}

absl::StatusOr<weir::ShadowOptions> Options() {
  weir::ShadowOptions o;
  for (const std::string& t : absl::GetFlag(FLAGS_tolerance)) {
    std::vector<std::string> parts = absl::StrSplit(t, '=');
    std::vector<std::string> numbers;
    if (parts.size() == 2) numbers = absl::StrSplit(parts[1], ':');
    double relative = 0;
    double absolute = 0;
    if (parts.size() != 2 || parts[0].empty() || numbers.empty() ||
        numbers.size() > 2 || !absl::SimpleAtod(numbers[0], &relative) ||
        (numbers.size() == 2 && !absl::SimpleAtod(numbers[1], &absolute))) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--tolerance=", t, ": expected FEATURE=RELATIVE[:ABSOLUTE]"));
    }
    o.rules[parts[0]] = weir::ShadowRule::Tolerance(relative, absolute);
  }
  if (!absl::GetFlag(FLAGS_from).empty()) {
    WEIR_ASSIGN_OR_RETURN(o.from_ms,
                          ParseTimeFlag("from", absl::GetFlag(FLAGS_from)));
  }
  if (!absl::GetFlag(FLAGS_to).empty()) {
    WEIR_ASSIGN_OR_RETURN(o.to_ms,
                          ParseTimeFlag("to", absl::GetFlag(FLAGS_to)));
  }
  for (const std::string& f : absl::GetFlag(FLAGS_features)) {
    if (!f.empty()) o.features.insert(f);
  }
  o.max_divergent_share = absl::GetFlag(FLAGS_max_divergent_share);
  o.max_relative_difference = absl::GetFlag(FLAGS_max_relative_difference);
  if (absl::GetFlag(FLAGS_sample) < 0) {
    return absl::InvalidArgumentError("--sample must be >= 0");
  }
  o.sample_size = static_cast<size_t>(absl::GetFlag(FLAGS_sample));
  WEIR_RETURN_IF_ERROR(o.Validate());
  return o;
}

absl::Status WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  if (!out) return absl::UnavailableError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

// The values of a store the service wrote: `file:PATH`, a feature file
// (every window), or `redis://HOST:PORT`, a Redis sink's hashes under
// `prefix` (the newest window per entity and feature). Sets `*holds`.
absl::StatusOr<std::vector<weir::ShadowValue>> ReadStore(
    const char* flag, const std::string& value, const std::string& prefix,
    weir::OnlineHolds* holds) {
  absl::string_view rest = value;
  if (absl::ConsumePrefix(&rest, "file:")) {
    *holds = weir::OnlineHolds::kEveryWindow;
    WEIR_ASSIGN_OR_RETURN(std::vector<weir::FeatureUpdate> updates,
                          weir::ReadFeatureFile(std::string(rest)));
    return weir::ShadowValuesFromUpdates(updates);
  }
  if (absl::ConsumePrefix(&rest, "redis://")) {
    *holds = weir::OnlineHolds::kNewestWindow;
    weir::RedisSinkOptions where;
    const size_t colon = rest.rfind(':');
    if (colon == absl::string_view::npos ||
        !absl::SimpleAtoi(rest.substr(colon + 1), &where.port)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, "=", value, ": expected redis://HOST:PORT"));
    }
    where.host = std::string(rest.substr(0, colon));
    where.key_prefix = prefix;
    where.db = absl::GetFlag(FLAGS_redis_db);
    WEIR_RETURN_IF_ERROR(where.Validate());
    WEIR_ASSIGN_OR_RETURN(std::vector<weir::RedisFeatureValue> stored,
                          weir::ReadRedisFeatures(where));
    std::vector<weir::ShadowValue> out;
    out.reserve(stored.size());
    for (weir::RedisFeatureValue& v : stored) {
      out.push_back({std::move(v.entity), std::move(v.feature),
                     v.window_start_ms, std::move(v.value)});
    }
    return out;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "--", flag, "=", value, ": expected file:PATH or redis://HOST:PORT"));
}

absl::StatusOr<bool> Run() {
  WEIR_ASSIGN_OR_RETURN(weir::ShadowOptions options, Options());
  if (absl::GetFlag(FLAGS_batch).empty()) {
    return absl::InvalidArgumentError("--batch is required");
  }
  WEIR_ASSIGN_OR_RETURN(
      std::vector<weir::ShadowValue> online,
      ReadStore("online", absl::GetFlag(FLAGS_online),
                absl::GetFlag(FLAGS_redis_prefix), &options.online));
  // The batch side: a CSV export, or another store (a replay's staging
  // store against the live one).
  const std::string batch_flag = absl::GetFlag(FLAGS_batch);
  std::vector<weir::ShadowValue> batch;
  if (absl::StartsWith(batch_flag, "redis://") ||
      absl::StartsWith(batch_flag, "file:")) {
    weir::OnlineHolds ignored;
    WEIR_ASSIGN_OR_RETURN(
        batch, ReadStore("batch", batch_flag,
                         absl::GetFlag(FLAGS_batch_redis_prefix), &ignored));
  } else {
    WEIR_ASSIGN_OR_RETURN(batch, weir::ReadShadowCsv(batch_flag));
  }
  std::vector<weir::ShadowLateRecord> late;
  if (std::string path = absl::GetFlag(FLAGS_late_output); !path.empty()) {
    absl::string_view rest = path;
    absl::ConsumePrefix(&rest, "file:");
    WEIR_ASSIGN_OR_RETURN(late, weir::ReadShadowLateRecords(std::string(rest)));
  }
  const weir::ShadowReport report =
      weir::CompareShadow(online, batch, options, late);
  std::fputs(report.ToText().c_str(), stdout);
  if (!absl::GetFlag(FLAGS_json_report).empty()) {
    WEIR_RETURN_IF_ERROR(
        WriteFile(absl::GetFlag(FLAGS_json_report), report.ToJson()));
  }
  if (!absl::GetFlag(FLAGS_prometheus_report).empty()) {
    WEIR_RETURN_IF_ERROR(WriteFile(absl::GetFlag(FLAGS_prometheus_report),
                                   report.ToPrometheus()));
  }
  return report.alert;
}

}  // namespace

int main(int argc, char** argv) {
  weir::tools::ParseCommandLine(
      argc, argv,
      {.usage =
           "compares online feature values with a batch export; exit 1 on an "
           "alert.\nusage: weir-shadow --online=file:PATH|redis://HOST:PORT "
           "--batch=PATH.csv "
           "[--late_output=file:PATH] [--tolerance=FEATURE=REL ...]",
       .repeatable = {"tolerance"}});
  absl::StatusOr<bool> alert = Run();
  if (!alert.ok()) {
    std::fprintf(stderr, "weir-shadow: %s\n",
                 std::string(alert.status().message()).c_str());
    return 2;
  }
  return *alert ? 1 : 0;
}
