// weir-schema: says whether a new Avro schema may follow the previous ones
// under a schema registry's compatibility mode, and when not, which field
// breaks which rule (weir/avro/avro_schema.h). Run it before registering a
// schema, in CI or by hand; the registry's own check gives the same answer.
//
//   $ weir-schema --mode=FULL --previous=payment_v1.avsc,payment_v2.avsc \
//         --candidate=payment_v3.avsc
//   Payment.amount: a reader of type int cannot read the writer's float
//   (the latest version reading data of the new schema)
//
// Exit status: 0 compatible, 1 not compatible, 2 bad flags or schemas.

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "tools/common/command_line.h"
#include "weir/avro/avro_schema.h"
#include "weir/status_macros.h"

ABSL_FLAG(std::string, mode, "BACKWARD",
          "NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, "
          "FULL or FULL_TRANSITIVE.");
ABSL_FLAG(std::vector<std::string>, previous, {},
          "The registered versions' schema files (.avsc), oldest first.");
ABSL_FLAG(std::string, candidate, "", "The new schema's file. Required.");

namespace {

absl::StatusOr<weir::AvroSchema> Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<weir::AvroSchema> schema = weir::AvroSchema::Parse(text.str());
  if (!schema.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", schema.status().message()));
  }
  return schema;
}

absl::StatusOr<bool> Run() {
  WEIR_ASSIGN_OR_RETURN(
      weir::SchemaCompatibility mode,
      weir::ParseSchemaCompatibility(absl::GetFlag(FLAGS_mode)));
  if (absl::GetFlag(FLAGS_candidate).empty()) {
    return absl::InvalidArgumentError("--candidate is required");
  }
  WEIR_ASSIGN_OR_RETURN(weir::AvroSchema candidate,
                        Load(absl::GetFlag(FLAGS_candidate)));
  std::vector<weir::AvroSchema> previous;
  for (const std::string& path : absl::GetFlag(FLAGS_previous)) {
    WEIR_ASSIGN_OR_RETURN(weir::AvroSchema s, Load(path));
    previous.push_back(std::move(s));
  }
  const weir::CompatibilityResult r =
      weir::CheckCompatibility(candidate, previous, mode);
  std::printf("%s\n", r.ToString().c_str());
  return r.compatible;
}

}  // namespace

int main(int argc, char** argv) {
  weir::tools::ParseCommandLine(
      argc, argv,
      {.usage = "checks a new Avro schema against the previous ones under a "
                "registry "
                "compatibility mode.\nusage: weir-schema --mode=FULL "
                "--previous=v1.avsc,v2.avsc --candidate=v3.avsc",
       .repeatable = {"previous"}});
  absl::StatusOr<bool> compatible = Run();
  if (!compatible.ok()) {
    std::fprintf(stderr, "weir-schema: %s\n",
                 std::string(compatible.status().message()).c_str());
    return 2;
  }
  return *compatible ? 0 : 1;
}
