"""Tests of the python3 template's cursor parsing and chunk reader (file:// and http://)."""

import os
import tempfile
import unittest
import urllib.error
import urllib.parse
from unittest import mock

from . import support  # noqa: F401  (puts the runtime on sys.path)

import eofaas_reader  # noqa: E402
from eofaas_reader import Cursor, CursorError, Data, parse_cursor  # noqa: E402

# Files that stress line framing: empty lines, no final newline, lines longer than most chunks,
# CRLF endings, nothing at all.
LINE_FILES = {
    "simple": b"alpha\nbeta\ngamma\n",
    "no_final_newline": b"one\ntwo\nthree",
    "empty_lines": b"\n\na\n\n\nbb\n\n",
    "long_line": b"s\n" + b"x" * 150 + b"\nshort\n" + b"y" * 90,
    "crlf": b"id,cc\r\nS2A_1,0.1\r\n\r\nS2B_2,0.9\r\n",
    "newline_only": b"\n",
    "empty": b"",
}
NUMBERS = b"0123456789"


def expected_lines(content):
    lines = content.split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # a final "\n" ends the last line rather than starting an empty one
    return lines


def chunk_cursors(uri, size, chunk_size, framing="LINES"):
    """The cursors a planner would make: [0, c), [c, 2c), ...; the last one runs to the end."""
    offsets = range(0, max(size, 1), chunk_size)
    return [
        Cursor(uri, offset, None if offset + chunk_size >= size else chunk_size, framing)
        for offset in offsets
    ]


def read_all(cursor):
    with Data(cursor) as data:
        return data.read()


def iterate(cursor):
    with Data(cursor) as data:
        return list(data)


def assert_lines_exactly_once(test, uri_for, check_iteration=True):
    """Reads each of LINE_FILES in LINES chunks of every size; every line must come out once."""
    for name, content in LINE_FILES.items():
        uri = uri_for(name, content)
        for chunk_size in range(1, len(content) + 2):
            with test.subTest(file=name, chunk_size=chunk_size):
                cursors = chunk_cursors(uri, len(content), chunk_size)
                chunks = [read_all(cursor) for cursor in cursors]
                test.assertEqual(b"".join(chunks), content)
                position = 0
                for cursor, chunk in zip(cursors, chunks):
                    if chunk:
                        # The chunk starts with a line that starts inside its range ...
                        test.assertTrue(cursor.offset <= position, (cursor, position))
                        test.assertTrue(cursor.end is None or position < cursor.end)
                        # ... and holds whole lines only.
                        position += len(chunk)
                        test.assertTrue(chunk.endswith(b"\n") or position == len(content))
                if check_iteration:
                    lines = [line for cursor in cursors for line in iterate(cursor)]
                    test.assertEqual(lines, expected_lines(content))


class ParseCursorTest(unittest.TestCase):
    def test_accepts_proto3_json_forms(self):
        cursor = parse_cursor({"uri": "file:///d/a.txt", "offset": "12", "length": 30,
                               "framing": "FRAMING_LINES", "part": "2", "parts": 4,
                               "size": "1000", "etag": "\"e1\""})
        self.assertEqual((cursor.offset, cursor.length, cursor.framing), (12, 30, "LINES"))
        self.assertEqual((cursor.part, cursor.parts, cursor.size, cursor.etag),
                         (2, 4, 1000, "\"e1\""))

    def test_defaults(self):
        cursor = parse_cursor({"uri": "https://store.example/a"})
        self.assertEqual((cursor.offset, cursor.length, cursor.framing), (0, None, "NONE"))

    def test_framing_spellings(self):
        for framing, expected in [("LINES", "LINES"), (2, "LINES"), ("FRAMING_NONE", "NONE"),
                                  ("NONE", "NONE"), ("FRAMING_UNSPECIFIED", "NONE"), (1, "NONE"),
                                  (None, "NONE")]:
            with self.subTest(framing=framing):
                cursor = parse_cursor({"uri": "file:///a", "framing": framing})
                self.assertEqual(cursor.framing, expected)

    def test_errors_name_the_field(self):
        cases = [
            ({}, "cursor.uri"),
            ({"uri": ""}, "cursor.uri"),
            ({"uri": "s3://bucket/key"}, "cursor.uri"),
            ({"uri": "file://host/a"}, "cursor.uri"),
            ({"uri": "http:///a"}, "cursor.uri"),
            ({"uri": "file:///a", "offset": -1}, "cursor.offset"),
            ({"uri": "file:///a", "offset": "12x"}, "cursor.offset"),
            ({"uri": "file:///a", "offset": True}, "cursor.offset"),
            ({"uri": "file:///a", "length": "-5"}, "cursor.length"),
            ({"uri": "file:///a", "framing": "WORDS"}, "cursor.framing"),
            ({"uri": "file:///a", "etag": 5}, "cursor.etag"),
            ([], "cursor"),
        ]
        for obj, field in cases:
            with self.subTest(obj=obj):
                with self.assertRaises(CursorError) as caught:
                    parse_cursor(obj)
                self.assertEqual(caught.exception.field, field)


class FileReaderTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)

    def write(self, name, content):
        path = os.path.join(self.dir.name, name)
        with open(path, "wb") as f:
            f.write(content)
        return "file://" + urllib.parse.quote(path)

    def test_none_ranges(self):
        uri = self.write("numbers", NUMBERS)
        cases = [((0, 4), b"0123"), ((3, 4), b"3456"), ((6, 4), b"6789"), ((8, 4), b"89"),
                 ((10, 4), b""), ((25, None), b""), ((5, None), b"56789"), ((0, None), NUMBERS),
                 ((4, 0), b"")]
        for (offset, length), expected in cases:
            with self.subTest(offset=offset, length=length):
                self.assertEqual(read_all(Cursor(uri, offset, length, "NONE")), expected)

    def test_partial_reads_and_readinto(self):
        uri = self.write("numbers", NUMBERS)
        with Data(Cursor(uri, 1, 8)) as data:
            self.assertEqual(data.read(3), b"123")
            buffer = bytearray(2)
            self.assertEqual(data.readinto(buffer), 2)
            self.assertEqual(buffer, b"45")
            self.assertEqual(data.tell(), 5)
            self.assertEqual(data.read(), b"678")
            self.assertEqual(data.read(), b"")
            self.assertEqual(data.tell(), 8)

    def test_read_and_iteration_go_on_after_each_other(self):
        uri = self.write("three", b"alpha\nbeta\ngamma")
        with Data(Cursor(uri)) as data:
            self.assertEqual(data.read(3), b"alp")
            self.assertEqual(list(data), [b"ha", b"beta", b"gamma"])
            self.assertEqual(data.tell(), 16)
        with Data(Cursor(uri)) as data:
            self.assertEqual(next(iter(data)), b"alpha")
            # The rest of the block the iteration read is still there.
            self.assertEqual(data.tell(), 6)
            self.assertEqual(data.read(), b"beta\ngamma")
            self.assertEqual(data.tell(), 16)

    def test_lines_reads_and_tell_share_one_position_whatever_the_block_size(self):
        # Steps against a model of the chunk: alternately one line from a new iteration, left at
        # once, and a read of 1 to 3 bytes; tell() after each.
        for block_size in (1, 3, 8, eofaas_reader.BLOCK_SIZE):
            for name, content in LINE_FILES.items():
                uri = self.write(name, content)
                with self.subTest(file=name, block_size=block_size), \
                        mock.patch.object(eofaas_reader, "BLOCK_SIZE", block_size), \
                        Data(Cursor(uri)) as data:
                    position, step = 0, 0
                    while position < len(content):
                        if step % 2 == 0:
                            newline = content.find(b"\n", position)
                            end = len(content) if newline < 0 else newline
                            self.assertEqual(next(iter(data)), content[position:end])
                            position = end if newline < 0 else newline + 1
                        else:
                            size = 1 + step % 3
                            self.assertEqual(data.read(size), content[position : position + size])
                            position = min(len(content), position + size)
                        self.assertEqual(data.tell(), position)
                        step += 1
                    self.assertEqual(list(data), [])

    def test_a_file_name_that_is_not_utf8(self):
        path = os.path.join(os.fsencode(self.dir.name), b"lat\xe9.txt")
        with open(path, "wb") as f:
            f.write(b"b\n")
        uri = "file://" + urllib.parse.quote(path)
        self.assertIn("%E9", uri)
        self.assertEqual(read_all(Cursor(uri)), b"b\n")

    def test_percent_encoded_path(self):
        uri = self.write("scene list #1.txt", b"a\n")
        self.assertIn("%20", uri)
        self.assertEqual(read_all(Cursor(uri, 0, None, "LINES")), b"a\n")

    def test_etag_names_the_version_to_read(self):
        uri = self.write("scene", NUMBERS)
        path = os.path.join(self.dir.name, "scene")
        os.utime(path, ns=(0x18EC9AD368A61562, 0x18EC9AD368A61562))
        etag = "18ec9ad368a61562-a"  # the planner's form: mtime in ns, size, in hexadecimal
        self.assertEqual(read_all(Cursor(uri, 2, 3, "NONE", etag=etag)), b"234")
        self.assertEqual(read_all(Cursor(uri, 2, 3, "LINES", etag=etag)), b"")
        self.write("scene", NUMBERS + b"\n")  # rewritten since the cursor was made
        for framing in ("NONE", "LINES"):
            with self.subTest(framing=framing):
                with self.assertRaises(eofaas_reader.ObjectChangedError) as caught:
                    read_all(Cursor(uri, 2, 3, framing, etag=etag))
                self.assertIn(etag, str(caught.exception))
        self.assertEqual(read_all(Cursor(uri, 2, 3, "NONE")), b"234")  # no etag: not checked

    def test_etag_of_a_file_older_than_1970_is_signed(self):
        uri = self.write("old", NUMBERS)
        path = os.path.join(self.dir.name, "old")
        os.utime(path, ns=(-315619199999999750, -315619199999999750))  # 1960-01-01
        etag = f"-{315619199999999750:x}-a"  # the planner's form
        self.assertEqual(read_all(Cursor(uri, 2, 3, "NONE", etag=etag)), b"234")
        with self.assertRaises(eofaas_reader.ObjectChangedError):
            read_all(Cursor(uri, 2, 3, "NONE", etag=f"{315619199999999750:x}-a"))

    def test_missing_file_raises_on_read(self):
        data = Data(Cursor("file:///nonexistent/eofaas/file.txt"))
        with self.assertRaises(FileNotFoundError):
            data.read()

    def test_no_cursor_is_an_empty_chunk(self):
        with Data(None) as data:
            self.assertEqual(data.read(), b"")
            self.assertEqual(list(data), [])

    def test_iteration_splits_lines(self):
        uri = self.write("crlf", LINE_FILES["crlf"])
        self.assertEqual(iterate(Cursor(uri, 0, None, "NONE")),
                         [b"id,cc\r", b"S2A_1,0.1\r", b"\r", b"S2B_2,0.9\r"])

    def test_lines_exactly_once_for_every_chunk_size(self):
        assert_lines_exactly_once(self, self.write)

    def test_lines_exactly_once_across_small_blocks(self):
        # Tiny read blocks put line ends and the skipped partial line across block boundaries.
        for block_size in (1, 3, 8):
            with self.subTest(block_size=block_size), \
                    mock.patch.object(eofaas_reader, "BLOCK_SIZE", block_size):
                assert_lines_exactly_once(self, self.write)

    def test_a_line_longer_than_many_blocks_stays_whole(self):
        long_line = b"L" * (3 * eofaas_reader.BLOCK_SIZE + 17)
        content = b"head\n" + long_line + b"\ntail\n"
        uri = self.write("huge", content)
        size = len(content)
        chunk_size = eofaas_reader.BLOCK_SIZE // 2
        cursors = chunk_cursors(uri, size, chunk_size)
        chunks = [read_all(cursor) for cursor in cursors]
        self.assertEqual(chunks[0], b"head\n" + long_line + b"\n")
        self.assertEqual(b"".join(chunks), content)
        lines = [line for cursor in cursors for line in iterate(cursor)]
        self.assertEqual(lines, [b"head", long_line, b"tail"])

    def test_lines_chunk_that_starts_at_a_line_start(self):
        uri = self.write("simple", b"ab\ncd\nef\n")
        # Byte offset-1 is "\n": the line starting at offset is ours, nothing is dropped.
        self.assertEqual(read_all(Cursor(uri, 3, 1, "LINES")), b"cd\n")
        # Offset inside "cd": that line belongs to the previous chunk; "ef" starts at 6, outside.
        self.assertEqual(read_all(Cursor(uri, 4, 2, "LINES")), b"")
        self.assertEqual(read_all(Cursor(uri, 4, 3, "LINES")), b"ef\n")
        self.assertEqual(read_all(Cursor(uri, 0, 0, "LINES")), b"")


class HttpReaderTest(unittest.TestCase):
    FILES = {"/" + name: content for name, content in LINE_FILES.items()}
    FILES["/numbers"] = NUMBERS

    @classmethod
    def setUpClass(cls):
        cls.server = support.FileServer(cls.FILES)
        cls.plain_server = support.FileServer(cls.FILES, honour_range=False)

    @classmethod
    def tearDownClass(cls):
        cls.server.close()
        cls.plain_server.close()

    def test_none_ranges(self):
        for server in (self.server, self.plain_server):
            uri = server.url("/numbers")
            for (offset, length), expected in [((0, 4), b"0123"), ((3, 4), b"3456"),
                                               ((8, 4), b"89"), ((10, 4), b""),
                                               ((25, None), b""), ((5, None), b"56789")]:
                with self.subTest(uri=uri, offset=offset, length=length):
                    self.assertEqual(read_all(Cursor(uri, offset, length, "NONE")), expected)

    def test_range_headers(self):
        self.server.ranges.clear()
        read_all(Cursor(self.server.url("/numbers"), 2, 3, "NONE"))
        read_all(Cursor(self.server.url("/numbers"), 2, 3, "LINES"))
        # LINES reads past the chunk's end until its last line ends, so the range is open.
        self.assertEqual(self.server.ranges, ["bytes=2-4", "bytes=1-"])

    def test_lines_exactly_once_for_every_chunk_size(self):
        # Iteration shares the reader with read(); the file tests cover it.
        assert_lines_exactly_once(self, lambda name, _: self.server.url("/" + name),
                                  check_iteration=False)

    def test_lines_exactly_once_when_the_server_ignores_range(self):
        assert_lines_exactly_once(self, lambda name, _: self.plain_server.url("/" + name),
                                  check_iteration=False)

    def test_strong_etag_is_sent_as_if_match(self):
        uri = self.server.url("/numbers")
        etag = support.FileServer.etag(NUMBERS)
        self.assertEqual(read_all(Cursor(uri, 2, 3, "NONE", etag=etag)), b"234")
        with self.assertRaises(eofaas_reader.ObjectChangedError) as caught:
            read_all(Cursor(uri, 2, 3, "NONE", etag='"an-older-version"'))
        self.assertIn('"an-older-version"', str(caught.exception))
        # A weak etag never matches If-Match, and one not quoted is not an HTTP etag: not sent.
        for etag in ('W/"an-older-version"', "18ec9ad368a61562-a"):
            with self.subTest(etag=etag):
                self.assertEqual(read_all(Cursor(uri, 2, 3, "NONE", etag=etag)), b"234")

    def test_a_body_cut_short_is_an_error_not_a_short_chunk(self):
        server = support.FileServer(self.FILES, cut_short=True)
        self.addCleanup(server.close)
        for framing, length in (("NONE", None), ("NONE", 8), ("LINES", None)):
            with self.subTest(framing=framing, length=length):
                with self.assertRaisesRegex(OSError, "closed the connection"):
                    read_all(Cursor(server.url("/numbers"), 1, length, framing))

    def test_http_error_raises_on_read(self):
        data = Data(Cursor(self.server.url("/missing")))
        with self.assertRaises(urllib.error.HTTPError) as caught:
            data.read()
        caught.exception.close()
        self.assertEqual(caught.exception.code, 404)


if __name__ == "__main__":
    unittest.main()
