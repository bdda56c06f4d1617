// Implementation of weir/shadow.h.

#include "weir/shadow.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "weir/dlq.h"
#include "weir/internal/json_string.h"
#include "weir/internal/jsonl_file.h"
#include "weir/late_records.h"
#include "weir/status_macros.h"

namespace weir {

namespace {

// A plain decimal number's canonical text ("-012.500" -> "-12.5", "-0" ->
// "0"), or nullopt if `text` is not one (an exponent, "nan", ...).
std::optional<std::string> CanonicalDecimal(absl::string_view text) {
  absl::string_view t = absl::StripAsciiWhitespace(text);
  bool negative = false;
  if (!t.empty() && (t[0] == '-' || t[0] == '+')) {
    negative = t[0] == '-';
    t.remove_prefix(1);
  }
  const size_t dot = t.find('.');
  absl::string_view whole = t.substr(0, dot);
  absl::string_view frac =
      dot == absl::string_view::npos ? absl::string_view() : t.substr(dot + 1);
  if (whole.empty() && frac.empty()) return std::nullopt;
  for (absl::string_view part : {whole, frac}) {
    for (char c : part) {
      if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
        return std::nullopt;
      }
    }
  }
  while (!whole.empty() && whole.front() == '0') whole.remove_prefix(1);
  while (!frac.empty() && frac.back() == '0') frac.remove_suffix(1);
  if (whole.empty() && frac.empty()) return std::string("0");
  std::string out = negative ? "-" : "";
  absl::StrAppend(&out, whole.empty() ? "0" : whole);
  if (!frac.empty()) absl::StrAppend(&out, ".", frac);
  return out;
}

std::string Shown(const std::optional<std::string>& v) {
  return v.has_value() ? *v : "null";
}

std::string FormatTime(int64_t ms) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromUnixMillis(ms),
                          absl::UTCTimeZone());
}

std::string RuleText(const ShadowRule& r) {
  if (r.kind == ShadowRule::Kind::kExact) return "exact";
  std::string s = absl::StrCat("relative ", r.relative);
  if (r.absolute > 0) absl::StrAppend(&s, " or absolute ", r.absolute);
  return s;
}

using Key =
    std::tuple<std::string, std::string, int64_t>;  // entity, feature, start

struct Outcome {
  enum Kind { kEqual, kWithin, kDivergent } kind = kEqual;
  double abs = 0;
  double rel = 0;
};

Outcome Compare(const std::optional<std::string>& online,
                const std::optional<std::string>& batch,
                const ShadowRule& rule) {
  Outcome o;
  if (!online.has_value() || !batch.has_value()) {
    o.kind = online.has_value() == batch.has_value() ? Outcome::kEqual
                                                     : Outcome::kDivergent;
    if (o.kind == Outcome::kDivergent) o.rel = INFINITY;
    return o;
  }
  const std::optional<std::string> a = CanonicalDecimal(*online);
  const std::optional<std::string> b = CanonicalDecimal(*batch);
  if (a.has_value() && b.has_value() && *a == *b) return o;
  if (!a.has_value() && !b.has_value() && *online == *batch) return o;
  double x = 0;
  double y = 0;
  if (!absl::SimpleAtod(*online, &x) || !absl::SimpleAtod(*batch, &y)) {
    // Not numbers (a first/last of a string field): text must match.
    o.kind = Outcome::kDivergent;
    o.rel = INFINITY;
    return o;
  }
  o.abs = std::fabs(x - y);
  const double scale = std::max(std::fabs(x), std::fabs(y));
  o.rel = scale > 0 ? o.abs / scale : 0;
  if (o.abs == 0) return o;  // "1e3" and "1000"
  if (rule.kind == ShadowRule::Kind::kTolerance &&
      (o.rel <= rule.relative || o.abs <= rule.absolute)) {
    o.kind = Outcome::kWithin;
  } else {
    o.kind = Outcome::kDivergent;
  }
  return o;
}

// The last value per key of `values` within the options' range.
std::map<Key, std::optional<std::string>> Index(
    absl::Span<const ShadowValue> values, const ShadowOptions& options) {
  std::map<Key, std::optional<std::string>> out;
  for (const ShadowValue& v : values) {
    if (options.from_ms.has_value() && v.window_start_ms < *options.from_ms) {
      continue;
    }
    if (options.to_ms.has_value() && v.window_start_ms >= *options.to_ms) {
      continue;
    }
    if (!options.features.empty() && options.features.count(v.feature) == 0) {
      continue;
    }
    out[{v.entity, v.feature, v.window_start_ms}] = v.value;
  }
  return out;
}

std::string JsonString(absl::string_view s) {
  std::string out;
  internal::AppendJsonString(std::string_view(s.data(), s.size()), &out);
  return out;
}

// A double as JSON (no inf/nan in JSON: the largest double stands in).
std::string JsonNumber(double d) {
  if (std::isnan(d)) return "null";
  if (std::isinf(d)) return "1.7976931348623157e308";
  return absl::StrFormat("%.17g", d);
}

std::string PromLabel(absl::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

// Splits one CSV record (RFC 4180 quoting, no newlines inside fields).
absl::StatusOr<std::vector<std::string>> SplitCsv(absl::string_view line,
                                                  int64_t line_number) {
  std::vector<std::string> fields;
  std::string field;
  size_t i = 0;
  while (true) {
    field.clear();
    if (i < line.size() && line[i] == '"') {
      ++i;
      while (true) {
        if (i >= line.size()) {
          return absl::InvalidArgumentError(
              absl::StrCat("line ", line_number, ": unterminated quote"));
        }
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            field.push_back('"');
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        field.push_back(line[i++]);
      }
      if (i < line.size() && line[i] != ',') {
        return absl::InvalidArgumentError(
            absl::StrCat("line ", line_number, ": text after a closing quote"));
      }
    } else {
      while (i < line.size() && line[i] != ',') field.push_back(line[i++]);
    }
    fields.push_back(field);
    if (i >= line.size()) break;
    ++i;  // the comma
  }
  return fields;
}

absl::StatusOr<int64_t> ParseWindowStart(absl::string_view text,
                                         int64_t line_number) {
  text = absl::StripAsciiWhitespace(text);
  int64_t ms = 0;
  if (absl::SimpleAtoi(text, &ms)) return ms;
  absl::Time t;
  std::string err;
  if (absl::ParseTime(absl::RFC3339_full, text, &t, &err)) {
    return absl::ToUnixMillis(t);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("line ", line_number, ": window_start \"", text,
                   "\" is neither ms since the epoch nor an RFC 3339 time"));
}

}  // namespace

absl::Status ShadowOptions::Validate() const {
  auto check_rule = [](const std::string& field, const ShadowRule& r) {
    if (!(r.relative >= 0) || !(r.absolute >= 0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("ShadowOptions.", field, ": tolerances must be >= 0"));
    }
    return absl::OkStatus();
  };
  WEIR_RETURN_IF_ERROR(check_rule("default_rule", default_rule));
  for (const auto& [name, rule] : rules) {
    WEIR_RETURN_IF_ERROR(check_rule(absl::StrCat("rules[", name, "]"), rule));
  }
  if (from_ms.has_value() && to_ms.has_value() && *from_ms >= *to_ms) {
    return absl::InvalidArgumentError(
        "ShadowOptions.from_ms must be before ShadowOptions.to_ms");
  }
  if (!(max_divergent_share >= 0 && max_divergent_share <= 1)) {
    return absl::InvalidArgumentError(
        "ShadowOptions.max_divergent_share must be in [0, 1]");
  }
  if (!(max_relative_difference >= 0)) {
    return absl::InvalidArgumentError(
        "ShadowOptions.max_relative_difference must be >= 0");
  }
  return absl::OkStatus();
}

double ShadowFeatureReport::divergent_share() const {
  const int64_t missing = missing_online + missing_batch;
  const int64_t total = compared + missing;
  if (total == 0) return 0;
  return static_cast<double>(divergent + missing) / static_cast<double>(total);
}

ShadowReport CompareShadow(absl::Span<const ShadowValue> online,
                           absl::Span<const ShadowValue> batch,
                           const ShadowOptions& options,
                           absl::Span<const ShadowLateRecord> late) {
  const std::map<Key, std::optional<std::string>> on = Index(online, options);
  const std::map<Key, std::optional<std::string>> off = Index(batch, options);
  // The batch windows late records fall in: per (entity, feature), the
  // batch window with the largest start at or before the record's time.
  std::set<Key> explained;
  for (const ShadowLateRecord& l : late) {
    for (const std::string& feature : l.features) {
      auto it = off.upper_bound({l.entity, feature, l.event_time_ms});
      if (it == off.begin()) continue;
      --it;
      if (std::get<0>(it->first) == l.entity &&
          std::get<1>(it->first) == feature) {
        explained.insert(it->first);
      }
    }
  }
  // The newest online window per (entity, feature).
  std::map<std::pair<std::string, std::string>, int64_t> newest_online;
  for (const auto& [key, value] : on) {
    auto [it, inserted] = newest_online.try_emplace(
        {std::get<0>(key), std::get<1>(key)}, std::get<2>(key));
    if (!inserted) it->second = std::max(it->second, std::get<2>(key));
  }

  std::map<std::string, ShadowFeatureReport> by_feature;
  auto report_for = [&](const std::string& feature) -> ShadowFeatureReport& {
    auto [it, inserted] = by_feature.try_emplace(feature);
    if (inserted) {
      it->second.feature = feature;
      auto r = options.rules.find(feature);
      it->second.rule =
          r != options.rules.end() ? r->second : options.default_rule;
    }
    return it->second;
  };
  auto sample = [&](ShadowFeatureReport& r, const Key& key,
                    std::string online_text, std::string batch_text,
                    std::string why) {
    if (r.samples.size() >= options.sample_size) return;
    r.samples.push_back({std::get<0>(key), std::get<2>(key),
                         std::move(online_text), std::move(batch_text),
                         std::move(why)});
  };

  for (const auto& [key, value] : on) {
    ShadowFeatureReport& r = report_for(std::get<1>(key));
    auto b = off.find(key);
    if (b == off.end()) {
      ++r.missing_batch;
      sample(r, key, Shown(value), "", "missing in batch");
      continue;
    }
    ++r.compared;
    const Outcome o = Compare(value, b->second, r.rule);
    if (o.kind == Outcome::kDivergent && explained.count(key) > 0) {
      ++r.explained_by_late;
      continue;
    }
    switch (o.kind) {
      case Outcome::kEqual:
        ++r.equal;
        break;
      case Outcome::kWithin:
        ++r.within_tolerance;
        break;
      case Outcome::kDivergent:
        ++r.divergent;
        sample(r, key, Shown(value), Shown(b->second), "divergent");
        break;
    }
    r.max_abs_difference = std::max(r.max_abs_difference, o.abs);
    r.max_rel_difference = std::max(r.max_rel_difference, o.rel);
  }
  for (const auto& [key, value] : off) {
    if (on.count(key) > 0) continue;
    bool missing = true;
    if (options.online == OnlineHolds::kNewestWindow) {
      // An older window than the store's newest was overwritten, not lost.
      auto n = newest_online.find({std::get<0>(key), std::get<1>(key)});
      missing = n == newest_online.end() || n->second < std::get<2>(key);
    }
    if (!missing) continue;
    ShadowFeatureReport& r = report_for(std::get<1>(key));
    if (explained.count(key) > 0) {
      ++r.explained_by_late;
      continue;
    }
    ++r.missing_online;
    sample(r, key, "", Shown(value), "missing online");
  }

  ShadowReport report;
  for (auto& [name, r] : by_feature) {
    const double share = r.divergent_share();
    if (share > options.max_divergent_share) {
      report.reasons.push_back(absl::StrFormat(
          "%s: %.4g%% of values diverge or are missing (%d divergent, %d "
          "missing online, %d missing in batch), above %.4g%%",
          name, share * 100, r.divergent, r.missing_online, r.missing_batch,
          options.max_divergent_share * 100));
    }
    if (r.max_rel_difference > options.max_relative_difference) {
      report.reasons.push_back(absl::StrFormat(
          "%s: a value differs by %s of its magnitude, above %.4g%%", name,
          std::isinf(r.max_rel_difference)
              ? std::string("everything (null or text against a value)")
              : absl::StrFormat("%.4g%%", r.max_rel_difference * 100),
          options.max_relative_difference * 100));
    }
    report.features.push_back(std::move(r));
  }
  report.alert = !report.reasons.empty();
  return report;
}

std::string ShadowReport::ToText() const {
  std::string out = absl::StrFormat(
      "%-28s %-22s %9s %9s %9s %9s %9s %9s %9s %11s %11s\n", "feature", "rule",
      "compared", "equal", "within", "diverge", "miss-on", "miss-bat", "late",
      "max-abs", "max-rel");
  for (const ShadowFeatureReport& f : features) {
    absl::StrAppendFormat(
        &out, "%-28s %-22s %9d %9d %9d %9d %9d %9d %9d %11.4g %11.4g\n",
        f.feature, RuleText(f.rule), f.compared, f.equal, f.within_tolerance,
        f.divergent, f.missing_online, f.missing_batch, f.explained_by_late,
        f.max_abs_difference, f.max_rel_difference);
  }
  absl::StrAppend(&out, "\n", alert ? "ALERT" : "OK", "\n");
  for (const std::string& r : reasons) absl::StrAppend(&out, "  ", r, "\n");
  for (const ShadowFeatureReport& f : features) {
    if (f.samples.empty()) continue;
    absl::StrAppend(&out, "\nsample of ", f.feature, ":\n");
    for (const ShadowSample& s : f.samples) {
      absl::StrAppendFormat(&out, "  %-16s %s  online=%s batch=%s  (%s)\n",
                            s.entity, FormatTime(s.window_start_ms),
                            s.online.empty() ? "-" : s.online,
                            s.batch.empty() ? "-" : s.batch, s.why);
    }
  }
  return out;
}

std::string ShadowReport::ToJson() const {
  std::string out =
      absl::StrCat("{\"alert\":", alert ? "true" : "false", ",\"reasons\":[");
  for (size_t i = 0; i < reasons.size(); ++i) {
    absl::StrAppend(&out, i > 0 ? "," : "", JsonString(reasons[i]));
  }
  absl::StrAppend(&out, "],\"features\":[");
  for (size_t i = 0; i < features.size(); ++i) {
    const ShadowFeatureReport& f = features[i];
    absl::StrAppend(
        &out, i > 0 ? "," : "", "{\"feature\":", JsonString(f.feature),
        ",\"rule\":", JsonString(RuleText(f.rule)),
        ",\"compared\":", f.compared, ",\"equal\":", f.equal,
        ",\"within_tolerance\":", f.within_tolerance,
        ",\"divergent\":", f.divergent,
        ",\"missing_online\":", f.missing_online,
        ",\"missing_batch\":", f.missing_batch,
        ",\"explained_by_late\":", f.explained_by_late,
        ",\"divergent_share\":", JsonNumber(f.divergent_share()),
        ",\"max_abs_difference\":", JsonNumber(f.max_abs_difference),
        ",\"max_rel_difference\":", JsonNumber(f.max_rel_difference),
        ",\"samples\":[");
    for (size_t j = 0; j < f.samples.size(); ++j) {
      const ShadowSample& s = f.samples[j];
      absl::StrAppend(&out, j > 0 ? "," : "",
                      "{\"entity\":", JsonString(s.entity),
                      ",\"window_start\":", s.window_start_ms,
                      ",\"online\":", JsonString(s.online),
                      ",\"batch\":", JsonString(s.batch),
                      ",\"why\":", JsonString(s.why), "}");
    }
    absl::StrAppend(&out, "]}");
  }
  absl::StrAppend(&out, "]}\n");
  return out;
}

std::string ShadowReport::ToPrometheus() const {
  struct Gauge {
    const char* name;
    const char* help;
    double (*get)(const ShadowFeatureReport&);
  };
  static constexpr Gauge kGauges[] = {
      {"weir_shadow_compared", "Values present on both sides.",
       [](const ShadowFeatureReport& f) { return double(f.compared); }},
      {"weir_shadow_divergent", "Values outside the feature's rule.",
       [](const ShadowFeatureReport& f) { return double(f.divergent); }},
      {"weir_shadow_missing_online", "Batch values the online store lacks.",
       [](const ShadowFeatureReport& f) { return double(f.missing_online); }},
      {"weir_shadow_missing_batch", "Online values the batch output lacks.",
       [](const ShadowFeatureReport& f) { return double(f.missing_batch); }},
      {"weir_shadow_explained_by_late",
       "Differences explained by records the stream judged late.",
       [](const ShadowFeatureReport& f) {
         return double(f.explained_by_late);
       }},
      {"weir_shadow_divergence_ratio",
       "Share of values divergent or missing on either side.",
       [](const ShadowFeatureReport& f) { return f.divergent_share(); }},
      {"weir_shadow_max_relative_difference",
       "Largest relative difference of a compared value.",
       [](const ShadowFeatureReport& f) { return f.max_rel_difference; }},
  };
  std::string out;
  for (const Gauge& g : kGauges) {
    absl::StrAppend(&out, "# HELP ", g.name, " ", g.help, "\n# TYPE ", g.name,
                    " gauge\n");
    for (const ShadowFeatureReport& f : features) {
      const double v = g.get(f);
      absl::StrAppend(
          &out, g.name, "{feature=\"", PromLabel(f.feature), "\"} ",
          std::isinf(v) ? std::string("+Inf") : absl::StrFormat("%.17g", v),
          "\n");
    }
  }
  absl::StrAppend(&out,
                  "# HELP weir_shadow_alert 1 if the comparison alerts.\n"
                  "# TYPE weir_shadow_alert gauge\nweir_shadow_alert ",
                  alert ? 1 : 0, "\n");
  return out;
}

std::vector<ShadowValue> ShadowValuesFromUpdates(
    absl::Span<const FeatureUpdate> updates) {
  // The newest version per (key, feature, window).
  std::map<Key, const FeatureUpdate*> newest;
  for (const FeatureUpdate& u : updates) {
    const FeatureUpdate*& slot = newest[{u.key, u.feature, u.window.start}];
    if (slot == nullptr || u.NewerThan(*slot)) slot = &u;
  }
  std::vector<ShadowValue> out;
  out.reserve(newest.size());
  for (const auto& [key, u] : newest) {
    ShadowValue v;
    v.entity = std::get<0>(key);
    v.feature = std::get<1>(key);
    v.window_start_ms = std::get<2>(key);
    if (!u->value.is_null()) v.value = u->value.ToString();
    out.push_back(std::move(v));
  }
  return out;
}

absl::StatusOr<std::vector<ShadowLateRecord>> ReadShadowLateRecords(
    const std::string& path) {
  WEIR_ASSIGN_OR_RETURN(std::vector<DeadLetterRecord> records,
                        ReadDeadLetterFile(path));
  std::set<std::tuple<std::string, int32_t, int64_t>> seen;
  std::vector<ShadowLateRecord> out;
  for (const DeadLetterRecord& r : records) {
    if (r.error_type != kLateRecordErrorType) continue;
    if (!seen.emplace(r.topic, r.partition, r.offset).second) continue;
    absl::StatusOr<LateRecordInfo> info = ParseLateRecord(r);
    if (!info.ok()) {
      return absl::DataLossError(absl::StrCat(path, ": ", r.topic, "/",
                                              r.partition, "@", r.offset, ": ",
                                              info.status().message()));
    }
    out.push_back({r.key, info->event_time, std::move(info->features)});
  }
  return out;
}

absl::StatusOr<std::vector<ShadowValue>> ParseShadowCsv(
    std::string_view input) {
  const absl::string_view text(input.data(), input.size());
  std::vector<ShadowValue> out;
  int columns[4] = {-1, -1, -1, -1};  // entity, feature, window_start, value
  size_t width = 0;
  bool header = true;
  int64_t line_number = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == absl::string_view::npos) end = text.size();
    absl::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    WEIR_ASSIGN_OR_RETURN(std::vector<std::string> fields,
                          SplitCsv(line, line_number));
    if (header) {
      static constexpr const char* kNames[] = {"entity", "feature",
                                               "window_start", "value"};
      for (size_t i = 0; i < fields.size(); ++i) {
        const std::string name =
            absl::AsciiStrToLower(absl::StripAsciiWhitespace(fields[i]));
        for (int c = 0; c < 4; ++c) {
          if (name == kNames[c]) columns[c] = static_cast<int>(i);
        }
      }
      for (int c = 0; c < 4; ++c) {
        if (columns[c] < 0) {
          return absl::InvalidArgumentError(absl::StrCat(
              "line 1: the header has no column \"", kNames[c], "\""));
        }
      }
      width = fields.size();
      header = false;
      continue;
    }
    if (fields.size() != width) {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", line_number, ": ", fields.size(),
                       " fields, the header has ", width));
    }
    ShadowValue v;
    v.entity = fields[columns[0]];
    v.feature = fields[columns[1]];
    WEIR_ASSIGN_OR_RETURN(v.window_start_ms,
                          ParseWindowStart(fields[columns[2]], line_number));
    std::string value(absl::StripAsciiWhitespace(fields[columns[3]]));
    if (!value.empty() && value != "null" && value != "NULL") {
      v.value = std::move(value);
    }
    out.push_back(std::move(v));
  }
  if (header) return absl::InvalidArgumentError("no header line");
  return out;
}

absl::StatusOr<std::vector<ShadowValue>> ReadShadowCsv(
    const std::string& path) {
  WEIR_ASSIGN_OR_RETURN(std::string text,
                        internal::ReadWholeFile(path, "batch CSV"));
  absl::StatusOr<std::vector<ShadowValue>> values = ParseShadowCsv(text);
  if (!values.ok()) {
    return absl::Status(values.status().code(),
                        absl::StrCat(path, ": ", values.status().message()));
  }
  return values;
}

}  // namespace weir
