#include "weir/testing/sqlite_oracle.h"

#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string_view>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "weir/status_macros.h"
#include "weir/testing/subprocess.h"

namespace weir {
namespace testing {
namespace {

constexpr int64_t kMaxParamMillis = int64_t{1} << 50;  // about 35,000 years

absl::Status CheckMillis(const char* name, absl::Duration d, bool positive) {
  if (d != absl::Floor(d, absl::Milliseconds(1))) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " must be a whole number of milliseconds"));
  }
  const int64_t ms = ToMillis(d);
  if ((positive ? ms <= 0 : ms < 0) || ms > kMaxParamMillis) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, positive ? " must be > 0" : " must be >= 0", " and <= 2^50 ms"));
  }
  return absl::OkStatus();
}

// Appends `s` as a quoted CSV field ("" for each ").
void AppendCsvQuoted(std::string& out, std::string_view s) {
  out.push_back('"');
  for (char c : s) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
}

absl::Status WriteFile(const std::string& path, std::string_view data) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) {
    return absl::InternalError(absl::StrCat("cannot create ", path));
  }
  const size_t n = std::fwrite(data.data(), 1, data.size(), f);
  const bool ok = n == data.size() && std::fclose(f) == 0;
  if (!ok) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InternalError(absl::StrCat("cannot open ", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  return std::move(ss).str();
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

bool DecodeHex(absl::string_view hex, std::string& out) {
  if (hex.size() % 2 != 0) return false;
  out.clear();
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int hi = HexDigit(hex[i]);
    const int lo = HexDigit(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return true;
}

absl::Status BadLine(absl::string_view line) {
  return absl::InternalError(absl::StrCat(
      "sqlite3 printed an unexpected line: ", line.substr(0, 200)));
}

// Parses the output of the script: "L,<partition>,<offset>" and
// "G,x<hex of the user's bytes>,<window start>,<count>,<sum>,<nonnull count>"
// lines.
absl::Status ParseOutput(absl::string_view text, OracleResult& result) {
  std::string user;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    std::vector<absl::string_view> f = absl::StrSplit(line, ',');
    if (f[0] == "L" && f.size() == 3) {
      int32_t p;
      int64_t o;
      if (!absl::SimpleAtoi(f[1], &p) || !absl::SimpleAtoi(f[2], &o)) {
        return BadLine(line);
      }
      result.late.emplace(p, o);
    } else if (f[0] == "G" && f.size() == 6) {
      int64_t ws;
      OracleGroup g;
      if (!absl::ConsumePrefix(&f[1], "x") || !DecodeHex(f[1], user) ||
          !absl::SimpleAtoi(f[2], &ws) || !absl::SimpleAtoi(f[3], &g.count) ||
          !absl::SimpleAtoi(f[4], &g.sum_cents) ||
          !absl::SimpleAtoi(f[5], &g.nonnull_count)) {
        return BadLine(line);
      }
      if (!result.groups.emplace(std::make_pair(user, ws), g).second) {
        return BadLine(line);
      }
    } else {
      return BadLine(line);
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<OracleEvent> OracleEventsFrom(absl::Span<const WPayEvent> events) {
  std::vector<OracleEvent> out;
  out.reserve(events.size());
  for (const WPayEvent& e : events) {
    if (!e.accepted()) continue;
    out.push_back(OracleEvent{e.partition, e.offset, e.user_id, e.event_time,
                              e.amount_cents});
  }
  return out;
}

absl::Status SqliteOracleOptions::Validate() const {
  WEIR_RETURN_IF_ERROR(CheckMillis("window_size", window_size, true));
  WEIR_RETURN_IF_ERROR(
      CheckMillis("max_out_of_orderness", max_out_of_orderness, false));
  WEIR_RETURN_IF_ERROR(
      CheckMillis("allowed_lateness", allowed_lateness, false));
  if (window_offset != absl::Floor(window_offset, absl::Milliseconds(1)) ||
      absl::AbsDuration(window_offset) >= window_size) {
    return absl::InvalidArgumentError(
        "window_offset must be a whole number of ms, less than window_size "
        "either way");
  }
  if (sqlite3_path.empty()) {
    return absl::InvalidArgumentError("sqlite3_path must not be empty");
  }
  if (timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("timeout must be > 0");
  }
  return absl::OkStatus();
}

namespace {

// Checks `events` and writes them as CSV: partition, offset, "user", time,
// amount (empty for null).
absl::StatusOr<std::string> EventsCsv(absl::Span<const OracleEvent> events) {
  constexpr int64_t kTimeLimit = int64_t{1} << 62;
  absl::flat_hash_set<std::pair<int32_t, int64_t>> seen;
  seen.reserve(events.size());
  std::string csv;
  csv.reserve(events.size() * 48);
  for (const OracleEvent& e : events) {
    if (!seen.emplace(e.partition, e.offset).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("events: duplicate (partition, offset) (", e.partition,
                       ", ", e.offset, ")"));
    }
    if (e.user_id.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("events: user_id with a NUL byte at offset ", e.offset));
    }
    if (e.event_time < -kTimeLimit || e.event_time > kTimeLimit) {
      return absl::InvalidArgumentError(absl::StrCat(
          "events: event_time outside +-2^62 ms at offset ", e.offset));
    }
    absl::StrAppend(&csv, e.partition, ",", e.offset, ",");
    AppendCsvQuoted(csv, e.user_id);
    absl::StrAppend(&csv, ",", e.event_time, ",");
    if (e.amount_cents.has_value()) absl::StrAppend(&csv, *e.amount_cents);
    csv.push_back('\n');
  }
  return csv;
}

// The SQL that loads ev.csv into the table ev(p, o, u, t, a).
constexpr char kLoadEvents[] =
    "CREATE TABLE ev(p INTEGER, o INTEGER, u TEXT, t INTEGER, a INTEGER);\n"
    ".import --csv ev.csv ev\n"
    "UPDATE ev SET a = NULL WHERE a = '';\n";

// The SQL expression of the start of the window of size `size` ms, shifted
// by `offset` ms, that holds time t: floor((t - offset) / size) * size +
// offset (floor, so correct for negative times).
std::string WindowStartSql(int64_t size, int64_t offset) {
  return absl::StrCat("t - (((t - ", offset, ") % ", size, ") + ", size, ") % ",
                      size);
}

// Runs `script` with sqlite3 in a new temporary directory where it finds
// `events` as ev.csv (EventsCsv); returns the file `output` it wrote.
absl::StatusOr<std::string> RunSqliteScript(
    absl::Span<const OracleEvent> events, const std::string& script,
    const std::string& output, const std::string& sqlite3_path,
    absl::Duration timeout) {
  WEIR_ASSIGN_OR_RETURN(TempDir dir, TempDir::Create("weir-oracle"));
  {
    WEIR_ASSIGN_OR_RETURN(std::string csv, EventsCsv(events));
    WEIR_RETURN_IF_ERROR(WriteFile(dir.path() + "/ev.csv", csv));
  }
  WEIR_RETURN_IF_ERROR(WriteFile(dir.path() + "/oracle.sql", script));
  SubprocessOptions sub_options;
  sub_options.cwd = dir.path();
  sub_options.merge_stderr = true;
  WEIR_ASSIGN_OR_RETURN(
      auto child,
      Subprocess::Start({sqlite3_path, "-batch", "-bail", "-init", "/dev/null",
                         ":memory:", ".read oracle.sql"},
                        sub_options));
  const absl::Time deadline = absl::Now() + timeout;
  // The results go to a file; the pipe carries only error messages.
  WEIR_ASSIGN_OR_RETURN(std::string messages, child->ReadAll(timeout));
  WEIR_ASSIGN_OR_RETURN(
      int wait_status,
      child->Wait(std::max(deadline - absl::Now(), absl::Seconds(1))));
  if (WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 127 &&
      messages.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot run ", sqlite3_path, " (install the sqlite3 package)"));
  }
  if (!WIFEXITED(wait_status) || WEXITSTATUS(wait_status) != 0 ||
      !messages.empty()) {
    return absl::InternalError(absl::StrCat("sqlite3 failed (wait status ",
                                            wait_status,
                                            "): ", messages.substr(0, 2000)));
  }
  return ReadFile(dir.path() + "/" + output);
}

}  // namespace

absl::StatusOr<OracleResult> RunSqliteOracle(
    absl::Span<const OracleEvent> events, const SqliteOracleOptions& options) {
  WEIR_RETURN_IF_ERROR(options.Validate());

  const int64_t size = ToMillis(options.window_size);
  const int64_t ooo = ToMillis(options.max_out_of_orderness);
  const int64_t lateness = ToMillis(options.allowed_lateness);
  const std::string script = absl::StrCat(
      kLoadEvents,
      // ws: the window's start; m: the largest earlier event time of the
      // partition, NULL for its first record.
      "CREATE TABLE w AS SELECT u, p, o, a, ws,\n"
      "  (m IS NOT NULL AND ws + ",
      size, " + ", lateness, " <= m - ", ooo,
      ") AS late\n"
      "  FROM (SELECT p, o, u, a,\n    ",
      WindowStartSql(size, ToMillis(options.window_offset)), " AS ws,\n",
      "    MAX(t) OVER (PARTITION BY p ORDER BY o\n"
      "      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS m\n"
      "    FROM ev);\n"
      ".headers off\n"
      ".mode csv\n"
      ".output out.csv\n"
      "SELECT 'L', p, o FROM w WHERE late;\n"
      "SELECT 'G', 'x' || hex(u), ws, count(*), coalesce(sum(a), 0), count(a)\n"
      "  FROM w WHERE NOT late GROUP BY u, ws;\n"
      ".output stdout\n");

  WEIR_ASSIGN_OR_RETURN(std::string out,
                        RunSqliteScript(events, script, "out.csv",
                                        options.sqlite3_path, options.timeout));
  OracleResult result;
  WEIR_RETURN_IF_ERROR(ParseOutput(out, result));
  return result;
}

absl::Status SqliteBatchOptions::Validate() const {
  if (features.empty()) {
    return absl::InvalidArgumentError("features must not be empty");
  }
  for (const BatchFeature& f : features) {
    const std::string field = absl::StrCat("features[", f.name, "]");
    if (f.name.empty() || f.name.find_first_of("',\"\n") != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          field,
          ": the name must be non-empty, without quotes, commas or "
          "newlines"));
    }
    WEIR_RETURN_IF_ERROR(
        CheckMillis((field + ".window_size").c_str(), f.window_size, true));
    if (f.window_offset !=
            absl::Floor(f.window_offset, absl::Milliseconds(1)) ||
        absl::AbsDuration(f.window_offset) >= f.window_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          field,
          ".window_offset must be a whole number of ms, less than the "
          "window_size either way"));
    }
  }
  if (sqlite3_path.empty()) {
    return absl::InvalidArgumentError("sqlite3_path must not be empty");
  }
  if (timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("timeout must be > 0");
  }
  return absl::OkStatus();
}

absl::Status RunSqliteBatchExport(absl::Span<const OracleEvent> events,
                                  const SqliteBatchOptions& options,
                                  const std::string& csv_path) {
  WEIR_RETURN_IF_ERROR(options.Validate());
  // One SELECT per feature: (entity, feature, window_start, value), the
  // value text as weir's sinks print it ('' for a null).
  std::vector<std::string> selects;
  for (const BatchFeature& f : options.features) {
    std::string value;
    switch (f.aggregate) {
      case BatchFeature::Aggregate::kCount:
        value = "count(*)";
        break;
      case BatchFeature::Aggregate::kDecimalSum:
        value =
            "printf('%s%d.%02d', CASE WHEN sum(a) < 0 THEN '-' ELSE '' END, "
            "abs(coalesce(sum(a), 0)) / 100, abs(coalesce(sum(a), 0)) % 100)";
        break;
      case BatchFeature::Aggregate::kMean:
        value =
            "CASE WHEN count(a) = 0 THEN '' ELSE printf('%.17g', "
            "sum(a) / 100.0 / count(a)) END";
        break;
    }
    selects.push_back(absl::StrCat(
        "SELECT u AS entity, '", f.name, "' AS feature, ws AS window_start, ",
        value, " AS value\n  FROM (SELECT u, a, ",
        WindowStartSql(ToMillis(f.window_size), ToMillis(f.window_offset)),
        " AS ws FROM ev)\n  GROUP BY u, ws\n"));
  }
  const std::string script = absl::StrCat(
      kLoadEvents, ".headers off\n.mode csv\n.output batch.csv\n",
      // The header even when there are no rows.
      "SELECT 'entity', 'feature', 'window_start', 'value';\n",
      absl::StrJoin(selects, "UNION ALL\n"), ";\n.output stdout\n");

  WEIR_ASSIGN_OR_RETURN(std::string out,
                        RunSqliteScript(events, script, "batch.csv",
                                        options.sqlite3_path, options.timeout));
  return WriteFile(csv_path, out);
}

}  // namespace testing
}  // namespace weir
