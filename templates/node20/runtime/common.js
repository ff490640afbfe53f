/**
 * What both threads of a node20 replica share: log lines and the JSON error body.
 */

'use strict';

const fs = require('node:fs');

const LOG_PREFIX = 'eofaas node20 runtime';

/**
 * Writes one line to stderr. A synchronous write: a worker thread's process.stderr goes through
 * the main thread, which may be busy loading or running the function.
 */
function log(message, separator = ': ') {
  try {
    fs.writeSync(2, `${LOG_PREFIX}${separator}${message}\n`);
  } catch {
    // stderr closed or full: the line is lost, the replica goes on.
  }
}

/** The body of every error answer: {"error": {type, message, ...extra}}. */
function errorBody(type, message, extra = {}) {
  return Buffer.from(JSON.stringify({ error: { type, message, ...extra } }), 'utf8');
}

module.exports = { errorBody, log };
