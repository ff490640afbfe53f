#!/usr/bin/python3
"""Conformance suite of the eofaas templates: every test vector against every template.

For each template the runner renders a bundle as the control plane does (the template directory
copied with its symbolic links followed, the fixture handler of the template's language under
function/), starts the template's `run` command in it with the environment the local deployer
gives a replica (EOFAAS_PORT, EOFAAS_HOST, EOFAAS_CONCURRENCY, EOFAAS_DRAIN_TIMEOUT_MS, ...), waits
for /healthz and speaks the replica protocol to it. One replica per template serves every vector
that leaves it as it was; vectors of kind startup and drain get a replica of their own. Data
objects are files in a temporary directory, also served over http:// and https:// by nginx
(Debian's /usr/sbin/nginx, on 127.0.0.1 with a generated configuration and certificate), whose
access log shows the Range header of every read.

The vectors are JSON files in vectors/ (see vectors/README.md); the fixture handlers are in
handlers/. The runner prints one line per template and vector, then "N passed, M failed", and exits
1 if any failed.

Usage: run.py [--template DIR]... [--only GLOB]... [--list] [--keep]
  --template DIR  a template directory (with template.yaml) to check; repeatable. Default: every
                  template under templates/ of the repository.
  --only GLOB     run only the vectors whose name matches; repeatable.
  --list          print the vectors' names and exit.
  --keep          keep the temporary directory (bundles, data, replica and nginx logs).
"""

import argparse
import base64
import bisect
import collections
import concurrent.futures
import fnmatch
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
VECTORS_DIR = os.path.join(HERE, "vectors")
HANDLERS_DIR = os.path.join(HERE, "handlers")
NGINX = "/usr/sbin/nginx"
OPENSSL = "/usr/bin/openssl"

# The fixture handler directory of each template language (template.yaml's `language`).
FIXTURES = {"python": "python", "javascript": "node", "php": "php"}
FUNCTION_NAME = "conformance"
DRAIN_TIMEOUT_MS = 10000
STORES = ("file", "http", "https")
# Invocations a chunk vector keeps in flight on one replica (bounded by its concurrency).
CHUNK_PARALLELISM = 4
REQUEST_TIMEOUT_S = 30.0
START_TIMEOUT_S = 15.0
FUNCTION_ERROR_HEADER = "X-Eofaas-Function-Error"


class Failure(Exception):
    """A vector's expectation is not met; the message says how."""


# ---------------------------------------------------------------------------------------------
# Templates, vectors and data objects


def read_template(template_dir):
    """The fields of template.yaml the runner needs. Its top-level values are plain scalars or
    JSON-compatible flow sequences and quoted strings, so no YAML library is needed."""
    fields = {}
    with open(os.path.join(template_dir, "template.yaml"), encoding="utf-8") as f:
        for line in f:
            match = re.match(r"([A-Za-z_]+):\s*(\S.*?)\s*$", line)
            if not match or match.group(2).startswith("#"):
                continue
            key, raw = match.groups()
            try:
                fields[key] = json.loads(raw)
            except ValueError:
                fields[key] = raw
    run = fields.get("run")
    if not (isinstance(run, list) and run and all(isinstance(arg, str) for arg in run)):
        raise ValueError(f"{template_dir}/template.yaml: run must be a list of strings")
    if fields.get("language") not in FIXTURES:
        raise ValueError(f"{template_dir}/template.yaml: no fixture handler for language "
                         f"{fields.get('language')!r}")
    if not isinstance(fields.get("concurrency"), int) or fields["concurrency"] < 1:
        raise ValueError(f"{template_dir}/template.yaml: concurrency must be a positive integer")
    return {"dir": template_dir, "name": str(fields.get("name") or os.path.basename(template_dir)),
            "language": fields["language"], "run": run, "concurrency": fields["concurrency"]}


def load_vectors():
    """Every vector of vectors/*.json (objects.json aside), in file and then list order."""
    vectors, seen = [], set()
    for name in sorted(os.listdir(VECTORS_DIR)):
        if not name.endswith(".json") or name == "objects.json":
            continue
        with open(os.path.join(VECTORS_DIR, name), encoding="utf-8") as f:
            for vector in json.load(f)["vectors"]:
                if vector["name"] in seen:
                    raise ValueError(f"{name}: vector {vector['name']} defined twice")
                seen.add(vector["name"])
                vectors.append(vector)
    return vectors


def generated_lines(seed, count, max_length, long_every=0, long_length=0, crlf_every=0):
    """Seeded pseudo-random lines: lengths 0..max_length, every long_every-th line long_length
    bytes long, every crlf_every-th line ended by CRLF."""
    rng = random.Random(seed)
    alphabet = string.ascii_letters + string.digits + " ,.;:-_"
    out = []
    for i in range(1, count + 1):
        length = long_length if long_every and i % long_every == 0 else rng.randint(0, max_length)
        ending = "\r\n" if crlf_every and i % crlf_every == 0 else "\n"
        out.append("".join(rng.choices(alphabet, k=length)) + ending)
    return "".join(out).encode("ascii")


def build_object(spec):
    """The bytes of a data object spec of objects.json."""
    if "text" in spec:
        return spec["text"].encode("utf-8")
    if "all_bytes" in spec:
        return bytes(range(256)) * spec["all_bytes"]
    if "fill" in spec:
        char, count = spec["fill"]
        return char.encode("utf-8") * count
    if "lines" in spec:
        return generated_lines(**spec["lines"])
    if "concat" in spec:
        return b"".join(build_object(part) for part in spec["concat"])
    raise ValueError(f"unknown object spec {spec!r}")


def load_objects():
    """name -> bytes, or None for an object that must not exist."""
    with open(os.path.join(VECTORS_DIR, "objects.json"), encoding="utf-8") as f:
        specs = json.load(f)["objects"]
    return {name: None if spec.get("absent") else build_object(spec)
            for name, spec in specs.items()}


def vector_stores(vector):
    stores = vector.get("stores", ["file"])
    unknown = set(stores) - set(STORES)
    if unknown:
        raise ValueError(f"vector {vector['name']}: unknown stores {sorted(unknown)}")
    return stores


# ---------------------------------------------------------------------------------------------
# LINES framing as DESIGN.md states it, computed from line starts (not the readers' algorithm).


class LineIndex:
    """The start offsets of an object's lines: byte 0 and every byte right after a newline."""

    def __init__(self, data):
        self.data = data
        self.starts = [0] if data else []
        self.starts += [m.end() for m in re.finditer(b"\n", data) if m.end() < len(data)]

    def owned(self, offset, length):
        """The bytes of the lines that start inside [offset, offset+length), each whole."""
        end = len(self.data) if length is None else offset + length
        first = bisect.bisect_left(self.starts, offset)
        last = bisect.bisect_left(self.starts, end)  # one past the last owned line
        if first >= last:
            return b""
        stop = self.starts[last] if last < len(self.starts) else len(self.data)
        return self.data[self.starts[first]:stop]


def as_lines_output(owned):
    """What the `lines` behaviour returns for a chunk: each line followed by a newline."""
    return owned if not owned or owned.endswith(b"\n") else owned + b"\n"


def count_lines(data):
    """How many times each line occurs in `data`."""
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return collections.Counter(lines)


def plan_chunks(size, chunk_size, last_chunk):
    """(offset, length) of the chunks of an object, as the proxy's planner cuts it; the last
    chunk's length is exact, absent ("open", to the end) or a whole chunk ("overshoot")."""
    count = max(1, -(-size // chunk_size))
    chunks = []
    for part in range(count):
        offset = part * chunk_size
        length = chunk_size
        if part == count - 1:
            length = {"exact": size - offset, "open": None, "overshoot": chunk_size}[last_chunk]
        chunks.append((offset, length))
    return chunks


def proto3_cursor(uri, offset, length, framing, part, parts, size):
    """A cursor in the proto3 JSON form the proxy sends: int64 as strings, enums by name,
    default values left out."""
    cursor = {"uri": uri}
    if offset:
        cursor["offset"] = str(offset)
    if length is not None:
        cursor["length"] = str(length)
    cursor["framing"] = f"FRAMING_{framing}"
    for name, value in (("part", part), ("parts", parts), ("size", size)):
        if value:
            cursor[name] = str(value)
    return cursor


# ---------------------------------------------------------------------------------------------
# Processes: ports, nginx, replicas


def reserve_port():
    """A free loopback port, found as the control plane finds one (bind to port 0, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port, process, timeout):
    """Waits until 127.0.0.1:port accepts connections; False if `process` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.005)
    return False


def tail(path, lines=8):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-lines:]).rstrip()
    except OSError:
        return ""


NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    default_type application/octet-stream;
    log_format conformance '$arg_r\\t$http_range\\t$status\\t$body_bytes_sent';
    access_log {dir}/access.log conformance;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{http_port};
        listen 127.0.0.1:{https_port} ssl;
        ssl_certificate {dir}/cert.pem;
        ssl_certificate_key {dir}/key.pem;
        root {root};
        location / {{ }}
    }}
}}
"""


class Nginx:
    """nginx serving the data directory on 127.0.0.1 over http and https (a self-signed
    certificate for IP 127.0.0.1, in cert.pem), logging `r` (the invocation tag of the URI's
    query), the Range header, the status and the body bytes sent of every request."""

    def __init__(self, work_dir, root):
        self.dir = work_dir
        self.root = root
        self.cert = os.path.join(work_dir, "cert.pem")
        self.process = None
        self.ports = {}
        self._log_offset = 0
        self._log_rest = b""
        self._entries = {}
        self._lock = threading.Lock()

    def start(self):
        for path in (NGINX, OPENSSL):
            if not os.access(path, os.X_OK):
                raise OSError(f"{path} not found (Debian packages nginx and openssl)")
        os.makedirs(self.dir, exist_ok=True)
        subprocess.run(
            [OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
             "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", f"{self.dir}/key.pem",
             "-out", self.cert],
            check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE)
        for _ in range(3):  # a port reserved and released may be taken again meanwhile
            self.ports = {"http": reserve_port(), "https": reserve_port()}
            conf = os.path.join(self.dir, "nginx.conf")
            with open(conf, "w") as f:
                f.write(NGINX_CONF.format(dir=self.dir, root=self.root,
                                          http_port=self.ports["http"],
                                          https_port=self.ports["https"]))
            with open(os.path.join(self.dir, "stderr.log"), "ab") as log:
                self.process = subprocess.Popen(
                    [NGINX, "-p", self.dir, "-c", conf, "-e", f"{self.dir}/error.log"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            if all(wait_port(port, self.process, 10) for port in self.ports.values()):
                return
            self.stop()
        raise OSError(f"nginx did not start: {tail(os.path.join(self.dir, 'error.log'))}")

    def uri(self, store, name, tag):
        path = urllib.parse.quote(os.fsencode(name))
        return f"{store}://127.0.0.1:{self.ports[store]}/{path}?r={tag}"

    def requests(self, tag, timeout=3.0):
        """The (range, status, bytes) of the requests logged for `tag`; waits up to `timeout`
        for the first (nginx logs a request when it is done with it)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                self._read_log()
                found = self._entries.get(tag)
            if found or time.monotonic() > deadline:
                return found or []
            time.sleep(0.01)

    def _read_log(self):
        try:
            with open(os.path.join(self.dir, "access.log"), "rb") as f:
                f.seek(self._log_offset)
                chunk = f.read()
        except FileNotFoundError:
            return
        self._log_offset += len(chunk)
        lines = (self._log_rest + chunk).split(b"\n")
        self._log_rest = lines.pop()
        for line in lines:
            tag, range_header, status, sent = line.decode("utf-8", "replace").split("\t")
            self._entries.setdefault(tag, []).append((range_header, int(status), int(sent)))

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Response:
    def __init__(self, status, headers, body, elapsed_ms):
        self.status, self.headers, self.body, self.elapsed_ms = status, headers, body, elapsed_ms

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            raise Failure(f"body is not JSON: {show(self.body)}") from None


class Replica:
    """A replica process started as the local deployer starts one: the template's run command,
    cwd the bundle, a clean environment, its own process group (signals go to the group)."""

    # Every replica started, so that an interrupted run can still stop them all.
    started = []
    started_lock = threading.Lock()

    def __init__(self, template, bundle_dir, log_path, drain_timeout_ms=DRAIN_TIMEOUT_MS,
                 function_env=None):
        self.template = template
        self.bundle_dir = bundle_dir
        self.log_path = log_path
        self.drain_timeout_ms = drain_timeout_ms
        self.function_env = function_env or {}
        self.concurrency = template["concurrency"]
        self.process = None
        self.port = None
        self._stopped = False
        self._local = threading.local()

    def environment(self):
        env = dict(self.function_env)
        env.update(
            EOFAAS_PORT=str(self.port), EOFAAS_HOST="127.0.0.1",
            EOFAAS_CONCURRENCY=str(self.concurrency),
            EOFAAS_DRAIN_TIMEOUT_MS=str(self.drain_timeout_ms), EOFAAS_FUNCTION=FUNCTION_NAME,
            EOFAAS_GENERATION="1", EOFAAS_REPLICA="0", EOFAAS_DEPLOYMENT=f"{FUNCTION_NAME}-b2c4d",
            EOFAAS_INSTANCE=f"conformance-{os.getpid()}", PATH="/usr/local/bin:/usr/bin:/bin",
            HOME="/tmp", LANG="C.UTF-8", PYTHONDONTWRITEBYTECODE="1")
        return env

    def spawn(self):
        """Starts the process and waits until its port accepts connections."""
        for _ in range(3):  # the reserved port may have been taken again meanwhile
            self.port = reserve_port()
            with open(self.log_path, "ab") as log:
                self.process = subprocess.Popen(
                    self.template["run"], cwd=self.bundle_dir, env=self.environment(),
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
            with Replica.started_lock:
                Replica.started.append(self)
            if wait_port(self.port, self.process, START_TIMEOUT_S):
                return self
            if self.process.poll() is None or "cannot listen" not in tail(self.log_path):
                break
        raise Failure(f"replica did not listen on {self.port}: {self.describe_exit()}")

    def start(self):
        """Starts the process and waits until /healthz answers 200."""
        self.spawn()
        self.wait_healthy()
        return self

    def wait_healthy(self, timeout=START_TIMEOUT_S):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.request("GET", "/healthz", fresh=True, timeout=5).status == 200:
                    return
            except OSError:
                pass
            if self.process.poll() is not None:
                break
            time.sleep(0.005)
        raise Failure(f"replica not healthy: {self.describe_exit()}")

    def describe_exit(self):
        code = self.process.poll() if self.process else None
        state = "running" if code is None else f"exited with {code}"
        return f"{state}; log:\n{tail(self.log_path)}"

    def request(self, method, path, body=None, fresh=False, timeout=REQUEST_TIMEOUT_S):
        """One HTTP/1.1 request, over this thread's keep-alive connection (as the proxy pools
        them) or over a fresh connection that is closed afterwards."""
        headers = {"Content-Type": "application/json"} if body is not None else {}
        connection = None if fresh else getattr(self._local, "connection", None)
        if connection is None or connection.port != self.port:
            connection = http.client.HTTPConnection("127.0.0.1", self.port)
            if not fresh:
                self._local.connection = connection
        connection.timeout = timeout
        if connection.sock is not None:
            connection.sock.settimeout(timeout)
        started = time.monotonic()
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
        except BaseException:
            connection.close()
            raise
        finally:
            if fresh:
                connection.close()
        return Response(response.status, response.headers, payload,
                        (time.monotonic() - started) * 1000)

    def invoke(self, request, fresh=False, timeout=REQUEST_TIMEOUT_S):
        body = request if isinstance(request, bytes) else json.dumps(request).encode("utf-8")
        return self.request("POST", "/invoke", body, fresh=fresh, timeout=timeout)

    def signal_group(self, signum):
        os.killpg(self.process.pid, signum)

    def stop(self):
        """Kills the whole process group (a php8 replica's workers too); idempotent."""
        if self.process is None or self._stopped:
            return
        self._stopped = True
        # While any member is left the group id cannot be reused, so this reaches only ours.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()


# ---------------------------------------------------------------------------------------------
# Checks


def read_http_response(stream):
    """(status, body) of the next final HTTP/1.1 response on `stream` (a binary file), framed by
    Content-Length or chunked encoding; interim (1xx) responses are passed over."""
    while True:
        status_line = stream.readline()
        if not status_line:
            raise Failure("the connection closed before every answer came")
        status = int(status_line.split()[1])
        headers = {}
        while (line := stream.readline().rstrip(b"\r\n")):
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if 100 <= status < 200:
            continue
        if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            body = b""
            while (size := int(stream.readline().split(b";")[0], 16)):
                body += stream.read(size)
                stream.readline()
            while stream.readline().rstrip(b"\r\n"):  # trailers
                pass
            return status, body
        if b"content-length" not in headers:
            raise Failure(f"answer {status} has no length: the next ones cannot be told apart")
        return status, stream.read(int(headers[b"content-length"]))


def show(data, limit=120):
    """A short printable form of bytes for failure messages."""
    text = repr(bytes(data[:limit]))
    return f"{text}... ({len(data)} bytes)" if len(data) > limit else text


def describe_bytes_mismatch(expected, actual):
    if expected == actual:
        return None
    at = next((i for i, (a, b) in enumerate(zip(expected, actual)) if a != b),
              min(len(expected), len(actual)))
    start = max(0, at - 16)
    return (f"{len(actual)} bytes instead of {len(expected)}, first difference at byte {at}: "
            f"expected {show(expected[start:at + 32], 60)}, got {show(actual[start:at + 32], 60)}")


def json_equal(expected, actual):
    """Equality of JSON values: numbers by value, booleans never equal to numbers."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return expected == actual
    if isinstance(expected, dict):
        return (isinstance(actual, dict) and expected.keys() == actual.keys()
                and all(json_equal(v, actual[k]) for k, v in expected.items()))
    if isinstance(expected, list):
        return (isinstance(actual, list) and len(expected) == len(actual)
                and all(json_equal(e, a) for e, a in zip(expected, actual)))
    return type(expected) is type(actual) and expected == actual


def json_subset_problems(expected, actual, path="body"):
    """Where `actual` differs from `expected`: every key of an expected object must be present
    with a matching value (extra keys are allowed); anything else must be equal."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected an object, got {json.dumps(actual)}"]
        problems = []
        for key, value in expected.items():
            if key not in actual:
                problems.append(f"{path}.{key}: missing")
            else:
                problems += json_subset_problems(value, actual[key], f"{path}.{key}")
        return problems
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        problems = []
        for i, (e, a) in enumerate(zip(expected, actual)):
            problems += json_subset_problems(e, a, f"{path}[{i}]")
        return problems
    if not json_equal(expected, actual):
        return [f"{path}: expected {json.dumps(expected)}, got {json.dumps(actual)}"]
    return []


def json_path(value, dotted):
    for key in dotted.split("."):
        if not isinstance(value, dict) or key not in value:
            raise Failure(f"body.{dotted}: missing")
        value = value[key]
    return value


def substitute(value, uris):
    """Replaces every string "@key" whose key is in `uris` (an object's name: its URI; "etag:"
    or "stale-etag:" and its name: that etag) by what it stands for."""
    if isinstance(value, str) and value.startswith("@") and value[1:] in uris:
        return uris[value[1:]]
    if isinstance(value, dict):
        return {k: substitute(v, uris) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, uris) for v in value]
    return value


def check_response(response, expect, objects):
    """Raises Failure listing every expectation of an invoke vector the response misses."""
    problems = []
    if "status" in expect and response.status != expect["status"]:
        problems.append(f"status {response.status}, expected {expect['status']} "
                        f"(body {show(response.body)})")
    for name, value in expect.get("headers", {}).items():
        got = response.headers.get(name)
        if got != value:
            problems.append(f"header {name}: {got!r}, expected {value!r}")
    for name in expect.get("headers_absent", []):
        if response.headers.get(name) is not None:
            problems.append(f"header {name}: {response.headers.get(name)!r}, expected none")
    expected_body = None
    if "body_text" in expect:
        expected_body = expect["body_text"].encode("utf-8")
    elif "body_base64" in expect:
        expected_body = base64.b64decode(expect["body_base64"])
    elif "body_range" in expect:
        spec = expect["body_range"]
        offset = spec.get("offset", 0)
        end = None if spec.get("length") is None else offset + spec["length"]
        expected_body = objects[spec["object"]][offset:end]
    if expected_body is not None:
        mismatch = describe_bytes_mismatch(expected_body, response.body)
        if mismatch:
            problems.append(f"body: {mismatch}")
    json_keys = ("body_json", "body_json_subset", "body_json_between", "body_json_nonempty")
    if any(key in expect for key in json_keys):
        try:
            body = response.json()
        except Failure as error:
            problems.append(str(error))
        else:
            if "body_json" in expect and not json_equal(expect["body_json"], body):
                problems.append(f"body: expected {json.dumps(expect['body_json'])}, "
                                f"got {json.dumps(body)}")
            if "body_json_subset" in expect:
                problems += json_subset_problems(expect["body_json_subset"], body)
            for dotted, (low, high) in expect.get("body_json_between", {}).items():
                try:
                    value = json_path(body, dotted)
                except Failure as error:
                    problems.append(str(error))
                    continue
                if isinstance(value, bool) or not isinstance(value, (int, float)) \
                        or not low <= value <= high:
                    problems.append(f"body.{dotted}: {json.dumps(value)}, expected a number in "
                                    f"[{low}, {high}]")
            for dotted in expect.get("body_json_nonempty", []):
                try:
                    value = json_path(body, dotted)
                except Failure as error:
                    problems.append(str(error))
                    continue
                if not isinstance(value, str) or not value:
                    problems.append(f"body.{dotted}: {json.dumps(value)}, expected a non-empty "
                                    "string")
    if problems:
        raise Failure("; ".join(problems))


def check_store_requests(nginx, tag, expect):
    """The Range header and status of the data store's first request for invocation `tag`."""
    requests = nginx.requests(tag)
    if not requests:
        raise Failure("no request reached the data store")
    range_header, status, _ = requests[0]
    if "store_range" in expect and range_header != expect["store_range"]:
        raise Failure(f"Range {range_header!r}, expected {expect['store_range']!r}")
    if "store_range_start" in expect and not re.fullmatch(
            rf"bytes={expect['store_range_start']}-\d*", range_header):
        raise Failure(f"Range {range_header!r}, expected bytes={expect['store_range_start']}-...")
    if "store_status" in expect and status != expect["store_status"]:
        raise Failure(f"data store answered {status}, expected {expect['store_status']}")


# ---------------------------------------------------------------------------------------------
# Vector kinds


class TemplateRun:
    """Runs the vectors against one template: owns its bundle and its shared replica."""

    def __init__(self, suite, template, index):
        self.suite = suite
        self.template = template
        self.name = template["name"]
        self.index = index
        self.work_dir = os.path.join(suite.work_dir, f"{index}-{self.name}")
        self.bundle_dir = os.path.join(self.work_dir, "bundle")
        self.replica = None
        self._serial = 0
        self._serial_lock = threading.Lock()

    def tag(self, vector):
        """A unique invocation id (and data-store request tag) for one invocation."""
        with self._serial_lock:
            self._serial += 1
            return f"t{self.index}.{vector['name']}.{self._serial}"

    def render_bundle(self):
        """The template's files, symbolic links followed, plus the fixture under function/."""
        shutil.copytree(self.template["dir"], self.bundle_dir, symlinks=False)
        fixture = os.path.join(HANDLERS_DIR, FIXTURES[self.template["language"]])
        shutil.copytree(fixture, os.path.join(self.bundle_dir, "function"),
                        ignore=shutil.ignore_patterns("__pycache__"))

    def new_replica(self, label, **kwargs):
        env = dict(self.suite.function_env)
        env.update(kwargs.pop("function_env", {}))
        return Replica(self.template, self.bundle_dir,
                       os.path.join(self.work_dir, f"replica-{label}.log"), function_env=env,
                       **kwargs)

    def run(self, vectors, report):
        """Runs every vector, reporting each; a vector that crashes the runner fails alone."""
        self.replica = self.new_replica("shared")
        try:
            os.makedirs(self.work_dir)
            self.render_bundle()
            self.replica.start()
            start_error = None
        except (Failure, OSError) as error:
            start_error = str(error)
        try:
            for vector in vectors:
                started = time.monotonic()
                try:
                    if start_error:
                        raise Failure(f"the replica did not start: {start_error}")
                    detail = getattr(self, "run_" + vector["kind"])(vector) or ""
                    ok = True
                except Failure as error:
                    ok, detail = False, str(error)
                except (OSError, http.client.HTTPException) as error:
                    ok, detail = False, f"{type(error).__name__}: {error}"
                    if self.replica.process.poll() is not None:
                        detail += f" (shared replica {self.replica.describe_exit()})"
                except Exception as error:  # a malformed vector or a bug of the runner
                    ok, detail = False, f"runner error: {type(error).__name__}: {error}"
                elapsed = time.monotonic() - started
                report(self.name, vector["name"], ok, f"{detail} [{elapsed:.2f} s]".strip())
        finally:
            self.replica.stop()

    def uris(self, store, tag):
        if store == "file":
            # fsencode: a name's \udcXX stands for the byte XX (see vectors/README.md).
            return {name: "file://" + urllib.parse.quote(
                        os.fsencode(os.path.join(self.suite.data_dir, name)))
                    for name in self.suite.objects}
        if self.suite.nginx is None:
            raise Failure(f"no {store} store: {self.suite.nginx_error}")
        return {name: self.suite.nginx.uri(store, name, tag) for name in self.suite.objects}

    def etags(self, store):
        """What "@etag:name" (the object's current etag in `store`) and "@stale-etag:name" (the
        etag of a version 10 s older) stand for."""
        etags = {}
        for name in self.suite.objects:
            try:
                status = os.stat(os.path.join(self.suite.data_dir, name))
            except FileNotFoundError:
                continue  # an absent object has no version
            for key, age_ns in (("etag:", 0), ("stale-etag:", 10**10)):
                mtime_ns = status.st_mtime_ns - age_ns
                if store == "file":  # the planner's: mtime in ns and size, hexadecimal
                    etags[key + name] = f"{mtime_ns:x}-{status.st_size:x}"
                else:  # nginx's: mtime in seconds and size, hexadecimal, quoted
                    etags[key + name] = f'"{mtime_ns // 10**9:x}-{status.st_size:x}"'
        return etags

    # -- invoke: one request, its response checked against `expect`

    def run_invoke(self, vector):
        stores = vector_stores(vector)
        for store in stores:
            tag = self.tag(vector)
            uris = {**self.uris(store, tag), **self.etags(store)}
            expect = substitute(vector["expect"], uris)
            where = f"[{store}] " if len(stores) > 1 else ""
            try:
                if "http" in vector:
                    response = self.replica.request(vector["http"]["method"],
                                                    vector["http"]["path"])
                elif "raw_body" in vector:
                    response = self.replica.invoke(vector["raw_body"].encode("utf-8"))
                else:
                    response = self.replica.invoke(substitute(vector["request"], uris))
                check_response(response, expect, self.suite.objects)
                if store != "file" and any(k.startswith("store_") for k in expect):
                    check_store_requests(self.suite.nginx, tag, expect)
            except Failure as error:
                raise Failure(f"{where}{error}") from None
        return f"stores: {', '.join(stores)}" if len(stores) > 1 else ""

    # -- chunks: objects cut into chunks of many sizes, every chunk checked

    def run_chunks(self, vector):
        cases = []  # (store, object, chunk size, behaviour, offset, length, part, parts)
        for store in vector_stores(vector):
            for case in vector["cases"]:
                for name in case["objects"]:
                    size = len(self.suite.objects[name])
                    sizes = case["chunk_sizes"]
                    if sizes == "all":
                        sizes = range(1, size + 2)
                    for i, chunk_size in enumerate(sizes):
                        last_chunk = vector["last_chunk"][i % len(vector["last_chunk"])]
                        chunks = plan_chunks(size, chunk_size, last_chunk)
                        for behaviour in vector["behaviours"]:
                            for part, (offset, length) in enumerate(chunks):
                                cases.append((store, name, chunk_size, behaviour, offset, length,
                                              part, len(chunks)))
        indexes = {name: LineIndex(self.suite.objects[name]) for name in self.suite.objects
                   if self.suite.objects[name] is not None}
        parallelism = min(CHUNK_PARALLELISM, self.template["concurrency"])
        with concurrent.futures.ThreadPoolExecutor(parallelism) as pool:
            results = list(pool.map(lambda case: self.run_chunk(vector, case, indexes), cases))
        failures = [problem for problem, _ in results if problem]
        if failures:
            more = f" (and {len(failures) - 1} more of {len(cases)} chunks)" if len(failures) > 1 \
                else f" (1 of {len(cases)} chunks)"
            raise Failure(failures[0] + more + self.describe_unions(vector, cases, results))
        return f"{len(cases)} chunks"

    def describe_unions(self, vector, cases, results):
        """How the chunks of each cut, put back together, differ from the whole object."""
        cuts = {}  # (store, object, chunk size, behaviour) -> bodies in chunk order
        for case, (_, body) in zip(cases, results):
            cuts.setdefault(case[:4], []).append(body or b"")
        wrong, example = 0, ""
        for (store, name, chunk_size, behaviour), bodies in cuts.items():
            data = self.suite.objects[name]
            whole = as_lines_output(data) if behaviour == "lines" else data
            union = b"".join(bodies)
            if union == whole:
                continue
            wrong += 1
            if not example and vector["framing"] == "LINES":
                want, got = count_lines(whole), count_lines(union)
                example = (f"; e.g. {name} in chunks of {chunk_size} ({behaviour}, {store}): "
                           f"{sum((want - got).values())} lines missing, "
                           f"{sum((got - want).values())} extra")
        return (f"\nthe chunks' union differs from the object in {wrong} of {len(cuts)} cuts"
                f"{example}")

    def run_chunk(self, vector, case, indexes):
        """Invokes one chunk; returns (what is wrong with it or None, the body it got)."""
        store, name, chunk_size, behaviour, offset, length, part, parts = case
        data = self.suite.objects[name]
        tag = self.tag(vector)
        uri = self.uris(store, tag)[name]
        cursor = proto3_cursor(uri, offset, length, vector["framing"], part, parts, len(data))
        where = (f"[{store}] {name} in chunks of {chunk_size}, {behaviour}, chunk "
                 f"offset={offset} length={length}")
        if vector["framing"] == "LINES":
            owned = indexes[name].owned(offset, length)
            expected = as_lines_output(owned) if behaviour == "lines" else owned
            range_start = max(offset - 1, 0)
            expected_range = rf"bytes={range_start}-\d*"
        else:
            end = None if length is None else offset + length
            expected = data[offset:end]
            expected_range = re.escape(f"bytes={offset}-{'' if end is None else end - 1}")
        request = {"id": tag, "cursor": cursor, "args": {"behaviour": behaviour},
                   "deadline_ms": 60000, "attempt": 0}
        try:
            response = self.replica.invoke(request)
        except (OSError, http.client.HTTPException) as error:
            return f"{where}: {type(error).__name__}: {error}", None
        if response.status != 200 or response.headers.get(FUNCTION_ERROR_HEADER):
            return (f"{where}: status {response.status}, "
                    f"{FUNCTION_ERROR_HEADER} {response.headers.get(FUNCTION_ERROR_HEADER)}, "
                    f"body {show(response.body)}"), None
        mismatch = describe_bytes_mismatch(expected, response.body)
        if mismatch:
            return f"{where}: {mismatch}", response.body
        if store != "file" and length != 0:
            requests = self.suite.nginx.requests(tag)
            if not requests or not re.fullmatch(expected_range, requests[0][0]):
                got = requests[0][0] if requests else "no request"
                return (f"{where}: data store saw Range {got!r}, expected {expected_range!r}",
                        response.body)
        return None, response.body

    # -- concurrency: EOFAAS_CONCURRENCY invocations in flight, one more refused

    def block_invocations(self, replica, vector, count, sync_dir):
        """Starts `count` blocking invocations on their own connections; returns the threads and
        the dict their responses (or errors) land in, keyed by invocation id."""
        results, threads = {}, []
        for _ in range(count):
            tag = self.tag(vector)

            def call(tag=tag):
                request = {"id": tag, "args": {"behaviour": "block", "dir": sync_dir,
                                               "timeout_ms": 15000}}
                try:
                    results[tag] = replica.invoke(request, fresh=True, timeout=20)
                except (OSError, http.client.HTTPException) as error:
                    results[tag] = error

            thread = threading.Thread(target=call, daemon=True)
            thread.start()
            threads.append((tag, thread))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            entered = [t for t, _ in threads if os.path.exists(f"{sync_dir}/entered-{t}")]
            if len(entered) == count:
                return threads, results
            time.sleep(0.005)
        got = {t: (r.status if isinstance(r, Response) else repr(r)) for t, r in results.items()}
        raise Failure(f"only {len(entered)} of {count} invocations started running in 10 s; "
                      f"answered so far: {got}")

    @staticmethod
    def check_released(threads, results, expect):
        for tag, thread in threads:
            thread.join(20)
            response = results.get(tag)
            if not isinstance(response, Response):
                raise Failure(f"in-flight invocation {tag}: {response!r}")
            if response.status != expect["inflight_status"]:
                raise Failure(f"in-flight invocation {tag}: status {response.status}, expected "
                              f"{expect['inflight_status']} (body {show(response.body)})")
            if "inflight_body_text" in expect \
                    and response.body != expect["inflight_body_text"].encode():
                raise Failure(f"in-flight invocation {tag}: body {show(response.body)}, "
                              f"expected {expect['inflight_body_text']!r}")

    def run_concurrency(self, vector):
        expect = vector["expect"]
        limit = self.replica.concurrency
        sync_dir = tempfile.mkdtemp(prefix="sync-", dir=self.work_dir)
        threads = []
        try:
            threads, results = self.block_invocations(self.replica, vector, limit, sync_dir)
            beyond_ms = expect["beyond_within_ms"]
            request = {"id": self.tag(vector), "args": {"behaviour": "none-result"}}
            try:
                response = self.replica.invoke(request, fresh=True, timeout=beyond_ms / 1000 + 1)
            except TimeoutError:
                raise Failure(f"invocation {limit + 1} got no answer in {beyond_ms / 1000 + 1} s "
                              f"with {limit} in flight (queued instead of refused?)") from None
            if response.status != expect["beyond_status"]:
                raise Failure(f"invocation {limit + 1} with {limit} in flight: status "
                              f"{response.status}, expected {expect['beyond_status']}")
            if response.elapsed_ms > beyond_ms:
                raise Failure(f"the refusal took {response.elapsed_ms:.0f} ms")
            healthz = self.replica.request("GET", "/healthz", fresh=True, timeout=5)
            if healthz.status != expect["healthz_status"]:
                raise Failure(f"/healthz {healthz.status} while full, expected "
                              f"{expect['healthz_status']}")
        finally:
            open(os.path.join(sync_dir, "release"), "w").close()
        self.check_released(threads, results, expect)
        after = self.replica.invoke({"id": self.tag(vector), "args": {"behaviour": "none-result"}})
        if after.status != expect["after_status"]:
            raise Failure(f"invocation after the others finished: status {after.status}")
        return f"concurrency {limit}"

    # -- pipelined: the replica's concurrency in requests, written at once on one connection

    def run_pipelined(self, vector):
        count = self.replica.concurrency
        tags = [f"{self.tag(vector)}-{i}" for i in range(count)]
        requests = []
        for tag in tags:
            body = json.dumps({"id": tag, "args": vector["args"]}).encode("utf-8")
            requests.append(b"POST /invoke HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                            b"Content-Type: application/json\r\n"
                            + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        with socket.create_connection(("127.0.0.1", self.replica.port),
                                      timeout=REQUEST_TIMEOUT_S) as connection:
            connection.sendall(b"".join(requests))
            answers = connection.makefile("rb")
            for index, tag in enumerate(tags):
                status, body = read_http_response(answers)
                if status != vector["expect"]["status"]:
                    raise Failure(f"answer {index + 1} of {count}: status {status}, body "
                                  f"{show(body)}")
                answered = json.loads(body).get("id")
                if answered != tag:
                    raise Failure(f"answer {index + 1} of {count} is for {answered!r}, expected "
                                  f"{tag!r}: not in the order of the requests")
        return f"{count} requests"

    # -- startup: /healthz while the handler loads

    def run_startup(self, vector):
        expect = vector["expect"]
        replica = self.new_replica(vector["name"], function_env=vector.get("env", {}))
        try:
            replica.spawn()
            timeout = expect["answer_within_ms"] / 1000
            try:
                response = replica.request("GET", "/healthz", fresh=True, timeout=timeout)
            except TimeoutError:
                raise Failure(f"/healthz got no answer within {expect['answer_within_ms']} ms "
                              f"while the handler loads (expected {expect['healthz_status']})")
            if response.status != expect["healthz_status"]:
                raise Failure(f"/healthz {response.status} while the handler loads, expected "
                              f"{expect['healthz_status']}")
            replica.wait_healthy()
        finally:
            replica.stop()

    # -- drain: SIGTERM with invocations in flight

    def run_drain(self, vector):
        expect = vector["expect"]
        replica = self.new_replica(vector["name"], drain_timeout_ms=vector["drain_timeout_ms"])
        sync_dir = tempfile.mkdtemp(prefix="sync-", dir=self.work_dir)
        try:
            replica.start()
            threads, results = self.block_invocations(replica, vector, vector["inflight"],
                                                      sync_dir)
            replica.signal_group(signal.SIGTERM)
            mark = time.monotonic()
            if "healthz_status" in expect:
                status = None
                deadline = time.monotonic() + 2
                while time.monotonic() < deadline and status != expect["healthz_status"]:
                    status = replica.request("GET", "/healthz", fresh=True, timeout=2).status
                if status != expect["healthz_status"]:
                    raise Failure(f"/healthz {status} while draining, expected "
                                  f"{expect['healthz_status']}")
            if "invoke_status" in expect:
                request = {"id": self.tag(vector), "args": {"behaviour": "none-result"}}
                response = replica.invoke(request, fresh=True, timeout=5)
                if response.status != expect["invoke_status"]:
                    raise Failure(f"new invocation while draining: status {response.status}, "
                                  f"expected {expect['invoke_status']}")
            if replica.process.poll() is not None and vector["inflight"] and vector["release"]:
                raise Failure(f"exited before its work in flight was done: "
                              f"{replica.describe_exit()}")
            if vector["release"]:
                open(os.path.join(sync_dir, "release"), "w").close()
                mark = time.monotonic()
            try:
                code = replica.process.wait(expect["exit_within_ms"] / 1000)
            except subprocess.TimeoutExpired:
                raise Failure(f"still running {expect['exit_within_ms']} ms after "
                              f"{'the release' if vector['release'] else 'SIGTERM'}") from None
            if code != expect["exit_code"]:
                raise Failure(f"exit status {code}, expected {expect['exit_code']}; log:\n"
                              f"{tail(replica.log_path)}")
            if vector["release"]:
                self.check_released(threads, results, expect)
            return f"exited {code} after {(time.monotonic() - mark) * 1000:.0f} ms"
        finally:
            open(os.path.join(sync_dir, "release"), "w").close()
            replica.stop()


# ---------------------------------------------------------------------------------------------


class Suite:
    """The data objects, nginx, and one thread per template running every vector."""

    def __init__(self, templates, vectors, work_dir):
        self.templates = templates
        self.vectors = vectors
        self.work_dir = work_dir
        self.data_dir = os.path.join(work_dir, "data")
        self.objects = load_objects()
        self.nginx = None
        self.nginx_error = None
        self.function_env = {}
        self.passed = self.failed = self.known = 0
        self.known_failures = load_known_failures()
        self._print_lock = threading.Lock()

    def report(self, template, vector, ok, detail):
        with self._print_lock:
            # A known failure must keep failing: one that passes is a failure, so that it is
            # removed from known_failures.json.
            reason = self.known_failures.get(template, {}).get(vector)
            if reason is None:
                verdict = "PASS" if ok else "FAIL"
            elif ok:
                verdict, detail = "FAIL", "passes now: remove it from known_failures.json"
            else:
                verdict, detail = "KNOWN", f"{reason}\n{detail}"
            if verdict == "PASS":
                self.passed += 1
            elif verdict == "FAIL":
                self.failed += 1
            else:
                self.known += 1
            lines = detail.splitlines() or [""]
            print(f"{verdict:<5} {template:<20} {vector:<38} {lines[0]}".rstrip())
            for line in lines[1:]:
                print(f"      {line}")
            sys.stdout.flush()

    def run(self):
        os.makedirs(self.data_dir)
        for name, data in self.objects.items():
            if data is not None:
                with open(os.path.join(self.data_dir, name), "wb") as f:
                    f.write(data)
        if any(store != "file" for v in self.vectors for store in vector_stores(v)):
            nginx = Nginx(os.path.join(self.work_dir, "nginx"), self.data_dir)
            try:
                nginx.start()
                self.nginx = nginx
                # The function's own environment: trust the data store's certificate.
                self.function_env = {"SSL_CERT_FILE": nginx.cert,
                                     "NODE_EXTRA_CA_CERTS": nginx.cert}
            except (OSError, subprocess.CalledProcessError) as error:
                self.nginx_error = str(error)
        try:
            runs = [TemplateRun(self, t, i) for i, t in enumerate(self.templates)]
            threads = [threading.Thread(target=r.run, args=(self.vectors, self.report),
                                        daemon=True) for r in runs]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            with Replica.started_lock:
                for replica in Replica.started:
                    replica.stop()
            if self.nginx:
                self.nginx.stop()
        if self.known:
            print(f"{self.known} known failures (tests/conformance/known_failures.json)")
        print(f"{self.passed} passed, {self.failed} failed")
        return self.failed == 0 and self.passed > 0


def load_known_failures():
    """{template: {vector: reason}} from known_failures.json."""
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "known_failures.json")) as f:
        known = json.load(f)
    known.pop("_comment", None)
    return known


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--template", action="append", default=[], metavar="DIR")
    parser.add_argument("--only", action="append", default=[], metavar="GLOB")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--keep", action="store_true")
    options = parser.parse_args(argv)

    vectors = [v for v in load_vectors()
               if not options.only or any(fnmatch.fnmatch(v["name"], g) for g in options.only)]
    if options.list:
        for vector in vectors:
            print(vector["name"])
        return 0
    template_dirs = options.template or sorted(
        os.path.join(REPO_ROOT, "templates", d)
        for d in os.listdir(os.path.join(REPO_ROOT, "templates"))
        if os.path.isfile(os.path.join(REPO_ROOT, "templates", d, "template.yaml")))
    templates = [read_template(os.path.abspath(d)) for d in template_dirs]
    if not vectors or not templates:
        print("nothing to run", file=sys.stderr)
        return 2

    work_dir = tempfile.mkdtemp(prefix="eofaas-conformance-")
    try:
        ok = Suite(templates, vectors, work_dir).run()
    finally:
        if options.keep:
            print(f"kept {work_dir}", file=sys.stderr)
        else:
            shutil.rmtree(work_dir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
