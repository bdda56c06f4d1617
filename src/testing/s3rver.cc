#include "weir/testing/s3rver.h"

#include <signal.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string_view>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "weir/status_macros.h"

namespace weir {
namespace testing {
namespace {

// Runs s3rver with the test's key pair, and with SigV4 signature checking in
// front of its routes (s3rver 3.7 accepts any V4 signature). Configured by
// environment variables so that no secret appears on a command line.
constexpr char kLauncherJs[] = R"js('use strict';
const crypto = require('crypto');
const path = require('path');

const env = process.env;
const nodeModules = env.WEIR_S3RVER_NODE_MODULES;
const S3rver = require(path.join(nodeModules, 's3rver'));
const AWSAccount = require(
    path.join(nodeModules, 's3rver', 'lib', 'models', 'account'));
const accessKey = env.WEIR_S3RVER_ACCESS_KEY;
const secretKey = env.WEIR_S3RVER_SECRET_KEY;
const buckets = env.WEIR_S3RVER_BUCKETS.split(',').filter(Boolean);

AWSAccount.DUMMY_ACCOUNT.revokeAccessKey('S3RVER');
AWSAccount.DUMMY_ACCOUNT.createKeyPair(accessKey, secretKey);

function rfc3986(s) {
  return encodeURIComponent(s).replace(
      /[!'()*]/g, c => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}
function decode(s) {
  try { return decodeURIComponent(s); } catch (e) { return s; }
}
function hmac(key, data) {
  return crypto.createHmac('sha256', key).update(data, 'utf8').digest();
}
function sha256hex(data) {
  return crypto.createHash('sha256').update(data, 'utf8').digest('hex');
}
function compare(a, b) { return a < b ? -1 : (a > b ? 1 : 0); }

async function refuse(ctx, canonicalRequest) {
  if (env.WEIR_S3RVER_DEBUG) {
    console.error('weir-s3rver: refused; canonical request:\n' +
                  canonicalRequest);
  }
  // Read the request body first, so the client sees the answer rather than
  // a reset connection.
  await new Promise(resolve => {
    ctx.req.on('end', resolve);
    ctx.req.on('error', resolve);
    ctx.req.resume();
  });
  ctx.status = 403;
  ctx.type = 'application/xml';
  ctx.body = '<?xml version="1.0" encoding="UTF-8"?>\n<Error>' +
      '<Code>SignatureDoesNotMatch</Code><Message>The request signature we ' +
      'calculated does not match the signature you provided. Check your ' +
      'key and signing method.</Message></Error>';
}

async function verifySigV4(ctx, next) {
  const auth = ctx.get('authorization');
  if (!auth.startsWith('AWS4-HMAC-SHA256 ')) return next();
  const fields = {};
  for (const part of auth.slice(17).split(',')) {
    const eq = part.indexOf('=');
    fields[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  const [keyId, date, region, service, term] =
      (fields.Credential || '').split('/');
  // An unknown key: s3rver itself answers InvalidAccessKeyId.
  if (keyId !== accessKey) return next();
  const signed = (fields.SignedHeaders || '').split(';');
  const raw = ctx.req.url;
  const q = raw.indexOf('?');
  const rawPath = q < 0 ? raw : raw.slice(0, q);
  const rawQuery = q < 0 ? '' : raw.slice(q + 1);
  const canonicalUri =
      rawPath.split('/').map(s => rfc3986(decode(s))).join('/');
  const canonicalQuery =
      rawQuery.split('&')
          .filter(Boolean)
          .map(p => {
            const i = p.indexOf('=');
            const k = i < 0 ? p : p.slice(0, i);
            const v = i < 0 ? '' : p.slice(i + 1);
            return [rfc3986(decode(k)), rfc3986(decode(v))];
          })
          .sort((a, b) => compare(a[0], b[0]) || compare(a[1], b[1]))
          .map(([k, v]) => k + '=' + v)
          .join('&');
  const canonicalHeaders =
      signed
          .map(h => h + ':' +
                   String(ctx.req.headers[h] ?? '').trim().replace(/\s+/g, ' '))
          .join('\n') + '\n';
  const amzDate = ctx.get('x-amz-date');
  const canonicalRequest = [
    ctx.method, canonicalUri, canonicalQuery, canonicalHeaders,
    signed.join(';'), ctx.get('x-amz-content-sha256')
  ].join('\n');
  const scope = [date, region, service, term].join('/');
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope,
                        sha256hex(canonicalRequest)].join('\n');
  let key = hmac('AWS4' + secretKey, date);
  key = hmac(key, region);
  key = hmac(key, service);
  key = hmac(key, term);
  const expected = crypto.createHmac('sha256', key)
                       .update(stringToSign, 'utf8')
                       .digest('hex');
  const required = ['host', 'x-amz-date', 'x-amz-content-sha256'];
  if (expected !== fields.Signature || !amzDate.startsWith(date) ||
      required.some(h => !signed.includes(h))) {
    return refuse(ctx, canonicalRequest);
  }
  return next();
}

const server = new S3rver({
  address: '127.0.0.1',
  port: 0,
  silent: env.WEIR_S3RVER_LOG !== '1',
  directory: env.WEIR_S3RVER_DIRECTORY,
  vhostBuckets: false,
  configureBuckets: buckets.map(name => ({name, configs: []})),
});
if (env.WEIR_S3RVER_VERIFY === '1') server.middleware.unshift(verifySigV4);

server.run().then(
    ({address, port}) => console.log(`s3rver listening on ${address}:${port}`),
    err => {
      console.error(err);
      process.exit(1);
    });
process.on('SIGTERM', () => {
  server.close().then(() => process.exit(0), () => process.exit(0));
});
)js";

absl::StatusOr<std::string> FindNodeModules(const S3rverOptions& options) {
  std::vector<std::string> candidates;
  if (options.node_modules_dir.has_value()) {
    candidates.push_back(*options.node_modules_dir);
  } else if (const char* env = std::getenv("WEIR_NODE_MODULES")) {
    candidates.push_back(env);
  } else {
    std::error_code ec;
    std::filesystem::path dir = std::filesystem::current_path(ec);
    while (!ec && !dir.empty()) {
      candidates.push_back((dir / "node_modules").string());
      if (dir == dir.root_path()) break;
      dir = dir.parent_path();
    }
  }
  for (const std::string& c : candidates) {
    std::error_code ec;
    if (std::filesystem::exists(c + "/s3rver/package.json", ec)) return c;
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "s3rver is not installed (looked in ", absl::StrJoin(candidates, ", "),
      "): run `npm ci` at the repository root"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<S3rver>> S3rver::Start(
    const S3rverOptions& options) {
  WEIR_ASSIGN_OR_RETURN(std::string node_modules, FindNodeModules(options));
  WEIR_ASSIGN_OR_RETURN(TempDir dir, TempDir::Create("weir-s3rver"));
  const std::string script = dir.path() + "/launcher.js";
  {
    std::ofstream out(script);
    out << kLauncherJs;
    if (!out.good()) {
      return absl::InternalError(absl::StrCat("cannot write ", script));
    }
  }
  SubprocessOptions sub;
  sub.env = {
      "WEIR_S3RVER_NODE_MODULES=" + node_modules,
      "WEIR_S3RVER_DIRECTORY=" + dir.path() + "/data",
      "WEIR_S3RVER_ACCESS_KEY=" + options.access_key_id,
      "WEIR_S3RVER_SECRET_KEY=" + options.secret_access_key,
      "WEIR_S3RVER_BUCKETS=" + absl::StrJoin(options.buckets, ","),
      std::string("WEIR_S3RVER_VERIFY=") +
          (options.verify_signatures ? "1" : "0"),
  };
  // s3rver encrypts ListObjectsV2 continuation tokens with DES, which
  // OpenSSL 3 (under node >= 17) keeps in its legacy provider.
  WEIR_ASSIGN_OR_RETURN(
      std::unique_ptr<Subprocess> child,
      Subprocess::Start({options.node, "--openssl-legacy-provider", script},
                        sub));
  absl::StatusOr<std::string> line =
      child->ReadLineMatching("s3rver listening on", options.startup_timeout);
  if (!line.ok()) {
    return absl::UnavailableError(
        absl::StrCat("s3rver did not start: ", line.status().message()));
  }
  int port = 0;
  size_t colon = line->rfind(':');
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(line->substr(colon + 1), &port) || port <= 0) {
    return absl::InternalError(
        absl::StrCat("s3rver printed an unexpected line: ", *line));
  }
  WEIR_RETURN_IF_ERROR(WaitForPort(port, options.startup_timeout));
  return std::unique_ptr<S3rver>(
      new S3rver(options, std::move(dir), std::move(child), port));
}

S3rver::~S3rver() {
  if (child_ != nullptr && !child_->exited()) {
    child_->Signal(SIGTERM).IgnoreError();
    if (!child_->Wait(absl::Seconds(5)).ok()) child_->Kill();
  }
}

std::string S3rver::endpoint() const {
  return absl::StrCat("http://127.0.0.1:", port_);
}

std::string S3rver::data_dir() const { return dir_.path() + "/data"; }

}  // namespace testing
}  // namespace weir
