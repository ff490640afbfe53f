#!/usr/bin/python3
"""Tests of the conformance suite itself: it fails a template whose reader is wrong.

The broken template is the python3 template with an off-by-one in its LINES framing: the reader
looks for the newline that ends a chunk's last line from byte `end` instead of `end - 1`, so a
chunk whose last byte is a newline also takes the next line, which the next chunk owns too. The
runner checks it beside the real python3 template: the LINES vectors must fail for the broken
copy only, every other vector must pass for both, and the runner must report the failure.

Run as `/usr/bin/python3 tests/conformance/test_suite.py` (or with -m unittest).
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # keep __pycache__ out of the repository

import run  # noqa: E402  (needs HERE on sys.path)

PYTHON3_DIR = os.path.join(run.REPO_ROOT, "templates", "python3")
BROKEN_NAME = "python3-broken-lines"
# The reader's search for the newline ending the chunk's last owned line, and its off-by-one.
CORRECT_SEARCH = "max(0, end - 1 - pos)"
BROKEN_SEARCH = "max(0, end - pos)"
RESULT_LINE = re.compile(r"^(PASS|FAIL)\s+(\S+)\s+(\S+)")


def make_broken_template(directory):
    """Copies the python3 template (links followed) and breaks its LINES framing."""
    target = os.path.join(directory, BROKEN_NAME)
    shutil.copytree(PYTHON3_DIR, target, symlinks=False)
    for path, old, new in (("template.yaml", "name: python3\n", f"name: {BROKEN_NAME}\n"),
                           ("runtime/eofaas_reader.py", CORRECT_SEARCH, BROKEN_SEARCH)):
        full = os.path.join(target, path)
        with open(full, encoding="utf-8") as f:
            text = f.read()
        if text.count(old) != 1:
            raise AssertionError(f"{path}: expected exactly one {old!r} to patch; the python3 "
                                 "template changed, update the patch in this test")
        with open(full, "w", encoding="utf-8") as f:
            f.write(text.replace(old, new))
    return target


def lines_vectors(vectors):
    """Names of the vectors that read LINES-framed chunks."""
    names = set()
    for vector in vectors:
        cursor = (vector.get("request") or {}).get("cursor") or {}
        if vector.get("framing") == "LINES" or cursor.get("framing") in ("FRAMING_LINES", 2):
            names.add(vector["name"])
    return names


class BrokenReaderTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work_dir = tempfile.mkdtemp(prefix="eofaas-conformance-test-")
        broken = make_broken_template(cls.work_dir)
        cls.process = subprocess.run(
            [sys.executable, os.path.join(HERE, "run.py"), "--template", PYTHON3_DIR,
             "--template", broken],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
        cls.results = {}  # (template, vector) -> "PASS" | "FAIL"
        for line in cls.process.stdout.splitlines():
            match = RESULT_LINE.match(line)
            if match:
                cls.results[(match.group(2), match.group(3))] = match.group(1)
        cls.vectors = run.load_vectors()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.work_dir, ignore_errors=True)

    def outcome(self, template):
        return {vector: result for (t, vector), result in self.results.items() if t == template}

    def test_every_vector_ran_for_both_templates(self):
        names = {v["name"] for v in self.vectors}
        for template in ("python3", BROKEN_NAME):
            self.assertEqual(set(self.outcome(template)), names, self.process.stdout)

    def test_the_real_template_passes(self):
        failed = sorted(v for v, r in self.outcome("python3").items() if r == "FAIL")
        self.assertEqual(failed, [], self.process.stdout)

    def test_the_lines_vectors_fail_for_the_broken_reader(self):
        chunked = {v["name"] for v in self.vectors
                   if v["kind"] == "chunks" and v["framing"] == "LINES"}
        self.assertTrue(chunked)
        outcome = self.outcome(BROKEN_NAME)
        still_passing = sorted(v for v in chunked if outcome.get(v) != "FAIL")
        self.assertEqual(still_passing, [], self.process.stdout)

    def test_only_lines_vectors_fail_for_the_broken_reader(self):
        outcome = self.outcome(BROKEN_NAME)
        failed = {v for v, r in outcome.items() if r == "FAIL"}
        self.assertEqual(sorted(failed - lines_vectors(self.vectors)), [], self.process.stdout)

    def test_the_runner_reports_the_failure(self):
        self.assertEqual(self.process.returncode, 1, self.process.stdout)
        summary = self.process.stdout.rstrip().splitlines()[-1]
        match = re.fullmatch(r"(\d+) passed, (\d+) failed", summary)
        self.assertIsNotNone(match, summary)
        failures = sum(1 for r in self.results.values() if r == "FAIL")
        self.assertEqual(int(match.group(2)), failures)
        self.assertGreater(failures, 0)


class ReferenceFramingTest(unittest.TestCase):
    """The runner's own model of LINES framing, which every chunk is checked against."""

    SAMPLES = [b"", b"\n", b"a", b"a\n", b"\n\nab\r\ncd\n\nefg", b"alpha\nbeta\n\n\ngamma\n"]

    def test_chunks_own_every_line_exactly_once(self):
        for data in self.SAMPLES:
            index = run.LineIndex(data)
            for chunk_size in range(1, len(data) + 2):
                for last_chunk in ("exact", "open", "overshoot"):
                    chunks = run.plan_chunks(len(data), chunk_size, last_chunk)
                    union = b"".join(index.owned(offset, length) for offset, length in chunks)
                    self.assertEqual(union, data, (data, chunk_size, last_chunk))

    def test_a_chunk_owns_the_lines_starting_in_it(self):
        index = run.LineIndex(b"ab\ncd\nef\n")
        self.assertEqual(index.owned(0, 1), b"ab\n")
        self.assertEqual(index.owned(1, 2), b"")  # inside "ab\n": no line starts there
        self.assertEqual(index.owned(2, 2), b"cd\n")  # "cd" starts at 3, inside [2, 4)
        self.assertEqual(index.owned(3, 1), b"cd\n")
        self.assertEqual(index.owned(3, 4), b"cd\nef\n")
        self.assertEqual(index.owned(6, None), b"ef\n")
        self.assertEqual(index.owned(9, 5), b"")

    def test_lines_output_ends_every_line(self):
        self.assertEqual(run.as_lines_output(b"a\r\nb"), b"a\r\nb\n")
        self.assertEqual(run.as_lines_output(b"a\n"), b"a\n")
        self.assertEqual(run.as_lines_output(b""), b"")


if __name__ == "__main__":
    unittest.main()
