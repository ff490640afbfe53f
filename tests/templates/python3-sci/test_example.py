"""Tests of the python3-sci-raster-stats example: its raster, its cursors and its statistics,
checked against numpy computing them directly from the file."""

import math
import os
import subprocess
import tempfile
import time
import unittest

import numpy

from . import support

import eofaas  # noqa: E402  (support puts the runtime on sys.path)
import eofaas_numpy  # noqa: E402
from eofaas_reader import Cursor, parse_cursor  # noqa: E402

handler = support.load_module("raster_stats_handler",
                              os.path.join(support.EXAMPLE_DIR, "handler.py"))
cursors = support.load_module("raster_stats_cursors",
                              os.path.join(support.EXAMPLE_DIR, "cursors.py"))

NODATA = -9999
ROW_BYTES = 64 * 4


def invoke(cursor, **args):
    ctx = eofaas.Context(id="t", args=args, attempt=0, deadline_ms=None, function="raster-stats",
                         cursor=cursor, arrived=time.monotonic())
    with eofaas_numpy.Data(cursor) as data:
        return handler.handle(data, ctx)


def reference(pixels, nodata):
    """The statistics computed directly, with none of the handler's code."""
    pixels = pixels.astype(numpy.float64)
    invalid = numpy.isnan(pixels) | numpy.isinf(pixels)
    if nodata is not None:
        invalid |= pixels == nodata
    valid = pixels[~invalid]
    return {"count": valid.size, "nodata": int(invalid.sum()), "min": valid.min(),
            "max": valid.max(), "mean": numpy.mean(valid), "std": numpy.std(valid)}


class RasterTest(unittest.TestCase):
    def test_the_raster_is_what_make_b04_writes(self):
        with tempfile.TemporaryDirectory() as temp:
            path = os.path.join(temp, "b04.f32")
            subprocess.run([support.PYTHON, "-B", os.path.join(support.RASTERS_DIR, "make_b04.py"),
                            path], check=True, timeout=30)
            with open(path, "rb") as made, open(support.RASTER, "rb") as shipped:
                self.assertEqual(made.read(), shipped.read())
        pixels = numpy.fromfile(support.RASTER, "<f4")
        self.assertEqual(pixels.size, 64 * 32)
        self.assertEqual(int((pixels == NODATA).sum()), 78)

    def test_cursors_cover_the_raster_once_in_whole_pixels(self):
        size = os.path.getsize(support.RASTER)
        for chunk_bytes in (ROW_BYTES, 8 * ROW_BYTES, 100, 4, size, 2 * size):
            with self.subTest(chunk_bytes=chunk_bytes):
                parsed = [parse_cursor(c) for c in cursors.cursors(chunk_bytes=chunk_bytes)]
                self.assertEqual([c.framing for c in parsed], ["NONE"] * len(parsed))
                self.assertEqual([c.part for c in parsed], list(range(len(parsed))))
                position = 0
                for cursor in parsed:
                    self.assertEqual(cursor.offset, position)
                    self.assertEqual((cursor.offset % 4, cursor.length % 4), (0, 0))
                    self.assertEqual((cursor.parts, cursor.size), (len(parsed), size))
                    position += cursor.length
                self.assertEqual(position, size)
        with self.assertRaises(ValueError):
            cursors.cursors(chunk_bytes=6)


class StatisticsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pixels = numpy.fromfile(support.RASTER, "<f4")

    def assertStatistics(self, result, pixels, nodata):
        wanted = reference(pixels, nodata)
        self.assertEqual((result["count"], result["nodata"]), (wanted["count"], wanted["nodata"]))
        self.assertEqual((result["min"], result["max"]), (wanted["min"], wanted["max"]))
        for key in ("mean", "std"):
            self.assertTrue(math.isclose(result[key], wanted[key], rel_tol=1e-12, abs_tol=1e-15),
                            f"{key}: {result[key]} != {wanted[key]}")

    def test_every_chunk_of_every_size_matches_numpy(self):
        for chunk_bytes in (ROW_BYTES, 8 * ROW_BYTES, 100, os.path.getsize(support.RASTER)):
            for body in cursors.cursors(chunk_bytes=chunk_bytes):
                cursor = parse_cursor(body)
                with self.subTest(chunk_bytes=chunk_bytes, part=cursor.part):
                    result = invoke(cursor, **cursors.ARGS)
                    start = cursor.offset // 4
                    chunk = self.pixels[start : start + cursor.length // 4]
                    self.assertEqual(result["part"], cursor.part)
                    if (chunk == NODATA).all():
                        self.assertEqual((result["count"], result["mean"]), (0, None))
                    else:
                        self.assertStatistics(result, chunk, NODATA)

    def test_chunks_merge_into_the_whole_raster(self):
        results = [invoke(parse_cursor(c), **cursors.ARGS) for c in cursors.cursors()]
        count = sum(r["count"] for r in results)
        mean = sum(r["sum"] for r in results) / count
        std = math.sqrt(sum(r["sum_sq"] for r in results) / count - mean**2)
        wanted = reference(self.pixels, NODATA)
        self.assertEqual(count, wanted["count"])
        self.assertTrue(math.isclose(mean, wanted["mean"], rel_tol=1e-12))
        self.assertTrue(math.isclose(std, wanted["std"], rel_tol=1e-9))

    def test_without_nodata_only_non_finite_pixels_are_excluded(self):
        with tempfile.TemporaryDirectory() as temp:
            path = os.path.join(temp, "gaps.f32")
            pixels = numpy.array([1.5, numpy.nan, -2.0, numpy.inf, NODATA, 4.0], "<f4")
            pixels.tofile(path)
            cursor = Cursor("file://" + path, 0, None, "NONE")
            self.assertStatistics(invoke(cursor), pixels, None)
            self.assertStatistics(invoke(cursor, nodata=NODATA), pixels, NODATA)
            self.assertEqual(invoke(cursor)["min"], NODATA)

    def test_other_pixel_types(self):
        with tempfile.TemporaryDirectory() as temp:
            path = os.path.join(temp, "dn.u2")
            pixels = numpy.array([0, 512, 65535, 0, 1000], "<u2")
            pixels.tofile(path)
            result = invoke(Cursor("file://" + path, 0, None, "NONE"), dtype="<u2", nodata=0)
            self.assertStatistics(result, pixels, 0)

    def test_empty_chunk(self):
        result = invoke(Cursor("file://" + support.RASTER, 8192, None, "NONE"))
        self.assertEqual(result, {"count": 0, "nodata": 0, "min": None, "max": None,
                                  "mean": None, "std": None, "sum": 0.0, "sum_sq": 0.0, "part": 0})

    def test_bad_input_is_a_handled_function_error(self):
        uri = "file://" + support.RASTER
        cases = [
            (Cursor(uri, 0, 16, "NONE"), {"dtype": "float31"}, handler.BadArgument),
            (Cursor(uri, 0, 16, "NONE"), {"dtype": "U4"}, handler.BadArgument),
            (Cursor(uri, 0, 16, "NONE"), {"nodata": "none"}, handler.BadArgument),
            (Cursor(uri, 0, 16, "NONE"), {"nodata": True}, handler.BadArgument),
            (Cursor(uri, 2, 16, "NONE"), {}, handler.MisalignedChunk),
            (Cursor(uri, 0, 18, "NONE"), {}, handler.MisalignedChunk),
        ]
        for cursor, args, error in cases:
            with self.subTest(cursor=cursor, args=args):
                with self.assertRaises(error) as raised:
                    invoke(cursor, **args)
                self.assertIsInstance(raised.exception, eofaas.FunctionError)


if __name__ == "__main__":
    unittest.main()
