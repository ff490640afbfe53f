/**
 * Checks of a template's Dockerfile against a rendered bundle, without a Docker engine:
 * - it parses, and dockerfile-utils (npm, installed under tools/) reports nothing;
 * - every COPY/ADD source from the build context exists in the bundle;
 * - the final stage is a production image: a numeric non-root USER, EOFAAS_HOST=0.0.0.0 and
 *   EOFAAS_PORT=8080, the command template.yaml's `run` (exec form, so SIGTERM reaches the
 *   runtime), the bundle at the WORKDIR `run` starts in, no VOLUME or TMPDIR outside /tmp;
 * - startImage() runs that command the way a pod with a read-only root file system and a writable
 *   /tmp would, with the host's interpreters (see there).
 * The base image's ENTRYPOINT, if any, is taken to exec its arguments, as the official python,
 * node and php images' entrypoints do.
 */

'use strict';

const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const path = require('node:path');
const { createRequire } = require('node:module');
const { isDeepStrictEqual } = require('node:util');

const dockerfile = require('./dockerfile');

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const toolsRequire = createRequire(path.join(REPO_ROOT, 'tools', 'package.json'));
const { validate, ValidationSeverity } = toolsRequire('dockerfile-utils');
const YAML = toolsRequire('yaml');

const BWRAP = '/usr/bin/bwrap';
// The PATH Docker gives a container whose image sets none.
const IMAGE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
// Every rule dockerfile-utils lets us configure, as an error.
const LINT_SETTINGS = Object.fromEntries(
  [
    'deprecatedMaintainer',
    'directiveCasing',
    'emptyContinuationLine',
    'instructionCasing',
    'instructionCmdMultiple',
    'instructionEntrypointMultiple',
    'instructionHealthcheckMultiple',
    'instructionJSONInSingleQuotes',
    'instructionWorkdirRelative',
  ].map((rule) => [rule, ValidationSeverity.ERROR]),
);
const SEVERITY = { 1: 'error', 2: 'warning', 3: 'information', 4: 'hint' };

/** Regular files under `dir` (symbolic links to files read through), relative, sorted. */
function listFiles(dir) {
  const files = [];
  const walk = (relative) => {
    for (const entry of fs.readdirSync(path.join(dir, relative), { withFileTypes: true })) {
      const rel = path.posix.join(relative, entry.name);
      if (entry.isDirectory()) walk(rel);
      else if (fs.statSync(path.join(dir, rel), { throwIfNoEntry: false })?.isFile())
        files.push(rel);
    }
  };
  walk('');
  return files.sort();
}

function copyFile(from, to) {
  fs.mkdirSync(path.dirname(to), { recursive: true });
  fs.writeFileSync(to, fs.readFileSync(from));
}

/**
 * Renders a bundle into `dest` as the control plane's LocalBuilder does: the template's files
 * (links to files read through, caches left out) plus the function's files under function/.
 */
function renderBundle(templateDir, functionDir, dest) {
  const isCache = (rel) => rel.includes('__pycache__') || rel.includes('node_modules');
  for (const rel of listFiles(templateDir).filter((f) => !isCache(f))) {
    copyFile(path.join(templateDir, rel), path.join(dest, rel));
  }
  for (const rel of listFiles(functionDir)) {
    copyFile(path.join(functionDir, rel), path.join(dest, 'function', rel));
  }
  return dest;
}

function readTemplate(dir) {
  return YAML.parse(fs.readFileSync(path.join(dir, 'template.yaml'), 'utf8'));
}

function isDirectory(file) {
  return fs.statSync(file, { throwIfNoEntry: false })?.isDirectory() ?? false;
}

/** One path segment of a wildcard source (Go's filepath.Match: *, ?, [class]) as a RegExp. */
function segmentPattern(segment) {
  let source = '';
  for (let k = 0; k < segment.length; k++) {
    const c = segment[k];
    if (c === '*') {
      source += '.*';
    } else if (c === '?') {
      source += '.';
    } else if (c === '[') {
      const end = segment.indexOf(']', k + 2);
      if (end < 0) throw new Error(`bad pattern ${segment}`);
      const body = segment.slice(k + 1, end).replace(/\\/g, '\\\\');
      source += `[${body.startsWith('^') ? `^${body.slice(1)}` : body}]`;
      k = end;
    } else {
      source += c.replace(/[.+^${}()|\]\\]/g, '\\$&');
    }
  }
  return new RegExp(`^${source}$`);
}

/**
 * What a COPY/ADD source names in the build context: the relative paths of the files and
 * directories it matches. Throws when the source leaves the context.
 */
function matchSources(contextDir, source) {
  const clean = path.posix.normalize(source.replace(/^\/+/, '') || '.');
  if (clean === '..' || clean.startsWith('../')) throw new Error('outside the build context');
  let matches = ['.'];
  for (const segment of clean.split('/').filter((s) => s !== '.')) {
    const next = [];
    const pattern = /[*?[]/.test(segment) ? segmentPattern(segment) : null;
    for (const dir of matches) {
      const full = path.join(contextDir, dir);
      if (pattern) {
        if (!isDirectory(full)) continue;
        for (const name of fs.readdirSync(full).sort()) {
          if (pattern.test(name)) next.push(path.posix.join(dir, name));
        }
      } else if (fs.existsSync(path.join(full, segment))) {
        next.push(path.posix.join(dir, segment));
      }
    }
    matches = next;
  }
  return matches;
}

function isContextSource(keyword, source) {
  if (source.startsWith('<<')) return false; // a heredoc
  return !(keyword === 'ADD' && /^(https?:\/\/|git@|git:\/\/)/.test(source));
}

/**
 * Where a stage's COPY/ADD instructions put the build context's files: image path → context path.
 * Copies from other stages or images and remote sources are left out.
 */
function imageFiles(stage, contextDir) {
  const files = new Map();
  for (const copy of stage.copies) {
    if (copy.from !== null) continue;
    // Sources that cannot be resolved are sourceProblems(); here they copy nothing.
    const matched = copy.sources
      .filter((source) => isContextSource(copy.keyword, source) && !source.includes('$'))
      .flatMap((source) => {
        try {
          return matchSources(contextDir, source);
        } catch {
          return [];
        }
      });
    const destIsDir =
      copy.destIsDir ||
      matched.length > 1 ||
      [...files.keys()].some((f) => f.startsWith(`${copy.dest}/`));
    for (const rel of matched) {
      if (isDirectory(path.join(contextDir, rel))) {
        for (const file of listFiles(path.join(contextDir, rel))) {
          files.set(path.posix.join(copy.dest, file), path.posix.join(rel, file));
        }
      } else {
        files.set(
          destIsDir ? path.posix.join(copy.dest, path.posix.basename(rel)) : copy.dest,
          rel,
        );
      }
    }
  }
  return files;
}

/** dockerfile-utils' diagnostics, every configurable rule an error. */
function lintProblems(text) {
  return validate(text, LINT_SETTINGS).map(
    (d) =>
      `Dockerfile:${d.range.start.line + 1}: ${d.message} ` +
      `(dockerfile-utils ${SEVERITY[d.severity]})`,
  );
}

/** COPY/ADD sources that are not in the bundle. */
function sourceProblems(stages, bundleDir) {
  const problems = new Set(); // a stage built FROM another repeats that one's copies
  for (const copy of stages.flatMap((stage) => stage.copies)) {
    if (copy.from !== null) continue; // --from=<stage or image>: not the build context
    for (const source of copy.sources.filter((s) => isContextSource(copy.keyword, s))) {
      const where = `Dockerfile:${copy.line}: ${copy.keyword} source ${source}`;
      if (source.includes('$')) {
        problems.add(`${where}: a variable in a source cannot be checked; write the path`);
        continue;
      }
      try {
        if (matchSources(bundleDir, source).length === 0) {
          problems.add(`${where}: no such file in the rendered bundle`);
        }
      } catch (error) {
        problems.add(`${where}: ${error.message}`);
      }
    }
  }
  return [...problems];
}

/** The argv the image runs, or a problem. */
function imageCommand(stage) {
  for (const [name, value] of Object.entries({ ENTRYPOINT: stage.entrypoint, CMD: stage.cmd })) {
    if (value?.shell !== undefined) {
      return {
        problem:
          `${name} ${value.shell} is in shell form: /bin/sh, not the runtime, would get ` +
          'SIGTERM; use the JSON form',
      };
    }
  }
  if (!stage.entrypoint && !stage.cmd) {
    return { problem: "no CMD or ENTRYPOINT: the base image's command would run" };
  }
  return { argv: [...(stage.entrypoint?.exec ?? []), ...(stage.cmd?.exec ?? [])] };
}

function isUnderTmp(file) {
  const clean = path.posix.resolve('/', file);
  return clean === '/tmp' || clean.startsWith('/tmp/');
}

/** What keeps the final stage from being the production image of `template`. */
function productionProblems(stage, template, bundleDir) {
  const problems = [];
  const [uid] = (stage.user ?? '').split(':');
  if (stage.user === undefined) {
    problems.push('no USER: the replica would run as root');
  } else if (!/^\d+$/.test(uid)) {
    problems.push(
      `USER ${stage.user}: give a numeric UID, so that Kubernetes' runAsNonRoot can verify it`,
    );
  } else if (Number(uid) === 0) {
    problems.push(`USER ${stage.user}: the replica would run as root`);
  }
  for (const [name, value] of Object.entries({ EOFAAS_HOST: '0.0.0.0', EOFAAS_PORT: '8080' })) {
    if (stage.env.get(name) !== value) {
      problems.push(
        `ENV ${name} is ${stage.env.get(name) ?? 'unset'}: ` +
          'a replica in a pod listens on 0.0.0.0:8080',
      );
    }
  }
  const command = imageCommand(stage);
  if (command.problem) {
    problems.push(command.problem);
  } else if (!isDeepStrictEqual(command.argv, template.run)) {
    problems.push(
      `the image runs ${JSON.stringify(command.argv)}, ` +
        `template.yaml runs ${JSON.stringify(template.run)}`,
    );
  }
  // template.yaml's run starts in the bundle root: the image must hold the bundle at WORKDIR.
  const files = imageFiles(stage, bundleDir);
  const missing = listFiles(bundleDir).filter(
    (rel) =>
      rel !== 'Dockerfile' &&
      rel !== '.dockerignore' &&
      files.get(path.posix.join(stage.workdir, rel)) !== rel,
  );
  if (missing.length > 0) {
    const more = missing.length > 5 ? ` and ${missing.length - 5} more` : '';
    problems.push(
      `WORKDIR ${stage.workdir} lacks bundle files: ${missing.slice(0, 5).join(', ')}${more}`,
    );
  }
  for (const volume of stage.volumes.filter((v) => !isUnderTmp(v))) {
    problems.push(`VOLUME ${volume}: the image would need a writable mount outside /tmp`);
  }
  const tmpdir = stage.env.get('TMPDIR');
  if (tmpdir !== undefined && !isUnderTmp(tmpdir)) {
    problems.push(`ENV TMPDIR=${tmpdir}: scratch files belong under /tmp, the only writable place`);
  }
  return problems;
}

/** Reads the bundle's Dockerfile and template.yaml: the stages and everything wrong with them. */
function checkBundle(bundleDir) {
  const text = fs.readFileSync(path.join(bundleDir, 'Dockerfile'), 'utf8');
  const template = readTemplate(bundleDir);
  let stages;
  try {
    stages = dockerfile.describeImage(dockerfile.parse(text));
  } catch (error) {
    return {
      stages: null,
      problems: [`Dockerfile does not parse: ${error.message}`, ...lintProblems(text)],
    };
  }
  const problems = [
    ...lintProblems(text),
    ...sourceProblems(stages, bundleDir),
    ...productionProblems(stages[stages.length - 1], template, bundleDir),
  ];
  return { stages, problems };
}

/** True when bubblewrap can run a command as another user in new namespaces here. */
function sandboxAvailable() {
  const probe = ['--unshare-user', '--uid', '4242', '--ro-bind', '/', '/', '--', '/bin/true'];
  return fs.existsSync(BWRAP) && spawnSync(BWRAP, probe, { stdio: 'ignore' }).status === 0;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Runs the final stage's command as a pod with readOnlyRootFilesystem and an emptyDir on /tmp
 * would, but with the host's interpreters: under bubblewrap, as the image's USER, with its ENV
 * (EOFAAS_PORT moved to a free port), in its WORKDIR holding exactly the files the Dockerfile
 * copies there (staged under `scratchDir`). The root file system is read-only, /tmp a fresh tmpfs,
 * `dataRoots` are mounted read-only. Returns {port, child, output()}; stop it with stopImage().
 */
async function startImage(bundleDir, stage, scratchDir, dataRoots) {
  const command = imageCommand(stage);
  if (command.problem) throw new Error(command.problem);
  const appDir = path.join(scratchDir, 'app');
  fs.mkdirSync(appDir, { recursive: true, mode: 0o755 });
  fs.chmodSync(scratchDir, 0o755);
  for (const [imagePath, rel] of imageFiles(stage, bundleDir)) {
    const inWorkdir = path.posix.relative(stage.workdir, imagePath);
    if (inWorkdir.startsWith('..')) continue;
    copyFile(path.join(bundleDir, rel), path.join(appDir, inWorkdir));
  }
  // Docker runs an image without USER as root, and resolves names in the image (not here).
  const [user, group] = (stage.user ?? '0').split(':');
  const uid = /^\d+$/.test(user) ? user : '65534';
  const gid = /^\d+$/.test(group ?? '') ? group : uid;
  const args = ['--unshare-user', '--uid', uid, '--gid', gid, '--die-with-parent'];
  args.push('--unshare-pid', '--unshare-ipc', '--unshare-uts');
  args.push('--ro-bind', '/usr', '/usr', '--ro-bind', '/etc', '/etc');
  for (const dir of ['/bin', '/sbin', '/lib', '/lib32', '/lib64']) {
    const info = fs.lstatSync(dir, { throwIfNoEntry: false });
    if (info?.isSymbolicLink()) args.push('--symlink', fs.readlinkSync(dir), dir);
    else if (info) args.push('--ro-bind', dir, dir);
  }
  args.push('--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp');
  args.push('--ro-bind', appDir, stage.workdir);
  for (const root of dataRoots) args.push('--ro-bind', root, root);
  // Last: everything mounted so far keeps its mode, the root itself becomes read-only.
  args.push('--remount-ro', '/', '--chdir', stage.workdir, '--', ...command.argv);

  const port = await freePort();
  const env = {
    PATH: IMAGE_PATH,
    HOME: '/',
    ...Object.fromEntries(stage.env),
    EOFAAS_PORT: String(port),
  };
  const child = spawn(BWRAP, args, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  child.exited = new Promise((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { port, child, output: () => output };
}

/** Stops a replica from startImage(): SIGTERM to its process group, SIGKILL after `graceMs`. */
async function stopImage({ child }, graceMs = 5000) {
  if (child.exitCode !== null || child.signalCode !== null) return child.exited;
  process.kill(-child.pid, 'SIGTERM');
  const timer = setTimeout(() => process.kill(-child.pid, 'SIGKILL'), graceMs);
  try {
    return await child.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** One HTTP request to 127.0.0.1:`port`: {status, headers, body}. */
function request(port, method, target, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method, path: target, agent: false, timeout: 10000 },
      (res) => {
        const chunks = [];
        res.on('data', (chunk) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${target}: timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** Polls /healthz until 200; throws with the replica's output if it exits or `timeoutMs` passes. */
async function waitHealthy(replica, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { exitCode, signalCode } = replica.child;
    if (exitCode !== null || signalCode !== null) {
      const status = exitCode ?? signalCode;
      throw new Error(`replica exited (${status}) before /healthz 200:\n${replica.output()}`);
    }
    const response = await request(replica.port, 'GET', '/healthz').catch(() => null);
    if (response?.status === 200) return;
    if (Date.now() > deadline)
      throw new Error(`no /healthz 200 within ${timeoutMs} ms:\n${replica.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

module.exports = {
  REPO_ROOT,
  checkBundle,
  renderBundle,
  request,
  sandboxAvailable,
  startImage,
  stopImage,
  waitHealthy,
};
