/** Tests of the node20 template's cursor parsing and chunk reader (file:// and http://). */

'use strict';

const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { after, before, describe, test } = require('node:test');

const support = require('./support');

const reader = require(path.join(support.RUNTIME_DIR, 'reader.js'));
const { Cursor, CursorError, Data, HttpError, ObjectChangedError, parseCursor } = reader;

// Files that stress line framing: empty lines, no final newline, lines longer than most chunks,
// CRLF endings, nothing at all.
const LINE_FILES = Object.fromEntries(
  Object.entries({
    simple: 'alpha\nbeta\ngamma\n',
    no_final_newline: 'one\ntwo\nthree',
    empty_lines: '\n\na\n\n\nbb\n\n',
    long_line: `s\n${'x'.repeat(150)}\nshort\n${'y'.repeat(90)}`,
    crlf: 'id,cc\r\nS2A_1,0.1\r\n\r\nS2B_2,0.9\r\n',
    newline_only: '\n',
    empty: '',
  }).map(([name, text]) => [name, Buffer.from(text)]),
);
const NUMBERS = Buffer.from('0123456789');
const NEWLINE = 0x0a;

function expectedLines(content) {
  const lines = content.toString('latin1').split('\n');
  if (lines.at(-1) === '') lines.pop(); // a final "\n" ends the last line, it starts none
  return lines;
}

/** The cursors a planner would make: [0, c), [c, 2c), ...; the last one runs to the end. */
function chunkCursors(uri, size, chunkSize, framing = 'LINES') {
  const cursors = [];
  for (let offset = 0; offset < Math.max(size, 1); offset += chunkSize) {
    const length = offset + chunkSize >= size ? null : chunkSize;
    cursors.push(new Cursor({ uri, offset, length, framing }));
  }
  return cursors;
}

async function readAll(cursor, options) {
  const data = new Data(cursor, options);
  try {
    return await data.read();
  } finally {
    await data.close();
  }
}

async function iterate(cursor, options) {
  const data = new Data(cursor, options);
  try {
    const lines = [];
    for await (const line of data) lines.push(line.toString('latin1'));
    return lines;
  } finally {
    await data.close();
  }
}

/** Reads each of `files` in LINES chunks of every size; every line must come out once. */
async function assertLinesExactlyOnce(
  uriFor,
  { files = LINE_FILES, checkIteration = true, options } = {},
) {
  for (const [name, content] of Object.entries(files)) {
    const uri = uriFor(name, content);
    for (let chunkSize = 1; chunkSize <= content.length + 1; chunkSize++) {
      const where = `file ${name}, chunk size ${chunkSize}`;
      const cursors = chunkCursors(uri, content.length, chunkSize);
      const chunks = [];
      for (const cursor of cursors) chunks.push(await readAll(cursor, options));
      assert.equal(Buffer.concat(chunks).toString('latin1'), content.toString('latin1'), where);
      let position = 0;
      cursors.forEach((cursor, i) => {
        if (chunks[i].length === 0) return;
        // The chunk starts with a line that starts inside its range ...
        assert.ok(cursor.offset <= position, `${where}: chunk ${i} starts too late`);
        assert.ok(cursor.end === null || position < cursor.end, `${where}: chunk ${i}`);
        // ... and holds whole lines only.
        position += chunks[i].length;
        assert.ok(chunks[i].at(-1) === 0x0a || position === content.length, where);
      });
      if (checkIteration) {
        const lines = [];
        for (const cursor of cursors) lines.push(...(await iterate(cursor, options)));
        assert.deepEqual(lines, expectedLines(content), where);
      }
    }
  }
}

function fileUri(filePath) {
  return `file://${filePath.split('/').map(encodeURIComponent).join('/')}`;
}

describe('parseCursor', () => {
  test('accepts the proto3 JSON forms', () => {
    const cursor = parseCursor({
      uri: 'file:///d/a.txt',
      offset: '12',
      length: 30,
      framing: 'FRAMING_LINES',
      part: '2',
      parts: 4,
      size: '1000',
      etag: '"e1"',
    });
    assert.deepEqual(
      [cursor.offset, cursor.length, cursor.framing, cursor.end],
      [12, 30, 'LINES', 42],
    );
    assert.deepEqual([cursor.part, cursor.parts, cursor.size, cursor.etag], [2, 4, 1000, '"e1"']);
  });

  test('defaults', () => {
    const cursor = parseCursor({ uri: 'https://store.example/a' });
    assert.deepEqual(
      [cursor.offset, cursor.length, cursor.framing, cursor.end],
      [0, null, 'NONE', null],
    );
    assert.deepEqual([cursor.part, cursor.parts, cursor.size, cursor.etag], [0, 0, 0, '']);
  });

  test('framing spellings', () => {
    const cases = [
      ['LINES', 'LINES'],
      ['lines', 'LINES'],
      [2, 'LINES'],
      ['FRAMING_NONE', 'NONE'],
      ['NONE', 'NONE'],
      ['FRAMING_UNSPECIFIED', 'NONE'],
      [1, 'NONE'],
      [0, 'NONE'],
      [null, 'NONE'],
    ];
    for (const [framing, expected] of cases) {
      assert.equal(parseCursor({ uri: 'file:///a', framing }).framing, expected, String(framing));
    }
  });

  test('errors name the field', () => {
    const cases = [
      [{}, 'cursor.uri'],
      [{ uri: '' }, 'cursor.uri'],
      [{ uri: 's3://bucket/key' }, 'cursor.uri'],
      [{ uri: 'file://host/a' }, 'cursor.uri'],
      [{ uri: 'file:relative' }, 'cursor.uri'],
      [{ uri: 'http:///a' }, 'cursor.uri'],
      [{ uri: '/no/scheme' }, 'cursor.uri'],
      [{ uri: 'file:///a', offset: -1 }, 'cursor.offset'],
      [{ uri: 'file:///a', offset: '12x' }, 'cursor.offset'],
      [{ uri: 'file:///a', offset: ' 12' }, 'cursor.offset'],
      [{ uri: 'file:///a', offset: 1.5 }, 'cursor.offset'],
      [{ uri: 'file:///a', offset: true }, 'cursor.offset'],
      [{ uri: 'file:///a', offset: '99999999999999999999' }, 'cursor.offset'],
      [{ uri: 'file:///a', length: '-5' }, 'cursor.length'],
      [{ uri: 'file:///a', part: [] }, 'cursor.part'],
      [{ uri: 'file:///a', framing: 'WORDS' }, 'cursor.framing'],
      [{ uri: 'file:///a', framing: true }, 'cursor.framing'],
      [{ uri: 'file:///a', etag: 5 }, 'cursor.etag'],
      [[], 'cursor'],
      ['file:///a', 'cursor'],
    ];
    for (const [obj, field] of cases) {
      assert.throws(
        () => parseCursor(obj),
        (error) => error instanceof CursorError && error.field === field,
        JSON.stringify(obj),
      );
    }
  });
});

describe('file reader', () => {
  let dir;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'eofaas-node20-reader-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const write = (name, content) => {
    const filePath = path.join(dir, name);
    fs.writeFileSync(filePath, content);
    return fileUri(filePath);
  };

  test('NONE ranges', async () => {
    const uri = write('numbers', NUMBERS);
    const cases = [
      [0, 4, '0123'],
      [3, 4, '3456'],
      [6, 4, '6789'],
      [8, 4, '89'],
      [10, 4, ''],
      [25, null, ''],
      [5, null, '56789'],
      [0, null, '0123456789'],
      [4, 0, ''],
    ];
    for (const [offset, length, expected] of cases) {
      const chunk = await readAll(new Cursor({ uri, offset, length }));
      assert.equal(chunk.toString(), expected, `offset ${offset}, length ${length}`);
    }
  });

  test('partial reads and tell', async () => {
    const data = new Data(new Cursor({ uri: write('numbers', NUMBERS), offset: 1, length: 8 }));
    assert.equal((await data.read(3)).toString(), '123');
    assert.equal(data.tell(), 3);
    assert.equal((await data.read(2)).toString(), '45');
    assert.equal(data.tell(), 5);
    assert.equal((await data.read()).toString(), '678');
    assert.equal((await data.read()).length, 0);
    assert.equal((await data.read(4)).length, 0);
    assert.equal(data.tell(), 8);
    await data.close();
  });

  test('read and iteration go on after each other', async () => {
    const uri = write('three', Buffer.from('alpha\nbeta\ngamma'));
    let data = new Data(new Cursor({ uri }));
    assert.equal((await data.read(3)).toString(), 'alp');
    const lines = [];
    for await (const line of data) lines.push(line.toString());
    assert.deepEqual(lines, ['ha', 'beta', 'gamma']);
    assert.equal(data.tell(), 16);
    await data.close();

    data = new Data(new Cursor({ uri }));
    for await (const line of data) {
      assert.equal(line.toString(), 'alpha');
      break;
    }
    // The rest of the block the iteration read is still there.
    assert.equal(data.tell(), 6);
    assert.equal((await data.read()).toString(), 'beta\ngamma');
    assert.equal(data.tell(), 16);
    await data.close();
  });

  test('lines, reads and tell share one position, whatever the block size', async () => {
    // Steps against a model of the chunk: alternately one line from a new iteration, left at
    // once, and a read of 1 to 3 bytes; tell() after each.
    for (const [name, content] of Object.entries(LINE_FILES)) {
      const uri = write(name, content);
      for (const blockSize of [1, 3, 8, reader.BLOCK_SIZE]) {
        const data = new Data(new Cursor({ uri }), { blockSize });
        const where = `${name}, block size ${blockSize}`;
        let position = 0;
        for (let step = 0; position < content.length; step++) {
          let expected;
          let got;
          if (step % 2 === 0) {
            const newline = content.indexOf(NEWLINE, position);
            const end = newline < 0 ? content.length : newline;
            expected = content.subarray(position, end);
            got = (await data.lines().next()).value;
            position = newline < 0 ? end : newline + 1;
          } else {
            const size = 1 + (step % 3);
            expected = content.subarray(position, position + size);
            got = await data.read(size);
            position += expected.length;
          }
          assert.deepEqual(got, expected, `${where}, step ${step}`);
          assert.equal(data.tell(), position, `${where}, step ${step}`);
        }
        assert.deepEqual(await data.lines().next(), { value: undefined, done: true }, where);
        await data.close();
      }
    }
  });

  test('percent-encoded path', async () => {
    const uri = write('scene list #1.txt', Buffer.from('a\n'));
    assert.ok(uri.includes('%20') && uri.includes('%23'), uri);
    assert.equal((await readAll(new Cursor({ uri, framing: 'LINES' }))).toString(), 'a\n');
  });

  test('a file name that is not UTF-8', async () => {
    const name = Buffer.concat([
      Buffer.from(`${dir}/scene-`),
      Buffer.from([0xff]),
      Buffer.from('.txt'),
    ]);
    fs.writeFileSync(name, 'b\n');
    const uri = `file://${encodeURI(`${dir}/scene-`)}%FF.txt`;
    assert.equal((await readAll(new Cursor({ uri }))).toString(), 'b\n');
  });

  test('the etag names the version to read', async () => {
    const uri = write('scene', NUMBERS);
    execFileSync('/usr/bin/touch', ['-d', '@1793021400.123456789', path.join(dir, 'scene')]);
    const etag = '18e21776ad083d15-a'; // the planner's form: mtime in ns, size, in hexadecimal
    const chunk = await readAll(new Cursor({ uri, offset: 2, length: 3, etag }));
    assert.equal(chunk.toString(), '234');
    write('scene', Buffer.concat([NUMBERS, Buffer.from('\n')])); // rewritten since
    for (const framing of ['NONE', 'LINES']) {
      await assert.rejects(
        readAll(new Cursor({ uri, offset: 2, length: 3, framing, etag })),
        (error) => error instanceof ObjectChangedError && error.message.includes(etag),
      );
    }
    const unchecked = await readAll(new Cursor({ uri, offset: 2, length: 3 }));
    assert.equal(unchecked.toString(), '234');
  });

  test('the etag of a file older than 1970 is signed', async () => {
    const uri = write('old', NUMBERS);
    execFileSync('/usr/bin/touch', ['-d', '@-315619199.99999975', path.join(dir, 'old')]);
    const etag = `-${(315619199999999750n).toString(16)}-a`; // the planner's form
    const chunk = await readAll(new Cursor({ uri, offset: 2, length: 3, etag }));
    assert.equal(chunk.toString(), '234');
    await assert.rejects(
      readAll(new Cursor({ uri, offset: 2, length: 3, etag: etag.slice(1) })),
      (error) => error instanceof ObjectChangedError,
    );
  });

  test('a missing file rejects on read, not before', async () => {
    const data = new Data(new Cursor({ uri: 'file:///nonexistent/eofaas/file.txt' }));
    await assert.rejects(data.read(), { code: 'ENOENT' });
    await data.close();
  });

  test('a null cursor is an empty chunk', async () => {
    assert.equal((await readAll(null)).length, 0);
    assert.deepEqual(await iterate(null), []);
  });

  test('iteration splits lines and keeps the CR of CRLF', async () => {
    const uri = write('crlf', LINE_FILES.crlf);
    assert.deepEqual(await iterate(new Cursor({ uri })), [
      'id,cc\r',
      'S2A_1,0.1\r',
      '\r',
      'S2B_2,0.9\r',
    ]);
  });

  test('close releases the file', async () => {
    const uri = write('big', Buffer.alloc(3 * reader.BLOCK_SIZE, 'a\n'));
    const fds = () => fs.readdirSync('/proc/self/fd').length;
    const before = fds();
    const data = new Data(new Cursor({ uri, framing: 'LINES' }));
    for await (const line of data) {
      assert.equal(line.toString(), 'a');
      break;
    }
    assert.equal(fds(), before + 1);
    await data.close();
    assert.equal(fds(), before);
  });

  test('LINES: every line exactly once for every chunk size', async () => {
    await assertLinesExactlyOnce(write);
  });

  test('LINES: exactly once across small read blocks', async () => {
    // Tiny blocks put line ends and the skipped partial line across block boundaries. Every read
    // is a thread-pool round trip, so the long line is shorter here: still many blocks long.
    const files = {
      ...LINE_FILES,
      long_line: Buffer.from(`s\n${'x'.repeat(30)}\nshort\n${'y'.repeat(20)}`),
    };
    for (const blockSize of [1, 3, 8]) {
      await assertLinesExactlyOnce(write, { files, options: { blockSize } });
    }
  });

  test('LINES: a line longer than many blocks stays whole', async () => {
    const longLine = 'L'.repeat(3 * reader.BLOCK_SIZE + 17);
    const content = Buffer.from(`head\n${longLine}\ntail\n`);
    const uri = write('huge', content);
    const cursors = chunkCursors(uri, content.length, reader.BLOCK_SIZE / 2);
    const chunks = [];
    for (const cursor of cursors) chunks.push(await readAll(cursor));
    assert.equal(chunks[0].toString(), `head\n${longLine}\n`);
    assert.ok(Buffer.concat(chunks).equals(content));
    const lines = [];
    for (const cursor of cursors) lines.push(...(await iterate(cursor)));
    assert.deepEqual(lines, ['head', longLine, 'tail']);
  });

  test('LINES: a chunk that starts at a line start', async () => {
    const uri = write('short', Buffer.from('ab\ncd\nef\n'));
    const read = async (offset, length) =>
      (await readAll(new Cursor({ uri, offset, length, framing: 'LINES' }))).toString();
    // Byte offset-1 is "\n": the line starting at offset is ours, nothing is dropped.
    assert.equal(await read(3, 1), 'cd\n');
    // Offset inside "cd": that line belongs to the previous chunk; "ef" starts at 6, outside.
    assert.equal(await read(4, 2), '');
    assert.equal(await read(4, 3), 'ef\n');
    assert.equal(await read(0, 0), '');
  });
});

describe('http reader', () => {
  const files = { '/numbers': NUMBERS };
  for (const [name, content] of Object.entries(LINE_FILES)) files[`/${name}`] = content;
  let server;
  let plainServer;
  before(async () => {
    server = await new support.FileServer(files).start();
    plainServer = await new support.FileServer(files, { honourRange: false }).start();
  });
  after(async () => {
    await server.close();
    await plainServer.close();
  });

  /** Starts a one-off server for a test; closed with the test. */
  async function serve(t, handler) {
    const custom = http.createServer(handler);
    await new Promise((resolve) => custom.listen(0, '127.0.0.1', resolve));
    t.after(() => {
      custom.closeAllConnections();
      return new Promise((resolve) => custom.close(resolve));
    });
    return `http://127.0.0.1:${custom.address().port}`;
  }

  test('NONE ranges, with and without Range support', async () => {
    const cases = [
      [0, 4, '0123'],
      [3, 4, '3456'],
      [8, 4, '89'],
      [10, 4, ''],
      [25, null, ''],
      [5, null, '56789'],
    ];
    for (const fileServer of [server, plainServer]) {
      const uri = fileServer.url('/numbers');
      for (const [offset, length, expected] of cases) {
        const chunk = await readAll(new Cursor({ uri, offset, length }));
        assert.equal(chunk.toString(), expected, `${uri} offset ${offset}, length ${length}`);
      }
    }
  });

  test('Range headers', async () => {
    server.ranges.length = 0;
    const uri = server.url('/numbers');
    await readAll(new Cursor({ uri, offset: 2, length: 3 }));
    await readAll(new Cursor({ uri, offset: 2, length: 3, framing: 'LINES' }));
    // LINES reads past the chunk's end until its last line ends, so the range is open.
    assert.deepEqual(server.ranges, ['bytes=2-4', 'bytes=1-']);
  });

  test('LINES: every line exactly once for every chunk size', async () => {
    // Iteration shares the reader with read(); the file tests cover it.
    await assertLinesExactlyOnce((name) => server.url(`/${name}`), { checkIteration: false });
  });

  test('LINES: exactly once when the server ignores Range', async () => {
    await assertLinesExactlyOnce((name) => plainServer.url(`/${name}`), { checkIteration: false });
  });

  test('a strong etag is sent as If-Match', async (t) => {
    const sent = [];
    const base = await serve(t, (request, response) => {
      sent.push(request.headers['if-match']);
      const stale = request.headers['if-match'] && request.headers['if-match'] !== '"v2"';
      response.writeHead(stale ? 412 : 200).end(stale ? '' : '0123456789');
    });
    const uri = `${base}/scene`;
    const read = (etag) => readAll(new Cursor({ uri, offset: 2, length: 3, etag }));
    assert.equal((await read('"v2"')).toString(), '234');
    await assert.rejects(
      read('"v1"'),
      (error) => error instanceof ObjectChangedError && error.message.includes('"v1"'),
    );
    // A weak etag never matches If-Match, and one not quoted is not an HTTP etag: not sent.
    assert.equal((await read('W/"v1"')).toString(), '234');
    assert.equal((await read('18e21776ad083d15-a')).toString(), '234');
    assert.deepEqual(sent, ['"v2"', '"v1"', undefined, undefined]);
  });

  test('an HTTP error rejects on read with its status', async () => {
    const data = new Data(new Cursor({ uri: server.url('/missing') }));
    await assert.rejects(
      data.read(),
      (error) => error instanceof HttpError && error.status === 404,
    );
    await data.close();
  });

  test('redirects are followed with the same range', async (t) => {
    const base = await serve(t, (req, res) => {
      res.writeHead(302, { Location: server.url('/numbers') }).end();
    });
    server.ranges.length = 0;
    const chunk = await readAll(new Cursor({ uri: `${base}/moved`, offset: 6, length: 2 }));
    assert.equal(chunk.toString(), '67');
    assert.deepEqual(server.ranges, ['bytes=6-7']);
  });

  test('a body cut short is an error, not a short chunk', async (t) => {
    const base = await serve(t, (req, res) => {
      res.writeHead(200, { 'Content-Length': 100 });
      res.write('0123456789', () => res.destroy());
    });
    await assert.rejects(readAll(new Cursor({ uri: `${base}/cut` })));
  });

  test('a server that never answers times out', async (t) => {
    const base = await serve(t, () => {}); // never answers
    const started = Date.now();
    await assert.rejects(
      readAll(new Cursor({ uri: `${base}/slow` }), { timeoutMs: 200 }),
      /200 ms/,
    );
    assert.ok(Date.now() - started < 5000);
  });
});
