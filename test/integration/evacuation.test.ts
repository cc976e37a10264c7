// Evacuation (Diego's drain) against a real API server: a draining simulated cell runs the cell-agent's own
// evacuator, the controllers (converger, auctioneer) place replacements on the other cells.
import { readdirSync, readlinkSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { IActualLRP, IDesiredLRP } from '../../src/crds/models.ts';
import { followNodeDrain } from '../../src/cell-agent/drain.ts';
import { releasePresence } from '../../src/cell-agent/presence.ts';
import { registry } from '../../src/lib/metrics.ts';
import { exitOf } from '../support/child.ts';
import { eventually } from '../support/eventually.ts';
import { useDiego } from '../support/fixture.ts';
import { spawnAgent } from '../support/agent-process.ts';
import { kubectl } from '../support/kube.ts';
import { presenceOf } from '../../src/lifecycle/actual-lrp.ts';
import { alive, stat, type Proc } from '../support/proc-tree.ts';

const env = useDiego('evac', { convergeIntervalMs: 2000 });
const { client } = env;

let seq = 0;
async function desire(
  instances: number,
  name = `app-${++seq}`,
  extra: Partial<IDesiredLRP['spec']> = {},
): Promise<IDesiredLRP> {
  return client.create('DesiredLRP', {
    metadata: { name, namespace: env.ns },
    spec: {
      processGuid: `${name}-guid`,
      domain: 'cf-apps',
      rootFs: 'preloaded:busybox',
      instances,
      memoryMb: 64,
      diskMb: 64,
      action: { run: { path: '/bin/app', user: 'root' } },
      ...extra,
    },
  });
}

const instancesOf = (d: IDesiredLRP): Promise<IActualLRP[]> =>
  client.list('ActualLRP', { namespace: env.ns, labelSelector: `diego.dev/desired-lrp-uid=${d.metadata.uid}` });
// ORDINARY records may have no status yet (UNCLAIMED); a copy counts once its status says what it is.
const byPresence = (all: IActualLRP[], presence: string) =>
  all.filter((a) => (presence === 'ORDINARY' ? presenceOf(a) === presence : a.status?.presence === presence));

async function runningOn(d: IDesiredLRP, n: number, cellId: string): Promise<IActualLRP[]> {
  return eventually(async () => {
    const ordinary = byPresence(await instancesOf(d), 'ORDINARY');
    expect(ordinary.filter((a) => a.status?.state === 'RUNNING' && a.status.cellId === cellId)).toHaveLength(n);
    return ordinary;
  }, 30_000);
}

const opts = { evacuationPollIntervalMs: 500 };

describe('evacuation', () => {
  it('running instances get EVACUATING copies that keep serving until their replacements run on another cell', async () => {
    const [draining] = await env.startCells(1, () => opts);
    const d = await desire(2);
    const before = await runningOn(d, 2, draining!.o.cellId);
    const [other] = await env.startCells(1, () => ({ autoStart: false })); // replacements wait here at first

    const evacuation = draining!.evacuate();
    const copies = await eventually(async () => {
      const all = await instancesOf(d);
      const evacuating = byPresence(all, 'EVACUATING');
      expect(evacuating).toHaveLength(2);
      const ordinary = byPresence(all, 'ORDINARY');
      expect(ordinary.every((a) => a.status?.state === 'UNCLAIMED' && a.spec.cellId === other!.o.cellId)).toBe(true);
      return evacuating;
    }, 30_000);
    for (const copy of copies) {
      const original = before.find((a) => a.spec.index === copy.spec.index)!;
      expect(copy.metadata.name).toBe(`${original.metadata.name}-evacuating`);
      expect(copy.spec.cellId).toBe(draining!.o.cellId);
      // Same instance, same address: routes stay while the replacement starts.
      expect(copy.status).toMatchObject({
        state: 'RUNNING',
        instanceGuid: original.status?.instanceGuid,
        cellId: draining!.o.cellId,
        netInfo: original.status?.netInfo,
      });
      expect(draining!.containers.has(copy.status!.instanceGuid!)).toBe(true);
    }
    const cell = await client.get('Cell', undefined, draining!.name);
    expect(cell.status?.evacuating).toBe(true);
    // The app is still served by its evacuating instances: not an outage.
    await eventually(async () => {
      const s = (await client.get('DesiredLRP', env.ns, d.metadata.name!)).status;
      expect(s?.runningInstances).toBe(2);
    });

    // The draining cell gets no new work.
    const late = await desire(1);
    await eventually(async () => {
      const [a] = await instancesOf(late);
      expect(a?.spec.cellId).toBe(other!.o.cellId);
    });

    other!.o.autoStart = true;
    await other!.claimPlaced();
    await runningOn(d, 2, other!.o.cellId);
    await eventually(async () => expect(byPresence(await instancesOf(d), 'EVACUATING')).toHaveLength(0), 30_000);
    await eventually(() => expect(draining!.containers.size).toBe(0));
    expect(await evacuation).toEqual({ timedOut: false, stranded: 0 });
  }, 90_000);

  it('an instance still starting is sent back to the auction and its container destroyed, without a copy', async () => {
    const [draining] = await env.startCells(1, () => ({ ...opts, autoRun: false }));
    const d = await desire(1);
    const claimed = await eventually(async () => {
      const [a] = await instancesOf(d);
      expect(a?.status?.state).toBe('CLAIMED');
      return a!;
    });
    const [other] = await env.startCells(1);
    const result = await draining!.evacuate();
    expect(result).toEqual({ timedOut: false, stranded: 0 });
    expect(draining!.containers.size).toBe(0);
    const [replacement] = await runningOn(d, 1, other!.o.cellId);
    expect(replacement!.status?.instanceGuid).not.toBe(claimed.status?.instanceGuid);
    expect(byPresence(await instancesOf(d), 'EVACUATING')).toHaveLength(0);
  }, 60_000);

  it('stops the old instance at the evacuation timeout when no replacement runs, and counts it stranded', async () => {
    const [draining] = await env.startCells(1, () => ({ ...opts, evacuationTimeoutMs: 3000 }));
    const d = await desire(1);
    await runningOn(d, 1, draining!.o.cellId);
    await env.startCells(1, () => ({ autoStart: false })); // a cell that never starts the replacement
    const started = Date.now();
    const result = await draining!.evacuate();
    expect(result).toEqual({ timedOut: true, stranded: 1 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(3000);
    expect(draining!.containers.size).toBe(0);
    expect((await registry.getSingleMetric('StrandedEvacuatingActualLRPs')?.get())?.values[0]?.value).toBe(1);
    await eventually(async () => {
      const all = await instancesOf(d);
      expect(byPresence(all, 'EVACUATING')).toHaveLength(0);
      expect(byPresence(all, 'ORDINARY')[0]?.status?.state).toBe('UNCLAIMED');
    });
  }, 60_000);

  it('removes the copy when the evacuating container exits on its own', async () => {
    const [draining] = await env.startCells(1, () => opts);
    const d = await desire(1);
    await runningOn(d, 1, draining!.o.cellId);
    await env.startCells(1, () => ({ autoStart: false }));
    const evacuation = draining!.evacuate();
    const [copy] = await eventually(async () => {
      const copies = byPresence(await instancesOf(d), 'EVACUATING');
      expect(copies).toHaveLength(1);
      return copies;
    });
    draining!.exitContainer(copy!.status!.instanceGuid!);
    await eventually(async () => expect(byPresence(await instancesOf(d), 'EVACUATING')).toHaveLength(0));
    expect(await evacuation).toEqual({ timedOut: false, stranded: 0 });
  }, 60_000);

  it("prunes an evacuating copy when its cell disappears (Diego's pruneEvacuatingActualLRPs)", async () => {
    const [draining] = await env.startCells(1, () => opts);
    const d = await desire(1);
    await runningOn(d, 1, draining!.o.cellId);
    await env.startCells(1, () => ({ autoStart: false }));
    void draining!.evacuator.evacuate();
    await eventually(async () => expect(byPresence(await instancesOf(d), 'EVACUATING')).toHaveLength(1));
    // The draining cell dies mid-evacuation (no heartbeat, presence gone) with its container still up.
    await draining!.kill();
    await releasePresence(env.kc, env.systemNamespace, draining!.o.cellId);
    await eventually(async () => expect(byPresence(await instancesOf(d), 'EVACUATING')).toHaveLength(0), 30_000);
    await draining!.evacuator.evacuate();
  }, 60_000);

  it('running tasks finish on the draining cell; new tasks go elsewhere', async () => {
    const [draining] = await env.startCells(1, () => opts);
    const task = (name: string) =>
      client.create('Task', {
        metadata: { name, namespace: env.ns },
        spec: {
          taskGuid: name,
          domain: 'cf-tasks',
          rootFs: 'preloaded:busybox',
          memoryMb: 32,
          action: { run: { path: '/bin/true', user: 'root' } },
        },
      });
    await task('long');
    await eventually(async () => expect((await client.get('Task', env.ns, 'long')).status?.state).toBe('Running'));
    const [other] = await env.startCells(1, () => ({ autoStartTasks: false }));
    let ended = false;
    const evacuation = draining!.evacuate().then((r) => ((ended = true), r));
    await eventually(async () =>
      expect((await client.get('Cell', undefined, draining!.name)).status?.evacuating).toBe(true),
    );
    await task('later');
    await eventually(async () => expect((await client.get('Task', env.ns, 'later')).spec.cellId).toBe(other!.o.cellId));
    expect(ended).toBe(false); // still waiting for the running task
    await draining!.complete('long', env.ns, { failed: false, result: 'done' });
    expect(await evacuation).toEqual({ timedOut: false, stranded: 0 });
    expect((await client.get('Task', env.ns, 'long')).status).toMatchObject({ state: 'Completed', failed: false });
  }, 60_000);

  it('a cordoned node evacuates its cell, which takes work again once the node is schedulable', async () => {
    const node = `node-${env.ns}`;
    const created = await kubectl(
      ['create', '-f', '-'],
      JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: node } }),
    );
    expect(created.code).toBe(0);
    const [cell] = await env.startCells(1, () => opts);
    const d = await desire(1);
    await runningOn(d, 1, cell!.o.cellId);
    const [other] = await env.startCells(1);
    const watch = followNodeDrain(
      env.kc,
      { evacuate: () => cell!.evacuator.evacuate(), evacuator: cell!.evacuator },
      node,
      env.log,
    );
    try {
      expect((await kubectl(['cordon', node])).code).toBe(0);
      await runningOn(d, 1, other!.o.cellId);
      await eventually(async () => {
        expect((await client.get('Cell', undefined, cell!.name)).status?.evacuating).toBe(true);
        expect(byPresence(await instancesOf(d), 'EVACUATING')).toHaveLength(0);
        expect(cell!.containers.size).toBe(0);
      });
      expect((await kubectl(['uncordon', node])).code).toBe(0);
      await eventually(async () =>
        expect((await client.get('Cell', undefined, cell!.name)).status?.evacuating).toBe(false),
      );
      const more = await desire(4);
      await eventually(async () => {
        const placed = (await instancesOf(more)).filter((a) => a.spec.cellId === cell!.o.cellId);
        expect(placed.length).toBeGreaterThan(0);
      });
    } finally {
      await watch.stop();
      await kubectl(['delete', 'node', node]);
    }
  }, 60_000);

  it('an uncordon mid-evacuation cancels it: what has not moved runs on, nothing is stranded', async () => {
    // No other cell: the replacement cannot be placed, so the evacuation would wait for its timeout and then stop
    // the instance. Uncordoning (resume) ends it at once instead, and the cell takes its own instance back.
    const [cell] = await env.startCells(1, () => ({ ...opts, evacuationTimeoutMs: 600_000 }));
    const d = await desire(1);
    const [before] = await runningOn(d, 1, cell!.o.cellId);
    const guid = before!.status!.instanceGuid!;
    const evacuation = cell!.evacuator.evacuate();
    await eventually(async () => expect(byPresence(await instancesOf(d), 'EVACUATING')).toHaveLength(1));
    const started = Date.now();
    await cell!.evacuator.resume();
    expect(await evacuation).toEqual({ timedOut: false, stranded: 0, cancelled: true });
    expect(Date.now() - started).toBeLessThan(60_000); // not the 600 s timeout
    expect(cell!.containers.has(guid)).toBe(true);
    expect((await client.get('Cell', undefined, cell!.name)).status?.evacuating).toBe(false);
    // The replacement lands on this cell again; once it runs, the copy goes and its old container stops.
    await eventually(async () => {
      const all = await instancesOf(d);
      expect(byPresence(all, 'EVACUATING')).toHaveLength(0);
      const [now] = byPresence(all, 'ORDINARY');
      expect(now?.status).toMatchObject({ state: 'RUNNING', cellId: cell!.o.cellId });
      expect(cell!.containers.has(guid)).toBe(false);
    }, 30_000);
  }, 90_000);

  it('RECREATE: no copies; one instance at a time is stopped and placed elsewhere', async () => {
    const [draining] = await env.startCells(1, () => opts);
    const d = await desire(2, undefined, { updateStrategy: 'RECREATE' });
    await runningOn(d, 2, draining!.o.cellId);
    const [other] = await env.startCells(1);
    let done = false;
    let fewest = 2;
    let copies = 0;
    const sampler = (async () => {
      while (!done) {
        const all = await instancesOf(d);
        copies += byPresence(all, 'EVACUATING').length;
        fewest = Math.min(fewest, all.filter((a) => a.status?.state === 'RUNNING').length);
        await sleep(50);
      }
    })();
    expect(await draining!.evacuate()).toEqual({ timedOut: false, stranded: 0 });
    await runningOn(d, 2, other!.o.cellId);
    done = true;
    await sampler;
    expect(copies).toBe(0);
    expect(fewest).toBeGreaterThanOrEqual(1); // never both down at once
  }, 60_000);

  it('SIGTERM: the cell-agent command hands its instances over before it exits', async () => {
    const cellId = `agent-${env.ns}`;
    const { child: agent, cleanUp } = spawnAgent(cellId, env.systemNamespace, ['--evacuation-timeout=60']);
    try {
      const d = await desire(1, undefined, {
        action: { run: { path: '/bin/sh', args: ['-c', 'exec sleep 600'], user: 'root' } },
      });
      await runningOn(d, 1, cellId);
      const [other] = await env.startCells(1);
      agent.kill('SIGTERM');
      const [code] = await exitOf(agent, 90_000, 'the cell agent (after SIGTERM)');
      expect(code).toBe(0);
      // By the time the agent is gone, the replacement already runs elsewhere and no copy is left.
      const all = await instancesOf(d);
      expect(all).toHaveLength(1);
      expect(presenceOf(all[0]!)).toBe('ORDINARY');
      expect(all[0]!.status).toMatchObject({ state: 'RUNNING', cellId: other!.o.cellId });
      // It gave its presence up; its Cell stays, marked evacuating, until it starts again.
      expect((await client.get('Cell', undefined, cellId)).status?.evacuating).toBe(true);
    } finally {
      cleanUp();
      await client.delete('Cell', { name: cellId });
    }
  }, 90_000);

  it('SIGTERM with no other cell: the agent stops its instances at the evacuation timeout and exits', async () => {
    const cellId = `alone-${env.ns}`;
    const {
      child: agent,
      stateDir,
      cleanUp,
    } = spawnAgent(cellId, env.systemNamespace, ['--stacks=cflinuxfs4', '--memory-mb=2048', '--evacuation-timeout=10']);
    let sleeps: Proc[] = [];
    try {
      const d = await desire(2, undefined, {
        rootFs: 'preloaded:cflinuxfs4',
        action: { run: { path: '/bin/sh', args: ['-c', 'exec sleep 600'], user: 'root' } },
      });
      await runningOn(d, 2, cellId);
      sleeps = await eventually(() => {
        const found = processesUnder(stateDir).filter((p) => p.comm === 'sleep');
        expect(found).toHaveLength(2);
        return found;
      });
      const started = Date.now();
      agent.kill('SIGTERM');
      const [code] = await exitOf(agent, 90_000, 'the cell agent (after SIGTERM)');
      expect(code).toBe(0);
      // Nowhere to move them: the instances ran until the evacuation timeout, then were stopped.
      expect(Date.now() - started).toBeGreaterThanOrEqual(10_000);
      expect(sleeps.filter(alive)).toEqual([]);
      // Not lost: back to the auction, waiting for a cell; no EVACUATING copy left.
      await eventually(async () => {
        const all = await instancesOf(d);
        expect(byPresence(all, 'EVACUATING')).toHaveLength(0);
        const ordinary = byPresence(all, 'ORDINARY');
        expect(ordinary).toHaveLength(2);
        for (const a of ordinary) expect(a.status?.state ?? 'UNCLAIMED').toBe('UNCLAIMED');
      });
    } finally {
      cleanUp();
      for (const p of sleeps.filter(alive)) process.kill(p.pid, 'SIGKILL');
      await client.delete('Cell', { name: cellId }).catch(() => undefined);
    }
  }, 150_000);
});

/** Processes whose working directory is under `dir` (the process backend runs each container's in its own dir). */
function processesUnder(dir: string): Proc[] {
  const found: Proc[] = [];
  for (const name of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      if (!readlinkSync(`/proc/${name}/cwd`).startsWith(`${dir}/`)) continue;
    } catch {
      continue; // gone, or not ours to read
    }
    const s = stat(Number(name));
    if (s) found.push({ pid: Number(name), comm: s.comm, start: s.start });
  }
  return found;
}
