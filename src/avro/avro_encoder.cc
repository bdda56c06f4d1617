#include "weir/avro/avro_encoder.h"

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "weir/internal/json_number.h"
#include "weir/internal/json_reader.h"
#include "weir/status_macros.h"

namespace weir {
namespace {

using internal::JsonValue;
using Type = AvroNode::Type;
using JsonType = JsonValue::Type;

void WriteLong(std::string& out, int64_t v) {
  uint64_t z = (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
  while (z >= 0x80) {
    out.push_back(static_cast<char>((z & 0x7f) | 0x80));
    z >>= 7;
  }
  out.push_back(static_cast<char>(z));
}

void WriteBytes(std::string& out, std::string_view s) {
  WriteLong(out, static_cast<int64_t>(s.size()));
  out.append(s);
}

// `v` as `size` big-endian two's-complement bytes; the fewest that hold it
// when `size` is 0. False if it does not fit.
bool Unscaled(int64_t v, int64_t size, std::string* out) {
  std::string b;
  for (int shift = 56; shift >= 0; shift -= 8) {
    b.push_back(static_cast<char>(static_cast<uint64_t>(v) >> shift));
  }
  size_t skip = 0;
  while (skip + 1 < b.size() &&
         ((b[skip] == 0 && (b[skip + 1] & 0x80) == 0) ||
          (b[skip] == '\xff' && (b[skip + 1] & 0x80) != 0))) {
    ++skip;
  }
  b = b.substr(skip);
  if (size == 0) {
    *out = std::move(b);
    return true;
  }
  if (static_cast<int64_t>(b.size()) > size) return false;
  *out = std::string(static_cast<size_t>(size) - b.size(), v < 0 ? '\xff' : 0);
  out->append(b);
  return true;
}

class Encoder {
 public:
  explicit Encoder(const AvroSchema& schema) : schema_(schema) {}

  absl::Status Write(int node, const JsonValue& v, const std::string& path,
                     std::string& out) {
    const AvroNode& n = schema_.node(node);
    auto bad = [&](absl::string_view what) {
      return absl::InvalidArgumentError(
          absl::StrCat(path.empty() ? "the record" : path, ": ", what));
    };
    auto want = [&](JsonType t, const char* name) -> absl::Status {
      if (v.type == t) return absl::OkStatus();
      return bad(
          absl::StrCat("want ", name, " for Avro ", AvroTypeName(n.type)));
    };
    switch (n.type) {
      case Type::kNull:
        return want(JsonType::kNull, "null");
      case Type::kBoolean:
        WEIR_RETURN_IF_ERROR(want(JsonType::kBool, "a boolean"));
        out.push_back(v.boolean ? 1 : 0);
        return absl::OkStatus();
      case Type::kInt:
      case Type::kLong: {
        WEIR_RETURN_IF_ERROR(want(JsonType::kNumber, "a number"));
        int64_t i;
        if (!v.is_integer() || !absl::SimpleAtoi(v.text, &i) ||
            (n.type == Type::kInt && (i < INT32_MIN || i > INT32_MAX))) {
          return bad(
              absl::StrCat(v.text, " is not an Avro ", AvroTypeName(n.type)));
        }
        WriteLong(out, i);
        return absl::OkStatus();
      }
      case Type::kFloat:
      case Type::kDouble: {
        WEIR_RETURN_IF_ERROR(want(JsonType::kNumber, "a number"));
        double d;
        if (!absl::SimpleAtod(v.text, &d)) return bad("not a number");
        if (n.type == Type::kFloat) {
          const float f = static_cast<float>(d);
          char b[4];
          std::memcpy(b, &f, 4);  // little-endian machines only
          out.append(b, 4);
        } else {
          char b[8];
          std::memcpy(b, &d, 8);
          out.append(b, 8);
        }
        return absl::OkStatus();
      }
      case Type::kBytes:
      case Type::kFixed: {
        std::string bytes;
        if (n.logical_type == "decimal") {
          WEIR_RETURN_IF_ERROR(want(JsonType::kNumber, "a number"));
          internal::NumberText number;
          int64_t unscaled = 0;
          if (!internal::ParseNumberText(v.text, &number) ||
              internal::ScaleNumber(number, n.scale, /*floor=*/false,
                                    &unscaled) != internal::ScaleResult::kOk ||
              !Unscaled(unscaled, n.type == Type::kFixed ? n.size : 0,
                        &bytes)) {
            return bad(
                absl::StrCat(v.text, " is not a decimal of scale ", n.scale));
          }
        } else {
          WEIR_RETURN_IF_ERROR(want(JsonType::kString, "a string"));
          bytes = v.text;
        }
        if (n.type == Type::kBytes) {
          WriteBytes(out, bytes);
        } else if (static_cast<int64_t>(bytes.size()) != n.size) {
          return bad(absl::StrCat("want ", n.size, " bytes"));
        } else {
          out.append(bytes);
        }
        return absl::OkStatus();
      }
      case Type::kString:
        WEIR_RETURN_IF_ERROR(want(JsonType::kString, "a string"));
        WriteBytes(out, v.text);
        return absl::OkStatus();
      case Type::kEnum: {
        WEIR_RETURN_IF_ERROR(want(JsonType::kString, "a symbol"));
        for (size_t i = 0; i < n.symbols.size(); ++i) {
          if (n.symbols[i] == v.text) {
            WriteLong(out, static_cast<int64_t>(i));
            return absl::OkStatus();
          }
        }
        return bad(absl::StrCat("no symbol ", v.text));
      }
      case Type::kArray: {
        WEIR_RETURN_IF_ERROR(want(JsonType::kArray, "an array"));
        if (!v.items.empty()) {
          WriteLong(out, static_cast<int64_t>(v.items.size()));
          for (const JsonValue& item : v.items) {
            WEIR_RETURN_IF_ERROR(Write(n.items, item, path + "[]", out));
          }
        }
        WriteLong(out, 0);
        return absl::OkStatus();
      }
      case Type::kMap: {
        WEIR_RETURN_IF_ERROR(want(JsonType::kObject, "an object"));
        if (!v.members.empty()) {
          WriteLong(out, static_cast<int64_t>(v.members.size()));
          for (const internal::JsonMember& m : v.members) {
            WriteBytes(out, m.key);
            WEIR_RETURN_IF_ERROR(
                Write(n.items, m.value, absl::StrCat(path, ".", m.key), out));
          }
        }
        WriteLong(out, 0);
        return absl::OkStatus();
      }
      case Type::kRecord: {
        WEIR_RETURN_IF_ERROR(want(JsonType::kObject, "an object"));
        for (const AvroNode::Field& f : n.fields) {
          const std::string field_path =
              path.empty() ? f.name : absl::StrCat(path, ".", f.name);
          if (const JsonValue* member = v.Find(f.name)) {
            WEIR_RETURN_IF_ERROR(Write(f.type, *member, field_path, out));
            continue;
          }
          if (!f.has_default) {
            return absl::InvalidArgumentError(
                absl::StrCat(field_path, ": missing, and it has no default"));
          }
          WEIR_ASSIGN_OR_RETURN(JsonValue d,
                                internal::ReadJson(f.default_json));
          // A union's default is of its first branch.
          const AvroNode& t = schema_.node(f.type);
          if (t.type == Type::kUnion) {
            WriteLong(out, 0);
            WEIR_RETURN_IF_ERROR(Write(t.branches.at(0), d, field_path, out));
          } else {
            WEIR_RETURN_IF_ERROR(Write(f.type, d, field_path, out));
          }
        }
        return absl::OkStatus();
      }
      case Type::kUnion:
        return WriteUnion(n, v, path, out);
    }
    return bad("unknown Avro type");
  }

 private:
  absl::Status WriteUnion(const AvroNode& n, const JsonValue& v,
                          const std::string& path, std::string& out) {
    // Avro's JSON encoding: {"<branch type or name>": value}.
    if (v.type == JsonType::kObject && v.members.size() == 1) {
      for (size_t i = 0; i < n.branches.size(); ++i) {
        const AvroNode& b = schema_.node(n.branches[i]);
        const std::string& key = v.members[0].key;
        if (key == AvroTypeName(b.type) || key == b.full_name ||
            (!b.full_name.empty() && key == AvroShortName(b.full_name))) {
          WriteLong(out, static_cast<int64_t>(i));
          return Write(n.branches[i], v.members[0].value, path, out);
        }
      }
    }
    absl::Status first_error;
    for (size_t i = 0; i < n.branches.size(); ++i) {
      std::string branch;
      absl::Status s = Write(n.branches[i], v, path, branch);
      if (s.ok()) {
        WriteLong(out, static_cast<int64_t>(i));
        out.append(branch);
        return absl::OkStatus();
      }
      if (first_error.ok() && v.type != JsonType::kNull &&
          schema_.node(n.branches[i]).type != Type::kNull) {
        first_error = s;
      }
    }
    if (!first_error.ok()) return first_error;
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": no branch of the union takes the value"));
  }

  const AvroSchema& schema_;
};

}  // namespace

absl::StatusOr<std::string> EncodeAvroFromJson(const AvroSchema& schema,
                                               std::string_view json) {
  WEIR_ASSIGN_OR_RETURN(JsonValue value, internal::ReadJson(json));
  std::string out;
  Encoder encoder(schema);
  WEIR_RETURN_IF_ERROR(encoder.Write(schema.root(), value, "", out));
  return out;
}

}  // namespace weir
