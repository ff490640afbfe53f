"""Public API of the python3 template for function authors.

A function is `function/handler.py` defining `def handle(data, ctx)`:
  - `data` is the chunk the cursor points at: `data.read()` returns its bytes, `for line in data`
    streams its lines as bytes without the trailing newline, `data.cursor` describes it;
  - `ctx` carries the invocation: `args`, `id`, `attempt`, `deadline_ms`, `remaining_ms()`,
    `function`, `cursor`.
The return value becomes the response: bytes as is, str as UTF-8, None as an empty body, anything
else as JSON. Raise `FunctionError` for an expected failure ("handled"); any other exception is
reported as "unhandled". Either way the caller sees a function error, which is never retried.
"""

import time

__all__ = ["Context", "FunctionError"]


class FunctionError(Exception):
    """An error the function reports on purpose, e.g. malformed input data.

    Subclass it to give the error a type name: the caller sees the class name and the message.
    """


class Context:
    """What a handler knows about its invocation; built by the runtime once per request."""

    __slots__ = ("id", "args", "attempt", "deadline_ms", "function", "cursor", "_arrived")

    def __init__(self, *, id, args, attempt, deadline_ms, function, cursor, arrived):
        self.id = id
        self.args = args
        self.attempt = attempt
        # Budget left when the caller sent the request; None when it set no deadline.
        self.deadline_ms = deadline_ms
        self.function = function
        self.cursor = cursor
        self._arrived = arrived  # time.monotonic() when the request arrived

    def remaining_ms(self):
        """Milliseconds left before the caller gives up (never below 0); None without a deadline."""
        if self.deadline_ms is None:
            return None
        elapsed_ms = (time.monotonic() - self._arrived) * 1000.0
        return max(0, int(self.deadline_ms - elapsed_ms))

    def __repr__(self):
        return f"Context(id={self.id!r}, function={self.function!r}, attempt={self.attempt})"
