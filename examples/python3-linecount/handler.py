"""Example python3 function: counts the lines of its chunk.

args (optional): {"contains": "T32TQM"} counts only the lines containing that text.
Returns {"lines": n, "bytes": chunk size, "part": cursor part}; summing "lines" and "bytes" over
all chunks of a LINES-framed data set gives its line count and total size.
"""

from eofaas import FunctionError


def handle(data, ctx):
    contains = ctx.args.get("contains")
    if contains is not None and not isinstance(contains, str):
        raise FunctionError("args.contains must be a string")
    needle = contains.encode("utf-8") if contains else None
    lines = 0
    for line in data:  # streamed: a chunk of any size is never held in memory at once
        if needle is None or needle in line:
            lines += 1
    part = data.cursor.part if data.cursor else None
    return {"lines": lines, "bytes": data.tell(), "part": part}
