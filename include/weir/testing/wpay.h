// -----------------------------------------------------------------------------
// File: testing/wpay.h
// -----------------------------------------------------------------------------
//
// The W-PAY workload (docs: BENCHMARKS.md): a deterministic stream of payment
// events that tests, benchmarks and examples share. The same options (seed
// included) give the same stream, byte for byte, on every run and machine
// with IEEE doubles.
//
// The stream, event by event (i = 0, 1, 2, ...):
//   - seq = i.
//   - user_id = "u<rank>", rank in [1, num_users] drawn from a Zipf law with
//     `zipf_exponent` (P(rank k) proportional to 1 / k^s): "u1" is the
//     hottest user. With the defaults, the top 1% of users produce about two
//     thirds of the events.
//   - merchant_id = "m<n>", n uniform in [1, num_merchants].
//   - amount_cents uniform in [1, 100000] (0.01 to 1000.00), or null with
//     probability `null_amount_fraction`.
//   - event time: the in-order time of event i is
//     start + i / events_per_millisecond (integer division; the default 2
//     gives start + (i >> 1), 0.5 ms per event). With probability
//     `late_fraction` the event is made late: its time is the in-order time
//     minus a lateness drawn uniformly from [min_lateness, max_lateness]
//     (whole ms) and `late` is true. Otherwise, with probability
//     `disorder_fraction`, it is disordered: the in-order time minus a delay
//     drawn uniformly from [1 ms, max_disorder].
//   - partition = Kafka's default keyed partitioner applied to user_id (see
//     `WPayPartitionFor`); offset = the event's index among the events of
//     its partition, malformed ones included, as Kafka assigns offsets.
//   - malformed: with probability `malformed_fraction` the JSON line is
//     corrupted in one of four ways, chosen uniformly (see `MalformedKind`).
//
// Which events a pipeline must accept. A decoder must accept exactly the
// events whose `accepted()` is true (kind kNone and kIntegerBecameFloat) and
// send every other one to the DLQ (kBrokenJson, kAmountNotNumeric,
// kMissingUserId). With the default fractions that is 0.15% of the events to
// the DLQ and 0.05% accepted float-written amounts.
//
// Whether an event is late. `late` says only that the generator moved it
// 2-10 minutes back. Whether it is late for a given window, out-of-orderness
// and allowed lateness is decided by weir's semantics on the partition's log
// (sqlite_oracle.h computes it). With 1-minute tumbling windows, 5 s of
// out-of-orderness and 1 minute of allowed lateness, a `late` event is late
// once its lateness exceeds about 125 s (nearly all of them); a disordered
// event (at most 5 s back) is never late under 5 s of out-of-orderness.
//
// Every draw of event i comes from a SplitMix64 stream keyed by (seed, i), so
// an event's user, merchant, amount, time and kind do not depend on the
// fractions chosen for other properties, nor on the events before it.
//
// Threading: a WPayGenerator is not thread-safe; one thread calls Next().
// Distinct generators are independent. Starts no threads.
//
// Example:
//   weir::testing::WPayOptions options;
//   options.num_events = 100000;
//   options.num_partitions = 16;
//   WEIR_ASSIGN_OR_RETURN(auto gen,
//                         weir::testing::WPayGenerator::Create(options));
//   weir::testing::WPayEvent event;
//   while (gen->Next(event)) {
//     if (event.accepted()) {
//       weir::Event e = event.ToEvent();
//       WEIR_RETURN_IF_ERROR(op->Process(e.view()));
//     }
//   }

#ifndef WEIR_TESTING_WPAY_H_
#define WEIR_TESTING_WPAY_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "weir/decode.h"
#include "weir/record.h"
#include "weir/time.h"

namespace weir {
namespace testing {

// How a W-PAY JSON line was corrupted. The examples below are for the event
// {"user_id":"u123","merchant_id":"m45","amount":12.34,
//  "event_timestamp":1767225600123}.
enum class MalformedKind : uint8_t {
  // A well-formed line. Accept.
  kNone = 0,
  // The line cut short: a proper, non-empty prefix of the well-formed line
  // (its length drawn uniformly from [1, length - 1]), so never valid JSON.
  // DLQ.
  kBrokenJson = 1,
  // The amount as a non-numeric string: "amount":"N/A". DLQ.
  kAmountNotNumeric = 2,
  // The "user_id" member left out (the Kafka key still carries the user):
  // {"merchant_id":"m45","amount":12.34,"event_timestamp":1767225600123}.
  // DLQ.
  kMissingUserId = 3,
  // The amount written as a float literal with an exponent, its mantissa the
  // integer number of cents: "amount":1234e-2. Valid JSON with the same
  // exact value 12.34, which a decoder must accept as Dec(1234, 2) (reading
  // the literal exactly, or as a double rounded to 2 places: both give
  // 1234). Never null. Accept.
  kIntegerBecameFloat = 4,
};

// "none", "broken_json", "amount_not_numeric", "missing_user_id",
// "integer_became_float".
const char* MalformedKindName(MalformedKind kind);

// True for the kinds a pipeline must send to the DLQ.
inline bool MustReachDlq(MalformedKind kind) {
  return kind == MalformedKind::kBrokenJson ||
         kind == MalformedKind::kAmountNotNumeric ||
         kind == MalformedKind::kMissingUserId;
}

// The 32-bit murmur2 hash of Apache Kafka's Java client
// (org.apache.kafka.common.utils.Utils.murmur2, seed 0x9747b28c), as an
// unsigned value; e.g. KafkaMurmur2("21") == uint32_t(-973932308).
uint32_t KafkaMurmur2(std::string_view key);

// The partition Kafka's default keyed partitioner picks for `key`:
// (KafkaMurmur2(key) & 0x7fffffff) % num_partitions. The Java client does
// this, and librdkafka does too with `partitioner=murmur2` or
// `murmur2_random`, so a producer so configured writes each W-PAY event to
// the partition the generator reports. REQUIRES: num_partitions >= 1.
int32_t WPayPartitionFor(std::string_view key, int32_t num_partitions);

struct WPayOptions {
  // ---- Size and keys ------------------------------------------------------

  // Events in the stream. Default: 1000000
  int64_t num_events = 1'000'000;

  // Distinct users, "u1" to "u<num_users>". Default: 1000000
  int64_t num_users = 1'000'000;

  // Distinct merchants, "m1" to "m<num_merchants>". Default: 50000
  int64_t num_merchants = 50'000;

  // Seeds every draw. Same seed, same stream. Default: 1
  uint64_t seed = 1;

  // Zipf exponent s of user popularity (0 is uniform); larger is more
  // skewed. REQUIRES: 0 <= s <= 10. Default: 1.0
  double zipf_exponent = 1.0;

  // Kafka partitions the events are keyed into. Default: 1
  int32_t num_partitions = 1;

  // ---- Time ---------------------------------------------------------------

  // In-order event time of event 0, ms since the epoch (may be negative).
  // Default: 1767225600000 (2026-01-01T00:00:00Z)
  EventTime start = 1767225600000;

  // Events per millisecond of in-order event time: event i is at
  // start + i / events_per_millisecond. Default: 2 (0.5 ms per event)
  int32_t events_per_millisecond = 2;

  // Fraction of events moved back by up to `max_disorder`. Default: 0.10
  double disorder_fraction = 0.10;

  // Largest delay of a disordered event; a whole number of ms >= 1.
  // Default: absl::Seconds(5)
  absl::Duration max_disorder = absl::Seconds(5);

  // Fraction of events moved back by [min_lateness, max_lateness].
  // REQUIRES: late_fraction + disorder_fraction <= 1. Default: 0.005
  double late_fraction = 0.005;

  // Bounds of a late event's lateness; whole numbers of ms,
  // 0 < min_lateness <= max_lateness.
  // Default: absl::Minutes(2) and absl::Minutes(10)
  absl::Duration min_lateness = absl::Minutes(2);
  absl::Duration max_lateness = absl::Minutes(10);

  // ---- Content ------------------------------------------------------------

  // Fraction of events whose amount is null. Default: 0.01
  double null_amount_fraction = 0.01;

  // Fraction of events whose JSON line is corrupted, split evenly over the
  // four kinds of MalformedKind. Default: 0.002
  double malformed_fraction = 0.002;

  // ---- Performance --------------------------------------------------------

  // Build `WPayEvent::json`. Turn off when only the typed fields are needed:
  // generation is then several times faster. Default: true
  bool build_json = true;

  // Returns kInvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

// One generated event. The typed fields are the generator's truth: for a
// malformed event they hold what the line would have said.
struct WPayEvent {
  int64_t seq = 0;
  std::string user_id;                  // "u<N>", the Kafka message key
  std::string merchant_id;              // "m<N>"
  std::optional<int64_t> amount_cents;  // 1 to 100000, or null
  EventTime event_time = 0;
  int32_t partition = 0;
  int64_t offset = 0;  // within `partition`, malformed events included
  bool late = false;   // moved back by [min_lateness, max_lateness]
  MalformedKind malformed = MalformedKind::kNone;

  // The Kafka message value, one line without its newline, e.g.
  // {"user_id":"u123","merchant_id":"m45","amount":12.34,
  //  "event_timestamp":1767225600123}
  // Members in that order; amount with exactly two decimals, or null;
  // corrupted as `malformed` says. Empty if the options' build_json is off.
  std::string json;

  // True if a decoder must accept the event (not MustReachDlq(malformed)).
  bool accepted() const { return !MustReachDlq(malformed); }

  // The decoded record, in the W-PAY schema layout: key = user_id,
  // values[0] = String(merchant_id), values[1] = Dec(amount_cents, 2) or
  // Null; event time, partition and offset as above. Meant for accepted()
  // events; for others it gives the intended values.
  weir::Event ToEvent() const;

  // The Kafka message a source would deliver from `topic`: partition,
  // offset, key user_id and value json. Its views point into this event.
  weir::RawRecord ToRawRecord(std::string_view topic) const;
};

// Field positions of the W-PAY schema in `Event::values`.
inline constexpr int kWPayMerchantField = 0;
inline constexpr int kWPayAmountField = 1;

class WPayGenerator {
 public:
  // Validates `options` and precomputes the Zipf law's table (half a byte
  // per user plus 256 KiB; about 10 ms for a million users).
  static absl::StatusOr<std::unique_ptr<WPayGenerator>> Create(
      const WPayOptions& options);

  // Convenience: the whole stream in a vector.
  static absl::StatusOr<std::vector<WPayEvent>> GenerateAll(
      const WPayOptions& options);

  ~WPayGenerator();
  WPayGenerator(const WPayGenerator&) = delete;
  WPayGenerator& operator=(const WPayGenerator&) = delete;

  // Overwrites `event` with the next event and returns true, or returns
  // false once `num_events` have been produced. Reusing one `event` across
  // calls reuses its string buffers.
  bool Next(WPayEvent& event);

  // Events produced so far.
  int64_t position() const { return next_seq_; }

  const WPayOptions& options() const { return options_; }

 private:
  struct ZipfTable;
  WPayGenerator(const WPayOptions& options, std::unique_ptr<ZipfTable> zipf);

  int64_t SampleUser(uint64_t bits) const;

  WPayOptions options_;
  std::unique_ptr<ZipfTable> zipf_;
  std::vector<int64_t> next_offset_;  // per partition
  int64_t next_seq_ = 0;
  // Options converted once to integer thresholds and milliseconds.
  uint64_t late_threshold_ = 0;
  uint64_t disorder_threshold_ = 0;
  uint64_t null_threshold_ = 0;
  uint64_t malformed_threshold_ = 0;
  int64_t max_disorder_ms_ = 1;
  int64_t min_lateness_ms_ = 1;
  int64_t max_lateness_ms_ = 1;
};

}  // namespace testing
}  // namespace weir

#endif  // WEIR_TESTING_WPAY_H_
