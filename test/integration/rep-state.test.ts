// `cfdot cell-states`, done with Diego's own clients (test/bbs-conformance, scenario "cell-states"): the cells from
// the BBS facade, then each cell's GET /state through code.cloudfoundry.org/rep's client, against a cell agent run as
// `diego-operator cell-agent` (its ops server answers /state and the Cell names it as the rep address).
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBbsApp } from '../../src/bbs/app.ts';
import { CachedDiegoClient } from '../../src/bbs/cached-client.ts';
import { cellObjectName } from '../../src/cell-agent/presence.ts';
import type { ICell } from '../../src/crds/models.ts';
import { createInformer } from '../../src/lib/informer.ts';
import { runBbsClient } from '../support/bbs-go.ts';
import { eventually } from '../support/eventually.ts';
import { useDiego } from '../support/fixture.ts';
import { spawnAgent } from '../support/agent-process.ts';
import { exitOf } from '../support/child.ts';

const env = useDiego('rep-state', { convergeIntervalMs: 2000 });
let app: ReturnType<typeof buildBbsApp>;
let reads: CachedDiegoClient;
let url = '';

beforeAll(async () => {
  reads = new CachedDiegoClient(env.client.kc, { namespace: env.ns, log: env.log });
  await reads.start();
  app = buildBbsApp({ client: reads, namespace: env.ns, systemNamespace: env.systemNamespace, logger: env.log });
  await app.listen({ host: '127.0.0.1', port: 0 });
  url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await app.close();
  await reads.stop();
});

describe('cell states (cfdot cell-states)', () => {
  it(
    "Diego's rep client reads a cell agent's GET /state, found through the BBS's Cells",
    { timeout: 200_000 },
    async () => {
      const cellId = `rep-state-${process.pid}`;
      const { child: agent, cleanUp } = spawnAgent(cellId, env.systemNamespace, [
        '--stacks=cflinuxfs4',
        '--memory-mb=2048',
      ]);
      try {
        const repAddress = await eventually(async () => {
          const cell = await env.client.get('Cell', undefined, cellObjectName(cellId));
          expect(cell.spec.repAddress).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
          return cell.spec.repAddress!;
        }, 60_000);
        await env.client.create('DesiredLRP', {
          metadata: { name: 'stateful', namespace: env.ns },
          spec: {
            processGuid: 'stateful-guid',
            domain: 'cf-apps',
            rootFs: 'preloaded:cflinuxfs4',
            instances: 2,
            memoryMb: 128,
            diskMb: 64,
            action: { run: { path: '/bin/sh', args: ['-c', 'exec sleep 600'], user: 'root' } },
          },
        });
        await eventually(async () => {
          const all = await env.client.list('ActualLRP', { namespace: env.ns });
          expect(all.filter((a) => a.status?.state === 'RUNNING' && a.status.cellId === cellId)).toHaveLength(2);
        }, 60_000);
        const res = await runBbsClient(
          ['-scenario', 'cell-states', '-url', url, '-cell', cellId, '-guid', 'stateful-guid'],
          150_000,
        );
        expect(res.stderr).not.toMatch(/FAIL/);
        expect(res.ok).toEqual(['cells', 'cell-state']);
        const state = JSON.parse(/^state (.*)$/m.exec(res.stdout)![1]!) as Record<string, unknown>;
        expect(state).toMatchObject({
          cell_id: cellId,
          rep_url: repAddress,
          TotalResources: { MemoryMB: 2048 },
          AvailableResources: { MemoryMB: 2048 - 256 },
          Evacuating: false,
        });
        const lrps = state.LRPs as { process_guid: string; index: number; MemoryMB: number; state: string }[];
        expect(lrps.map((l) => [l.process_guid, l.index, l.MemoryMB, l.state]).sort()).toEqual([
          ['stateful-guid', 0, 128, 'RUNNING'],
          ['stateful-guid', 1, 128, 'RUNNING'],
        ]);
        // An empty cell stops at once (SIGTERM evacuates first).
        await env.client.delete('DesiredLRP', { namespace: env.ns, name: 'stateful' });
        await eventually(async () => expect(await env.client.list('ActualLRP', { namespace: env.ns })).toHaveLength(0));
        agent.kill('SIGTERM');
        await exitOf(agent, 60_000, 'the cell agent (after SIGTERM)');
      } finally {
        // SIGKILL if still running: with instances left (the test failed), SIGTERM would evacuate them for
        // --evacuation-timeout (600 s).
        cleanUp();
      }
    },
  );

  it("a restarted agent's Cell names its ops server throughout (registered with it, never without)", async () => {
    const cellId = `rep-restart-${process.pid}`;
    const seen: (string | undefined)[] = [];
    const cells = createInformer<ICell>(env.kc, {
      path: '/apis/diego.dev/v1alpha1/cells',
      fieldSelector: `metadata.name=${cellObjectName(cellId)}`,
    });
    const note = (c: ICell) => seen.push(c.spec.opsUrl);
    cells.on('add', note);
    cells.on('update', note);
    await cells.start();
    try {
      for (let run = 0; run < 2; run++) {
        const { child, cleanUp } = spawnAgent(cellId, env.systemNamespace);
        try {
          await eventually(() => expect(new Set(seen.filter(Boolean)).size).toBeGreaterThan(run), 60_000);
          child.kill('SIGINT');
          await exitOf(child, 60_000, 'the cell agent (after SIGINT)');
        } finally {
          cleanUp(); // SIGKILL if still running
        }
      }
      expect(seen.length).toBeGreaterThan(0);
      expect(seen.filter((u) => !u)).toEqual([]); // every version of the Cell named an ops server
      expect(new Set(seen).size).toBe(2); // one per agent (each listens on a new port)
    } finally {
      await cells.stop();
      await env.client.delete('Cell', { name: cellObjectName(cellId) }).catch(() => undefined);
    }
  }, 200_000);
});
