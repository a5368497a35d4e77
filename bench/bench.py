#!/usr/bin/env python3
"""Berth against the stack it replaces, side by side, on this machine.

The peer is Nginx (TLS and basic auth with a bcrypt htpasswd) in front of the CNCF registry
(Debian's docker-registry) on the filesystem. Both sides get the same certificate, the same
user and the same data, and are measured in one run, alternating which goes first each round.
Every number in the table is the median over the rounds.

Run through bench/run.sh, which installs what this needs and builds the binaries.
"""

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GIB = 1024**3
MIB = 1024**2
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# Sizes per mode: (large blob, count of small blobs, small blob, small-request seconds,
# docker image layers, docker layer size, rounds).
FULL = dict(large=1 * GIB, small_count=200, small=1 * MIB, request_seconds=10,
            docker_layers=5, docker_layer=100 * MIB, rounds=3)
QUICK = dict(large=16 * MIB, small_count=20, small=64 * 1024, request_seconds=1,
             docker_layers=2, docker_layer=1 * MIB, rounds=1)

MANIFEST_ACCEPT = ("application/vnd.oci.image.manifest.v1+json, "
                   "application/vnd.docker.distribution.manifest.v2+json")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, process, what, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            sys.exit(f"bench: {what} exited during startup")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"bench: {what} did not listen on {port}")


def run(args, **kwargs):
    result = subprocess.run(args, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        command = " ".join(str(a) for a in args)
        sys.exit(f"bench: `{command}` failed ({result.returncode}):\n"
                 f"{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return result


# --- process accounting ---------------------------------------------------------------------

def descendants(pid):
    """pid and every process below it."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        children = (task / "children").read_text().split()
        for child in children:
            found.extend(descendants(int(child)))
    return found


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / CLOCK_TICKS


def reset_peak_rss(pids):
    for pid in pids:
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def memory_mib(pids, field):
    """The sum of a /proc/PID/status field (VmRSS, VmHWM) over `pids`, in MiB."""
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                total += int(line.split()[1])
    return total / 1024


# --- the two sides ----------------------------------------------------------------------------

class Side:
    """One registry stack under test: its URL, its processes, its user."""

    def __init__(self, name, url, processes, user, password, ca):
        self.name, self.url, self.processes = name, url, processes
        self.user, self.password, self.ca = user, password, ca

    def pids(self):
        pids = []
        for process in self.processes:
            pids.extend(descendants(process.pid))
        return pids

    def stop(self):
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def start_berth(binary, work, user, password):
    port, metrics = free_port(), free_port()
    root = work / "berth"
    root.mkdir()
    hashed = run([binary, "hash-password"], input=password + "\n").stdout.strip()
    (root / "proxy.yaml").write_text(
        f"listen: 127.0.0.1:{port}\n"
        f"metrics_listen: 127.0.0.1:{metrics}\n"
        "tls: {cert: certs/server.crt, key: certs/server.key}\n"
        "storage: {filesystem: {root: data}}\n"
        f"users: {{{user}: \"{hashed}\"}}\n"
        f"acl:\n  - {{users: [{user}], repos: [\"bench/**\"], actions: [pull, push]}}\n")
    log = open(root / "berth.log", "w")
    process = subprocess.Popen([binary, "serve", "--config", root / "proxy.yaml"],
                               stdout=log, stderr=log, env={**os.environ, "RUST_LOG": "info"})
    wait_for_port(port, process, "berth")
    ca = root / "certs/ca.crt"
    return Side("berth", f"https://127.0.0.1:{port}", [process], user, password, ca), root / "certs"


def start_peer(work, certs, user, password):
    """The CNCF registry on plain HTTP behind Nginx doing TLS and bcrypt basic auth."""
    peer = work / "peer"
    (peer / "nginx/logs").mkdir(parents=True)
    registry_port, port = free_port(), free_port()
    (peer / "registry.yml").write_text(
        "version: 0.1\n"
        "log: {level: info}\n"
        "storage:\n"
        f"  filesystem: {{rootdirectory: {peer / 'data'}}}\n"
        "  cache: {blobdescriptor: inmemory}\n"
        f"http: {{addr: 127.0.0.1:{registry_port}}}\n")
    run(["htpasswd", "-B", "-b", "-c", peer / "htpasswd", user, password])
    # Nginx's workers run as an unprivileged user: they must be able to read these.
    for path in (work, peer, peer / "htpasswd", certs, certs / "server.key"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    # The CNCF registry's documented Nginx recipe, plus unbuffered uploads and downloads so
    # Nginx streams layers instead of spooling them to disk first.
    (peer / "nginx.conf").write_text(f"""
worker_processes auto;
pid {peer}/nginx.pid;
error_log {peer}/nginx/logs/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log {peer}/nginx/logs/access.log;
  client_body_temp_path {peer}/nginx/body;
  proxy_temp_path {peer}/nginx/proxy;
  upstream registry {{ server 127.0.0.1:{registry_port}; keepalive 64; }}
  map $upstream_http_docker_distribution_api_version $docker_distribution_api_version {{
    '' 'registry/2.0';
  }}
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {certs}/server.crt;
    ssl_certificate_key {certs}/server.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    client_max_body_size 0;
    chunked_transfer_encoding on;
    location /v2/ {{
      auth_basic "Registry realm";
      auth_basic_user_file {peer}/htpasswd;
      add_header 'Docker-Distribution-Api-Version' $docker_distribution_api_version always;
      proxy_pass http://registry;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_read_timeout 900;
      proxy_request_buffering off;
      proxy_buffering off;
    }}
  }}
}}
""")
    env = {k: v for k, v in os.environ.items() if not k.endswith("CA_BUNDLE")
           and not k.startswith("SSL_CERT")}
    registry_log = open(peer / "registry.log", "w")
    registry = subprocess.Popen(["docker-registry", "serve", peer / "registry.yml"],
                                stdout=registry_log, stderr=registry_log, env=env)
    wait_for_port(registry_port, registry, "docker-registry")
    nginx = subprocess.Popen(["nginx", "-p", peer / "nginx", "-c", peer / "nginx.conf",
                              "-g", "daemon off;"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port, nginx, "nginx")
    ca = certs / "ca.crt"
    return Side("peer", f"https://127.0.0.1:{port}", [nginx, registry], user, password, ca)


# --- measurements ---------------------------------------------------------------------------

class Bench:
    def __init__(self, load, sizes, work):
        self.load, self.sizes, self.work = load, sizes, work
        self.results = {}  # (metric, side) -> [values]

    def record(self, metric, side, value):
        self.results.setdefault((metric, side.name), []).append(value)

    def load_client(self, side, command, repo, *extra):
        args = [self.load, command, "--url", side.url, "--user", side.user,
                "--password", side.password, "--ca", side.ca, "--repo", repo, *extra]
        output = run(args).stdout.strip().splitlines()[-1]
        return json.loads(output)

    def phase(self, side, name, work):
        """Runs `work()`, recording CPU seconds, peak RSS, and how far the phase raised RSS
        above where it started (what the blob size must not change: memory stays flat)."""
        pids = side.pids()
        reset_peak_rss(pids)
        rss_before = memory_mib(pids, "VmRSS")
        cpu_before = cpu_seconds(pids)
        result = work()
        peak = memory_mib(pids, "VmHWM")
        self.record(f"{name}: cpu s", side, cpu_seconds(pids) - cpu_before)
        self.record(f"{name}: peak RSS MiB", side, peak)
        self.record(f"{name}: RSS growth MiB", side, peak - rss_before)
        return result

    def blobs(self, side, round_):
        large, small = self.work / "large", self.work / "small"
        repo = f"bench/r{round_}"
        for label, data, concurrency in [("1 large", large, 1),
                                         (f"{self.sizes['small_count']} small", small, 5)]:
            pushed = self.phase(side, f"push {label}", lambda: self.load_client(
                side, "push", repo, "--dir", data, "--concurrency", str(concurrency)))
            self.record(f"push {label} MB/s", side, pushed["mb_per_s"])
            for clients in (1, 16):
                pulled = self.phase(side, f"pull {label} x{clients}", lambda: self.load_client(
                    side, "pull", repo, "--dir", data, "--clients", str(clients)))
                self.record(f"pull {label} x{clients} MB/s", side, pulled["mb_per_s"])

    def small_requests(self, side):
        self.load_client(side, "manifest", "bench/small", "--tag", "latest")
        for method in ("GET", "HEAD"):
            result = self.load_client(
                side, "requests", "bench/small", "--method", method,
                "--path", "/v2/bench/small/manifests/latest", "--accept", MANIFEST_ACCEPT,
                "--connections", "64", "--seconds", str(self.sizes["request_seconds"]))
            if result["failures"]:
                sys.exit(f"bench: {side.name} failed {result['failures']} {method}s")
            self.record(f"manifest {method} req/s", side, result["per_second"])
            self.record(f"manifest {method} p50 ms", side, result["p50_ms"])
            self.record(f"manifest {method} p99 ms", side, result["p99_ms"])

    def docker(self, side, round_, docker_context):
        host = side.url.removeprefix("https://")
        certs_d = Path(f"/etc/docker/certs.d/{host}")
        certs_d.mkdir(parents=True, exist_ok=True)
        shutil.copy(side.ca, certs_d / "ca.crt")
        config = tempfile.mkdtemp(prefix="bench-docker-")
        env = {**os.environ, "DOCKER_CONFIG": config, "DOCKER_BUILDKIT": "0"}
        image = f"{host}/bench/docker:r{round_}"
        try:
            run(["docker", "login", host, "-u", side.user, "--password-stdin"],
                input=side.password, env=env)
            run(["docker", "build", "-q", "-t", image, docker_context], env=env)
            started = time.time()
            run(["docker", "push", image], env=env)
            self.record("docker push s", side, time.time() - started)
            run(["docker", "rmi", image], env=env)
            started = time.time()
            run(["docker", "pull", image], env=env)
            self.record("docker pull s", side, time.time() - started)
            run(["docker", "rmi", image], env=env)
        finally:
            shutil.rmtree(certs_d, ignore_errors=True)
            shutil.rmtree(config, ignore_errors=True)

    def median(self, metric, side):
        values = self.results.get((metric, side), [])
        return statistics.median(values) if values else None


def docker_context(work, sizes, load, round_):
    """A FROM scratch image of random layers, the kind docker pushes as they are. Each round
    gets layers of its own: with the last round's, both registries would already hold them
    and `docker push` would upload nothing."""
    context = work / f"docker-image-r{round_}"
    context.mkdir()
    lines = ["FROM scratch"]
    for layer in range(sizes["docker_layers"]):
        run([load, "prepare", "--dir", context / f"l{layer}", "--size",
             str(sizes["docker_layer"]), "--count", "1"])
        (context / f"l{layer}/digests").unlink()
        lines.append(f"COPY l{layer}/ /l{layer}/")
    (context / "Dockerfile").write_text("\n".join(lines) + "\n")
    return context


# --- the table ------------------------------------------------------------------------------

HIGHER_IS_BETTER = ("MB/s", "req/s")


def table(bench, sizes):
    metrics = []
    for metric, _ in bench.results:
        if metric not in metrics:
            metrics.append(metric)
    rows = [("metric", "berth", "peer", "berth/peer")]
    for metric in metrics:
        berth, peer = bench.median(metric, "berth"), bench.median(metric, "peer")
        ratio = "" if not berth or not peer else f"{berth / peer:.2f}"
        fmt = lambda v: "-" if v is None else f"{v:.1f}" if abs(v) >= 10 else f"{v:.3f}"
        if "growth" in metric:
            ratio = ""
        rows.append((metric, fmt(berth), fmt(peer), ratio))

    # CPU seconds per GiB over the blob phases.
    moved = {}
    for side in ("berth", "peer"):
        cpu = sum(bench.median(m, side) or 0 for m in metrics
                  if m.endswith(": cpu s") and ("push" in m or "pull" in m))
        gib = 0
        for m in metrics:
            if not m.endswith(": cpu s"):
                continue
            count = 16 if "x16" in m else 1
            size = sizes["large"] if "large" in m else sizes["small"] * sizes["small_count"]
            gib += count * size / GIB
        moved[side] = cpu / gib if gib else None
    if moved["berth"] and moved["peer"]:
        rows.append(("CPU s per GiB moved", f"{moved['berth']:.3f}", f"{moved['peer']:.3f}",
                     f"{moved['berth'] / moved['peer']:.2f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for index, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [row[i].rjust(widths[i]) for i in (1, 2, 3)]
        lines.append("| " + " | ".join(cells) + " |")
        if index == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--berth", required=True)
    parser.add_argument("--load", required=True)
    parser.add_argument("--quick", action="store_true", help="small sizes, one round")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--skip-docker", action="store_true")
    args = parser.parse_args()
    sizes = dict(QUICK if args.quick else FULL)
    if args.rounds:
        sizes["rounds"] = args.rounds

    work = Path(tempfile.mkdtemp(prefix="berth-bench-"))
    sides = []
    try:
        user, password = "bench", secrets.token_urlsafe(18)
        berth, certs = start_berth(args.berth, work, user, password)
        sides.append(berth)
        peer = start_peer(work, certs, user, password)
        sides.append(peer)

        print(f"bench: preparing data in {work}", flush=True)
        run([args.load, "prepare", "--dir", work / "large", "--size", str(sizes["large"]),
             "--count", "1"])
        run([args.load, "prepare", "--dir", work / "small", "--size", str(sizes["small"]),
             "--count", str(sizes["small_count"])])
        bench = Bench(args.load, sizes, work)
        for round_ in range(sizes["rounds"]):
            context = None
            if not args.skip_docker:
                context = docker_context(work, sizes, args.load, round_)
            order = sides if round_ % 2 == 0 else list(reversed(sides))
            for side in order:
                print(f"bench: round {round_ + 1}/{sizes['rounds']}, {side.name}", flush=True)
                bench.blobs(side, round_)
                bench.small_requests(side)
                if context:
                    bench.docker(side, round_, context)
            if context:
                shutil.rmtree(context)
        print()
        print(table(bench, sizes))
        print(f"\n{sizes['rounds']} round(s), medians; {os.cpu_count()} CPUs; "
              f"large blob {sizes['large'] // MIB} MiB, "
              f"{sizes['small_count']} x {sizes['small'] // 1024} KiB blobs")
    finally:
        for side in sides:
            side.stop()
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
