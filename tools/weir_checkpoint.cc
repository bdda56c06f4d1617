// weir-checkpoint: inspect the checkpoints of one pipeline partition.
//
//   weir-checkpoint list   <store-uri> <prefix>
//   weir-checkpoint show   <store-uri> <prefix> <id|savepoint-name>
//   weir-checkpoint verify <store-uri> <prefix> [<id|savepoint-name>]
//
// <store-uri> is file:///path or s3://bucket[/prefix] (credentials from
// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN);
// --endpoint=http://host:port selects an S3-compatible server (path-style)
// and --region=... the signing region. <prefix> is the partition's
// checkpoint prefix, e.g. "payments/p3". An argument of digits only names a
// checkpoint id; anything else names a savepoint.
//
// list   prints every checkpoint and savepoint with its time, files, bytes
//        and source offsets (a manifest that does not parse says why).
// show   prints the manifest as stored (a header line and a JSON body).
// verify downloads every file of one manifest, or of all of them, and
//        checks its size and CRC-32C.
//
// Exit status: 0 success, 1 a manifest or file failed to verify or could
// not be read, 2 bad usage.

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "tools/common/command_line.h"
#include "weir/checkpoint.h"
#include "weir/object_store.h"

ABSL_FLAG(std::string, endpoint, "",
          "With an s3:// store: an S3-compatible server, http://host:port "
          "(path-style requests).");
ABSL_FLAG(std::string, region, "",
          "With an s3:// store: the signing region (default us-east-1).");

namespace {

constexpr char kUsage[] =
    "inspects the checkpoints of one pipeline partition.\n"
    "usage:\n"
    "  weir-checkpoint list   <store-uri> <prefix>\n"
    "  weir-checkpoint show   <store-uri> <prefix> <id|savepoint-name>\n"
    "  weir-checkpoint verify <store-uri> <prefix> [<id|savepoint-name>]\n";

int Usage(const std::string& why) {
  std::fprintf(stderr, "weir-checkpoint: %s\n\n%s", why.c_str(), kUsage);
  return 2;
}

void Fail(const std::string& line) {
  std::fprintf(stderr, "weir-checkpoint: %s\n", line.c_str());
}

std::string FormatCreated(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone());
}

std::string Offsets(const weir::CheckpointMetadata& md) {
  std::string out;
  for (const weir::SourceOffset& o : md.source_offsets) {
    absl::StrAppend(&out, out.empty() ? "" : " ", o.topic, "/", o.partition,
                    "@", o.offset);
  }
  return out.empty() ? "-" : out;
}

// A checkpoint id or a savepoint name, as given on the command line.
struct Target {
  std::optional<uint64_t> id;
  std::string savepoint;
  std::string Describe() const {
    return id.has_value() ? absl::StrCat("checkpoint ", *id)
                          : absl::StrCat("savepoint ", savepoint);
  }
};

Target ParseTarget(const std::string& arg) {
  Target t;
  uint64_t id;
  bool digits =
      !arg.empty() && arg.find_first_not_of("0123456789") == std::string::npos;
  if (digits && absl::SimpleAtoi(arg, &id)) {
    t.id = id;
  } else {
    t.savepoint = arg;
  }
  return t;
}

absl::StatusOr<weir::CheckpointManifest> Read(weir::CheckpointStore& store,
                                              const Target& t) {
  return t.id.has_value() ? store.ReadCheckpoint(*t.id)
                          : store.ReadSavepoint(t.savepoint);
}

int List(weir::CheckpointStore& store) {
  int rc = 0;
  absl::StatusOr<std::vector<uint64_t>> ids = store.ListCheckpoints();
  if (!ids.ok()) {
    Fail(ids.status().ToString());
    return 1;
  }
  std::printf("checkpoints under %s in %s: %zu\n", store.prefix().c_str(),
              store.object_store()->uri().c_str(), ids->size());
  for (uint64_t id : *ids) {
    absl::StatusOr<weir::CheckpointManifest> m = store.ReadCheckpoint(id);
    if (!m.ok()) {
      std::printf("  %020lu  UNREADABLE: %s\n", static_cast<unsigned long>(id),
                  m.status().ToString().c_str());
      rc = 1;
      continue;
    }
    std::printf("  %020lu  %s  files=%zu bytes=%lu watermark=%s offsets=%s\n",
                static_cast<unsigned long>(id),
                FormatCreated(m->created).c_str(), m->files.size(),
                static_cast<unsigned long>(m->total_bytes()),
                m->metadata.watermark.has_value()
                    ? absl::StrCat(*m->metadata.watermark).c_str()
                    : "-",
                Offsets(m->metadata).c_str());
  }
  absl::StatusOr<std::vector<std::string>> names = store.ListSavepoints();
  if (!names.ok()) {
    Fail(names.status().ToString());
    return 1;
  }
  std::printf("savepoints: %zu\n", names->size());
  for (const std::string& name : *names) {
    absl::StatusOr<weir::CheckpointManifest> m = store.ReadSavepoint(name);
    if (!m.ok()) {
      std::printf("  %s  UNREADABLE: %s\n", name.c_str(),
                  m.status().ToString().c_str());
      rc = 1;
      continue;
    }
    std::printf("  %s  checkpoint=%lu %s  files=%zu bytes=%lu offsets=%s\n",
                name.c_str(),
                static_cast<unsigned long>(m->metadata.checkpoint_id),
                FormatCreated(m->created).c_str(), m->files.size(),
                static_cast<unsigned long>(m->total_bytes()),
                Offsets(m->metadata).c_str());
  }
  return rc;
}

int Show(weir::CheckpointStore& store, const Target& t) {
  const std::string key = t.id.has_value() ? store.CheckpointKey(*t.id)
                                           : store.SavepointKey(t.savepoint);
  absl::StatusOr<std::string> bytes = store.object_store()->Get(key);
  if (!bytes.ok()) {
    Fail(absl::StrCat(t.Describe(), ": ", bytes.status().ToString()));
    return 1;
  }
  std::fwrite(bytes->data(), 1, bytes->size(), stdout);
  absl::StatusOr<weir::CheckpointManifest> m = weir::ParseManifest(*bytes);
  if (!m.ok()) {
    Fail(absl::StrCat(t.Describe(),
                      " is not a valid manifest: ", m.status().ToString()));
    return 1;
  }
  return 0;
}

// Verifies one manifest; prints one line per problem. True if all is well.
bool VerifyOne(weir::CheckpointStore& store, const Target& t) {
  absl::StatusOr<weir::CheckpointManifest> m = Read(store, t);
  if (!m.ok()) {
    std::printf("FAIL %s: %s\n", t.Describe().c_str(),
                m.status().ToString().c_str());
    return false;
  }
  absl::StatusOr<weir::VerifyReport> report = store.Verify(*m);
  if (!report.ok()) {
    std::printf("FAIL %s: %s\n", t.Describe().c_str(),
                report.status().ToString().c_str());
    return false;
  }
  for (const weir::VerifyReport::Problem& p : report->problems) {
    std::printf("FAIL %s: file %s: %s\n", t.Describe().c_str(), p.name.c_str(),
                p.error.ToString().c_str());
  }
  if (report->ok()) {
    std::printf("OK %s: %lu files, %lu bytes\n", t.Describe().c_str(),
                static_cast<unsigned long>(report->files_checked),
                static_cast<unsigned long>(report->bytes_checked));
  }
  return report->ok();
}

int Verify(weir::CheckpointStore& store, const std::optional<Target>& one) {
  if (one.has_value()) return VerifyOne(store, *one) ? 0 : 1;
  bool ok = true;
  absl::StatusOr<std::vector<uint64_t>> ids = store.ListCheckpoints();
  absl::StatusOr<std::vector<std::string>> names = store.ListSavepoints();
  if (!ids.ok() || !names.ok()) {
    Fail((ids.ok() ? names.status() : ids.status()).ToString());
    return 1;
  }
  for (uint64_t id : *ids) ok &= VerifyOne(store, Target{id, ""});
  for (const std::string& n : *names) {
    ok &= VerifyOne(store, Target{std::nullopt, n});
  }
  if (ids->empty() && names->empty()) {
    std::printf("nothing to verify under %s\n", store.prefix().c_str());
  }
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args =
      weir::tools::ParseCommandLine(argc, argv,
                                    {.usage = kUsage, .positional = true})
          .positional;
  weir::ObjectStoreOptions store_options;
  // An inspector never creates a store: a mistyped path is an error.
  store_options.local.create_if_missing = false;
  if (!absl::GetFlag(FLAGS_endpoint).empty()) {
    store_options.s3.endpoint = absl::GetFlag(FLAGS_endpoint);
  }
  if (!absl::GetFlag(FLAGS_region).empty()) {
    store_options.s3.region = absl::GetFlag(FLAGS_region);
  }
  if (args.size() < 3) return Usage("missing arguments");
  const std::string& command = args[0];
  const size_t max_args = command == "list" ? 3 : 4;
  if (args.size() > max_args) return Usage("too many arguments");
  if (command == "show" && args.size() != 4) {
    return Usage("show needs a checkpoint id or savepoint name");
  }
  if (command != "list" && command != "show" && command != "verify") {
    return Usage(absl::StrCat("unknown command ", command));
  }

  absl::StatusOr<std::unique_ptr<weir::ObjectStore>> object_store =
      weir::OpenObjectStore(args[1], store_options);
  if (!object_store.ok()) {
    Fail(object_store.status().ToString());
    return 1;
  }
  weir::CheckpointStoreOptions options;
  options.prefix = args[2];
  absl::StatusOr<std::unique_ptr<weir::CheckpointStore>> store =
      weir::CheckpointStore::Create(object_store->get(), options);
  if (!store.ok()) {
    Fail(store.status().ToString());
    return 1;
  }
  std::optional<Target> target;
  if (args.size() == 4) target = ParseTarget(args[3]);

  if (command == "list") return List(**store);
  if (command == "show") return Show(**store, *target);
  return Verify(**store, target);
}
