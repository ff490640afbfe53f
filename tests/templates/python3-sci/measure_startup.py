"""Measures how long a python3-sci replica takes from spawn to its first 200 on /healthz.

Usage (from the repository root):
  /usr/bin/python3 tests/templates/python3-sci/measure_startup.py [runs]
Renders a bundle of examples/python3-sci-raster-stats, whose handler imports numpy at module level
(so numpy's import is part of the figure), and starts template.yaml's run command in it, as the
local runtime does. Not part of the unittest suite.
"""

import importlib
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
sys.path.insert(0, REPO_ROOT)
sys.dont_write_bytecode = True

support = importlib.import_module("tests.templates.python3-sci.support")
from tests.templates.python3.measure_startup import free_port, healthy  # noqa: E402


def measure_once(bundle, run):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EOFAAS_")}
    env["EOFAAS_PORT"] = str(port)
    started = time.perf_counter()
    process = subprocess.Popen(run, cwd=bundle, env=env, stderr=subprocess.DEVNULL)
    try:
        while not healthy(port):
            if process.poll() is not None:
                raise SystemExit(f"replica exited with {process.returncode}")
            time.sleep(0.0005)
        return (time.perf_counter() - started) * 1000.0
    finally:
        process.terminate()
        process.wait(10)


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    with tempfile.TemporaryDirectory() as temp:
        bundle = support.render_bundle(os.path.join(temp, "bundle"), support.EXAMPLE_DIR)
        run = support.template_yaml(bundle)[1]
        samples = sorted(measure_once(bundle, run) for _ in range(runs))
    print(f"spawn -> first 200 /healthz over {runs} runs: min {samples[0]:.1f} ms, "
          f"median {statistics.median(samples):.1f} ms, max {samples[-1]:.1f} ms")


if __name__ == "__main__":
    main()
