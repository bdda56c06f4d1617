#include "weir/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace weir {
namespace internal {

// One metric name: what every registration under it agreed on, and its
// series. Never removed, so pointers to it stay valid; every field but
// `series` and `handle_prefixes` is immutable after creation.
struct MetricFamily {
  std::string name;
  std::string help;
  MetricType type = MetricType::kGauge;
  // Constant label names, then variable label names.
  std::vector<std::string> label_names;
  size_t num_variable = 0;
  std::vector<double> bounds;
  // By label values (in `label_names` order), which is the render order.
  std::map<std::vector<std::string>, std::shared_ptr<MetricSeries>> series;
  // The constant label values of every family handle on this name.
  std::set<std::vector<std::string>> handle_prefixes;
};

// One series. `labels`, `values` and the metric object are immutable after
// creation; only a callback series changes (its function is cleared when
// it is removed).
struct MetricSeries {
  MetricFamily* family = nullptr;
  std::vector<std::string> values;
  MetricLabels labels;
  std::unique_ptr<Counter> counter;
  std::unique_ptr<Gauge> gauge;
  std::unique_ptr<Histogram> histogram;
  bool is_callback = false;
  // A callback family: `values` and `labels` hold only the constant labels.
  bool is_collector = false;
  // Held while the function runs, so removal can wait for a running call.
  absl::Mutex callback_mu;
  std::function<double()> callback ABSL_GUARDED_BY(callback_mu);
  std::function<std::vector<CallbackSample>()> collector
      ABSL_GUARDED_BY(callback_mu);
};

}  // namespace internal

namespace {

using internal::MetricFamily;
using internal::MetricSeries;

bool IsMetricName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              c == ':' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

bool IsLabelName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

std::string Quote(std::string_view s) {
  return absl::StrCat("\"", absl::string_view(s.data(), s.size()), "\"");
}

// Validates the name, the label names and (for histograms) the bounds, which
// it normalizes (a trailing +Inf is dropped).
absl::Status ValidateRegistration(std::string_view name, MetricType type,
                                  const std::vector<std::string>& label_names,
                                  std::vector<double>& bounds) {
  if (!IsMetricName(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("metric ", Quote(name),
                     ": invalid name, must match [a-zA-Z_:][a-zA-Z0-9_:]*"));
  }
  std::set<std::string> seen;
  for (const std::string& label : label_names) {
    if (!IsLabelName(label)) {
      return absl::InvalidArgumentError(
          absl::StrCat("metric ", Quote(name), ": invalid label name ",
                       Quote(label), ", must match [a-zA-Z_][a-zA-Z0-9_]*"));
    }
    if (label.size() >= 2 && label[0] == '_' && label[1] == '_') {
      return absl::InvalidArgumentError(
          absl::StrCat("metric ", Quote(name), ": label name ", Quote(label),
                       " is reserved (starts with \"__\")"));
    }
    if (type == MetricType::kHistogram && label == "le") {
      return absl::InvalidArgumentError(
          absl::StrCat("metric ", Quote(name),
                       ": label name \"le\" is reserved for histograms"));
    }
    if (!seen.insert(label).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          "metric ", Quote(name), ": duplicate label name ", Quote(label)));
    }
  }
  if (type == MetricType::kHistogram) {
    if (!bounds.empty() && std::isinf(bounds.back()) && bounds.back() > 0) {
      bounds.pop_back();
    }
    for (size_t i = 0; i < bounds.size(); ++i) {
      if (!std::isfinite(bounds[i])) {
        return absl::InvalidArgumentError(absl::StrCat(
            "metric ", Quote(name), ": bucket bound ", i, " is not finite"));
      }
      if (i > 0 && !(bounds[i] > bounds[i - 1])) {
        return absl::InvalidArgumentError(absl::StrCat(
            "metric ", Quote(name),
            ": bucket bounds must be strictly increasing (bound ", i, ")"));
      }
    }
  }
  return absl::OkStatus();
}

// The exposition format's number syntax: integers without a fraction,
// others in the shortest form that reads back exactly.
std::string FormatNumber(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == 0) return "0";
  if (v == std::trunc(v) && std::fabs(v) < 1e15) {
    return absl::StrCat(static_cast<int64_t>(v));
  }
  char buf[64];
  auto result = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, result.ptr);
}

void AppendEscaped(std::string& out, std::string_view s, bool quotes) {
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quotes && c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

// Appends `name{labels,extra} value\n`.
void AppendSample(std::string& out, std::string_view name,
                  std::string_view suffix, const MetricLabels& labels,
                  const std::pair<std::string, std::string>* extra,
                  const std::string& value) {
  out.append(name.data(), name.size());
  out.append(suffix.data(), suffix.size());
  if (!labels.empty() || extra != nullptr) {
    out += '{';
    bool first = true;
    auto append = [&](const std::pair<std::string, std::string>& label) {
      if (!first) out += ',';
      first = false;
      out += label.first;
      out += "=\"";
      AppendEscaped(out, label.second, /*quotes=*/true);
      out += '"';
    };
    for (const auto& label : labels) append(label);
    if (extra != nullptr) append(*extra);
    out += '}';
  }
  out += ' ';
  out += value;
  out += '\n';
}

// Sets the function of a series no other thread can see yet. Taking
// `callback_mu` here, under the registry lock, would order the two locks
// against a scrape, which holds `callback_mu` while the callback may take
// the registry lock.
void SetCallbackUnshared(MetricSeries& series, std::function<double()> fn)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  series.callback = std::move(fn);
}
void SetCollectorUnshared(MetricSeries& series,
                          std::function<std::vector<CallbackSample>()> fn)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  series.collector = std::move(fn);
}

bool LabelValuesLess(const MetricSnapshot& a, const MetricSnapshot& b) {
  return std::lexicographical_compare(
      a.labels.begin(), a.labels.end(), b.labels.begin(), b.labels.end(),
      [](const auto& x, const auto& y) { return x.second < y.second; });
}

}  // namespace

const char* MetricTypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

// ---- Counter, Histogram ----------------------------------------------------

void Counter::Add(double amount) {
  if (!(amount > 0)) return;  // negative, zero or NaN
  fractional_.fetch_add(amount, std::memory_order_relaxed);
}

double Counter::Value() const {
  return static_cast<double>(integral_.load(std::memory_order_relaxed)) +
         fractional_.load(std::memory_order_relaxed);
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0);
}

void Histogram::Observe(double value) {
  if (std::isnan(value)) return;
  size_t i =
      std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

std::vector<uint64_t> Histogram::CumulativeCounts() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    total += counts_[i].load(std::memory_order_relaxed);
    out[i] = total;
  }
  return out;
}

uint64_t Histogram::Count() const { return CumulativeCounts().back(); }

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  std::vector<double> out;
  for (int i = 0; i < count; ++i) {
    out.push_back(start);
    start *= factor;
  }
  return out;
}

std::vector<double> LinearBuckets(double start, double width, int count) {
  std::vector<double> out;
  for (int i = 0; i < count; ++i) out.push_back(start + i * width);
  return out;
}

std::vector<double> DefaultLatencyBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
          0.1,    0.25,  0.5,    1,     2.5,  5,     10};
}

// ---- families --------------------------------------------------------------

absl::StatusOr<Counter*> CounterFamily::WithLabels(
    const std::vector<std::string>& values) {
  auto series = registry_->GetOrCreateSeries(family_, const_values_, values);
  if (!series.ok()) return series.status();
  return (*series)->counter.get();
}

absl::StatusOr<Gauge*> GaugeFamily::WithLabels(
    const std::vector<std::string>& values) {
  auto series = registry_->GetOrCreateSeries(family_, const_values_, values);
  if (!series.ok()) return series.status();
  return (*series)->gauge.get();
}

absl::StatusOr<Histogram*> HistogramFamily::WithLabels(
    const std::vector<std::string>& values) {
  auto series = registry_->GetOrCreateSeries(family_, const_values_, values);
  if (!series.ok()) return series.status();
  return (*series)->histogram.get();
}

// ---- CallbackRegistration --------------------------------------------------

CallbackRegistration::CallbackRegistration(
    CallbackRegistration&& other) noexcept
    : registry_(std::exchange(other.registry_, nullptr)),
      series_(std::move(other.series_)) {}

CallbackRegistration& CallbackRegistration::operator=(
    CallbackRegistration&& other) noexcept {
  if (this != &other) {
    Reset();
    registry_ = std::exchange(other.registry_, nullptr);
    series_ = std::move(other.series_);
  }
  return *this;
}

void CallbackRegistration::Reset() {
  if (registry_ == nullptr) return;
  registry_->RemoveCallback(series_);
  registry_ = nullptr;
  series_.reset();
}

// ---- MetricsRegistry -------------------------------------------------------

MetricsRegistry::MetricsRegistry() = default;
MetricsRegistry::~MetricsRegistry() = default;

absl::StatusOr<MetricFamily*> MetricsRegistry::GetFamily(
    std::string_view name, std::string_view help, MetricType type,
    const MetricLabels& const_labels,
    const std::vector<std::string>& variable_names,
    std::vector<double> bounds) {
  std::vector<std::string> label_names;
  for (const auto& label : const_labels) label_names.push_back(label.first);
  label_names.insert(label_names.end(), variable_names.begin(),
                     variable_names.end());
  if (absl::Status s = ValidateRegistration(name, type, label_names, bounds);
      !s.ok()) {
    return s;
  }

  auto it = families_.find(name);
  if (it == families_.end()) {
    auto family = std::make_unique<MetricFamily>();
    family->name = std::string(name);
    family->help = std::string(help);
    family->type = type;
    family->label_names = std::move(label_names);
    family->num_variable = variable_names.size();
    family->bounds = std::move(bounds);
    MetricFamily* raw = family.get();
    families_.emplace(std::string(name), std::move(family));
    return raw;
  }
  MetricFamily* family = it->second.get();
  auto conflict = [&](std::string_view what) {
    return absl::AlreadyExistsError(
        absl::StrCat("metric ", Quote(name), " is already registered with ",
                     absl::string_view(what.data(), what.size())));
  };
  if (family->type != type) {
    return conflict(absl::StrCat("type ", MetricTypeName(family->type)));
  }
  if (family->help != help) return conflict("a different help text");
  if (family->label_names != label_names ||
      family->num_variable != variable_names.size()) {
    return conflict(absl::StrCat("constant labels and label names (",
                                 absl::StrJoin(family->label_names, ","),
                                 ") of a different shape"));
  }
  if (family->bounds != bounds) return conflict("different buckets");
  return family;
}

absl::StatusOr<MetricSeries*> MetricsRegistry::NewSeries(
    MetricFamily* family, std::vector<std::string> values,
    std::function<double()> callback) {
  if (family->series.count(values) > 0) {
    std::vector<std::string> pairs;
    for (size_t i = 0; i < values.size(); ++i) {
      pairs.push_back(
          absl::StrCat(family->label_names[i], "=", Quote(values[i])));
    }
    return absl::AlreadyExistsError(absl::StrCat("metric ", Quote(family->name),
                                                 "{", absl::StrJoin(pairs, ","),
                                                 "} is already registered"));
  }
  auto series = std::make_shared<MetricSeries>();
  series->family = family;
  series->values = values;
  for (size_t i = 0; i < values.size(); ++i) {
    series->labels.emplace_back(family->label_names[i], values[i]);
  }
  if (callback) {
    series->is_callback = true;
    SetCallbackUnshared(*series, std::move(callback));
  } else {
    switch (family->type) {
      case MetricType::kCounter:
        series->counter = std::make_unique<Counter>();
        break;
      case MetricType::kGauge:
        series->gauge = std::make_unique<Gauge>();
        break;
      case MetricType::kHistogram:
        series->histogram =
            std::unique_ptr<Histogram>(new Histogram(family->bounds));
        break;
    }
  }
  MetricSeries* raw = series.get();
  family->series.emplace(std::move(values), std::move(series));
  return raw;
}

absl::StatusOr<MetricSeries*> MetricsRegistry::GetOrCreateSeries(
    MetricFamily* family, const std::vector<std::string>& prefix,
    const std::vector<std::string>& values) {
  absl::MutexLock lock(&mu_);
  if (values.size() != family->num_variable) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metric ", Quote(family->name), ": ", values.size(),
        " label values for ", family->num_variable, " variable labels"));
  }
  std::vector<std::string> all = prefix;
  all.insert(all.end(), values.begin(), values.end());
  auto it = family->series.find(all);
  if (it != family->series.end()) return it->second.get();
  return NewSeries(family, std::move(all));
}

absl::Status MetricsRegistry::ClaimHandle(
    MetricFamily* family, const std::vector<std::string>& const_values) {
  if (!family->handle_prefixes.insert(const_values).second) {
    return absl::AlreadyExistsError(
        absl::StrCat("metric ", Quote(family->name),
                     ": a family with these constant labels is already "
                     "registered"));
  }
  return absl::OkStatus();
}

namespace {
std::vector<std::string> Values(const MetricLabels& labels) {
  std::vector<std::string> out;
  for (const auto& label : labels) out.push_back(label.second);
  return out;
}
}  // namespace

absl::StatusOr<Counter*> MetricsRegistry::AddCounter(
    std::string_view name, std::string_view help,
    const MetricLabels& const_labels) {
  absl::MutexLock lock(&mu_);
  auto family =
      GetFamily(name, help, MetricType::kCounter, const_labels, {}, {});
  if (!family.ok()) return family.status();
  auto series = NewSeries(*family, Values(const_labels));
  if (!series.ok()) return series.status();
  return (*series)->counter.get();
}

absl::StatusOr<Gauge*> MetricsRegistry::AddGauge(
    std::string_view name, std::string_view help,
    const MetricLabels& const_labels) {
  absl::MutexLock lock(&mu_);
  auto family = GetFamily(name, help, MetricType::kGauge, const_labels, {}, {});
  if (!family.ok()) return family.status();
  auto series = NewSeries(*family, Values(const_labels));
  if (!series.ok()) return series.status();
  return (*series)->gauge.get();
}

absl::StatusOr<Histogram*> MetricsRegistry::AddHistogram(
    std::string_view name, std::string_view help, std::vector<double> bounds,
    const MetricLabels& const_labels) {
  absl::MutexLock lock(&mu_);
  auto family = GetFamily(name, help, MetricType::kHistogram, const_labels, {},
                          std::move(bounds));
  if (!family.ok()) return family.status();
  auto series = NewSeries(*family, Values(const_labels));
  if (!series.ok()) return series.status();
  return (*series)->histogram.get();
}

namespace {
absl::Status CheckFamilyLabels(std::string_view name,
                               const std::vector<std::string>& label_names) {
  if (label_names.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("metric ", Quote(name),
                     ": a family needs at least one variable label name"));
  }
  return absl::OkStatus();
}
}  // namespace

absl::StatusOr<CounterFamily*> MetricsRegistry::AddCounterFamily(
    std::string_view name, std::string_view help,
    const std::vector<std::string>& label_names,
    const MetricLabels& const_labels) {
  if (absl::Status s = CheckFamilyLabels(name, label_names); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  auto family = GetFamily(name, help, MetricType::kCounter, const_labels,
                          label_names, {});
  if (!family.ok()) return family.status();
  std::vector<std::string> prefix = Values(const_labels);
  if (absl::Status s = ClaimHandle(*family, prefix); !s.ok()) return s;
  counter_families_.push_back(std::unique_ptr<CounterFamily>(
      new CounterFamily(this, *family, std::move(prefix), label_names)));
  return counter_families_.back().get();
}

absl::StatusOr<GaugeFamily*> MetricsRegistry::AddGaugeFamily(
    std::string_view name, std::string_view help,
    const std::vector<std::string>& label_names,
    const MetricLabels& const_labels) {
  if (absl::Status s = CheckFamilyLabels(name, label_names); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  auto family =
      GetFamily(name, help, MetricType::kGauge, const_labels, label_names, {});
  if (!family.ok()) return family.status();
  std::vector<std::string> prefix = Values(const_labels);
  if (absl::Status s = ClaimHandle(*family, prefix); !s.ok()) return s;
  gauge_families_.push_back(std::unique_ptr<GaugeFamily>(
      new GaugeFamily(this, *family, std::move(prefix), label_names)));
  return gauge_families_.back().get();
}

absl::StatusOr<HistogramFamily*> MetricsRegistry::AddHistogramFamily(
    std::string_view name, std::string_view help,
    const std::vector<std::string>& label_names, std::vector<double> bounds,
    const MetricLabels& const_labels) {
  if (absl::Status s = CheckFamilyLabels(name, label_names); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  auto family = GetFamily(name, help, MetricType::kHistogram, const_labels,
                          label_names, std::move(bounds));
  if (!family.ok()) return family.status();
  std::vector<std::string> prefix = Values(const_labels);
  if (absl::Status s = ClaimHandle(*family, prefix); !s.ok()) return s;
  histogram_families_.push_back(std::unique_ptr<HistogramFamily>(
      new HistogramFamily(this, *family, std::move(prefix), label_names)));
  return histogram_families_.back().get();
}

absl::StatusOr<CallbackRegistration> MetricsRegistry::AddCallback(
    std::string_view name, std::string_view help, MetricType type,
    std::function<double()> fn, const MetricLabels& const_labels) {
  if (!fn) {
    return absl::InvalidArgumentError(
        absl::StrCat("metric ", Quote(name), ": empty callback"));
  }
  absl::MutexLock lock(&mu_);
  auto family = GetFamily(name, help, type, const_labels, {}, {});
  if (!family.ok()) return family.status();
  std::vector<std::string> values = Values(const_labels);
  auto series = NewSeries(*family, values, std::move(fn));
  if (!series.ok()) return series.status();
  return CallbackRegistration(this, (*family)->series.at(values));
}

absl::StatusOr<CallbackRegistration> MetricsRegistry::AddCallbackGauge(
    std::string_view name, std::string_view help, std::function<double()> fn,
    const MetricLabels& const_labels) {
  return AddCallback(name, help, MetricType::kGauge, std::move(fn),
                     const_labels);
}

absl::StatusOr<CallbackRegistration> MetricsRegistry::AddCallbackCounter(
    std::string_view name, std::string_view help, std::function<double()> fn,
    const MetricLabels& const_labels) {
  return AddCallback(name, help, MetricType::kCounter, std::move(fn),
                     const_labels);
}

absl::StatusOr<CallbackRegistration> MetricsRegistry::AddCallbackGaugeFamily(
    std::string_view name, std::string_view help,
    const std::vector<std::string>& label_names,
    std::function<std::vector<CallbackSample>()> fn,
    const MetricLabels& const_labels) {
  if (!fn) {
    return absl::InvalidArgumentError(
        absl::StrCat("metric ", Quote(name), ": empty callback"));
  }
  if (absl::Status s = CheckFamilyLabels(name, label_names); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  auto family =
      GetFamily(name, help, MetricType::kGauge, const_labels, label_names, {});
  if (!family.ok()) return family.status();
  std::vector<std::string> prefix = Values(const_labels);
  // Shares the constant-label space with GaugeFamily handles.
  if (absl::Status s = ClaimHandle(*family, prefix); !s.ok()) return s;
  auto series = std::make_shared<MetricSeries>();
  series->family = *family;
  series->values = prefix;
  series->labels = const_labels;
  series->is_callback = true;
  series->is_collector = true;
  SetCollectorUnshared(*series, std::move(fn));
  // Keyed by the shorter constant-label prefix, so it never collides with
  // a series of full label values.
  (*family)->series.emplace(std::move(prefix), series);
  return CallbackRegistration(this, std::move(series));
}

void MetricsRegistry::RemoveCallback(
    const std::shared_ptr<MetricSeries>& series) {
  {
    absl::MutexLock lock(&mu_);
    MetricFamily* family = series->family;
    auto it = family->series.find(series->values);
    if (it != family->series.end() && it->second == series) {
      family->series.erase(it);
    }
    if (series->is_collector) family->handle_prefixes.erase(series->values);
  }
  // Waits for a scrape that is running the function right now.
  absl::MutexLock callback_lock(&series->callback_mu);
  series->callback = nullptr;
  series->collector = nullptr;
}

std::vector<MetricSnapshot> MetricsRegistry::Snapshot() const {
  // Collect the series under the lock, read them without it: callbacks may
  // be slow and may register metrics themselves.
  struct FamilyRef {
    const MetricFamily* family;
    std::vector<std::shared_ptr<MetricSeries>> series;
    bool has_collector = false;
  };
  std::vector<FamilyRef> families;
  {
    absl::MutexLock lock(&mu_);
    families.reserve(families_.size());
    for (const auto& [name, family] : families_) {
      if (family->series.empty()) continue;
      FamilyRef ref{family.get(), {}};
      for (const auto& [values, series] : family->series) {
        ref.series.push_back(series);
        ref.has_collector |= series->is_collector;
      }
      families.push_back(std::move(ref));
    }
  }
  std::vector<MetricSnapshot> out;
  for (const FamilyRef& ref : families) {
    const MetricFamily& family = *ref.family;
    const size_t first = out.size();
    auto new_snapshot = [&](const MetricLabels& labels) -> MetricSnapshot& {
      MetricSnapshot& snap = out.emplace_back();
      snap.name = family.name;
      snap.help = family.help;
      snap.type = family.type;
      snap.labels = labels;
      return snap;
    };
    for (const auto& series : ref.series) {
      if (series->is_collector) {
        std::vector<CallbackSample> samples;
        {
          absl::MutexLock callback_lock(&series->callback_mu);
          if (!series->collector) continue;  // removed meanwhile
          samples = series->collector();
        }
        const size_t num_const = series->values.size();
        for (CallbackSample& sample : samples) {
          if (sample.label_values.size() != family.num_variable) continue;
          MetricSnapshot& snap = new_snapshot(series->labels);
          for (size_t i = 0; i < family.num_variable; ++i) {
            snap.labels.emplace_back(family.label_names[num_const + i],
                                     std::move(sample.label_values[i]));
          }
          snap.value = sample.value;
        }
      } else if (series->is_callback) {
        double value;
        {
          absl::MutexLock callback_lock(&series->callback_mu);
          if (!series->callback) continue;  // removed meanwhile
          value = series->callback();
        }
        new_snapshot(series->labels).value = value;
      } else if (series->counter != nullptr) {
        new_snapshot(series->labels).value = series->counter->Value();
      } else if (series->gauge != nullptr) {
        new_snapshot(series->labels).value = series->gauge->Value();
      } else if (series->histogram != nullptr) {
        MetricSnapshot& snap = new_snapshot(series->labels);
        // Sum first: an observation between the two reads then shows in the
        // count but not the sum, never the other way round.
        snap.sum = series->histogram->Sum();
        snap.bucket_bounds = series->histogram->bounds();
        snap.cumulative_counts = series->histogram->CumulativeCounts();
        snap.count = snap.cumulative_counts.back();
      }
    }
    if (ref.has_collector) {
      std::stable_sort(out.begin() + first, out.end(), LabelValuesLess);
    }
  }
  return out;
}

std::string MetricsRegistry::PrometheusText() const {
  return RenderPrometheusText(Snapshot());
}

std::string RenderPrometheusText(const std::vector<MetricSnapshot>& snapshot) {
  std::string out;
  const std::string* previous = nullptr;
  for (const MetricSnapshot& m : snapshot) {
    if (previous == nullptr || *previous != m.name) {
      out += "# HELP ";
      out += m.name;
      out += ' ';
      AppendEscaped(out, m.help, /*quotes=*/false);
      out += "\n# TYPE ";
      out += m.name;
      out += ' ';
      out += MetricTypeName(m.type);
      out += '\n';
      previous = &m.name;
    }
    if (m.type != MetricType::kHistogram) {
      AppendSample(out, m.name, "", m.labels, nullptr, FormatNumber(m.value));
      continue;
    }
    for (size_t i = 0; i < m.cumulative_counts.size(); ++i) {
      std::pair<std::string, std::string> le(
          "le", i < m.bucket_bounds.size() ? FormatNumber(m.bucket_bounds[i])
                                           : "+Inf");
      AppendSample(out, m.name, "_bucket", m.labels, &le,
                   absl::StrCat(m.cumulative_counts[i]));
    }
    AppendSample(out, m.name, "_sum", m.labels, nullptr, FormatNumber(m.sum));
    AppendSample(out, m.name, "_count", m.labels, nullptr,
                 absl::StrCat(m.count));
  }
  return out;
}

const MetricSnapshot* FindMetric(const std::vector<MetricSnapshot>& snapshot,
                                 std::string_view name,
                                 const MetricLabels& labels) {
  MetricLabels want = labels;
  std::sort(want.begin(), want.end());
  for (const MetricSnapshot& m : snapshot) {
    if (m.name != name || m.labels.size() != want.size()) continue;
    MetricLabels have = m.labels;
    std::sort(have.begin(), have.end());
    if (have == want) return &m;
  }
  return nullptr;
}

}  // namespace weir
