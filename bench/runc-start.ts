// npm run bench:runc — with real runc containers on this machine: time from creating a 1-instance DesiredLRP to
// its instance RUNNING and healthy (p50/p99 over RUNS runs), then 100 instances on one cell until all RUNNING.
// Needs root and runc (installed by make deps). Prints figures; asserts nothing.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RuncBackend } from '../src/cell-agent/backends/runc.ts';
import { Rep } from '../src/cell-agent/rep.ts';
import { Manager } from '../src/controllers/manager.ts';
import type { IDesiredLRP } from '../src/crds/models.ts';
import { connectOrStart } from '../src/lib/controlplane/index.ts';
import { installCRDs, kubeConfigFromString, rawRequest } from '../src/lib/kube.ts';
import { createLogger } from '../src/lib/log.ts';
import { DiegoClient } from '../src/lib/resources.ts';

const RUNS = Number(process.env.RUNS ?? 50);
const MANY = Number(process.env.MANY ?? 100);
const log = createLogger(process.env.LOG_LEVEL ?? 'warn');
const cp = await connectOrStart({ logger: log });
const kc = kubeConfigFromString(cp.kubeconfig);
const client = new DiegoClient(kc);
const dir = await mkdtemp(join(tmpdir(), 'diego-bench-runc-'));
const ns = 'bench';
const bridge = `dbench${process.pid % 1000}`;

const lrp = (name: string, instances: number): Omit<IDesiredLRP, 'apiVersion' | 'kind'> => ({
  metadata: { name, namespace: ns },
  spec: {
    processGuid: name,
    domain: 'bench',
    rootFs: 'preloaded:busybox',
    instances,
    memoryMb: 16,
    diskMb: 16,
    ports: [8080],
    action: { run: { path: '/bin/httpd', args: ['-f', '-p', '8080', '-h', '/'], user: 'root' } },
    checkDefinition: { checks: [{ tcpCheck: { port: 8080 } }] },
    startTimeoutMs: 60_000,
  },
});

const running = async (name: string) =>
  (await client.list('ActualLRP', { namespace: ns, fieldSelector: `spec.processGuid=${name}` })).filter(
    (a) => a.status?.state === 'RUNNING',
  ).length;
const until = async (ok: () => Promise<boolean>) => {
  while (!(await ok())) await new Promise((r) => setTimeout(r, 20));
};

try {
  await installCRDs(kc);
  await rawRequest(kc, { method: 'POST', path: '/api/v1/namespaces', body: { metadata: { name: ns } } });
  const manager = new Manager({ kc, log });
  await manager.start();
  const rep = new Rep({
    kc,
    cellId: 'bench-cell',
    zone: 'z1',
    capacity: { memoryMb: 16384, diskMb: 65536, containers: 250 },
    stacks: ['busybox'],
    backend: new RuncBackend({
      stateDir: join(dir, 'state'),
      network: { bridge, subnet: '10.231.0.0/22', ipamDataDir: join(dir, 'ipam') },
    }),
    log,
    startupIntervalMs: 100,
    gracefulShutdownMs: 1000,
  });
  await rep.start();
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const name = `one-${i}`;
    const t0 = performance.now();
    await client.create('DesiredLRP', lrp(name, 1));
    await until(async () => (await running(name)) === 1);
    times.push(performance.now() - t0);
    await client.delete('DesiredLRP', { namespace: ns, name });
  }
  times.sort((a, b) => a - b);
  const pct = (p: number) => times[Math.min(times.length - 1, Math.ceil((p / 100) * times.length) - 1)]!;
  console.log(
    `apply → healthy RUNNING (runc, 1 instance, ${RUNS} runs): p50 ${pct(50).toFixed(0)} ms, p99 ${pct(99).toFixed(0)} ms, min ${times[0]!.toFixed(0)} ms, max ${times.at(-1)!.toFixed(0)} ms`,
  );
  await until(async () => (await client.list('ActualLRP', { namespace: ns })).length === 0);
  const t0 = performance.now();
  await client.create('DesiredLRP', lrp('many', MANY));
  await until(async () => (await running('many')) === MANY);
  console.log(`${MANY} instances on one cell, all RUNNING after ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  await client.delete('DesiredLRP', { namespace: ns, name: 'many' });
  await until(async () => (await client.list('ActualLRP', { namespace: ns })).length === 0);
  await rep.stop();
  await manager.stop();
} finally {
  await cp.stop();
  await rm(dir, { recursive: true, force: true });
  await import('node:child_process').then(({ execFileSync }) => {
    try {
      execFileSync('ip', ['link', 'delete', bridge], { stdio: 'ignore' });
    } catch {
      // already gone
    }
  });
}
