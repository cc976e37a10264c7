// kubectl diego (src/kubectl-diego.ts) run as a user runs it: a child process with --kubeconfig, against the real
// API server, simulated cells and a real cell agent (process backend) whose log stream it reads.
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, inject, it, onTestFinished } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { CoreV1Api, KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { ProcessBackend } from '../../src/cell-agent/backends/process.ts';
import { logEnvelope } from '../../src/cell-agent/logs/envelope.ts';
import { LogHub } from '../../src/cell-agent/logs/hub.ts';
import { registerLogRoutes, streamKey } from '../../src/cell-agent/logs/stream-server.ts';
import { advertisedOpsUrl, cellObjectName } from '../../src/cell-agent/presence.ts';
import { Rep } from '../../src/cell-agent/rep.ts';
import { upsertDomain } from '../../src/bbs/leases.ts';
import { applyAt } from '../../src/lib/kube.ts';
import { leasePath, microTime } from '../../src/lib/lease.ts';
import { startOpsServer, type OpsServer } from '../../src/lib/metrics.ts';
import { opsSecurity } from '../../src/lib/ops-auth.ts';
import { exitOf } from '../support/child.ts';
import { eventually } from '../support/eventually.ts';
import { useDiego } from '../support/fixture.ts';

const env = useDiego('kubectl-diego', { convergeIntervalMs: 1000 });
const { client } = env;
const PLUGIN = path.join(import.meta.dirname, '../../src/kubectl-diego.ts');
const dir = mkdtempSync(path.join(tmpdir(), 'kubectl-diego-'));
/** Cells with a real agent (process backend) and their ops servers (log streams), stopped after the suite. */
const realCells: { rep: Rep; ops: OpsServer }[] = [];
let secureOps: OpsServer | undefined;
let nodeName: string | undefined;
const clusterRole = `kubectl-diego-test-${process.pid}`;
afterAll(async () => {
  await secureOps?.close();
  if (nodeName)
    await env.kc
      .makeApiClient(CoreV1Api)
      .deleteNode({ name: nodeName })
      .catch(() => undefined);
  const rbac = env.kc.makeApiClient(RbacAuthorizationV1Api);
  await rbac.deleteClusterRoleBinding({ name: clusterRole }).catch(() => undefined);
  for (const name of [clusterRole, `${clusterRole}-logs`])
    await rbac.deleteClusterRole({ name }).catch(() => undefined);
  for (const { rep, ops } of realCells) {
    await ops.close();
    await rep.stop();
  }
  rmSync(dir, { recursive: true, force: true });
});

async function startRealCell(cellId: string, sub: string): Promise<{ rep: Rep; ops: OpsServer }> {
  const rep = new Rep({
    kc: env.kc,
    cellId,
    capacity: { memoryMb: 2048, diskMb: 8192, containers: 10 },
    stacks: ['busybox'],
    backend: new ProcessBackend({ baseDir: path.join(dir, sub, 'containers'), persistent: true }),
    log: env.log,
    systemNamespace: env.systemNamespace,
    startupIntervalMs: 100,
    gracefulShutdownMs: 1000,
    executor: { stateDir: path.join(dir, sub, 'executor') },
  });
  await rep.start();
  const hub = rep.telemetry.hub;
  const ops = await startOpsServer({ host: '127.0.0.1', port: 0, routes: (app) => registerLogRoutes(app, hub) });
  await rep.advertiseOps(advertisedOpsUrl(ops.url, '127.0.0.1', undefined));
  realCells.push({ rep, ops });
  return { rep, ops };
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `kubectl diego <args>` against the test cluster (no colours: NO_COLOR, and stdout is a pipe anyway). */
function plugin(args: string[], kubeconfig = inject('kubeconfigPath')): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [PLUGIN, '--kubeconfig', kubeconfig, '--system-namespace', env.systemNamespace, ...args],
      { env: { ...process.env, NO_COLOR: '1' }, maxBuffer: 16 * 1024 * 1024, timeout: 120_000 },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') return reject(new Error(`cannot run kubectl diego: ${err.message}`));
        resolve({ code: err ? Number(err.code) : 0, stdout, stderr });
      },
    );
  });
}

const lines = (text: string) => text.split('\n').filter((l) => l !== '');
/** The cells of a table row (columns are at least three spaces apart; cells hold at most single spaces). */
const cols = (line: string) => line.split(/\s{3,}/);

function expectOneErrorLine(r: Run, pattern: RegExp): void {
  expect(r.code).toBe(1);
  expect(r.stdout).toBe('');
  expect(lines(r.stderr)).toHaveLength(1);
  expect(r.stderr).toMatch(pattern);
}

const run = (script: string) => ({ run: { path: '/bin/sh', args: ['-c', script], user: 'root' } });

describe('kubectl diego', () => {
  it('lists cells, LRPs, tasks, domains and locks, filters them, and explains and retires', async () => {
    const [a, b] = await env.startCells(2, (i) => ({ zone: `z${i}`, memoryMb: 2048 }));
    const ns = env.ns;
    const pid = process.pid;
    for (const [name, instances] of [
      ['web', 2],
      ['worker', 1],
    ] as const) {
      await client.create('DesiredLRP', {
        metadata: { name, namespace: ns },
        spec: {
          processGuid: `${name}-${pid}`,
          domain: 'cf-apps',
          rootFs: 'preloaded:busybox',
          instances,
          memoryMb: 128,
          diskMb: 128,
          action: run('sleep 1000'),
        },
      });
    }
    for (const [name, domain] of [
      ['job-a', 'cf-tasks'],
      ['job-b', 'other'],
    ] as const) {
      await client.create('Task', {
        metadata: { name, namespace: ns },
        spec: { taskGuid: `${name}-${pid}`, domain, rootFs: 'preloaded:busybox', memoryMb: 64, action: run('true') },
      });
    }
    await upsertDomain(env.kc, env.systemNamespace, 'cf-apps', 120);
    await applyAt(env.kc, leasePath(env.systemNamespace, 'diego-operator-controller'), {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: 'diego-operator-controller', namespace: env.systemNamespace },
      spec: { holderIdentity: 'test-leader', leaseDurationSeconds: 3600, renewTime: microTime(new Date()) },
    });
    await eventually(
      async () => {
        const actuals = await client.list('ActualLRP', { namespace: ns });
        expect(actuals.filter((x) => x.status?.state === 'RUNNING')).toHaveLength(3);
        const tasks = await client.list('Task', { namespace: ns });
        expect(tasks.filter((t) => t.status?.state === 'Running')).toHaveLength(2);
      },
      60_000,
      250,
    );

    const cells = await plugin(['cells']);
    expect(cells.code).toBe(0);
    const cellLines = lines(cells.stdout);
    expect(cols(cellLines[0]!)).toEqual(['CELL', 'ZONE', 'MEMORY', 'DISK', 'CONTAINERS', 'ROOTFS', 'PRESENCE', 'AGE']);
    for (const [c, zone] of [
      [a!, 'z0'],
      [b!, 'z1'],
    ] as const) {
      const row = cellLines.find((l) => l.startsWith(`${c.o.cellId} `));
      expect(row, cells.stdout).toBeDefined();
      expect(cols(row!).slice(0, 3)).toEqual([c.o.cellId, zone, '2048']);
      expect(row).toMatch(/renewed \d+s ago/);
    }

    const states = await plugin(['cell-states', '-o', 'json']);
    expect(states.code).toBe(0);
    const stateRecords = JSON.parse(states.stdout) as { cellId: string; presence: { present: boolean } }[];
    const mine = stateRecords.filter((r) => [a!.o.cellId, b!.o.cellId].includes(r.cellId));
    expect(mine).toHaveLength(2);
    expect(mine.every((r) => r.presence.present)).toBe(true);
    expect(lines((await plugin(['cell-states'])).stdout)[0]).toMatch(
      /^CELL\s+ZONE\s+MEMORY\s+DISK\s+CONTAINERS\s+INSTANCES\s+TASKS\s+STARTING\s+EVACUATING\s+PRESENCE$/,
    );

    const desired = await plugin(['desired-lrps', '-n', ns]);
    expect(desired.code).toBe(0);
    expect(lines(desired.stdout).map((l) => cols(l).slice(0, 5))).toEqual([
      ['NAME', 'PROCESS GUID', 'DOMAIN', 'INSTANCES', 'RUNNING'],
      ['web', `web-${pid}`, 'cf-apps', '2', expect.stringMatching(/^[0-2]$/)],
      ['worker', `worker-${pid}`, 'cf-apps', '1', expect.stringMatching(/^[01]$/)],
    ]);
    const everywhere = await plugin(['desired-lrps', '-A']);
    expect(cols(lines(everywhere.stdout)[0]!)[0]).toBe('NAMESPACE');
    expect(lines(everywhere.stdout).filter((l) => l.startsWith(`${ns} `))).toHaveLength(2);

    const web = await plugin(['actual-lrps', '-n', ns, '--process-guid', `web-${pid}`]);
    expect(web.code).toBe(0);
    const webRows = lines(web.stdout).slice(1).map(cols);
    expect(webRows.map((r) => r.slice(0, 5))).toEqual([
      ['web-0', `web-${pid}`, '0', 'RUNNING', 'ORDINARY'],
      ['web-1', `web-${pid}`, '1', 'RUNNING', 'ORDINARY'],
    ]);
    const onA = await plugin(['actual-lrps', '-n', ns, '--cell', a!.o.cellId]);
    const onARows = lines(onA.stdout).slice(1).map(cols);
    const placedOnA = (await client.list('ActualLRP', { namespace: ns })).filter((x) => x.spec.cellId === a!.o.cellId);
    expect(onARows.map((r) => r[0]).sort()).toEqual(placedOnA.map((x) => x.metadata.name).sort());
    expect(onARows.every((r) => r[5] === a!.o.cellId)).toBe(true);

    const other = await plugin(['tasks', '-n', ns, '--domain', 'other']);
    expect(lines(other.stdout).map((l) => cols(l).slice(0, 4))).toEqual([
      ['NAME', 'TASK GUID', 'DOMAIN', 'STATE'],
      ['job-b', `job-b-${pid}`, 'other', 'Running'],
    ]);
    const runningTasks = await plugin(['tasks', '-n', ns, '--state', 'running', '-o', 'yaml']);
    expect((parseYaml(runningTasks.stdout) as { name: string }[]).map((t) => t.name)).toEqual(['job-a', 'job-b']);
    const pending = await plugin(['tasks', '-n', ns, '--state', 'Pending']);
    expect(pending).toMatchObject({ code: 0, stdout: '' });
    expect(pending.stderr).toBe(`No tasks found in ${ns} namespace.\n`);

    const json = await plugin(['actual-lrps', '-n', ns, '-o', 'json']);
    const records = JSON.parse(json.stdout) as { name: string; state: string; cellId: string }[];
    expect(records.map((r) => r.name)).toEqual(['web-0', 'web-1', 'worker-0']);
    expect(records.every((r) => r.state === 'RUNNING' && r.cellId)).toBe(true);

    const domains = await plugin(['domains']);
    expect(lines(domains.stdout).map((l) => cols(l).slice(0, 3))).toEqual([
      ['DOMAIN', 'FRESH', 'TTL'],
      ['cf-apps', 'true', '2m'],
    ]);
    const locks = await plugin(['locks']);
    expect(lines(locks.stdout).map((l) => cols(l).slice(0, 3))).toEqual([
      ['LOCK', 'HOLDER', 'HELD'],
      ['diego-operator-controller', 'test-leader', 'true'],
    ]);

    const explained = await plugin(['explain-placement', 'web-0', '-n', ns]);
    expect(explained.code).toBe(0);
    expect(explained.stdout).toMatch(/^ActualLRP .*\/web-0: process web-\d+, index 0, RUNNING on cell-/);
    expect(explained.stdout).toMatch(/^Now: +placed on cell-/m);
    expect(explained.stdout).toMatch(/^CELL\s+ZONE\s+VERDICT\s+SCORE/m);
    expect(lines(explained.stdout).filter((l) => / winner /.test(l))).toHaveLength(1);

    // Unknown objects, unknown commands and a cluster that does not answer: one line, exit code 1.
    expectOneErrorLine(await plugin(['logs', 'nope', '-n', ns]), /^error: no DesiredLRP or Task named "nope"/);
    expectOneErrorLine(await plugin(['explain-placement', 'nope', '-n', ns]), /^error: no ActualLRP named "nope"/);
    expectOneErrorLine(await plugin(['retire-actual-lrp', 'nope', '0', '-n', ns]), /^error: no ActualLRP of/);
    expectOneErrorLine(await plugin(['frobnicate']), /^error: unknown command 'frobnicate'/);
    expectOneErrorLine(await plugin(['tasks', '--state', 'done']), /^error: --state must be one of/);
    const closed = await closedPort();
    const nowhere = path.join(dir, 'closed.kubeconfig');
    writeFileSync(
      nowhere,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters: [{name: c, cluster: {server: "https://127.0.0.1:' + closed + '", insecure-skip-tls-verify: true}}]',
        'users: [{name: u, user: {token: t}}]',
        'contexts: [{name: x, context: {cluster: c, user: u}}]',
        'current-context: x',
      ].join('\n'),
    );
    expectOneErrorLine(
      await plugin(['cells'], nowhere),
      /^error: cannot reach the cluster at https:\/\/127\.0\.0\.1:\d+: /,
    );

    // cfdot retire-actual-lrp: the instance goes and the converger starts a new one at its index.
    const before = await client.get('ActualLRP', ns, 'web-1');
    const retired = await plugin(['retire-actual-lrp', `web-${pid}`, '1', '-n', ns]);
    expect(retired.code).toBe(0);
    expect(retired.stdout).toMatch(
      /^actuallrp .*\/web-1 retired: cell .* the converger starts a new instance at index 1\n$/,
    );
    await eventually(
      async () => {
        const after = await client.get('ActualLRP', ns, 'web-1');
        expect(after.metadata.uid).not.toBe(before.metadata.uid);
        expect(after.status?.state).toBe('RUNNING');
      },
      60_000,
      250,
    );
  }, 240_000);

  it('prints the lines of an app on a real cell agent, labelled with the instance index, recent and followed', async () => {
    const cellId = `kd-cell-${process.pid}`;
    const a = await startRealCell(cellId, 'a');
    const cell = (await client.list('Cell')).find((c) => c.spec.cellId === cellId);
    expect(cell?.spec.opsUrl).toBe(a.ops.url);

    const ns = env.ns;
    await client.create('DesiredLRP', {
      metadata: { name: 'talker', namespace: ns },
      spec: {
        processGuid: `talker-${process.pid}`,
        domain: 'cf-apps',
        rootFs: 'preloaded:busybox',
        instances: 2,
        memoryMb: 64,
        logSource: 'APP/PROC/WEB',
        action: run(
          'echo "hello from $INSTANCE_INDEX"; i=0; while true; do i=$((i+1)); echo "tick $i"; sleep 0.3; done',
        ),
      },
    });
    await client.create('Task', {
      metadata: { name: 'chatty', namespace: ns },
      spec: {
        taskGuid: `chatty-${process.pid}`,
        domain: 'cf-tasks',
        rootFs: 'preloaded:busybox',
        memoryMb: 64,
        action: run('echo "task says hi" >&2; sleep 1000'),
      },
    });

    const recent = await eventually(
      async () => {
        const r = await plugin(['logs', 'talker', '-n', ns, '--recent']);
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout).toMatch(
          /^ {3}\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d\d\+0000 \[APP\/PROC\/WEB\/0\] OUT hello from 0$/m,
        );
        expect(r.stdout).toMatch(/ \[APP\/PROC\/WEB\/1\] OUT hello from 1$/m);
        expect(r.stdout).toMatch(/ \[APP\/PROC\/WEB\/1\] OUT tick \d+$/m);
        return r.stdout;
      },
      60_000,
      500,
    );
    // In time order, as the cells stamped them.
    const stamps = lines(recent).map((l) => l.trim().split(' ')[0]!);
    expect([...stamps].sort()).toEqual(stamps);

    const one = await plugin(['logs', 'talker', '-n', ns, '--instance', '1']);
    expect(one.code).toBe(0);
    expect(lines(one.stdout).length).toBeGreaterThan(0);
    expect(lines(one.stdout).every((l) => l.includes('[APP/PROC/WEB/1]') || l.includes('[LOG/1]'))).toBe(true);

    const task = await eventually(
      async () => {
        const r = await plugin(['logs', 'chatty', '-n', ns, '--recent']);
        expect(r.stdout).toMatch(/ \[LOG\/0\] ERR task says hi$/m);
        return r;
      },
      60_000,
      500,
    );
    expect(task.code).toBe(0);

    // -f: the recent lines, then new ones as they are written, until interrupted.
    const highest = Math.max(...[...recent.matchAll(/OUT tick (\d+)$/gm)].map((m) => Number(m[1])));
    const child = spawn(
      process.execPath,
      [PLUGIN, '--kubeconfig', inject('kubeconfigPath'), 'logs', 'talker', '-n', ns, '-f'],
      { env: { ...process.env, NO_COLOR: '1' } },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    onTestFinished(() => void child.kill('SIGKILL')); // a test that times out never reaches its finally
    try {
      await eventually(
        () => {
          expect(out).toMatch(/\[APP\/PROC\/WEB\/0\] OUT hello from 0$/m);
          const ticks = [...out.matchAll(/\[APP\/PROC\/WEB\/(\d)\] OUT tick (\d+)$/gm)];
          for (const index of ['0', '1']) {
            expect(ticks.some((m) => m[1] === index && Number(m[2]) > highest + 2)).toBe(true);
          }
        },
        60_000,
        250,
      );
      // Instances that start on a cell the follower was not reading (a scale-up onto a new cell) are followed too.
      const cellB = `kd-cell-b-${process.pid}`;
      await startRealCell(cellB, 'b');
      await client.patch('DesiredLRP', { namespace: ns, name: 'talker' }, { spec: { instances: 4 } });
      const onB = await eventually(async () => {
        const all = await client.list('ActualLRP', { namespace: ns });
        const there = all.filter((x) => x.status?.cellId === cellB && x.status.state === 'RUNNING');
        expect(there.length).toBeGreaterThan(0);
        return there.map((x) => x.spec.index);
      }, 60_000);
      await eventually(
        () => {
          for (const index of onB) expect(out).toMatch(new RegExp(`\\[APP/PROC/WEB/${index}\\] OUT tick \\d+$`, 'm'));
        },
        60_000,
        250,
      );
    } finally {
      child.kill('SIGINT');
    }
    expect(await exitOf(child, 60_000, 'kubectl diego logs -f (after SIGINT)'), err).toEqual([0, null]);
  }, 240_000);

  it("sends the kubeconfig's token to a cell that checks tokens, over TLS only as asked", async () => {
    // A cell whose log stream is served as the chart serves it: TLS (self-signed) and Kubernetes tokens.
    const [sim] = await env.startCells(1);
    const hub = new LogHub();
    const security = await opsSecurity(env.kc, '127.0.0.1', 'kubernetes', {});
    secureOps = await startOpsServer({
      host: '127.0.0.1',
      port: 0,
      ...security,
      routes: (app, auth) => registerLogRoutes(app, hub, {}, auth),
    });
    expect(secureOps.url).toMatch(/^https:/);
    await client.patch('Cell', { name: cellObjectName(sim!.o.cellId) }, { spec: { opsUrl: secureOps.url } });
    const ns = env.ns;
    const guid = `secure-${process.pid}`;
    await client.create('DesiredLRP', {
      metadata: { name: 'secure', namespace: ns },
      spec: { processGuid: guid, domain: 'cf-apps', rootFs: 'preloaded:busybox', instances: 1, action: run('true') },
    });
    await eventually(
      async () => {
        const [a] = await client.list('ActualLRP', { namespace: ns });
        expect(a?.status?.state).toBe('RUNNING');
      },
      60_000,
      250,
    );
    const tags = { source_id: guid, instance_id: '0' };
    hub.publish(streamKey(ns, guid), logEnvelope(tags, 'APP/PROC/WEB', 'OUT', 'only for those allowed'));

    // A ServiceAccount that may read the Diego objects and, in this namespace, the apps' log lines.
    const core = env.kc.makeApiClient(CoreV1Api);
    const rbac = env.kc.makeApiClient(RbacAuthorizationV1Api);
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'reader' } } });
    const token =
      (
        await core.createNamespacedServiceAccountToken({
          namespace: ns,
          name: 'reader',
          body: { spec: { audiences: [], expirationSeconds: 600 } },
        })
      ).status?.token ?? '';
    await rbac.createClusterRole({
      body: {
        metadata: { name: clusterRole },
        rules: [
          {
            apiGroups: ['diego.dev'],
            resources: ['cells', 'desiredlrps', 'actuallrps', 'tasks'],
            verbs: ['get', 'list'],
          },
          // To check that a cell's log stream is on its node's address before sending the token there.
          { apiGroups: [''], resources: ['nodes'], verbs: ['get'] },
        ],
      },
    });
    await rbac.createClusterRoleBinding({
      body: {
        metadata: { name: clusterRole },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: clusterRole },
        subjects: [{ kind: 'ServiceAccount', name: 'reader', namespace: ns }],
      },
    });
    const admin = env.kc.getCurrentCluster()!;
    const saConfig = new KubeConfig();
    saConfig.loadFromOptions({
      clusters: [admin],
      users: [{ name: 'reader', token }],
      contexts: [{ name: 'reader', cluster: admin.name, user: 'reader', namespace: ns }],
      currentContext: 'reader',
    });
    const saPath = path.join(dir, 'reader.kubeconfig');
    writeFileSync(saPath, saConfig.exportConfig());

    // The cell's URL is not vouched for by a Node of its name: the token stays home (the cell asks for one).
    const unvouched = await plugin(['logs', 'secure', '--ops-insecure-skip-tls-verify'], saPath);
    expect(unvouched.code).toBe(1);
    expect(unvouched.stderr).toMatch(
      /^warning: not sending your token to cell \S+'s log stream at 127\.0\.0\.1:\d+: it is not an address of node/m,
    );
    expect(unvouched.stderr).toMatch(/^error: cell .* refused its log stream: 401/m);
    // Its Node says it is at that address.
    nodeName = sim!.o.cellId;
    await core.createNode({ body: { metadata: { name: nodeName } } });
    await core.replaceNodeStatus({
      name: nodeName,
      body: {
        metadata: { name: nodeName },
        status: { addresses: [{ type: 'InternalIP', address: '127.0.0.1' }] },
      },
    });
    // The agent's certificate is self-signed: refused unless asked otherwise.
    const unverified = await plugin(['logs', 'secure'], saPath);
    expectOneErrorLine(
      unverified,
      /^error: cannot read the log stream of cell .*(certificate|self-signed|self signed)/i,
    );
    // The token goes with the request; without `get desiredlrps/log` the cell refuses it.
    const forbidden = await plugin(['logs', 'secure', '--ops-insecure-skip-tls-verify'], saPath);
    expectOneErrorLine(forbidden, /^error: cell .* refused its log stream: 403 .*may not get desiredlrps\/log/);
    await rbac.createNamespacedRoleBinding({
      namespace: ns,
      body: {
        metadata: { name: 'reader-logs' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `${clusterRole}-logs` },
        subjects: [{ kind: 'ServiceAccount', name: 'reader', namespace: ns }],
      },
    });
    await rbac.createClusterRole({
      body: {
        metadata: { name: `${clusterRole}-logs` },
        rules: [{ apiGroups: ['diego.dev'], resources: ['desiredlrps/log'], verbs: ['get'] }],
      },
    });
    const allowed = await eventually(
      async () => {
        const r = await plugin(['logs', 'secure', '--ops-insecure-skip-tls-verify'], saPath);
        expect(r.code, r.stderr).toBe(0);
        return r;
      },
      30_000,
      1000,
    );
    expect(allowed.stdout).toMatch(/^ {3}\S+ \[APP\/PROC\/WEB\/0\] OUT only for those allowed$/m);
  }, 240_000);
});

/** A port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
