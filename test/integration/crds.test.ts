// The Diego API as a user meets it: CRDs served by a real apiserver, samples that apply, bad manifests
// rejected with the field named, kubectl scale / get / explain.
import { ApiextensionsV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { KINDS } from '../../src/crds/kinds.ts';
import { createNamespace, deleteNamespace, kubectl, testKubeConfig } from '../support/kube.ts';

const kc = testKubeConfig();
let ns = '';

beforeAll(async () => {
  ns = await createNamespace(kc, 'crds');
});
afterAll(async () => {
  await deleteNamespace(kc, ns);
});

type Obj = Record<string, any>;
const run = (path: string) => ({ run: { path, user: 'root' } });

function desiredLRP(name: string, mutate: (spec: Obj) => void = () => {}): Obj {
  const spec: Obj = {
    processGuid: name,
    domain: 'cf-apps',
    rootFs: 'preloaded:busybox',
    instances: 2,
    memoryMb: 64,
    ports: [8080],
    metricTags: { source_id: { static: name } },
    action: run('/bin/httpd'),
  };
  mutate(spec);
  return { apiVersion: 'diego.dev/v1alpha1', kind: 'DesiredLRP', metadata: { name }, spec };
}

function task(name: string, mutate: (spec: Obj) => void = () => {}): Obj {
  const spec: Obj = { taskGuid: name, domain: 'cf-tasks', rootFs: 'preloaded:busybox', action: run('/bin/true') };
  mutate(spec);
  return { apiVersion: 'diego.dev/v1alpha1', kind: 'Task', metadata: { name }, spec };
}

/** serial[run, try{timeout{<inner>}}]: puts `inner` three levels deep. */
const deep = (inner: Obj) => ({
  serial: { actions: [run('/bin/true'), { try: { action: { timeout: { timeoutMs: 1000, action: inner } } } }] },
});
const deepPath = 'spec.action.serial.actions[1].try.action.timeout.action';

const apply = (obj: Obj) => kubectl(['apply', '-n', ns, '-f', '-'], stringify(obj));

describe('CRDs', () => {
  it('are Established and listed in discovery', async () => {
    const api = kc.makeApiClient(ApiextensionsV1Api);
    for (const k of KINDS) {
      const crd = await api.readCustomResourceDefinition({ name: `${k.plural}.diego.dev` });
      expect(crd.status?.conditions?.find((c) => c.type === 'Established')?.status).toBe('True');
    }
    const res = await kubectl(['api-resources', '--api-group=diego.dev', '-o', 'name']);
    expect(res.stdout.split('\n').filter(Boolean).sort()).toEqual(KINDS.map((k) => `${k.plural}.diego.dev`).sort());
  });

  it('accept every sample in config/samples', async () => {
    const res = await kubectl(['apply', '-n', ns, '-f', 'config/samples/']);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/desiredlrp.diego.dev\/web created/);
    expect(res.stdout).toMatch(/task.diego.dev\/hello-task created/);
    expect(res.stdout).toMatch(/cell.diego.dev\/cell-z1-0 created/);
    expect(res.stdout).toMatch(/actuallrp.diego.dev\/web-0 created/);
  });
});

// Each case: a manifest that must be refused, and the field the error must name.
const invalid: [string, Obj, string][] = [
  ['negative instances', desiredLRP('neg-instances', (s) => (s.instances = -1)), 'spec.instances'],
  ['negative memory', desiredLRP('neg-memory', (s) => (s.memoryMb = -5)), 'spec.memoryMb'],
  ['cpu weight above 100', desiredLRP('cpu', (s) => (s.cpuWeight = 101)), 'spec.cpuWeight'],
  [
    'two actions in one Action',
    desiredLRP('two-actions', (s) => (s.action = { ...run('/a'), try: { action: run('/b') } })),
    'spec.action',
  ],
  [
    'unknown action type',
    desiredLRP('unknown-action', (s) => (s.action = { shell: { cmd: 'ls' } })),
    'spec.action.shell',
  ],
  ['no action at all', desiredLRP('no-action', (s) => delete s.action), 'spec.action'],
  ['port out of range', desiredLRP('port-range', (s) => (s.ports = [8080, 70000])), 'spec.ports[1]'],
  ['oversized annotation', desiredLRP('big-annotation', (s) => (s.annotation = 'x'.repeat(10241))), 'spec.annotation'],
  ['missing rootfs', desiredLRP('no-rootfs', (s) => delete s.rootFs), 'spec.rootFs'],
  ['rootfs without a scheme', desiredLRP('ploop', (s) => (s.rootFs = 'ploop')), 'spec.rootFs'],
  ['process guid with a space', desiredLRP('bad-guid', (s) => (s.processGuid = 'abc def')), 'spec.processGuid'],
  // Every cell agent reads every DesiredLRP and Task: credentials go in a basic-auth Secret named by the spec.
  [
    'inline image user name',
    desiredLRP('image-user', (s) => (s.imageUsername = 'bob')),
    'spec.imageUsername: Forbidden: imageUsername is refused',
  ],
  [
    'inline image password',
    task('image-password', (s) => {
      s.imageUsername = 'bob';
      s.imagePassword = 'hunter2';
    }),
    'spec.imagePassword: Forbidden: imagePassword is refused',
  ],
  [
    'an image credentials Secret name that is no object name',
    desiredLRP('image-secret', (s) => (s.imageCredentialsSecret = 'Not_A_Name')),
    'spec.imageCredentialsSecret',
  ],
  [
    'metric tag both static and dynamic',
    desiredLRP('tags', (s) => (s.metricTags = { source_id: { static: 'a', dynamic: 'INDEX' } })),
    'spec.metricTags[source_id]',
  ],
  [
    'HTTP check on port 0',
    desiredLRP('check-port', (s) => (s.checkDefinition = { checks: [{ httpCheck: { port: 0 } }] })),
    'spec.checkDefinition.checks[0].httpCheck.port',
  ],
  [
    'check with tcp and http',
    desiredLRP(
      'check-both',
      (s) => (s.checkDefinition = { checks: [{ tcpCheck: { port: 1 }, httpCheck: { port: 1 } }] }),
    ),
    'spec.checkDefinition.checks[0]',
  ],
  [
    'run without path deep in serial/try/timeout',
    desiredLRP('deep-run', (s) => (s.action = deep({ run: { user: 'root' } }))),
    `${deepPath}.run.path`,
  ],
  [
    'unknown action type deep in the tree',
    desiredLRP('deep-unknown', (s) => (s.action = deep({ bogus: {} }))),
    `${deepPath}.bogus`,
  ],
  [
    'two actions in a nested Action',
    desiredLRP(
      'deep-two',
      (s) => (s.action = deep({ ...run('/a'), ...{ download: { from: 'http://x/y.tgz', to: '/x', user: 'root' } } })),
    ),
    deepPath,
  ],
  [
    'timeout of 0 ms nested',
    desiredLRP('deep-timeout', (s) => (s.action = deep({ timeout: { timeoutMs: 0, action: run('/a') } }))),
    `${deepPath}.timeout.timeoutMs`,
  ],
  [
    'empty serial nested',
    desiredLRP('deep-serial', (s) => (s.action = deep({ serial: { actions: [] } }))),
    `${deepPath}.serial.actions`,
  ],
  [
    // Relative destinations are Diego's (the user's home); an empty one is not.
    'download to an empty path in setup',
    desiredLRP(
      'setup-dl',
      (s) =>
        (s.setup = {
          serial: { actions: [{ download: { from: 'http://127.0.0.1/a.tgz', to: '', user: 'root' } }] },
        }),
    ),
    'spec.setup.serial.actions[0].download.to',
  ],
  [
    'action tree deeper than 32',
    desiredLRP('too-deep', (s) => {
      let a: Obj = run('/a');
      for (let i = 0; i < 40; i++) a = { try: { action: a } };
      s.action = a;
    }),
    'spec.action',
  ],
  [
    'task with a bad nested action',
    task('bad-task', (s) => (s.action = deep({ upload: { from: '/a', user: 'root' } }))),
    `${deepPath}.upload.to`,
  ],
  ['task guid with a slash', task('bad-task-guid', (s) => (s.taskGuid = 'abc/def')), 'spec.taskGuid'],
  [
    'cell with negative containers',
    {
      apiVersion: 'diego.dev/v1alpha1',
      kind: 'Cell',
      metadata: { name: 'bad-cell' },
      spec: { cellId: 'bad-cell', capacity: { memoryMb: 1, diskMb: 1, containers: -1 } },
    },
    'spec.capacity.containers',
  ],
  [
    'actual LRP with a negative index',
    {
      apiVersion: 'diego.dev/v1alpha1',
      kind: 'ActualLRP',
      metadata: { name: 'bad-alrp' },
      spec: { processGuid: 'x', index: -1, domain: 'd' },
    },
    'spec.index',
  ],
];

describe('invalid manifests', () => {
  it.each(invalid)('rejects %s, naming %s', async (_what, obj, field) => {
    const res = await apply(obj);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain(field);
    // Bad input changes nothing.
    const get = await kubectl(['get', '-n', ns, String(obj.kind).toLowerCase(), String(obj.metadata.name)]);
    expect(get.code).not.toBe(0);
    expect(get.stderr).toMatch(/NotFound|not found/);
  });

  it('rejects a change to an immutable run-info field and keeps the stored value', async () => {
    expect((await apply(desiredLRP('immutable'))).code).toBe(0);
    const res = await apply(desiredLRP('immutable', (s) => (s.memoryMb = 128)));
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('spec.memoryMb');
    expect(res.stderr).toContain('immutable');
    const get = await kubectl(['get', '-n', ns, 'desiredlrp', 'immutable', '-o', 'jsonpath={.spec.memoryMb}']);
    expect(get.stdout).toBe('64');
  });

  it('allows what Diego lets change: instances, routes, annotation, metric tags', async () => {
    const res = await apply(
      desiredLRP('immutable', (s) => {
        s.instances = 4;
        s.annotation = 'updated';
        s.routes = { 'cf-router': [{ hostnames: ['a.example.test'], port: 8080 }] };
        s.metricTags = { source_id: { static: 'immutable' }, index: { dynamic: 'INDEX' } };
      }),
    );
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
  });

  it('rejects any change to a Task', async () => {
    expect((await apply(task('frozen'))).code).toBe(0);
    const res = await apply(task('frozen', (s) => (s.memoryMb = 10)));
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/spec.memoryMb: Invalid value.*cannot be changed/);
  });
});

describe('kubectl', () => {
  it('scale desiredlrp changes spec.instances', async () => {
    expect((await apply(desiredLRP('scaled'))).code).toBe(0);
    const res = await kubectl(['scale', '-n', ns, 'desiredlrp/scaled', '--replicas=5']);
    expect(res.stderr).toBe('');
    expect(res.stdout).toContain('scaled');
    const get = await kubectl(['get', '-n', ns, 'dlrp', 'scaled', '-o', 'jsonpath={.spec.instances}']);
    expect(get.stdout).toBe('5');
  });

  it('get diego lists all four kinds with their printer columns', async () => {
    const res = await kubectl(['get', 'diego', '-n', ns]);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/NAME\s+INSTANCES\s+RUNNING\s+READY\s+AGE/);
    expect(res.stdout).toMatch(/NAME\s+PROCESS\s+INDEX\s+STATE\s+CELL\s+AGE/);
    expect(res.stdout).toMatch(/NAME\s+STATE\s+CELL\s+FAILED\s+AGE/);
    expect(res.stdout).toMatch(/NAME\s+ZONE\s+MEMORY\s+FREE\s+READY\s+AGE/);
    for (const name of [
      'desiredlrp.diego.dev/web',
      'actuallrp.diego.dev/web-0',
      'task.diego.dev/hello-task',
      'cell.diego.dev/cell-z1-0',
    ]) {
      expect(res.stdout).toContain(name);
    }
  });

  it('explain desiredlrp.spec teaches the API', async () => {
    const res = await kubectl(['explain', 'desiredlrp.spec']);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('processGuid');
    expect(res.stdout).toContain('Letters, digits');
    expect(res.stdout).toMatch(/instances\s+<integer>/);
    const action = await kubectl(['explain', 'desiredlrp.spec.action.timeout']);
    expect(action.stdout).toContain('timeoutMs');
    expect(action.stdout).toContain('Runs its action and fails it');
  });
});
