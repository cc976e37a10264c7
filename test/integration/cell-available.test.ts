// The auction respects what a cell's rep reports it has left (Cell status.available), not only its own count
// of the work placed there: a cell whose containers fill it gets no more work.
import { describe, expect, it } from 'vitest';
import { cellObjectName } from '../../src/cell-agent/presence.ts';
import { eventually } from '../support/eventually.ts';
import { useDiego } from '../support/fixture.ts';

const env = useDiego('available');
const { client } = env;

describe('cell available resources', () => {
  it('places nothing on a cell that reports no memory left', async () => {
    const [full, free] = await env.startCells(2);
    await client.patchStatus(
      'Cell',
      { name: cellObjectName(full!.o.cellId) },
      { available: { memoryMb: 0, diskMb: 4096, containers: 100 } },
    );
    await client.create('DesiredLRP', {
      metadata: { name: 'app', namespace: env.ns },
      spec: {
        processGuid: 'app',
        domain: 'cf-apps',
        rootFs: 'preloaded:busybox',
        instances: 4,
        memoryMb: 32,
        action: { run: { path: '/bin/true', user: 'root' } },
      },
    });
    await eventually(async () => {
      const all = await client.list('ActualLRP', { namespace: env.ns });
      expect(all.filter((a) => a.status?.state === 'RUNNING')).toHaveLength(4);
      expect(new Set(all.map((a) => a.spec.cellId))).toEqual(new Set([free!.o.cellId]));
    }, 30_000);
  }, 60_000);
});
