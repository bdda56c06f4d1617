// -----------------------------------------------------------------------------
// File: metrics.h
// -----------------------------------------------------------------------------
//
// Counters, gauges and histograms that the processing thread updates without
// locks, collected in a `MetricsRegistry` that can be read in-process
// (`Snapshot()`) or rendered in the Prometheus text exposition format 0.0.4
// (`PrometheusText()`, served over HTTP by weir/http/metrics_server.h).
//
// Model (the Prometheus one):
//   - A metric has a name ([a-zA-Z_:][a-zA-Z0-9_:]*), a help text and a type
//     (counter, gauge, histogram).
//   - A series is one metric with one set of label values. A series' labels
//     are its constant labels (given at registration) followed by its
//     variable labels (given per call to a family's `WithLabels`).
//   - `AddCounter` / `AddGauge` / `AddHistogram` register one series and
//     return a pointer to it. `Add*Family` register a family whose series
//     are created on demand, e.g. one per partition:
//         lag_family->WithLabels({"3"})  // partition="3"
//     The pointers are stable for the registry's lifetime: look a series up
//     once, keep the pointer, update it on the hot path.
//   - Several registrations may share a name when they agree on the type,
//     the help text, the label names (and the buckets of a histogram) and
//     differ in their constant label values; they render as one metric.
//     This lets two operators register `weir_records_in_total` with
//     operator="a" and operator="b".
//   - `AddCallbackGauge` / `AddCallbackCounter` register a series whose value
//     is computed by a function at scrape time (state size, key count);
//     `AddCallbackGaugeFamily` a function that returns a whole set of series
//     (the hottest keys).
//
// Rendering is deterministic: metrics sorted by name, series by label
// values, no timestamps, metrics without any series left out.
//
// Threading: a `MetricsRegistry` is thread-safe. Registration and reading
// (`Snapshot`, `PrometheusText`, `WithLabels`) take an internal lock;
// updating a `Counter`, `Gauge` or `Histogram` is a few relaxed atomic
// operations and never takes a lock, so the processing thread may update
// while another thread scrapes. A reader may see a histogram's sum and its
// count from slightly different moments; the buckets and the count are
// always consistent with each other. Series are never removed, except
// callback series when their `CallbackRegistration` is destroyed. The
// registry starts no threads.
//
// Callback contract: a callback is called on the thread that reads the
// registry (the metrics HTTP thread, or whoever calls `Snapshot`), without
// the registry's lock held, possibly concurrently with the thread that owns
// the measured object. It must therefore be thread-safe, fast and must not
// throw. It may register metrics; it must not destroy its own
// `CallbackRegistration` (that waits for the callback to return).
//
// Example:
//   weir::MetricsRegistry registry;
//   WEIR_ASSIGN_OR_RETURN(weir::Counter* records_in,
//       registry.AddCounter("weir_records_in_total", "Records read.",
//                           {{"pipeline", "fraud"}}));
//   WEIR_ASSIGN_OR_RETURN(weir::GaugeFamily* lag,
//       registry.AddGaugeFamily("weir_consumer_lag_records",
//                               "Records behind the end of the partition.",
//                               {"partition"}));
//   WEIR_ASSIGN_OR_RETURN(weir::Gauge* lag3, lag->WithLabels({"3"}));
//   WEIR_ASSIGN_OR_RETURN(weir::Histogram* sink_latency,
//       registry.AddHistogram("weir_sink_latency_seconds", "Sink write time.",
//                             weir::ExponentialBuckets(0.001, 2, 12)));
//   records_in->Increment();
//   lag3->Set(1200);
//   sink_latency->Observe(absl::Milliseconds(3));
//   std::string text = registry.PrometheusText();

#ifndef WEIR_METRICS_H_
#define WEIR_METRICS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace weir {

// Label name/value pairs, in order.
using MetricLabels = std::vector<std::pair<std::string, std::string>>;

enum class MetricType { kCounter, kGauge, kHistogram };

// "counter", "gauge", "histogram": the names of the exposition format.
const char* MetricTypeName(MetricType type);

// A monotonically increasing value: records in, decode errors, bytes.
// Thread-safe and lock-free.
class Counter {
 public:
  Counter() = default;
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  // Adds `n` exactly (an integer count; concurrent increments never lose
  // one).
  void Increment(uint64_t n = 1) {
    integral_.fetch_add(n, std::memory_order_relaxed);
  }

  // Adds a non-negative amount, e.g. seconds spent paused. A negative or
  // NaN amount is ignored: a counter never goes down.
  void Add(double amount);

  // The integral increments plus the fractional adds.
  double Value() const;

 private:
  std::atomic<uint64_t> integral_{0};
  std::atomic<double> fractional_{0};
};

// A value that goes up and down: lag, queue depth, age of the last
// checkpoint. Thread-safe and lock-free.
class Gauge {
 public:
  Gauge() = default;
  Gauge(const Gauge&) = delete;
  Gauge& operator=(const Gauge&) = delete;

  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Add(double delta) { value_.fetch_add(delta, std::memory_order_relaxed); }
  void Increment() { Add(1); }
  void Decrement() { Add(-1); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Observations counted into fixed buckets, with their sum and count; for
// latencies in seconds and sizes in bytes. Thread-safe and lock-free.
// Created by a `MetricsRegistry`.
class Histogram {
 public:
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  // Counts `value` into the first bucket whose upper bound is >= `value`
  // (or +Inf) and adds it to the sum. NaN is ignored.
  void Observe(double value);
  // Observes `d` in seconds.
  void Observe(absl::Duration d) { Observe(absl::ToDoubleSeconds(d)); }

  // The finite upper bounds, strictly increasing (+Inf is implicit).
  const std::vector<double>& bounds() const { return bounds_; }

  // Cumulative counts per bound, then the +Inf bucket (== the count).
  std::vector<uint64_t> CumulativeCounts() const;
  double Sum() const { return sum_.load(std::memory_order_relaxed); }
  uint64_t Count() const;

 private:
  friend class MetricsRegistry;
  explicit Histogram(std::vector<double> bounds);

  const std::vector<double> bounds_;
  // Non-cumulative; bounds_.size() + 1 entries, the last one for +Inf.
  const std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<double> sum_{0};
};

// Bucket bounds `start`, `start*factor`, ... (`count` bounds). Needs
// start > 0, factor > 1, count >= 1 to be accepted by a registry.
std::vector<double> ExponentialBuckets(double start, double factor, int count);
// Bucket bounds `start`, `start+width`, ... (`count` bounds).
std::vector<double> LinearBuckets(double start, double width, int count);
// 0.5 ms to 10 s, for latencies in seconds: 0.0005, 0.001, 0.0025, 0.005,
// 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10.
std::vector<double> DefaultLatencyBuckets();

class MetricsRegistry;

namespace internal {
struct MetricFamily;
struct MetricSeries;
}  // namespace internal

// Series of one metric created on demand per set of variable label values.
// Returned by `MetricsRegistry::Add*Family` and owned by the registry.
// Thread-safe; `WithLabels` takes the registry's lock, so callers look a
// series up once and keep the pointer.
class CounterFamily {
 public:
  // The series for `values` (one per variable label name, in order),
  // created on first use. kInvalidArgument if the number of values differs
  // from the number of label names.
  absl::StatusOr<Counter*> WithLabels(const std::vector<std::string>& values);
  const std::vector<std::string>& label_names() const { return label_names_; }

 private:
  friend class MetricsRegistry;
  CounterFamily(MetricsRegistry* registry, internal::MetricFamily* family,
                std::vector<std::string> const_values,
                std::vector<std::string> label_names)
      : registry_(registry),
        family_(family),
        const_values_(std::move(const_values)),
        label_names_(std::move(label_names)) {}
  MetricsRegistry* registry_;
  internal::MetricFamily* family_;
  std::vector<std::string> const_values_;
  std::vector<std::string> label_names_;
};

// As CounterFamily, for gauges.
class GaugeFamily {
 public:
  absl::StatusOr<Gauge*> WithLabels(const std::vector<std::string>& values);
  const std::vector<std::string>& label_names() const { return label_names_; }

 private:
  friend class MetricsRegistry;
  GaugeFamily(MetricsRegistry* registry, internal::MetricFamily* family,
              std::vector<std::string> const_values,
              std::vector<std::string> label_names)
      : registry_(registry),
        family_(family),
        const_values_(std::move(const_values)),
        label_names_(std::move(label_names)) {}
  MetricsRegistry* registry_;
  internal::MetricFamily* family_;
  std::vector<std::string> const_values_;
  std::vector<std::string> label_names_;
};

// As CounterFamily, for histograms (every series has the family's buckets).
class HistogramFamily {
 public:
  absl::StatusOr<Histogram*> WithLabels(const std::vector<std::string>& values);
  const std::vector<std::string>& label_names() const { return label_names_; }

 private:
  friend class MetricsRegistry;
  HistogramFamily(MetricsRegistry* registry, internal::MetricFamily* family,
                  std::vector<std::string> const_values,
                  std::vector<std::string> label_names)
      : registry_(registry),
        family_(family),
        const_values_(std::move(const_values)),
        label_names_(std::move(label_names)) {}
  MetricsRegistry* registry_;
  internal::MetricFamily* family_;
  std::vector<std::string> const_values_;
  std::vector<std::string> label_names_;
};

// Keeps a callback series registered. Destroying it (or `Reset()`) removes
// the series and waits until a scrape that is calling the function right
// now returns; after that the function is never called again, so the
// object it measures may be destroyed. Move-only. The registry must outlive
// it.
class CallbackRegistration {
 public:
  CallbackRegistration() = default;
  CallbackRegistration(CallbackRegistration&& other) noexcept;
  CallbackRegistration& operator=(CallbackRegistration&& other) noexcept;
  ~CallbackRegistration() { Reset(); }

  // Removes the series now; a no-op on an empty registration.
  void Reset();
  bool active() const { return registry_ != nullptr; }

 private:
  friend class MetricsRegistry;
  CallbackRegistration(MetricsRegistry* registry,
                       std::shared_ptr<internal::MetricSeries> series)
      : registry_(registry), series_(std::move(series)) {}
  MetricsRegistry* registry_ = nullptr;
  std::shared_ptr<internal::MetricSeries> series_;
};

// One series reported by a callback family (AddCallbackGaugeFamily).
struct CallbackSample {
  // One value per variable label name of the family, in order.
  std::vector<std::string> label_values;
  double value = 0;
};

// One series as read by `MetricsRegistry::Snapshot()`.
struct MetricSnapshot {
  std::string name;
  std::string help;
  MetricType type = MetricType::kGauge;
  // Constant labels, then variable labels.
  MetricLabels labels;
  // Counters and gauges: the value.
  double value = 0;
  // Histograms: the finite bucket bounds, the cumulative count per bound
  // followed by the +Inf bucket, the sum and the count (== the +Inf
  // bucket).
  std::vector<double> bucket_bounds;
  std::vector<uint64_t> cumulative_counts;
  double sum = 0;
  uint64_t count = 0;
};

// The series named `name` whose labels equal `labels` as a set, or nullptr.
const MetricSnapshot* FindMetric(const std::vector<MetricSnapshot>& snapshot,
                                 std::string_view name,
                                 const MetricLabels& labels = {});

// The set of metrics of one process or pipeline. Not copyable or movable:
// the pointers it hands out point into it.
class MetricsRegistry {
 public:
  MetricsRegistry();
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // Register one series. kInvalidArgument (naming the metric) for a bad
  // metric or label name or bucket list; kAlreadyExists for the same name
  // and constant labels again, or a name registered with a different type,
  // help text, label names or buckets.
  absl::StatusOr<Counter*> AddCounter(std::string_view name,
                                      std::string_view help,
                                      const MetricLabels& const_labels = {});
  absl::StatusOr<Gauge*> AddGauge(std::string_view name, std::string_view help,
                                  const MetricLabels& const_labels = {});
  // `bounds`: strictly increasing finite upper bounds; a trailing +Inf is
  // accepted and dropped. The label name "le" is reserved.
  absl::StatusOr<Histogram*> AddHistogram(
      std::string_view name, std::string_view help, std::vector<double> bounds,
      const MetricLabels& const_labels = {});

  // Register a family with variable labels `label_names`; its series are
  // created by `WithLabels`. Errors as above.
  absl::StatusOr<CounterFamily*> AddCounterFamily(
      std::string_view name, std::string_view help,
      const std::vector<std::string>& label_names,
      const MetricLabels& const_labels = {});
  absl::StatusOr<GaugeFamily*> AddGaugeFamily(
      std::string_view name, std::string_view help,
      const std::vector<std::string>& label_names,
      const MetricLabels& const_labels = {});
  absl::StatusOr<HistogramFamily*> AddHistogramFamily(
      std::string_view name, std::string_view help,
      const std::vector<std::string>& label_names, std::vector<double> bounds,
      const MetricLabels& const_labels = {});

  // Register a series whose value is `fn()` at read time (see the callback
  // contract above). The series exists while the returned registration
  // does. Errors as above; kInvalidArgument for an empty `fn`.
  absl::StatusOr<CallbackRegistration> AddCallbackGauge(
      std::string_view name, std::string_view help, std::function<double()> fn,
      const MetricLabels& const_labels = {});
  // As AddCallbackGauge; `fn` must not decrease.
  absl::StatusOr<CallbackRegistration> AddCallbackCounter(
      std::string_view name, std::string_view help, std::function<double()> fn,
      const MetricLabels& const_labels = {});

  // Register a set of series computed at read time, for series that come
  // and go: the hottest keys (`{rank="1",key="card-7"}`), per-partition
  // state size while partitions are assigned and revoked. `fn` returns one
  // sample per series; each must carry one value per name in `label_names`
  // (others are dropped) and label values no other series of the metric
  // uses. Same callback contract and lifetime as AddCallbackGauge.
  absl::StatusOr<CallbackRegistration> AddCallbackGaugeFamily(
      std::string_view name, std::string_view help,
      const std::vector<std::string>& label_names,
      std::function<std::vector<CallbackSample>()> fn,
      const MetricLabels& const_labels = {});

  // Every series, sorted by name and then label values. Calls the
  // callbacks.
  std::vector<MetricSnapshot> Snapshot() const;

  // The text exposition format 0.0.4 of `Snapshot()`.
  std::string PrometheusText() const;

 private:
  friend class CounterFamily;
  friend class GaugeFamily;
  friend class HistogramFamily;
  friend class CallbackRegistration;

  // Finds or creates the family `name`, checking that it agrees with the
  // registration. `num_variable` is the number of variable labels.
  absl::StatusOr<internal::MetricFamily*> GetFamily(
      std::string_view name, std::string_view help, MetricType type,
      const MetricLabels& const_labels,
      const std::vector<std::string>& variable_names,
      std::vector<double> bounds) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // A new series with `values` in `family`, computed by `callback` if set;
  // kAlreadyExists if present.
  absl::StatusOr<internal::MetricSeries*> NewSeries(
      internal::MetricFamily* family, std::vector<std::string> values,
      std::function<double()> callback = nullptr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // The series with `values` in `family`, created if missing.
  absl::StatusOr<internal::MetricSeries*> GetOrCreateSeries(
      internal::MetricFamily* family, const std::vector<std::string>& prefix,
      const std::vector<std::string>& values) ABSL_LOCKS_EXCLUDED(mu_);

  absl::StatusOr<CallbackRegistration> AddCallback(
      std::string_view name, std::string_view help, MetricType type,
      std::function<double()> fn, const MetricLabels& const_labels);
  void RemoveCallback(const std::shared_ptr<internal::MetricSeries>& series)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Registers a family handle's constant label values; kAlreadyExists if
  // another handle has them.
  absl::Status ClaimHandle(internal::MetricFamily* family,
                           const std::vector<std::string>& const_values)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<internal::MetricFamily>, std::less<>>
      families_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<CounterFamily>> counter_families_
      ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<GaugeFamily>> gauge_families_
      ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<HistogramFamily>> histogram_families_
      ABSL_GUARDED_BY(mu_);
};

// Renders `snapshot` (sorted as `Snapshot()` returns it) in the text
// exposition format 0.0.4.
std::string RenderPrometheusText(const std::vector<MetricSnapshot>& snapshot);

}  // namespace weir

#endif  // WEIR_METRICS_H_
