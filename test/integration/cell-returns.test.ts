// A cell declared lost that comes back (its presence Lease deleted, then renewed by its still-running agent), with
// real reps on the process backend, in both orders of Diego's race:
// * the replacement was claimed on another cell first: the returning cell's suspect is retired and the returning
//   agent stops its container — one container per index on the host, and the record the other cell claimed is
//   never overwritten;
// * the cell is back before the replacement is claimed: its suspect is promoted and its container kept (same
//   instance guid, same process).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ProcessBackend } from '../../src/cell-agent/backends/process.ts';
import { releasePresence } from '../../src/cell-agent/presence.ts';
import { Rep } from '../../src/cell-agent/rep.ts';
import type { IActualLRP } from '../../src/crds/models.ts';
import { alive } from '../../src/cell-agent/testing.ts';
import { eventually } from '../support/eventually.ts';
import { useDiego } from '../support/fixture.ts';

const env = useDiego('returns', { convergeIntervalMs: 1000 });
const { client } = env;
const dir = mkdtempSync(path.join(tmpdir(), 'cell-returns-'));
const reps: Rep[] = [];
let n = 0;

function cell(name: string, o: { leaseSeconds?: number } = {}) {
  const cellId = `${name}-${process.pid}-${++n}`;
  const backend = new ProcessBackend({ baseDir: path.join(dir, cellId), persistent: true });
  const rep = new Rep({
    kc: env.kc,
    cellId,
    zone: 'z1',
    capacity: { memoryMb: 1024, diskMb: 4096, containers: 10 },
    stacks: ['busybox'],
    backend,
    log: env.log,
    systemNamespace: env.systemNamespace,
    startupIntervalMs: 100,
    gracefulShutdownMs: 500,
    pollingIntervalMs: 2000,
    leaseSeconds: o.leaseSeconds ?? 15,
  });
  reps.push(rep);
  return { rep, backend, cellId };
}

afterEach(async () => {
  await Promise.all(reps.splice(0).map((r) => r.stop()));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const instances = async (): Promise<IActualLRP[]> => client.list('ActualLRP', { namespace: env.ns });
const ordinary = async () => (await instances()).find((a) => (a.status?.presence ?? 'ORDINARY') === 'ORDINARY');
const pids = async (b: ProcessBackend) => {
  const out: number[] = [];
  for (const h of await b.list()) {
    const c = await b.lookup(h);
    for (const p of (await c?.processes?.()) ?? []) if (p.exitStatus === undefined && alive(p.pid)) out.push(p.pid);
  }
  return out;
};

async function desire(name: string, placementTags?: string[]) {
  await client.create('DesiredLRP', {
    metadata: { name, namespace: env.ns },
    spec: {
      processGuid: `${name}-${process.pid}`,
      domain: 'cf-apps',
      rootFs: 'preloaded:busybox',
      instances: 1,
      memoryMb: 64,
      ...(placementTags ? { placementTags } : {}),
      action: { run: { path: '/bin/sh', args: ['-c', 'while true; do sleep 0.2; done'], user: 'root' } },
    },
  });
}

describe('a lost cell that comes back', () => {
  it('after its instance was claimed on another cell: stops its own container; one container per index', async () => {
    // A renews its lease only every 20 s: after its Lease is deleted it stays "lost" long enough for B to take over.
    const a = cell('a', { leaseSeconds: 60 });
    await a.rep.start();
    await desire('web');
    const first = await eventually(async () => {
      const o = await ordinary();
      expect(o?.status).toMatchObject({ state: 'RUNNING', cellId: a.cellId });
      return o!;
    }, 30_000);
    expect(await pids(a.backend)).toHaveLength(1);
    const b = cell('b');
    await b.rep.start();
    await releasePresence(env.kc, env.systemNamespace, a.cellId); // A is lost (its agent goes on running)
    const replaced = await eventually(async () => {
      const o = await ordinary();
      expect(o?.status).toMatchObject({ state: 'RUNNING', cellId: b.cellId });
      return o!;
    }, 60_000);
    expect(replaced.status?.instanceGuid).not.toBe(first.status?.instanceGuid);
    // A renews its lease and is present again: its suspect is retired, its container stopped.
    await eventually(async () => {
      expect(await pids(a.backend)).toEqual([]);
      expect(await a.backend.list()).toEqual([]);
    }, 60_000);
    const all = await instances();
    expect(all).toHaveLength(1);
    expect(all[0]!.status).toMatchObject({
      state: 'RUNNING',
      cellId: b.cellId,
      instanceGuid: replaced.status?.instanceGuid,
    });
    expect(await pids(b.backend)).toHaveLength(1);
  });

  it('before its instance was claimed elsewhere: its suspect is promoted back and its container kept', async () => {
    const a = cell('a', { leaseSeconds: 60 });
    await a.rep.start();
    await desire('api');
    const first = await eventually(async () => {
      const o = await ordinary();
      expect(o?.status).toMatchObject({ state: 'RUNNING', cellId: a.cellId });
      return o!;
    }, 30_000);
    const [pid] = await pids(a.backend);
    await releasePresence(env.kc, env.systemNamespace, a.cellId); // lost; no other cell can take the replacement
    await eventually(async () => {
      const all = await instances();
      expect(all.find((x) => x.status?.presence === 'SUSPECT')?.status?.instanceGuid).toBe(first.status?.instanceGuid);
    }, 30_000);
    // Within 20 s A renews and is back: the suspect is promoted (same instance, same process).
    await eventually(async () => {
      const all = await instances();
      expect(all).toHaveLength(1);
      expect(all[0]!.status).toMatchObject({
        state: 'RUNNING',
        presence: 'ORDINARY',
        cellId: a.cellId,
        instanceGuid: first.status?.instanceGuid,
      });
    }, 60_000);
    await new Promise((r) => setTimeout(r, 5000)); // a few bulk sync passes: the container stays
    expect(await pids(a.backend)).toEqual([pid]);
  });
});
