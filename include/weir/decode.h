// -----------------------------------------------------------------------------
// File: decode.h
// -----------------------------------------------------------------------------
//
// Turning source bytes into `Event`s, and how a decode failure is described.
//
// A `RawRecord` is one record as the source delivers it: its position in the
// log, its timestamp and its key and value bytes. A `Decoder` makes an
// `Event` of it or fails. A failure is an ordinary non-OK `absl::Status`
// that carries a `DecodeError` as a status payload: the category the
// dead-letter queue files it under (deserialization, schema_mismatch,
// processing_error), a short stable error type ("invalid_json",
// "missing_field", "wrong_type", "lossy_number", ...), the field at fault and
// the message. `MakeDecodeError` builds such a status and `GetDecodeError`
// reads it back from any status: a status without the payload (say, one a
// user's decoder returned as is) reads as a processing_error whose type is
// the status code's name ("invalid_argument").
//
// Any callable `absl::StatusOr<Event>(const RawRecord&)` is a decoder too
// (the `DecodeFunction` concept): `MakeDecoder(f)` wraps it, so a user's own
// decoder gets the same dead-letter handling as the built-in JSON decoder
// (see dlq.h). The wrapper stamps the record's partition and offset on every
// event it returns, and turns an exception escaping the callable into a
// processing_error of type "exception" instead of letting it unwind into the
// pipeline.
//
// Threading: a `Decoder` is used by one thread at a time (the pipeline thread
// that owns it); implementations may keep scratch buffers and need not lock.
// The pipeline holds no lock while it calls `Decode`. The free functions are
// thread-safe.
//
// Example:
//   auto decoder = weir::MakeDecoder(
//       [](const weir::RawRecord& r) -> absl::StatusOr<weir::Event> {
//         if (r.value.empty()) {
//           return weir::MakeDecodeError(
//               weir::DecodeErrorCategory::kDeserialization, "empty_value",
//               "the record has no value");
//         }
//         weir::Event e;
//         e.key = std::string(r.key);
//         e.event_time = r.timestamp.value_or(0);
//         e.values = {weir::Value::String(std::string(r.value))};
//         return e;
//       });
//   absl::StatusOr<weir::Event> event = decoder->Decode(raw);
//   if (!event.ok()) {
//     weir::DecodeError error = weir::GetDecodeError(event.status());
//     // error.category, error.type, error.field, error.message
//   }

#ifndef WEIR_DECODE_H_
#define WEIR_DECODE_H_

#include <concepts>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "weir/record.h"
#include "weir/time.h"

namespace weir {

// One record as the source delivers it. The views stay valid for the
// duration of the call the record is passed to.
struct RawRecord {
  // Source topic (or file name for file sources).
  std::string_view topic;
  int32_t partition = 0;
  int64_t offset = 0;
  // The source's own timestamp (Kafka's CreateTime or LogAppendTime) in
  // milliseconds since the epoch; unset when the source has none.
  std::optional<EventTime> timestamp;
  std::string_view key;
  std::string_view value;
};

// Which kind of failure a record met; the dead-letter queue files records by
// it.
enum class DecodeErrorCategory : uint8_t {
  // The bytes are not well-formed at all (broken JSON, bad UTF-8).
  kDeserialization,
  // Well-formed, but not what the schema declares (missing field, wrong
  // type, a fraction where an integer is declared).
  kSchemaMismatch,
  // Decoding or processing the record failed for another reason.
  kProcessingError,
};

inline constexpr int kNumDecodeErrorCategories = 3;

// "deserialization", "schema_mismatch" or "processing_error".
const char* DecodeErrorCategoryName(DecodeErrorCategory category);

// The inverse of DecodeErrorCategoryName; nullopt for any other text.
std::optional<DecodeErrorCategory> ParseDecodeErrorCategory(
    std::string_view name);

// What went wrong with one record.
struct DecodeError {
  DecodeErrorCategory category = DecodeErrorCategory::kProcessingError;
  // A short stable token such as "invalid_json", "missing_field",
  // "wrong_type" or "lossy_number", fit for grouping and alerting.
  std::string type;
  // The field at fault, if one is; empty otherwise.
  std::string field;
  // For people: what was expected and what was found.
  std::string message;

  friend bool operator==(const DecodeError&, const DecodeError&) = default;
};

// A kInvalidArgument status (the record is bad; retrying it cannot help) with
// `message` as its message and the category, type and field attached as a
// payload that GetDecodeError reads.
absl::Status MakeDecodeError(DecodeErrorCategory category,
                             std::string_view type, std::string_view message,
                             std::string_view field = {});

// The DecodeError that `status` carries. A status without the payload reads
// as {kProcessingError, lower-case code name, "", status.message()}.
// REQUIRES: !status.ok().
DecodeError GetDecodeError(const absl::Status& status);

// Turns raw records into events.
class Decoder {
 public:
  virtual ~Decoder() = default;

  // The event `record` holds, with `partition` and `offset` copied from the
  // record, or a status GetDecodeError can classify. Must not throw.
  virtual absl::StatusOr<Event> Decode(const RawRecord& record) = 0;

  // As Decode, writing into `*event` and reusing its storage (the pipeline
  // decodes every record into the same Event). On failure `*event` is left
  // in an unspecified but valid state. The default calls Decode.
  virtual absl::Status DecodeInto(const RawRecord& record, Event* event);
};

// A callable usable as a decoder: `f(record)` with `const RawRecord&`,
// returning something convertible to `absl::StatusOr<Event>`.
template <typename F>
concept DecodeFunction = std::invocable<F&, const RawRecord&> &&
    std::convertible_to<std::invoke_result_t<F&, const RawRecord&>,
                        absl::StatusOr<Event>>;

// A Decoder made of a DecodeFunction.
template <DecodeFunction F>
class FunctionDecoder final : public Decoder {
 public:
  explicit FunctionDecoder(F f) : f_(std::move(f)) {}

  absl::StatusOr<Event> Decode(const RawRecord& record) override {
    absl::StatusOr<Event> event = Call(record);
    if (event.ok()) {
      event->partition = record.partition;
      event->offset = record.offset;
    }
    return event;
  }

 private:
  absl::StatusOr<Event> Call(const RawRecord& record) {
#if defined(__cpp_exceptions)
    try {
      return std::invoke(f_, record);
    } catch (const std::exception& e) {
      return MakeDecodeError(DecodeErrorCategory::kProcessingError, "exception",
                             e.what());
    } catch (...) {
      return MakeDecodeError(DecodeErrorCategory::kProcessingError, "exception",
                             "the decoder threw a non-exception");
    }
#else
    return std::invoke(f_, record);
#endif
  }

  F f_;
};

// Wraps a user's callable as a Decoder.
template <DecodeFunction F>
std::unique_ptr<Decoder> MakeDecoder(F f) {
  return std::make_unique<FunctionDecoder<F>>(std::move(f));
}

}  // namespace weir

#endif  // WEIR_DECODE_H_
