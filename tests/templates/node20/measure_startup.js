/**
 * Measures how long a node20 replica takes from spawn to its first 200 on /healthz.
 *
 * Usage (from the repository root): /usr/bin/node tests/templates/node20/measure_startup.js [runs]
 * Uses the example function examples/node20-linecount. Not part of the test suite.
 */

'use strict';

const { spawn } = require('node:child_process');
const http = require('node:http');
const net = require('node:net');
const path = require('node:path');

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const TEMPLATE_DIR = path.join(REPO_ROOT, 'templates', 'node20');
const FUNCTION_DIR = path.join(REPO_ROOT, 'examples', 'node20-linecount');

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

function healthy(port) {
  return new Promise((resolve) => {
    const request = http.get({ host: '127.0.0.1', port, path: '/healthz', agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    request.on('error', () => resolve(false));
  });
}

async function measureOnce() {
  const port = await freePort();
  const env = { ...process.env, EOFAAS_PORT: String(port), EOFAAS_FUNCTION_DIR: FUNCTION_DIR };
  const started = performance.now();
  const child = spawn('/usr/bin/node', ['runtime/server.js'], {
    cwd: TEMPLATE_DIR,
    env,
    stdio: 'ignore',
  });
  let exited = null;
  child.on('exit', (code) => (exited = code));
  try {
    while (!(await healthy(port))) {
      if (exited !== null) throw new Error(`replica exited with ${exited}`);
      await new Promise((resolve) => setTimeout(resolve, 0.5));
    }
    return performance.now() - started;
  } finally {
    child.kill('SIGTERM');
    if (exited === null) await new Promise((resolve) => child.on('exit', resolve));
  }
}

async function main() {
  const runs = Number(process.argv[2] ?? 20);
  const samples = [];
  for (let i = 0; i < runs; i++) samples.push(await measureOnce());
  samples.sort((a, b) => a - b);
  const median =
    runs % 2 ? samples[(runs - 1) / 2] : (samples[runs / 2 - 1] + samples[runs / 2]) / 2;
  const ms = (value) => `${value.toFixed(1)} ms`;
  console.log(
    `spawn -> first 200 /healthz over ${runs} runs: min ${ms(samples[0])}, ` +
      `median ${ms(median)}, max ${ms(samples[runs - 1])}`,
  );
}

main();
