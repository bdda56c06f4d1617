// -----------------------------------------------------------------------------
// File: testing/sqlite_oracle.h
// -----------------------------------------------------------------------------
//
// An independent oracle for weir's keyed tumbling-window results: the same
// GROUP BY computed by SQLite, through the `sqlite3` command-line program
// (Debian package `sqlite3`), with none of weir's code. Tests compare a
// pipeline's output with it (RELIABILITY.md, "the golden answer ... cross-
// checked against an independent oracle").
//
// The events are written as CSV into a temporary directory and `.import`ed
// into an in-memory database; the SQL below runs; its CSV output is parsed.
//
// Semantics, exactly as weir documents them (window.h, ARCHITECTURE.md
// "Watermarks and determinism"), for window size S, out-of-orderness O and
// allowed lateness A, all in ms:
//   - record r falls in the tumbling window [s, s + S) with
//     s = floor((t - F) / S) * S + F for the window offset F (usually 0;
//     floor, so correct for negative t);
//   - within a partition records are taken in offset order; the watermark
//     before r is W(r) = max(event_time of the partition's records with a
//     smaller offset) - O, and the first record of a partition has none;
//   - r is late iff it has a watermark and s + S + A <= W(r);
//   - per (user_id, window start), over the records that are not late:
//     count = all of them, sum_cents = the sum of the non-null amounts (0 if
//     there are none), nonnull_count = the number of non-null amounts.
// In SQL (ev holds the events: p, o, u, t, a):
//   CREATE TABLE w AS SELECT u, p, o, a, ws,
//       (m IS NOT NULL AND ws + S + A <= m - O) AS late
//     FROM (SELECT p, o, u, a, t - ((t % S) + S) % S AS ws,
//             MAX(t) OVER (PARTITION BY p ORDER BY o ROWS BETWEEN
//                          UNBOUNDED PRECEDING AND 1 PRECEDING) AS m
//           FROM ev);
//   SELECT p, o FROM w WHERE late;
//   SELECT u, ws, count(*), coalesce(sum(a), 0), count(a) FROM w
//     WHERE NOT late GROUP BY u, ws;
//
// Handles a few hundred thousand events in a few seconds.
//
// Threading: RunSqliteOracle is thread-compatible (each call has its own
// temporary directory and child process). Starts no threads; runs one child
// process per call.
//
// Example:
//   WEIR_ASSIGN_OR_RETURN(auto events,
//                         weir::testing::WPayGenerator::GenerateAll(wpay));
//   weir::testing::SqliteOracleOptions options;
//   options.window_size = absl::Minutes(1);
//   options.max_out_of_orderness = absl::Seconds(5);
//   options.allowed_lateness = absl::Minutes(1);
//   WEIR_ASSIGN_OR_RETURN(
//       weir::testing::OracleResult golden,
//       weir::testing::RunSqliteOracle(
//           weir::testing::OracleEventsFrom(events), options));
//   // golden.groups[{"u1", 1767225600000}].count, golden.late.size(), ...

#ifndef WEIR_TESTING_SQLITE_ORACLE_H_
#define WEIR_TESTING_SQLITE_ORACLE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "weir/testing/wpay.h"
#include "weir/time.h"

namespace weir {
namespace testing {

// One well-formed input record, as the oracle sees it.
struct OracleEvent {
  int32_t partition = 0;
  // Position in the partition's log. REQUIRES: unique within a partition.
  int64_t offset = 0;
  // Any bytes but NUL.
  std::string user_id;
  // REQUIRES: within +-2^62 ms.
  EventTime event_time = 0;
  std::optional<int64_t> amount_cents;
};

// The oracle's events for the accepted W-PAY events (`accepted()`: the DLQ
// kinds left out), in the order given.
std::vector<OracleEvent> OracleEventsFrom(absl::Span<const WPayEvent> events);

struct SqliteOracleOptions {
  // Size of the tumbling windows; a whole number of ms > 0.
  // Default: absl::Minutes(1)
  absl::Duration window_size = absl::Minutes(1);

  // Shifts the window boundaries to window_offset + k * window_size, as
  // WindowSpec::offset does (a daily window aligned to another time zone);
  // a whole number of ms, |window_offset| < window_size.
  // Default: absl::ZeroDuration()
  absl::Duration window_offset = absl::ZeroDuration();

  // Subtracted from the largest event time seen to give the watermark; a
  // whole number of ms >= 0. Default: absl::ZeroDuration()
  absl::Duration max_out_of_orderness = absl::ZeroDuration();

  // How long after a window's end (by the watermark) records still count; a
  // whole number of ms >= 0. Default: absl::ZeroDuration()
  absl::Duration allowed_lateness = absl::ZeroDuration();

  // The sqlite3 program, searched in PATH if it has no '/'.
  // Default: "sqlite3"
  std::string sqlite3_path = "sqlite3";

  // How long the sqlite3 run may take. Default: absl::Minutes(5)
  absl::Duration timeout = absl::Minutes(5);

  // Returns kInvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

// The aggregates of one (user, window).
struct OracleGroup {
  int64_t count = 0;          // records, null amounts included
  int64_t sum_cents = 0;      // sum of the non-null amounts; 0 if none
  int64_t nonnull_count = 0;  // records with a non-null amount

  friend bool operator==(const OracleGroup& a, const OracleGroup& b) {
    return a.count == b.count && a.sum_cents == b.sum_cents &&
           a.nonnull_count == b.nonnull_count;
  }
};

struct OracleResult {
  // (user_id, window start) -> aggregates, over the records not late.
  std::map<std::pair<std::string, EventTime>, OracleGroup> groups;
  // The late records, as (partition, offset).
  std::set<std::pair<int32_t, int64_t>> late;
};

// Runs the oracle. Errors: kInvalidArgument for bad options or events (a
// duplicate (partition, offset), a NUL in a user id); kFailedPrecondition if
// sqlite3 cannot be run; kInternal if it fails or prints something
// unexpected; kDeadlineExceeded after `options.timeout`.
absl::StatusOr<OracleResult> RunSqliteOracle(
    absl::Span<const OracleEvent> events, const SqliteOracleOptions& options);

// ---- A batch system's export ----------------------------------------------
//
// What a batch job computes from the same events, as the reference of a
// shadow comparison (weir/shadow.h, weir-shadow): per feature, per (user,
// window) over EVERY event (a batch job has no watermark, so nothing is
// late), written by sqlite3 itself as CSV with the header
// `entity,feature,window_start,value` (window_start in ms; an empty value
// is a null). In SQL, for a window of size S shifted by F (ms):
//   SELECT u, '<name>', ws, <value> FROM (SELECT u, a,
//       t - (((t - F) % S) + S) % S AS ws FROM ev) GROUP BY u, ws
// with <value>, as weir's sinks print the aggregate:
//   kCount       count(*)
//   kDecimalSum  the non-null amounts' sum with 2 decimals ("1234.50"),
//                "0.00" if there are none (weir's empty decimal sum,
//                docs/semantics.md; SQL's SUM would give NULL)
//   kMean        the non-null amounts' mean (sum / 100.0 / count, %.17g),
//                empty if there are none

struct BatchFeature {
  enum class Aggregate { kCount, kDecimalSum, kMean };
  // No quotes, commas or newlines. REQUIRES: non-empty. Default: ""
  std::string name;
  // Default: Aggregate::kCount
  Aggregate aggregate = Aggregate::kCount;
  // Tumbling windows (a whole number of ms > 0) shifted by window_offset
  // (whole ms, less than the size either way).
  // Default: absl::Minutes(1) and absl::ZeroDuration()
  absl::Duration window_size = absl::Minutes(1);
  absl::Duration window_offset = absl::ZeroDuration();
};

struct SqliteBatchOptions {
  // REQUIRES: non-empty. Default: {}
  std::vector<BatchFeature> features;
  // As in SqliteOracleOptions. Default: "sqlite3" and absl::Minutes(5)
  std::string sqlite3_path = "sqlite3";
  absl::Duration timeout = absl::Minutes(5);

  // Returns kInvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

// Computes the features of `options` over `events` with sqlite3 and writes
// the CSV export to `csv_path`. Errors as RunSqliteOracle's, plus
// kInternal if `csv_path` cannot be written.
absl::Status RunSqliteBatchExport(absl::Span<const OracleEvent> events,
                                  const SqliteBatchOptions& options,
                                  const std::string& csv_path);

}  // namespace testing
}  // namespace weir

#endif  // WEIR_TESTING_SQLITE_ORACLE_H_
