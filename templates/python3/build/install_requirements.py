"""Installs the requirements.txt of a function into its bundle; the control plane runs it at build
time from the bundle root:

    python3 -I build/install_requirements.py function/requirements.txt function/.deps SCRATCH

Requirements this interpreter already meets are left to the machine (Debian's python3-numpy, say);
pip installs the others, wheels only, into function/.deps, which the runtime puts on sys.path.
Exits 0 once every requirement is met; otherwise the last line names the manifest and what is
missing, and the exit code is 1.

A requirement counts as met when it is a name with optional version clauses (numpy, numpy>=1.20,
numpy==1.24.*) and the installed distribution matches. Anything else (extras, markers, URLs,
pre-releases) is left to pip, as are option lines (--find-links, --index-url), which pip reads
relative to function/, as it would from the manifest.
"""

import importlib.metadata
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys

# A silent index fails the build in seconds, not minutes. Wheels only: no package's setup code
# runs on the control plane's host.
PIP_OPTIONS = ["--timeout", "10", "--retries", "0", "--no-input", "--no-cache-dir",
               "--disable-pip-version-check", "--root-user-action", "ignore",
               "--only-binary", ":all:", "--progress-bar", "off"]
REQUIREMENT = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*(.*)")
CLAUSE = re.compile(r"(~=|==|!=|<=|>=|<|>)\s*(\d+(?:\.\d+)*)(\.\*)?")


def release(version):
    """(1, 24, 2) for "1.24.2"; None for a version this script does not order."""
    return tuple(map(int, version.split("."))) if re.fullmatch(r"\d+(\.\d+)*", version) else None


def clause_holds(installed, clause):
    match = CLAUSE.fullmatch(clause.strip())
    if not match:
        return False
    operator, wanted, wildcard = match[1], release(match[2]), match[3]
    if wildcard:  # ==1.24.* and !=1.24.*
        same = installed[:len(wanted)] == wanted
        return {"==": same, "!=": not same}.get(operator, False)
    width = max(len(installed), len(wanted))
    have, want = (v + (0,) * (width - len(v)) for v in (installed, wanted))
    if operator == "~=":  # ~=1.4.2 means >=1.4.2, ==1.4.*
        return len(wanted) > 1 and have >= want and installed[:len(wanted) - 1] == wanted[:-1]
    return {"==": have == want, "!=": have != want, "<": have < want, "<=": have <= want,
            ">": have > want, ">=": have >= want}[operator]


def met(requirement):
    """Whether this interpreter already has the distribution `requirement` asks for."""
    match = REQUIREMENT.fullmatch(requirement)
    if not match:
        return False
    try:
        installed = release(importlib.metadata.version(match[1]))
    except importlib.metadata.PackageNotFoundError:
        return False
    clauses = match[2].split(",") if match[2] else []
    return installed is not None and all(clause_holds(installed, c) for c in clauses)


def read_lines(manifest):
    """The manifest's lines without comments, continuations joined."""
    with open(manifest, encoding="utf-8") as f:
        text = f.read().replace("\\\n", " ")
    lines = (re.sub(r"(^|\s)#.*", "", line).strip() for line in text.splitlines())
    return [line for line in lines if line]


def pip_install(options, requirements, target, function_dir):
    """None once installed, else why not."""
    if importlib.util.find_spec("pip") is None:
        return "pip is not installed to fetch it"
    command = [sys.executable, "-m", "pip", "install", *PIP_OPTIONS, "--target", target,
               *options, *requirements]
    print("$ " + shlex.join(command), flush=True)
    if subprocess.run(command, cwd=function_dir, stdin=subprocess.DEVNULL).returncode != 0:
        return "pip could not install it (is the package index reachable?)"
    return None


def main(manifest, target, scratch):
    name = os.path.basename(manifest)
    lines = read_lines(manifest)
    options = [arg for line in lines if line.startswith("-") for arg in shlex.split(line)]
    missing = [line for line in lines if not line.startswith("-") and not met(line)]
    if not missing:
        print(f"{name}: every requirement is installed on this machine")
        return 0
    print(f"{name}: installing {', '.join(missing)} into {target}", flush=True)
    staging = os.path.abspath(os.path.join(scratch, "deps"))
    failure = pip_install(options, missing, staging, os.path.dirname(os.path.abspath(manifest)))
    if failure:
        print(f"{name}: cannot install {', '.join(missing)}: not installed on this machine, and "
              f"{failure}")
        return 1
    shutil.rmtree(target, ignore_errors=True)
    os.rename(staging, target)
    print(f"{name}: installed {', '.join(missing)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
