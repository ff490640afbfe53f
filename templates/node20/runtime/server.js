/**
 * Replica server of the node20 template: the eofaas replica protocol over HTTP/1.1.
 *
 *   GET  /healthz  200 "ok" once function/handler.js is loaded; 503 while starting or draining.
 *   POST /invoke   runs the handler for one cursor and answers 200 with the result; a thrown error
 *                  is a function error (200 + X-Eofaas-Function-Error: handled|unhandled).
 *                  429 beyond EOFAAS_CONCURRENCY invocations in flight (never queued),
 *                  503 draining.
 * SIGTERM or SIGINT drains: new work gets 503, in-flight invocations finish (up to
 * EOFAAS_DRAIN_TIMEOUT_MS), then the process exits 0. A handler that fails to load exits 1.
 *
 * Run from the bundle root as `node runtime/server.js`; the user's files are in ../function
 * beside this directory unless EOFAAS_FUNCTION_DIR says otherwise. Loading the handler is a
 * synchronous require(): the replica listens first, but answers nothing until it has loaded.
 */

'use strict';

const http = require('node:http');
const path = require('node:path');
const { finished } = require('node:stream');
const { inspect } = require('node:util');

// Handlers `require('eofaas')`: NODE_PATH makes this directory a fallback module directory,
// searched after the function's own node_modules. Node reads NODE_PATH once at start-up, so the
// module search paths are initialised again.
process.env.NODE_PATH = [__dirname, process.env.NODE_PATH].filter(Boolean).join(path.delimiter);
require('node:module')._initPaths();

const { Context, FunctionError } = require('./eofaas');
const reader = require('./reader');

// Request bodies carry a cursor and args, never data; anything bigger is a client bug.
const MAX_BODY_BYTES = 16 * 1024 * 1024;
const FUNCTION_ERROR_HEADER = 'X-Eofaas-Function-Error';
const LOG_PREFIX = 'eofaas node20 runtime';
const ROUTES = new Map([
  ['/healthz', ['GET', 'HEAD']],
  ['/invoke', ['POST']],
]);

function log(message, separator = ': ') {
  process.stderr.write(`${LOG_PREFIX}${separator}${message}\n`);
}

/**
 * Counts invocations in flight and refuses new ones when full, starting or draining.
 * `ready` flips once after the handler is loaded; `drain` flips draining for good.
 */
class Admission {
  #inflight = 0;
  #idle = null; // resolves the pending drain() once nothing is in flight

  constructor(limit) {
    this.limit = limit;
    this.ready = false;
    this.draining = false;
  }

  healthy() {
    return this.ready && !this.draining;
  }

  /** Takes a slot; returns null, or {status, reason} when the invocation is refused. */
  enter() {
    if (this.draining) return { status: 503, reason: 'draining' };
    if (!this.ready) return { status: 503, reason: 'starting' };
    if (this.#inflight >= this.limit) {
      return { status: 429, reason: `${this.limit} invocations in flight` };
    }
    this.#inflight++;
    return null;
  }

  leave() {
    this.#inflight--;
    if (this.#inflight === 0 && this.#idle !== null) this.#idle(true);
  }

  /** Refuses new work; resolves once in-flight work is done, or to false at the timeout. */
  drain(timeoutMs) {
    this.draining = true;
    if (this.#inflight === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      this.#idle = resolve;
      setTimeout(resolve, timeoutMs, false);
    });
  }
}

class BadRequest extends Error {
  constructor(status, field, detail) {
    super(`${field}: ${detail}`);
    this.status = status;
    this.field = field;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes an /invoke body into {id, cursor, args, deadlineMs, attempt}; throws BadRequest. */
function parseInvocation(body) {
  let request;
  try {
    const text = utf8.decode(body);
    request = text.trim() ? JSON.parse(text) : {};
  } catch (error) {
    throw new BadRequest(400, 'body', `invalid JSON: ${error.message}`);
  }
  if (typeof request !== 'object' || request === null || Array.isArray(request)) {
    throw new BadRequest(400, 'body', 'must be a JSON object');
  }
  try {
    const id = request.id || '';
    if (typeof id !== 'string') throw new reader.CursorError('id', 'must be a string');
    const cursor = request.cursor ?? null;
    const args = request.args ?? {};
    if (typeof args !== 'object' || Array.isArray(args)) {
      throw new reader.CursorError('args', 'must be a JSON object');
    }
    const int = { defaultValue: 0, minimum: 0 };
    return {
      id,
      cursor: cursor === null ? null : reader.parseCursor(cursor),
      args,
      deadlineMs: reader.parseInt64(request.deadline_ms, 'deadline_ms', int) || null, // 0: none
      attempt: reader.parseInt64(request.attempt, 'attempt', int),
    };
  } catch (error) {
    if (error instanceof reader.CursorError) {
      throw new BadRequest(400, error.field, error.detail);
    }
    throw error;
  }
}

/** Turns a handler's result into {body, contentType}. */
function encodeResult(result) {
  if (result === undefined || result === null) return { body: Buffer.alloc(0), contentType: null };
  if (ArrayBuffer.isView(result)) {
    const body = Buffer.from(result.buffer, result.byteOffset, result.byteLength);
    return { body, contentType: 'application/octet-stream' };
  }
  if (result instanceof ArrayBuffer) {
    return { body: Buffer.from(result), contentType: 'application/octet-stream' };
  }
  if (typeof result === 'string') {
    return { body: Buffer.from(result, 'utf8'), contentType: 'text/plain; charset=utf-8' };
  }
  const json = JSON.stringify(result);
  if (json === undefined) throw new TypeError(`cannot encode a ${typeof result} result as JSON`);
  return { body: Buffer.from(json, 'utf8'), contentType: 'application/json' };
}

/** The {type, message} of anything a handler may throw, not only Errors. */
function describeThrown(value) {
  if (value instanceof Error) {
    const type = value.name !== 'Error' ? value.name : value.constructor?.name || 'Error';
    return { type: String(type), message: String(value.message) };
  }
  return { type: typeof value, message: typeof value === 'string' ? value : inspect(value) };
}

function errorBody(type, message, extra = {}) {
  return Buffer.from(JSON.stringify({ error: { type, message, ...extra } }), 'utf8');
}

class Replica {
  constructor({ admission, functionName }) {
    this.admission = admission;
    this.functionName = functionName;
    this.handler = null; // the user's async (data, ctx) => result, set once loaded
  }

  /** Resolves once the response has been handed to the OS or the connection has gone. */
  send(res, status, body, contentType, headers = {}) {
    const head = {};
    if (contentType) head['Content-Type'] = contentType;
    head['Content-Length'] = body.length;
    Object.assign(head, headers);
    if (this.admission.draining) head.Connection = 'close'; // tells the proxy to drop it
    res.writeHead(status, head);
    res.end(body); // a HEAD response leaves the body out by itself
    return new Promise((resolve) => finished(res, () => resolve()));
  }

  sendError(res, status, type, message, { headers, ...extra } = {}) {
    return this.send(res, status, errorBody(type, message, extra), 'application/json', headers);
  }

  sendFunctionError(res, kind, thrown) {
    const { type, message } = describeThrown(thrown);
    return this.send(res, 200, errorBody(type, message), 'application/json', {
      [FUNCTION_ERROR_HEADER]: kind,
    });
  }

  async dispatch(req, res) {
    const arrived = performance.now(); // the deadline budget counts from here
    const route = req.url.split('?', 1)[0];
    let body;
    try {
      body = await readBody(req);
    } catch (error) {
      if (!(error instanceof BadRequest)) return; // the client went away mid-request
      return this.sendError(res, error.status, 'InvalidArgument', error.message, {
        field: error.field,
        headers: { Connection: 'close' }, // the rest of the stream cannot be trusted
      });
    }
    const allowed = ROUTES.get(route);
    if (allowed === undefined) return this.sendError(res, 404, 'NotFound', `no route ${route}`);
    if (!allowed.includes(req.method)) {
      return this.sendError(res, 405, 'MethodNotAllowed', `${req.method} ${route}`, {
        headers: { Allow: allowed.join(', ') },
      });
    }
    if (route === '/healthz') return this.healthz(res);
    return this.invoke(res, body, arrived);
  }

  healthz(res) {
    const type = 'text/plain; charset=utf-8';
    if (this.admission.healthy()) return this.send(res, 200, Buffer.from('ok'), type);
    const reason = this.admission.draining ? 'draining' : 'starting';
    return this.send(res, 503, Buffer.from(reason), type);
  }

  async invoke(res, body, arrived) {
    const refusal = this.admission.enter();
    if (refusal !== null) {
      const type = refusal.status === 429 ? 'ResourceExhausted' : 'Unavailable';
      return this.sendError(res, refusal.status, type, refusal.reason);
    }
    try {
      let invocation;
      try {
        invocation = parseInvocation(body);
      } catch (error) {
        if (!(error instanceof BadRequest)) throw error;
        return await this.sendError(res, error.status, 'InvalidArgument', error.message, {
          field: error.field,
        });
      }
      await this.run(res, invocation, arrived);
    } finally {
      this.admission.leave(); // after the response is written, so drain waits for it
    }
  }

  async run(res, invocation, arrived) {
    // Per-operation network timeout for the reader: the caller's budget if it gave one.
    const timeoutMs = invocation.deadlineMs ? Math.max(1000, invocation.deadlineMs) : 60000;
    const data = new reader.Data(invocation.cursor, { timeoutMs });
    const ctx = new Context({
      id: invocation.id,
      args: invocation.args,
      attempt: invocation.attempt,
      deadlineMs: invocation.deadlineMs,
      function: this.functionName,
      cursor: invocation.cursor,
      arrived,
    });
    let result;
    try {
      result = encodeResult(await this.handler(data, ctx));
    } catch (error) {
      if (error instanceof FunctionError) return this.sendFunctionError(res, 'handled', error);
      log(`invocation ${JSON.stringify(invocation.id)} failed:\n${inspect(error)}`);
      return this.sendFunctionError(res, 'unhandled', error);
    } finally {
      // Not awaited: a read the handler left pending must not hold the response back.
      data.close().catch(() => {});
    }
    return this.send(res, 200, result.body, result.contentType);
  }
}

/** Reads the whole request body; rejects with BadRequest(413) beyond MAX_BODY_BYTES. */
function readBody(req) {
  return new Promise((resolve, reject) => {
    const tooLarge = () => new BadRequest(413, 'body', `larger than ${MAX_BODY_BYTES} bytes`);
    if (Number(req.headers['content-length']) > MAX_BODY_BYTES) return reject(tooLarge());
    const chunks = [];
    let total = 0;
    req.on('data', (chunk) => {
      total += chunk.length;
      chunks.push(chunk);
      if (total > MAX_BODY_BYTES) {
        req.removeAllListeners('data').pause();
        reject(tooLarge());
      }
    });
    req.on('end', () => resolve(Buffer.concat(chunks, total)));
    req.on('error', reject);
  });
}

/** Answers a request Node's HTTP parser rejected, in the same JSON form as every other error. */
function onClientError(error, socket) {
  if (error.code === 'ECONNRESET' || !socket.writable) return socket.destroy();
  const status = { HPE_HEADER_OVERFLOW: 431, ERR_HTTP_REQUEST_TIMEOUT: 408 }[error.code] ?? 400;
  let field = null;
  if (error.code?.includes('CONTENT_LENGTH')) field = 'Content-Length';
  else if (error.code?.includes('CHUNK')) field = 'body';
  const reason = error.reason || error.code || error.message;
  const message = field ? `${field}: ${reason}` : `malformed request: ${reason}`;
  const body = errorBody('InvalidArgument', message, field ? { field } : {});
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
  );
}

function envInt(name, defaultValue, minimum) {
  const raw = (process.env[name] ?? '').trim();
  if (!raw) return defaultValue;
  const value = /^[+-]?[0-9]+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(value) || value < minimum) {
    log(`${name} must be an integer >= ${minimum}, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return value;
}

/** Loads functionDir/handler.js and returns the function it exports. */
function loadHandler(functionDir) {
  const file = path.join(functionDir, 'handler.js');
  const handler = require(file);
  if (typeof handler !== 'function') {
    throw new TypeError(
      `${file} does not export a handler: module.exports = async (data, ctx) => ...`,
    );
  }
  return handler;
}

function main() {
  const host = (process.env.EOFAAS_HOST ?? '').trim() || '127.0.0.1';
  const port = envInt('EOFAAS_PORT', 8080, 0);
  const concurrency = envInt('EOFAAS_CONCURRENCY', 16, 1);
  const drainTimeoutMs = envInt('EOFAAS_DRAIN_TIMEOUT_MS', 10000, 0);
  const functionName = process.env.EOFAAS_FUNCTION ?? '';
  const functionDir = path.resolve(
    process.env.EOFAAS_FUNCTION_DIR || path.join(__dirname, '..', 'function'),
  );

  const admission = new Admission(concurrency);
  const replica = new Replica({ admission, functionName });
  const server = http.createServer((req, res) => {
    replica.dispatch(req, res).catch((error) => {
      log(`request failed:\n${inspect(error)}`);
      res.destroy();
    });
  });
  // No idle timeout on keep-alive connections: the proxy pools them, and one closed under its
  // feet turns the next request into a transport error.
  server.keepAliveTimeout = 0;
  server.on('clientError', onClientError);

  const drain = async (signal) => {
    if (admission.draining) return;
    log(`${signal}, draining`);
    if (await admission.drain(drainTimeoutMs)) {
      log('drained');
    } else {
      log(`drain timeout after ${drainTimeoutMs / 1000} s; exiting with work in flight`);
    }
    process.exit(0);
  };
  // Registered before loading: a signal during the load is handled right after it.
  for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, drain);
  // A promise a handler forgot about must not take down the other invocations in flight.
  process.on('unhandledRejection', (reason) => {
    log(`unhandled promise rejection (ignored):\n${inspect(reason)}`);
  });

  server.on('error', (error) => {
    log(`cannot listen on ${host}:${port}: ${error.message}`);
    process.exit(1);
  });
  const listening = () => {
    const bound = server.address();
    const env = (name) => process.env[name] || '-';
    log(
      `listening on ${bound.address}:${bound.port} (function ${functionName || '-'}, ` +
        `generation ${env('EOFAAS_GENERATION')}, replica ${env('EOFAAS_REPLICA')}, ` +
        `concurrency ${concurrency})`,
      ' ',
    );
    try {
      replica.handler = loadHandler(functionDir);
    } catch (error) {
      log(`cannot load the handler from ${functionDir}:\n${inspect(error)}`);
      process.exit(1);
    }
    admission.ready = true;
  };
  try {
    server.listen(port, host, listening);
  } catch (error) {
    log(`cannot listen on ${host}:${port}: ${error.message}`); // e.g. a port above 65535
    process.exit(1);
  }
}

main();
