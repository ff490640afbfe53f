/**
 * Every rendered object (the golden files of tests/unit/control/k8s/golden/, which the C++ tests
 * compare byte for byte with the rendering) and everything `kubectl kustomize manifests/` renders,
 * validated against the Kubernetes schemas (validate.js). Also shows that the validator rejects
 * what the API server would.
 */

'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { test } = require('node:test');

const { validateObject, parseDocuments, kustomize, describe, REPO_ROOT } = require('./validate');

const GOLDEN_DIR = path.join(REPO_ROOT, 'tests', 'unit', 'control', 'k8s', 'golden');

function assertValid(objects, source) {
  assert.ok(objects.length > 0, `${source}: no objects`);
  const problems = [];
  for (const object of objects) {
    for (const error of validateObject(object)) problems.push(`${describe(object)}: ${error}`);
  }
  assert.deepEqual(problems, [], `${source} does not validate`);
}

const goldenFiles = fs.readdirSync(GOLDEN_DIR).filter((f) => f.endsWith('.yaml')).sort();

test('there are golden files to validate', () => {
  assert.ok(goldenFiles.length >= 5, `only ${goldenFiles.length} in ${GOLDEN_DIR}`);
});

for (const file of goldenFiles) {
  test(`golden ${file} validates`, () => {
    const text = fs.readFileSync(path.join(GOLDEN_DIR, file), 'utf8');
    assertValid(parseDocuments(text, file), file);
  });
}

test('manifests/ renders with kubectl kustomize and every object validates', () => {
  const objects = kustomize(path.join(REPO_ROOT, 'manifests'));
  assertValid(objects, 'manifests/');
  const kinds = objects.map((o) => o.kind).sort();
  for (const kind of ['Namespace', 'ServiceAccount', 'Role', 'RoleBinding', 'Deployment',
    'Service', 'PersistentVolumeClaim', 'HorizontalPodAutoscaler', 'ConfigMap', 'NetworkPolicy',
    'PodMonitor']) {
    assert.ok(kinds.includes(kind), `manifests/ has no ${kind}: ${kinds.join(', ')}`);
  }
});

test('manifests/base renders alone, for clusters without the Prometheus operator', () => {
  const objects = kustomize(path.join(REPO_ROOT, 'manifests', 'base'));
  assertValid(objects, 'manifests/base');
  assert.ok(!objects.some((o) => o.apiVersion.startsWith('monitoring.coreos.com/')));
});

// The validator is only worth something if it rejects what the API server would.
const deployment = () => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'ndvi-5jxks', namespace: 'eofaas-functions', labels: { a: 'b' } },
  spec: {
    selector: { matchLabels: { a: 'b' } },
    template: {
      metadata: { labels: { a: 'b' } },
      spec: { containers: [{ name: 'f', image: 'i' }] },
    },
  },
});

test('the validator accepts a minimal valid object', () => {
  assert.deepEqual(validateObject(deployment()), []);
});

for (const [what, mutate, expected] of [
  ['a missing required field', (d) => delete d.spec.template.spec.containers, /containers/],
  ['a wrong type', (d) => { d.spec.replicas = 'two'; }, /replicas must be integer/],
  ['an enum value out of range', (d) => { d.spec.strategy = { type: 'Sometimes' }; }, /allowed/],
  ['a name that is no DNS subdomain', (d) => { d.metadata.name = 'Ndvi_1'; }, /DNS subdomain/],
  ['a name longer than 253', (d) => { d.metadata.name = 'a'.repeat(254); }, /DNS subdomain/],
  ['a label value over 63 characters', (d) => { d.metadata.labels.a = 'b'.repeat(64); },
    /not a label value/],
  ['a label value ending in "-"', (d) => { d.metadata.labels.a = 'b-'; }, /not a label value/],
  ['a number where a label value goes', (d) => { d.metadata.labels.a = 3; }, /not a label value/],
  ['a missing namespace', (d) => delete d.metadata.namespace, /namespace/],
  ['an unknown kind', (d) => { d.kind = 'Deploymnt'; }, /no schema for apps\/v1 Deploymnt/],
]) {
  test(`the validator rejects ${what}`, () => {
    const object = deployment();
    mutate(object);
    const errors = validateObject(object);
    assert.ok(errors.some((e) => expected.test(e)), `${what}: ${JSON.stringify(errors)}`);
  });
}

test('Service names must be RFC 1035 labels', () => {
  const service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: '1ndvi', namespace: 'ns' },
    spec: { ports: [{ port: 8080 }] },
  };
  assert.ok(validateObject(service).some((e) => /RFC 1035/.test(e)));
  service.metadata.name = 'fn-1ndvi';
  assert.deepEqual(validateObject(service), []);
});

test('custom resources are validated by their own schema', () => {
  const monitor = {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PodMonitor',
    metadata: { name: 'eofaas', namespace: 'eofaas-system' },
    spec: { selector: {}, podMetricsEndpoints: [{ port: 9464 }] },
  };
  assert.ok(validateObject(monitor).some((e) => /port must be string/.test(e)));
});

test('YAML is read as Kubernetes reads it (1.1): an unquoted yes is no string', () => {
  const [object] = parseDocuments(
    'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: n}\ndata: {strict: yes}\n',
    'inline');
  assert.ok(validateObject(object).some((e) => /must be string/.test(e)));
});
