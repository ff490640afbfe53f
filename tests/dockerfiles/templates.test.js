/**
 * Every template's Dockerfile, checked without a Docker engine against a bundle rendered as the
 * control plane renders it (the template plus its example under function/): see checks.js.
 */

'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { after, before, describe, test } = require('node:test');

const checks = require('./checks');

const TEMPLATES_DIR = path.join(checks.REPO_ROOT, 'templates');
const EXAMPLES_DIR = path.join(checks.REPO_ROOT, 'examples');
const DATA_DIR = path.join(EXAMPLES_DIR, 'data');

const templates = fs
  .readdirSync(TEMPLATES_DIR)
  .filter((name) => fs.existsSync(path.join(TEMPLATES_DIR, name, 'template.yaml')))
  .sort();

/** examples/<template>-*, not claimed by a template with a longer name (python3-sci vs python3). */
function exampleOf(name) {
  const owner = (example) =>
    templates.filter((t) => example.startsWith(`${t}-`)).sort((a, b) => b.length - a.length)[0];
  const found = fs
    .readdirSync(EXAMPLES_DIR)
    .filter((example) => owner(example) === name)
    .sort();
  return found.length > 0 ? path.join(EXAMPLES_DIR, found[0]) : null;
}

/** An invocation the template's example answers (see the examples' READMEs). */
function sampleInvocation(name) {
  const cursor =
    name === 'python3-sci'
      ? { uri: `file://${DATA_DIR}/rasters/b04.f32`, framing: 'FRAMING_NONE' }
      : { uri: `file://${DATA_DIR}/scenes/2024-03.txt`, framing: 'FRAMING_LINES' };
  return JSON.stringify({
    id: 'dockerfile-check',
    cursor,
    args: {},
    deadline_ms: 10000,
    attempt: 1,
  });
}

const sandbox = checks.sandboxAvailable();

test('the four templates are checked', () => {
  for (const name of ['python3', 'python3-sci', 'node20', 'php8'])
    assert.ok(templates.includes(name), name);
});

for (const name of templates) {
  describe(`templates/${name}/Dockerfile`, () => {
    let temp;
    let bundle;
    let checked;

    before(() => {
      temp = fs.mkdtempSync(path.join(os.tmpdir(), `dockerfile-${name}-`));
      const example = exampleOf(name);
      assert.ok(example, `no examples/${name}-* to render ${name} with`);
      bundle = checks.renderBundle(
        path.join(TEMPLATES_DIR, name),
        example,
        path.join(temp, 'bundle'),
      );
      checked = checks.checkBundle(bundle);
    });

    after(() => fs.rmSync(temp, { recursive: true, force: true }));

    test('parses, lints clean, copies only what the bundle has and is a production image', () => {
      assert.deepEqual(checked.problems, []);
    });

    test(
      'its command serves /invoke as the image user on a read-only root file system',
      {
        skip: !sandbox && 'bubblewrap cannot create user namespaces here',
      },
      async () => {
        assert.ok(checked.stages, 'the Dockerfile does not parse');
        const stage = checked.stages[checked.stages.length - 1];
        const replica = await checks.startImage(bundle, stage, path.join(temp, 'image'), [
          DATA_DIR,
        ]);
        try {
          await checks.waitHealthy(replica);
          const response = await checks.request(
            replica.port,
            'POST',
            '/invoke',
            sampleInvocation(name),
          );
          assert.equal(response.status, 200, replica.output());
          assert.equal(
            response.headers['x-eofaas-function-error'],
            undefined,
            response.body.toString(),
          );
        } finally {
          await checks.stopImage(replica);
        }
      },
    );
  });
}
