"""Measures how long a python3 replica takes from spawn to its first 200 on /healthz.

Usage (from the repository root): /usr/bin/python3 tests/templates/python3/measure_startup.py [runs]
Uses the example function examples/python3-linecount. Not part of the unittest suite.
"""

import http.client
import os
import socket
import statistics
import subprocess
import sys
import time

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
TEMPLATE_DIR = os.path.join(REPO_ROOT, "templates", "python3")
FUNCTION_DIR = os.path.join(REPO_ROOT, "examples", "python3-linecount")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def healthy(port):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def measure_once():
    port = free_port()
    env = dict(os.environ, EOFAAS_PORT=str(port), EOFAAS_FUNCTION_DIR=FUNCTION_DIR)
    started = time.perf_counter()
    process = subprocess.Popen(["/usr/bin/python3", "-B", "runtime/server.py"], cwd=TEMPLATE_DIR,
                               env=env, stderr=subprocess.DEVNULL)
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
    samples = sorted(measure_once() for _ in range(runs))
    print(f"spawn -> first 200 /healthz over {runs} runs: min {samples[0]:.1f} ms, "
          f"median {statistics.median(samples):.1f} ms, max {samples[-1]:.1f} ms")


if __name__ == "__main__":
    main()
