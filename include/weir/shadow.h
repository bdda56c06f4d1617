// -----------------------------------------------------------------------------
// File: shadow.h
// -----------------------------------------------------------------------------
//
// Shadow comparison: the values a streaming pipeline served (an online store)
// against the values a batch system computed for the same windows. Training/
// serving skew shows here first: a batch job's "average order value in the
// last 7 days" must equal the streaming value exactly for exact aggregates
// (count, decimal sum, min, max, first, last), within a floating-point
// tolerance for mean and standard deviation, and within the documented error
// for sketches (distinct count, quantiles).
//
// Both sides are lists of `ShadowValue`: one value of one feature of one
// entity for one window, keyed by the window's start. `CompareShadow` pairs
// them and reports, per feature, how many values were compared, equal,
// within tolerance, divergent, and missing on either side, the largest
// absolute and relative differences, and a sample of divergent rows with
// both values. The report renders as text, JSON and Prometheus text.
//
// Which windows count as missing online depends on what the store holds:
//   - every window (a FileSink feature file): every batch value in range
//     with no online value is missing online;
//   - the newest window per (entity, feature) (the Redis sink's layout):
//     each online value is compared with the batch value of its window, and
//     a batch value is missing online only if the store has nothing for
//     that (entity, feature) or only an older window (the stream is behind
//     or lost it); older batch windows were overwritten, not lost.
// An online value whose window the batch side lacks is missing in batch.
//
// Late records. A record the stream judged late (past the allowed lateness,
// weir/late_records.h) is in a batch system's input but not in the
// streaming value of the features it missed. Given the stream's late
// records (`ReadShadowLateRecords` reads the service's --late_output file),
// a divergent or missing-online value is "explained by late records" when a
// late record of its entity missed its feature and falls in its window; it
// is counted apart (`explained_by_late`) and not toward the alert. A late
// record falls in the batch window of its entity and feature with the
// largest start at or before its event time: the batch system saw the
// record, so it has that window (exact for tumbling and daily windows).
//
// Alerting follows the field's practice: the report alerts when more than
// `max_divergent_share` of the values compared (0.1% by default) diverge or
// are missing on either side, or when any value differs by more than
// `max_relative_difference` (1%) in magnitude.
//
// Threading: the functions hold no state and start no threads; the
// comparison is pure.
//
// Example:
//   weir::ShadowOptions options;
//   options.rules["amount_avg_1d"] = weir::ShadowRule::Tolerance(1e-9);
//   options.online = weir::OnlineHolds::kEveryWindow;
//   WEIR_ASSIGN_OR_RETURN(auto batch, weir::ReadShadowCsv("batch.csv"));
//   WEIR_ASSIGN_OR_RETURN(auto file, weir::ReadFeatureFile("f.jsonl"));
//   WEIR_ASSIGN_OR_RETURN(auto late,
//                         weir::ReadShadowLateRecords("late.jsonl"));
//   weir::ShadowReport report = weir::CompareShadow(
//       weir::ShadowValuesFromUpdates(file), batch, options, late);
//   std::cout << report.ToText();
//   return report.alert ? 1 : 0;

#ifndef WEIR_SHADOW_H_
#define WEIR_SHADOW_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "weir/sink.h"

namespace weir {

// One value of one feature of one entity for one window. `value` is the
// value's text as the online store or the batch export holds it ("12",
// "1234.50", "0.5", "3.2e-05"); nullopt for a null (nothing folded).
struct ShadowValue {
  std::string entity;
  std::string feature;
  int64_t window_start_ms = 0;
  std::optional<std::string> value;
};

// A record the stream judged late: in a batch system's input, but not in
// the streaming values of `features` (the features whose windows it missed).
struct ShadowLateRecord {
  std::string entity;
  int64_t event_time_ms = 0;
  std::vector<std::string> features;
};

// How the values of one feature are compared.
struct ShadowRule {
  enum class Kind {
    // Equal as decimal numbers ("1.50" equals "1.5", "-0" equals "0"); any
    // other difference diverges. For count, decimal sum, min, max, first,
    // last.
    kExact,
    // Equal within `relative` of the larger magnitude or within `absolute`
    // (whichever is looser). For mean and stddev (floating point) and the
    // sketches (their documented error).
    kTolerance,
  };
  Kind kind = Kind::kExact;
  double relative = 0;
  double absolute = 0;

  static ShadowRule Exact() { return {}; }
  static ShadowRule Tolerance(double relative, double absolute = 0) {
    return {Kind::kTolerance, relative, absolute};
  }
};

// What the online side holds (see the top of this file).
enum class OnlineHolds { kEveryWindow, kNewestWindow };

struct ShadowOptions {
  // Per feature; a feature without a rule uses `default_rule`.
  // Default: none
  std::map<std::string, ShadowRule> rules;
  // Default: ShadowRule::Exact()
  ShadowRule default_rule;

  // Default: OnlineHolds::kNewestWindow
  OnlineHolds online = OnlineHolds::kNewestWindow;

  // Only these features are compared (e.g. those the batch system computes
  // when the online store holds more). Default: every feature on either side
  std::set<std::string> features;

  // Only windows starting in [from_ms, to_ms) are compared; the overlap of
  // the two systems' coverage. Default: every window
  std::optional<int64_t> from_ms;
  std::optional<int64_t> to_ms;

  // Alert when (divergent + missing) / (compared + missing) is above this.
  // Default: 0.001 (0.1%)
  double max_divergent_share = 0.001;
  // Alert when any compared value differs by more than this fraction of the
  // larger magnitude. Default: 0.01 (1%)
  double max_relative_difference = 0.01;
  // Divergent or missing rows kept per feature for the report. Default: 10
  size_t sample_size = 10;

  // Returns kInvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

// One divergent or missing row, with both values ("" where a side has no
// value, "null" for a null).
struct ShadowSample {
  std::string entity;
  int64_t window_start_ms = 0;
  std::string online;
  std::string batch;
  std::string why;  // "divergent", "missing online", "missing in batch"
};

struct ShadowFeatureReport {
  std::string feature;
  ShadowRule rule;
  int64_t compared = 0;  // pairs with a value on both sides
  int64_t equal = 0;
  int64_t within_tolerance = 0;  // not equal, but within the rule
  int64_t divergent = 0;
  int64_t missing_online = 0;
  int64_t missing_batch = 0;
  // Divergent or missing online, but explained by late records: counted
  // here, not in `divergent` or `missing_online`, nor in the largest
  // differences, nor toward the alert (an explained pair with values on
  // both sides still counts in `compared`).
  int64_t explained_by_late = 0;
  double max_abs_difference = 0;
  double max_rel_difference = 0;
  std::vector<ShadowSample> samples;

  // (divergent + missing) / (compared + missing); 0 when nothing counted.
  double divergent_share() const;
};

struct ShadowReport {
  std::vector<ShadowFeatureReport> features;  // sorted by feature name
  bool alert = false;
  // Why it alerts, one line per reason; empty when it does not.
  std::vector<std::string> reasons;

  // A readable report: one row per feature, then the reasons and samples.
  std::string ToText() const;
  // The same as one JSON object.
  std::string ToJson() const;
  // Prometheus text exposition: weir_shadow_* gauges per feature and
  // weir_shadow_alert, for a node-exporter textfile collector or a push.
  std::string ToPrometheus() const;
};

// Pairs `online` with `batch` by (entity, feature, window start) and
// compares. Two values of the same key on one side: the last one counts.
// `late`: the stream's late records (see the top of this file).
ShadowReport CompareShadow(absl::Span<const ShadowValue> online,
                           absl::Span<const ShadowValue> batch,
                           const ShadowOptions& options,
                           absl::Span<const ShadowLateRecord> late = {});

// The late records of a late-record output file (FileDeadLetterQueue's JSON
// lines, weir/late_records.h: the service's --late_output=file:PATH), once
// each by (topic, partition, offset); the entity is the record's key (the
// Kafka message key). Lines of other error types are skipped. kNotFound if
// the file does not exist, kDataLoss for a bad line.
absl::StatusOr<std::vector<ShadowLateRecord>> ReadShadowLateRecords(
    const std::string& path);

// The newest update per (key, feature, window) of a feature file as
// shadow values (FeatureUpdate's value printed as the Redis sink stores it).
std::vector<ShadowValue> ShadowValuesFromUpdates(
    absl::Span<const FeatureUpdate> updates);

// A batch export as CSV: a header naming the columns `entity`, `feature`,
// `window_start` and `value` (in any order; other columns ignored), one row
// per value. `window_start` is ms since the epoch or an RFC 3339 UTC time
// ("2026-01-01T00:00:00Z"); an empty value or "null" is a null. Fields may
// be double-quoted ("" for a quote). kInvalidArgument names the line.
absl::StatusOr<std::vector<ShadowValue>> ParseShadowCsv(std::string_view text);
absl::StatusOr<std::vector<ShadowValue>> ReadShadowCsv(const std::string& path);

}  // namespace weir

#endif  // WEIR_SHADOW_H_
