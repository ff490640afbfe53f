"""Tests of data.numpy(): the array matches the chunk's bytes for every offset, length, count and
source, the bytes are read straight into the array's memory, and numpy is imported lazily."""

import os
import subprocess
import tempfile
import unittest
from unittest import mock

import numpy

from . import support

import eofaas_numpy  # noqa: E402  (support puts the runtime on sys.path)
import eofaas_reader  # noqa: E402
from eofaas_reader import Cursor  # noqa: E402

# 1000 float32 values: 4000 bytes, each item distinct so that any shift shows.
CONTENT = numpy.arange(1000, dtype="<f4").tobytes()
TEXT = b"0123\n4567\n89ab\ncdef\n"


def expected(content, offset, length, dtype="<f4"):
    chunk = content[offset:] if length is None else content[offset : offset + length]
    return numpy.frombuffer(chunk, dtype=dtype)


class FileTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.temp = tempfile.TemporaryDirectory()
        cls.path = os.path.join(cls.temp.name, "band.f32")
        with open(cls.path, "wb") as f:
            f.write(CONTENT)
        cls.uri = "file://" + cls.path

    @classmethod
    def tearDownClass(cls):
        cls.temp.cleanup()

    def numpy(self, cursor, *args, **kwargs):
        with eofaas_numpy.Data(cursor) as data:
            return data.numpy(*args, **kwargs)

    def assertArrayEqual(self, actual, wanted):
        self.assertEqual(actual.dtype, wanted.dtype)
        self.assertEqual(actual.shape, wanted.shape)
        self.assertTrue(numpy.array_equal(actual, wanted), f"{actual} != {wanted}")


class NoneFramingTest(FileTest):
    def test_offsets_and_lengths(self):
        for offset in (0, 4, 400, 3996, 4000, 4400):
            for length in (None, 0, 4, 64, 1000, 10000):
                with self.subTest(offset=offset, length=length):
                    cursor = Cursor(self.uri, offset, length, "NONE")
                    self.assertArrayEqual(self.numpy(cursor, "<f4"),
                                          expected(CONTENT, offset, length))

    def test_dtypes(self):
        cursor = Cursor(self.uri, 8, 48, "NONE")
        for dtype in ("<f4", ">i2", "u1", "<c8", numpy.float64, numpy.dtype("<u4")):
            with self.subTest(dtype=dtype):
                self.assertArrayEqual(self.numpy(cursor, dtype), expected(CONTENT, 8, 48, dtype))
        self.assertEqual(self.numpy(cursor).dtype, numpy.float32)  # the default

    def test_count_reads_at_most_that_many_items_and_the_next_read_continues(self):
        with eofaas_numpy.Data(Cursor(self.uri, 40, 400, "NONE")) as data:
            self.assertArrayEqual(data.numpy("<f4", count=10), expected(CONTENT, 40, 40))
            self.assertEqual(data.tell(), 40)
            self.assertArrayEqual(data.numpy("<f4", 0), expected(CONTENT, 80, 0))
            self.assertArrayEqual(data.numpy("<i4", count=5), expected(CONTENT, 80, 20, "<i4"))
            self.assertEqual(data.read(8), CONTENT[100:108])
            self.assertArrayEqual(data.numpy("<f4", count=1000), expected(CONTENT, 108, 332))
            self.assertEqual(data.tell(), 400)
            self.assertEqual(data.read(), b"")
            self.assertEqual(data.numpy().size, 0)

    def test_after_a_partial_read_the_buffered_bytes_come_first(self):
        with mock.patch.object(eofaas_reader, "BLOCK_SIZE", 64):
            with eofaas_numpy.Data(Cursor(self.uri, 0, None, "NONE")) as data:
                self.assertEqual(data.read(16), CONTENT[:16])  # 48 bytes stay buffered
                self.assertArrayEqual(data.numpy("<f4"), expected(CONTENT, 16, None))
                self.assertEqual(data.tell(), len(CONTENT))
            with eofaas_numpy.Data(Cursor(self.uri, 4, 800, "NONE")) as data:
                data.read(100)  # 28 buffered: the next two numpy() calls need no new read
                self.assertArrayEqual(data.numpy("<f4", count=3), expected(CONTENT, 104, 12))
                self.assertArrayEqual(data.numpy("<f4", count=4), expected(CONTENT, 116, 16))
                self.assertArrayEqual(data.numpy("<f4"), expected(CONTENT, 132, 672))
            with eofaas_numpy.Data(Cursor(self.uri, 0, 400, "NONE")) as data:
                self.assertEqual(data.read(), CONTENT[:400])
                self.assertEqual(data.numpy("<f4").size, 0)  # read to the end: nothing left

    def test_numpy_and_lines_go_on_after_each_other(self):
        path = os.path.join(self.temp.name, "text.txt")
        with open(path, "wb") as f:
            f.write(TEXT)
        for framing in ("NONE", "LINES"):
            with self.subTest(framing=framing), \
                    eofaas_numpy.Data(Cursor("file://" + path, 0, None, framing)) as data:
                self.assertEqual(next(iter(data)), b"0123")  # the rest of the block stays
                self.assertArrayEqual(data.numpy("S1", count=2), numpy.frombuffer(b"45", "S1"))
                self.assertEqual(list(data), [b"67", b"89ab", b"cdef"])
                self.assertEqual(data.tell(), len(TEXT))

    def test_the_array_is_writable_and_independent_of_the_file(self):
        array = self.numpy(Cursor(self.uri, 0, 16, "NONE"))
        array[:] = -1.0
        self.assertTrue(array.flags.writeable)
        self.assertArrayEqual(self.numpy(Cursor(self.uri, 0, 16, "NONE")), expected(CONTENT, 0, 16))

    def test_bytes_that_are_not_whole_items_are_refused(self):
        with self.assertRaisesRegex(ValueError, "6 bytes are not a whole number of float32"):
            self.numpy(Cursor(self.uri, 0, 6, "NONE"))
        with self.assertRaisesRegex(ValueError, "2 bytes"):
            self.numpy(Cursor(self.uri, 3998, None, "NONE"))  # the object ends mid-item
        for dtype in ("O", "V0"):
            with self.subTest(dtype=dtype), self.assertRaises(TypeError):
                self.numpy(Cursor(self.uri, 0, 16, "NONE"), dtype)

    def test_no_cursor_is_an_empty_array(self):
        array = self.numpy(None, "<f8")
        self.assertEqual((array.size, array.dtype), (0, numpy.float64))

    def test_storage_errors_surface_from_numpy(self):
        with self.assertRaises(FileNotFoundError):
            self.numpy(Cursor("file:///nonexistent/eofaas/b04.f32", 0, None, "NONE"))

    def test_a_zero_length_chunk_still_checks_its_object(self):
        # Nothing is read, but a missing or changed object is an error, as read() makes it.
        with self.assertRaises(FileNotFoundError):
            self.numpy(Cursor("file:///nonexistent/eofaas/b04.f32", 0, 0, "NONE"))
        with self.assertRaises(eofaas_reader.ObjectChangedError):
            self.numpy(Cursor(self.uri, 0, 0, "NONE", etag='"0:1"'))


class LinesFramingTest(FileTest):
    def test_lines_framing_reads_the_owned_lines(self):
        path = os.path.join(self.temp.name, "lines.txt")
        with open(path, "wb") as f:
            f.write(TEXT)
        for offset, length in ((0, 5), (1, 5), (3, 12), (10, None), (0, None)):
            with self.subTest(offset=offset, length=length):
                cursor = Cursor("file://" + path, offset, length, "LINES")
                with eofaas_reader.Data(cursor) as data:
                    owned = data.read()
                self.assertArrayEqual(self.numpy(cursor, "u1"), numpy.frombuffer(owned, "u1"))
                self.assertArrayEqual(self.numpy(cursor, "S1", count=3),
                                      numpy.frombuffer(owned[:3], "S1"))


class HttpTest(unittest.TestCase):
    def test_ranges_with_and_without_range_support(self):
        for honour_range in (True, False):
            server = support.FileServer({"/band.f32": CONTENT}, honour_range=honour_range)
            self.addCleanup(server.close)
            for offset, length in ((0, None), (400, 40), (3996, 400), (4000, None), (4, 0)):
                with self.subTest(honour_range=honour_range, offset=offset, length=length):
                    cursor = Cursor(server.url("/band.f32"), offset, length, "NONE")
                    with eofaas_numpy.Data(cursor) as data:
                        array = data.numpy("<f4")
                    self.assertTrue(numpy.array_equal(array, expected(CONTENT, offset, length)))

    def test_count_then_the_rest_over_http(self):
        server = support.FileServer({"/band.f32": CONTENT})
        self.addCleanup(server.close)
        with eofaas_numpy.Data(Cursor(server.url("/band.f32"), 40, 80, "NONE")) as data:
            self.assertTrue(numpy.array_equal(data.numpy("<f4", 5), expected(CONTENT, 40, 20)))
            self.assertEqual(data.read(), CONTENT[60:120])
        self.assertEqual(server.ranges, ["bytes=40-59", "bytes=60-119"])


    def test_a_body_cut_short_is_an_error_not_a_short_array(self):
        server = support.FileServer({"/band.f32": CONTENT}, cut_short=True)
        self.addCleanup(server.close)
        for offset, length, count in ((0, None, -1), (400, 400, -1), (400, 400, 50)):
            with self.subTest(offset=offset, length=length, count=count):
                cursor = Cursor(server.url("/band.f32"), offset, length, "NONE")
                with self.assertRaisesRegex(OSError, "closed the connection"), \
                        eofaas_numpy.Data(cursor) as data:
                    data.numpy("<f4", count)


class RecordingStream:
    """Wraps a stream and records every readinto() target and read() call."""

    def __init__(self, stream):
        self.stream, self.targets, self.reads = stream, [], 0

    @property
    def length(self):
        return getattr(self.stream, "length", None)  # http.client's body bytes to come

    def readinto(self, target):
        self.targets.append(target)
        return self.stream.readinto(target)

    def read(self, *args):
        self.reads += 1
        return self.stream.read(*args)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stream.close()


class NoCopyTest(FileTest):
    """NONE chunks: the storage writes into the very memory of the returned array, once."""

    def read_recorded(self, cursor):
        streams = []
        real_open = eofaas_reader._open

        def recording_open(*args):
            streams.append(RecordingStream(real_open(*args)))
            return streams[-1]

        with mock.patch.object(eofaas_reader, "_open", recording_open):
            with eofaas_numpy.Data(cursor) as data:
                return data.numpy("<f4"), streams

    def assertReadOnceInto(self, array, streams):
        self.assertEqual(len(streams), 1)
        stream = streams[0]
        self.assertEqual(stream.reads, 0)  # no intermediate bytes objects
        first = numpy.asarray(stream.targets[0])
        self.assertEqual(first.nbytes, array.nbytes)  # allocated at the chunk's size
        for target in stream.targets:
            self.assertTrue(numpy.shares_memory(array, numpy.asarray(target)))

    def test_file_chunk_is_read_into_the_array(self):
        array, streams = self.read_recorded(Cursor(self.uri, 400, 2000, "NONE"))
        self.assertTrue(numpy.array_equal(array, expected(CONTENT, 400, 2000)))
        self.assertReadOnceInto(array, streams)

    def test_file_chunk_sized_from_the_file_when_it_has_no_length(self):
        # The size comes from fstat on the real file object, so record at _fill instead.
        targets = []
        real_fill = eofaas_numpy._fill

        def recording_fill(stream, view):
            targets.append(view)
            return real_fill(stream, view)

        with mock.patch.object(eofaas_numpy, "_fill", recording_fill):
            with eofaas_numpy.Data(Cursor(self.uri, 1000, None, "NONE")) as data:
                array = data.numpy("<f4")
        self.assertTrue(numpy.array_equal(array, expected(CONTENT, 1000, None)))
        self.assertEqual(len(targets), 1)
        self.assertEqual(len(targets[0]), array.nbytes)
        self.assertTrue(numpy.shares_memory(array, numpy.asarray(targets[0])))

    def test_http_chunk_is_read_into_the_array(self):
        server = support.FileServer({"/band.f32": CONTENT})
        self.addCleanup(server.close)
        for length in (2000, None):
            with self.subTest(length=length):
                cursor = Cursor(server.url("/band.f32"), 400, length, "NONE")
                array, streams = self.read_recorded(cursor)
                self.assertTrue(numpy.array_equal(array, expected(CONTENT, 400, length)))
                self.assertReadOnceInto(array, streams)


class LazyImportTest(unittest.TestCase):
    def test_numpy_is_imported_on_first_use_only(self):
        script = (
            "import sys\n"
            "import sci_server, eofaas_reader\n"
            "data = eofaas_reader.Data(eofaas_reader.Cursor(sys.argv[1]))\n"
            "data.read(4)\n"
            "print('numpy' in sys.modules)\n"
            "data.numpy()\n"
            "print('numpy' in sys.modules)\n"
        )
        output = subprocess.run(
            [support.PYTHON, "-B", "-c", script, "file://" + support.RASTER],
            cwd=support.RUNTIME_DIR, capture_output=True, text=True, timeout=30, check=True).stdout
        self.assertEqual(output.split(), ["False", "True"])


if __name__ == "__main__":
    unittest.main()
