/**
 * Public API of the node20 template for function authors.
 *
 * A function is `function/handler.js`, a CommonJS module exporting
 * `module.exports = async (data, ctx) => result`:
 *   - `data` is the chunk the cursor points at: `await data.read()` returns its bytes as a Buffer,
 *     `for await (const line of data)` streams its lines as Buffers without the trailing "\n",
 *     `data.tell()` counts the bytes consumed, `data.cursor` describes it;
 *   - `ctx` carries the invocation: `args`, `id`, `attempt`, `deadlineMs`, `remainingMs()`,
 *     `function`, `cursor`.
 * The resolved value becomes the response: a Buffer (or any typed array) as is, a string as UTF-8,
 * undefined or null as an empty body, anything else as JSON. Throw `FunctionError` for an expected
 * failure ("handled"); anything else thrown is reported as "unhandled". Either way the caller sees
 * a function error, which is never retried.
 *
 * Handlers load this module with `require('eofaas')`: the runtime puts its own directory on
 * NODE_PATH, which Node searches after the function's node_modules.
 */

'use strict';

/**
 * An error the function reports on purpose, e.g. malformed input data.
 * Subclass it to give the error a type name: the caller sees the class name and the message.
 */
class FunctionError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** What a handler knows about its invocation; built by the runtime once per request. */
class Context {
  #arrived;

  constructor({ id, args, attempt, deadlineMs, function: functionName, cursor, arrived }) {
    this.id = id;
    this.args = args;
    this.attempt = attempt;
    // Budget left when the caller sent the request; null when it set no deadline.
    this.deadlineMs = deadlineMs;
    this.function = functionName;
    this.cursor = cursor;
    this.#arrived = arrived; // performance.now() when the request arrived
  }

  /** Milliseconds left before the caller gives up (never below 0); null without a deadline. */
  remainingMs() {
    if (this.deadlineMs === null) return null;
    return Math.max(0, Math.trunc(this.deadlineMs - (performance.now() - this.#arrived)));
  }
}

module.exports = { Context, FunctionError };
