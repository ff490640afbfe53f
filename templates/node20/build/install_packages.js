/**
 * Installs the dependencies of a function's package.json into its bundle; the control plane runs
 * it at build time from the bundle root:
 *
 *   node build/install_packages.js function/package.json function/node_modules SCRATCH
 *
 * Dependencies already in function/node_modules (shipped with the function, or installed by an
 * earlier attempt) are kept; otherwise `npm install --omit=dev` runs in SCRATCH, without install
 * scripts, and its node_modules replaces function/node_modules, where the handler's require()
 * finds it. Exits 0 once every dependency is there; otherwise the last line names the manifest
 * and what is missing, and the exit code is 1.
 *
 * A dependency counts as present when its range is "*", a version or a comparison of full
 * versions (1.2.3, ^1.2.3, ~1.2.3, >=1.2.3 <2.0.0, alternatives joined by ||) and the installed
 * version matches. Anything else (tags, URLs, file: and git dependencies) is left to npm.
 */

'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

// A silent registry fails the build in seconds, not minutes.
const NPM_OPTIONS = [
  '--omit=dev',
  '--ignore-scripts',
  '--install-links',
  '--no-audit',
  '--no-fund',
  '--no-update-notifier',
  '--fetch-timeout=10000',
  '--fetch-retries=0',
  '--loglevel=error',
];
// npm reads these beside package.json when the function ships them.
const LOCK_FILES = ['package-lock.json', 'npm-shrinkwrap.json', '.npmrc'];

/** [major, minor, patch] of "1.2.3"; null for anything else (pre-releases included). */
function parse(version) {
  const match = /^v?(\d+)\.(\d+)\.(\d+)$/.exec(version);
  return match && match.slice(1).map(Number);
}

function compare(a, b) {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

/** The version after `v` with component `i` raised: the exclusive upper bound of ^ and ~. */
function bump(v, i) {
  return v.map((n, j) => (j < i ? n : j === i ? n + 1 : 0));
}

function clauseHolds(installed, clause) {
  if (clause === '' || clause === '*') return true;
  const match = /^(\^|~|>=|<=|>|<|=)?v?(\d+\.\d+\.\d+)$/.exec(clause);
  if (!match) return false;
  const wanted = parse(match[2]);
  const order = compare(installed, wanted);
  switch (match[1]) {
    case '^': {
      // The first non-zero component may not change: ^1.2.3 is <2.0.0, ^0.2.3 is <0.3.0.
      const first = wanted.findIndex((n) => n > 0);
      return order >= 0 && compare(installed, bump(wanted, first < 0 ? 2 : first)) < 0;
    }
    case '~':
      return order >= 0 && compare(installed, bump(wanted, 1)) < 0;
    case '>=':
      return order >= 0;
    case '>':
      return order > 0;
    case '<=':
      return order <= 0;
    case '<':
      return order < 0;
    default:
      return order === 0;
  }
}

function satisfies(version, range) {
  const installed = parse(version);
  return (
    installed !== null &&
    range.split('||').some((alternative) =>
      alternative
        .trim()
        .split(/\s+/)
        .every((clause) => clauseHolds(installed, clause)),
    )
  );
}

/** Whether function/node_modules holds `name` at a version `range` accepts. */
function present(target, name, range) {
  try {
    const manifest = JSON.parse(fs.readFileSync(path.join(target, name, 'package.json'), 'utf8'));
    return satisfies(manifest.version, range);
  } catch {
    return false;
  }
}

/** Runs npm install for `pkg` (package.json of `functionDir`) in `scratch`: null, or why not. */
function npmInstall(pkg, functionDir, scratch) {
  // Without devDependencies: npm resolves them even with --omit=dev, and they need not exist.
  // file: dependencies stay relative to the function, not to the scratch directory.
  const { devDependencies, ...production } = pkg;
  production.dependencies = Object.fromEntries(
    Object.entries(pkg.dependencies).map(([name, spec]) => [
      name,
      spec.startsWith('file:') ? `file:${path.resolve(functionDir, spec.slice(5))}` : spec,
    ]),
  );
  fs.writeFileSync(path.join(scratch, 'package.json'), JSON.stringify(production));
  for (const file of LOCK_FILES) {
    const source = path.join(functionDir, file);
    if (fs.existsSync(source)) fs.copyFileSync(source, path.join(scratch, file));
  }
  console.log(`$ npm install ${NPM_OPTIONS.join(' ')}`);
  const result = spawnSync('npm', ['install', ...NPM_OPTIONS], { cwd: scratch, stdio: 'inherit' });
  if (result.error) return `npm cannot run (${result.error.message})`;
  return result.status === 0 ? null : 'npm could not install it (is the registry reachable?)';
}

function main(manifest, target, scratch) {
  const name = path.basename(manifest);
  let pkg;
  try {
    pkg = JSON.parse(fs.readFileSync(manifest, 'utf8'));
    pkg.dependencies ??= {};
  } catch (error) {
    console.log(`${name}: ${error.message}`);
    return 1;
  }
  const missing = Object.entries(pkg.dependencies)
    .filter(([dependency, range]) => !present(target, dependency, range))
    .map(([dependency, range]) => `${dependency}@${range}`);
  if (missing.length === 0) {
    console.log(`${name}: every dependency is in ${target}`);
    return 0;
  }
  console.log(`${name}: installing ${missing.join(', ')} into ${target}`);
  const failure = npmInstall(pkg, path.dirname(manifest), scratch);
  if (failure) {
    console.log(`${name}: cannot install ${missing.join(', ')}: not in ${target}, and ${failure}`);
    return 1;
  }
  fs.rmSync(target, { recursive: true, force: true });
  fs.renameSync(path.join(scratch, 'node_modules'), target);
  console.log(`${name}: installed ${missing.join(', ')}`);
  return 0;
}

process.exitCode = main(...process.argv.slice(2));
