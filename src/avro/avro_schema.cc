// Implementation of weir/avro/avro_schema.h.

#include "weir/avro/avro_schema.h"

#include <algorithm>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "simdjson.h"
#include "weir/status_macros.h"

namespace weir {

namespace {

using Type = AvroNode::Type;

constexpr std::pair<const char*, Type> kPrimitives[] = {
    {"null", Type::kNull},   {"boolean", Type::kBoolean},
    {"int", Type::kInt},     {"long", Type::kLong},
    {"float", Type::kFloat}, {"double", Type::kDouble},
    {"bytes", Type::kBytes}, {"string", Type::kString},
};

std::string Str(std::string_view s) { return std::string(s); }

}  // namespace

std::string AvroShortName(const std::string& full_name) {
  const size_t dot = full_name.rfind('.');
  return dot == std::string::npos ? full_name : full_name.substr(dot + 1);
}

bool AvroPromotes(AvroNode::Type writer, AvroNode::Type reader) {
  switch (writer) {
    case Type::kInt:
      return reader == Type::kLong || reader == Type::kFloat ||
             reader == Type::kDouble;
    case Type::kLong:
      return reader == Type::kFloat || reader == Type::kDouble;
    case Type::kFloat:
      return reader == Type::kDouble;
    case Type::kString:
      return reader == Type::kBytes;
    case Type::kBytes:
      return reader == Type::kString;
    default:
      return false;
  }
}

const char* AvroTypeName(AvroNode::Type type) {
  switch (type) {
    case Type::kRecord:
      return "record";
    case Type::kEnum:
      return "enum";
    case Type::kArray:
      return "array";
    case Type::kMap:
      return "map";
    case Type::kFixed:
      return "fixed";
    case Type::kUnion:
      return "union";
    default:
      break;
  }
  for (const auto& [name, t] : kPrimitives) {
    if (t == type) return name;
  }
  return "?";
}

// Builds an AvroSchema from simdjson's DOM.
class AvroSchemaParser {
 public:
  absl::StatusOr<AvroSchema> Parse(std::string_view json) {
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    if (auto error = parser.parse(json.data(), json.size()).get(root)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the schema is not JSON: ", simdjson::error_message(error)));
    }
    WEIR_ASSIGN_OR_RETURN(schema_.root_, ParseType(root, "", "schema"));
    return std::move(schema_);
  }

 private:
  absl::Status Bad(const std::string& where, std::string_view what) {
    return absl::InvalidArgumentError(
        absl::StrCat("Avro schema at ", where, ": ", Str(what)));
  }

  int Add(AvroNode node) {
    schema_.nodes_.push_back(std::move(node));
    return static_cast<int>(schema_.nodes_.size()) - 1;
  }

  // A full name from a "name" (possibly dotted) and the namespace in force.
  static std::string FullName(std::string_view name, std::string_view ns) {
    if (name.find('.') != std::string_view::npos || ns.empty()) {
      return Str(name);
    }
    return absl::StrCat(Str(ns), ".", Str(name));
  }

  absl::StatusOr<int> ParseType(simdjson::dom::element e, const std::string& ns,
                                const std::string& where) {
    if (e.is_string()) {
      std::string_view name;
      if (e.get_string().get(name)) return Bad(where, "bad string");
      for (const auto& [primitive, type] : kPrimitives) {
        if (name == primitive) {
          AvroNode n;
          n.type = type;
          return Add(std::move(n));
        }
      }
      // A reference to a named type, in the namespace in force first.
      if (auto it = named_.find(FullName(name, ns)); it != named_.end()) {
        return it->second;
      }
      if (auto it = named_.find(Str(name)); it != named_.end()) {
        return it->second;
      }
      return Bad(where, absl::StrCat("unknown type \"", Str(name), "\""));
    }
    if (e.is_array()) {
      AvroNode u;
      u.type = Type::kUnion;
      std::set<std::string> seen;
      int i = 0;
      simdjson::dom::array union_branches;
      if (e.get_array().get(union_branches)) return Bad(where, "bad union");
      for (simdjson::dom::element branch : union_branches) {
        WEIR_ASSIGN_OR_RETURN(
            int b, ParseType(branch, ns, absl::StrCat(where, "|", i++)));
        const AvroNode& bn = schema_.nodes_[b];
        if (bn.type == Type::kUnion) {
          return Bad(where, "a union directly inside a union");
        }
        const std::string key =
            bn.full_name.empty() ? AvroTypeName(bn.type) : bn.full_name;
        if (!seen.insert(key).second) {
          return Bad(where, absl::StrCat("the union lists ", key, " twice"));
        }
        u.branches.push_back(b);
      }
      return Add(std::move(u));
    }
    if (!e.is_object()) {
      return Bad(where, "a type must be a name, an object or an array");
    }
    simdjson::dom::object o;
    if (e.get_object().get(o)) return Bad(where, "bad object");
    std::string_view type_name;
    if (o["type"].get_string().get(type_name)) {
      return Bad(where, "an object type needs a string \"type\"");
    }
    std::string_view logical;
    if (o["logicalType"].get_string().get(logical)) logical = {};
    int64_t scale = 0;
    if (o["scale"].get_int64().get(scale)) scale = 0;
    if (scale < 0 || scale > 18) {
      return Bad(where, "a decimal's scale must be in [0, 18]");
    }
    for (const auto& [primitive, type] : kPrimitives) {
      if (type_name == primitive) {
        AvroNode n;
        n.type = type;
        n.logical_type = Str(logical);
        n.scale = static_cast<int32_t>(scale);
        return Add(std::move(n));
      }
    }
    if (type_name == "array" || type_name == "map") {
      const char* member = type_name == "array" ? "items" : "values";
      simdjson::dom::element inner;
      if (o[member].get(inner)) {
        return Bad(where,
                   absl::StrCat(Str(type_name), " needs \"", member, "\""));
      }
      AvroNode n;
      n.type = type_name == "array" ? Type::kArray : Type::kMap;
      WEIR_ASSIGN_OR_RETURN(
          n.items,
          ParseType(inner, ns,
                    absl::StrCat(where, type_name == "array" ? "[]" : "{}")));
      n.logical_type = Str(logical);
      return Add(std::move(n));
    }
    if (type_name != "record" && type_name != "error" && type_name != "enum" &&
        type_name != "fixed") {
      // A named type used as {"type": "Name"}.
      if (auto it = named_.find(FullName(type_name, ns)); it != named_.end()) {
        return it->second;
      }
      if (auto it = named_.find(Str(type_name)); it != named_.end()) {
        return it->second;
      }
      return Bad(where, absl::StrCat("unknown type \"", Str(type_name), "\""));
    }

    // Named types.
    std::string_view name;
    if (o["name"].get_string().get(name) || name.empty()) {
      return Bad(where, absl::StrCat(Str(type_name), " needs a \"name\""));
    }
    std::string_view own_ns = ns;
    std::string_view ns_member;
    if (!o["namespace"].get_string().get(ns_member)) own_ns = ns_member;
    AvroNode n;
    n.full_name = FullName(name, own_ns);
    n.logical_type = Str(logical);
    n.scale = static_cast<int32_t>(scale);
    const std::string inner_ns =
        n.full_name.find('.') == std::string::npos
            ? ""
            : n.full_name.substr(0, n.full_name.rfind('.'));
    simdjson::dom::array aliases;
    if (!o["aliases"].get_array().get(aliases)) {
      for (simdjson::dom::element a : aliases) {
        std::string_view alias;
        if (a.get_string().get(alias)) {
          return Bad(where, "aliases must be strings");
        }
        n.aliases.push_back(FullName(alias, inner_ns));
      }
    }
    if (named_.count(n.full_name) > 0) {
      return Bad(where, absl::StrCat(n.full_name, " is defined twice"));
    }
    const std::string here = AvroShortName(n.full_name);
    if (type_name == "fixed") {
      int64_t size = 0;
      if (o["size"].get_int64().get(size) || size < 0) {
        return Bad(here, "fixed needs a \"size\" >= 0");
      }
      n.type = Type::kFixed;
      n.size = size;
      const int index = Add(std::move(n));
      named_[schema_.nodes_[index].full_name] = index;
      return index;
    }
    if (type_name == "enum") {
      simdjson::dom::array symbols;
      if (o["symbols"].get_array().get(symbols)) {
        return Bad(here, "enum needs \"symbols\"");
      }
      n.type = Type::kEnum;
      for (simdjson::dom::element s : symbols) {
        std::string_view symbol;
        if (s.get_string().get(symbol)) {
          return Bad(here, "enum symbols must be strings");
        }
        n.symbols.push_back(Str(symbol));
      }
      std::string_view def;
      n.has_enum_default = !o["default"].get_string().get(def);
      const int index = Add(std::move(n));
      named_[schema_.nodes_[index].full_name] = index;
      return index;
    }
    // A record: registered before its fields, which may refer to it.
    n.type = Type::kRecord;
    const int index = Add(std::move(n));
    named_[schema_.nodes_[index].full_name] = index;
    simdjson::dom::array fields;
    if (o["fields"].get_array().get(fields)) {
      return Bad(here, "record needs \"fields\"");
    }
    std::vector<AvroNode::Field> parsed;
    std::set<std::string> seen;
    for (simdjson::dom::element f : fields) {
      std::string_view field_name;
      simdjson::dom::element field_type;
      if (f["name"].get_string().get(field_name) || f["type"].get(field_type)) {
        return Bad(here, "a field needs \"name\" and \"type\"");
      }
      const std::string field_where = absl::StrCat(here, ".", Str(field_name));
      if (!seen.insert(Str(field_name)).second) {
        return Bad(field_where, "the field is listed twice");
      }
      AvroNode::Field field;
      field.name = Str(field_name);
      WEIR_ASSIGN_OR_RETURN(field.type,
                            ParseType(field_type, inner_ns, field_where));
      simdjson::dom::element def;
      field.has_default = !f["default"].get(def);
      if (field.has_default) field.default_json = simdjson::minify(def);
      simdjson::dom::array field_aliases;
      if (!f["aliases"].get_array().get(field_aliases)) {
        for (simdjson::dom::element a : field_aliases) {
          std::string_view alias;
          if (!a.get_string().get(alias)) field.aliases.push_back(Str(alias));
        }
      }
      parsed.push_back(std::move(field));
    }
    schema_.nodes_[index].fields = std::move(parsed);
    return index;
  }

  AvroSchema schema_;
  absl::flat_hash_map<std::string, int> named_;
};

absl::StatusOr<AvroSchema> AvroSchema::Parse(std::string_view json) {
  return AvroSchemaParser().Parse(json);
}

std::string AvroSchema::name() const {
  const AvroNode& n = nodes_[root_];
  return n.full_name.empty() ? AvroTypeName(n.type) : n.full_name;
}

namespace {

// Avro's resolution rules over two schemas' nodes.
class Resolver {
 public:
  Resolver(const AvroSchema& reader, const AvroSchema& writer)
      : reader_(reader), writer_(writer) {}

  void Check(int r, int w, const std::string& path) {
    // A recursive type meets itself again: assume it resolves (it does if
    // everything else does).
    if (!in_progress_.insert({r, w}).second) return;
    CheckNode(r, w, path);
    in_progress_.erase({r, w});
  }

  CompatibilityResult result() && { return std::move(result_); }

 private:
  const AvroNode& R(int i) const { return reader_.node(i); }
  const AvroNode& W(int i) const { return writer_.node(i); }

  static std::string Shown(const AvroNode& n) {
    return n.full_name.empty() ? AvroTypeName(n.type) : n.full_name;
  }

  void Fail(const std::string& path, std::string reason) {
    result_.compatible = false;
    result_.issues.push_back({path, std::move(reason)});
  }

  // Whether reader node `r` reads writer node `w`, without recording.
  bool Reads(int r, int w, const std::string& path) {
    Resolver probe(reader_, writer_);
    probe.in_progress_ = in_progress_;
    probe.Check(r, w, path);
    return probe.result_.compatible;
  }

  // Named types resolve when the names match, or the reader's aliases name
  // the writer's type (unqualified names compared, as Avro's own check).
  bool NamesMatch(const AvroNode& r, const AvroNode& w) const {
    if (AvroShortName(r.full_name) == AvroShortName(w.full_name)) return true;
    for (const std::string& a : r.aliases) {
      if (a == w.full_name || AvroShortName(a) == AvroShortName(w.full_name)) {
        return true;
      }
    }
    return false;
  }

  void CheckNode(int ri, int wi, const std::string& path) {
    const AvroNode& r = R(ri);
    const AvroNode& w = W(wi);
    if (w.type == Type::kUnion) {
      // Data may come from any branch the writer has.
      for (int b : w.branches) {
        if (r.type == Type::kUnion) {
          CheckNode(ri, b, path);
        } else {
          Check(ri, b, path);
        }
      }
      return;
    }
    if (r.type == Type::kUnion) {
      for (int b : r.branches) {
        if (Reads(b, wi, path)) return;
      }
      Fail(path,
           absl::StrCat("the reader's union [",
                        absl::StrJoin(r.branches, ", ",
                                      [&](std::string* out, int b) {
                                        out->append(Shown(R(b)));
                                      }),
                        "] has no branch that reads the writer's ", Shown(w)));
      return;
    }
    if (r.type != w.type) {
      if (AvroPromotes(w.type, r.type)) return;
      Fail(path, absl::StrCat("a reader of type ", Shown(r),
                              " cannot read the writer's ", Shown(w)));
      return;
    }
    switch (r.type) {
      case Type::kRecord: {
        if (!NamesMatch(r, w)) {
          Fail(path, absl::StrCat("record ", r.full_name,
                                  " does not match the writer's record ",
                                  w.full_name));
          return;
        }
        for (const AvroNode::Field& rf : r.fields) {
          const std::string field_path = absl::StrCat(path, ".", rf.name);
          const AvroNode::Field* match = nullptr;
          for (const AvroNode::Field& wf : w.fields) {
            if (wf.name == rf.name) match = &wf;
          }
          for (const std::string& alias : rf.aliases) {
            for (const AvroNode::Field& wf : w.fields) {
              if (match == nullptr && wf.name == alias) match = &wf;
            }
          }
          if (match != nullptr) {
            Check(rf.type, match->type, field_path);
          } else if (!rf.has_default) {
            Fail(field_path,
                 "the reader's field has no default and the writer does not "
                 "write it");
          }
        }
        return;
      }
      case Type::kEnum: {
        if (!NamesMatch(r, w)) {
          Fail(path,
               absl::StrCat("enum ", r.full_name,
                            " does not match the writer's enum ", w.full_name));
          return;
        }
        if (r.has_enum_default) return;
        for (const std::string& s : w.symbols) {
          if (std::find(r.symbols.begin(), r.symbols.end(), s) ==
              r.symbols.end()) {
            Fail(path, absl::StrCat("the writer's symbol ", s,
                                    " is not in the reader's enum, which has "
                                    "no default"));
          }
        }
        return;
      }
      case Type::kFixed:
        if (!NamesMatch(r, w)) {
          Fail(path, absl::StrCat("fixed ", r.full_name,
                                  " does not match the writer's fixed ",
                                  w.full_name));
        } else if (r.size != w.size) {
          Fail(path, absl::StrCat("fixed of ", r.size,
                                  " bytes cannot read the writer's ", w.size));
        }
        return;
      case Type::kArray:
        Check(r.items, w.items, path + "[]");
        return;
      case Type::kMap:
        Check(r.items, w.items, path + "{}");
        return;
      default:
        return;  // the same primitive
    }
  }

  const AvroSchema& reader_;
  const AvroSchema& writer_;
  std::set<std::pair<int, int>> in_progress_;
  CompatibilityResult result_;
};

}  // namespace

CompatibilityResult CanRead(const AvroSchema& reader,
                            const AvroSchema& writer) {
  Resolver resolver(reader, writer);
  resolver.Check(reader.root(), writer.root(), AvroShortName(reader.name()));
  return std::move(resolver).result();
}

CompatibilityResult CheckCompatibility(const AvroSchema& candidate,
                                       absl::Span<const AvroSchema> previous,
                                       SchemaCompatibility mode) {
  return CheckCompatibilityModes(
      previous.size(), mode, [&](size_t i, bool candidate_reads) {
        return candidate_reads ? CanRead(candidate, previous[i])
                               : CanRead(previous[i], candidate);
      });
}

}  // namespace weir
