// Implementation of weir/testing/schema_registry_server.h.

#include "weir/testing/schema_registry_server.h"

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "httplib.h"
#include "simdjson.h"
#include "weir/avro/avro_schema.h"
#include "weir/internal/json_string.h"

namespace weir {
namespace testing {

namespace {

std::string Quoted(std::string_view s) {
  std::string out;
  internal::AppendJsonString(s, &out);
  return out;
}

void Json(httplib::Response& res, int status, std::string body) {
  res.status = status;
  res.set_content(std::move(body), "application/vnd.schemaregistry.v1+json");
}

void Error(httplib::Response& res, int status, int code,
           const std::string& message) {
  Json(res, status,
       absl::StrCat("{\"error_code\":", code, ",\"message\":", Quoted(message),
                    "}"));
}

}  // namespace

class SchemaRegistryServer::Impl {
 public:
  ~Impl() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }

  absl::Status Start() {
    server_.set_pre_routing_handler(
        [this](const httplib::Request&, httplib::Response& res) {
          absl::MutexLock lock(&mu_);
          ++requests_;
          if (fail_next_ > 0) {
            --fail_next_;
            Error(res, 503, 50003, "injected failure");
            return httplib::Server::HandlerResponse::Handled;
          }
          return httplib::Server::HandlerResponse::Unhandled;
        });
    server_.Post(R"(/subjects/([^/]+)/versions)",
                 [this](const httplib::Request& req, httplib::Response& res) {
                   Register(req.matches[1], req.body, res);
                 });
    // Looks a schema up under a subject (what Confluent's serializers ask
    // before they write with a given or registered schema).
    server_.Post(R"(/subjects/([^/]+))",
                 [this](const httplib::Request& req, httplib::Response& res) {
                   Lookup(req.matches[1], req.body, res);
                 });
    server_.Get(R"(/subjects/([^/]+)/versions)",
                [this](const httplib::Request& req, httplib::Response& res) {
                  absl::MutexLock lock(&mu_);
                  auto it = subjects_.find(req.matches[1]);
                  if (it == subjects_.end()) {
                    return Error(res, 404, 40401, "Subject not found.");
                  }
                  std::string body = "[";
                  for (size_t i = 0; i < it->second.size(); ++i) {
                    absl::StrAppend(&body, i > 0 ? "," : "", i + 1);
                  }
                  Json(res, 200, body + "]");
                });
    server_.Get(R"(/subjects/([^/]+)/versions/([^/]+))",
                [this](const httplib::Request& req, httplib::Response& res) {
                  absl::MutexLock lock(&mu_);
                  const std::string subject = req.matches[1];
                  auto it = subjects_.find(subject);
                  if (it == subjects_.end() || it->second.empty()) {
                    return Error(res, 404, 40401, "Subject not found.");
                  }
                  size_t v = it->second.size();
                  if (req.matches[2] != "latest" &&
                      (!absl::SimpleAtoi(std::string(req.matches[2]), &v) ||
                       v < 1 || v > it->second.size())) {
                    return Error(res, 404, 40402, "Version not found.");
                  }
                  const int id = it->second[v - 1];
                  Json(res, 200,
                       absl::StrCat("{\"subject\":", Quoted(subject),
                                    ",\"version\":", v, ",\"id\":", id,
                                    ",\"schema\":", Quoted(schemas_[id]), "}"));
                });
    server_.Get(R"(/schemas/ids/(\d+))", [this](const httplib::Request& req,
                                                httplib::Response& res) {
      absl::MutexLock lock(&mu_);
      int id = 0;
      if (!absl::SimpleAtoi(std::string(req.matches[1]), &id) ||
          schemas_.count(id) == 0) {
        return Error(res, 404, 40403, "Schema not found");
      }
      Json(res, 200, absl::StrCat("{\"schema\":", Quoted(schemas_[id]), "}"));
    });
    server_.Get(R"(/config(?:/([^/]+))?)", [this](const httplib::Request& req,
                                                  httplib::Response& res) {
      absl::MutexLock lock(&mu_);
      std::string level = global_;
      if (req.matches[1].matched) {
        auto it = config_.find(req.matches[1]);
        if (it == config_.end()) {
          return Error(res, 404, 40408,
                       "Subject does not have subject-level "
                       "compatibility configured");
        }
        level = it->second;
      }
      Json(res, 200,
           absl::StrCat("{\"compatibilityLevel\":", Quoted(level), "}"));
    });
    server_.Put(R"(/config(?:/([^/]+))?)", [this](const httplib::Request& req,
                                                  httplib::Response& res) {
      simdjson::dom::parser parser;
      simdjson::dom::element e;
      std::string_view level;
      if (parser.parse(req.body).get(e) ||
          e["compatibility"].get_string().get(level) ||
          !ParseSchemaCompatibility(level).ok()) {
        return Error(res, 422, 42203, "Invalid compatibility level");
      }
      absl::MutexLock lock(&mu_);
      if (req.matches[1].matched) {
        config_[req.matches[1]] = std::string(level);
      } else {
        global_ = std::string(level);
      }
      Json(res, 200, absl::StrCat("{\"compatibility\":", Quoted(level), "}"));
    });
    server_.Post(
        R"(/compatibility/subjects/([^/]+)/versions/latest)",
        [this](const httplib::Request& req, httplib::Response& res) {
          std::string schema;
          if (!SchemaOf(req.body, &schema)) {
            return Error(res, 422, 42201, "Invalid schema");
          }
          absl::MutexLock lock(&mu_);
          absl::StatusOr<CompatibilityResult> r = Check(req.matches[1], schema);
          if (!r.ok()) {
            return Error(res, 422, 42201, std::string(r.status().message()));
          }
          Json(res, 200,
               absl::StrCat("{\"is_compatible\":",
                            r->compatible ? "true" : "false", "}"));
        });
    port_ = server_.bind_to_any_port("127.0.0.1");
    if (port_ <= 0) return absl::UnavailableError("cannot bind 127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    return absl::OkStatus();
  }

  std::string url() const { return absl::StrCat("http://127.0.0.1:", port_); }
  int requests() {
    absl::MutexLock lock(&mu_);
    return requests_;
  }
  void FailNext(int n) {
    absl::MutexLock lock(&mu_);
    fail_next_ += n;
  }

 private:
  static bool SchemaOf(const std::string& body, std::string* schema) {
    simdjson::dom::parser parser;
    simdjson::dom::element e;
    std::string_view s;
    if (parser.parse(body).get(e) || e["schema"].get_string().get(s)) {
      return false;
    }
    *schema = std::string(s);
    return true;
  }

  // The subject's mode applied to `schema` against its versions.
  absl::StatusOr<CompatibilityResult> Check(const std::string& subject,
                                            const std::string& schema)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    absl::StatusOr<AvroSchema> candidate = AvroSchema::Parse(schema);
    if (!candidate.ok()) return candidate.status();
    std::vector<AvroSchema> previous;
    for (int id : subjects_[subject]) {
      previous.push_back(*AvroSchema::Parse(schemas_[id]));
    }
    auto it = config_.find(subject);
    const SchemaCompatibility mode =
        *ParseSchemaCompatibility(it != config_.end() ? it->second : global_);
    return CheckCompatibility(*candidate, previous, mode);
  }

  void Lookup(const std::string& subject, const std::string& body,
              httplib::Response& res) {
    std::string schema;
    if (!SchemaOf(body, &schema)) {
      return Error(res, 422, 42201, "Invalid schema");
    }
    absl::MutexLock lock(&mu_);
    auto it = subjects_.find(subject);
    if (it == subjects_.end()) {
      return Error(res, 404, 40401, "Subject not found.");
    }
    for (size_t v = 0; v < it->second.size(); ++v) {
      const int id = it->second[v];
      if (schemas_[id] != schema) continue;
      return Json(
          res, 200,
          absl::StrCat("{\"subject\":", Quoted(subject), ",\"version\":", v + 1,
                       ",\"id\":", id, ",\"schema\":", Quoted(schema), "}"));
    }
    Error(res, 404, 40403, "Schema not found");
  }

  void Register(const std::string& subject, const std::string& body,
                httplib::Response& res) {
    std::string schema;
    if (!SchemaOf(body, &schema)) {
      return Error(res, 422, 42201, "Invalid schema");
    }
    absl::MutexLock lock(&mu_);
    // The same schema again: its existing id.
    for (const auto& [id, text] : schemas_) {
      if (text == schema) {
        std::vector<int>& versions = subjects_[subject];
        if (std::find(versions.begin(), versions.end(), id) == versions.end()) {
          versions.push_back(id);
        }
        return Json(res, 200, absl::StrCat("{\"id\":", id, "}"));
      }
    }
    absl::StatusOr<CompatibilityResult> r = Check(subject, schema);
    if (!r.ok()) {
      return Error(res, 422, 42201, std::string(r.status().message()));
    }
    if (!r->compatible) {
      return Error(res, 409, 409,
                   absl::StrCat("Schema being registered is incompatible with "
                                "an earlier schema for subject \"",
                                subject, "\": ", r->ToString()));
    }
    const int id = next_id_++;
    schemas_[id] = schema;
    subjects_[subject].push_back(id);
    Json(res, 200, absl::StrCat("{\"id\":", id, "}"));
  }

  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  absl::Mutex mu_;
  int requests_ ABSL_GUARDED_BY(mu_) = 0;
  int fail_next_ ABSL_GUARDED_BY(mu_) = 0;
  int next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<int, std::string> schemas_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::vector<int>> subjects_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> config_ ABSL_GUARDED_BY(mu_);
  std::string global_ ABSL_GUARDED_BY(mu_) = "BACKWARD";
};

absl::StatusOr<std::unique_ptr<SchemaRegistryServer>>
SchemaRegistryServer::Start() {
  auto impl = std::make_unique<Impl>();
  if (absl::Status s = impl->Start(); !s.ok()) return s;
  return std::unique_ptr<SchemaRegistryServer>(
      new SchemaRegistryServer(std::move(impl)));
}

SchemaRegistryServer::SchemaRegistryServer(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}
SchemaRegistryServer::~SchemaRegistryServer() = default;
std::string SchemaRegistryServer::url() const { return impl_->url(); }
int SchemaRegistryServer::requests() const { return impl_->requests(); }
void SchemaRegistryServer::FailNext(int n) { impl_->FailNext(n); }

}  // namespace testing
}  // namespace weir
