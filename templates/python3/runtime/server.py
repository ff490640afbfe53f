"""Replica server of the python3 template: the eofaas replica protocol over HTTP/1.1.

  GET  /healthz  200 "ok" once function/handler.py is imported; 503 while starting or draining.
  POST /invoke   runs handle(data, ctx) for one cursor and answers 200 with the result; a handler
                 exception is a function error (200 + X-Eofaas-Function-Error: handled|unhandled).
                 429 beyond EOFAAS_CONCURRENCY invocations in flight (never queued), 503 draining.
SIGTERM or SIGINT drains: new work gets 503, in-flight invocations finish (up to
EOFAAS_DRAIN_TIMEOUT_MS), then the process exits 0. A handler that fails to import exits 1.

Run from the bundle root as `python3 -B runtime/server.py`; the user's files are in
../function beside this directory unless EOFAAS_FUNCTION_DIR says otherwise.
"""

import importlib
import json
import os
import signal
import socket
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.dont_write_bytecode = True  # the bundle is read-only: never try to write __pycache__

RUNTIME_DIR = os.path.dirname(os.path.abspath(__file__))
if RUNTIME_DIR not in sys.path:
    sys.path.insert(0, RUNTIME_DIR)

import eofaas  # noqa: E402  (needs RUNTIME_DIR on sys.path)
import eofaas_reader  # noqa: E402

# Request bodies carry a cursor and args, never data; anything bigger is a client bug.
MAX_BODY_BYTES = 16 * 1024 * 1024
FUNCTION_ERROR_HEADER = "X-Eofaas-Function-Error"
LOG_PREFIX = "eofaas python3 runtime"


def log(message, separator=": "):
    # One write per message: request threads share stderr.
    sys.stderr.write(f"{LOG_PREFIX}{separator}{message}\n")
    sys.stderr.flush()


def format_exception():
    import traceback  # only on the error path: it costs start-up time

    return traceback.format_exc().rstrip()


class Admission:
    """Counts invocations in flight and refuses new ones when full, starting or draining.

    An invocation holds its slot until its answer is ready, and counts as unfinished until the
    answer is written: the proxy sends the next invocation as soon as it has read this answer,
    which may be before this thread runs again. Drain waits for the unfinished ones.
    Thread-safe. `ready` flips once after the handler is imported; `drain` flips draining for good.
    """

    def __init__(self, limit):
        self.limit = limit
        self.ready = False
        self.draining = False
        self._inflight = 0  # holding a slot
        self._unfinished = 0
        self._idle = threading.Condition()

    def healthy(self):
        return self.ready and not self.draining

    def enter(self):
        """Takes a slot; returns None, or (status, reason) when the invocation is refused."""
        with self._idle:
            if self.draining:
                return 503, "draining"
            if not self.ready:
                return 503, "starting"
            if self._inflight >= self.limit:
                return 429, f"{self.limit} invocations in flight"
            self._inflight += 1
            self._unfinished += 1
            return None

    def release_slot(self):
        """The answer of an entered invocation is ready: its slot may serve the next one."""
        with self._idle:
            self._inflight -= 1

    def leave(self):
        """The answer of an entered invocation is written (its slot released before)."""
        with self._idle:
            self._unfinished -= 1
            if self._unfinished == 0:
                self._idle.notify_all()

    def drain(self, timeout_s):
        """Refuses new work and waits for in-flight work; False if the timeout cut it short."""
        with self._idle:
            self.draining = True
            return self._idle.wait_for(lambda: self._unfinished == 0, timeout_s)


class BadRequest(Exception):
    def __init__(self, status, field, detail):
        super().__init__(f"{field}: {detail}")
        self.status = status
        self.field = field


class Invocation:
    """A decoded /invoke body."""

    __slots__ = ("id", "cursor", "args", "deadline_ms", "attempt")

    def __init__(self, body):
        try:
            request = json.loads(body) if body.strip() else {}
        except (UnicodeDecodeError, ValueError, RecursionError) as error:
            # RecursionError: valid JSON, but nested deeper than the decoder follows.
            raise BadRequest(400, "body", f"invalid JSON: {error}") from None
        if not isinstance(request, dict):
            raise BadRequest(400, "body", "must be a JSON object")
        try:
            self.id = request.get("id") or ""
            if not isinstance(self.id, str):
                raise eofaas_reader.CursorError("id", "must be a string")
            cursor = request.get("cursor")
            self.cursor = None if cursor is None else eofaas_reader.parse_cursor(cursor)
            self.args = request.get("args")
            if self.args is None:
                self.args = {}
            elif not isinstance(self.args, dict):
                raise eofaas_reader.CursorError("args", "must be a JSON object")
            deadline_ms = eofaas_reader.parse_int(request.get("deadline_ms"), "deadline_ms",
                                                  default=0, minimum=0)
            self.deadline_ms = deadline_ms or None  # 0 means no deadline
            self.attempt = eofaas_reader.parse_int(request.get("attempt"), "attempt", default=0,
                                                   minimum=0)
        except eofaas_reader.CursorError as error:
            raise BadRequest(400, error.field, error.detail) from None


def encode_result(result):
    """Turns a handler's return value into (body, content type)."""
    if result is None:
        return b"", None
    if isinstance(result, (bytes, bytearray, memoryview)):
        return bytes(result), "application/octet-stream"
    if isinstance(result, str):
        return result.encode("utf-8"), "text/plain; charset=utf-8"
    # NaN and Infinity are not JSON: a result holding one fails like any other it cannot encode.
    body = json.dumps(result, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return body.encode("utf-8"), "application/json"


def error_body(error_type, message, **extra):
    return json.dumps({"error": {"type": error_type, "message": message, **extra}}).encode()


class ReplicaServer(ThreadingHTTPServer):
    daemon_threads = True
    # A proxy may open a whole connection pool at once; the default backlog of 5 is too small.
    request_queue_size = 128

    def __init__(self, address, admission, function_name):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, ReplicaRequestHandler)
        self.admission = admission
        self.function_name = function_name
        self.handle = None  # the user's handle(data, ctx), set once imported

    def server_bind(self):
        # HTTPServer.server_bind resolves the host name (getfqdn), which can wait on DNS in a
        # pod; the name is only used for CGI, so bind without it.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # the client hung up mid-response: nothing to report
        super().handle_error(request, client_address)


class ReplicaRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the proxy reuses connections
    server_version = "eofaas-python3"
    # Headers and body go out in two writes; without TCP_NODELAY Nagle would hold the body back
    # until the client's delayed ACK, adding ~40 ms per keep-alive request.
    disable_nagle_algorithm = True
    _holding_slot = False  # an admitted invocation whose answer is not ready yet

    def __getattr__(self, name):
        # BaseHTTPRequestHandler answers 501 for a method without do_<METHOD>; route every
        # method through the same dispatch so known paths answer 405 instead.
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def log_message(self, format, *args):
        pass  # no access log: one line per invocation would swamp the replica's log

    def log_error(self, format, *args):
        log(f"{self.address_string()} {format % args}")

    def _dispatch(self):
        arrived = time.monotonic()  # the deadline budget counts from here
        path = self.path.split("?", 1)[0]
        try:
            body = self._read_body()
        except BadRequest as error:
            self.close_connection = True  # the rest of the stream cannot be trusted
            return self._send_error(error.status, "InvalidArgument", str(error), field=error.field)
        allowed = {"/healthz": ("GET", "HEAD"), "/invoke": ("POST",)}.get(path)
        if allowed is None:
            return self._send_error(404, "NotFound", f"no route {path}")
        if self.command not in allowed:
            return self._send_error(405, "MethodNotAllowed", f"{self.command} {path}",
                                    headers={"Allow": ", ".join(allowed)})
        if path == "/healthz":
            return self._healthz()
        return self._invoke(body, arrived)

    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked_body()
        raw_length = self.headers.get("Content-Length")
        if raw_length is None:
            return b""
        if not raw_length.strip().isdigit():
            raise BadRequest(400, "Content-Length", f"invalid value {raw_length!r}")
        length = int(raw_length)
        if length > MAX_BODY_BYTES:
            raise BadRequest(413, "body", f"larger than {MAX_BODY_BYTES} bytes")
        return self.rfile.read(length)

    def _read_chunked_body(self):
        parts, total = [], 0
        while True:
            size_line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise BadRequest(400, "body", "malformed chunked encoding") from None
            total += size
            if total > MAX_BODY_BYTES:
                raise BadRequest(413, "body", f"larger than {MAX_BODY_BYTES} bytes")
            if size == 0:
                while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                    pass  # trailers: ignored
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)  # CRLF after the chunk

    def _healthz(self):
        admission = self.server.admission
        if admission.healthy():
            return self._send(200, b"ok", "text/plain; charset=utf-8")
        reason = b"draining" if admission.draining else b"starting"
        return self._send(503, reason, "text/plain; charset=utf-8")

    def _invoke(self, body, arrived):
        admission = self.server.admission
        refusal = admission.enter()
        if refusal is not None:
            status, reason = refusal
            kind = "ResourceExhausted" if status == 429 else "Unavailable"
            return self._send_error(status, kind, reason)
        self._holding_slot = True
        try:
            try:
                invocation = Invocation(body)
            except BadRequest as error:
                return self._send_error(error.status, "InvalidArgument", str(error),
                                        field=error.field)
            self._run(invocation, arrived)
        finally:
            self._release_slot()  # when no answer was sent
            admission.leave()  # after the response is written, so drain waits for it

    def _release_slot(self):
        if self._holding_slot:
            self._holding_slot = False
            self.server.admission.release_slot()

    def _run(self, invocation, arrived):
        # Per-operation network timeout for the reader: the caller's budget if it gave one, at
        # most a day (a socket's timeout has a limit: deadline_ms 1e13 overflowed it).
        timeout_s = (min(max(1.0, invocation.deadline_ms / 1000.0), 86400.0)
                     if invocation.deadline_ms else 60.0)
        data = eofaas_reader.Data(invocation.cursor, timeout=timeout_s)
        ctx = eofaas.Context(id=invocation.id, args=invocation.args, attempt=invocation.attempt,
                             deadline_ms=invocation.deadline_ms, function=self.server.function_name,
                             cursor=invocation.cursor, arrived=arrived)
        try:
            body, content_type = encode_result(self.server.handle(data, ctx))
        except eofaas.FunctionError as error:
            return self._send_function_error("handled", error)
        except BaseException as error:  # noqa: B036  even sys.exit() in a handler is its error
            log(f"invocation {invocation.id!r} failed:\n{format_exception()}")
            return self._send_function_error("unhandled", error)
        finally:
            data.close()
        return self._send(200, body, content_type)

    def _send_function_error(self, kind, error):
        body = error_body(type(error).__name__, str(error))
        return self._send(200, body, "application/json", headers={FUNCTION_ERROR_HEADER: kind})

    def _send_error(self, status, error_type, message, headers=None, **extra):
        body = error_body(error_type, message, **extra)
        return self._send(status, body, "application/json", headers=headers)

    def _send(self, status, body, content_type, headers=None):
        self._release_slot()  # the answer is ready
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection or self.server.admission.draining:
            self.send_header("Connection", "close")  # tells the proxy to drop this connection
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)


def env_int(name, default, minimum):
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        log(f"{name} must be an integer >= {minimum}, got {raw!r}")
        sys.exit(2)
    return value


def load_handler(function_dir):
    """Imports function_dir/handler.py and returns its handle(data, ctx)."""
    # The user's directory goes first so their modules win over ours of the same name.
    sys.path.insert(0, os.path.join(function_dir, ".deps"))  # what requirements.txt installed
    sys.path.insert(0, function_dir)
    module = importlib.import_module("handler")
    handle = getattr(module, "handle", None)
    if not callable(handle):
        raise TypeError(f"{module.__file__} does not define handle(data, ctx)")
    return handle


def exit_now(code):
    # os._exit: interpreter shutdown could block on daemon threads still inside a handler.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def main():
    sys.stdout.reconfigure(line_buffering=True)  # a handler's print() shows up in the log promptly
    host = os.environ.get("EOFAAS_HOST", "").strip() or "127.0.0.1"
    port = env_int("EOFAAS_PORT", 8080, 0)
    concurrency = env_int("EOFAAS_CONCURRENCY", 8, 1)
    drain_timeout_s = env_int("EOFAAS_DRAIN_TIMEOUT_MS", 10000, 0) / 1000.0
    function_name = os.environ.get("EOFAAS_FUNCTION", "")
    function_dir = os.path.abspath(
        os.environ.get("EOFAAS_FUNCTION_DIR") or os.path.join(RUNTIME_DIR, "..", "function"))

    # Signals only write to a pipe that the main thread reads: a Python-level handler that took
    # locks could deadlock with the code it interrupts.
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: None)

    admission = Admission(concurrency)
    try:
        server = ReplicaServer((host, port), admission, function_name)
    except OSError as error:
        log(f"cannot listen on {host}:{port}: {error}")
        exit_now(1)
    # Serve before importing the handler so /healthz answers 503 while it loads.
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    bound_host, bound_port = server.server_address[:2]
    log(f"listening on {bound_host}:{bound_port} "
        f"(function {function_name or '-'}, generation {os.environ.get('EOFAAS_GENERATION', '-')}, "
        f"replica {os.environ.get('EOFAAS_REPLICA', '-')}, concurrency {concurrency})", " ")

    try:
        server.handle = load_handler(function_dir)
    except BaseException:  # noqa: B036  whatever the import raised, the replica cannot serve
        log(f"cannot load the handler from {function_dir}:\n{format_exception()}")
        exit_now(1)
    admission.ready = True

    signum = 0
    while signum not in (signal.SIGTERM, signal.SIGINT):
        signum = os.read(wake_read, 1)[0]  # blocks until a signal with a Python handler arrives
    log(f"{signal.Signals(signum).name}, draining")
    if admission.drain(drain_timeout_s):
        log("drained")
    else:
        log(f"drain timeout after {drain_timeout_s:g} s; exiting with work in flight")
    server.server_close()
    exit_now(0)


if __name__ == "__main__":
    main()
