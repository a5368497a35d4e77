#!/usr/bin/env bash
# The project's one test command: `bash tests/run-all.sh [extra cargo test args]`.
#
# On a fresh Debian 12 machine, as root, it installs what the suite needs, starts a private
# dockerd that the Docker end-to-end tests talk to, runs `cargo test --all-targets`, and
# cleans up after itself. Its exit code is cargo test's.
set -euo pipefail

cd "$(dirname "$0")/.."
source tests/support.sh

if [[ $(id -u) -ne 0 ]]; then
    echo "run-all.sh: must run as root (it installs packages and starts dockerd)" >&2
    exit 1
fi

# --- packages --------------------------------------------------------------------------
# cmake builds Pingora's C dependencies; docker.io and docker-registry (the CNCF registry)
# are the real clients and servers the end-to-end tests use; gcc + libc6-dev compile the
# static hello binary that goes into the test image. skopeo, podman, containerd (ctr) and
# python3-venv (for the oras SDK from PyPI) are the other clients the OCI tests drive.
# slapd and ldap-utils are the real OpenLDAP server (and slapadd) the LDAP tests start.
# iproute2 (`ip`) makes the network namespaces that tests/common/netns.rs runs servers in.
# nginx and apache2-utils (htpasswd) are the peer stack of the benchmark's quick run.
# chromium, with node and npm, runs the web UI's browser tests (playwright-core drives
# Debian's chromium; no browser is downloaded). A node from elsewhere (nodesource, nvm) will
# do; otherwise Debian's nodejs and npm are installed.
needed=(cmake docker.io docker-registry gcc libc6-dev curl ca-certificates
    skopeo podman containerd python3-venv slapd ldap-utils iproute2 nginx apache2-utils
    chromium)
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    needed+=(nodejs npm)
fi
ensure_packages "${needed[@]}"

# The environment may point these at a CA bundle of its own. Tests set their trust
# explicitly (the dev CA for reqwest, /etc/docker/certs.d for docker); an inherited bundle
# would only change what dockerd and docker-registry (Go programs, which read SSL_CERT_*,
# and AWS_CA_BUNDLE in the registry's S3 code) trust behind our back. cargo finds the
# system store without them.
unset AWS_CA_BUNDLE REQUESTS_CA_BUNDLE SSL_CERT_FILE SSL_CERT_DIR CURL_CA_BUNDLE

# --- the oras SDK -----------------------------------------------------------------------
# tests/client_oras.rs drives the Python `oras` package; it lives in a virtualenv under
# target/ (Debian's python3, so the system's pip policy is left alone), made once.
oras_venv=$PWD/target/oras-venv
if [[ ! -x $oras_venv/bin/python3 ]] || ! "$oras_venv/bin/python3" -c 'import oras' 2>/dev/null; then
    echo "run-all.sh: making $oras_venv with oras from PyPI"
    rm -rf "$oras_venv"
    mkdir -p "$PWD/target"
    /usr/bin/python3 -m venv "$oras_venv"
    "$oras_venv/bin/pip" install --quiet 'oras==0.2.*'
fi
export BERTH_ORAS_PYTHON=$oras_venv/bin/python3

# --- npm packages of the browser tests ---------------------------------------------------
# Exactly what package-lock.json pins; PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD keeps any install
# hook from fetching a browser of its own.
if [[ ! -d tests/ui/node_modules/playwright-core ]] ||
    [[ tests/ui/package-lock.json -nt tests/ui/node_modules/.package-lock.json ]]; then
    echo "run-all.sh: npm ci in tests/ui"
    (cd tests/ui && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
fi

# --- Garage, the S3-compatible store ------------------------------------------------------
# The S3 tests start Garage (tests/common/s3.rs). It comes from crates.io, built once (about
# ten minutes on two cores) into a cache outside the work tree, so fresh clones on the same
# machine reuse it, and rebuilt only when the pinned version changes.
garage_version=2.5.0
garage_root=${BERTH_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/berth/tools}
garage=$garage_root/bin/garage
if [[ ! -x $garage ]] || [[ $("$garage" --version 2>/dev/null) != *"$garage_version"* ]]; then
    echo "run-all.sh: building garage $garage_version into $garage_root (takes a while, once)"
    cargo install --locked --root "$garage_root" --version "$garage_version" \
        --no-default-features --features bundled-libs,sqlite garage
fi
export BERTH_GARAGE=$garage

# --- a private dockerd -----------------------------------------------------------------
trap stop_private_dockerd EXIT
start_private_dockerd

# --- the tests -------------------------------------------------------------------------
# Every target by default. cargo adds --all-targets to a narrower selection rather than
# replacing it, so `run-all.sh --test docker_e2e` drops it to run just that target.
targets=(--all-targets)
for arg in "$@"; do
    case $arg in
        --) break ;;
        --lib | --bins | --bin | --bin=* | --examples | --example | --example=* | \
            --tests | --test | --test=* | --benches | --bench | --bench=* | --doc)
            targets=()
            ;;
    esac
done

# The benchmark's quick run (small sizes, one round), so that it cannot rot; only when
# running everything. It goes first so that cargo test's summary closes the output.
bench_status=0
if (($# == 0)); then
    bash bench/run.sh --quick || bench_status=$?
    if ((bench_status != 0)); then
        echo "run-all.sh: the benchmark's quick run failed ($bench_status)" >&2
    fi
fi

# --no-fail-fast: one failing test binary should not hide the results of the others.
# Not `exec`: the trap must still run afterwards to stop dockerd.
status=0
cargo test "${targets[@]}" --no-fail-fast "$@" || status=$?
if ((status != 0)); then
    # The temp dir goes away with the trap; keep dockerd's view of the failure visible.
    echo "run-all.sh: cargo test failed ($status); last lines of dockerd's log:" >&2
    private_dockerd_log_tail 40 >&2
elif ((bench_status != 0)); then
    status=$bench_status
fi
exit "$status"
