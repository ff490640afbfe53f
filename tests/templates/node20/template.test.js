/**
 * Tests of the node20 template as the control plane uses it: template.yaml and its check
 * command, the Dockerfile, and the example function over the example data set.
 */

'use strict';

const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { after, before, describe, test } = require('node:test');

const support = require('./support');

const TEMPLATE_YAML = fs.readFileSync(path.join(support.TEMPLATE_DIR, 'template.yaml'), 'utf8');
const DOCKERFILE = fs.readFileSync(path.join(support.TEMPLATE_DIR, 'Dockerfile'), 'utf8');

/** A flow sequence of template.yaml, e.g. `run: [...]`; written as JSON, so read as JSON. */
function yamlList(key) {
  const match = new RegExp(`^\\s*${key}: (\\[.*\\])$`, 'm').exec(TEMPLATE_YAML);
  assert.ok(match, `template.yaml has no ${key}: [...] line`);
  return JSON.parse(match[1]);
}

describe('template.yaml', () => {
  test('holds exactly the keys the control plane accepts', () => {
    const top = [...TEMPLATE_YAML.matchAll(/^([a-z_]+):/gm)].map((m) => m[1]);
    assert.deepEqual(top.sort(), [
      'check',
      'concurrency',
      'dependencies',
      'description',
      'handler',
      'image',
      'language',
      'name',
      'run',
    ]);
    const nested = [...TEMPLATE_YAML.matchAll(/^ {2}([a-z_]+):/gm)].map((m) => m[1]);
    assert.deepEqual(nested.sort(), [
      'command',
      'command',
      'directory',
      'extensions',
      'file',
      'manifest',
      'signature',
    ]);
    assert.match(TEMPLATE_YAML, /^name: node20$/m);
    assert.match(TEMPLATE_YAML, /^ {2}file: handler\.js$/m);
  });

  test('runs the runtime with the system interpreter, as the Dockerfile does', () => {
    const run = yamlList('run');
    assert.deepEqual(run, [support.NODE, 'runtime/server.js']);
    assert.ok(fs.existsSync(path.join(support.TEMPLATE_DIR, run[1])));
    const cmd = /^CMD (\[.*\])$/m.exec(DOCKERFILE);
    assert.deepEqual(JSON.parse(cmd[1]), run);
    // Every COPY source exists in a rendered bundle (template files plus function/).
    for (const [, source] of DOCKERFILE.matchAll(/^COPY (?:--\S+ )*(\S+) \S+$/gm)) {
      assert.ok(source === '.' || fs.existsSync(path.join(support.TEMPLATE_DIR, source)), source);
    }
  });

  describe('check command', () => {
    let bundle;
    before(() => {
      bundle = fs.mkdtempSync(path.join(os.tmpdir(), 'eofaas-node20-check-'));
      fs.mkdirSync(path.join(bundle, 'function', 'lib'), { recursive: true });
    });
    after(() => fs.rmSync(bundle, { recursive: true, force: true }));

    /** Runs check.command over the given function files, as the control plane does. */
    function check(files) {
      for (const [name, text] of Object.entries(files)) {
        fs.writeFileSync(path.join(bundle, 'function', name), text);
      }
      const extensions = yamlList('extensions');
      const sources = Object.keys(files)
        .filter((name) => extensions.includes(path.extname(name)))
        .map((name) => `function/${name}`);
      const [program, ...args] = yamlList('command');
      return spawnSync(program, [...args, ...sources], { cwd: bundle, encoding: 'utf8' });
    }

    test('accepts valid CommonJS and ES modules', () => {
      const result = check({
        'handler.js': "module.exports = async (data, ctx) => require('./lib/util.cjs').x;\n",
        'lib/util.cjs': 'exports.x = 1;\n',
        'lib/esm.mjs': 'export const y = await Promise.resolve(2);\n',
      });
      assert.equal(result.status, 0, result.stderr);
    });

    test('rejects a syntax error and names every failing file', () => {
      const result = check({
        'handler.js': 'module.exports = async (data, ctx) => {\n',
        'lib/util.cjs': 'exports.x = 1;\n',
        'lib/esm.mjs': 'export const = 2;\n',
      });
      assert.notEqual(result.status, 0);
      assert.match(result.stderr, /function\/handler\.js:\d/);
      assert.match(result.stderr, /function\/lib\/esm\.mjs:\d/);
      assert.match(result.stderr, /SyntaxError/);
    });
  });
});

describe('example node20-linecount', () => {
  const dataDir = path.join(support.REPO_ROOT, 'examples', 'data', 'scenes');
  let replica;
  before(async () => {
    replica = await new support.Replica(
      path.join(support.REPO_ROOT, 'examples', 'node20-linecount'),
    ).waitHealthy();
  });
  after(() => replica.stop());

  /** Maps the function over the data set in LINES chunks, as the proxy does; sums the results. */
  async function mapScenes(chunkSize, args) {
    const total = { lines: 0, bytes: 0 };
    for (const name of fs.readdirSync(dataDir).sort()) {
      const file = path.join(dataDir, name);
      const size = fs.statSync(file).size;
      const parts = Math.ceil(size / chunkSize);
      for (let part = 0; part < parts; part++) {
        const offset = part * chunkSize;
        const cursor = { uri: `file://${file}`, offset, framing: 'FRAMING_LINES', part, parts };
        if (part < parts - 1) cursor.length = chunkSize;
        const response = await replica.invoke({ cursor, args });
        assert.equal(response.status, 200, response.text());
        const result = response.json();
        assert.equal(result.part, part);
        total.lines += result.lines;
        total.bytes += result.bytes;
      }
    }
    return total;
  }

  function expected(contains) {
    const total = { lines: 0, bytes: 0 };
    for (const name of fs.readdirSync(dataDir)) {
      const content = fs.readFileSync(path.join(dataDir, name));
      const lines = content.toString('utf8').split('\n');
      if (lines.at(-1) === '') lines.pop();
      total.lines += lines.filter((line) => !contains || line.includes(contains)).length;
      total.bytes += content.length;
    }
    return total;
  }

  test('sums to the data set line count and size for any chunk size', async () => {
    for (const chunkSize of [97, 500, 1 << 20]) {
      assert.deepEqual(await mapScenes(chunkSize, {}), expected(null), `chunk size ${chunkSize}`);
    }
  });

  test('counts only the lines containing args.contains', async () => {
    const total = await mapScenes(300, { contains: 'T32TQM' });
    assert.deepEqual(total, expected('T32TQM'));
    assert.ok(total.lines > 0);
  });

  test('a non-string args.contains is a handled error', async () => {
    const response = await replica.invoke({ args: { contains: 5 } });
    assert.equal(response.headers['x-eofaas-function-error'], 'handled');
    assert.deepEqual(response.json(), {
      error: { type: 'FunctionError', message: 'args.contains must be a string' },
    });
  });
});
