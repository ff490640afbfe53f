"""Shared helpers of the python3-sci template tests: paths, a bundle rendered the way the control
plane renders one, and a replica started from a bundle. The HTTP file server and the replica
client are the python3 template tests' own."""

import importlib.util
import json
import os
import re
import subprocess
import sys
import threading

from tests.templates.python3 import support as python3_support

FileServer = python3_support.FileServer
wait_until = python3_support.wait_until
REPO_ROOT = python3_support.REPO_ROOT
PYTHON = python3_support.PYTHON
TEMPLATE_DIR = os.path.join(REPO_ROOT, "templates", "python3-sci")
RUNTIME_DIR = os.path.join(TEMPLATE_DIR, "runtime")
PYTHON3_RUNTIME_DIR = python3_support.RUNTIME_DIR
EXAMPLE_DIR = os.path.join(REPO_ROOT, "examples", "python3-sci-raster-stats")
RASTERS_DIR = os.path.join(REPO_ROOT, "examples", "data", "rasters")
RASTER = os.path.join(RASTERS_DIR, "b04.f32")

# Ahead of the python3 runtime that python3_support put first: eofaas_numpy lives here only.
sys.path.insert(0, RUNTIME_DIR)
sys.dont_write_bytecode = True  # keep __pycache__ out of the repository


def load_module(name, path):
    """Imports the file at `path` as module `name` (examples are not packages)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def render_bundle(bundle_dir, function_dir):
    """Writes a bundle as the control plane renders one (control/build/local_builder.cc): every
    regular file of the template directory at its path relative to that directory, links to files
    read through, links to directories not followed, no __pycache__; then the function's files
    under function/."""
    for root, dirs, files in os.walk(TEMPLATE_DIR):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            source = os.path.join(root, name)
            if os.path.isfile(source):
                _copy(source, os.path.join(bundle_dir, os.path.relpath(source, TEMPLATE_DIR)))
    for name in os.listdir(function_dir):
        source = os.path.join(function_dir, name)
        if os.path.isfile(source):
            _copy(source, os.path.join(bundle_dir, "function", name))
    return bundle_dir


def _copy(source, destination):
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    with open(source, "rb") as f:
        content = f.read()
    with open(destination, "wb") as f:
        f.write(content)


def template_yaml(bundle_dir=TEMPLATE_DIR):
    """The top-level keys of template.yaml and its run and check commands (flow lists, i.e.
    JSON), read without a YAML library."""
    with open(os.path.join(bundle_dir, "template.yaml")) as f:
        text = f.read()
    keys = re.findall(r"^(\w+):", text, re.MULTILINE)
    run = json.loads(re.search(r"^run: (.*)$", text, re.MULTILINE).group(1))
    check = json.loads(re.search(r"^  command: (.*)$", text, re.MULTILINE).group(1))
    return keys, run, check


class BundleReplica(python3_support.Replica):
    """A replica started as the control plane starts one: template.yaml's run command, cwd = the
    bundle root, the function in <bundle>/function (no EOFAAS_FUNCTION_DIR)."""

    def __init__(self, bundle_dir, **env):  # not Replica's: that one runs runtime/server.py
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("EOFAAS_")}
        full_env.update(EOFAAS_PORT="0", EOFAAS_FUNCTION="raster-stats", **env)
        self.process = subprocess.Popen(
            template_yaml(bundle_dir)[1], cwd=bundle_dir, env=full_env, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._lines = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._collect, daemon=True)
        self._reader.start()
        self.port = None
