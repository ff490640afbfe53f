"""Shared helpers for the python3 template tests: paths, a Range-capable HTTP file server and a
replica process started from the real runtime/server.py."""

import http.client
import http.server
import json
import os
import re
import subprocess
import sys
import threading
import time

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
TEMPLATE_DIR = os.path.join(REPO_ROOT, "templates", "python3")
RUNTIME_DIR = os.path.join(TEMPLATE_DIR, "runtime")
# The interpreter template.yaml runs replicas with.
PYTHON = "/usr/bin/python3"

if RUNTIME_DIR not in sys.path:
    sys.path.insert(0, RUNTIME_DIR)
sys.dont_write_bytecode = True  # keep __pycache__ out of the template's runtime directory


def wait_until(predicate, timeout=5.0, message="condition"):
    """Polls `predicate` until it returns a true value, which is returned."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        time.sleep(0.002)


class FileServer:
    """Serves a dict {path: bytes} on 127.0.0.1 (port 0). With honour_range=False it ignores
    Range headers and always answers 200 with the whole object, like some static servers; with
    cut_short=True it closes the connection halfway through each body. Each object's ETag is
    `etag(body)`; a request whose If-Match differs gets 412."""

    @staticmethod
    def etag(body):
        return f'"{len(body):x}-{sum(body):x}"'

    def __init__(self, files, honour_range=True, cut_short=False):
        self.files = files
        self.ranges = []  # Range header of every request, for assertions

        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                body = outer.files.get(self.path)
                if body is None:
                    return self._reply(404, b"not found")
                header = self.headers.get("Range")
                outer.ranges.append(header)
                if self.headers.get("If-Match", FileServer.etag(body)) != FileServer.etag(body):
                    return self._reply(412, b"")
                match = re.fullmatch(r"bytes=(\d+)-(\d*)", header or "")
                if not honour_range or not match:
                    return self._reply(200, body)
                first = int(match.group(1))
                if first >= len(body):
                    return self._reply(416, b"", {"Content-Range": f"bytes */{len(body)}"})
                last = min(int(match.group(2)), len(body) - 1) if match.group(2) else len(body) - 1
                content_range = f"bytes {first}-{last}/{len(body)}"
                return self._reply(206, body[first : last + 1], {"Content-Range": content_range})

            def _reply(self, status, body, headers=None):
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                if cut_short:
                    self.close_connection = True
                    body = body[: len(body) // 2]
                self.wfile.write(body)

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # A short poll interval keeps shutdown() quick.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def close(self):
        self._server.shutdown()
        self._server.server_close()


class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"Response({self.status}, {self.body[:200]!r})"


class Replica:
    """A replica started from runtime/server.py with EOFAAS_PORT=0; the port comes from its
    start-up log line. Its stderr is collected for assertions."""

    def __init__(self, function_dir, **env):
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("EOFAAS_")}
        full_env.update(EOFAAS_PORT="0", EOFAAS_FUNCTION_DIR=function_dir,
                        EOFAAS_FUNCTION="test-fn")
        full_env.update(env)
        self.process = subprocess.Popen(
            [PYTHON, "-B", "runtime/server.py"], cwd=TEMPLATE_DIR, env=full_env,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._lines = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._collect, daemon=True)
        self._reader.start()
        self.port = None

    def _collect(self):
        for raw in self.process.stderr:
            with self._lock:
                self._lines.append(raw.decode("utf-8", "replace"))

    def stderr(self):
        with self._lock:
            return "".join(self._lines)

    def wait_listening(self):
        match = wait_until(lambda: re.search(r"runtime listening on [^ ]+:(\d+)", self.stderr())
                           or self.process.poll() is not None, message="the listening log line")
        if match is True:
            raise AssertionError(f"replica exited early: {self.stderr()}")
        self.port = int(match.group(1))
        return self

    def wait_healthy(self):
        self.wait_listening()
        wait_until(lambda: self.request("GET", "/healthz").status == 200, message="healthy")
        return self

    def request(self, method, path, body=None, headers=None, timeout=10):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return Response(response.status, response.headers, response.read())
        finally:
            connection.close()

    def invoke(self, **fields):
        return self.request("POST", "/invoke", json.dumps(fields).encode(),
                            {"Content-Type": "application/json"})

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(5)
        self._reader.join(5)
        self.process.stderr.close()
