# Shared by tests/run-all.sh and bench/run.sh (source it; needs bash and root):
# installing missing Debian packages, and a private dockerd that touches no system state.

# Installs whichever of the named Debian packages are missing, with one `apt-get update`
# first, and without letting their scripts start system services.
ensure_packages() {
    local package status missing=()
    for package in "$@"; do
        status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
        if [[ $status != "install ok installed" ]]; then
            missing+=("$package")
        fi
    done
    ((${#missing[@]} > 0)) || return 0

    echo "support: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # docker.io, docker-registry and nginx would start system-wide services (a dockerd that
    # rewrites iptables, a registry on :5000, a web server on :80); we start our own.
    # Debian's policy-rc.d hook tells package scripts not to start services.
    local policy=/usr/sbin/policy-rc.d added_policy=false install_status=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod +x "$policy"
        added_policy=true
    fi
    { apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"; } ||
        install_status=$?
    if $added_policy; then
        rm -f "$policy"
    fi
    if ((install_status != 0)); then
        echo "support: installing ${missing[*]} failed" >&2
        return "$install_status"
    fi
}

# Starts a dockerd of our own and exports DOCKER_HOST for it. Everything it owns lives in
# one temp dir, so it never touches a system dockerd. vfs works without overlayfs support,
# and with no bridge and no iptables it needs no network setup (containers run with
# --network none). Call stop_private_dockerd (for example from an EXIT trap) to undo it all,
# including any /etc/docker/certs.d entry made meanwhile for loopback or a test host's
# network namespace (10.213.*, see tests/common/netns.rs).
start_private_dockerd() {
    docker_dir=$(mktemp -d /tmp/berth-docker.XXXXXX)
    certs_d=/etc/docker/certs.d
    shopt -s nullglob
    certs_before=("$certs_d"/127.0.0.1:* "$certs_d"/10.213.*:*)
    shopt -u nullglob

    dockerd \
        --storage-driver=vfs \
        --iptables=false --ip6tables=false --bridge=none \
        --data-root "$docker_dir/data" \
        --exec-root "$docker_dir/exec" \
        -H "unix://$docker_dir/docker.sock" \
        --pidfile "$docker_dir/docker.pid" \
        >"$docker_dir/dockerd.log" 2>&1 &
    local dockerd_pid=$!

    export DOCKER_HOST="unix://$docker_dir/docker.sock"
    for _ in $(seq 1 120); do
        if docker version >/dev/null 2>&1; then
            echo "support: dockerd ready at $DOCKER_HOST (log: $docker_dir/dockerd.log)"
            return 0
        fi
        if ! kill -0 "$dockerd_pid" 2>/dev/null; then
            echo "support: dockerd exited during startup; its log:" >&2
            cat "$docker_dir/dockerd.log" >&2
            return 1
        fi
        sleep 0.5
    done
    echo "support: dockerd did not answer within 60s; its log:" >&2
    cat "$docker_dir/dockerd.log" >&2
    return 1
}

# The last lines of the private dockerd's log, without containerd's chatter.
private_dockerd_log_tail() {
    grep -v '\[core\]' "$docker_dir/dockerd.log" | tail -n "${1:-40}" || true
}

stop_private_dockerd() {
    [[ -n ${docker_dir:-} ]] || return 0
    local pid entry
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

    shopt -s nullglob
    for entry in "$certs_d"/127.0.0.1:* "$certs_d"/10.213.*:*; do
        if [[ " ${certs_before[*]} " != *" $entry "* ]]; then
            rm -rf "$entry"
        fi
    done
    shopt -u nullglob
}
