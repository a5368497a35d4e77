#!/usr/bin/env bash
# The project's one test command: `bash tests/run-all.sh [extra cargo test args]`.
#
# On a fresh Debian 12 machine, as root, it installs what the suite needs, starts a private
# dockerd that the Docker end-to-end tests talk to, runs `cargo test --all-targets`, and
# cleans up after itself. Its exit code is cargo test's.
set -euo pipefail

cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 ]]; then
    echo "run-all.sh: must run as root (it installs packages and starts dockerd)" >&2
    exit 1
fi

# --- packages --------------------------------------------------------------------------
# cmake builds Pingora's C dependencies; docker.io and docker-registry (the CNCF registry)
# are the real clients and servers the end-to-end tests use; gcc + libc6-dev compile the
# static hello binary that goes into the test image. skopeo, podman, containerd (ctr) and
# python3-venv (for the oras SDK from PyPI) are the other clients the OCI tests drive.
needed=(cmake docker.io docker-registry gcc libc6-dev curl ca-certificates
    skopeo podman containerd python3-venv)
missing=()
for package in "${needed[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
    if [[ $status != "install ok installed" ]]; then
        missing+=("$package")
    fi
done
if ((${#missing[@]} > 0)); then
    echo "run-all.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # docker.io and docker-registry would start system-wide services (a dockerd that
    # rewrites iptables, a registry on :5000); the suite starts its own instead. Debian's
    # policy-rc.d hook tells package scripts not to start services while it is in place.
    policy=/usr/sbin/policy-rc.d
    added_policy=false
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod +x "$policy"
        added_policy=true
    fi
    install_status=0
    { apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"; } ||
        install_status=$?
    if $added_policy; then
        rm -f "$policy"
    fi
    if ((install_status != 0)); then
        echo "run-all.sh: installing ${missing[*]} failed" >&2
        exit "$install_status"
    fi
fi

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
# Everything it owns lives in one temp dir, so it never touches a system dockerd. vfs works
# without overlayfs support, and with no bridge and no iptables it needs no network setup
# (test containers run with --network none).
docker_dir=$(mktemp -d /tmp/berth-docker.XXXXXX)

# certs.d entries that exist now are not ours; any new 127.0.0.1:* entry came from a test.
certs_d=/etc/docker/certs.d
shopt -s nullglob
certs_before=("$certs_d"/127.0.0.1:*)
shopt -u nullglob

cleanup() {
    local pid
    if [[ -f $docker_dir/docker.pid ]]; then
        pid=$(cat "$docker_dir/docker.pid")
        kill "$pid" 2>/dev/null || true
        # dockerd stops its containerd and containers itself; give it time to do so.
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -9 "$pid" 2>/dev/null || true
    fi
    # A crashed dockerd can leave mounts below its roots; rm -rf cannot cross those.
    grep -o " $docker_dir/[^ ]*" /proc/mounts | sort -r | xargs -r umount -l 2>/dev/null || true
    rm -rf "$docker_dir"

    local entry
    shopt -s nullglob
    for entry in "$certs_d"/127.0.0.1:*; do
        if [[ " ${certs_before[*]} " != *" $entry "* ]]; then
            rm -rf "$entry"
        fi
    done
    shopt -u nullglob
}
trap cleanup EXIT

dockerd \
    --storage-driver=vfs \
    --iptables=false --ip6tables=false --bridge=none \
    --data-root "$docker_dir/data" \
    --exec-root "$docker_dir/exec" \
    -H "unix://$docker_dir/docker.sock" \
    --pidfile "$docker_dir/docker.pid" \
    >"$docker_dir/dockerd.log" 2>&1 &
dockerd_pid=$!

export DOCKER_HOST="unix://$docker_dir/docker.sock"
for _ in $(seq 1 120); do
    if docker version >/dev/null 2>&1; then
        break
    fi
    if ! kill -0 "$dockerd_pid" 2>/dev/null; then
        echo "run-all.sh: dockerd exited during startup; its log:" >&2
        cat "$docker_dir/dockerd.log" >&2
        exit 1
    fi
    sleep 0.5
done
if ! docker version >/dev/null 2>&1; then
    echo "run-all.sh: dockerd did not answer within 60s; its log:" >&2
    cat "$docker_dir/dockerd.log" >&2
    exit 1
fi
echo "run-all.sh: dockerd ready at $DOCKER_HOST (log: $docker_dir/dockerd.log)"

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

# --no-fail-fast: one failing test binary should not hide the results of the others.
# Not `exec`: the trap must still run afterwards to stop dockerd.
status=0
cargo test "${targets[@]}" --no-fail-fast "$@" || status=$?
if ((status != 0)); then
    # The temp dir goes away with the trap; keep dockerd's view of the failure visible.
    echo "run-all.sh: cargo test failed ($status); last lines of dockerd's log:" >&2
    grep -v '\[core\]' "$docker_dir/dockerd.log" | tail -n 40 >&2 || true
fi
exit "$status"
