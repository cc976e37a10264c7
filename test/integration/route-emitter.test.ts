// The route emitter with real parts: the controllers on the local control plane, a cell agent running runc
// containers, a real nats-server (Debian's), and a stand-in for gorouter on the same NATS (test/support/nats-router.ts:
// gorouter itself cannot be built here). Apply a DesiredLRP with a route → a request with that Host through the
// router answers from the instances; scaling, a crash and its restart, a NATS restart and a malformed route.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { networkInterfaces, tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Rep } from '../../src/cell-agent/rep.ts';
import type { IDesiredLRP } from '../../src/crds/models.ts';
import { NatsBus } from '../../src/controllers/nats-bus.ts';
import { RouteEmitter } from '../../src/controllers/route-emitter.ts';
import { EventRecorder } from '../../src/lib/events.ts';
import { rawRequest } from '../../src/lib/kube.ts';
import { DiegoClient } from '../../src/lib/resources.ts';
import { CHART_DEFAULT_OPERATOR_USERS } from '../../src/webhooks/configuration.ts';
import { registry } from '../../src/lib/metrics.ts';
import { eventually } from '../support/eventually.ts';
import { useDiego } from '../support/fixture.ts';
import { impersonating } from '../support/identities.ts';
import { freePort, NatsServer, TestRouter } from '../support/nats-router.ts';
import { deleteLink, hostPortOf, runcBackend, testRep } from '../support/runc-cell.ts';

const env = useDiego('routes', { convergeIntervalMs: 2000, endpointSlices: true });
// The cell reports this host's first non-loopback IPv4 address (as a node's InternalIP), so its instances can be
// EndpointSlice endpoints too (a slice may not hold 127.0.0.1); the router reaches them through CNI's port mappings.
const hostIp =
  Object.values(networkInterfaces())
    .flat()
    .find((i) => i && i.family === 'IPv4' && !i.internal)?.address ?? '127.0.0.1';
const { client } = env;
const dir = mkdtempSync(path.join(tmpdir(), 'diego-routes-'));
const prefix = `rt${process.pid}-`;
const bridge = `drt${process.pid % 10000}`;
const host = 'app.example.test';
let rep: Rep;
let nats: NatsServer;
let router: TestRouter;
let bus: NatsBus;
let emitter: RouteEmitter;

const startRouter = () =>
  new TestRouter({ natsUrl: nats.url, registerIntervalSeconds: 1, staleThresholdSeconds: 4 }).start();

beforeAll(async () => {
  rep = testRep(
    env,
    runcBackend({
      stateDir: path.join(dir, 'state'),
      idPrefix: prefix,
      networkName: `routes-${process.pid}`,
      bridge,
      subnet: 234,
      ipamDataDir: path.join(dir, 'ipam'),
    }),
    { cellId: `routes-cell-${process.pid}`, livenessIntervalMs: 500, executor: { externalIp: hostIp } },
  );
  await rep.start();
  nats = await new NatsServer(await freePort()).start();
  router = await startRouter();
  bus = await NatsBus.connect({ servers: nats.url, log: env.log, greetAttempts: 5 });
  emitter = new RouteEmitter({
    kc: env.kc,
    bus,
    log: env.log,
    namespace: env.ns,
    events: new EventRecorder(env.kc, 'route-emitter', env.log),
    syncIntervalMs: 5_000,
    unregisterResendMs: 1_000,
  });
  await emitter.start();
}, 120_000);

afterAll(async () => {
  await emitter?.stop();
  await bus?.close();
  await router?.stop();
  await nats?.kill();
  await rep?.stop();
  deleteLink(bridge);
  rmSync(dir, { recursive: true, force: true });
});

const web = (instances: number, routes?: unknown): Omit<IDesiredLRP, 'apiVersion' | 'kind'> => ({
  metadata: { name: 'web', namespace: env.ns },
  spec: {
    processGuid: 'web',
    domain: 'cf-apps',
    rootFs: 'preloaded:busybox',
    instances,
    memoryMb: 32,
    ports: [8080],
    logGuid: 'web-app-guid',
    metricTags: { source_id: { static: 'web-app-guid' } },
    routes: (routes ?? { 'cf-router': [{ hostnames: [host], port: 8080 }] }) as Record<string, unknown>,
    setup: { run: { path: '/bin/sh', args: ['-c', 'mkdir -p /www && hostname > /www/index.html'], user: 'root' } },
    action: { run: { path: '/bin/httpd', args: ['-f', '-p', '8080', '-h', '/www'], user: 'root' } },
    checkDefinition: { checks: [{ tcpCheck: { port: 8080 } }] },
  },
});

const runningNow = async () =>
  (await client.list('ActualLRP', { namespace: env.ns })).filter(
    (a) => a.spec.processGuid === 'web' && a.status?.state === 'RUNNING' && a.status.routable !== false,
  );

/** address:port of the ready endpoints in the EndpointSlices of Service `service`. */
async function readyEndpoints(service: string): Promise<string[]> {
  const { items } = await rawRequest<{
    items: { ports: { port: number }[]; endpoints: { addresses: string[]; conditions: { ready: boolean } }[] }[];
  }>(env.kc, {
    method: 'GET',
    path: `/apis/discovery.k8s.io/v1/namespaces/${env.ns}/endpointslices?labelSelector=${encodeURIComponent(`kubernetes.io/service-name=${service}`)}`,
  });
  return items
    .flatMap((s) => s.endpoints.filter((e) => e.conditions.ready).map((e) => `${e.addresses[0]}:${s.ports[0]?.port}`))
    .sort();
}

/** The router holds exactly the running instances' addresses for the route. */
async function routedToRunning(count: number, timeoutMs = 45_000): Promise<string[]> {
  return eventually(async () => {
    const up = await runningNow();
    expect(up).toHaveLength(count);
    const want = up.map((a) => `${a.status!.netInfo!.address}:${hostPortOf(a)}`).sort();
    // The Service's EndpointSlices list the same instances, ready (loopback addresses cannot be listed).
    const ready = await readyEndpoints('web');
    expect(ready).toEqual(hostIp === '127.0.0.1' ? [] : want);
    const why = `router received ${router.received.length} messages; the emitter holds ${JSON.stringify(emitter.table().map((m) => `${m.host}:${m.port}`))}`;
    expect(router.endpoints(host), why).toEqual(want);
    return up.map((a) => a.status!.instanceGuid!);
  }, timeoutMs);
}

/** GET through the router with the route's Host header (as curl -H 'Host: …' does; fetch cannot set Host). */
function viaRouter(path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${router.url}${path}`, { headers: { host }, timeout: 5_000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** Requests through the router with the route's Host until every instance answered (bodies: container host names). */
async function answersFrom(count: number): Promise<Set<string>> {
  return eventually(async () => {
    const seen = new Set<string>();
    for (let i = 0; i < count * 8 && seen.size < count; i++) {
      const res = await viaRouter('/');
      expect(res.status).toBe(200);
      seen.add(res.body.trim());
    }
    expect(seen.size).toBe(count);
    return seen;
  }, 60_000);
}

describe('route emitter → NATS → router', { timeout: 240_000 }, () => {
  it('routes a request by Host to the instances, follows scaling 3 → 5 → 1, and unregisters what is gone', async () => {
    const t0 = Date.now();
    await client.create('DesiredLRP', web(3));
    await routedToRunning(3);
    await answersFrom(3);
    console.log(`apply → 3 instances routable through the router: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const [first] = router.received.filter((r) => r.subject === 'router.register');
    expect(first!.message).toMatchObject({
      uris: [host],
      app: 'web-app-guid',
      tags: { source_id: 'web-app-guid', component: 'route-emitter' },
      availability_zone: 'z1',
    });
    expect(first!.message.private_instance_id).toBe(first!.message.server_cert_domain_san);

    const three = new Set(await routedToRunning(3));
    const scaled = Date.now();
    await client.patch('DesiredLRP', { namespace: env.ns, name: 'web' }, { spec: { instances: 5 } });
    const five = await routedToRunning(5);
    const lastNew = Math.max(
      ...router.received
        .filter(
          (r) =>
            r.subject === 'router.register' &&
            five.filter((g) => !three.has(g)).includes(r.message.private_instance_id!),
        )
        .map((r) => r.at),
    );
    console.log(
      `scale 3 → 5: both new instances registered ${((lastNew - scaled) / 1000).toFixed(2)} s after the patch`,
    );
    await client.patch('DesiredLRP', { namespace: env.ns, name: 'web' }, { spec: { instances: 1 } });
    const [left] = await routedToRunning(1);
    await answersFrom(1);
    // The 4 stopped instances were unregistered (not merely left to go stale at the router).
    const unregistered = new Set(
      router.received.filter((r) => r.subject === 'router.unregister').map((r) => r.message.private_instance_id),
    );
    expect(unregistered.size).toBeGreaterThanOrEqual(4);
    expect(unregistered.has(left)).toBe(false);
    // Diego's metrics: the table holds one registration, four unregistrations went out.
    const metric = async (name: string) => (await registry.getSingleMetric(name)?.get())?.values[0]?.value;
    expect(await metric('RoutesTotal')).toBe(1);
    expect(await metric('HTTPRouteCount')).toBe(1);
    expect(await metric('RoutesUnregistered')).toBeGreaterThanOrEqual(4);
  });

  it('apply → routable through the router, again and again: p50/p99', async () => {
    const samples: number[] = [];
    for (let i = 0; i < 10; i++) {
      const t0 = Date.now();
      await client.create('DesiredLRP', web(1));
      await routedToRunning(1);
      expect((await viaRouter('/')).status).toBe(200);
      samples.push(Date.now() - t0);
      await client.delete('DesiredLRP', { namespace: env.ns, name: 'web' });
      await eventually(async () => {
        expect(router.endpoints(host)).toEqual([]);
        expect(await client.list('ActualLRP', { namespace: env.ns })).toEqual([]);
      }, 60_000);
    }
    const sorted = [...samples].sort((a, b) => a - b);
    const q = (p: number) => (sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]! / 1000).toFixed(2);
    console.log(
      `apply → 1 instance answering through the router (runc, TCP check), 10 runs: p50 ${q(0.5)} s, p99 ${q(0.99)} s`,
    );
  });

  it('unregisters a crashed instance and registers it again once restarted', async () => {
    await client.create('DesiredLRP', web(1));
    const [before] = await routedToRunning(1);
    const mark = router.received.length;
    const killed = Date.now();
    execFileSync('runc', ['--root', path.join(dir, 'state', 'runc'), 'exec', `${prefix}${before}`, 'killall', 'httpd']);
    const [after] = await eventually(async () => {
      const guids = await routedToRunning(1, 5_000);
      expect(guids[0]).not.toBe(before);
      return guids;
    }, 60_000);
    const since = router.received.slice(mark);
    const unregisteredAt = since.findIndex(
      (r) => r.subject === 'router.unregister' && r.message.private_instance_id === before,
    );
    const registeredAt = since.findIndex(
      (r) => r.subject === 'router.register' && r.message.private_instance_id === after,
    );
    expect(unregisteredAt).toBeGreaterThanOrEqual(0);
    expect(registeredAt).toBeGreaterThan(unregisteredAt);
    console.log(
      `crash → unregistered ${((since[unregisteredAt]!.at - killed) / 1000).toFixed(2)} s, ` +
        `restarted instance registered ${((since[registeredAt]!.at - killed) / 1000).toFixed(2)} s after the kill`,
    );
    await answersFrom(1);
  });

  it('re-emits the whole table after NATS restarts (kill -9) and a fresh router starts with an empty table', async () => {
    await client.create('DesiredLRP', web(2));
    await routedToRunning(2);
    await router.stop();
    await nats.kill();
    await new Promise((r) => setTimeout(r, 1_000));
    await nats.start();
    // A new router, whose table holds only what it hears on the new NATS (the emitter's re-emit).
    router = await startRouter();
    await routedToRunning(2, 30_000);
    await answersFrom(2);
  });

  it('keeps re-registering so the router does not prune, past its stale threshold', async () => {
    await client.create('DesiredLRP', web(1));
    await routedToRunning(1);
    const synced = async () => (await registry.getSingleMetric('RoutesSynced')?.get())?.values[0]?.value ?? 0;
    const before = await synced();
    // Past the router's stale threshold (4 s): still routed, because the table is re-emitted every interval (1 s).
    await new Promise((r) => setTimeout(r, 6_000));
    await routedToRunning(1, 1_000);
    expect(await synced()).toBeGreaterThan(before);
  });

  it('refuses a malformed route at admission, and skips one admitted before with a Warning naming the field', async () => {
    const bad = { 'cf-router': [{ hostnames: [host, 'not a host'], port: 8080 }] };
    const refused = await client.create('DesiredLRP', web(1, bad)).catch((e: unknown) => e);
    expect(JSON.stringify((refused as { body?: unknown }).body)).toContain(
      'spec.routes[\\"cf-router\\"][0].hostnames[1]',
    );
    // As an object stored before this check existed (the operator's own identity skips the webhook).
    const operator = new DiegoClient(
      impersonating(env.kc, { user: CHART_DEFAULT_OPERATOR_USERS[0]!, groups: ['system:masters'] }),
    );
    await operator.create('DesiredLRP', web(1, bad));
    await routedToRunning(1);
    await eventually(async () => {
      const { items } = await rawRequest<{ items: { reason: string; message: string; type: string }[] }>(env.kc, {
        method: 'GET',
        path: `/api/v1/namespaces/${env.ns}/events?fieldSelector=involvedObject.name=web`,
      });
      const warning = items.find((e) => e.reason === 'MalformedRoute');
      expect(warning?.type).toBe('Warning');
      expect(warning?.message).toContain('spec.routes["cf-router"][0].hostnames[1]');
    }, 30_000);
  });

  it("cell-local mode: a cell's own emitter registers its instances, reading their DesiredLRPs one by one", async () => {
    await emitter.stop();
    const local = new RouteEmitter({
      kc: env.kc,
      bus,
      log: env.log,
      cellId: `routes-cell-${process.pid}`,
      syncIntervalMs: 2_000,
      unregisterResendMs: 1_000,
    });
    try {
      await local.start();
      await client.create('DesiredLRP', web(2));
      await routedToRunning(2);
      await answersFrom(2);
      // A route change reaches the routers by the next sync (the cell watches no DesiredLRP).
      const other = 'other.example.test';
      await client.patch(
        'DesiredLRP',
        { namespace: env.ns, name: 'web' },
        {
          spec: { routes: { 'cf-router': [{ hostnames: [other], port: 8080 }] } },
        },
      );
      await eventually(() => {
        expect(router.endpoints(other)).toHaveLength(2);
        expect(router.endpoints(host)).toEqual([]);
      }, 30_000);
    } finally {
      await local.stop();
      // The global emitter again, for what follows.
      emitter = new RouteEmitter({
        kc: env.kc,
        bus,
        log: env.log,
        namespace: env.ns,
        syncIntervalMs: 5_000,
        unregisterResendMs: 1_000,
      });
      await emitter.start();
    }
  });

  it('keeps an evacuating instance routed until its replacement on another cell is registered', async () => {
    await client.create('DesiredLRP', web(1));
    await routedToRunning(1);
    const [cell] = await env.startCells(1, () => ({ address: '10.250.0.9' }));
    // Sample the router's table while this cell evacuates: never empty.
    let empty = 0;
    const sampler = setInterval(() => {
      if (router.endpoints(host).length === 0) empty++;
    }, 50);
    try {
      const result = await rep.evacuate();
      expect(result.timedOut).toBe(false);
      await eventually(() => expect(router.endpoints(host)).toEqual(['10.250.0.9:61000']), 30_000);
    } finally {
      clearInterval(sampler);
    }
    expect(empty).toBe(0);
    expect(cell!.containers.size).toBe(1);
  });
});
