"""Prints the /invoke bodies of the python3-sci-raster-stats example, one JSON object a line:
NONE-framed cursors over examples/data/rasters/b04.f32 in chunks of whole raster rows, so every
offset and length is a multiple of the 4-byte pixel.

Usage: /usr/bin/python3 examples/python3-sci-raster-stats/cursors.py [rows per chunk, default 8]
"""

import json
import os
import sys
import urllib.parse

RASTER = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "data", "rasters",
                                      "b04.f32"))
PIXEL_BYTES = 4  # float32
ROW_BYTES = 64 * PIXEL_BYTES  # see make_b04.py
ARGS = {"dtype": "float32", "nodata": -9999}


def cursors(path=RASTER, chunk_bytes=8 * ROW_BYTES):
    """DataCursors (proto3 JSON: int64 as strings) covering `path` in `chunk_bytes` chunks."""
    if chunk_bytes <= 0 or chunk_bytes % PIXEL_BYTES:
        raise ValueError(f"chunk_bytes must be a positive multiple of {PIXEL_BYTES}")
    size = os.path.getsize(path)
    offsets = range(0, size, chunk_bytes)
    return [{"uri": "file://" + urllib.parse.quote(path), "offset": str(offset),
             "length": str(min(chunk_bytes, size - offset)), "framing": "FRAMING_NONE",
             "part": str(part), "parts": str(len(offsets)), "size": str(size)}
            for part, offset in enumerate(offsets)]


def main():
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    for cursor in cursors(chunk_bytes=rows * ROW_BYTES):
        body = {"id": f"b04-{cursor['part']}", "cursor": cursor, "args": ARGS,
                "deadline_ms": 10000}
        print(json.dumps(body))


if __name__ == "__main__":
    main()
