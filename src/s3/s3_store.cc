#include "weir/s3/s3_store.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "weir/env.h"
#include "weir/internal/string_view.h"
#include "weir/status_macros.h"

namespace weir {
namespace {

using internal::Sv;

constexpr size_t kHashChunk = size_t{1} << 20;
constexpr int kMaxParts = 10000;
constexpr size_t kMaxPooledHandles = 16;
constexpr size_t kMaxErrorBody = 64 * 1024;

void GlobalInitOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// Incremental SHA-256 over OpenSSL's EVP interface.
class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) {
    EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr);
  }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(const void* data, size_t n) { EVP_DigestUpdate(ctx_, data, n); }
  std::string HexDigest() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, digest, &len);
    std::string hex;
    hex.reserve(2 * len);
    for (unsigned int i = 0; i < len; ++i) {
      absl::StrAppendFormat(&hex, "%02x", digest[i]);
    }
    return hex;
  }

 private:
  EVP_MD_CTX* ctx_;
};

// `what` in front of a local-file error from the Env.
absl::Status LocalFileError(std::string_view what, const absl::Status& error) {
  return absl::Status(error.code(),
                      absl::StrCat(Sv(what), ": ", error.message()));
}

// SHA-256 of `length` bytes of `file` from `offset`.
absl::StatusOr<std::string> HashFileRange(ReadableFile& file, uint64_t offset,
                                          uint64_t length,
                                          std::string_view what) {
  Sha256 sha;
  std::string buf(kHashChunk, '\0');
  while (length > 0) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(length, buf.size()));
    absl::StatusOr<size_t> n = file.ReadAt(offset, buf.data(), want);
    if (!n.ok()) return LocalFileError(what, n.status());
    if (*n == 0) {
      return absl::DataLossError(
          absl::StrCat(Sv(what), ": file shrank while being uploaded"));
    }
    sha.Update(buf.data(), *n);
    offset += *n;
    length -= *n;
  }
  return sha.HexDigest();
}

// ---- minimal XML: S3 responses are flat, attribute-free element text -------

std::string XmlUnescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '&') {
      out.push_back(s[i]);
      continue;
    }
    size_t semi = s.find(';', i);
    if (semi == std::string_view::npos) {
      out.push_back(s[i]);
      continue;
    }
    std::string_view entity = s.substr(i + 1, semi - i - 1);
    uint32_t cp = 0;
    bool ok = true;
    if (entity == "amp") {
      cp = '&';
    } else if (entity == "lt") {
      cp = '<';
    } else if (entity == "gt") {
      cp = '>';
    } else if (entity == "quot") {
      cp = '"';
    } else if (entity == "apos") {
      cp = '\'';
    } else if (entity.size() > 2 && entity[0] == '#' &&
               (entity[1] == 'x' || entity[1] == 'X')) {
      ok = absl::SimpleHexAtoi(Sv(entity.substr(2)), &cp);
    } else if (entity.size() > 1 && entity[0] == '#') {
      ok = absl::SimpleAtoi(Sv(entity.substr(1)), &cp);
    } else {
      ok = false;
    }
    if (!ok || cp > 0x10FFFF) {
      out.push_back(s[i]);
      continue;
    }
    // UTF-8 encode the code point.
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
    i = semi;
  }
  return out;
}

// The raw text between <tag> and </tag>, searching `xml` from `*pos`; moves
// `*pos` past the closing tag. Also matches <tag/> (empty text).
std::optional<std::string_view> NextElement(std::string_view xml,
                                            std::string_view tag, size_t* pos) {
  const std::string open = absl::StrCat("<", Sv(tag));
  const std::string close = absl::StrCat("</", Sv(tag), ">");
  size_t at = *pos;
  while (true) {
    size_t start = xml.find(open, at);
    if (start == std::string_view::npos) return std::nullopt;
    size_t after = start + open.size();
    if (after >= xml.size()) return std::nullopt;
    char c = xml[after];
    if (c == '/' && after + 1 < xml.size() && xml[after + 1] == '>') {
      *pos = after + 2;
      return std::string_view();
    }
    if (c != '>' && c != ' ') {  // a longer tag name, e.g. <KeyCount>
      at = after;
      continue;
    }
    size_t gt = xml.find('>', after);
    if (gt == std::string_view::npos) return std::nullopt;
    size_t end = xml.find(close, gt + 1);
    if (end == std::string_view::npos) return std::nullopt;
    *pos = end + close.size();
    return xml.substr(gt + 1, end - gt - 1);
  }
}

std::optional<std::string> ElementText(std::string_view xml,
                                       std::string_view tag) {
  size_t pos = 0;
  std::optional<std::string_view> raw = NextElement(xml, tag, &pos);
  if (!raw) return std::nullopt;
  return XmlUnescape(*raw);
}

std::string XmlEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

// ---- one HTTP exchange
// -------------------------------------------------------

struct Body {
  enum class Kind { kNone, kMemory, kFile } kind = Kind::kNone;
  std::string_view data;         // kMemory
  ReadableFile* file = nullptr;  // kFile
  uint64_t offset = 0;           // kFile
  uint64_t length = 0;           // kFile
  uint64_t size() const {
    return kind == Kind::kMemory ? data.size()
                                 : (kind == Kind::kFile ? length : 0);
  }
};

struct Request {
  std::string method;  // GET, HEAD, PUT, POST, DELETE
  std::string object;  // full S3 key; empty for the bucket itself
  std::string query;   // canonical: sorted, encoded
  Body body;
  std::string payload_hash;  // hex SHA-256 of the body
  std::string content_type;  // optional
  // GET: write a 2xx body to `out_path` through `out_env` instead of to
  // memory; each attempt reopens (empties) it into `*out_file`.
  Env* out_env = nullptr;
  std::string out_path;
  std::unique_ptr<WritableFile>* out_file = nullptr;
  std::string what;  // for errors: "put 'p3/MANIFEST'"
};

struct Response {
  long status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

// Per-attempt state shared with curl's callbacks.
struct Transfer {
  CURL* handle = nullptr;
  const Body* body = nullptr;
  uint64_t sent = 0;
  WritableFile* out = nullptr;
  absl::Status write_error;
  Response* response = nullptr;
};

size_t ReadCallback(char* buf, size_t size, size_t nitems, void* user) {
  Transfer* t = static_cast<Transfer*>(user);
  const Body& body = *t->body;
  uint64_t remaining = body.size() - t->sent;
  size_t want =
      static_cast<size_t>(std::min<uint64_t>(remaining, size * nitems));
  if (want == 0) return 0;
  if (body.kind == Body::Kind::kMemory) {
    std::memcpy(buf, body.data.data() + t->sent, want);
    t->sent += want;
    return want;
  }
  absl::StatusOr<size_t> n =
      body.file->ReadAt(body.offset + t->sent, buf, want);
  if (!n.ok() || *n == 0) return CURL_READFUNC_ABORT;
  t->sent += *n;
  return *n;
}

size_t WriteCallback(char* data, size_t size, size_t nmemb, void* user) {
  Transfer* t = static_cast<Transfer*>(user);
  size_t n = size * nmemb;
  long status = 0;
  curl_easy_getinfo(t->handle, CURLINFO_RESPONSE_CODE, &status);
  if (t->out != nullptr && status >= 200 && status < 300) {
    t->write_error = t->out->Append(std::string_view(data, n));
    // 0 aborts the transfer with CURLE_WRITE_ERROR.
    return t->write_error.ok() ? n : 0;
  }
  if (t->out != nullptr && t->response->body.size() >= kMaxErrorBody) return n;
  t->response->body.append(data, n);
  return n;
}

size_t HeaderCallback(char* data, size_t size, size_t nitems, void* user) {
  Transfer* t = static_cast<Transfer*>(user);
  size_t n = size * nitems;
  std::string_view line(data, n);
  if (absl::StartsWith(Sv(line), "HTTP/")) {
    t->response->headers.clear();  // a new response (after 100 Continue)
    return n;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return n;
  std::string name = absl::AsciiStrToLower(Sv(line.substr(0, colon)));
  std::string value(absl::StripAsciiWhitespace(Sv(line.substr(colon + 1))));
  t->response->headers[name] = value;
  return n;
}

bool RetryableCurlCode(CURLcode rc) {
  switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return true;
    default:
      return false;
  }
}

std::string GetEnv(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

}  // namespace

// ---- internal helpers (declared in the header for tests) -------------------

namespace internal {

std::string Sha256Hex(std::string_view data) {
  Sha256 sha;
  sha.Update(data.data(), data.size());
  return sha.HexDigest();
}

std::string UriEncode(std::string_view s, bool keep_slash) {
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' ||
        c == '~' || (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppendFormat(&out, "%%%02X", c);
    }
  }
  return out;
}

absl::StatusOr<ListPage> ParseListObjectsV2(std::string_view xml) {
  if (xml.find("<ListBucketResult") == std::string_view::npos) {
    return absl::InternalError(
        "S3 ListObjectsV2 response has no <ListBucketResult>");
  }
  ListPage page;
  size_t pos = 0;
  while (std::optional<std::string_view> contents =
             NextElement(xml, "Contents", &pos)) {
    std::optional<std::string> key = ElementText(*contents, "Key");
    std::optional<std::string> size = ElementText(*contents, "Size");
    uint64_t n = 0;
    if (!key || !size || !absl::SimpleAtoi(*size, &n)) {
      return absl::InternalError(
          "S3 ListObjectsV2 response has <Contents> without a valid <Key> "
          "and <Size>");
    }
    page.objects.push_back({std::move(*key), n});
  }
  std::optional<std::string> truncated = ElementText(xml, "IsTruncated");
  page.truncated = truncated.has_value() && *truncated == "true";
  if (page.truncated) {
    std::optional<std::string> token =
        ElementText(xml, "NextContinuationToken");
    if (!token || token->empty()) {
      return absl::InternalError(
          "S3 ListObjectsV2 response is truncated but has no "
          "<NextContinuationToken>");
    }
    page.next_token = std::move(*token);
  }
  return page;
}

}  // namespace internal

// ---- S3Store::Impl
// -----------------------------------------------------------

class S3Store::Impl {
 public:
  Impl(std::string bucket, std::string prefix, S3StoreOptions options,
       std::string access_key, std::string secret, std::string token)
      : bucket_(std::move(bucket)),
        prefix_(std::move(prefix)),
        options_(std::move(options)),
        access_key_(std::move(access_key)),
        secret_(std::move(secret)),
        token_(std::move(token)),
        sigv4_(absl::StrCat("aws:amz:", options_.region, ":s3")) {
    const bool has_endpoint = options_.endpoint.has_value();
    path_style_ = options_.path_style.value_or(has_endpoint);
    std::string endpoint =
        has_endpoint
            ? *options_.endpoint
            : absl::StrCat("https://s3.", options_.region, ".amazonaws.com");
    while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
    if (path_style_) {
      base_url_ = absl::StrCat(endpoint, "/", bucket_);
    } else {
      size_t scheme_end = endpoint.find("://") + 3;
      base_url_ = absl::StrCat(endpoint.substr(0, scheme_end), bucket_, ".",
                               endpoint.substr(scheme_end));
    }
  }

  ~Impl() {
    for (CURL* h : pool_) curl_easy_cleanup(h);
  }

  std::string Uri() const {
    return prefix_.empty() ? absl::StrCat("s3://", bucket_)
                           : absl::StrCat("s3://", bucket_, "/", prefix_);
  }

  // The S3 key of the store's object `key`.
  std::string FullKey(std::string_view key) const {
    return prefix_.empty() ? std::string(key)
                           : absl::StrCat(prefix_, "/", Sv(key));
  }

  std::string Context(std::string_view what) const {
    return absl::StrCat(Uri(), ": ", Sv(what));
  }

  // Runs `req` with retries. Returns the 2xx response, or the error.
  absl::StatusOr<Response> Execute(const Request& req) {
    absl::Status last;
    for (int attempt = 1; attempt <= options_.max_attempts; ++attempt) {
      if (attempt > 1) options_.sleep(Backoff(attempt - 1));
      bool retryable = false;
      absl::StatusOr<Response> r = Attempt(req, &retryable);
      if (r.ok() || !retryable) return r;
      last = r.status();
    }
    return absl::UnavailableError(
        absl::StrCat(last.message(), " (gave up after ", options_.max_attempts,
                     options_.max_attempts == 1 ? " attempt)" : " attempts)"));
  }

  absl::Status PutBody(std::string_view key, const Body& body,
                       std::string payload_hash, std::string what) {
    Request req;
    req.method = "PUT";
    req.object = FullKey(key);
    req.body = body;
    req.payload_hash = std::move(payload_hash);
    req.what = std::move(what);
    return Execute(req).status();
  }

  absl::Status Multipart(std::string_view key, ReadableFile& file,
                         uint64_t size, const std::string& what);

  absl::StatusOr<std::vector<ObjectInfo>> List(std::string_view prefix);

  const S3StoreOptions& options() const { return options_; }

 private:
  absl::Duration Backoff(int retry) {
    absl::Duration b = options_.initial_backoff;
    for (int i = 1; i < retry && b < options_.max_backoff; ++i) b *= 2;
    b = std::min(b, options_.max_backoff);
    absl::MutexLock lock(&mu_);
    return b / 2 + absl::Uniform(gen_, 0.0, 0.5) * b;
  }

  CURL* AcquireHandle() {
    {
      absl::MutexLock lock(&mu_);
      if (!pool_.empty()) {
        CURL* h = pool_.back();
        pool_.pop_back();
        return h;
      }
    }
    return curl_easy_init();
  }

  void ReleaseHandle(CURL* h) {
    absl::MutexLock lock(&mu_);
    if (pool_.size() < kMaxPooledHandles) {
      pool_.push_back(h);
    } else {
      curl_easy_cleanup(h);
    }
  }

  absl::StatusOr<Response> Attempt(const Request& req, bool* retryable);

  absl::Status HttpError(const Request& req, const Response& resp,
                         bool* retryable) const;

  const std::string bucket_;
  const std::string prefix_;  // no leading or trailing '/'; may be empty
  const S3StoreOptions options_;
  const std::string access_key_;
  const std::string secret_;
  const std::string token_;
  const std::string sigv4_;
  bool path_style_ = true;
  std::string base_url_;  // up to and including the bucket, no trailing '/'

  absl::Mutex mu_;
  std::vector<CURL*> pool_ ABSL_GUARDED_BY(mu_);
  absl::BitGen gen_ ABSL_GUARDED_BY(mu_);
};

absl::StatusOr<Response> S3Store::Impl::Attempt(const Request& req,
                                                bool* retryable) {
  *retryable = false;
  CURL* h = AcquireHandle();
  if (h == nullptr) return absl::InternalError("curl_easy_init failed");
  curl_easy_reset(h);

  Response resp;
  Transfer t;
  t.handle = h;
  t.body = &req.body;
  t.response = &resp;
  if (req.out_file != nullptr) {
    absl::StatusOr<std::unique_ptr<WritableFile>> out =
        req.out_env->NewWritableFile(req.out_path, WriteMode::kTruncate);
    if (!out.ok()) {
      ReleaseHandle(h);
      return LocalFileError(Context(req.what), out.status());
    }
    *req.out_file = *std::move(out);
    t.out = req.out_file->get();
  }

  std::string url = base_url_;
  if (!req.object.empty()) {
    absl::StrAppend(&url, "/", internal::UriEncode(req.object, true));
  } else if (!path_style_) {
    url += "/";
  }
  if (!req.query.empty()) absl::StrAppend(&url, "?", req.query);

  curl_slist* headers = nullptr;
  headers = curl_slist_append(
      headers,
      absl::StrCat("x-amz-content-sha256: ", req.payload_hash).c_str());
  if (!token_.empty()) {
    headers = curl_slist_append(
        headers, absl::StrCat("x-amz-security-token: ", token_).c_str());
  }
  if (!req.content_type.empty()) {
    headers = curl_slist_append(
        headers, absl::StrCat("Content-Type: ", req.content_type).c_str());
  }
  headers = curl_slist_append(headers, "Expect:");

  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_AWS_SIGV4, sigv4_.c_str());
  curl_easy_setopt(h, CURLOPT_USERNAME, access_key_.c_str());
  curl_easy_setopt(h, CURLOPT_PASSWORD, secret_.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(
      h, CURLOPT_CONNECTTIMEOUT_MS,
      static_cast<long>(absl::ToInt64Milliseconds(options_.connect_timeout)));
  curl_easy_setopt(
      h, CURLOPT_TIMEOUT_MS,
      static_cast<long>(absl::ToInt64Milliseconds(options_.request_timeout)));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, WriteCallback);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, HeaderCallback);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);

  if (req.method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (req.method == "PUT") {
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, ReadCallback);
    curl_easy_setopt(h, CURLOPT_READDATA, &t);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE,
                     static_cast<curl_off_t>(req.body.size()));
  } else if (req.method == "POST") {
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, req.body.data.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(req.body.data.size()));
  } else if (req.method != "GET") {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  }

  CURLcode rc = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp.status);
  curl_slist_free_all(headers);
  // Do not leave pointers to this frame's buffers in a pooled handle.
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, nullptr);
  ReleaseHandle(h);

  if (rc != CURLE_OK) {
    if (rc == CURLE_WRITE_ERROR && !t.write_error.ok()) {
      return LocalFileError(Context(req.what), t.write_error);
    }
    *retryable = RetryableCurlCode(rc);
    std::string detail = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
    std::string msg = Context(absl::StrCat(req.what, ": ", detail));
    if (*retryable) return absl::UnavailableError(msg);
    return absl::InternalError(msg);
  }
  if (resp.status >= 200 && resp.status < 300) {
    // CompleteMultipartUpload may report an error inside a 200 response.
    if (req.method == "POST" && absl::StrContains(resp.body, "<Error>")) {
      return HttpError(req, resp, retryable);
    }
    return resp;
  }
  return HttpError(req, resp, retryable);
}

absl::Status S3Store::Impl::HttpError(const Request& req, const Response& resp,
                                      bool* retryable) const {
  std::string code = ElementText(resp.body, "Code").value_or("");
  std::string message = ElementText(resp.body, "Message").value_or("");
  std::string detail = absl::StrCat("HTTP ", resp.status);
  if (!code.empty()) absl::StrAppend(&detail, " ", code);
  if (!message.empty()) absl::StrAppend(&detail, ": ", message);
  const std::string ctx = Context(req.what);

  if (resp.status >= 500 || resp.status == 429 || code == "RequestTimeout" ||
      code == "InternalError" || code == "SlowDown") {
    *retryable = true;
    return absl::UnavailableError(absl::StrCat(ctx, ": ", detail));
  }
  switch (resp.status) {
    case 403:
      return absl::PermissionDeniedError(absl::StrCat(
          ctx, ": access to bucket '", bucket_,
          "' was denied: the request signature or credentials were refused; "
          "check the access key id, secret key, session token and region (",
          detail, ")"));
    case 404:
      if (code == "NoSuchBucket") {
        // A missing bucket is a configuration error, not a missing object.
        return absl::FailedPreconditionError(absl::StrCat(
            ctx, ": bucket '", bucket_, "' does not exist (", detail, ")"));
      }
      return absl::NotFoundError(
          absl::StrCat(ctx, ": no such object (", detail, ")"));
    case 301:
    case 307:
    case 400:
      if (code == "AuthorizationHeaderMalformed" ||
          code == "PermanentRedirect" || resp.status != 400) {
        return absl::FailedPreconditionError(absl::StrCat(
            ctx, ": the bucket is not reachable at this endpoint or region '",
            options_.region, "' (", detail, ")"));
      }
      return absl::InvalidArgumentError(absl::StrCat(ctx, ": ", detail));
    default:
      return absl::FailedPreconditionError(absl::StrCat(ctx, ": ", detail));
  }
}

absl::Status S3Store::Impl::Multipart(std::string_view key, ReadableFile& file,
                                      uint64_t size, const std::string& what) {
  uint64_t part_size = options_.part_size;
  if ((size + part_size - 1) / part_size > kMaxParts) {
    part_size = (size + kMaxParts - 1) / kMaxParts;
  }
  const std::string object = FullKey(key);
  const std::string empty_hash = internal::Sha256Hex("");

  Request init;
  init.method = "POST";
  init.object = object;
  init.query = "uploads=";
  init.payload_hash = empty_hash;
  init.what = absl::StrCat(what, ": start multipart upload");
  WEIR_ASSIGN_OR_RETURN(Response init_resp, Execute(init));
  std::optional<std::string> upload_id =
      ElementText(init_resp.body, "UploadId");
  if (!upload_id || upload_id->empty()) {
    return absl::InternalError(
        Context(absl::StrCat(init.what, ": response has no <UploadId>")));
  }
  const std::string id_param =
      absl::StrCat("uploadId=", internal::UriEncode(*upload_id, false));

  auto upload = [&]() -> absl::Status {
    std::string complete = "<CompleteMultipartUpload>";
    int part = 1;
    for (uint64_t offset = 0; offset < size; offset += part_size, ++part) {
      uint64_t length = std::min(part_size, size - offset);
      Request req;
      req.method = "PUT";
      req.object = object;
      req.query = absl::StrCat("partNumber=", part, "&", id_param);
      req.body.kind = Body::Kind::kFile;
      req.body.file = &file;
      req.body.offset = offset;
      req.body.length = length;
      req.what = absl::StrCat(what, ": part ", part);
      WEIR_ASSIGN_OR_RETURN(req.payload_hash,
                            HashFileRange(file, offset, length, req.what));
      WEIR_ASSIGN_OR_RETURN(Response resp, Execute(req));
      auto etag = resp.headers.find("etag");
      if (etag == resp.headers.end() || etag->second.empty()) {
        return absl::InternalError(
            Context(absl::StrCat(req.what, ": response has no ETag")));
      }
      absl::StrAppend(&complete, "<Part><PartNumber>", part,
                      "</PartNumber><ETag>", XmlEscape(etag->second),
                      "</ETag></Part>");
    }
    complete += "</CompleteMultipartUpload>";
    Request req;
    req.method = "POST";
    req.object = object;
    req.query = id_param;
    req.body.kind = Body::Kind::kMemory;
    req.body.data = complete;
    req.payload_hash = internal::Sha256Hex(complete);
    req.content_type = "application/xml";
    req.what = absl::StrCat(what, ": complete multipart upload");
    return Execute(req).status();
  };

  absl::Status status = upload();
  if (!status.ok()) {
    // Best effort: free the parts stored so far. One attempt; a failure
    // here leaves them to the bucket's lifecycle rule.
    Request abort;
    abort.method = "DELETE";
    abort.object = object;
    abort.query = id_param;
    abort.payload_hash = empty_hash;
    abort.what = absl::StrCat(what, ": abort multipart upload");
    bool ignored = false;
    Attempt(abort, &ignored).IgnoreError();
  }
  return status;
}

absl::StatusOr<std::vector<ObjectInfo>> S3Store::Impl::List(
    std::string_view prefix) {
  const std::string store_prefix = prefix_.empty() ? "" : prefix_ + "/";
  const std::string full_prefix = absl::StrCat(store_prefix, Sv(prefix));
  const std::string empty_hash = internal::Sha256Hex("");
  std::vector<ObjectInfo> out;
  std::string token;
  for (int page = 1;; ++page) {
    Request req;
    req.method = "GET";
    // Parameters in canonical (sorted) order: libcurl signs the query as is.
    if (!token.empty()) {
      absl::StrAppend(&req.query,
                      "continuation-token=", internal::UriEncode(token, false),
                      "&");
    }
    absl::StrAppend(&req.query,
                    "list-type=2&max-keys=", options_.list_page_size);
    if (!full_prefix.empty()) {
      absl::StrAppend(&req.query,
                      "&prefix=", internal::UriEncode(full_prefix, false));
    }
    req.payload_hash = empty_hash;
    req.what = absl::StrCat("list '", Sv(prefix), "' (page ", page, ")");
    WEIR_ASSIGN_OR_RETURN(Response resp, Execute(req));
    absl::StatusOr<internal::ListPage> parsed =
        internal::ParseListObjectsV2(resp.body);
    if (!parsed.ok()) {
      return absl::InternalError(
          Context(absl::StrCat(req.what, ": ", parsed.status().message())));
    }
    for (ObjectInfo& o : parsed->objects) {
      if (!absl::StartsWith(o.key, store_prefix)) continue;
      o.key.erase(0, store_prefix.size());
      out.push_back(std::move(o));
    }
    if (!parsed->truncated) break;
    if (parsed->next_token == token) {
      return absl::InternalError(Context(
          absl::StrCat(req.what, ": the continuation token did not advance")));
    }
    token = std::move(parsed->next_token);
  }
  std::sort(
      out.begin(), out.end(),
      [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
  return out;
}

// ---- S3Store
// -------------------------------------------------------------------

S3Store::S3Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
S3Store::~S3Store() = default;

absl::StatusOr<std::unique_ptr<S3Store>> S3Store::Create(
    std::string bucket, std::string prefix, S3StoreOptions options) {
  WEIR_RETURN_IF_ERROR(options.Validate());
  if (bucket.size() < 3 || bucket.size() > 63 ||
      bucket.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789.-") !=
          std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("S3 bucket name '", bucket,
                     "' is invalid: 3 to 63 characters of [a-z0-9.-]"));
  }
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  while (!prefix.empty() && prefix.front() == '/') prefix.erase(0, 1);
  if (!prefix.empty()) {
    absl::Status st = ValidateObjectKey(prefix);
    if (!st.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("S3 prefix: ", st.message()));
    }
  }
  std::string access_key =
      options.access_key_id.value_or(GetEnv("AWS_ACCESS_KEY_ID"));
  std::string secret =
      options.secret_access_key.value_or(GetEnv("AWS_SECRET_ACCESS_KEY"));
  std::string token =
      options.session_token.value_or(GetEnv("AWS_SESSION_TOKEN"));
  if (access_key.empty() || secret.empty()) {
    return absl::InvalidArgumentError(
        "S3 credentials missing: set S3StoreOptions.access_key_id and "
        "secret_access_key, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
  }
  GlobalInitOnce();
  return std::unique_ptr<S3Store>(new S3Store(std::make_unique<Impl>(
      std::move(bucket), std::move(prefix), std::move(options),
      std::move(access_key), std::move(secret), std::move(token))));
}

std::string S3Store::uri() const { return impl_->Uri(); }

absl::Status S3Store::Put(std::string_view key, std::string_view bytes) {
  WEIR_RETURN_IF_ERROR(ValidateObjectKey(key));
  Body body;
  body.kind = Body::Kind::kMemory;
  body.data = bytes;
  return impl_->PutBody(key, body, internal::Sha256Hex(bytes),
                        absl::StrCat("put '", Sv(key), "'"));
}

absl::Status S3Store::PutFile(std::string_view key,
                              const std::string& local_path) {
  WEIR_RETURN_IF_ERROR(ValidateObjectKey(key));
  const std::string what =
      absl::StrCat("put '", Sv(key), "' from ", local_path);
  Env* const env = impl_->options().env;
  absl::StatusOr<FileStat> st = env->Stat(local_path);
  if (!st.ok()) return LocalFileError(impl_->Context(what), st.status());
  absl::StatusOr<std::unique_ptr<ReadableFile>> file =
      env->NewReadableFile(local_path);
  if (!file.ok()) return LocalFileError(impl_->Context(what), file.status());
  const uint64_t size = st->size;
  if (size >= impl_->options().multipart_threshold) {
    return impl_->Multipart(key, **file, size, what);
  }
  Body body;
  body.kind = Body::Kind::kFile;
  body.file = file->get();
  body.length = size;
  WEIR_ASSIGN_OR_RETURN(std::string hash, HashFileRange(**file, 0, size, what));
  return impl_->PutBody(key, body, hash, what);
}

absl::StatusOr<std::string> S3Store::Get(std::string_view key) {
  WEIR_RETURN_IF_ERROR(ValidateObjectKey(key));
  Request req;
  req.method = "GET";
  req.object = impl_->FullKey(key);
  req.payload_hash = internal::Sha256Hex("");
  req.what = absl::StrCat("get '", Sv(key), "'");
  WEIR_ASSIGN_OR_RETURN(Response resp, impl_->Execute(req));
  return std::move(resp.body);
}

absl::Status S3Store::GetFile(std::string_view key,
                              const std::string& local_path) {
  WEIR_RETURN_IF_ERROR(ValidateObjectKey(key));
  const std::string what = absl::StrCat("get '", Sv(key), "' to ", local_path);
  thread_local absl::BitGen gen;
  const std::string temp =
      absl::StrFormat("%s.weir-tmp-%d-%016x", local_path, getpid(),
                      absl::Uniform<uint64_t>(gen));
  Env* const env = impl_->options().env;
  std::unique_ptr<WritableFile> out;
  Request req;
  req.method = "GET";
  req.object = impl_->FullKey(key);
  req.payload_hash = internal::Sha256Hex("");
  req.out_env = env;
  req.out_path = temp;
  req.out_file = &out;
  req.what = what;
  absl::Status status = impl_->Execute(req).status();
  if (status.ok()) {
    absl::Status local = out->Sync();
    if (local.ok()) local = out->Close();
    out.reset();
    if (local.ok()) local = env->Rename(temp, local_path);
    if (!local.ok()) status = LocalFileError(impl_->Context(what), local);
  }
  out.reset();
  if (!status.ok()) env->RemoveFile(temp).IgnoreError();
  return status;
}

absl::StatusOr<uint64_t> S3Store::Head(std::string_view key) {
  WEIR_RETURN_IF_ERROR(ValidateObjectKey(key));
  Request req;
  req.method = "HEAD";
  req.object = impl_->FullKey(key);
  req.payload_hash = internal::Sha256Hex("");
  req.what = absl::StrCat("head '", Sv(key), "'");
  WEIR_ASSIGN_OR_RETURN(Response resp, impl_->Execute(req));
  auto it = resp.headers.find("content-length");
  uint64_t size = 0;
  if (it == resp.headers.end() || !absl::SimpleAtoi(it->second, &size)) {
    return absl::InternalError(impl_->Context(
        absl::StrCat(req.what, ": response has no valid Content-Length")));
  }
  return size;
}

absl::StatusOr<std::vector<ObjectInfo>> S3Store::List(std::string_view prefix) {
  return impl_->List(prefix);
}

absl::Status S3Store::Delete(std::string_view key) {
  WEIR_RETURN_IF_ERROR(ValidateObjectKey(key));
  Request req;
  req.method = "DELETE";
  req.object = impl_->FullKey(key);
  req.payload_hash = internal::Sha256Hex("");
  req.what = absl::StrCat("delete '", Sv(key), "'");
  absl::Status status = impl_->Execute(req).status();
  if (absl::IsNotFound(status)) return absl::OkStatus();
  return status;
}

}  // namespace weir
