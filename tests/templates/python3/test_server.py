"""Tests of the python3 template's replica server, started as a real process and spoken to over
HTTP exactly as the proxy does."""

import http.client
import json
import os
import signal
import tempfile
import textwrap
import threading
import unittest

from . import support
from .support import Replica, wait_until

# One handler with behaviours picked by args["mode"], so one replica serves most tests.
HANDLER = textwrap.dedent('''
    import os
    import time

    import eofaas
    import helper  # another file of the function, importable from handler.py


    class BadScene(eofaas.FunctionError):
        pass


    def handle(data, ctx):
        mode = ctx.args.get("mode", "read")
        if mode == "read":
            return data.read()
        if mode == "lines":
            return [line.decode() for line in data]
        if mode == "ctx":
            return {"id": ctx.id, "args": ctx.args, "attempt": ctx.attempt,
                    "deadline_ms": ctx.deadline_ms, "remaining_ms": ctx.remaining_ms(),
                    "function": ctx.function, "part": ctx.cursor.part if ctx.cursor else None,
                    "same_cursor": ctx.cursor is data.cursor, "helper": helper.VALUE}
        if mode == "text":
            return "h\\u00e9llo"
        if mode == "none":
            return None
        if mode == "not-a-number":
            return {"mean": float(ctx.args["value"])}
        if mode == "handled":
            raise BadScene("row 3 has no date")
        if mode == "unhandled":
            raise KeyError("cloud_cover")
        if mode == "block":
            # Tell the test we are in, then wait until it lets us go.
            open(os.path.join(ctx.args["dir"], "entered-" + ctx.id), "w").close()
            while not os.path.exists(os.path.join(ctx.args["dir"], "release")):
                time.sleep(0.002)
            return "released"
        raise ValueError("unknown mode " + mode)
''')


def make_function(directory, handler=HANDLER):
    with open(os.path.join(directory, "handler.py"), "w") as f:
        f.write(handler)
    with open(os.path.join(directory, "helper.py"), "w") as f:
        f.write("VALUE = 42\n")


class Blocker:
    """Starts invocations in the 'block' mode on threads and releases them."""

    def __init__(self, replica, directory):
        self.replica, self.dir = replica, directory
        self.results = {}
        self.threads = []

    def start(self, invocation_id):
        def run():
            try:
                self.results[invocation_id] = self.replica.invoke(
                    id=invocation_id, args={"mode": "block", "dir": self.dir})
            except OSError as error:  # the replica went away mid-call
                self.results[invocation_id] = error

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self.threads.append(thread)
        wait_until(lambda: os.path.exists(os.path.join(self.dir, "entered-" + invocation_id)),
                   message=f"invocation {invocation_id} to start")

    def release(self):
        open(os.path.join(self.dir, "release"), "w").close()
        for thread in self.threads:
            thread.join(10)


class TempDirTest(unittest.TestCase):
    def setUp(self):
        self.temp = tempfile.TemporaryDirectory()
        self.addCleanup(self.temp.cleanup)
        self.dir = self.temp.name

    def start_replica(self, handler=HANDLER, **env):
        make_function(self.dir, handler)
        replica = Replica(self.dir, **env)
        self.addCleanup(replica.stop)
        return replica


class InvokeTest(unittest.TestCase):
    """Behaviour of a running replica, shared by the tests of this class."""

    @classmethod
    def setUpClass(cls):
        cls.temp = tempfile.TemporaryDirectory()
        cls.dir = cls.temp.name
        make_function(cls.dir)
        cls.replica = Replica(cls.dir).wait_healthy()
        path = os.path.join(cls.dir, "scenes.csv")
        cls.content = b"S2A_001,2024-03-01,12.5\nS2B_002,2024-03-02,80.0\nL8_003,2024-03-03,3.1\n"
        with open(path, "wb") as f:
            f.write(cls.content)
        cls.uri = "file://" + path

    @classmethod
    def tearDownClass(cls):
        cls.replica.stop()
        cls.temp.cleanup()

    def test_healthz(self):
        response = self.replica.request("GET", "/healthz")
        self.assertEqual((response.status, response.body), (200, b"ok"))

    def test_invoke_returns_the_chunk_bytes(self):
        response = self.replica.invoke(cursor={"uri": self.uri, "offset": "4", "length": "10"})
        self.assertEqual(response.status, 200)
        self.assertEqual(response.body, self.content[4:14])
        self.assertEqual(response.headers["Content-Type"], "application/octet-stream")
        self.assertIsNone(response.headers["X-Eofaas-Function-Error"])

    def test_invoke_lines_framing(self):
        # [30, 50) starts inside the second line (24..47), which belongs to the previous chunk,
        # and holds the start of the third (48).
        response = self.replica.invoke(
            cursor={"uri": self.uri, "offset": 30, "length": 20, "framing": "FRAMING_LINES"},
            args={"mode": "lines"})
        self.assertEqual(response.json(), ["L8_003,2024-03-03,3.1"])

    def test_invoke_over_http(self):
        server = support.FileServer({"/scenes.csv": self.content})
        self.addCleanup(server.close)
        cursor = {"uri": server.url("/scenes.csv"), "offset": 1, "framing": "LINES"}
        response = self.replica.invoke(cursor=cursor, args={"mode": "lines"})
        self.assertEqual(response.json(), ["S2B_002,2024-03-02,80.0", "L8_003,2024-03-03,3.1"])

    def test_context_round_trip(self):
        args = {"mode": "ctx", "threshold": 0.5, "bands": ["B04", "B08"]}
        response = self.replica.invoke(
            id="inv-1", args=args, attempt=2, deadline_ms="5000",
            cursor={"uri": self.uri, "part": "3", "parts": "8"})
        self.assertEqual(response.status, 200)
        self.assertEqual(response.headers["Content-Type"], "application/json")
        ctx = response.json()
        self.assertEqual(ctx["args"], args)
        self.assertEqual((ctx["id"], ctx["attempt"], ctx["function"]), ("inv-1", 2, "test-fn"))
        self.assertEqual((ctx["part"], ctx["same_cursor"], ctx["helper"]), (3, True, 42))
        self.assertEqual(ctx["deadline_ms"], 5000)
        self.assertTrue(0 < ctx["remaining_ms"] <= 5000, ctx["remaining_ms"])

    def test_a_deadline_far_away_still_reads_over_http(self):
        server = support.FileServer({"/scenes.csv": self.content})
        self.addCleanup(server.close)
        cursor = {"uri": server.url("/scenes.csv"), "offset": 1, "framing": "LINES"}
        response = self.replica.invoke(cursor=cursor, args={"mode": "lines"},
                                       deadline_ms=str(10**13))
        self.assertEqual(response.json(), ["S2B_002,2024-03-02,80.0", "L8_003,2024-03-03,3.1"])

    def test_no_deadline_and_no_cursor(self):
        ctx = self.replica.invoke(args={"mode": "ctx"}).json()
        self.assertEqual((ctx["deadline_ms"], ctx["remaining_ms"], ctx["part"]), (None, None, None))
        self.assertEqual(self.replica.invoke().body, b"")

    def test_result_conversions(self):
        text = self.replica.invoke(args={"mode": "text"})
        self.assertEqual(text.body, "h\u00e9llo".encode())
        self.assertEqual(text.headers["Content-Type"], "text/plain; charset=utf-8")
        empty = self.replica.invoke(args={"mode": "none"})
        self.assertEqual((empty.status, empty.body, empty.headers["Content-Length"]),
                         (200, b"", "0"))

    def test_a_result_that_is_not_json_is_a_function_error(self):
        # NaN and Infinity are no JSON numbers: never sent as application/json.
        for value in ("nan", "inf", "-inf"):
            with self.subTest(value=value):
                response = self.replica.invoke(args={"mode": "not-a-number", "value": value})
                self.assertEqual(response.status, 200)
                self.assertEqual(response.headers["X-Eofaas-Function-Error"], "unhandled")
                self.assertEqual(response.json()["error"]["type"], "ValueError")

    def test_handled_function_error(self):
        response = self.replica.invoke(args={"mode": "handled"})
        self.assertEqual(response.status, 200)
        self.assertEqual(response.headers["X-Eofaas-Function-Error"], "handled")
        self.assertEqual(response.json(),
                         {"error": {"type": "BadScene", "message": "row 3 has no date"}})

    def test_unhandled_function_error(self):
        response = self.replica.invoke(id="boom-1", args={"mode": "unhandled"})
        self.assertEqual(response.status, 200)
        self.assertEqual(response.headers["X-Eofaas-Function-Error"], "unhandled")
        self.assertEqual(response.json()["error"]["type"], "KeyError")
        wait_until(lambda: "KeyError: 'cloud_cover'" in self.replica.stderr(),
                   message="the traceback on stderr")
        self.assertIn("boom-1", self.replica.stderr())

    def test_reading_error_is_a_function_error(self):
        response = self.replica.invoke(cursor={"uri": "file:///nonexistent/eofaas/data.csv"})
        self.assertEqual(response.headers["X-Eofaas-Function-Error"], "unhandled")
        self.assertEqual(response.json()["error"]["type"], "FileNotFoundError")

    def test_bad_requests_name_the_field(self):
        cases = [
            (b"{not json", "body"),
            (b"[1, 2]", "body"),
            (json.dumps({"cursor": {"uri": "s3://bucket/key"}}).encode(), "cursor.uri"),
            (json.dumps({"cursor": {"offset": 3}}).encode(), "cursor.uri"),
            (json.dumps({"cursor": {"uri": self.uri, "offset": "-1"}}).encode(), "cursor.offset"),
            (json.dumps({"cursor": {"uri": self.uri, "framing": "X"}}).encode(), "cursor.framing"),
            (json.dumps({"args": [1]}).encode(), "args"),
            (json.dumps({"deadline_ms": "soon"}).encode(), "deadline_ms"),
            # Valid JSON nested deeper than the decoder follows.
            (b'{"args": {"x": ' + b"[" * 5000 + b"]" * 5000 + b"}}", "body"),
        ]
        for body, field in cases:
            with self.subTest(body=body[:60]):
                response = self.replica.request("POST", "/invoke", body)
                self.assertEqual(response.status, 400)
                self.assertEqual(response.json()["error"]["field"], field)
                self.assertIn(field, response.json()["error"]["message"])

    def test_unknown_path_and_wrong_method(self):
        self.assertEqual(self.replica.request("GET", "/nope").status, 404)
        self.assertEqual(self.replica.request("GET", "/invoke").status, 405)
        self.assertEqual(self.replica.request("POST", "/healthz", b"").status, 405)
        self.assertEqual(self.replica.request("DELETE", "/invoke").status, 405)

    def test_keep_alive_reuses_the_connection(self):
        connection = http.client.HTTPConnection("127.0.0.1", self.replica.port, timeout=10)
        self.addCleanup(connection.close)
        connection.request("GET", "/healthz")
        self.assertEqual(connection.getresponse().read(), b"ok")
        sock = connection.sock
        body = json.dumps({"cursor": {"uri": self.uri, "length": 7}})
        connection.request("POST", "/invoke", body)
        self.assertEqual(connection.getresponse().read(), b"S2A_001")
        connection.request("POST", "/nope", b"ignored body")
        response = connection.getresponse()
        response.read()
        self.assertEqual(response.status, 404)
        connection.request("GET", "/healthz")
        self.assertEqual(connection.getresponse().read(), b"ok")
        self.assertIs(connection.sock, sock)

    def test_an_unreadable_body_is_refused_and_the_connection_closed(self):
        for status, length in ((400, "12x"), (413, str(17 * 1024 * 1024))):
            with self.subTest(status=status):
                connection = http.client.HTTPConnection("127.0.0.1", self.replica.port,
                                                        timeout=10)
                self.addCleanup(connection.close)
                connection.putrequest("POST", "/invoke")
                connection.putheader("Content-Length", length)
                connection.endheaders()
                response = connection.getresponse()
                response.read()
                self.assertEqual(response.status, status)
                self.assertEqual(response.headers["Connection"], "close")
                self.assertTrue(response.will_close)

    def test_chunked_request_body(self):
        connection = http.client.HTTPConnection("127.0.0.1", self.replica.port, timeout=10)
        self.addCleanup(connection.close)
        body = [json.dumps({"cursor": {"uri": self.uri, "length": 3}}).encode()]
        connection.request("POST", "/invoke", iter(body), encode_chunked=True)
        self.assertEqual(connection.getresponse().read(), b"S2A")


class ConcurrencyTest(TempDirTest):
    def test_beyond_the_limit_is_refused_at_once(self):
        replica = self.start_replica(EOFAAS_CONCURRENCY="2").wait_healthy()
        blocker = Blocker(replica, self.dir)
        blocker.start("a")
        blocker.start("b")
        response = replica.invoke(args={"mode": "none"})
        self.assertEqual(response.status, 429)
        self.assertEqual(replica.request("GET", "/healthz").status, 200)
        blocker.release()
        self.assertEqual([blocker.results[i].body for i in "ab"], [b"released", b"released"])
        self.assertEqual(replica.invoke(args={"mode": "none"}).status, 200)


class LifecycleTest(TempDirTest):
    def test_sigterm_drains_in_flight_work(self):
        replica = self.start_replica().wait_healthy()
        blocker = Blocker(replica, self.dir)
        blocker.start("slow")
        replica.process.send_signal(signal.SIGTERM)
        wait_until(lambda: replica.request("GET", "/healthz").status == 503, message="draining")
        refused = replica.invoke(args={"mode": "none"})
        self.assertEqual(refused.status, 503)
        self.assertIsNone(replica.process.poll())  # still waiting for the slow invocation
        blocker.release()
        self.assertEqual(blocker.results["slow"].status, 200)
        self.assertEqual(blocker.results["slow"].body, b"released")
        self.assertEqual(replica.process.wait(10), 0)

    def test_sigint_with_nothing_in_flight_exits_zero(self):
        replica = self.start_replica().wait_healthy()
        replica.process.send_signal(signal.SIGINT)
        self.assertEqual(replica.process.wait(10), 0)

    def test_drain_timeout_bounds_the_wait(self):
        replica = self.start_replica(EOFAAS_DRAIN_TIMEOUT_MS="50").wait_healthy()
        blocker = Blocker(replica, self.dir)
        blocker.start("stuck")
        replica.process.send_signal(signal.SIGTERM)
        self.assertEqual(replica.process.wait(10), 0)
        wait_until(lambda: "drain timeout" in replica.stderr(), message="the drain log line")

    def test_unhealthy_while_the_handler_loads(self):
        gate = os.path.join(self.dir, "loaded")
        slow_import = (f"import os, time\nwhile not os.path.exists({gate!r}):\n"
                       f"    time.sleep(0.002)\n" + HANDLER)
        replica = self.start_replica(slow_import).wait_listening()
        self.assertEqual(replica.request("GET", "/healthz").status, 503)
        self.assertEqual(replica.invoke().status, 503)
        open(gate, "w").close()
        replica.wait_healthy()
        self.assertEqual(replica.invoke(args={"mode": "none"}).status, 200)

    def test_import_failure_exits_non_zero(self):
        replica = self.start_replica("raise RuntimeError('bad band config')\n")
        self.assertNotEqual(replica.process.wait(10), 0)
        wait_until(lambda: "RuntimeError: bad band config" in replica.stderr(),
                   message="the traceback on stderr")

    def test_missing_handle_function_exits_non_zero(self):
        replica = self.start_replica("def handler(data, ctx):\n    return None\n")
        self.assertNotEqual(replica.process.wait(10), 0)
        wait_until(lambda: "does not define handle" in replica.stderr(), message="the error")


if __name__ == "__main__":
    unittest.main()
