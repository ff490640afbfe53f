"""Tests of the python3-sci template as the control plane uses it: template.yaml, a bundle
rendered outside the repository (self-contained, shared runtime files included), its check and
Dockerfile, and a replica started from it serving the raster-stats example."""

import filecmp
import json
import os
import re
import signal
import subprocess
import tempfile
import unittest

import numpy

from . import support

# The keys the control plane's template catalog accepts (control/build/template_catalog.cc).
TEMPLATE_KEYS = ["name", "language", "description", "handler", "run", "check", "dependencies",
                 "concurrency", "image"]
SHARED_RUNTIME_FILES = ["server.py", "eofaas.py", "eofaas_reader.py"]


class TemplateYamlTest(unittest.TestCase):
    def test_keys_and_commands(self):
        keys, run, check = support.template_yaml()
        self.assertEqual(sorted(keys), sorted(TEMPLATE_KEYS))
        with open(os.path.join(support.TEMPLATE_DIR, "template.yaml")) as f:
            text = f.read()
        self.assertIn("name: python3-sci\n", text)
        self.assertIn('signature: "def handle(data, ctx)"', text)
        self.assertIn("numpy", re.search(r"^description: (.*)$", text, re.MULTILINE).group(1))
        self.assertEqual(run, ["/usr/bin/python3", "-B", "runtime/sci_server.py"])
        self.assertEqual(check, ["/usr/bin/python3", "-m", "py_compile"])

    def test_the_runtime_reuses_the_python3_files(self):
        for name in SHARED_RUNTIME_FILES:
            path = os.path.join(support.RUNTIME_DIR, name)
            with self.subTest(name=name):
                self.assertTrue(os.path.islink(path))
                self.assertEqual(os.path.realpath(path),
                                 os.path.realpath(os.path.join(support.PYTHON3_RUNTIME_DIR, name)))


class BundleTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.temp = tempfile.TemporaryDirectory()
        cls.bundle = support.render_bundle(os.path.join(cls.temp.name, "bundle"),
                                           support.EXAMPLE_DIR)

    @classmethod
    def tearDownClass(cls):
        cls.temp.cleanup()

    def test_the_bundle_is_self_contained(self):
        for root, dirs, files in os.walk(self.bundle):
            for name in dirs + files:
                self.assertFalse(os.path.islink(os.path.join(root, name)), name)
        runtime = os.path.join(self.bundle, "runtime")
        self.assertEqual(sorted(os.listdir(runtime)),
                         sorted(SHARED_RUNTIME_FILES + ["eofaas_numpy.py", "sci_server.py"]))
        for name in SHARED_RUNTIME_FILES:
            self.assertTrue(filecmp.cmp(os.path.join(runtime, name),
                                        os.path.join(support.PYTHON3_RUNTIME_DIR, name),
                                        shallow=False), name)

    def test_every_dockerfile_copy_source_exists(self):
        with open(os.path.join(self.bundle, "Dockerfile")) as f:
            dockerfile = f.read()
        copies = re.findall(r"^COPY (?!--from)(\S+) ", dockerfile, re.MULTILINE)
        self.assertEqual(copies, ["."])
        self.assertIn("USER ", dockerfile)
        self.assertRegex(dockerfile, r'CMD \["/usr/bin/python3", "-B", "runtime/sci_server.py"\]')

    def test_check_command_as_the_control_plane_runs_it(self):
        _, _, check = support.template_yaml(self.bundle)
        with tempfile.TemporaryDirectory() as temp:
            bundle = support.render_bundle(os.path.join(temp, "bundle"), support.EXAMPLE_DIR)
            user_files = sorted("function/" + name for name in os.listdir(support.EXAMPLE_DIR)
                                if name.endswith(".py"))
            passed = subprocess.run(check + user_files, cwd=bundle, capture_output=True,
                                    timeout=30)
            self.assertEqual(passed.returncode, 0, passed.stderr)
            with open(os.path.join(bundle, "function", "bad.py"), "w") as f:
                f.write("def handle(data, ctx)\n    return 1\n")
            failed = subprocess.run(check + ["function/bad.py"], cwd=bundle, capture_output=True,
                                    timeout=30)
            self.assertNotEqual(failed.returncode, 0)
            self.assertIn(b"bad.py", failed.stderr)


class BundleReplicaTest(unittest.TestCase):
    """A replica started from a rendered bundle, as the local runtime starts one."""

    @classmethod
    def setUpClass(cls):
        cls.temp = tempfile.TemporaryDirectory()
        cls.bundle = support.render_bundle(os.path.join(cls.temp.name, "bundle"),
                                           support.EXAMPLE_DIR)
        cls.replica = support.BundleReplica(cls.bundle).wait_healthy()

    @classmethod
    def tearDownClass(cls):
        cls.replica.stop()
        cls.temp.cleanup()

    def test_serves_the_example_over_every_cursor(self):
        pixels = numpy.fromfile(support.RASTER, "<f4")
        for line in subprocess.run(
                [support.PYTHON, "-B", os.path.join(support.EXAMPLE_DIR, "cursors.py"), "4"],
                capture_output=True, text=True, check=True, timeout=30).stdout.splitlines():
            body = json.loads(line)
            with self.subTest(part=body["cursor"]["part"]):
                response = self.replica.request("POST", "/invoke", line.encode())
                self.assertEqual(response.status, 200, response.body)
                self.assertEqual(response.headers["Content-Type"], "application/json")
                result = response.json()
                start = int(body["cursor"]["offset"]) // 4
                chunk = pixels[start : start + int(body["cursor"]["length"]) // 4]
                valid = chunk[chunk != -9999].astype(numpy.float64)
                self.assertEqual((result["count"], result["nodata"], result["part"]),
                                 (valid.size, chunk.size - valid.size, int(body["cursor"]["part"])))
                self.assertEqual((result["min"], result["max"]), (valid.min(), valid.max()))
                self.assertAlmostEqual(result["mean"], valid.mean(), places=12)
                self.assertAlmostEqual(result["std"], valid.std(), places=12)

    def test_function_errors_and_protocol_errors(self):
        uri = "file://" + support.RASTER
        misaligned = self.replica.invoke(cursor={"uri": uri, "offset": "0", "length": "6"})
        self.assertEqual(misaligned.status, 200)
        self.assertEqual(misaligned.headers["X-Eofaas-Function-Error"], "handled")
        self.assertEqual(misaligned.json()["error"]["type"], "MisalignedChunk")
        missing = self.replica.invoke(cursor={"uri": "file:///nonexistent/eofaas/b04.f32"})
        self.assertEqual(missing.headers["X-Eofaas-Function-Error"], "unhandled")
        self.assertEqual(missing.json()["error"]["type"], "FileNotFoundError")
        bad = self.replica.invoke(cursor={"uri": uri, "framing": "FRAMING_RASTER"})
        self.assertEqual((bad.status, bad.json()["error"]["field"]), (400, "cursor.framing"))
        self.assertEqual(self.replica.request("GET", "/invoke").status, 405)
        self.assertEqual(self.replica.request("GET", "/nope").status, 404)
        deep = self.replica.request("POST", "/invoke", b'{"args": {"x": ' + b"[" * 5000
                                    + b"]" * 5000 + b"}}")
        self.assertEqual((deep.status, deep.json()["error"]["field"]), (400, "body"))

    def test_a_result_that_is_not_json_is_a_function_error(self):
        # Finite pixels whose sum of squares overflows to Infinity, which JSON cannot carry.
        path = os.path.join(self.temp.name, "huge.f8")
        numpy.array([1e300, 1e300], "<f8").tofile(path)
        response = self.replica.invoke(cursor={"uri": "file://" + path}, args={"dtype": "<f8"})
        self.assertEqual(response.status, 200)
        self.assertEqual(response.headers["X-Eofaas-Function-Error"], "unhandled")
        self.assertEqual(response.json()["error"]["type"], "ValueError")

    def test_sigterm_exits_zero(self):
        with tempfile.TemporaryDirectory() as temp:
            bundle = support.render_bundle(os.path.join(temp, "bundle"), support.EXAMPLE_DIR)
            replica = support.BundleReplica(bundle).wait_healthy()
            self.addCleanup(replica.stop)
            replica.process.send_signal(signal.SIGTERM)
            self.assertEqual(replica.process.wait(10), 0)
            support.wait_until(lambda: "drained" in replica.stderr(), message="the drain log")


if __name__ == "__main__":
    unittest.main()
