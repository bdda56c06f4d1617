#include "weir/decode.h"

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "weir/internal/string_view.h"

namespace weir {
namespace {

// The payload key under which a DecodeError travels in an absl::Status. Its
// content is "<category>\0<type>\0<field>".
constexpr char kDecodeErrorUrl[] = "weir.dev/weir.DecodeError";

using internal::Sv;

}  // namespace

const char* DecodeErrorCategoryName(DecodeErrorCategory category) {
  switch (category) {
    case DecodeErrorCategory::kDeserialization:
      return "deserialization";
    case DecodeErrorCategory::kSchemaMismatch:
      return "schema_mismatch";
    case DecodeErrorCategory::kProcessingError:
      return "processing_error";
  }
  return "processing_error";
}

std::optional<DecodeErrorCategory> ParseDecodeErrorCategory(
    std::string_view name) {
  for (DecodeErrorCategory c : {DecodeErrorCategory::kDeserialization,
                                DecodeErrorCategory::kSchemaMismatch,
                                DecodeErrorCategory::kProcessingError}) {
    if (name == DecodeErrorCategoryName(c)) return c;
  }
  return std::nullopt;
}

absl::Status MakeDecodeError(DecodeErrorCategory category,
                             std::string_view type, std::string_view message,
                             std::string_view field) {
  absl::Status status(absl::StatusCode::kInvalidArgument, Sv(message));
  std::string payload = DecodeErrorCategoryName(category);
  payload.push_back('\0');
  // The type is a token: keep the separator out of it.
  for (char c : type) payload.push_back(c == '\0' ? '_' : c);
  payload.push_back('\0');
  payload.append(field);
  status.SetPayload(kDecodeErrorUrl, absl::Cord(payload));
  return status;
}

DecodeError GetDecodeError(const absl::Status& status) {
  DecodeError error;
  error.message = std::string(status.message());
  absl::optional<absl::Cord> payload = status.GetPayload(kDecodeErrorUrl);
  if (payload.has_value()) {
    const std::string text(*payload);
    const size_t first = text.find('\0');
    const size_t second =
        first == std::string::npos ? first : text.find('\0', first + 1);
    if (second != std::string::npos) {
      std::optional<DecodeErrorCategory> category =
          ParseDecodeErrorCategory(std::string_view(text).substr(0, first));
      if (category.has_value()) {
        error.category = *category;
        error.type = text.substr(first + 1, second - first - 1);
        error.field = text.substr(second + 1);
        return error;
      }
    }
  }
  error.category = DecodeErrorCategory::kProcessingError;
  error.type = absl::AsciiStrToLower(absl::StatusCodeToString(status.code()));
  return error;
}

absl::Status Decoder::DecodeInto(const RawRecord& record, Event* event) {
  absl::StatusOr<Event> decoded = Decode(record);
  if (!decoded.ok()) return decoded.status();
  *event = *std::move(decoded);
  return absl::OkStatus();
}

}  // namespace weir
