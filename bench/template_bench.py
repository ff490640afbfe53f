"""Per-template replica figures: cold start and warm invoke throughput through a single replica.

For each template, a bundle is rendered as the control plane renders it (the template's files,
links read through, plus its example under function/) and replicas are spawned as the local
runtime spawns them: template.yaml's `run` in the bundle root, inside the bubblewrap sandbox of
control/deploy/sandbox.cc when bubblewrap works here (its default), with the environment of
control/deploy/replica_process.cc.

- cold start: spawn -> first 200 on GET /healthz (polled every 0.5 ms), over --runs replicas;
- warm invoke: wrk (bench/template_bench.lua) POSTs one /invoke body with a small file:// cursor
  over examples/data to one replica for --duration seconds, with as many connections as the
  template's per-replica concurrency (beyond it a replica answers 429).

Run it through bench/run_template_bench.sh. Prints one line per figure.
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import yaml

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
TEMPLATES_DIR = os.path.join(REPO_ROOT, "templates")
EXAMPLES_DIR = os.path.join(REPO_ROOT, "examples")
DATA_DIR = os.path.join(EXAMPLES_DIR, "data")
WRK_SCRIPT = os.path.join(REPO_ROOT, "bench", "template_bench.lua")
BWRAP = "/usr/bin/bwrap"

# Cold-start targets of issue 4, in milliseconds.
COLD_START_TARGET_MS = {"python3": 150, "node20": 150, "php8": 300, "python3-sci": 300}

# Per template: the example it runs and a small cursor that example handles (see its README).
WORKLOADS = {
    "python3": ("python3-linecount", {"uri": "scenes/2024-03.txt", "framing": "FRAMING_LINES"}),
    "python3-sci": ("python3-sci-raster-stats",
                    {"uri": "rasters/b04.f32", "framing": "FRAMING_NONE"}),
    "node20": ("node20-linecount", {"uri": "scenes/2024-03.txt", "framing": "FRAMING_LINES"}),
    "php8": ("php8-linecount", {"uri": "scenes/2024-03.txt", "framing": "FRAMING_LINES"}),
}

# The sandbox of control/deploy/sandbox.cc: system directories and these /etc entries, read-only.
SYSTEM_DIRS = ["/bin", "/sbin", "/lib", "/lib64"]
ETC_ENTRIES = ["/etc/ssl", "/etc/ca-certificates", "/etc/resolv.conf", "/etc/hosts",
               "/etc/nsswitch.conf", "/etc/passwd", "/etc/group", "/etc/localtime",
               "/etc/alternatives", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d",
               "/etc/php"]
SANDBOX_APP_DIR = "/app"


def render_bundle(template_dir, function_dir, dest):
    """Copies the template (file links read through, caches left out) and function/ into dest."""
    def copy_tree(source, target, skip_caches):
        for root, dirs, files in os.walk(source):
            for name in files:
                path = os.path.join(root, name)
                relative = os.path.relpath(path, source)
                if skip_caches and ("__pycache__" in relative or "node_modules" in relative):
                    continue
                if not os.path.isfile(path):
                    continue
                os.makedirs(os.path.dirname(os.path.join(target, relative)), exist_ok=True)
                shutil.copyfile(path, os.path.join(target, relative))
    copy_tree(template_dir, dest, True)
    copy_tree(function_dir, os.path.join(dest, "function"), False)
    return dest


def bwrap_works():
    probe = [BWRAP, "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--ro-bind", "/", "/",
             "--", "/usr/bin/true"]
    try:
        return subprocess.run(probe, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def sandboxed(command, bundle_dir, sandbox):
    """argv and cwd of a replica, as SandboxedCommand() builds them."""
    if not sandbox:
        return command, bundle_dir
    argv = [BWRAP, "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--cap-drop", "ALL", "--ro-bind", "/usr", "/usr"]
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            argv += ["--symlink", os.readlink(path), path]
        else:
            argv += ["--ro-bind-try", path, path]
    for entry in ETC_ENTRIES:
        argv += ["--ro-bind-try", entry, entry]
    argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    argv += ["--ro-bind", bundle_dir, SANDBOX_APP_DIR, "--ro-bind-try", DATA_DIR, DATA_DIR]
    argv += ["--chdir", SANDBOX_APP_DIR, "--"] + command
    return argv, None


def replica_env(name, port, concurrency):
    """The environment ReplicaEnvironment() gives a local replica."""
    return {
        "EOFAAS_PORT": str(port), "EOFAAS_HOST": "127.0.0.1",
        "EOFAAS_CONCURRENCY": str(concurrency), "EOFAAS_DRAIN_TIMEOUT_MS": "10000",
        "EOFAAS_FUNCTION": f"bench-{name}", "EOFAAS_GENERATION": "1", "EOFAAS_REPLICA": "0",
        "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def healthz_status(port):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


class Replica:
    """One replica process group; start() returns once /healthz answers 200."""

    def __init__(self, name, bundle_dir, template, sandbox):
        self.port = free_port()
        argv, cwd = sandboxed(template["run"], bundle_dir, sandbox)
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            argv, cwd=cwd, env=replica_env(name, self.port, template["concurrency"]),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True)

    def wait_healthy(self, timeout_s=30.0):
        """Milliseconds from spawn to the first 200 on /healthz."""
        deadline = self.started + timeout_s
        while healthz_status(self.port) != 200:
            if self.process.poll() is not None:
                raise SystemExit(f"replica exited with {self.process.returncode}: "
                                 f"{self.process.stderr.read().decode(errors='replace')}")
            if time.perf_counter() > deadline:
                raise SystemExit(f"replica not healthy within {timeout_s} s")
            time.sleep(0.0005)
        return (time.perf_counter() - self.started) * 1000.0

    def stop(self):
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            self.process.wait()
        self.process.stderr.close()


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * (len(ordered) - 1) + 0.5))]


def invoke_body(cursor):
    cursor = dict(cursor, uri="file://" + os.path.join(DATA_DIR, cursor["uri"]))
    return json.dumps({"id": "bench", "cursor": cursor, "args": {}, "deadline_ms": 10000,
                       "attempt": 1})


def check_invoke(port, body):
    """One invocation before the load: the figures are only worth something if it succeeds."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", "/invoke", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        result = response.read()
        if response.status != 200 or response.getheader("X-Eofaas-Function-Error"):
            raise SystemExit(f"/invoke answered {response.status}: {result[:200]!r}")
        return result
    finally:
        connection.close()


def run_wrk(port, body, connections, duration_s):
    command = ["wrk", "--latency", "-t1", f"-c{connections}", f"-d{duration_s}s", "--timeout",
               "5s", "-s", WRK_SCRIPT, f"http://127.0.0.1:{port}/invoke"]
    output = subprocess.run(command, env=dict(os.environ, EOFAAS_BENCH_BODY=body), check=True,
                            capture_output=True, text=True).stdout
    for line in output.splitlines():
        if line.startswith("TEMPLATE_BENCH "):
            requests, duration_us, errors, non_2xx, p50, p99, latency_max = map(
                int, line.split()[1:])
            return {"requests": requests, "rps": requests / (duration_us / 1e6),
                    "errors": errors, "non_2xx": non_2xx, "p50_ms": p50 / 1000.0,
                    "p99_ms": p99 / 1000.0, "max_ms": latency_max / 1000.0}
    raise SystemExit(f"wrk printed no TEMPLATE_BENCH line:\n{output}")


def bench_template(name, runs, duration_s, sandbox, scratch):
    example, cursor = WORKLOADS[name]
    template_dir = os.path.join(TEMPLATES_DIR, name)
    with open(os.path.join(template_dir, "template.yaml")) as f:
        template = yaml.safe_load(f)
    bundle = render_bundle(template_dir, os.path.join(EXAMPLES_DIR, example),
                           os.path.join(scratch, name))

    cold = []
    for _ in range(runs):
        replica = Replica(name, bundle, template, sandbox)
        try:
            cold.append(replica.wait_healthy())
        finally:
            replica.stop()
    median, p90 = statistics.median(cold), percentile(cold, 0.9)
    target = COLD_START_TARGET_MS[name]
    verdict = "met" if p90 <= target else ("met at the median only" if median <= target
                                            else "MISSED")
    print(f"{name:<12} cold start   median {median:6.1f} ms  p90 {p90:6.1f} ms  "
          f"(min {min(cold):.1f}, max {max(cold):.1f}, {runs} runs)  "
          f"target <= {target} ms: {verdict}", flush=True)

    body = invoke_body(cursor)
    replica = Replica(name, bundle, template, sandbox)
    try:
        replica.wait_healthy()
        check_invoke(replica.port, body)
        connections = template["concurrency"]
        load = run_wrk(replica.port, body, connections, duration_s)
    finally:
        replica.stop()
    failures = load["errors"] + load["non_2xx"]
    print(f"{name:<12} warm invoke  {load['rps']:8.0f} req/s  p99 {load['p99_ms']:6.2f} ms  "
          f"(p50 {load['p50_ms']:.2f} ms, {connections} connections, {duration_s} s, "
          f"{load['requests']} requests, {failures} failed)", flush=True)
    return verdict != "MISSED" and failures == 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("templates", nargs="*", metavar="TEMPLATE",
                        help=f"templates to measure (all: {' '.join(WORKLOADS)})")
    parser.add_argument("--runs", type=int, default=20, help="cold starts per template (20)")
    parser.add_argument("--duration", type=int, default=10,
                        help="seconds of wrk load per template (10)")
    args = parser.parse_args()
    unknown = [name for name in args.templates if name not in WORKLOADS]
    if unknown:
        parser.error(f"unknown templates: {' '.join(unknown)}")

    sandbox = bwrap_works()
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), "unknown CPU")
    print(f"template_bench: {os.cpu_count()} CPUs ({cpu}), sandbox "
          f"{'bwrap' if sandbox else 'none'}, wrk and the replica on the same machine",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="template-bench-") as scratch:
        ok = [bench_template(name, args.runs, args.duration, sandbox, scratch)
              for name in args.templates or WORKLOADS]
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
