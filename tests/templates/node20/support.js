/**
 * Shared helpers for the node20 template tests: paths, a Range-capable HTTP file server and a
 * replica process started from the real runtime/server.js.
 */

'use strict';

const { spawn } = require('node:child_process');
const http = require('node:http');
const path = require('node:path');

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const TEMPLATE_DIR = path.join(REPO_ROOT, 'templates', 'node20');
const RUNTIME_DIR = path.join(TEMPLATE_DIR, 'runtime');
// The interpreter template.yaml runs replicas with.
const NODE = '/usr/bin/node';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `predicate` (sync or async) until it returns a truthy value, which is returned. */
async function waitUntil(predicate, { timeoutMs = 5000, message = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${message}`);
    await sleep(2);
  }
}

/**
 * Serves an object {path: Buffer} on 127.0.0.1 (port 0). With honourRange false it ignores Range
 * headers and always answers 200 with the whole object, like some static servers.
 */
class FileServer {
  constructor(files, { honourRange = true } = {}) {
    this.files = files;
    this.ranges = []; // Range header of every request, for assertions
    this.server = http.createServer((req, res) => {
      const body = Object.hasOwn(files, req.url) ? files[req.url] : undefined;
      if (body === undefined) return reply(res, 404, Buffer.from('not found'));
      const header = req.headers.range;
      this.ranges.push(header);
      const match = /^bytes=(\d+)-(\d*)$/.exec(header ?? '');
      if (!honourRange || !match) return reply(res, 200, body);
      const first = Number(match[1]);
      if (first >= body.length) {
        return reply(res, 416, Buffer.alloc(0), { 'Content-Range': `bytes */${body.length}` });
      }
      const last = match[2] ? Math.min(Number(match[2]), body.length - 1) : body.length - 1;
      reply(res, 206, body.subarray(first, last + 1), {
        'Content-Range': `bytes ${first}-${last}/${body.length}`,
      });
    });
  }

  /** Resolves once listening. */
  async start() {
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return this;
  }

  url(urlPath) {
    return `http://127.0.0.1:${this.server.address().port}${urlPath}`;
  }

  close() {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(resolve));
  }
}

function reply(res, status, body, headers = {}) {
  res.writeHead(status, { 'Content-Length': body.length, ...headers });
  res.end(body);
}

/** A response read whole: status, headers (lower-case names) and body. */
class Response {
  constructor(status, headers, body) {
    this.status = status;
    this.headers = headers;
    this.body = body;
  }

  json() {
    return JSON.parse(this.body.toString('utf8'));
  }

  text() {
    return this.body.toString('utf8');
  }
}

/** One HTTP request on its own connection, or on `agent`'s. */
function request(
  port,
  method,
  urlPath,
  { body, headers = {}, agent = false, timeoutMs = 10000 } = {},
) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method, path: urlPath, headers, agent, timeout: timeoutMs },
      (res) => {
        const chunks = [];
        res.on('data', (chunk) => chunks.push(chunk));
        res.on('end', () => {
          const response = new Response(res.statusCode, res.headers, Buffer.concat(chunks));
          response.reusedSocket = req.reusedSocket;
          resolve(response);
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * A replica started from runtime/server.js with EOFAAS_PORT=0; the port comes from its start-up
 * log line. Its stderr is collected for assertions.
 */
class Replica {
  constructor(functionDir, env = {}) {
    const fullEnv = Object.fromEntries(
      Object.entries(process.env).filter(([name]) => !name.startsWith('EOFAAS_')),
    );
    Object.assign(fullEnv, {
      EOFAAS_PORT: '0',
      EOFAAS_FUNCTION_DIR: functionDir,
      EOFAAS_FUNCTION: 'test-fn',
      ...env,
    });
    this.process = spawn(NODE, ['runtime/server.js'], {
      cwd: TEMPLATE_DIR,
      env: fullEnv,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.exitCode = undefined; // null when killed by a signal
    this.exited = new Promise((resolve) => {
      this.process.on('exit', (code) => {
        this.exitCode = code;
        resolve(code);
      });
    });
    this.output = '';
    this.process.stderr.setEncoding('utf8').on('data', (text) => (this.output += text));
    this.port = null;
  }

  stderr() {
    return this.output;
  }

  async waitListening() {
    const match = await waitUntil(
      () => /runtime listening on [^ ]+:(\d+)/.exec(this.output) || this.exitCode !== undefined,
      { message: 'the listening log line' },
    );
    if (match === true) throw new Error(`replica exited early: ${this.output}`);
    this.port = Number(match[1]);
    return this;
  }

  async waitHealthy() {
    await this.waitListening();
    await waitUntil(async () => (await this.request('GET', '/healthz')).status === 200, {
      message: 'healthy',
    });
    return this;
  }

  request(method, urlPath, options) {
    return request(this.port, method, urlPath, options);
  }

  invoke(fields = {}) {
    return this.request('POST', '/invoke', {
      body: JSON.stringify(fields),
      headers: { 'Content-Type': 'application/json' },
    });
  }

  /** Waits for the process to exit and resolves to its exit code. */
  async wait(timeoutMs = 10000) {
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(
        reject,
        timeoutMs,
        new Error(`replica still running after ${timeoutMs} ms`),
      );
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async stop() {
    if (this.exitCode === undefined) this.process.kill('SIGKILL');
    await this.exited;
  }
}

module.exports = {
  FileServer,
  NODE,
  REPO_ROOT,
  Replica,
  RUNTIME_DIR,
  TEMPLATE_DIR,
  request,
  sleep,
  waitUntil,
};
