// Implementation of weir/avro/schema_registry.h.

#include "weir/avro/schema_registry.h"

#include <curl/curl.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "simdjson.h"
#include "weir/avro/avro_schema.h"
#include "weir/internal/json_string.h"
#include "weir/status_macros.h"

namespace weir {

namespace {

size_t Append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

std::string Escape(const std::string& segment) {
  char* e = curl_easy_escape(nullptr, segment.data(),
                             static_cast<int>(segment.size()));
  std::string out = e != nullptr ? e : "";
  curl_free(e);
  return out;
}

std::string JsonBody(std::string_view member, std::string_view value) {
  std::string out = "{";
  internal::AppendJsonString(member, &out);
  out += ":";
  internal::AppendJsonString(value, &out);
  out += "}";
  return out;
}

// The registry's error text: {"error_code":..,"message":".."} or the body.
std::string ErrorText(const std::string& body) {
  simdjson::dom::parser parser;
  simdjson::dom::element e;
  std::string_view message;
  if (!parser.parse(body).get(e) && !e["message"].get_string().get(message)) {
    return std::string(message);
  }
  return body.substr(0, 200);
}

absl::StatusOr<simdjson::dom::element> ParseJson(simdjson::dom::parser& parser,
                                                 const std::string& body,
                                                 const std::string& what) {
  simdjson::dom::element e;
  if (parser.parse(body).get(e)) {
    return absl::DataLossError(
        absl::StrCat("the schema registry's answer to ", what,
                     " is not JSON: ", body.substr(0, 200)));
  }
  return e;
}

// A registry answer (or its error) parsed into `parser`, which the element
// refers to.
absl::StatusOr<simdjson::dom::element> Parsed(
    simdjson::dom::parser& parser, absl::StatusOr<std::string> answer,
    const std::string& what) {
  WEIR_RETURN_IF_ERROR(answer.status());
  return ParseJson(parser, *answer, what);
}

absl::Status BadAnswer(const std::string& what) {
  return absl::DataLossError(absl::StrCat("the schema registry's answer to ",
                                          what, " lacks the expected members"));
}

}  // namespace

absl::Status SchemaRegistryOptions::Validate() const {
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
    return absl::InvalidArgumentError(
        "SchemaRegistryOptions.url must start with http:// or https://");
  }
  if (request_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "SchemaRegistryOptions.request_timeout must be positive");
  }
  if (max_attempts < 1) {
    return absl::InvalidArgumentError(
        "SchemaRegistryOptions.max_attempts must be >= 1");
  }
  if (retry_backoff < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "SchemaRegistryOptions.retry_backoff must be >= 0");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<SchemaRegistryClient>>
SchemaRegistryClient::Create(SchemaRegistryOptions options) {
  WEIR_RETURN_IF_ERROR(options.Validate());
  while (!options.url.empty() && options.url.back() == '/') {
    options.url.pop_back();
  }
  return std::unique_ptr<SchemaRegistryClient>(
      new SchemaRegistryClient(std::move(options)));
}

SchemaRegistryClient::SchemaRegistryClient(SchemaRegistryOptions options)
    : options_(std::move(options)) {}

absl::StatusOr<SchemaRegistryClient::Response> SchemaRegistryClient::Once(
    const std::string& method, const std::string& path,
    const std::string& body) {
  CURL* h = curl_easy_init();
  if (h == nullptr) return absl::ResourceExhaustedError("curl_easy_init");
  Response r;
  char errbuf[CURL_ERROR_SIZE] = {0};
  const std::string url = options_.url + path;
  curl_slist* headers = curl_slist_append(
      nullptr, "Content-Type: application/vnd.schemaregistry.v1+json");
  headers = curl_slist_append(headers,
                              "Accept: application/vnd.schemaregistry.v1+json");
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(
      h, CURLOPT_TIMEOUT_MS,
      static_cast<long>(absl::ToInt64Milliseconds(options_.request_timeout)));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &r.body);
  if (options_.basic_auth.has_value()) {
    curl_easy_setopt(h, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    curl_easy_setopt(h, CURLOPT_USERPWD, options_.basic_auth->c_str());
  }
  if (method == "POST" || method == "PUT") {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(body.size()));
  }
  if (method != "GET" && method != "POST") {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method.c_str());
  }
  const CURLcode rc = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(h);
  if (rc != CURLE_OK) {
    return absl::UnavailableError(
        absl::StrCat("schema registry ", method, " ", url, ": ",
                     errbuf[0] != 0 ? errbuf : curl_easy_strerror(rc)));
  }
  return r;
}

absl::StatusOr<std::string> SchemaRegistryClient::Call(
    const std::string& method, const std::string& path,
    const std::string& body) {
  absl::Duration backoff = options_.retry_backoff;
  absl::Status last;
  for (int attempt = 1; attempt <= options_.max_attempts; ++attempt) {
    if (attempt > 1) {
      absl::SleepFor(backoff);  // backoff between tries of a failed request
      backoff *= 2;
    }
    absl::StatusOr<Response> r = Once(method, path, body);
    if (!r.ok()) {
      last = r.status();
      continue;
    }
    const std::string where =
        absl::StrCat("schema registry ", method, " ", path, ": ");
    if (r->status >= 200 && r->status < 300) return std::move(r->body);
    const std::string text =
        absl::StrCat(where, r->status, " ", ErrorText(r->body));
    if (r->status >= 500) {
      last = absl::UnavailableError(text);
      continue;
    }
    if (r->status == 404) return absl::NotFoundError(text);
    if (r->status == 401 || r->status == 403) {
      return absl::PermissionDeniedError(text);
    }
    if (r->status == 409 || r->status == 422) {
      return absl::FailedPreconditionError(text);
    }
    return absl::InvalidArgumentError(text);
  }
  return last;
}

absl::StatusOr<std::string> SchemaRegistryClient::WriterSchema(int32_t id) {
  {
    absl::MutexLock lock(&mu_);
    if (auto it = by_id_.find(id); it != by_id_.end()) return it->second;
  }
  const std::string what = absl::StrCat("/schemas/ids/", id);
  simdjson::dom::parser parser;
  WEIR_ASSIGN_OR_RETURN(simdjson::dom::element e,
                        Parsed(parser, Call("GET", what, ""), what));
  std::string_view schema;
  if (e["schema"].get_string().get(schema)) return BadAnswer(what);
  absl::MutexLock lock(&mu_);
  return by_id_.emplace(id, std::string(schema)).first->second;
}

absl::StatusOr<std::vector<int32_t>> SchemaRegistryClient::Versions(
    const std::string& subject) {
  const std::string what =
      absl::StrCat("/subjects/", Escape(subject), "/versions");
  simdjson::dom::parser parser;
  WEIR_ASSIGN_OR_RETURN(simdjson::dom::element e,
                        Parsed(parser, Call("GET", what, ""), what));
  simdjson::dom::array versions;
  if (e.get_array().get(versions)) return BadAnswer(what);
  std::vector<int32_t> out;
  for (simdjson::dom::element v : versions) {
    int64_t n;
    if (v.get_int64().get(n)) return BadAnswer(what);
    out.push_back(static_cast<int32_t>(n));
  }
  return out;
}

absl::StatusOr<RegisteredSchema> SchemaRegistryClient::Version(
    const std::string& subject, std::optional<int32_t> version) {
  const std::string what =
      absl::StrCat("/subjects/", Escape(subject), "/versions/",
                   version.has_value() ? std::to_string(*version) : "latest");
  simdjson::dom::parser parser;
  WEIR_ASSIGN_OR_RETURN(simdjson::dom::element e,
                        Parsed(parser, Call("GET", what, ""), what));
  RegisteredSchema out;
  std::string_view subject_text;
  std::string_view schema;
  int64_t v;
  int64_t id;
  if (e["subject"].get_string().get(subject_text) ||
      e["version"].get_int64().get(v) || e["id"].get_int64().get(id) ||
      e["schema"].get_string().get(schema)) {
    return BadAnswer(what);
  }
  out.subject = std::string(subject_text);
  out.version = static_cast<int32_t>(v);
  out.id = static_cast<int32_t>(id);
  out.schema = std::string(schema);
  return out;
}

absl::StatusOr<int32_t> SchemaRegistryClient::Register(
    const std::string& subject, const std::string& schema) {
  const std::string what =
      absl::StrCat("/subjects/", Escape(subject), "/versions");
  simdjson::dom::parser parser;
  WEIR_ASSIGN_OR_RETURN(
      simdjson::dom::element e,
      Parsed(parser, Call("POST", what, JsonBody("schema", schema)), what));
  int64_t id;
  if (e["id"].get_int64().get(id)) return BadAnswer(what);
  return static_cast<int32_t>(id);
}

absl::StatusOr<SchemaCompatibility> SchemaRegistryClient::Compatibility(
    const std::string& subject) {
  std::string what = absl::StrCat("/config/", Escape(subject));
  absl::StatusOr<std::string> body = Call("GET", what, "");
  if (absl::IsNotFound(body.status())) {
    what = "/config";
    body = Call("GET", what, "");
  }
  WEIR_RETURN_IF_ERROR(body.status());
  simdjson::dom::parser parser;
  WEIR_ASSIGN_OR_RETURN(simdjson::dom::element e,
                        ParseJson(parser, *body, what));
  std::string_view level;
  if (e["compatibilityLevel"].get_string().get(level)) return BadAnswer(what);
  return ParseSchemaCompatibility(level);
}

absl::Status SchemaRegistryClient::SetCompatibility(const std::string& subject,
                                                    SchemaCompatibility mode) {
  return Call("PUT", absl::StrCat("/config/", Escape(subject)),
              JsonBody("compatibility", SchemaCompatibilityName(mode)))
      .status();
}

absl::StatusOr<bool> SchemaRegistryClient::TestCompatibility(
    const std::string& subject, const std::string& schema) {
  const std::string what = absl::StrCat("/compatibility/subjects/",
                                        Escape(subject), "/versions/latest");
  simdjson::dom::parser parser;
  WEIR_ASSIGN_OR_RETURN(
      simdjson::dom::element e,
      Parsed(parser, Call("POST", what, JsonBody("schema", schema)), what));
  bool compatible;
  if (e["is_compatible"].get_bool().get(compatible)) return BadAnswer(what);
  return compatible;
}

absl::Status CheckReaderAgainstSubject(SchemaRegistryClient& registry,
                                       const std::string& subject,
                                       const std::string& reader_schema) {
  WEIR_ASSIGN_OR_RETURN(AvroSchema reader, AvroSchema::Parse(reader_schema));
  WEIR_ASSIGN_OR_RETURN(SchemaCompatibility mode,
                        registry.Compatibility(subject));
  std::vector<std::optional<int32_t>> versions = {std::nullopt};
  if (mode == SchemaCompatibility::kBackwardTransitive ||
      mode == SchemaCompatibility::kForwardTransitive ||
      mode == SchemaCompatibility::kFullTransitive) {
    WEIR_ASSIGN_OR_RETURN(std::vector<int32_t> all, registry.Versions(subject));
    versions.assign(all.begin(), all.end());
  }
  for (std::optional<int32_t> v : versions) {
    WEIR_ASSIGN_OR_RETURN(RegisteredSchema registered,
                          registry.Version(subject, v));
    WEIR_ASSIGN_OR_RETURN(AvroSchema writer,
                          AvroSchema::Parse(registered.schema));
    const CompatibilityResult r = CanRead(reader, writer);
    if (!r.compatible) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the reader schema cannot read ", subject, " version ",
          registered.version, " (id ", registered.id, ", compatibility ",
          SchemaCompatibilityName(mode), "): ", r.ToString()));
    }
  }
  return absl::OkStatus();
}

}  // namespace weir
