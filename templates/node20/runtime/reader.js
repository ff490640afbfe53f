/**
 * Cursor parsing and chunk reading for the node20 template.
 *
 * A cursor (the proto3 JSON form of eofaas.v1.DataCursor) names a byte range of an object in the
 * data store. `parseCursor` validates it; `Data` reads it with the cursor's framing:
 *   NONE   bytes [offset, offset+length), clamped at the end of the object (no length: to the end);
 *   LINES  every line that *starts* inside [offset, offset+length), each whole with its newline.
 *          A line starts at byte 0 or right after "\n". Reading from offset-1 and dropping bytes up
 *          to and including the first "\n" skips the line the previous chunk owns; reading on past
 *          the range until the last owned line ends completes ours. Over all chunks of an object
 *          every line comes out exactly once, whatever the chunk size.
 * Objects are `file:///abs/path` (positional reads) or `http(s)://...` (a Range request). A
 * cursor's `etag`, when set, is the version of the object it was made for: a file's must still be
 * the planner's "<mtime ns>-<size>" (hexadecimal), and a store is sent a strong (quoted) one as
 * If-Match. An object that changed since throws ObjectChangedError rather than mix two versions
 * into one Map.
 */

'use strict';

const fs = require('node:fs');

// Read granularity: large enough for throughput, small enough that iterating a huge chunk stays
// streaming rather than loading it.
const BLOCK_SIZE = 256 * 1024;
const EMPTY = Buffer.alloc(0);
const NEWLINE = 0x0a;
const SCHEMES = ['file', 'http', 'https'];
const MAX_REDIRECTS = 10;

// proto3 JSON spells enums by name; numbers are legal too. UNSPECIFIED reads as raw bytes.
const FRAMINGS = new Map([
  ['FRAMING_UNSPECIFIED', 'NONE'],
  ['FRAMING_NONE', 'NONE'],
  ['NONE', 'NONE'],
  ['FRAMING_LINES', 'LINES'],
  ['LINES', 'LINES'],
  [0, 'NONE'],
  [1, 'NONE'],
  [2, 'LINES'],
]);

/** A request field is malformed; `field` names it (e.g. "cursor.offset"). */
class CursorError extends Error {
  constructor(field, detail) {
    super(`${field}: ${detail}`);
    this.name = 'CursorError';
    this.field = field;
    this.detail = detail;
  }
}

/** The data store answered an HTTP error status; `status` is its code. */
class HttpError extends Error {
  constructor(status, statusMessage, url) {
    super(`HTTP Error ${status}: ${statusMessage}`); // no URL: it may carry a presigned secret
    this.name = 'HttpError';
    this.status = status;
    this.url = url;
  }
}

/** The object is no longer the version the cursor's etag names. */
class ObjectChangedError extends Error {
  constructor(message) {
    super(message);
    this.name = 'ObjectChangedError';
  }
}

/**
 * Parses a proto3 JSON int64, which arrives as a JSON number or a decimal string. Values beyond
 * ±(2^53 - 1) are out of range: a JavaScript number cannot hold them exactly.
 */
function parseInt64(
  value,
  field,
  { defaultValue = null, minimum = -Number.MAX_SAFE_INTEGER } = {},
) {
  if (value === undefined || value === null) return defaultValue;
  let number;
  if (typeof value === 'number' && Number.isInteger(value)) {
    number = value;
  } else if (typeof value === 'string' && /^-?[0-9]+$/.test(value)) {
    number = Number(value); // the regex rejects what Number() alone accepts: "", " 1", "1e3", "0x1"
  } else {
    throw new CursorError(field, `must be an integer, got ${JSON.stringify(value)}`);
  }
  if (!Number.isSafeInteger(number) || number < minimum) {
    throw new CursorError(field, `out of range: ${value}`);
  }
  return number;
}

/** A validated data cursor. `framing` is "NONE" or "LINES"; `length` null means to the end. */
class Cursor {
  constructor({
    uri,
    offset = 0,
    length = null,
    framing = 'NONE',
    part = 0,
    parts = 0,
    size = 0,
    etag = '',
  }) {
    this.uri = uri;
    this.offset = offset;
    this.length = length;
    this.framing = framing;
    this.part = part;
    this.parts = parts;
    this.size = size;
    this.etag = etag;
  }

  /** Exclusive end of the owned range, or null when it runs to the end of the object. */
  get end() {
    return this.length === null ? null : this.offset + this.length;
  }
}

/** Builds a Cursor from its decoded JSON object; throws CursorError naming the bad field. */
function parseCursor(obj) {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
    throw new CursorError('cursor', 'must be a JSON object');
  }
  const { uri } = obj;
  if (typeof uri !== 'string' || !uri) throw new CursorError('cursor.uri', 'is required');
  checkUri(uri);
  let framing = 'NONE';
  if (obj.framing !== undefined && obj.framing !== null) {
    const key = typeof obj.framing === 'string' ? obj.framing.toUpperCase() : obj.framing;
    framing = FRAMINGS.get(key);
    if (framing === undefined) {
      throw new CursorError('cursor.framing', `unknown framing ${JSON.stringify(obj.framing)}`);
    }
  }
  const { etag } = obj;
  if (etag !== undefined && etag !== null && typeof etag !== 'string') {
    throw new CursorError('cursor.etag', 'must be a string');
  }
  return new Cursor({
    uri,
    offset: parseInt64(obj.offset, 'cursor.offset', { defaultValue: 0, minimum: 0 }),
    length: parseInt64(obj.length, 'cursor.length', { minimum: 0 }),
    framing,
    part: parseInt64(obj.part, 'cursor.part', { defaultValue: 0 }),
    parts: parseInt64(obj.parts, 'cursor.parts', { defaultValue: 0 }),
    size: parseInt64(obj.size, 'cursor.size', { defaultValue: 0 }),
    etag: etag || '',
  });
}

/**
 * Splits a URI into scheme, authority and path (RFC 3986 generic syntax). Not WHATWG URL: that
 * one reads "http:///a" as host "a", where a cursor must be rejected for its missing host.
 */
function splitUri(uri) {
  const match = /^([A-Za-z][A-Za-z0-9+.-]*):(\/\/([^/?#]*))?([^?#]*)/.exec(uri);
  if (!match) return { scheme: '', authority: '', path: uri };
  return { scheme: match[1].toLowerCase(), authority: match[3] ?? '', path: match[4] };
}

function checkUri(uri) {
  const { scheme, authority, path } = splitUri(uri);
  if (!SCHEMES.includes(scheme)) {
    throw new CursorError(
      'cursor.uri',
      `scheme must be one of ${SCHEMES.join(', ')}: ${JSON.stringify(uri)}`,
    );
  }
  if (scheme === 'file') {
    if ((authority !== '' && authority !== 'localhost') || !path.startsWith('/')) {
      throw new CursorError(
        'cursor.uri',
        `file URI must be file:///absolute/path: ${JSON.stringify(uri)}`,
      );
    }
  } else if (!authority) {
    throw new CursorError('cursor.uri', `missing host: ${JSON.stringify(uri)}`);
  }
}

const isHex = (byte) =>
  (byte >= 0x30 && byte <= 0x39) ||
  (byte >= 0x41 && byte <= 0x46) ||
  (byte >= 0x61 && byte <= 0x66);

/** Decodes %XX escapes into the raw bytes of a file name (which need not be UTF-8). */
function percentDecode(text) {
  if (!text.includes('%')) return text;
  const bytes = Buffer.from(text, 'utf8');
  const out = Buffer.alloc(bytes.length);
  let n = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === 0x25 && i + 2 < bytes.length && isHex(bytes[i + 1]) && isHex(bytes[i + 2])) {
      out[n++] = parseInt(bytes.toString('latin1', i + 1, i + 3), 16);
      i += 2;
    } else {
      out[n++] = bytes[i];
    }
  }
  return out.subarray(0, n);
}

/**
 * The chunk a cursor points at, read lazily, once, front to back like a file.
 *
 * Storage errors (missing file, HTTP error) surface from the first read, i.e. inside the handler.
 * `read()` resolves to the rest of the chunk; async iteration yields its lines without "\n" in
 * constant memory (apart from the longest line). Both take from one buffer held here, so read(),
 * iteration and tell() carry on from one another, wherever a handler leaves an iteration. A null
 * cursor is an empty chunk. One operation at a time: await each read before the next. close()
 * releases the file or connection.
 */
class Data {
  #options;
  #blocks = null; // async generator of Buffer blocks, opened on first use
  #buffer = EMPTY; // bytes taken from #blocks; those from #start on are not returned yet
  #start = 0; // an index, so that handing out a line makes no copy
  #taken = 0; // bytes taken from #blocks so far

  /** `timeoutMs` bounds each network operation; `blockSize` is the read granularity. */
  constructor(cursor, { timeoutMs = 60000, blockSize = BLOCK_SIZE } = {}) {
    this.cursor = cursor;
    this.#options = { timeoutMs, blockSize };
  }

  async #nextBlock() {
    if (this.#blocks === null) this.#blocks = chunkBlocks(this.cursor, this.#options);
    const { value, done } = await this.#blocks.next();
    if (done) return EMPTY;
    this.#taken += value.length;
    return value;
  }

  /** Empties the buffer and returns what it held that was not returned yet. */
  #takeBuffer() {
    const rest = this.#buffer.subarray(this.#start);
    this.#buffer = EMPTY;
    this.#start = 0;
    return rest;
  }

  /**
   * Bytes of the chunk consumed so far, by read() or as lines (with their "\n"); the chunk's
   * size once it has been read or iterated to the end.
   */
  tell() {
    return this.#taken - (this.#buffer.length - this.#start);
  }

  /** Resolves to up to `size` bytes (all remaining bytes when size is omitted or negative). */
  async read(size = -1) {
    if (size === null || size < 0) {
      const parts = [this.#takeBuffer()];
      for (let block; (block = await this.#nextBlock()).length > 0;) parts.push(block);
      return parts.length === 1 ? parts[0] : Buffer.concat(parts);
    }
    const parts = [this.#takeBuffer()];
    let have = parts[0].length;
    while (have < size) {
      const block = await this.#nextBlock();
      if (block.length === 0) break;
      parts.push(block);
      have += block.length;
    }
    this.#buffer = parts.length === 1 ? parts[0] : Buffer.concat(parts);
    this.#start = Math.min(size, have);
    return this.#buffer.subarray(0, this.#start);
  }

  /**
   * An async iterator over the remaining lines as Buffers without their "\n" ("\r" of CRLF is
   * kept). A line is consumed when it is handed out: read(), tell() or another iteration go on
   * after it. Not an async generator: that costs a few promise hops per line, several times the
   * cost of finding it.
   */
  lines() {
    const next = () => {
      const buffer = this.#buffer;
      const start = this.#start;
      const newline = buffer.indexOf(NEWLINE, start);
      if (newline >= 0) {
        this.#start = newline + 1;
        return Promise.resolve({ value: buffer.subarray(start, newline), done: false });
      }
      return this.#bufferLine().then((found) => {
        if (found) return next();
        const last = this.#takeBuffer(); // the chunk ends without a "\n"
        return last.length > 0 ? { value: last, done: false } : { value: undefined, done: true };
      });
    };
    return {
      [Symbol.asyncIterator]() {
        return this;
      },
      next,
    };
  }

  /**
   * Reads blocks into the buffer until it holds a "\n" not returned yet; resolves to false when
   * the chunk ends first.
   */
  async #bufferLine() {
    const parts = [this.#takeBuffer()];
    let found = false;
    while (!found) {
      const block = await this.#nextBlock();
      if (block.length === 0) break;
      parts.push(block);
      found = block.includes(NEWLINE);
    }
    this.#buffer = parts.length === 1 ? parts[0] : Buffer.concat(parts);
    return found;
  }

  [Symbol.asyncIterator]() {
    return this.lines();
  }

  async close() {
    if (this.#blocks !== null) await this.#blocks.return();
  }
}

/** The chunk's bytes in blocks, framed as the cursor says. */
function chunkBlocks(cursor, options) {
  if (cursor === null) return noBlocks();
  if (cursor.framing === 'LINES') {
    const start = cursor.offset > 0 ? cursor.offset - 1 : 0;
    const blocks = objectBlocks(cursor, start, null, options);
    return ownedLines(blocks, cursor.offset, cursor.end);
  }
  return objectBlocks(cursor, cursor.offset, cursor.length, options);
}

async function* noBlocks() {}

/** Keeps the lines starting in [offset, end) from `blocks`, which begin at max(offset-1, 0). */
async function* ownedLines(blocks, offset, end) {
  try {
    let pos = offset > 0 ? offset - 1 : 0; // object position of the first byte of `block`
    let block = EMPTY;
    if (offset > 0) {
      // The line running through byte offset-1 belongs to the previous chunk; if that byte is
      // "\n" it ends there and ours start right at offset.
      for (;;) {
        const next = await blocks.next();
        if (next.done) return; // no line starts at or after offset
        const newline = next.value.indexOf(NEWLINE);
        if (newline >= 0) {
          pos += newline + 1;
          block = next.value.subarray(newline + 1);
          break;
        }
        pos += next.value.length;
      }
    }
    if (end !== null && pos >= end) return; // the first line starting here lies beyond the chunk
    for (;;) {
      if (block.length > 0) {
        if (end !== null) {
          // The last owned line is the one holding byte end-1: stop at the "\n" ending it.
          const newline = block.indexOf(NEWLINE, Math.max(0, end - 1 - pos));
          if (newline >= 0) {
            yield block.subarray(0, newline + 1);
            return;
          }
        }
        yield block;
        pos += block.length;
      }
      const next = await blocks.next();
      if (next.done) return;
      block = next.value;
    }
  } finally {
    await blocks.return();
  }
}

/**
 * The cursor's object's bytes, at its etag's version, from `start`, at most `length` of them (null:
 * to the end).
 */
function objectBlocks(cursor, start, length, options) {
  const { scheme, path } = splitUri(cursor.uri);
  if (scheme === 'file') {
    return fileBlocks(percentDecode(path), cursor.etag, start, length, options.blockSize);
  }
  return httpBlocks(cursor.uri, cursor.etag, start, length, options.timeoutMs);
}

async function* fileBlocks(path, etag, start, length, blockSize) {
  const file = await fs.promises.open(path, 'r');
  try {
    if (etag) {
      const status = await file.stat({ bigint: true });
      const current = `${status.mtimeNs.toString(16)}-${status.size.toString(16)}`;
      if (current !== etag) {
        throw new ObjectChangedError(
          `${path} changed since the cursor was made: etag ${current}, the cursor's ${etag}`,
        );
      }
    }
    let position = start;
    let remaining = length;
    while (remaining === null || remaining > 0) {
      const want = remaining === null ? blockSize : Math.min(blockSize, remaining);
      const block = Buffer.allocUnsafe(want);
      const { bytesRead } = await file.read(block, 0, want, position);
      if (bytesRead === 0) return;
      position += bytesRead;
      if (remaining !== null) remaining -= bytesRead;
      yield bytesRead === want ? block : block.subarray(0, bytesRead);
    }
  } finally {
    await file.close();
  }
}

async function* httpBlocks(uri, etag, start, length, timeoutMs) {
  const last = length ? `${start + length - 1}` : '';
  const headers = { Range: `bytes=${start}-${last}` };
  if (/^"[\x21\x23-\x7e]*"$/.test(etag)) headers['If-Match'] = etag; // a weak one never matches
  let response;
  try {
    response = await get(new URL(uri), headers, timeoutMs);
  } catch (error) {
    if (!(error instanceof HttpError && error.status === 412)) throw error;
    throw new ObjectChangedError(
      `the object changed since the cursor was made: the store refused If-Match ${etag}`,
    );
  }
  try {
    let toSkip = 0;
    if (response.statusCode === 416) return; // the range starts at or past the end: empty
    if (response.statusCode === 206) {
      const contentRange = response.headers['content-range'] ?? '';
      const match = /^\s*bytes\s+(\d+)-\d+\/(\d+|\*)\s*$/.exec(contentRange);
      if (!match || Number(match[1]) !== start) {
        throw new Error(
          `unexpected Content-Range ${JSON.stringify(contentRange)} for bytes=${start}- of ${uri}`,
        );
      }
    } else {
      toSkip = start; // the server ignored Range and sends the whole object: skip to `start`
    }
    let remaining = length;
    for await (let block of response) {
      if (toSkip > 0) {
        if (block.length <= toSkip) {
          toSkip -= block.length;
          continue;
        }
        block = block.subarray(toSkip);
        toSkip = 0;
      }
      if (remaining !== null) {
        if (block.length >= remaining) {
          if (remaining > 0) yield block.subarray(0, remaining);
          return;
        }
        remaining -= block.length;
      }
      yield block;
    }
  } finally {
    response.destroy();
  }
}

/**
 * GETs `url`, following redirects as a browser would, and resolves to the response of a 2xx or
 * 416 status; rejects with HttpError on any other.
 */
async function get(url, headers, timeoutMs) {
  for (let redirects = 0; ; redirects++) {
    const response = await new Promise((resolve, reject) => {
      const client = url.protocol === 'https:' ? require('node:https') : require('node:http');
      const request = client.get(url, { headers, timeout: timeoutMs }, resolve);
      request.on('timeout', () => {
        request.destroy(new Error(`no data from ${url.host} for ${timeoutMs} ms`));
      });
      request.on('error', reject); // also after the response: it then fails the body's reads
    });
    const status = response.statusCode;
    if ((status >= 200 && status < 300) || status === 416) return response;
    response.destroy();
    const location = response.headers.location;
    if ([301, 302, 303, 307, 308].includes(status) && location && redirects < MAX_REDIRECTS) {
      url = new URL(location, url);
      continue;
    }
    throw new HttpError(status, response.statusMessage, url.href);
  }
}

module.exports = {
  BLOCK_SIZE,
  Cursor,
  CursorError,
  Data,
  HttpError,
  ObjectChangedError,
  parseCursor,
  parseInt64,
};
