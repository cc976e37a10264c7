// The auctioneer's placement write cut before it reaches the API server (the API server restarting as the auction
// commits): the work is auctioned again and placed, instead of being kept as "placed, not yet seen" for good. A new
// instance is placed as it is created (one write): that create is cut too.
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../support/eventually.ts';
import { startFaultProxy, type FaultProxy, type ProxiedRequest } from '../support/fault-proxy.ts';
import { useDiego } from '../support/fixture.ts';
import { testKubeConfig } from '../support/kube.ts';

// The controllers talk to the API server through the proxy (set up before useDiego starts them).
const proxied = new KubeConfig();
let proxy: FaultProxy;
const cutOnce = new Set(['tasks/lost-place', 'actuallrps/lost-place-app-']);
let createCut = false;
const pathOf = (r: ProxiedRequest) => r.path.split('?')[0] ?? '';
function fault(r: ProxiedRequest): 'refuse' | undefined {
  // The converger's create of the instance, placed by the auctioneer.
  if (!createCut && r.method === 'POST' && pathOf(r).endsWith('/actuallrps') && r.body.includes('"cellId"')) {
    createCut = true;
    return 'refuse';
  }
  if (r.method !== 'PATCH' || r.path.includes('/status') || !r.body.includes('"cellId"')) return undefined;
  for (const target of cutOnce) {
    if (r.path.includes(`/${target}`)) {
      cutOnce.delete(target);
      return 'refuse';
    }
  }
  return undefined;
}
beforeAll(async () => {
  proxy = await startFaultProxy(testKubeConfig(), fault);
  proxied.loadFromOptions({
    clusters: proxy.kc.clusters,
    users: proxy.kc.users,
    contexts: proxy.kc.contexts,
    currentContext: proxy.kc.currentContext,
  });
});
afterAll(() => proxy?.close());

const env = useDiego('auction-lost', { kc: proxied });
const { client } = env;

describe('a placement write that never reached the API server', () => {
  it('is made again: the task and the instance are placed and started', { timeout: 120_000 }, async () => {
    await env.startCells(1);
    await client.create('Task', {
      metadata: { name: 'lost-place', namespace: env.ns },
      spec: {
        taskGuid: 'lost-place',
        domain: 'cf-tasks',
        rootFs: 'preloaded:busybox',
        memoryMb: 16,
        action: { run: { path: '/bin/true', user: 'root' } },
      },
    });
    await client.create('DesiredLRP', {
      metadata: { name: 'lost-place-app', namespace: env.ns },
      spec: {
        processGuid: 'lost-place-app',
        domain: 'cf-apps',
        rootFs: 'preloaded:busybox',
        instances: 1,
        memoryMb: 16,
        action: { run: { path: '/bin/app', user: 'vcap' } },
      },
    });
    await eventually(async () => {
      const t = await client.get('Task', env.ns, 'lost-place');
      const [a] = await client.list('ActualLRP', { namespace: env.ns });
      // Started by the simulated cell (it leaves its tasks running).
      expect({ task: t.status?.state, lrp: a?.status?.state }).toEqual({ task: 'Running', lrp: 'RUNNING' });
    }, 60_000);
    // The task's first placement write and the instance's first (placed) create were cut.
    expect(proxy.refused.map((r) => `${r.method} ${pathOf(r).split('/').slice(-2).join('/')}`)).toEqual(
      expect.arrayContaining(['PATCH tasks/lost-place', expect.stringMatching(/^POST .*\/actuallrps$/)]),
    );
  });
});
