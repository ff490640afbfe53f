/**
 * Tests of the node20 template's replica server, started as a real process and spoken to over
 * HTTP exactly as the proxy does.
 */

'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { after, before, describe, test } = require('node:test');

const support = require('./support');
const { Replica, waitUntil } = support;

// One handler with behaviours picked by args.mode, so one replica serves most tests.
const HANDLER = `
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const eofaas = require('eofaas');
const helper = require('./helper'); // another file of the function

class BadScene extends eofaas.FunctionError {}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

module.exports = async (data, ctx) => {
  const mode = ctx.args.mode ?? 'read';
  switch (mode) {
    case 'read':
      return data.read();
    case 'lines': {
      const lines = [];
      for await (const line of data) lines.push(line.toString());
      return lines;
    }
    case 'ctx':
      return {
        id: ctx.id, args: ctx.args, attempt: ctx.attempt, deadlineMs: ctx.deadlineMs,
        remainingMs: ctx.remainingMs(), function: ctx.function,
        part: ctx.cursor ? ctx.cursor.part : null, sameCursor: ctx.cursor === data.cursor,
        helper: helper.VALUE,
      };
    case 'sleep':
      await sleep(ctx.args.ms);
      return { remainingMs: ctx.remainingMs() };
    case 'text':
      return 'h\\u00e9llo';
    case 'none':
      return null;
    case 'undefined':
      return undefined;
    case 'bytes':
      return new Uint16Array([0x0201, 0x0403]).subarray(1);
    case 'handled':
      throw new BadScene('row 3 has no date');
    case 'unhandled':
      throw new TypeError('cloud_cover is undefined');
    case 'string':
      throw 'plain string';
    case 'forgotten':
      Promise.reject(new Error('nobody waits for me'));
      return 'ok';
    case 'block':
      // Tell the test we are in, then wait until it lets us go.
      fs.writeFileSync(path.join(ctx.args.dir, 'entered-' + ctx.id), '');
      while (!fs.existsSync(path.join(ctx.args.dir, 'release'))) await sleep(2);
      return 'released';
  }
  throw new Error('unknown mode ' + mode);
};
`;

function makeFunction(dir, handler = HANDLER) {
  fs.writeFileSync(path.join(dir, 'handler.js'), handler);
  fs.writeFileSync(path.join(dir, 'helper.js'), 'module.exports = { VALUE: 42 };\n');
}

function tempDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'eofaas-node20-server-'));
}

/** Starts invocations in the 'block' mode and releases them. */
class Blocker {
  constructor(replica, dir) {
    this.replica = replica;
    this.dir = dir;
    this.results = {};
    this.pending = [];
  }

  async start(id) {
    const call = this.replica.invoke({ id, args: { mode: 'block', dir: this.dir } });
    // The replica may go away mid-call: then the result is the error.
    this.pending.push(
      call
        .then((response) => (this.results[id] = response))
        .catch((error) => (this.results[id] = error)),
    );
    await waitUntil(() => fs.existsSync(path.join(this.dir, `entered-${id}`)), {
      message: `invocation ${id} to start`,
    });
  }

  async release() {
    fs.writeFileSync(path.join(this.dir, 'release'), '');
    await Promise.all(this.pending);
  }
}

/** A replica of HANDLER in a fresh directory, stopped and removed after the test. */
function startReplica(t, { handler = HANDLER, env = {} } = {}) {
  const dir = tempDir();
  makeFunction(dir, handler);
  const replica = new Replica(dir, env);
  replica.dir = dir;
  t.after(async () => {
    await replica.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return replica;
}

/** Sends raw bytes on a new connection and resolves to everything the replica answers. */
function rawRequest(port, bytes) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(bytes));
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('data', (text) => (answer += text));
    socket.on('end', () => resolve(answer));
    socket.on('error', reject);
  });
}

describe('invoke', () => {
  const content = Buffer.from(
    'S2A_001,2024-03-01,12.5\nS2B_002,2024-03-02,80.0\nL8_003,2024-03-03,3.1\n',
  );
  let dir;
  let replica;
  let uri;
  before(async () => {
    dir = tempDir();
    makeFunction(dir);
    fs.writeFileSync(path.join(dir, 'scenes.csv'), content);
    uri = `file://${path.join(dir, 'scenes.csv')}`;
    replica = await new Replica(dir).waitHealthy();
  });
  after(async () => {
    await replica.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('healthz', async () => {
    const response = await replica.request('GET', '/healthz');
    assert.deepEqual([response.status, response.text()], [200, 'ok']);
    assert.equal(response.headers['content-type'], 'text/plain; charset=utf-8');
    const head = await replica.request('HEAD', '/healthz');
    assert.deepEqual(
      [head.status, head.body.length, head.headers['content-length']],
      [200, 0, '2'],
    );
  });

  test('returns the chunk bytes', async () => {
    const response = await replica.invoke({ cursor: { uri, offset: '4', length: '10' } });
    assert.equal(response.status, 200);
    assert.ok(response.body.equals(content.subarray(4, 14)));
    assert.equal(response.headers['content-type'], 'application/octet-stream');
    assert.equal(response.headers['x-eofaas-function-error'], undefined);
  });

  test('LINES framing', async () => {
    // [30, 50) starts inside the second line (24..47), which belongs to the previous chunk, and
    // holds the start of the third (48).
    const response = await replica.invoke({
      cursor: { uri, offset: 30, length: 20, framing: 'FRAMING_LINES' },
      args: { mode: 'lines' },
    });
    assert.deepEqual(response.json(), ['L8_003,2024-03-03,3.1']);
  });

  test('reads over http', async (t) => {
    const server = await new support.FileServer({ '/scenes.csv': content }).start();
    t.after(() => server.close());
    const response = await replica.invoke({
      cursor: { uri: server.url('/scenes.csv'), offset: 1, framing: 'LINES' },
      args: { mode: 'lines' },
    });
    assert.deepEqual(response.json(), ['S2B_002,2024-03-02,80.0', 'L8_003,2024-03-03,3.1']);
  });

  test('a deadline beyond a timer\'s range reads over http with a capped timeout', async (t) => {
    const server = await new support.FileServer({ '/scenes.csv': content }).start();
    t.after(() => server.close());
    const response = await replica.invoke({
      cursor: { uri: server.url('/scenes.csv') },
      args: { mode: 'read' },
      deadline_ms: '10000000000000', // about 317 years: past the 2^31 - 1 ms a timer takes
    });
    assert.equal(response.status, 200);
    assert.deepEqual(response.body, content);
    assert.doesNotMatch(replica.stderr(), /TimeoutOverflowWarning/);
  });

  test('context round trip', async () => {
    const args = { mode: 'ctx', threshold: 0.5, bands: ['B04', 'B08'] };
    const response = await replica.invoke({
      id: 'inv-1',
      args,
      attempt: 2,
      deadline_ms: '5000',
      cursor: { uri, part: '3', parts: '8' },
    });
    assert.equal(response.status, 200);
    assert.equal(response.headers['content-type'], 'application/json');
    const ctx = response.json();
    assert.deepEqual(ctx.args, args);
    assert.deepEqual([ctx.id, ctx.attempt, ctx.function], ['inv-1', 2, 'test-fn']);
    assert.deepEqual([ctx.part, ctx.sameCursor, ctx.helper], [3, true, 42]);
    assert.equal(ctx.deadlineMs, 5000);
    assert.ok(ctx.remainingMs > 0 && ctx.remainingMs <= 5000, String(ctx.remainingMs));
  });

  test('remaining time counts down and stops at zero', async () => {
    const counting = await replica.invoke({ args: { mode: 'sleep', ms: 100 }, deadline_ms: 1000 });
    const { remainingMs } = counting.json();
    assert.ok(remainingMs >= 0 && remainingMs <= 900, String(remainingMs));
    const late = await replica.invoke({ args: { mode: 'sleep', ms: 60 }, deadline_ms: 20 });
    assert.equal(late.json().remainingMs, 0);
  });

  test('no deadline and no cursor', async () => {
    const ctx = (await replica.invoke({ args: { mode: 'ctx' } })).json();
    assert.deepEqual([ctx.deadlineMs, ctx.remainingMs, ctx.part], [null, null, null]);
    assert.equal((await replica.invoke()).body.length, 0);
    const zero = (await replica.invoke({ args: { mode: 'ctx' }, deadline_ms: 0 })).json();
    assert.equal(zero.deadlineMs, null); // 0 means no deadline
  });

  test('result conversions', async () => {
    const text = await replica.invoke({ args: { mode: 'text' } });
    assert.equal(text.text(), 'h\u00e9llo');
    assert.equal(text.headers['content-type'], 'text/plain; charset=utf-8');
    for (const mode of ['none', 'undefined']) {
      const empty = await replica.invoke({ args: { mode } });
      assert.deepEqual(
        [empty.status, empty.body.length, empty.headers['content-length']],
        [200, 0, '0'],
      );
      assert.equal(empty.headers['content-type'], undefined);
    }
    const bytes = await replica.invoke({ args: { mode: 'bytes' } });
    assert.equal(bytes.headers['content-type'], 'application/octet-stream');
    assert.deepEqual([...bytes.body], [3, 4]); // the view's bytes, not its whole buffer
  });

  test('handled function error', async () => {
    const response = await replica.invoke({ args: { mode: 'handled' } });
    assert.equal(response.status, 200);
    assert.equal(response.headers['x-eofaas-function-error'], 'handled');
    assert.deepEqual(response.json(), {
      error: { type: 'BadScene', message: 'row 3 has no date' },
    });
  });

  test('unhandled function error', async () => {
    const response = await replica.invoke({ id: 'boom-1', args: { mode: 'unhandled' } });
    assert.equal(response.status, 200);
    assert.equal(response.headers['x-eofaas-function-error'], 'unhandled');
    assert.deepEqual(response.json(), {
      error: { type: 'TypeError', message: 'cloud_cover is undefined' },
    });
    await waitUntil(() => replica.stderr().includes('TypeError: cloud_cover is undefined'), {
      message: 'the stack on stderr',
    });
    assert.ok(replica.stderr().includes('"boom-1"'));
  });

  test('throwing a non-Error is an unhandled function error', async () => {
    const response = await replica.invoke({ args: { mode: 'string' } });
    assert.equal(response.headers['x-eofaas-function-error'], 'unhandled');
    assert.deepEqual(response.json(), { error: { type: 'string', message: 'plain string' } });
  });

  test('a reading error is a function error', async () => {
    const response = await replica.invoke({
      cursor: { uri: 'file:///nonexistent/eofaas/data.csv' },
    });
    assert.equal(response.headers['x-eofaas-function-error'], 'unhandled');
    assert.match(response.json().error.message, /ENOENT/);
  });

  test('a forgotten rejected promise is logged, not fatal', async () => {
    assert.equal((await replica.invoke({ args: { mode: 'forgotten' } })).text(), 'ok');
    await waitUntil(() => replica.stderr().includes('nobody waits for me'), { message: 'the log' });
    assert.equal((await replica.request('GET', '/healthz')).status, 200);
  });

  test('bad requests name the field', async () => {
    const cases = [
      ['{not json', 'body'],
      ['[1, 2]', 'body'],
      ['null', 'body'],
      [Buffer.from([0x7b, 0xff, 0x7d]), 'body'], // not UTF-8
      [JSON.stringify({ cursor: { uri: 's3://bucket/key' } }), 'cursor.uri'],
      [JSON.stringify({ cursor: { offset: 3 } }), 'cursor.uri'],
      [JSON.stringify({ cursor: { uri, offset: '-1' } }), 'cursor.offset'],
      [JSON.stringify({ cursor: { uri, framing: 'X' } }), 'cursor.framing'],
      [JSON.stringify({ cursor: [] }), 'cursor'],
      [JSON.stringify({ args: [1] }), 'args'],
      [JSON.stringify({ id: 7 }), 'id'],
      [JSON.stringify({ deadline_ms: 'soon' }), 'deadline_ms'],
      [JSON.stringify({ attempt: -1 }), 'attempt'],
    ];
    for (const [body, field] of cases) {
      const response = await replica.request('POST', '/invoke', { body });
      assert.equal(response.status, 400, String(body));
      const { error } = response.json();
      assert.deepEqual([error.type, error.field], ['InvalidArgument', field], String(body));
      assert.ok(error.message.includes(field), error.message);
    }
  });

  test('unknown path and wrong method', async () => {
    assert.equal((await replica.request('GET', '/nope')).status, 404);
    const get = await replica.request('GET', '/invoke');
    assert.deepEqual([get.status, get.headers.allow], [405, 'POST']);
    assert.equal(get.json().error.type, 'MethodNotAllowed');
    const post = await replica.request('POST', '/healthz', { body: '' });
    assert.deepEqual([post.status, post.headers.allow], [405, 'GET, HEAD']);
    assert.equal((await replica.request('DELETE', '/invoke')).status, 405);
    assert.equal((await replica.request('GET', '/invoke?x=1')).status, 405);
  });

  test('a body over 16 MiB is refused and the connection closed', async () => {
    const answer = await rawRequest(
      replica.port,
      'POST /invoke HTTP/1.1\r\nHost: x\r\nContent-Length: 16777217\r\n\r\n{',
    );
    assert.match(answer, /^HTTP\/1\.1 413 /);
    assert.match(answer, /\r\nConnection: close\r\n/i);
    assert.match(answer, /"field":"body"/);
  });

  test('a malformed request gets a JSON error', async () => {
    const answer = await rawRequest(
      replica.port,
      'POST /invoke HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n{}',
    );
    assert.match(answer, /^HTTP\/1\.1 400 /);
    assert.match(answer, /"field":"Content-Length"/);
  });

  test('keep-alive reuses the connection', async (t) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    t.after(() => agent.destroy());
    const responses = [
      await replica.request('GET', '/healthz', { agent }),
      await replica.request('POST', '/invoke', {
        agent,
        body: JSON.stringify({ cursor: { uri, length: 7 } }),
      }),
      await replica.request('POST', '/nope', { agent, body: 'ignored body' }),
      await replica.request('GET', '/healthz', { agent }),
    ];
    assert.deepEqual(
      responses.map((r) => [r.status, r.text().slice(0, 7)]),
      [
        [200, 'ok'],
        [200, 'S2A_001'],
        [404, '{"error'],
        [200, 'ok'],
      ],
    );
    assert.deepEqual(
      responses.map((r) => r.reusedSocket),
      [false, true, true, true],
    );
    assert.equal(responses[0].headers['keep-alive'], undefined); // no idle timeout announced
  });

  test('chunked request body', async () => {
    const answer = await new Promise((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port: replica.port, method: 'POST', path: '/invoke', agent: false },
        (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (text) => (body += text));
          res.on('end', () => resolve({ status: res.statusCode, body }));
        },
      );
      req.on('error', reject);
      assert.equal(req.getHeader('content-length'), undefined);
      req.write('{"cursor": ');
      req.end(JSON.stringify({ uri, length: 3 }) + '}'); // two chunks
    });
    assert.deepEqual(answer, { status: 200, body: 'S2A' });
  });
});

describe('concurrency', () => {
  test('beyond the limit is refused at once', async (t) => {
    const replica = await startReplica(t, { env: { EOFAAS_CONCURRENCY: '2' } }).waitHealthy();
    const blocker = new Blocker(replica, replica.dir);
    await blocker.start('a');
    await blocker.start('b');
    const refused = await replica.invoke({ args: { mode: 'none' } });
    assert.equal(refused.status, 429);
    assert.equal(refused.json().error.type, 'ResourceExhausted');
    assert.equal((await replica.request('GET', '/healthz')).status, 200);
    await blocker.release();
    assert.deepEqual(
      ['a', 'b'].map((id) => blocker.results[id].text()),
      ['released', 'released'],
    );
    assert.equal((await replica.invoke({ args: { mode: 'none' } })).status, 200);
  });

  test('a caller that hangs up keeps its slot until the handler ends', async (t) => {
    const replica = await startReplica(t, { env: { EOFAAS_CONCURRENCY: '1' } }).waitHealthy();
    const body = JSON.stringify({ id: 'gone', args: { mode: 'block', dir: replica.dir } });
    const socket = net.connect(replica.port, '127.0.0.1', () => {
      socket.write(`POST /invoke HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`);
      socket.write(body);
    });
    socket.on('error', () => {});
    await waitUntil(() => fs.existsSync(path.join(replica.dir, 'entered-gone')), {
      message: 'the invocation to start',
    });
    socket.destroy();
    await support.sleep(20);
    assert.equal((await replica.invoke({ args: { mode: 'none' } })).status, 429);
    fs.writeFileSync(path.join(replica.dir, 'release'), '');
    await waitUntil(async () => (await replica.invoke({ args: { mode: 'none' } })).status === 200, {
      message: 'the slot to be free',
    });
    assert.equal(replica.exitCode, undefined);
  });

  test('the default is 16, as template.yaml says', async (t) => {
    const replica = await startReplica(t).waitListening();
    assert.match(replica.stderr(), /\(function test-fn, generation -, replica -, concurrency 16\)/);
  });
});

describe('lifecycle', () => {
  test('SIGTERM drains in-flight work and exits 0', async (t) => {
    const replica = await startReplica(t).waitHealthy();
    const blocker = new Blocker(replica, replica.dir);
    await blocker.start('slow');
    replica.process.kill('SIGTERM');
    await waitUntil(async () => (await replica.request('GET', '/healthz')).status === 503, {
      message: 'draining',
    });
    const refused = await replica.invoke({ args: { mode: 'none' } });
    assert.deepEqual([refused.status, refused.json().error.type], [503, 'Unavailable']);
    assert.equal(refused.headers.connection, 'close');
    assert.equal(replica.exitCode, undefined); // still waiting for the slow invocation
    await blocker.release();
    assert.deepEqual([blocker.results.slow.status, blocker.results.slow.text()], [200, 'released']);
    assert.equal(await replica.wait(), 0);
    assert.match(replica.stderr(), /SIGTERM, draining[\s\S]*drained/);
  });

  test('SIGINT with nothing in flight exits 0', async (t) => {
    const replica = await startReplica(t).waitHealthy();
    replica.process.kill('SIGINT');
    assert.equal(await replica.wait(), 0);
  });

  test('the drain timeout bounds the wait', async (t) => {
    const replica = await startReplica(t, { env: { EOFAAS_DRAIN_TIMEOUT_MS: '50' } }).waitHealthy();
    const blocker = new Blocker(replica, replica.dir);
    await blocker.start('stuck');
    replica.process.kill('SIGTERM');
    assert.equal(await replica.wait(), 0);
    assert.match(replica.stderr(), /drain timeout after 0.05 s/);
  });

  test('answers 503 while the handler loads, then 200', async (t) => {
    // The module's top-level code blocks its thread until the gate file exists.
    const gate = path.join(tempDir(), 'loaded');
    t.after(() => fs.rmSync(path.dirname(gate), { recursive: true, force: true }));
    const slowLoad =
      `const pause = new Int32Array(new SharedArrayBuffer(4));\n` +
      `const gate = ${JSON.stringify(gate)};\n` +
      `while (!require('node:fs').existsSync(gate)) Atomics.wait(pause, 0, 0, 2);\n` +
      HANDLER;
    const replica = await startReplica(t, { handler: slowLoad }).waitListening();
    const healthz = await replica.request('GET', '/healthz', { timeoutMs: 1000 });
    assert.deepEqual([healthz.status, healthz.text()], [503, 'starting']);
    const early = await replica.invoke({ args: { mode: 'none' } });
    assert.deepEqual(
      [early.status, early.json().error],
      [503, { type: 'Unavailable', message: 'starting' }],
    );
    fs.writeFileSync(gate, '');
    await waitUntil(async () => (await replica.request('GET', '/healthz')).status === 200, {
      message: 'healthy once loaded',
    });
    assert.equal((await replica.invoke({ args: { mode: 'none' } })).status, 200);
  });

  test('a port already in use exits non-zero', async (t) => {
    const taken = net.createServer();
    await new Promise((resolve) => taken.listen(0, '127.0.0.1', resolve));
    t.after(() => taken.close());
    const port = String(taken.address().port);
    const replica = startReplica(t, { env: { EOFAAS_PORT: port } });
    assert.equal(await replica.wait(), 1);
    assert.match(replica.stderr(), new RegExp(`cannot listen on 127.0.0.1:${port}: .*EADDRINUSE`));
  });

  test('a handler that throws while loading exits non-zero', async (t) => {
    const replica = startReplica(t, { handler: "throw new RangeError('bad band config');\n" });
    assert.notEqual(await replica.wait(), 0);
    assert.match(replica.stderr(), /cannot load the handler[\s\S]*RangeError: bad band config/);
  });

  test('a syntax error exits non-zero', async (t) => {
    const replica = startReplica(t, { handler: 'module.exports = async (data, ctx) => {\n' });
    assert.notEqual(await replica.wait(), 0);
    assert.match(replica.stderr(), /SyntaxError/);
  });

  test('a module that exports no function exits non-zero', async (t) => {
    const replica = startReplica(t, { handler: 'exports.handle = async () => null;\n' });
    assert.notEqual(await replica.wait(), 0);
    assert.match(replica.stderr(), /does not export a handler/);
  });

  test('a missing handler.js exits non-zero', async (t) => {
    const dir = tempDir();
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const replica = new Replica(dir);
    t.after(() => replica.stop());
    assert.notEqual(await replica.wait(), 0);
    assert.match(replica.stderr(), /Cannot find module/);
  });

  test('a bad setting exits 2', async (t) => {
    const replica = startReplica(t, { env: { EOFAAS_CONCURRENCY: '0' } });
    assert.equal(await replica.wait(), 2);
    assert.match(replica.stderr(), /EOFAAS_CONCURRENCY must be an integer >= 1, got "0"/);
  });
});
