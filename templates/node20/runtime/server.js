/**
 * Replica server of the node20 template: the eofaas replica protocol over HTTP/1.1.
 *
 *   GET  /healthz  200 "ok" once function/handler.js is loaded; 503 while starting or draining.
 *   POST /invoke   runs the handler for one cursor and answers 200 with the result; a thrown error
 *                  is a function error (200 + X-Eofaas-Function-Error: handled|unhandled).
 *                  429 beyond EOFAAS_CONCURRENCY invocations in flight (never queued),
 *                  503 while starting or draining.
 * SIGTERM or SIGINT drains: new work gets 503, in-flight invocations finish (up to
 * EOFAAS_DRAIN_TIMEOUT_MS), then the process exits 0. A handler that fails to load exits 1.
 *
 * Two threads. The HTTP front (front.js, a worker thread) owns the socket, answers /healthz and
 * admits invocations; this, the main thread, loads the user's handler and runs every invocation
 * the front hands over. The handler's module is loaded with a synchronous require() whose
 * top-level code may run for seconds: the front is listening before it starts and answers 503
 * meanwhile. Handlers keep the main thread, so process-wide APIs (signals, process.exit(),
 * process.chdir(), native addons) behave as in any Node program.
 *
 * Run from the bundle root as `node runtime/server.js`; the user's files are in ../function
 * beside this directory unless EOFAAS_FUNCTION_DIR says otherwise.
 */

'use strict';

const path = require('node:path');
const { inspect } = require('node:util');
const { Worker } = require('node:worker_threads');

// Handlers `require('eofaas')`: NODE_PATH makes this directory a fallback module directory,
// searched after the function's own node_modules. Node reads NODE_PATH once at start-up, so the
// module search paths are initialised again.
process.env.NODE_PATH = [__dirname, process.env.NODE_PATH].filter(Boolean).join(path.delimiter);
require('node:module')._initPaths();

const { errorBody, log } = require('./common');
const { Context, FunctionError } = require('./eofaas');
const reader = require('./reader');

const FUNCTION_ERROR_HEADER = 'X-Eofaas-Function-Error';
const JSON_TYPE = 'application/json';
const DAY_MS = 24 * 60 * 60 * 1000;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Decodes an /invoke body into {id, cursor, args, deadlineMs, attempt}; throws
 * reader.CursorError naming the bad field ("body" for the body as a whole).
 */
function parseInvocation(body) {
  let request;
  try {
    const text = utf8.decode(body);
    request = text.trim() ? JSON.parse(text) : {};
  } catch (error) {
    throw new reader.CursorError('body', `invalid JSON: ${error.message}`);
  }
  if (typeof request !== 'object' || request === null || Array.isArray(request)) {
    throw new reader.CursorError('body', 'must be a JSON object');
  }
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

function functionError(kind, thrown) {
  const { type, message } = describeThrown(thrown);
  return {
    status: 200,
    body: errorBody(type, message),
    headers: { 'Content-Type': JSON_TYPE, [FUNCTION_ERROR_HEADER]: kind },
  };
}

/** Runs the invocations the front hands over with the loaded handler. */
class Runner {
  constructor({ handler, functionName }) {
    this.handler = handler; // the user's async (data, ctx) => result
    this.functionName = functionName;
  }

  /** Answers {status, headers, body} for one /invoke body. */
  async run(body, arrived) {
    let invocation;
    try {
      invocation = parseInvocation(body);
    } catch (error) {
      if (!(error instanceof reader.CursorError)) throw error;
      return {
        status: 400,
        body: errorBody('InvalidArgument', error.message, { field: error.field }),
        headers: { 'Content-Type': JSON_TYPE },
      };
    }
    // Per-operation network timeout for the reader: the caller's budget if it gave one, at most
    // a day (a timer takes at most 2^31 - 1 ms).
    const timeoutMs = invocation.deadlineMs
      ? Math.min(Math.max(1000, invocation.deadlineMs), DAY_MS)
      : 60000;
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
      if (error instanceof FunctionError) return functionError('handled', error);
      log(`invocation ${JSON.stringify(invocation.id)} failed:\n${inspect(error)}`);
      return functionError('unhandled', error);
    } finally {
      // Not awaited: a read the handler left pending must not hold the response back.
      data.close().catch(() => {});
    }
    const headers = result.contentType ? { 'Content-Type': result.contentType } : {};
    return { status: 200, body: result.body, headers };
  }

  /** Runs an 'invoke' message of the front and posts the answer back to it. */
  async serve(front, { seq, body, arrivedNs }) {
    // The same instant on this thread's performance.now() clock.
    const arrived = performance.now() - Number(process.hrtime.bigint() - arrivedNs) / 1e6;
    let answer;
    try {
      answer = await this.run(body, arrived);
    } catch (error) {
      log(`request failed:\n${inspect(error)}`);
      front.postMessage({ type: 'answer', seq }); // no status: the front drops the connection
      return;
    }
    // A copy of its own, handed over without a second copy; the result may be the handler's
    // own buffer, which must stay usable.
    const bytes = new Uint8Array(answer.body);
    const { status, headers } = answer;
    front.postMessage({ type: 'answer', seq, status, headers, body: bytes }, [bytes.buffer]);
  }
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
  const env = (name) => process.env[name] || '-';
  const banner =
    `function ${functionName || '-'}, generation ${env('EOFAAS_GENERATION')}, ` +
    `replica ${env('EOFAAS_REPLICA')}, concurrency ${concurrency}`;

  // Started first: it listens and answers 503 while this thread loads the handler.
  const front = new Worker(path.join(__dirname, 'front.js'), {
    workerData: { host, port, concurrency, banner },
  });
  front.on('error', (error) => {
    log(`the HTTP front failed:\n${inspect(error)}`);
    process.exit(1);
  });
  front.on('exit', () => process.exit(1)); // it logged why (e.g. cannot listen)

  let draining = false;
  const drain = (signal) => {
    if (draining) return;
    draining = true;
    log(`${signal}, draining`);
    front.postMessage({ type: 'drain', timeoutMs: drainTimeoutMs });
  };
  // Registered before loading: a signal during the load is handled right after it.
  for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, drain);
  // A promise a handler forgot about must not take down the other invocations in flight.
  process.on('unhandledRejection', (reason) => {
    log(`unhandled promise rejection (ignored):\n${inspect(reason)}`);
  });

  let runner;
  try {
    runner = new Runner({ handler: loadHandler(functionDir), functionName });
  } catch (error) {
    log(`cannot load the handler from ${functionDir}:\n${inspect(error)}`);
    process.exit(1);
  }
  front.on('message', (message) => {
    if (message.type === 'invoke') return runner.serve(front, message);
    if (message.type === 'drained') {
      if (message.done) {
        log('drained');
      } else {
        log(`drain timeout after ${drainTimeoutMs / 1000} s; exiting with work in flight`);
      }
      process.exit(0);
    }
  });
  front.postMessage({ type: 'ready' });
}

main();
