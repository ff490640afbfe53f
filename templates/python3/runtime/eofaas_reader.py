r"""Cursor parsing and chunk reading for the python3 template.

A cursor (the proto3 JSON form of eofaas.v1.DataCursor) names a byte range of an object in the
data store. `parse_cursor` validates it; `Data` reads it with the cursor's framing:
  NONE   bytes [offset, offset+length), clamped at the end of the object (no length: to the end);
  LINES  every line that *starts* inside [offset, offset+length), each whole with its newline.
         A line starts at byte 0 or right after "\n". Reading from offset-1 and dropping bytes up to
         and including the first "\n" skips the line the previous chunk owns; reading on past the
         range until the last owned line ends completes ours. Over all chunks of an object every
         line comes out exactly once, whatever the chunk size.
Objects are `file:///abs/path` or `http(s)://...` (read with a Range request). A cursor's `etag`,
when set, is the version of the object it was made for: a file's must still be the planner's
"<mtime ns>-<size>" (hexadecimal), and a store is sent a strong (quoted) one as If-Match. An object
that changed since raises ObjectChangedError rather than mix two versions into one Map.
"""

import os
import urllib.parse

__all__ = [
    "BLOCK_SIZE",
    "Cursor",
    "CursorError",
    "Data",
    "ObjectChangedError",
    "parse_cursor",
    "parse_int",
]

# Read granularity: large enough for throughput, small enough that iterating a huge chunk stays
# streaming rather than loading it.
BLOCK_SIZE = 256 * 1024

_SCHEMES = ("file", "http", "https")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

# proto3 JSON spells enums by name; numbers are legal too. UNSPECIFIED reads as raw bytes.
_FRAMINGS = {
    "FRAMING_UNSPECIFIED": "NONE",
    "FRAMING_NONE": "NONE",
    "NONE": "NONE",
    "FRAMING_LINES": "LINES",
    "LINES": "LINES",
    0: "NONE",
    1: "NONE",
    2: "LINES",
}


class CursorError(ValueError):
    """A request field is malformed; `field` names it (e.g. "cursor.offset")."""

    def __init__(self, field, message):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.detail = message


class ObjectChangedError(OSError):
    """The object is no longer the version the cursor's etag names."""


def parse_int(value, field, *, default=None, minimum=_INT64_MIN):
    """Parses a proto3 JSON int64, which arrives as a JSON number or a decimal string."""
    if value is None:
        return default
    if isinstance(value, bool):
        raise CursorError(field, "must be an integer")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and _is_decimal(value):
        number = int(value)
    else:
        raise CursorError(field, f"must be an integer, got {value!r}")
    if not minimum <= number <= _INT64_MAX:
        raise CursorError(field, f"out of range: {number}")
    return number


def _is_decimal(text):
    digits = text[1:] if text.startswith("-") else text
    return digits.isascii() and digits.isdigit()  # int() alone would accept " 1", "1_0", "+1"


class Cursor:
    """A validated data cursor. `framing` is "NONE" or "LINES"; `length` None means to the end."""

    __slots__ = ("uri", "offset", "length", "framing", "part", "parts", "size", "etag")

    def __init__(self, uri, offset=0, length=None, framing="NONE", part=0, parts=0, size=0,
                 etag=""):
        self.uri = uri
        self.offset = offset
        self.length = length
        self.framing = framing
        self.part = part
        self.parts = parts
        self.size = size
        self.etag = etag

    @property
    def end(self):
        """Exclusive end of the owned range, or None when it runs to the end of the object."""
        return None if self.length is None else self.offset + self.length

    def __repr__(self):
        return (
            f"Cursor(uri={self.uri!r}, offset={self.offset}, length={self.length}, "
            f"framing={self.framing!r}, part={self.part}, parts={self.parts})"
        )


def parse_cursor(obj):
    """Builds a Cursor from its decoded JSON object; raises CursorError naming the bad field."""
    if not isinstance(obj, dict):
        raise CursorError("cursor", "must be a JSON object")
    uri = obj.get("uri")
    if not isinstance(uri, str) or not uri:
        raise CursorError("cursor.uri", "is required")
    _check_uri(uri)
    framing = obj.get("framing")
    if framing is None:
        framing = "NONE"
    else:
        key = framing.upper() if isinstance(framing, str) else framing
        if isinstance(key, bool) or key not in _FRAMINGS:
            raise CursorError("cursor.framing", f"unknown framing {framing!r}")
        framing = _FRAMINGS[key]
    etag = obj.get("etag")
    if etag is not None and not isinstance(etag, str):
        raise CursorError("cursor.etag", "must be a string")
    return Cursor(
        uri=uri,
        offset=parse_int(obj.get("offset"), "cursor.offset", default=0, minimum=0),
        length=parse_int(obj.get("length"), "cursor.length", minimum=0),
        framing=framing,
        part=parse_int(obj.get("part"), "cursor.part", default=0),
        parts=parse_int(obj.get("parts"), "cursor.parts", default=0),
        size=parse_int(obj.get("size"), "cursor.size", default=0),
        etag=etag or "",
    )


def _check_uri(uri):
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme not in _SCHEMES:
        raise CursorError("cursor.uri", f"scheme must be one of {', '.join(_SCHEMES)}: {uri!r}")
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise CursorError("cursor.uri", f"file URI must be file:///absolute/path: {uri!r}")
    elif not parts.netloc:
        raise CursorError("cursor.uri", f"missing host: {uri!r}")


class Data:
    r"""The chunk a cursor points at, read lazily, once, front to back like a file.

    Storage errors (missing file, HTTP error) surface from the first read, i.e. inside the
    handler. `read()` returns the rest of the chunk; iteration yields its lines without "\n"
    in constant memory (apart from the longest line). Both take from one buffer held here, so
    read(), iteration and tell() carry on from one another, wherever a handler leaves an
    iteration. A cursor of None is an empty chunk. Not thread-safe; close() releases the
    underlying file or connection.
    """

    def __init__(self, cursor, *, timeout=60.0):
        self.cursor = cursor
        self._timeout = timeout  # seconds per blocking network operation
        self._blocks = None  # generator of bytes blocks, opened on first use
        self._buffer = b""  # bytes taken from _blocks; those from _start on are not returned yet
        self._start = 0  # an index, so that handing out a line copies the line only
        self._taken = 0  # bytes taken from _blocks so far

    def _next_block(self):
        if self._blocks is None:
            self._blocks = _chunk_blocks(self.cursor, self._timeout)
        block = next(self._blocks, b"")
        self._taken += len(block)
        return block

    def _take_buffer(self):
        """Empties the buffer and returns what it held that was not returned yet."""
        rest = self._buffer[self._start :]
        self._buffer, self._start = b"", 0
        return rest

    def tell(self):
        """Bytes of the chunk consumed so far, by read() or as lines (with their "\n"); the
        chunk's size once it has been read or iterated to the end."""
        return self._taken - (len(self._buffer) - self._start)

    def read(self, size=-1):
        """Returns up to `size` bytes (all remaining bytes when size is negative or None)."""
        if size is None or size < 0:
            parts = [self._take_buffer()]
            while block := self._next_block():
                parts.append(block)
            return b"".join(parts)
        start = self._start
        if len(self._buffer) - start >= size:
            self._start += size
            return self._buffer[start : self._start]
        parts = [self._take_buffer()]
        have = len(parts[0])
        while have < size:
            block = self._next_block()
            if not block:
                break
            parts.append(block)
            have += len(block)
        joined = b"".join(parts)
        self._buffer = joined[size:]
        return joined[:size]

    def readinto(self, buffer):
        view = memoryview(buffer).cast("B")
        chunk = self.read(len(view))
        view[: len(chunk)] = chunk
        return len(chunk)

    def lines(self):
        r"""Yields the remaining lines as bytes without their "\n" ("\r" of CRLF is kept). A line
        is consumed when it is yielded: read(), tell() or another iteration go on after it."""
        while True:
            buffer, start = self._buffer, self._start
            newline = buffer.find(b"\n", start)
            if newline < 0:
                if self._buffer_line():
                    continue
                rest = self._take_buffer()  # the chunk ends without a "\n"
                if rest:
                    yield rest
                return
            # One line at first: a handler that takes a line at a time (next(iter(data))), or
            # reads between lines, pays for the lines it takes.
            self._start = newline + 1
            yield buffer[start:newline]
            # Resumed where it left off: the buffer's other whole lines are split at once (split
            # runs in C) and handed out one by one, each consumed as it goes. A read() or another
            # iteration in between moves _start, and the next line is found again from there.
            start = newline + 1
            last = buffer.rfind(b"\n", start)
            if self._start != start or self._buffer is not buffer or last < start:
                continue
            for line in buffer[start:last].split(b"\n"):
                if self._start != start or self._buffer is not buffer:
                    break
                start += len(line) + 1
                self._start = start
                yield line

    def _buffer_line(self):
        r"""Reads blocks into the buffer until it holds a "\n" not returned yet; False when the
        chunk ends first."""
        parts = [self._take_buffer()]
        while block := self._next_block():
            parts.append(block)
            if b"\n" in block:
                break
        self._buffer = b"".join(parts)
        return bool(block)  # the loop ends on an empty block only at the end of the chunk

    __iter__ = lines

    def close(self):
        if self._blocks is not None:
            self._blocks.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"Data({self.cursor!r})"


def _chunk_blocks(cursor, timeout):
    """Yields the chunk's bytes in blocks, framed as the cursor says."""
    if cursor is None:
        return _no_blocks()
    if cursor.framing == "LINES":
        start = cursor.offset - 1 if cursor.offset > 0 else 0
        blocks = _object_blocks(cursor, start, None, timeout)
        return _owned_lines(blocks, cursor.offset, cursor.end)
    return _object_blocks(cursor, cursor.offset, cursor.length, timeout)


def _no_blocks():
    yield from ()


def _owned_lines(blocks, offset, end):
    """Keeps the lines starting in [offset, end) from `blocks`, which begin at max(offset-1, 0)."""
    try:
        pos = offset - 1 if offset > 0 else 0  # object position of the first byte of `block`
        block = b""
        if offset > 0:
            # The line running through byte offset-1 belongs to the previous chunk; if that byte
            # is "\n" it ends there and ours start right at offset.
            for block in blocks:
                newline = block.find(b"\n")
                if newline >= 0:
                    pos += newline + 1
                    block = block[newline + 1 :]
                    break
                pos += len(block)
            else:
                return  # no line starts at or after offset
        if end is not None and pos >= end:
            return  # the first line starting here lies beyond the chunk
        while True:
            if block:
                if end is not None:
                    # The last owned line is the one holding byte end-1: stop at the "\n" ending it.
                    newline = block.find(b"\n", max(0, end - 1 - pos))
                    if newline >= 0:
                        yield block[: newline + 1]
                        return
                yield block
                pos += len(block)
            block = next(blocks, b"")
            if not block:
                return
    finally:
        blocks.close()


def _object_blocks(cursor, start, length, timeout):
    """Yields the cursor's object's bytes from `start`, at most `length` of them (None: to the
    end)."""
    with _open(cursor, start, length, timeout) as stream:
        remaining = length
        while remaining is None or remaining > 0:
            block = stream.read(BLOCK_SIZE if remaining is None else min(BLOCK_SIZE, remaining))
            if not block:
                _check_complete(stream)
                return
            if remaining is not None:
                remaining -= len(block)
            yield block


def _check_complete(stream):
    """Raises OSError when `stream`, at its end, is an HTTP body cut short of its Content-Length:
    http.client then returns a short body without an error."""
    missing = getattr(stream, "length", None)  # http.client: body bytes still to come
    if missing:
        raise OSError(f"the store closed the connection {missing} bytes before the end of the "
                      "body")


def _open(cursor, start, length, timeout):
    """Opens the cursor's object, at its etag's version, positioned at `start`; `length` only
    narrows the HTTP range asked for."""
    parts = urllib.parse.urlsplit(cursor.uri)
    if parts.scheme == "file":
        stream = open(urllib.parse.unquote_to_bytes(parts.path), "rb", buffering=0)
        try:
            if cursor.etag:
                status = os.fstat(stream.fileno())
                etag = f"{status.st_mtime_ns:x}-{status.st_size:x}"
                if etag != cursor.etag:
                    raise ObjectChangedError(
                        f"{cursor.uri} changed since the cursor was made: etag {etag}, "
                        f"the cursor's {cursor.etag}"
                    )
            stream.seek(start)
        except BaseException:
            stream.close()
            raise
        return stream
    return _open_http(cursor, start, length, timeout)


def _open_http(cursor, start, length, timeout):
    import io
    import re
    import urllib.error
    import urllib.request  # imported here: it is costly and file:// chunks never need it

    uri = cursor.uri
    last = f"{start + length - 1}" if length else ""
    headers = {"Range": f"bytes={start}-{last}"}
    if re.fullmatch(r'"[\x21\x23-\x7e]*"', cursor.etag):  # a weak etag never matches If-Match
        headers["If-Match"] = cursor.etag
    request = urllib.request.Request(uri, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416:  # the range starts at or past the end: an empty chunk
            error.close()
            return io.BytesIO()
        if error.code == 412:
            error.close()
            # Without the URI: it may carry a presigned secret.
            raise ObjectChangedError(
                f"the object changed since the cursor was made: the store refused If-Match "
                f"{cursor.etag}"
            ) from None
        raise
    if response.status == 206:
        content_range = response.headers.get("Content-Range", "")
        match = re.fullmatch(r"\s*bytes\s+(\d+)-\d+/(\d+|\*)\s*", content_range)
        if not match or int(match.group(1)) != start:
            response.close()
            raise OSError(f"unexpected Content-Range {content_range!r} for bytes={start}- of {uri}")
    elif start > 0:
        # The server ignored the Range header and sends the whole object: skip to `start`.
        to_skip = start
        while to_skip > 0:
            skipped = len(response.read(min(BLOCK_SIZE, to_skip)))
            if not skipped:
                break
            to_skip -= skipped
    return response
