/**
 * What the schemas cannot see in manifests/: that its parts agree with each other and with the
 * code. The dashboard queries only metrics the services register, the configuration files name
 * only flags the binaries define, the NetworkPolicy lets the proxy (and only it) reach the
 * replicas the control plane renders, the Role allows what the control plane applies, and the
 * GitLab pipeline is driven by TEMPLATE and CODE.
 */

'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { test } = require('node:test');

const { parseDocuments, kustomize, REPO_ROOT, toolsRequire } = require('./validate');

const YAML = toolsRequire('yaml');
const MANIFESTS = path.join(REPO_ROOT, 'manifests');
const GOLDEN_DIR = path.join(REPO_ROOT, 'tests', 'unit', 'control', 'k8s', 'golden');

const rendered = kustomize(MANIFESTS);
const find = (kind, name) => {
  const object = rendered.find((o) => o.kind === kind && o.metadata.name === name);
  assert.ok(object, `manifests/ has no ${kind} ${name}`);
  return object;
};
const golden = fs
  .readdirSync(GOLDEN_DIR)
  .filter((f) => f.endsWith('.yaml'))
  .flatMap((f) => parseDocuments(fs.readFileSync(path.join(GOLDEN_DIR, f), 'utf8'), f));

/** Every file under `dir` with one of `extensions`, recursively. */
function sources(dir, extensions) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) return sources(file, extensions);
    return extensions.some((e) => entry.name.endsWith(e)) ? [file] : [];
  });
}

test('the dashboard queries only metrics that eofaas registers', () => {
  const registered = new Set();
  for (const dir of ['common', 'control', 'proxy']) {
    for (const file of sources(path.join(REPO_ROOT, dir), ['.cc'])) {
      for (const m of fs.readFileSync(file, 'utf8').matchAll(/\.Name\("([a-z_:]+)"\)/g)) {
        registered.add(m[1]);
      }
    }
  }
  assert.ok(registered.has('grpc_server_handled_total'), 'no metric found in the sources');
  const dashboard = JSON.parse(
    fs.readFileSync(path.join(MANIFESTS, 'grafana', 'eofaas-dashboard.json'), 'utf8'));
  const queried = new Set();
  const exprs = [
    ...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)),
    ...dashboard.templating.list.map((v) => v.definition).filter(Boolean),
  ];
  for (const expr of exprs) {
    for (const m of expr.matchAll(/\b((?:eofaas|grpc_server)_[a-z_]+)\b/g)) {
      queried.add(m[1].replace(/_(bucket|sum|count)$/, ''));
    }
  }
  assert.ok(queried.size >= 10, `only ${queried.size} metrics queried`);
  const unknown = [...queried].filter((name) => !registered.has(name));
  assert.deepEqual(unknown, [], 'the dashboard queries metrics nothing registers');
  const ids = dashboard.panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, 'panel ids repeat');
});

test('the dashboard ConfigMap is what Grafana loads', () => {
  const configMap = find('ConfigMap', 'eofaas-dashboard');
  assert.equal(configMap.metadata.labels.grafana_dashboard, '1');
  JSON.parse(configMap.data['eofaas-dashboard.json']);
});

/** The flags a binary's main.cc defines (common::Options), plus --config itself. */
function flags(mainFile) {
  const text = fs.readFileSync(path.join(REPO_ROOT, mainFile), 'utf8');
  return new Set([...text.matchAll(/\.Add\w+\(\s*"([a-z_]+)"/g)].map((m) => m[1]));
}

test('the configuration files use the binaries\' flags', () => {
  // Its name carries kustomize's hash of the content.
  const config = rendered.find(
    (o) => o.kind === 'ConfigMap' && /^eofaas-config-/.test(o.metadata.name));
  assert.ok(config, 'manifests/ has no ConfigMap eofaas-config-<hash>');
  const control = YAML.parse(config.data['control.yaml']);
  const proxy = YAML.parse(config.data['proxy.yaml']);
  const controlFlags = flags('control/main.cc');
  const proxyFlags = flags('proxy/main.cc');
  assert.ok(controlFlags.has('data_dir') && proxyFlags.has('http_listen'), 'no flags found');
  assert.deepEqual(Object.keys(proxy).filter((k) => !proxyFlags.has(k)), []);
  assert.deepEqual(Object.keys(control).filter((k) => !controlFlags.has(k)), []);
  // The proxy finds the control plane's gRPC port through its Service.
  const service = find('Service', 'eofaas-control');
  const grpc = service.spec.ports.find((p) => p.name === 'grpc');
  const { name, namespace } = service.metadata;
  assert.equal(proxy.control, `${name}.${namespace}.svc:${grpc.port}`);
  assert.equal(control.listen, `0.0.0.0:${grpc.port}`);
  // The control plane keeps its state on the volume, and reads the registry credentials where
  // they are mounted.
  const pod = find('Deployment', 'eofaas-control').spec.template.spec;
  const mounts = Object.fromEntries(
    pod.containers[0].volumeMounts.map((m) => [m.name, m.mountPath]));
  assert.equal(mounts.state, control.data_dir);
  assert.equal(mounts['registry-credentials'], control.registry_credentials);
  assert.equal(control.registry_secret, 'eofaas-registry');
});

const matches = (selector, labels) =>
  Object.entries(selector?.matchLabels ?? {}).every(([k, v]) => labels?.[k] === v);

test('only the proxy reaches function pods, on the port they listen on', () => {
  const policy = find('NetworkPolicy', 'eofaas-functions-ingress');
  const namespaceOf = (name) => find('Namespace', name).metadata;
  const admits = (podLabels, namespace) =>
    policy.spec.ingress.some((rule) =>
      rule.from.some((peer) =>
        matches(peer.podSelector, podLabels) &&
        matches(peer.namespaceSelector, {
          'kubernetes.io/metadata.name': namespace,
          ...namespaceOf(namespace).labels,
        })));
  const proxy = find('Deployment', 'eofaas-proxy');
  const control = find('Deployment', 'eofaas-control');
  assert.ok(admits(proxy.spec.template.metadata.labels, proxy.metadata.namespace));
  assert.ok(!admits(control.spec.template.metadata.labels, control.metadata.namespace));
  const functionPods = golden.filter((o) => o.kind === 'Deployment');
  assert.ok(functionPods.length > 0);
  for (const deployment of functionPods) {
    assert.equal(deployment.metadata.namespace, policy.metadata.namespace);
    assert.ok(matches(policy.spec.podSelector, deployment.spec.template.metadata.labels));
    const ports = deployment.spec.template.spec.containers[0].ports.map((p) => p.containerPort);
    const allowed = policy.spec.ingress.flatMap((rule) => rule.ports.map((p) => p.port));
    assert.deepEqual(ports.filter((p) => !allowed.includes(p)), []);
  }
});

test('the control plane may apply, watch and delete everything it renders, and no more', () => {
  const role = find('Role', 'eofaas-control');
  const binding = find('RoleBinding', 'eofaas-control');
  const control = find('Deployment', 'eofaas-control');
  assert.deepEqual(binding.subjects, [{
    kind: 'ServiceAccount',
    name: control.spec.template.spec.serviceAccountName,
    namespace: control.metadata.namespace,
  }]);
  assert.equal(binding.roleRef.name, role.metadata.name);
  const allows = (group, resource, verb, name) =>
    role.rules.some((rule) =>
      rule.apiGroups.includes(group) && rule.resources.includes(resource) &&
      rule.verbs.includes(verb) && (!rule.resourceNames || rule.resourceNames.includes(name)));
  const resources = {
    Deployment: ['apps', 'deployments'],
    Service: ['', 'services'],
    HorizontalPodAutoscaler: ['autoscaling', 'horizontalpodautoscalers'],
    Job: ['batch', 'jobs'],
    ConfigMap: ['', 'configmaps'],
    Secret: ['', 'secrets'],
  };
  for (const object of golden) {
    assert.equal(object.metadata.namespace, role.metadata.namespace);
    const [group, resource] = resources[object.kind] ?? [];
    assert.ok(resource, `no rule expected for ${object.kind}`);
    for (const verb of ['create', 'patch', 'get', 'delete']) {
      assert.ok(allows(group, resource, verb, object.metadata.name),
        `${verb} ${resource} ${object.metadata.name}`);
    }
    if (object.kind !== 'Secret') assert.ok(allows(group, resource, 'watch', object.metadata.name));
  }
  for (const [group, resource, verb] of [['', 'pods', 'watch'], ['', 'pods/log', 'get'],
    ['discovery.k8s.io', 'endpointslices', 'watch']]) {
    assert.ok(allows(group, resource, verb), `${verb} ${resource}`);
  }
  // No wildcard, nothing beyond what is listed above.
  for (const rule of role.rules) {
    for (const list of [rule.apiGroups, rule.resources, rule.verbs]) assert.ok(!list.includes('*'));
  }
  assert.ok(!allows('', 'secrets', 'list'));
  assert.ok(!allows('', 'secrets', 'get', 'someone-elses-secret'));
});

test('the GitLab pipeline builds daemonless and pushes, driven by TEMPLATE and CODE', () => {
  const file = path.join(MANIFESTS, 'gitlab', '.gitlab-ci.yml');
  const pipeline = YAML.parse(fs.readFileSync(file, 'utf8'));
  assert.deepEqual(pipeline.stages, ['build', 'deploy']);
  assert.ok(fs.existsSync(path.join(REPO_ROOT, 'templates', pipeline.variables.TEMPLATE)));
  assert.ok('CODE' in pipeline.variables);
  const build = pipeline.build.script.join('\n');
  assert.match(build, /\$\{TEMPLATE\}/);
  assert.match(build, /\$\{CODE\}/);
  assert.match(build, /buildctl-daemonless\.sh build/);
  assert.equal(pipeline.build.stage, 'build');
  assert.equal(pipeline.deploy.stage, 'deploy');
  assert.match(pipeline.deploy.script.join('\n'), /skopeo copy/);
});
