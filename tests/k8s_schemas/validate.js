/**
 * Validation of Kubernetes objects against the official schemas, without a cluster:
 * - each object's apiVersion/kind picks its model from kubernetes-models (the Kubernetes
 *   OpenAPI schemas) or @kubernetes-models/prometheus-operator (the operator's CRD schemas, for
 *   PodMonitor and ServiceMonitor), both npm packages installed under tools/ by scripts/setup.sh;
 *   the model's validate() checks types, required fields, enums and formats. An object of a kind
 *   neither package knows is an error, never skipped.
 * - the schemas leave out what the API server checks in code, so these are checked too: object
 *   names (DNS subdomain; DNS label for Namespaces, RFC 1035 label for Services), the namespace,
 *   label keys and values, annotation keys. Like the schemas, nothing here rejects a field the
 *   schema does not name (the API server drops or rejects those depending on its field
 *   validation setting).
 * Documents are read as YAML 1.1, as Kubernetes reads them, so an unquoted `yes` or `0.0.0.0`
 * reaches the schema as what the API server would see.
 *
 * Usage as a command: node tests/k8s_schemas/validate.js FILE... (exit 1 on any error).
 */

'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { createRequire } = require('node:module');

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const toolsRequire = createRequire(path.join(REPO_ROOT, 'tools', 'package.json'));
const YAML = toolsRequire('yaml');

// apiVersion's group/version → the module exporting its models.
const MODEL_PACKAGES = ['kubernetes-models', '@kubernetes-models/prometheus-operator'];

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const RFC1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
// Kinds that live outside namespaces, among those eofaas uses.
const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding',
  'CustomResourceDefinition', 'PersistentVolume', 'StorageClass']);

/** The model class of `apiVersion`/`kind`, or null when no package has one. */
function modelFor(apiVersion, kind) {
  for (const pkg of MODEL_PACKAGES) {
    let models;
    try {
      models = toolsRequire(`${pkg}/${apiVersion}`);
    } catch {
      continue;
    }
    if (typeof models[kind] === 'function') return models[kind];
  }
  return null;
}

function isDnsSubdomain(name) {
  return name.length <= 253 && name.split('.').every((part) => DNS_LABEL.test(part));
}

/** Errors of a label or annotation key: an optional DNS-subdomain prefix and a name. */
function keyErrors(key) {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : '';
  const name = key.slice(slash + 1);
  const errors = [];
  if (slash >= 0 && (!prefix || !isDnsSubdomain(prefix))) errors.push('prefix');
  if (name.length > 63 || !QUALIFIED_NAME.test(name)) errors.push('name');
  return errors.length ? [`key "${key}" has an invalid ${errors.join(' and ')}`] : [];
}

/** What the API server checks in code on metadata. */
function metadataErrors(object) {
  const errors = [];
  const metadata = object.metadata ?? {};
  const name = metadata.name;
  if (typeof name !== 'string' || !name) {
    errors.push('metadata.name is required');
  } else if (object.kind === 'Namespace' && !(name.length <= 63 && DNS_LABEL.test(name))) {
    errors.push(`metadata.name "${name}" is not a DNS label (63 characters at most)`);
  } else if (object.kind === 'Service' && !(name.length <= 63 && RFC1035_LABEL.test(name))) {
    errors.push(`metadata.name "${name}" is not an RFC 1035 label (63 characters at most)`);
  } else if (!isDnsSubdomain(name)) {
    errors.push(`metadata.name "${name}" is not a DNS subdomain`);
  }
  if (!CLUSTER_SCOPED.has(object.kind)) {
    const namespace = metadata.namespace;
    if (typeof namespace !== 'string' || !DNS_LABEL.test(namespace) || namespace.length > 63) {
      errors.push(`metadata.namespace ${JSON.stringify(namespace)} is not a namespace name`);
    }
  }
  const checkLabels = (labels, where) => {
    for (const [key, value] of Object.entries(labels ?? {})) {
      for (const e of keyErrors(key)) errors.push(`${where}: ${e}`);
      if (typeof value !== 'string' || value.length > 63 || !LABEL_VALUE.test(value)) {
        errors.push(`${where}: value ${JSON.stringify(value)} of "${key}" is not a label value`);
      }
    }
  };
  checkLabels(metadata.labels, 'metadata.labels');
  checkLabels(object.spec?.template?.metadata?.labels, 'spec.template.metadata.labels');
  checkLabels(object.spec?.selector?.matchLabels, 'spec.selector.matchLabels');
  for (const annotations of [metadata.annotations, object.spec?.template?.metadata?.annotations]) {
    for (const [key, value] of Object.entries(annotations ?? {})) {
      for (const e of keyErrors(key)) errors.push(`annotations: ${e}`);
      if (typeof value !== 'string') errors.push(`annotations: "${key}" is not a string`);
    }
  }
  return errors;
}

/** Every problem of one object, as readable strings; empty when it is valid. */
function validateObject(object) {
  if (object === null || typeof object !== 'object' || Array.isArray(object)) {
    return ['not an object'];
  }
  const { apiVersion, kind } = object;
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') {
    return ['apiVersion and kind are required'];
  }
  const Model = modelFor(apiVersion, kind);
  if (!Model) return [`no schema for ${apiVersion} ${kind}`];
  const errors = [];
  try {
    new Model(object).validate();
  } catch (e) {
    errors.push(...String(e.message).split('\n').filter(Boolean));
  }
  return errors.concat(metadataErrors(object));
}

/** The documents of a YAML stream (YAML 1.1), empty ones left out; throws on a syntax error. */
function parseDocuments(text, source) {
  const objects = [];
  for (const document of YAML.parseAllDocuments(text, { version: '1.1' })) {
    if (document.errors.length) {
      throw new Error(`${source}: ${document.errors.map((e) => e.message).join('; ')}`);
    }
    const object = document.toJS({ maxAliasCount: -1 });
    if (object !== null && object !== undefined) objects.push(object);
  }
  return objects;
}

/** `kubectl kustomize dir` as objects; throws with kubectl's message when it fails. */
function kustomize(dir) {
  const result = spawnSync('kubectl', ['kustomize', dir], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  if (result.error) {
    throw new Error(`kubectl: ${result.error.message} (kubectl, with kustomize v5, comes with ` +
      'the machine image; Debian\'s kubernetes-client is too old for these kustomizations)');
  }
  if (result.status !== 0) throw new Error(`kubectl kustomize ${dir}: ${result.stderr}`);
  return parseDocuments(result.stdout, `kubectl kustomize ${dir}`);
}

/** A label for messages: "Deployment eofaas-system/eofaas-proxy". */
function describe(object) {
  const metadata = object?.metadata ?? {};
  const where = metadata.namespace ? `${metadata.namespace}/` : '';
  return `${object?.kind} ${where}${metadata.name}`;
}

module.exports = { validateObject, parseDocuments, kustomize, describe, REPO_ROOT, toolsRequire };

if (require.main === module) {
  let failed = 0;
  for (const file of process.argv.slice(2)) {
    for (const object of parseDocuments(fs.readFileSync(file, 'utf8'), file)) {
      for (const error of validateObject(object)) {
        console.error(`${file}: ${describe(object)}: ${error}`);
        failed += 1;
      }
    }
  }
  process.exit(failed ? 1 : 0);
}
