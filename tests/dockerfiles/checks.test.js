/**
 * Tests of the Dockerfile checks themselves: the parser reads every form, a good fixture passes,
 * and broken Dockerfiles (a missing COPY source first) are rejected with the reason.
 */

'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { after, before, describe, test } = require('node:test');

const checks = require('./checks');
const dockerfile = require('./dockerfile');

// A replica stand-in: writes a scratch file where FAKE_SCRATCH says, then answers every request
// with its uid and working directory.
const FAKE_RUNTIME = `import http.server, json, os
with open(os.environ["FAKE_SCRATCH"], "w") as scratch:
    scratch.write("scratch")
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"uid": os.getuid(), "cwd": os.getcwd()}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_POST = do_GET
    def log_message(self, *args):
        pass
address = (os.environ["EOFAAS_HOST"], int(os.environ["EOFAAS_PORT"]))
http.server.HTTPServer(address, Handler).serve_forever()
`;

const TEMPLATE_YAML = `name: fake
language: python
description: "a fixture"
handler: {file: handler.py, signature: "def handle(data, ctx)"}
run: ["/usr/bin/python3", "-B", "runtime/server.py"]
check: {command: ["/usr/bin/python3", "-m", "py_compile"], extensions: [".py"]}
concurrency: 1
image: "python:3.11-slim"
`;

// Every form the checks read: directives, a build stage, a --from copy, JSON and shell forms,
// flags, a wildcard, continuations with a comment line inside, both ENV forms.
const GOOD = `# syntax=docker/dockerfile:1
# A fixture image.
FROM python:3.11-slim AS build
RUN echo built > /built.txt

FROM python:3.11-slim
COPY --from=build /built.txt /opt/built.txt
WORKDIR /app
COPY --chown=0:0 ["template.yaml", "./"]
COPY runtime/*.py \\
# a comment line inside the instruction is dropped
     runtime/
COPY function/ function/
ENV EOFAAS_HOST=0.0.0.0 \\
    EOFAAS_PORT="8080"
ENV FAKE_SCRATCH /tmp/scratch
USER 10001:10001
VOLUME ["/tmp"]
EXPOSE 8080
CMD ["/usr/bin/python3", "-B", "runtime/server.py"]
`;

function withDockerfile(text) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dockerfile-self-'));
  fs.mkdirSync(path.join(dir, 'runtime'));
  fs.mkdirSync(path.join(dir, 'function'));
  fs.writeFileSync(path.join(dir, 'template.yaml'), TEMPLATE_YAML);
  fs.writeFileSync(path.join(dir, 'runtime', 'server.py'), FAKE_RUNTIME);
  fs.writeFileSync(
    path.join(dir, 'function', 'handler.py'),
    'def handle(data, ctx):\n    return {}\n',
  );
  fs.writeFileSync(path.join(dir, 'Dockerfile'), text);
  return dir;
}

/** The problems checkBundle finds in GOOD changed by `edit`. */
function problemsOf(edit) {
  const dir = withDockerfile(edit(GOOD));
  try {
    return checks.checkBundle(dir).problems;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('parser', () => {
  test('joins continued lines, drops comments and reads both forms', () => {
    const { instructions } = dockerfile.parse(GOOD);
    assert.deepEqual(
      instructions.map((i) => i.keyword),
      [
        'FROM',
        'RUN',
        'FROM',
        'COPY',
        'WORKDIR',
        'COPY',
        'COPY',
        'COPY',
        'ENV',
        'ENV',
        'USER',
        'VOLUME',
        'EXPOSE',
        'CMD',
      ],
    );
    const stage = dockerfile.describeImage(dockerfile.parse(GOOD))[1];
    assert.deepEqual(
      stage.copies.map(({ from, sources, dest }) => ({ from, sources, dest })),
      [
        { from: 'build', sources: ['/built.txt'], dest: '/opt/built.txt' },
        { from: null, sources: ['template.yaml'], dest: '/app' },
        { from: null, sources: ['runtime/*.py'], dest: '/app/runtime' },
        { from: null, sources: ['function/'], dest: '/app/function' },
      ],
    );
    assert.deepEqual(Object.fromEntries(stage.env), {
      EOFAAS_HOST: '0.0.0.0',
      EOFAAS_PORT: '8080',
      FAKE_SCRATCH: '/tmp/scratch',
    });
    assert.deepEqual(stage.cmd, { exec: ['/usr/bin/python3', '-B', 'runtime/server.py'] });
  });

  test('honours the escape directive and heredocs', () => {
    const parsed = dockerfile.parse(
      '# escape=`\nFROM scratch\nRUN a `\n  b\nCOPY <<EOF /x\nhello\nEOF\nUSER 1\n',
    );
    assert.equal(parsed.escape, '`');
    assert.deepEqual(
      parsed.instructions.map((i) => [i.keyword, i.args]),
      [
        ['FROM', 'scratch'],
        ['RUN', 'a   b'],
        ['COPY', '<<EOF /x'],
        ['USER', '1'],
      ],
    );
    assert.deepEqual(parsed.instructions[2].heredocs, [{ name: 'EOF', body: 'hello' }]);
  });

  test('splits shell words and tells JSON from shell form', () => {
    assert.deepEqual(dockerfile.words(`a "b c" 'd e' f\\ g`), ['a', 'b c', 'd e', 'f g']);
    assert.deepEqual(dockerfile.execForm('["a", "b"]'), ['a', 'b']);
    assert.equal(dockerfile.execForm("['a']"), null); // not JSON: Docker runs it in a shell
    assert.equal(dockerfile.execForm('python3 x.py'), null);
  });
});

describe('checks', () => {
  test('a good Dockerfile passes', () => {
    assert.deepEqual(
      problemsOf((text) => text),
      [],
    );
  });

  const broken = [
    [
      'a COPY source missing from the bundle',
      (t) => t.replace('COPY function/', 'COPY requirements.txt ./\nCOPY function/'),
      /Dockerfile:13: COPY source requirements.txt: no such file in the rendered bundle/,
    ],
    [
      'a wildcard that matches nothing',
      (t) => t.replace('runtime/*.py', 'runtime/*.js'),
      /COPY source runtime\/\*\.js: no such file/,
    ],
    [
      'a source outside the build context',
      (t) => t.replace('COPY function/', 'COPY ../secret ./\nCOPY function/'),
      /COPY source \.\.\/secret: outside the build context/,
    ],
    [
      'no USER',
      (t) => t.replace('USER 10001:10001\n', ''),
      /no USER: the replica would run as root/,
    ],
    [
      'USER root',
      (t) => t.replace('USER 10001:10001', 'USER 0'),
      /USER 0: the replica would run as root/,
    ],
    [
      'a named USER',
      (t) => t.replace('USER 10001:10001', 'USER eofaas'),
      /USER eofaas: give a numeric UID/,
    ],
    [
      'a loopback EOFAAS_HOST',
      (t) => t.replace('EOFAAS_HOST=0.0.0.0', 'EOFAAS_HOST=127.0.0.1'),
      /ENV EOFAAS_HOST is 127\.0\.0\.1/,
    ],
    [
      'a CMD other than run',
      (t) => t.replace('"-B", ', ''),
      /the image runs \["\/usr\/bin\/python3","runtime\/server\.py"\]/,
    ],
    [
      'a shell-form CMD',
      (t) => t.replace(/CMD .*/, 'CMD /usr/bin/python3 -B runtime/server.py'),
      /shell form/,
    ],
    [
      'a VOLUME outside /tmp',
      (t) => t.replace('VOLUME ["/tmp"]', 'VOLUME /var/cache/app'),
      /VOLUME \/var\/cache\/app/,
    ],
    [
      'a TMPDIR outside /tmp',
      (t) => t.replace('ENV FAKE', 'ENV TMPDIR=/var/tmp\nENV FAKE'),
      /ENV TMPDIR=\/var\/tmp/,
    ],
    [
      'the bundle not at WORKDIR',
      (t) => t.replace('USER 10001', 'WORKDIR /srv\nUSER 10001'),
      /WORKDIR \/srv lacks bundle files/,
    ],
    [
      'a lint error',
      (t) => t.replace('EXPOSE 8080', 'EXPOSE http'),
      /Invalid containerPort: http \(dockerfile-utils error\)/,
    ],
    [
      'an unterminated heredoc',
      (t) => `${t}COPY <<EOF /app/x\nhello\n`,
      /does not parse: line \d+: heredoc EOF never ends/,
    ],
  ];
  for (const [name, edit, expected] of broken) {
    test(`rejects ${name}`, () => {
      const problems = problemsOf(edit);
      assert.ok(
        problems.some((p) => expected.test(p)),
        `expected ${expected}, got ${JSON.stringify(problems)}`,
      );
    });
  }
});

describe(
  'read-only run',
  { skip: !checks.sandboxAvailable() && 'bubblewrap cannot create user namespaces here' },
  () => {
    let dirs = [];
    after(() => dirs.forEach((dir) => fs.rmSync(dir, { recursive: true, force: true })));

    async function start(text) {
      const dir = withDockerfile(text);
      dirs.push(dir);
      const { stages } = checks.checkBundle(dir);
      return checks.startImage(dir, stages[stages.length - 1], path.join(dir, '.image'), []);
    }

    test('runs as the image user in its WORKDIR, scratch files in /tmp', async () => {
      const replica = await start(GOOD);
      try {
        await checks.waitHealthy(replica);
        const response = await checks.request(replica.port, 'GET', '/healthz');
        assert.deepEqual(JSON.parse(response.body), { uid: 10001, cwd: '/app' });
      } finally {
        await checks.stopImage(replica);
      }
    });

    test('a runtime that writes outside /tmp fails', async () => {
      const replica = await start(GOOD.replace('/tmp/scratch', '/app/scratch'));
      try {
        await assert.rejects(checks.waitHealthy(replica), /exited .*Read-only file system/s);
      } finally {
        await checks.stopImage(replica);
      }
    });
  },
);
