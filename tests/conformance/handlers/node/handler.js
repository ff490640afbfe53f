/**
 * Fixture handler of the conformance suite (node20).
 *
 * Each test vector names a behaviour in args.behaviour (default "echo-envelope"); the python and
 * php fixtures implement the same behaviours and must answer byte for byte the same.
 */

'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { FunctionError } = require('eofaas');

const sleepMs = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Lets a vector observe /healthz while the handler is still loading (a blocking wait, as a slow
// require() would be).
const loadDelayMs = Number(process.env.CONFORMANCE_LOAD_DELAY_MS || 0);
if (loadDelayMs > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, loadDelayMs);

/** A handled function error with a type name of its own. */
class BadScene extends FunctionError {}

/** An unhandled function error with a type name of its own. */
class CloudCoverMissing extends Error {
  constructor(message) {
    super(message);
    this.name = 'CloudCoverMissing';
  }
}

function cursorFields(cursor) {
  if (cursor === null) return null;
  const { uri, offset, length, framing, part, parts, size, etag } = cursor;
  return { uri, offset, length, framing, part, parts, size, etag };
}

const behaviours = {
  'echo-envelope': async (data, ctx) => ({
    id: ctx.id,
    args: ctx.args,
    arg_keys: Object.keys(ctx.args).sort(),
    attempt: ctx.attempt,
    deadline_ms: ctx.deadlineMs,
    remaining_ms: ctx.remainingMs(),
    function: ctx.function,
    cursor: cursorFields(ctx.cursor),
  }),
  'echo-args': async (data, ctx) => ctx.args,
  'read-all': async (data) => data.read(),
  'read-pieces': async (data, ctx) => {
    const size = Number(ctx.args.size);
    const pieces = [];
    for (let piece; (piece = await data.read(size)).length > 0;) {
      if (piece.length > size) throw new Error(`read(${size}) returned ${piece.length} bytes`);
      pieces.push(piece);
    }
    return Buffer.concat(pieces);
  },
  lines: async (data) => {
    const parts = [];
    const newline = Buffer.from('\n');
    for await (const line of data) parts.push(line, newline);
    return Buffer.concat(parts);
  },
  steps: async (data, ctx) => {
    const out = [];
    for (const [name, size] of ctx.args.steps) {
      if (name === 'read') {
        out.push((await data.read(size ?? -1)).toString());
      } else if (name === 'line') {
        const { value, done } = await data.lines().next();
        out.push(done ? null : value.toString());
      } else {
        out.push(data.tell());
      }
    }
    return out;
  },
  'binary-result': async (data, ctx) => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    return Buffer.concat(Array(Number(ctx.args.repeat ?? 1)).fill(all));
  },
  'binary-echo': async (data, ctx) => Buffer.from(ctx.args.base64, 'base64'),
  'text-result': async (data, ctx) => ctx.args.text,
  'json-result': async (data, ctx) => ({ value: ctx.args.value }),
  'none-result': async () => null,
  'remaining-time': async (data, ctx) => {
    const before = ctx.remainingMs();
    await sleepMs(Number(ctx.args.sleep_ms ?? 0));
    return { deadline_ms: ctx.deadlineMs, before, after: ctx.remainingMs() };
  },
  // Signals that it runs, then waits until the runner lets it finish.
  block: async (data, ctx) => {
    const dir = ctx.args.dir;
    fs.writeFileSync(path.join(dir, `entered-${ctx.id}`), '');
    const giveUp = performance.now() + Number(ctx.args.timeout_ms ?? 10000);
    while (!fs.existsSync(path.join(dir, 'release'))) {
      if (performance.now() > giveUp) throw new Error('never released');
      await sleepMs(2);
    }
    return 'released';
  },
  'raise-handled': async (data, ctx) => {
    throw new BadScene(ctx.args.message);
  },
  'raise-unhandled': async (data, ctx) => {
    throw new CloudCoverMissing(ctx.args.message);
  },
  'raise-builtin': async (data, ctx) => {
    throw new Error(ctx.args.message);
  },
  sleep: async (data, ctx) => {
    await sleepMs(Number(ctx.args.ms));
    return 'slept';
  },
};

module.exports = async (data, ctx) => {
  const behaviour = behaviours[ctx.args.behaviour ?? 'echo-envelope'];
  if (behaviour === undefined) throw new Error(`unknown behaviour ${ctx.args.behaviour}`);
  return behaviour(data, ctx);
};
