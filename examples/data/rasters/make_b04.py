"""Writes b04.f32: a small synthetic Sentinel-2 band 4 (red) tile for the python3-sci examples.

Layout: 64 columns x 32 rows, row-major, raw little-endian float32, no header (8192 bytes; a row
is 256 bytes). Values are surface reflectances between 0.04 and 0.21: a smooth gradient plus
fixed pseudo-random noise. The top-left corner beyond the swath edge (column + row < 12, 78 pixels)
holds the nodata value -9999.

Deterministic on every platform: integers throughout, then per value one IEEE division and one
rounding to float32.

Usage: /usr/bin/python3 examples/data/rasters/make_b04.py [output path]
"""

import os
import struct
import sys

WIDTH, HEIGHT = 64, 32
NODATA = -9999.0


def pixels():
    state = 20240315  # linear congruential generator (Numerical Recipes constants)
    for row in range(HEIGHT):
        for col in range(WIDTH):
            state = (1664525 * state + 1013904223) % 2**32
            if col + row < 12:
                yield NODATA
                continue
            digital_number = 300 + 25 * row + 12 * col + (state >> 24) % 200  # <= 2030
            yield digital_number / 10000.0


def raster_bytes():
    return struct.pack(f"<{WIDTH * HEIGHT}f", *pixels())


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "b04.f32")
    with open(path, "wb") as f:
        f.write(raster_bytes())


if __name__ == "__main__":
    main()
