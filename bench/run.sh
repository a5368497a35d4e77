#!/usr/bin/env bash
# Berth against the stack it replaces (Nginx + the CNCF registry), side by side on this
# machine: `bash bench/run.sh` runs the full benchmark on a release build (1 GiB blobs,
# three rounds); `bash bench/run.sh --quick` the small run that the test command makes so
# the benchmark cannot rot. Needs root: it installs packages and may start its own dockerd.
# Other arguments go to bench/bench.py (`--rounds N`, `--skip-docker`).
set -euo pipefail

cd "$(dirname "$0")/.."
source tests/support.sh

if [[ $(id -u) -ne 0 ]]; then
    echo "bench/run.sh: must run as root (it installs packages and starts dockerd)" >&2
    exit 1
fi

# The peer stack (nginx, htpasswd from apache2-utils, docker-registry) and the real client.
ensure_packages cmake nginx apache2-utils docker-registry docker.io
unset AWS_CA_BUNDLE REQUESTS_CA_BUNDLE SSL_CERT_FILE SSL_CERT_DIR CURL_CA_BUNDLE

# The quick run measures nothing worth comparing, so it reuses the debug build the tests
# made; the full run is worth a release build.
profile=release
for arg in "$@"; do
    [[ $arg == --quick ]] && profile=debug
done
if [[ $profile == release ]]; then
    cargo build --release --bin berth --example berth-load
else
    cargo build --bin berth --example berth-load
fi

if [[ -z ${DOCKER_HOST:-} ]]; then
    trap stop_private_dockerd EXIT
    start_private_dockerd
fi

python3 bench/bench.py --berth "target/$profile/berth" \
    --load "target/$profile/examples/berth-load" "$@"
