import { describe, expect, it } from 'vitest';
import { lrp, task } from '../lifecycle/testing.ts';
import Fastify from 'fastify';
import type { AccessAttributes } from '../lib/ops-auth.ts';
import { registerStateRoute, repCellState } from './rep-state.ts';

describe("repCellState (Diego's rep.CellState JSON)", () => {
  it('says what the cell offers and runs, with the rep’s field names', () => {
    const running = lrp('RUNNING', { instanceGuid: 'g1', cellId: 'c1', index: 2 });
    const starting = lrp('CLAIMED', { instanceGuid: 'g2', cellId: 'c1', index: 3 });
    const t = task('Running', { cellId: 'c1' });
    const state = repCellState({
      cellId: 'c1',
      repUrl: 'http://10.0.0.1:17008',
      zone: 'z1',
      total: { memoryMb: 1024, diskMb: 2048, containers: 10 },
      available: { memoryMb: 512, diskMb: 1900, containers: 7 },
      stacks: ['cflinuxfs4'],
      rootfsProviders: ['docker'],
      placementTags: ['gpu'],
      optionalPlacementTags: [],
      volumeDrivers: ['nfs'],
      evacuating: true,
      lrps: [
        { record: running, held: { memoryMb: 256, diskMb: 64 } },
        { record: starting, held: { memoryMb: 128, diskMb: 32 } },
      ],
      tasks: [{ task: t, held: { memoryMb: 128, diskMb: 52 } }],
    });
    expect(state).toMatchObject({
      rep_url: 'http://10.0.0.1:17008',
      cell_id: 'c1',
      RootFSProviders: {
        preloaded: { type: 'fixed_set', set: { cflinuxfs4: {} } },
        'preloaded+layer': { type: 'fixed_set', set: { cflinuxfs4: {} } },
        docker: { type: 'arbitrary' },
      },
      AvailableResources: { MemoryMB: 512, DiskMB: 1900, Containers: 7 },
      TotalResources: { MemoryMB: 1024, DiskMB: 2048, Containers: 10 },
      StartingContainerCount: 1,
      Zone: 'z1',
      Evacuating: true,
      VolumeDrivers: ['nfs'],
      PlacementTags: ['gpu'],
    });
    expect(state.LRPs).toEqual([
      expect.objectContaining({ instance_guid: 'g1', process_guid: 'web', index: 2, MemoryMB: 256, state: 'RUNNING' }),
      expect.objectContaining({ instance_guid: 'g2', index: 3, DiskMB: 32, state: 'CLAIMED' }),
    ]);
    expect(state.Tasks).toEqual([
      expect.objectContaining({ TaskGuid: 't-guid', Domain: 'cf-tasks', MemoryMB: 128, state: 2, failed: false }),
    ]);
  });
});

describe('GET /state (registerStateRoute)', () => {
  it('off loopback: a token allowed to get cells, else 401 / 403 and no state', async () => {
    const asked: AccessAttributes[] = [];
    const app = Fastify();
    registerStateRoute(app, () => ({ cell_id: 'c1' }), {
      authenticate: (token) => Promise.resolve(token === 'ops' || token === 'app' ? { username: token } : undefined),
      authorize: (user, attrs) => {
        asked.push(attrs);
        return Promise.resolve(user.username === 'ops');
      },
    });
    const get = (token?: string) =>
      app.inject({ method: 'GET', url: '/state', headers: token ? { authorization: `Bearer ${token}` } : {} });
    expect((await get()).statusCode).toBe(401);
    expect((await get('forged')).statusCode).toBe(401);
    const refused = await get('app');
    expect(refused.statusCode).toBe(403);
    expect(refused.body).not.toContain('c1');
    const ok = await get('ops');
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toEqual({ cell_id: 'c1' });
    expect(asked[0]).toEqual({ resource: { group: 'diego.dev', resource: 'cells', verb: 'get' } });
    await app.close();
  });

  it('on loopback (no auth): served as is', async () => {
    const app = Fastify();
    registerStateRoute(app, () => ({ cell_id: 'c2' }));
    expect((await app.inject({ method: 'GET', url: '/state' })).json()).toEqual({ cell_id: 'c2' });
    await app.close();
  });
});
