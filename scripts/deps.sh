# Sourced by the scripts: installs the Debian packages and npm packages weir
# builds and tests with, when any is missing. Needs root (or sudo) only when
# something is missing.
WEIR_APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libabsl-dev librocksdb-dev librdkafka-dev libcurl4-openssl-dev
  libhiredis-dev libsimdjson-dev libcpp-httplib-dev libssl-dev libavro-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  liblz4-dev libzstd-dev libsnappy-dev zlib1g-dev libbz2-dev
  sqlite3 redis-server clang libclang-rt-14-dev prometheus
)

weir_install_deps() {
  local missing=()
  local p
  for p in "${WEIR_APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  # Node.js and npm (for the s3rver test server) may come from another
  # packaging than Debian's; only a missing command asks for Debian's.
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "weir: installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
  fi
  # npm ci when node_modules is missing or older than the lock file (a new
  # test package was added since it was installed).
  if [ -f package.json ] && { [ ! -d node_modules ] ||
      [ package-lock.json -nt node_modules/.package-lock.json ]; }; then
    npm ci --no-audit --no-fund --loglevel=error
  fi
}
