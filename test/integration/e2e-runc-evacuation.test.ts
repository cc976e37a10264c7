// Evacuation end to end with real runc containers: two cell agents on this machine; one is drained the way
// SIGTERM drains it (evacuate, then stop). The app keeps answering through the old containers until their
// replacements run on the other cell; then the old containers are gone.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { Rep } from '../../src/cell-agent/rep.ts';
import type { IActualLRP } from '../../src/crds/models.ts';
import { eventually } from '../support/eventually.ts';
import { useDiego } from '../support/fixture.ts';
import { deleteLink, hostPortOf as hostPort, runcBackend, testRep } from '../support/runc-cell.ts';
import { presenceOf } from '../../src/lifecycle/actual-lrp.ts';

const env = useDiego('e2e-evac', { convergeIntervalMs: 2000 });
const { client } = env;
const dir = mkdtempSync(path.join(tmpdir(), 'diego-e2e-evac-'));
const prefix = `ev${process.pid}-`;
const bridges: string[] = [];
const reps: Rep[] = [];

function startRep(name: string, subnet: number): Promise<Rep> {
  const bridge = `dev${process.pid % 10000}${name}`;
  bridges.push(bridge);
  const backend = runcBackend({
    stateDir: path.join(dir, name),
    idPrefix: prefix,
    networkName: `evac-${name}-${process.pid}`,
    bridge,
    subnet,
    ipamDataDir: path.join(dir, `ipam-${name}`),
  });
  const rep = testRep(env, backend, { cellId: `evac-${name}-${process.pid}`, evacuationPollingIntervalMs: 1000 });
  reps.push(rep);
  return rep.start().then(() => rep);
}

/** Containers of one cell, from runc itself. */
const containersOf = (name: string) =>
  execFileSync('runc', ['--root', path.join(dir, name, 'runc'), 'list', '-q'], { encoding: 'utf8' })
    .split('\n')
    .filter((id) => id.startsWith(prefix));

afterAll(async () => {
  for (const rep of reps) await rep.stop().catch(() => undefined);
  for (const bridge of bridges) deleteLink(bridge);
  rmSync(dir, { recursive: true, force: true });
});

const instances = (): Promise<IActualLRP[]> => client.list('ActualLRP', { namespace: env.ns });

describe('runc evacuation end to end', () => {
  it('keeps the app answering through the evacuating containers until the replacements run on the other cell', async () => {
    const draining = await startRep('a', 231);
    await client.create('DesiredLRP', {
      metadata: { name: 'web', namespace: env.ns },
      spec: {
        processGuid: 'web',
        domain: 'cf-apps',
        rootFs: 'preloaded:busybox',
        instances: 2,
        memoryMb: 64,
        ports: [8080],
        // A start that takes a moment, so there is a window where only the old containers serve.
        setup: {
          run: { path: '/bin/sh', args: ['-c', 'sleep 2; mkdir -p /www && hostname > /www/index.html'], user: 'root' },
        },
        action: { run: { path: '/bin/httpd', args: ['-f', '-p', '8080', '-h', '/www'], user: 'root' } },
        checkDefinition: { checks: [{ httpCheck: { port: 8080, path: '/' } }] },
      },
    });
    const before = await eventually(async () => {
      const running = (await instances()).filter((a) => a.status?.state === 'RUNNING');
      expect(running).toHaveLength(2);
      return running;
    }, 60_000);
    const oldPorts = before.map(hostPort);
    for (const port of oldPorts) expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(200);
    expect(containersOf('a')).toHaveLength(2);

    await startRep('b', 230);
    // Poll the old containers through their host ports from the start of the drain until both replacements run.
    let replaced = false;
    const answers: { port: number | undefined; at: number; result: number | string }[] = [];
    const poller = (async () => {
      while (!replaced) {
        for (const port of oldPorts)
          answers.push({
            port,
            at: Date.now(),
            result: await fetch(`http://127.0.0.1:${port}/`).then(
              (r) => r.status,
              (err: Error) => err.message,
            ),
          });
        await sleep(100);
      }
    })();
    const evacuation = draining.evacuate();
    const copies = await eventually(async () => {
      const all = await instances();
      const evacuating = all.filter((a) => a.status?.presence === 'EVACUATING');
      expect(evacuating).toHaveLength(2);
      return evacuating;
    }, 30_000);
    expect(copies.map(hostPort).sort()).toEqual([...oldPorts].sort());
    const after = await eventually(async () => {
      const ordinary = (await instances()).filter((a) => presenceOf(a) === 'ORDINARY');
      expect(
        ordinary.filter((a) => a.status?.state === 'RUNNING' && a.status.cellId === `evac-b-${process.pid}`),
      ).toHaveLength(2);
      return ordinary;
    }, 60_000);
    replaced = true;
    await poller;
    // No request failed until the replacement of its instance was RUNNING (then the old container may stop).
    const replacedAt = (port: number | undefined) => {
      const index = before.find((a) => hostPort(a) === port)?.spec.index;
      return Date.parse(after.find((a) => a.spec.index === index)?.status?.since ?? '');
    };
    expect(answers.filter((a) => a.result !== 200 && a.at < replacedAt(a.port))).toEqual([]);
    expect(answers.filter((a) => a.at < replacedAt(a.port)).length).toBeGreaterThan(4);

    // Then the old containers go, and their copies with them.
    expect(await evacuation).toEqual({ timedOut: false, stranded: 0 });
    await eventually(async () => {
      expect((await instances()).filter((a) => a.status?.presence === 'EVACUATING')).toHaveLength(0);
      expect(containersOf('a')).toHaveLength(0);
    }, 30_000);
    for (const port of oldPorts) await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toThrow();
    for (const a of after) expect((await fetch(`http://127.0.0.1:${hostPort(a)}/`)).status).toBe(200);
    expect(containersOf('b')).toHaveLength(2);
    await draining.stop(); // as the agent does after evacuating on SIGTERM

    await client.delete('DesiredLRP', { namespace: env.ns, name: 'web' });
    await eventually(async () => expect(await instances()).toHaveLength(0), 30_000);
    await eventually(() => expect(containersOf('b')).toHaveLength(0), 30_000);
  }, 180_000);
});
