"""Fixture handler of the conformance suite (python3 and python3-sci).

Each test vector names a behaviour in args["behaviour"] (default "echo-envelope"); the node and
php fixtures implement the same behaviours and must answer byte for byte the same.
"""

import base64
import os
import time

import eofaas

# Lets a vector observe /healthz while the handler is still loading.
time.sleep(int(os.environ.get("CONFORMANCE_LOAD_DELAY_MS", "0")) / 1000)


class BadScene(eofaas.FunctionError):
    """A handled function error with a type name of its own."""


class CloudCoverMissing(Exception):
    """An unhandled function error with a type name of its own."""


def cursor_fields(cursor):
    if cursor is None:
        return None
    return {"uri": cursor.uri, "offset": cursor.offset, "length": cursor.length,
            "framing": cursor.framing, "part": cursor.part, "parts": cursor.parts,
            "size": cursor.size, "etag": cursor.etag}


def echo_envelope(data, ctx):
    return {"id": ctx.id, "args": ctx.args, "arg_keys": sorted(ctx.args),
            "attempt": ctx.attempt, "deadline_ms": ctx.deadline_ms,
            "remaining_ms": ctx.remaining_ms(), "function": ctx.function,
            "cursor": cursor_fields(ctx.cursor)}


def read_pieces(data, ctx):
    size = int(ctx.args["size"])
    pieces = []
    while piece := data.read(size):
        if len(piece) > size:
            raise ValueError(f"read({size}) returned {len(piece)} bytes")
        pieces.append(piece)
    return b"".join(pieces)


def lines(data, ctx):
    return b"".join(line + b"\n" for line in data)


def steps(data, ctx):
    """Runs args["steps"] on one chunk of UTF-8 text: ["read", size] (size absent: the rest),
    ["line"] (one line from a new iteration, then left; null when none is left), ["tell"]."""
    out = []
    for step in ctx.args["steps"]:
        if step[0] == "read":
            out.append(data.read(*step[1:]).decode())
        elif step[0] == "line":
            out.append(next((line.decode() for line in data), None))
        else:
            out.append(data.tell())
    return out


def binary_result(data, ctx):
    return bytes(range(256)) * int(ctx.args.get("repeat", 1))


def remaining_time(data, ctx):
    before = ctx.remaining_ms()
    time.sleep(int(ctx.args.get("sleep_ms", 0)) / 1000)
    return {"deadline_ms": ctx.deadline_ms, "before": before, "after": ctx.remaining_ms()}


def block(data, ctx):
    """Signals that it runs, then waits until the runner lets it finish."""
    directory = ctx.args["dir"]
    open(os.path.join(directory, "entered-" + ctx.id), "w").close()
    give_up = time.monotonic() + int(ctx.args.get("timeout_ms", 10000)) / 1000
    while not os.path.exists(os.path.join(directory, "release")):
        if time.monotonic() > give_up:
            raise TimeoutError("never released")
        time.sleep(0.002)
    return "released"


def raise_handled(data, ctx):
    raise BadScene(ctx.args["message"])


def raise_unhandled(data, ctx):
    raise CloudCoverMissing(ctx.args["message"])


def raise_builtin(data, ctx):
    raise RuntimeError(ctx.args["message"])


def sleep(data, ctx):
    time.sleep(int(ctx.args["ms"]) / 1000)
    return "slept"


BEHAVIOURS = {
    "echo-envelope": echo_envelope,
    "echo-args": lambda data, ctx: ctx.args,
    "read-all": lambda data, ctx: data.read(),
    "read-pieces": read_pieces,
    "lines": lines,
    "steps": steps,
    "binary-result": binary_result,
    "binary-echo": lambda data, ctx: base64.b64decode(ctx.args["base64"]),
    "text-result": lambda data, ctx: ctx.args["text"],
    "json-result": lambda data, ctx: {"value": ctx.args["value"]},
    "none-result": lambda data, ctx: None,
    "remaining-time": remaining_time,
    "block": block,
    "raise-handled": raise_handled,
    "raise-unhandled": raise_unhandled,
    "raise-builtin": raise_builtin,
    "sleep": sleep,
}


def handle(data, ctx):
    return BEHAVIOURS[ctx.args.get("behaviour", "echo-envelope")](data, ctx)
