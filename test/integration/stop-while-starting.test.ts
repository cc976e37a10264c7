// A component stopped while it is still starting (leadership lost, a signal during start-up), or started after its
// stop, starts nothing more: every timer, watch and loop it would start then would have nobody to stop it, and keep
// the process from ending (what CI once hit with the controllers' cache: test/integration/controller-shutdown.test.ts).
// Timers are counted with vitest's fake setInterval (only setInterval: requests and watches run for real), where no
// HTTP/2 client (client-node's undici, which sets one of its own) runs meanwhile.
import { createConnection, createServer, type Server } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, describe, expect, inject, it, vi } from 'vitest';
import { CachedDiegoClient } from '../../src/bbs/cached-client.ts';
import { LocketStore } from '../../src/bbs/locket.ts';
import { ProcessBackend } from '../../src/cell-agent/backends/process.ts';
import { BulkSyncLoop } from '../../src/cell-agent/bulk-sync.ts';
import { cellObjectName } from '../../src/cell-agent/presence.ts';
import { Rep } from '../../src/cell-agent/rep.ts';
import { startBbs } from '../../src/cmd/bbs.ts';
import { runCellAgent } from '../../src/cmd/cell-agent.ts';
import { ROUTE_EMITTER_LEASE_NAME, runRouteEmitter } from '../../src/cmd/route-emitter.ts';
import { Auctioneer } from '../../src/controllers/auctioneer.ts';
import { CellReady } from '../../src/controllers/cell-ready.ts';
import { Converger } from '../../src/controllers/converger.ts';
import { LEADER_LEASE_NAME, Manager } from '../../src/controllers/manager.ts';
import { NatsBus } from '../../src/controllers/nats-bus.ts';
import { type RouteBus, RouteEmitter } from '../../src/controllers/route-emitter.ts';
import { TaskController } from '../../src/controllers/tasks.ts';
import { KubeError, rawRequest } from '../../src/lib/kube.ts';
import { LeaderElector } from '../../src/lib/leader.ts';
import { type Lease, leasePath } from '../../src/lib/lease.ts';
import { createLogger } from '../../src/lib/log.ts';
import { DiegoClient, resourcePath } from '../../src/lib/resources.ts';
import { eventually } from '../support/eventually.ts';
import { startFaultProxy } from '../support/fault-proxy.ts';
import { deleteNamespace, testKubeConfig } from '../support/kube.ts';
import { freePort } from '../support/nats-router.ts';

const kc = testKubeConfig();
const log = createLogger('silent');
const dir = mkdtempSync(path.join(tmpdir(), 'stop-while-starting-'));
const namespaces: string[] = [];
const cells: string[] = [];
/** Stopped at the end, the last pushed first, whatever a test left (a leak it found must not outlive the file). */
const cleanups: (() => Promise<unknown>)[] = [];

const unique = (prefix: string) => `${prefix}-${Math.random().toString(16).slice(2, 8)}`;
const namespace = (prefix: string) => {
  const ns = unique(prefix);
  namespaces.push(ns);
  return ns;
};

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  for (const cellId of cells) {
    await rawRequest(kc, { method: 'DELETE', path: resourcePath('Cell', undefined, cellObjectName(cellId)) }).catch(
      () => undefined,
    );
  }
  await Promise.all(namespaces.map((ns) => deleteNamespace(kc, ns)));
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

/** The Lease, or undefined when there is none. */
async function lease(ns: string, name: string): Promise<Lease | undefined> {
  return rawRequest<Lease>(kc, { method: 'GET', path: leasePath(ns, name) }).catch((err: unknown) => {
    if (err instanceof KubeError && err.code === 404) return undefined;
    throw err;
  });
}

/** Only setInterval is faked: vi.getTimerCount() then counts the intervals set (and not cleared) from here on. */
const countIntervals = () => vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });

describe('Manager stopped while it starts', () => {
  it('a stop before the namespace is ensured leaves no elector campaigning (nor leading) after it', async () => {
    const ns = namespace('sws-elect');
    const identity = unique('sws');
    const manager = new Manager({
      kc,
      log,
      leaderElection: true,
      systemNamespace: ns,
      identity,
      leaseDurationMs: 3000,
    });
    cleanups.push(() => manager.stop());
    const started = manager.start();
    await manager.stop(); // ensureNamespace is still on its way
    await started;
    await sleep(1500); // several retry periods (400 ms): an elector would have taken the free Lease by now
    expect((await lease(ns, LEADER_LEASE_NAME))?.spec?.holderIdentity ?? '').not.toBe(identity);
    expect(manager.isLeader).toBe(false);
  });

  it('without leader election, a stop while the cache lists starts no controller after it', async () => {
    const ns = namespace('sws-plain');
    // Each would set its periodic pass (a setInterval nobody clears).
    const starts = [Converger, Auctioneer, TaskController, CellReady].map((c) => vi.spyOn(c.prototype, 'start'));
    const manager = new Manager({ kc, log, leaderElection: false, systemNamespace: ns });
    cleanups.push(() => manager.stop());
    const started = manager.start();
    // The controllers exist (their cache lists) but have not started yet.
    while (!manager.controllers) await new Promise((r) => setImmediate(r));
    const { cache } = manager.controllers;
    await manager.stop();
    await started;
    expect(cache.running).toBe(false);
    expect(manager.isLeader).toBe(false);
    for (const start of starts) expect(start).not.toHaveBeenCalled();
  });

  it('stop() resolves once the controllers are stopped, also those a loss of leadership is stopping', async () => {
    const ns = namespace('sws-lead');
    const manager = new Manager({ kc, log, leaderElection: true, systemNamespace: ns, leaseDurationMs: 3000 });
    cleanups.push(() => manager.stop());
    await manager.start();
    const controllers = await eventually(() => {
      const c = manager.controllers;
      expect(c?.cache.running).toBe(true);
      return c!;
    }, 30_000);
    await eventually(() => expect(controllers.cache.desired.synced).toBe(true), 30_000);
    // stop() gives up leadership: the elector's abort begins the controllers' stop, stop() must wait for it.
    await manager.stop({ releaseLease: false });
    expect(controllers.cache.running).toBe(false);
  });
});

describe('RouteEmitter stopped while it starts', () => {
  const bus = (greet: () => Promise<undefined> = () => Promise.resolve(undefined)): RouteBus => ({
    publish: () => undefined,
    greet,
    onRouterStart: () => () => undefined,
    onReconnect: () => () => undefined,
  });

  it('a stop while its informers list sets no timer after it', async () => {
    countIntervals();
    const emitter = new RouteEmitter({ kc, bus: bus(), log, namespace: namespace('sws-re') });
    cleanups.push(() => emitter.stop());
    const started = emitter.start();
    await emitter.stop();
    await started;
    expect(vi.getTimerCount()).toBe(0); // the unregistration re-sends and the 60 s sync (a full LIST each)
  });

  it('a stop while it greets the routers (up to 30 s when none answers) sets no timer after it', async () => {
    countIntervals();
    const greeted = Promise.withResolvers<void>();
    const answer = Promise.withResolvers<undefined>();
    const emitter = new RouteEmitter({
      kc,
      bus: bus(() => {
        greeted.resolve();
        return answer.promise;
      }),
      log,
      namespace: namespace('sws-re'),
    });
    cleanups.push(() => emitter.stop());
    const started = emitter.start();
    await greeted.promise;
    await emitter.stop();
    answer.resolve(undefined);
    await started;
    expect(vi.getTimerCount()).toBe(0);
  });

  it('takes its handlers off the bus when it stops (the bus outlives an emitter per leadership term)', async () => {
    const handlers = new Set<unknown>();
    const subscribe = (fn: unknown) => {
      handlers.add(fn);
      return () => handlers.delete(fn);
    };
    const emitter = new RouteEmitter({
      kc,
      bus: { ...bus(), onRouterStart: subscribe, onReconnect: subscribe },
      log,
      namespace: namespace('sws-re'),
    });
    cleanups.push(() => emitter.stop());
    await emitter.start();
    expect(handlers.size).toBe(2);
    await emitter.stop();
    expect(handlers.size).toBe(0);
  });

  it('a start after its stop starts nothing', async () => {
    countIntervals();
    const emitter = new RouteEmitter({ kc, bus: bus(), log, namespace: namespace('sws-re') });
    cleanups.push(() => emitter.stop());
    await emitter.stop();
    await emitter.start();
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('LocketStore stopped while it starts', () => {
  it('sets no sweeper after its stop', async () => {
    countIntervals();
    const store = new LocketStore(kc, new DiegoClient(kc), 'default', log);
    cleanups.push(() => store.stop());
    const started = store.start();
    await store.stop(); // the Leases are still listing
    await started;
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('the BBS read cache', () => {
  it('started after its stop starts no watch', async () => {
    const client = new CachedDiegoClient(kc, { namespace: 'default', log });
    cleanups.push(() => client.stop());
    await client.stop();
    await client.start();
    // Its caches are private: what start() made of them (informerOf() answers nothing once stopped).
    const caches = (client as unknown as { caches: Map<string, { informer: { running: boolean } }> }).caches;
    expect([...caches.values()].some((c) => c.informer.running)).toBe(false);
  });

  it('is stopped when the BBS cannot listen (its watches would keep the failed process alive)', async () => {
    const busy: Server = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const port = (busy.address() as { port: number }).port;
    const starts = vi.spyOn(CachedDiegoClient.prototype, 'start');
    try {
      await expect(
        startBbs({
          log,
          kubeconfig: inject('kubeconfigPath'),
          namespace: 'default',
          systemNamespace: namespace('sws-bbs'),
          listen: `127.0.0.1:${port}`,
          healthAddress: '',
          insecureHttp: true,
        }),
      ).rejects.toThrow(/EADDRINUSE/);
    } finally {
      busy.close();
    }
    const client = starts.mock.contexts[0] as CachedDiegoClient;
    cleanups.push(() => client.stop());
    expect(client.informerOf('ActualLRP')?.running ?? false).toBe(false);
  });
});

describe('Rep stopped while it starts', () => {
  const newRep = (opts: { cellId: string; systemNamespace: string; kc?: typeof kc; backend?: ProcessBackend }) => {
    cells.push(opts.cellId);
    const rep = new Rep({
      kc: opts.kc ?? kc,
      cellId: opts.cellId,
      capacity: { memoryMb: 256, diskMb: 256, containers: 2 },
      stacks: ['busybox'],
      backend: opts.backend ?? new ProcessBackend({ baseDir: path.join(dir, opts.cellId) }),
      log,
      systemNamespace: opts.systemNamespace,
      leaseSeconds: 3, // a renewal every second
      executor: { stateDir: path.join(dir, opts.cellId, 'executor') },
    });
    cleanups.push(() => rep.stop());
    return rep;
  };

  it('a stop while it registers leaves its presence released: no renewal after the release', async () => {
    const ns = namespace('sws-rep');
    const cellId = unique('sws-reg');
    const rep = newRep({ cellId, systemNamespace: ns });
    const started = rep.start();
    await rep.stop(); // the Cell and its presence are being written
    await started;
    expect(await lease(ns, cellObjectName(cellId))).toBeUndefined();
    await sleep(2_500); // a heartbeat started after the stop would have renewed it twice
    expect(await lease(ns, cellObjectName(cellId))).toBeUndefined();
  });

  it('a stop while its informers list starts no bulk sync after it', async () => {
    const ns = namespace('sws-rep');
    const cellId = unique('sws-inf');
    const loops = vi.spyOn(BulkSyncLoop.prototype, 'start');
    const agent: { rep?: Rep } = {};
    let stopping: Promise<void> | undefined;
    // The first list of the agent's ActualLRP informer: stop the agent right then.
    const proxy = await startFaultProxy(kc, (r) => {
      if (r.method === 'GET' && r.path.includes('/actuallrps?') && !r.path.includes('watch=')) {
        stopping ??= agent.rep?.stop();
      }
      return undefined;
    });
    cleanups.push(() => proxy.close());
    const rep = (agent.rep = newRep({ cellId, systemNamespace: ns, kc: proxy.kc }));
    await rep.start();
    expect(stopping).toBeDefined();
    await stopping;
    expect(loops).not.toHaveBeenCalled();
  });

  it('a start that fails stops what it started: no presence renewed behind the caller that gave up', async () => {
    const ns = namespace('sws-rep');
    const cellId = unique('sws-fail');
    class Broken extends ProcessBackend {
      override list(): Promise<string[]> {
        return Promise.reject(new Error('the container runtime is not answering'));
      }
    }
    const rep = newRep({ cellId, systemNamespace: ns, backend: new Broken({ baseDir: path.join(dir, cellId) }) });
    await expect(rep.start()).rejects.toThrow(/not answering/);
    const renewed = (await lease(ns, cellObjectName(cellId)))?.spec?.renewTime;
    expect(renewed).toBeDefined();
    await sleep(2_500); // two heartbeats
    expect((await lease(ns, cellObjectName(cellId)))?.spec?.renewTime).toBe(renewed);
  });
});

describe('the cell-agent role failing to start its route emitter', () => {
  it('stops the agent it started (its presence, watches and ops server would keep the failed process alive)', async () => {
    // A NATS server that refuses the emitter's credentials: the role fails at once (no retry would help).
    const nats: Server = createServer((socket) => {
      socket.on('error', () => undefined);
      socket.write('INFO {"server_id":"refusing","version":"2.10.0","proto":1,"auth_required":true}\r\n');
      socket.on('data', (d) => {
        if (d.toString().includes('CONNECT')) socket.end("-ERR 'Authorization Violation'\r\n");
      });
    });
    await new Promise<void>((resolve) => nats.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => nats.close(resolve)));
    const natsPort = (nats.address() as { port: number }).port;
    const opsPort = await freePort();
    const cellId = unique('sws-role');
    cells.push(cellId);
    const starts = vi.spyOn(Rep.prototype, 'start');
    const stops = vi.spyOn(Rep.prototype, 'stop');
    await expect(
      runCellAgent({
        log,
        kubeconfig: inject('kubeconfigPath'),
        cellId,
        memoryMb: 256,
        diskMb: 256,
        containers: 2,
        stacks: ['busybox'],
        backend: 'process',
        stateDir: path.join(dir, cellId),
        systemNamespace: namespace('sws-role'),
        opsAddress: `127.0.0.1:${opsPort}`,
        routeEmitter: { servers: `nats://127.0.0.1:${natsPort}`, user: 'emitter', pass: 'wrong' },
      }),
    ).rejects.toThrow(/refused the route emitter/);
    const rep = starts.mock.contexts[0] as Rep;
    cleanups.push(() => rep.stop());
    expect(stops).toHaveBeenCalledWith({ leaveContainers: true }); // its containers stay for the next agent
    // The ops server is closed.
    const reached = await new Promise<boolean>((resolve) => {
      const socket = createConnection(opsPort, '127.0.0.1');
      socket.on('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    expect(reached).toBe(false);
  });
});

describe('the route-emitter role failing to serve its metrics', () => {
  it('stops its elector and NATS connection (they would keep the failed process alive, and the Lease held)', async () => {
    // A NATS server that lets the emitter in and answers its pings.
    const nats: Server = createServer((socket) => {
      socket.on('error', () => undefined);
      socket.write('INFO {"server_id":"accepting","version":"2.10.0","proto":1}\r\n');
      socket.on('data', (d) => {
        for (const _ of d.toString().matchAll(/PING\r\n/g)) socket.write('PONG\r\n');
      });
    });
    await new Promise<void>((resolve) => nats.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => nats.close(resolve)));
    const busy: Server = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => busy.close(resolve)));
    const ns = namespace('sws-emitter');
    await rawRequest(kc, { method: 'POST', path: '/api/v1/namespaces', body: { metadata: { name: ns } } });
    const runs = vi.spyOn(LeaderElector.prototype, 'run');
    const connects = vi.spyOn(NatsBus, 'connect');
    await expect(
      runRouteEmitter({
        log,
        kubeconfig: inject('kubeconfigPath'),
        systemNamespace: ns,
        natsServers: `nats://127.0.0.1:${(nats.address() as { port: number }).port}`,
        metricsAddress: `127.0.0.1:${(busy.address() as { port: number }).port}`,
        metricsAuth: 'none',
      }),
    ).rejects.toThrow(/EADDRINUSE/);
    const elector = runs.mock.contexts[0] as LeaderElector;
    const bus = connects.mock.results[0]?.value as Promise<NatsBus>;
    cleanups.push(
      () => elector.stop(),
      async () => (await bus).close(),
    );
    await sleep(500);
    const identity = process.env.POD_NAME ?? `${hostname()}-${process.pid}`;
    expect((await lease(ns, ROUTE_EMITTER_LEASE_NAME))?.spec?.holderIdentity ?? '').not.toBe(identity);
    expect(elector.isLeader).toBe(false);
  });
});
