/**
 * HTTP front of a node20 replica: a worker thread, started by server.js, that owns the listening
 * socket and speaks the replica protocol. The function runs on the main thread; this thread keeps
 * answering while the main thread is busy, above all while it loads the handler (module top-level
 * code is synchronous and may take seconds), so that /healthz says 503 rather than nothing.
 *
 *   GET  /healthz  200 "ok" once the main thread reports the handler loaded; 503 while starting or
 *                  draining.
 *   POST /invoke   admitted here (at most `concurrency` in flight, 429 beyond and never queued,
 *                  503 while starting or draining), then run by the main thread, whose answer
 *                  (status, headers, body) is sent back as is.
 *
 * Messages with the main thread, which passes workerData {host, port, concurrency, banner}:
 *   main → front
 *     {type: 'ready'}                              the handler is loaded
 *     {type: 'drain', timeoutMs}                   refuse new work, report when none is left
 *     {type: 'answer', seq, status, headers, body} the answer to invocation `seq`; without a
 *                                                  status, drop its connection instead
 *   front → main
 *     {type: 'invoke', seq, body, arrivedNs}       body: the raw /invoke bytes; arrivedNs:
 *                                                  process.hrtime.bigint() when the request
 *                                                  arrived, a clock both threads share
 *     {type: 'drained', done}                      done is false when the drain timed out
 * A failure to listen ends this thread with exit code 1, which ends the replica.
 */

'use strict';

const http = require('node:http');
const { finished } = require('node:stream');
const { inspect } = require('node:util');
const { parentPort, workerData } = require('node:worker_threads');

const { errorBody, log } = require('./common');

// Request bodies carry a cursor and args, never data; anything bigger is a client bug.
const MAX_BODY_BYTES = 16 * 1024 * 1024;
const ROUTES = new Map([
  ['/healthz', ['GET', 'HEAD']],
  ['/invoke', ['POST']],
]);
const TEXT = 'text/plain; charset=utf-8';
const JSON_TYPE = 'application/json';

/**
 * Counts invocations in flight and refuses new ones when full, starting or draining.
 * An invocation holds its slot until its answer is ready, and counts as unfinished until the
 * answer is written: the proxy sends the next invocation as soon as it has read this answer,
 * which may be before the write is reported here. Drain waits for the unfinished ones.
 * `ready` flips once after the handler is loaded; `drain` flips draining for good.
 */
class Admission {
  #inflight = 0; // holding a slot
  #unfinished = 0;
  #idle = null; // resolves the pending drain() once nothing is unfinished

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
    this.#unfinished++;
    return null;
  }

  /** The answer of an entered invocation is ready: its slot may serve the next one. */
  releaseSlot() {
    this.#inflight--;
  }

  /** The answer of an entered invocation is written (its slot released before). */
  leave() {
    this.#unfinished--;
    if (this.#unfinished === 0 && this.#idle !== null) this.#idle(true);
  }

  /** Refuses new work; resolves once in-flight work is done, or to false at the timeout. */
  drain(timeoutMs) {
    this.draining = true;
    if (this.#unfinished === 0) return Promise.resolve(true);
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

/** Routes requests, admits invocations and hands them to the main thread. */
class Front {
  #answers = new Map(); // seq -> resolve() of an invocation the main thread is running
  #seq = 0;

  constructor(admission) {
    this.admission = admission;
  }

  /** Resolves once the response has been handed to the OS or the connection has gone. */
  send(res, status, body, headers = {}) {
    const head = { ...headers, 'Content-Length': body.byteLength };
    if (this.admission.draining) head.Connection = 'close'; // tells the proxy to drop it
    res.writeHead(status, head);
    res.end(body); // a HEAD response leaves the body out by itself
    return new Promise((resolve) => finished(res, () => resolve()));
  }

  sendError(res, status, type, message, { headers, ...extra } = {}) {
    const body = errorBody(type, message, extra);
    return this.send(res, status, body, { 'Content-Type': JSON_TYPE, ...headers });
  }

  async dispatch(req, res) {
    const arrivedNs = process.hrtime.bigint(); // the deadline budget counts from here
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
    return this.invoke(res, body, arrivedNs);
  }

  healthz(res) {
    const headers = { 'Content-Type': TEXT };
    if (this.admission.healthy()) return this.send(res, 200, Buffer.from('ok'), headers);
    const reason = this.admission.draining ? 'draining' : 'starting';
    return this.send(res, 503, Buffer.from(reason), headers);
  }

  async invoke(res, body, arrivedNs) {
    const refusal = this.admission.enter();
    if (refusal !== null) {
      const type = refusal.status === 429 ? 'ResourceExhausted' : 'Unavailable';
      return this.sendError(res, refusal.status, type, refusal.reason);
    }
    try {
      let answer;
      try {
        answer = await this.run(body, arrivedNs);
      } finally {
        this.admission.releaseSlot(); // the answer is ready
      }
      if (answer.status === undefined) return res.destroy();
      await this.send(res, answer.status, answer.body, answer.headers);
    } finally {
      this.admission.leave(); // after the response is written, so drain waits for it
    }
  }

  /** Has the main thread run the invocation; resolves to its answer message. */
  run(body, arrivedNs) {
    const seq = ++this.#seq;
    return new Promise((resolve) => {
      this.#answers.set(seq, resolve);
      parentPort.postMessage({ type: 'invoke', seq, body, arrivedNs }, [body.buffer]);
    });
  }

  answered(message) {
    const resolve = this.#answers.get(message.seq);
    this.#answers.delete(message.seq);
    resolve(message);
  }
}

/**
 * Reads the whole request body into a Uint8Array of its own (so that it can be transferred to
 * the main thread); rejects with BadRequest(413) beyond MAX_BODY_BYTES.
 */
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
    req.on('end', () => {
      const body = new Uint8Array(total);
      let at = 0;
      for (const chunk of chunks) {
        body.set(chunk, at);
        at += chunk.length;
      }
      resolve(body);
    });
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

function main() {
  const { host, port, concurrency, banner } = workerData;
  const admission = new Admission(concurrency);
  const front = new Front(admission);

  parentPort.on('message', (message) => {
    switch (message.type) {
      case 'answer':
        return front.answered(message);
      case 'ready':
        admission.ready = true;
        return;
      case 'drain':
        admission.drain(message.timeoutMs).then((done) => {
          parentPort.postMessage({ type: 'drained', done });
        });
        return;
    }
    throw new Error(`unknown message ${inspect(message)}`);
  });

  const server = http.createServer((req, res) => {
    front.dispatch(req, res).catch((error) => {
      log(`request failed:\n${inspect(error)}`);
      res.destroy();
    });
  });
  // No idle timeout on keep-alive connections: the proxy pools them, and one closed under its
  // feet turns the next request into a transport error.
  server.keepAliveTimeout = 0;
  server.on('clientError', onClientError);
  server.on('error', (error) => {
    log(`cannot listen on ${host}:${port}: ${error.message}`);
    process.exit(1); // ends this thread; the main thread ends the replica
  });
  try {
    server.listen(port, host, () => {
      const bound = server.address();
      log(`listening on ${bound.address}:${bound.port} (${banner})`, ' ');
    });
  } catch (error) {
    log(`cannot listen on ${host}:${port}: ${error.message}`); // e.g. a port above 65535
    process.exit(1);
  }
}

main();
