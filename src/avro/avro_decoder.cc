// Implementation of weir/avro/avro_decoder.h.

#include "weir/avro/avro_decoder.h"

#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "simdjson.h"
#include "weir/avro/avro_schema.h"
#include "weir/status_macros.h"

namespace weir {

namespace {

using Type = AvroNode::Type;
using Category = DecodeErrorCategory;

absl::Status Invalid(std::string_view message) {
  return MakeDecodeError(Category::kDeserialization, "invalid_avro", message);
}

// Avro's binary encoding, read from a byte range.
class BinaryReader {
 public:
  explicit BinaryReader(std::string_view data) : data_(data) {}

  bool done() const { return pos_ == data_.size(); }

  absl::StatusOr<int64_t> Long() {
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
      if (pos_ >= data_.size()) return Invalid("truncated varint");
      const uint8_t b = static_cast<uint8_t>(data_[pos_++]);
      if (shift == 63 && (b & 0x7e) != 0) return Invalid("varint too long");
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) {
        return static_cast<int64_t>((v >> 1) ^ (~(v & 1) + 1));
      }
    }
    return Invalid("varint too long");
  }

  absl::StatusOr<std::string_view> Bytes(int64_t n) {
    if (n < 0 || static_cast<uint64_t>(n) > data_.size() - pos_) {
      return Invalid(absl::StrCat("a length of ", n, " with ",
                                  data_.size() - pos_, " bytes left"));
    }
    std::string_view out = data_.substr(pos_, static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return out;
  }

  absl::StatusOr<std::string_view> LengthPrefixed() {
    WEIR_ASSIGN_OR_RETURN(int64_t n, Long());
    return Bytes(n);
  }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

// A big-endian two's-complement unscaled decimal as int64.
absl::StatusOr<int64_t> Unscaled(std::string_view bytes) {
  if (bytes.empty()) return 0;
  const bool negative = (static_cast<uint8_t>(bytes[0]) & 0x80) != 0;
  while (bytes.size() > 8) {
    // Leading bytes beyond 8 must only extend the sign.
    if (static_cast<uint8_t>(bytes[0]) != (negative ? 0xff : 0x00)) {
      return MakeDecodeError(Category::kSchemaMismatch, "number_out_of_range",
                             "a decimal beyond 18 digits");
    }
    bytes.remove_prefix(1);
  }
  uint64_t v = negative ? ~uint64_t{0} : 0;
  for (char c : bytes) v = (v << 8) | static_cast<uint8_t>(c);
  return static_cast<int64_t>(v);
}

bool IsDecimal(const AvroNode& n) { return n.logical_type == "decimal"; }

// Whether weir can hold a value of reader type `n` (a union of null and
// one such type included).
bool Scalar(const AvroSchema& s, int i) {
  const AvroNode& n = s.node(i);
  switch (n.type) {
    case Type::kRecord:
    case Type::kArray:
    case Type::kMap:
      return false;
    case Type::kUnion:
      for (int b : n.branches) {
        if (s.node(b).type == Type::kUnion || !Scalar(s, b)) return false;
      }
      return true;
    default:
      return true;
  }
}

// The reader branch of union `r` that reads writer node `w`.
std::optional<int> PickBranch(const AvroSchema& reader, int r,
                              const AvroSchema& writer, int w) {
  const AvroNode& wn = writer.node(w);
  // The same type first (by name for named types), then a promotion.
  for (int pass = 0; pass < 2; ++pass) {
    for (int b : reader.node(r).branches) {
      const AvroNode& bn = reader.node(b);
      if (pass == 0 && bn.type == wn.type &&
          AvroShortName(bn.full_name) == AvroShortName(wn.full_name)) {
        return b;
      }
      if (pass == 1) {
        const bool promotes = AvroPromotes(wn.type, bn.type);
        if (promotes) return b;
      }
    }
  }
  return std::nullopt;
}

// Reads one writer value of node `w` as the reader's node `r` wants it.
absl::StatusOr<Value> ReadValue(BinaryReader& in, const AvroSchema& writer,
                                int w, const AvroSchema& reader, int r) {
  const AvroNode& wn = writer.node(w);
  if (wn.type == Type::kUnion) {
    WEIR_ASSIGN_OR_RETURN(int64_t index, in.Long());
    if (index < 0 || index >= static_cast<int64_t>(wn.branches.size())) {
      return Invalid(
          absl::StrCat("union branch ", index, " of ", wn.branches.size()));
    }
    return ReadValue(in, writer, wn.branches[static_cast<size_t>(index)],
                     reader, r);
  }
  const AvroNode* rn = &reader.node(r);
  if (rn->type == Type::kUnion) {
    std::optional<int> b = PickBranch(reader, r, writer, w);
    if (!b.has_value()) {
      return MakeDecodeError(
          Category::kSchemaMismatch, "schema_incompatible",
          absl::StrCat("the reader's union cannot hold the writer's ",
                       AvroTypeName(wn.type)));
    }
    rn = &reader.node(*b);
  }
  const bool as_double = rn->type == Type::kFloat || rn->type == Type::kDouble;
  switch (wn.type) {
    case Type::kNull:
      return Value::Null();
    case Type::kBoolean: {
      WEIR_ASSIGN_OR_RETURN(std::string_view b, in.Bytes(1));
      if (b[0] != 0 && b[0] != 1) return Invalid("a boolean byte not 0 or 1");
      return Value::Bool(b[0] == 1);
    }
    case Type::kInt:
    case Type::kLong: {
      WEIR_ASSIGN_OR_RETURN(int64_t v, in.Long());
      if (wn.type == Type::kInt && (v < INT32_MIN || v > INT32_MAX)) {
        return Invalid("an int beyond 32 bits");
      }
      return as_double ? Value::Double(static_cast<double>(v))
                       : Value::Int64(v);
    }
    case Type::kFloat: {
      WEIR_ASSIGN_OR_RETURN(std::string_view b, in.Bytes(4));
      float f;
      std::memcpy(&f, b.data(), 4);  // little-endian, as x86 and ARM
      return Value::Double(static_cast<double>(f));
    }
    case Type::kDouble: {
      WEIR_ASSIGN_OR_RETURN(std::string_view b, in.Bytes(8));
      double d;
      std::memcpy(&d, b.data(), 8);
      return Value::Double(d);
    }
    case Type::kString:
    case Type::kBytes:
    case Type::kFixed: {
      std::string_view bytes;
      if (wn.type == Type::kFixed) {
        WEIR_ASSIGN_OR_RETURN(bytes, in.Bytes(wn.size));
      } else {
        WEIR_ASSIGN_OR_RETURN(bytes, in.LengthPrefixed());
      }
      if (IsDecimal(wn) && IsDecimal(*rn)) {
        WEIR_ASSIGN_OR_RETURN(int64_t units, Unscaled(bytes));
        return Value::Dec(units, wn.scale);
      }
      return Value::String(std::string(bytes));
    }
    case Type::kEnum: {
      WEIR_ASSIGN_OR_RETURN(int64_t index, in.Long());
      if (index < 0 || index >= static_cast<int64_t>(wn.symbols.size())) {
        return Invalid(
            absl::StrCat("enum symbol ", index, " of ", wn.symbols.size()));
      }
      return Value::String(wn.symbols[static_cast<size_t>(index)]);
    }
    default:
      return MakeDecodeError(Category::kSchemaMismatch, "wrong_type",
                             "a record, array or map is not a weir value");
  }
}

// Skips one writer value of node `w`.
absl::Status Skip(BinaryReader& in, const AvroSchema& writer, int w) {
  const AvroNode& n = writer.node(w);
  switch (n.type) {
    case Type::kNull:
      return absl::OkStatus();
    case Type::kBoolean:
      return in.Bytes(1).status();
    case Type::kInt:
    case Type::kLong:
    case Type::kEnum:
      return in.Long().status();
    case Type::kFloat:
      return in.Bytes(4).status();
    case Type::kDouble:
      return in.Bytes(8).status();
    case Type::kString:
    case Type::kBytes:
      return in.LengthPrefixed().status();
    case Type::kFixed:
      return in.Bytes(n.size).status();
    case Type::kRecord:
      for (const AvroNode::Field& f : n.fields) {
        WEIR_RETURN_IF_ERROR(Skip(in, writer, f.type));
      }
      return absl::OkStatus();
    case Type::kUnion: {
      WEIR_ASSIGN_OR_RETURN(int64_t index, in.Long());
      if (index < 0 || index >= static_cast<int64_t>(n.branches.size())) {
        return Invalid(absl::StrCat("union branch ", index));
      }
      return Skip(in, writer, n.branches[static_cast<size_t>(index)]);
    }
    case Type::kArray:
    case Type::kMap:
      while (true) {
        WEIR_ASSIGN_OR_RETURN(int64_t count, in.Long());
        if (count == 0) return absl::OkStatus();
        if (count < 0) {
          // A block with its size in bytes: skipped at once.
          WEIR_ASSIGN_OR_RETURN(int64_t size, in.Long());
          WEIR_RETURN_IF_ERROR(in.Bytes(size).status());
          continue;
        }
        for (int64_t i = 0; i < count; ++i) {
          if (n.type == Type::kMap) {
            WEIR_RETURN_IF_ERROR(in.LengthPrefixed().status());
          }
          WEIR_RETURN_IF_ERROR(Skip(in, writer, n.items));
        }
      }
  }
  return absl::OkStatus();
}

// A reader field's default (Avro JSON) as the value weir holds.
absl::StatusOr<Value> DefaultValue(const AvroSchema& reader, int r,
                                   const std::string& json) {
  simdjson::dom::parser parser;
  simdjson::dom::element e;
  if (parser.parse(json).get(e)) {
    return absl::InvalidArgumentError("a default that is not JSON");
  }
  const AvroNode* n = &reader.node(r);
  // A union's default is of its first branch.
  if (n->type == Type::kUnion) n = &reader.node(n->branches.front());
  switch (n->type) {
    case Type::kNull:
      return Value::Null();
    case Type::kBoolean:
      if (bool b; !e.get_bool().get(b)) return Value::Bool(b);
      break;
    case Type::kInt:
    case Type::kLong:
      if (int64_t v; !e.get_int64().get(v)) return Value::Int64(v);
      break;
    case Type::kFloat:
    case Type::kDouble:
      if (double d; !e.get_double().get(d)) return Value::Double(d);
      break;
    case Type::kString:
    case Type::kEnum:
      if (std::string_view s; !e.get_string().get(s)) {
        return Value::String(std::string(s));
      }
      break;
    case Type::kBytes:
    case Type::kFixed:
      if (std::string_view s; !e.get_string().get(s)) {
        // Avro writes bytes defaults as strings of code points 0-255.
        std::string bytes;
        for (size_t i = 0; i < s.size(); ++i) {
          const uint8_t c = static_cast<uint8_t>(s[i]);
          if (c < 0x80) {
            bytes.push_back(static_cast<char>(c));
          } else if (i + 1 < s.size()) {
            bytes.push_back(
                static_cast<char>(((c & 0x1f) << 6) | (s[++i] & 0x3f)));
          }
        }
        if (IsDecimal(*n)) {
          absl::StatusOr<int64_t> units = Unscaled(bytes);
          if (!units.ok()) break;
          return Value::Dec(*units, n->scale);
        }
        return Value::String(bytes);
      }
      break;
    default:
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("the default ", json, " does not fit the field's type"));
}

int FieldIndex(const AvroNode& record, const std::string& name) {
  for (size_t i = 0; i < record.fields.size(); ++i) {
    if (record.fields[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace

absl::Status AvroDecoderOptions::Validate() const {
  if (reader_schema.empty()) {
    return absl::InvalidArgumentError(
        "AvroDecoderOptions.reader_schema is empty");
  }
  if (key_field.empty()) {
    return absl::InvalidArgumentError("AvroDecoderOptions.key_field is empty");
  }
  if (event_time_field.has_value() && event_time_field->empty()) {
    return absl::InvalidArgumentError(
        "AvroDecoderOptions.event_time_field is empty");
  }
  if (writer_schemas != nullptr && writer_schema.has_value()) {
    return absl::InvalidArgumentError(
        "AvroDecoderOptions.writer_schema: set it or writer_schemas, not "
        "both");
  }
  return absl::OkStatus();
}

class AvroDecoder::Impl {
 public:
  // What to do with each field of one writer schema.
  struct Plan {
    AvroSchema writer;
    // Per writer field: the slot it fills (0 key, 1 time, 2.. values) and
    // the reader field's node, or -1 to skip it.
    std::vector<std::pair<int, int>> actions;
    // Slots no writer field fills, with their defaults.
    std::vector<std::pair<int, Value>> defaults;
  };

  absl::Status Init(AvroDecoderOptions options) {
    options_ = std::move(options);
    WEIR_ASSIGN_OR_RETURN(reader_, AvroSchema::Parse(options_.reader_schema));
    const AvroNode& root = reader_.node(reader_.root());
    if (root.type != Type::kRecord) {
      return absl::InvalidArgumentError(
          "AvroDecoderOptions.reader_schema: must be a record");
    }
    std::vector<std::string> names = {options_.key_field,
                                      options_.event_time_field.value_or("")};
    for (const std::string& f : options_.value_fields) names.push_back(f);
    for (size_t slot = 0; slot < names.size(); ++slot) {
      if (slot == 1 && !options_.event_time_field.has_value()) {
        slot_fields_.push_back(-1);
        continue;
      }
      const int i = FieldIndex(root, names[slot]);
      const std::string where =
          slot == 0   ? "key_field"
          : slot == 1 ? "event_time_field"
                      : absl::StrCat("value_fields[", slot - 2, "]");
      if (i < 0) {
        return absl::InvalidArgumentError(absl::StrCat("AvroDecoderOptions.",
                                                       where,
                                                       ": the reader schema "
                                                       "has no field \"",
                                                       names[slot], "\""));
      }
      if (!Scalar(reader_, root.fields[i].type)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "AvroDecoderOptions.", where, ": field \"", names[slot],
            "\" is a record, array or map, not a value"));
      }
      slot_fields_.push_back(i);
    }
    if (options_.writer_schemas == nullptr) {
      absl::StatusOr<std::unique_ptr<Plan>> plan =
          Compile(options_.writer_schema.value_or(options_.reader_schema));
      if (!plan.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "AvroDecoderOptions.writer_schema: ", plan.status().message()));
      }
      fixed_plan_ = *std::move(plan);
    }
    return absl::OkStatus();
  }

  absl::Status DecodeInto(const RawRecord& record, Event* event) {
    std::string_view body = record.value;
    const Plan* plan = fixed_plan_.get();
    if (options_.writer_schemas != nullptr) {
      if (body.size() < 5 || body[0] != 0) {
        return MakeDecodeError(
            Category::kDeserialization, "bad_magic_byte",
            "not the Confluent wire format (magic byte 0 and a schema id)");
      }
      const auto* b = reinterpret_cast<const uint8_t*>(body.data());
      const int32_t id =
          static_cast<int32_t>((uint32_t{b[1]} << 24) | (uint32_t{b[2]} << 16) |
                               (uint32_t{b[3]} << 8) | uint32_t{b[4]});
      body.remove_prefix(5);
      WEIR_ASSIGN_OR_RETURN(plan, PlanFor(id));
    }
    const AvroNode& root = reader_.node(reader_.root());
    slots_.assign(slot_fields_.size(), Value::Null());
    for (const auto& [slot, value] : plan->defaults) slots_[slot] = value;
    BinaryReader in(body);
    const AvroNode& wroot = plan->writer.node(plan->writer.root());
    for (size_t i = 0; i < wroot.fields.size(); ++i) {
      const auto [slot, rfield] = plan->actions[i];
      if (slot < 0) {
        WEIR_RETURN_IF_ERROR(Skip(in, plan->writer, wroot.fields[i].type));
        continue;
      }
      absl::StatusOr<Value> v =
          ReadValue(in, plan->writer, wroot.fields[i].type, reader_,
                    root.fields[rfield].type);
      if (!v.ok()) {
        DecodeError e = GetDecodeError(v.status());
        return MakeDecodeError(e.category, e.type, e.message,
                               root.fields[rfield].name);
      }
      slots_[slot] = *std::move(v);
    }
    if (!in.done()) return Invalid("bytes left after the record");

    if (slots_[0].type() != Value::Type::kString) {
      return MakeDecodeError(
          Category::kSchemaMismatch,
          slots_[0].is_null() ? "missing_field" : "wrong_type",
          "the key must be a string", options_.key_field);
    }
    event->key = slots_[0].string_value();
    if (options_.event_time_field.has_value()) {
      if (slots_[1].type() != Value::Type::kInt64) {
        return MakeDecodeError(
            Category::kSchemaMismatch,
            slots_[1].is_null() ? "missing_field" : "wrong_type",
            "the event time must be a long (ms since the epoch)",
            *options_.event_time_field);
      }
      event->event_time = slots_[1].int64_value();
    } else if (record.timestamp.has_value()) {
      event->event_time = *record.timestamp;
    } else {
      return MakeDecodeError(Category::kSchemaMismatch, "missing_timestamp",
                             "the record has no timestamp");
    }
    event->partition = record.partition;
    event->offset = record.offset;
    event->values.assign(std::make_move_iterator(slots_.begin() + 2),
                         std::make_move_iterator(slots_.end()));
    return absl::OkStatus();
  }

 private:
  absl::StatusOr<const Plan*> PlanFor(int32_t id) {
    if (auto it = plans_.find(id); it != plans_.end()) {
      if (!it->second.ok()) return it->second.status();
      return it->second->get();
    }
    absl::StatusOr<std::string> json =
        options_.writer_schemas->WriterSchema(id);
    if (!json.ok()) {
      if (absl::IsNotFound(json.status())) {
        absl::Status unknown = MakeDecodeError(
            Category::kSchemaMismatch, "schema_unknown",
            absl::StrCat("writer schema id ", id,
                         " is unknown: ", json.status().message()));
        plans_.emplace(id, unknown);
        return unknown;
      }
      // Not cached: the registry may answer next time.
      return MakeDecodeError(
          Category::kProcessingError, "schema_unavailable",
          absl::StrCat("writer schema id ", id,
                       " could not be fetched: ", json.status().message()));
    }
    absl::StatusOr<std::unique_ptr<Plan>> plan = Compile(*json);
    if (!plan.ok()) {
      absl::Status bad = MakeDecodeError(
          Category::kSchemaMismatch, "schema_incompatible",
          absl::StrCat("writer schema id ", id, ": ", plan.status().message()));
      plans_.emplace(id, bad);
      return bad;
    }
    auto [it, inserted] = plans_.emplace(id, *std::move(plan));
    return it->second->get();
  }

  absl::StatusOr<std::unique_ptr<Plan>> Compile(const std::string& json) {
    auto plan = std::make_unique<Plan>();
    WEIR_ASSIGN_OR_RETURN(plan->writer, AvroSchema::Parse(json));
    const CompatibilityResult r = CanRead(reader_, plan->writer);
    if (!r.compatible) {
      return absl::InvalidArgumentError(absl::StrCat(
          "cannot be read with the reader schema: ", r.ToString()));
    }
    const AvroNode& root = reader_.node(reader_.root());
    const AvroNode& wroot = plan->writer.node(plan->writer.root());
    std::vector<bool> filled(slot_fields_.size(), false);
    for (const AvroNode::Field& wf : wroot.fields) {
      std::pair<int, int> action = {-1, -1};
      for (size_t slot = 0; slot < slot_fields_.size(); ++slot) {
        const int ri = slot_fields_[slot];
        if (ri < 0) continue;
        const AvroNode::Field& rf = root.fields[ri];
        bool match = rf.name == wf.name;
        for (const std::string& a : rf.aliases) match = match || a == wf.name;
        if (match) {
          action = {static_cast<int>(slot), ri};
          filled[slot] = true;
          break;
        }
      }
      plan->actions.push_back(action);
    }
    for (size_t slot = 0; slot < slot_fields_.size(); ++slot) {
      const int ri = slot_fields_[slot];
      if (ri < 0 || filled[slot]) continue;
      // CanRead guarantees a default.
      const AvroNode::Field& rf = root.fields[ri];
      WEIR_ASSIGN_OR_RETURN(Value v,
                            DefaultValue(reader_, rf.type, rf.default_json));
      plan->defaults.emplace_back(static_cast<int>(slot), std::move(v));
    }
    return plan;
  }

  AvroDecoderOptions options_;
  AvroSchema reader_;
  // Per slot (key, time, values...): the reader field's index, -1 for none.
  std::vector<int> slot_fields_;
  std::unique_ptr<Plan> fixed_plan_;
  absl::flat_hash_map<int32_t, absl::StatusOr<std::unique_ptr<Plan>>> plans_;
  std::vector<Value> slots_;  // scratch
};

absl::StatusOr<std::unique_ptr<AvroDecoder>> AvroDecoder::Create(
    AvroDecoderOptions options) {
  WEIR_RETURN_IF_ERROR(options.Validate());
  auto impl = std::make_unique<Impl>();
  WEIR_RETURN_IF_ERROR(impl->Init(std::move(options)));
  return std::unique_ptr<AvroDecoder>(new AvroDecoder(std::move(impl)));
}

AvroDecoder::AvroDecoder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
AvroDecoder::~AvroDecoder() = default;

absl::StatusOr<Event> AvroDecoder::Decode(const RawRecord& record) {
  Event e;
  WEIR_RETURN_IF_ERROR(DecodeInto(record, &e));
  return e;
}

absl::Status AvroDecoder::DecodeInto(const RawRecord& record, Event* event) {
  return impl_->DecodeInto(record, event);
}

std::string AvroWireFormat(int32_t schema_id, std::string_view body) {
  std::string out(5, '\0');
  const uint32_t id = static_cast<uint32_t>(schema_id);
  out[1] = static_cast<char>(id >> 24);
  out[2] = static_cast<char>(id >> 16);
  out[3] = static_cast<char>(id >> 8);
  out[4] = static_cast<char>(id);
  out.append(body);
  return out;
}

}  // namespace weir
