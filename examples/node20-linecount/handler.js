/**
 * Example node20 function: counts the lines of its chunk.
 *
 * args (optional): {"contains": "T32TQM"} counts only the lines containing that text.
 * Returns {"lines": n, "bytes": chunk size, "part": cursor part}; summing "lines" and "bytes" over
 * all chunks of a LINES-framed data set gives its line count and total size.
 */

'use strict';

const { FunctionError } = require('eofaas');

module.exports = async (data, ctx) => {
  const { contains } = ctx.args;
  if (contains !== undefined && contains !== null && typeof contains !== 'string') {
    throw new FunctionError('args.contains must be a string');
  }
  const needle = contains ? Buffer.from(contains, 'utf8') : null;
  let lines = 0;
  // Streamed: a chunk of any size is never held in memory at once.
  for await (const line of data) {
    if (needle === null || line.includes(needle)) lines++;
  }
  return { lines, bytes: data.tell(), part: data.cursor ? data.cursor.part : null };
};
