"""The chunk of the python3-sci template: the python3 template's Data plus `numpy(dtype, count)`.

`data.numpy("<f4")` returns the rest of the chunk as a 1-D numpy array; reshape it as the data
needs (`data.numpy("<f4").reshape(-1, width)` for whole raster rows). The array is writable, its
memory is its own (nothing else refers to it), and it keeps no file or connection open.

Copies. For a NONE-framed chunk (rasters, binary records) the array is allocated once,
uninitialised, at the size of the chunk, and the file or the HTTP response body is read straight
into it (`readinto`): the bytes are copied once, from the kernel into the array, and never again.
Only bytes that an earlier `read()` or line iteration left buffered are copied from that buffer
(at most one read block). A second copy, from read blocks into the array, happens where the size is not known
before reading: LINES framing, and a NONE chunk without a length over a chunked HTTP response or
a non-regular file.
Not memory-mapped on purpose: a mapped file truncated while a handler reads it would kill the
whole replica, every invocation in flight with it, with SIGBUS.

numpy is imported on the first call: a handler that never uses it does not pay for the import at
start-up, and one that does pays it once (when its module imports numpy, before /healthz is 200).
"""

import io
import os
import stat

import eofaas_reader

__all__ = ["Data"]


class Data(eofaas_reader.Data):
    """eofaas_reader.Data plus numpy(); read(), iteration and tell() work as before and continue
    after what numpy() consumed. Not thread-safe.

    It works on the base class's internals (_take_buffer, _buffer, _start, _taken, _blocks, _open,
    _object_blocks, _check_complete): the two always ship together, and
    tests/templates/python3-sci run this class on the shared reader.
    """

    def numpy(self, dtype="float32", count=-1):
        """Returns the rest of the chunk as a 1-D array of `dtype`.

        `dtype` is anything numpy.dtype() accepts; "float32" is in the machine's byte order, "<f4"
        says little-endian explicitly. `count` >= 0 reads at most that many items (fewer at the end
        of the chunk), like read(size). Raises ValueError when the bytes read are not a whole
        number of items (check that the cursor's offset and length are multiples of the item
        size), TypeError for a dtype that cannot be read from bytes (objects, zero-sized items).
        """
        import numpy  # here, not at the top: see the module docstring

        dtype = numpy.dtype(dtype)
        if dtype.hasobject or dtype.itemsize == 0:
            raise TypeError(f"cannot read items of dtype {dtype} from bytes")
        limit = None if count is None or count < 0 else count * dtype.itemsize
        if self.cursor is not None and self.cursor.framing == "NONE":
            raw = self._read_direct(numpy, limit)
        else:
            raw = self._read_blocks(numpy, limit)
        if raw.size % dtype.itemsize:
            raise ValueError(
                f"the chunk's {raw.size} bytes are not a whole number of {dtype} items "
                f"({dtype.itemsize} bytes each): align the cursor's offset and length to them")
        return raw.view(dtype)

    def _read_blocks(self, numpy, limit):
        """Up to `limit` bytes (None: all) through the base reader, framing included."""
        parts = [self._take_buffer()]
        size = len(parts[0])
        while limit is None or size < limit:
            block = self._next_block()
            if not block:
                break
            parts.append(block)
            size += len(block)
        if limit is not None and size > limit:
            last = parts[-1]
            keep = len(last) - (size - limit)
            parts[-1] = memoryview(last)[:keep]
            self._buffer = last[keep:]  # returned by the next read, as read(size) leaves it
            size = limit
        return _join(numpy, parts, size)

    def _read_direct(self, numpy, limit):
        """Up to `limit` bytes (None: all) of a NONE chunk, read into the array's own memory."""
        if limit is not None and len(self._buffer) - self._start >= limit:
            return self._read_blocks(numpy, limit)
        head = self._take_buffer()  # taken from the object by an earlier read, not returned yet
        cursor = self.cursor
        start = cursor.offset + self._taken  # the object position after `head`
        remaining = None if cursor.length is None else cursor.length - self._taken
        want = remaining  # bytes to read from the object now; None: to its end
        if limit is not None:
            want = limit - len(head) if want is None else min(want, limit - len(head))
        if want == 0 and self._blocks is None:
            self._next_block()  # opened all the same: a missing or changed object is an error
        self.close()  # the base reader's stream, if it opened one: replaced by ours
        if want == 0:
            array, filled = _join(numpy, [head], len(head)), 0
        else:
            with eofaas_reader._open(cursor, start, want, self._timeout) as stream:
                size = _known_size(stream, start, want)
                if size is None:
                    blocks = iter(lambda: stream.read(eofaas_reader.BLOCK_SIZE), b"")
                    parts = [head, *blocks]
                    filled = sum(map(len, parts)) - len(head)
                    array = _join(numpy, parts, len(head) + filled)
                else:
                    array = numpy.empty(len(head) + size, numpy.uint8)
                    view = memoryview(array)
                    view[: len(head)] = head
                    filled = _fill(stream, view[len(head) :])
                    array = array[: len(head) + filled]
        self._taken += filled
        # What a later read() or iteration sees: the rest of the chunk, opened only if asked for.
        if limit is None or filled == remaining or filled < want:
            self._blocks = eofaas_reader._no_blocks()
        else:
            rest = None if remaining is None else remaining - filled
            self._blocks = eofaas_reader._object_blocks(cursor, start + filled, rest,
                                                        self._timeout)
        return array


def _known_size(stream, start, want):
    """How many bytes `stream` will yield, capped at `want`; None when it cannot be known."""
    if isinstance(stream, io.FileIO):
        info = os.fstat(stream.fileno())
        size = max(0, info.st_size - start) if stat.S_ISREG(info.st_mode) else None
    else:
        size = getattr(stream, "length", None)  # http.client: body bytes still to come
    if want is None:
        return size
    return want if size is None else min(size, want)


def _fill(stream, view):
    """Reads into `view` until it is full or the stream ends; returns the bytes read. An HTTP
    body cut short raises OSError."""
    filled = 0
    while filled < len(view):
        n = stream.readinto(view[filled:])
        if not n:
            eofaas_reader._check_complete(stream)
            break
        filled += n
    return filled


def _join(numpy, parts, size):
    """Copies byte-like `parts` (`size` bytes in all) into one new uint8 array."""
    array = numpy.empty(size, numpy.uint8)
    view, pos = memoryview(array), 0
    for part in parts:
        view[pos : pos + len(part)] = part
        pos += len(part)
    return array
