// The informer against the real apiserver, on ConfigMaps in a namespace of its own.
import { CoreV1Api, KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import type { AddressInfo, Socket } from 'node:net';
import {
  createServer as createHttpsServer,
  request as httpsRequest,
  type Agent,
  type RequestOptions,
} from 'node:https';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createNamespace, deleteNamespace, testKubeConfig } from '../../test/support/kube.ts';
import { createCA, issueCert } from './certs.ts';
import { createInformer, keyOf, type Informer } from './informer.ts';
import { rawRequest } from './kube.ts';
import { registry } from './metrics.ts';

const logger = pino({ level: process.env.LOG_LEVEL ?? 'silent' });
// Every namespace gets a kube-root-ca.crt ConfigMap from the controller manager; keep it out of the way.
const fieldSelector = 'metadata.name!=kube-root-ca.crt';

let kc: KubeConfig;
let core: CoreV1Api;
let ns: string;
const informers: Informer<V1ConfigMap>[] = [];

beforeAll(async () => {
  kc = testKubeConfig();
  core = kc.makeApiClient(CoreV1Api);
  ns = await createNamespace(kc, 'informer');
});
afterEach(async () => {
  await Promise.all(informers.splice(0).map((i) => i.stop()));
});
afterAll(async () => {
  await deleteNamespace(kc, ns);
});

function cm(name: string, data: Record<string, string> = {}, labels: Record<string, string> = {}): V1ConfigMap {
  return { metadata: { name, namespace: ns, labels }, data };
}

/** An informer on its own KubeConfig, so the test can find (and break) exactly its sockets. */
function informer(name: string, opts: { labelSelector?: string; fieldSelector?: string } = { fieldSelector }) {
  const own = testKubeConfig();
  const inf = createInformer<V1ConfigMap>(own, { path: `/api/v1/namespaces/${ns}/configmaps`, name, logger, ...opts });
  informers.push(inf);
  const events: string[] = [];
  inf.on('add', (o) => events.push(`add:${o.metadata?.name}`));
  inf.on('update', (o, old) => events.push(`update:${o.metadata?.name}:${old?.data?.v}->${o.data?.v}`));
  inf.on('delete', (o) => events.push(`delete:${o.metadata?.name}`));
  return { inf, events, agent: () => agentOf(own) };
}

async function agentOf(kubeConfig: KubeConfig): Promise<Agent> {
  const opts: RequestOptions = {};
  await kubeConfig.applyToHTTPSOptions(opts); // client-node caches one agent per cluster/user
  return opts.agent as Agent;
}

function openSockets(agent: Agent): number {
  const count = (m: NodeJS.ReadOnlyDict<unknown[]>) => Object.values(m).reduce((n, l) => n + (l?.length ?? 0), 0);
  return count(agent.sockets) + count(agent.freeSockets);
}

async function listsOf(informerName: string): Promise<number> {
  const metric = await registry.getSingleMetric('informer_lists_total')?.get();
  return metric?.values.find((v) => v.labels.informer === informerName)?.value ?? 0;
}

async function errorsOf(informerName: string): Promise<number> {
  const metric = await registry.getSingleMetric('informer_errors_total')?.get();
  return metric?.values.find((v) => v.labels.informer === informerName && v.labels.op === 'watch')?.value ?? 0;
}

async function update(name: string, v: string): Promise<void> {
  const current = await core.readNamespacedConfigMap({ name, namespace: ns });
  await core.replaceNamespacedConfigMap({ name, namespace: ns, body: { ...current, data: { v } } });
}

const del = (name: string) => core.deleteNamespacedConfigMap({ name, namespace: ns });

/**
 * A TLS proxy in front of the real apiserver that can break connections and answer one watch with
 * 410 Gone: the two faults a long-running informer meets that a fresh apiserver will not produce on demand.
 */
async function startFaultProxy(upstream: KubeConfig) {
  const ca = await createCA();
  const serving = await issueCert(ca, { commonName: 'fault-proxy', ipAddresses: ['127.0.0.1'], usage: 'server' });
  const upstreamServer = upstream.getCurrentCluster()?.server ?? '';
  const connections = new Set<Socket>();
  let expireNext: 'http' | 'event' | undefined;
  let expired = 0;
  let watching = 0;
  const gone = {
    kind: 'Status',
    apiVersion: 'v1',
    status: 'Failure',
    reason: 'Expired',
    code: 410,
    message: 'too old resource version (injected)',
  };

  const server = createHttpsServer({ cert: serving.certPem, key: serving.keyPem }, (req, res) => {
    const isWatch = new URL(req.url ?? '/', 'https://proxy').searchParams.get('watch');
    if (isWatch && expireNext) {
      const how = expireNext;
      expireNext = undefined;
      expired++;
      if (how === 'http') res.writeHead(410, { 'content-type': 'application/json' }).end(JSON.stringify(gone));
      else
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ type: 'ERROR', object: gone }) + '\n');
      return;
    }
    const opts: RequestOptions = {
      method: req.method,
      headers: Object.fromEntries(
        ['accept', 'content-type', 'content-length'].flatMap((h) => (req.headers[h] ? [[h, req.headers[h]]] : [])),
      ),
    };
    upstream.applyToHTTPSOptions(opts).then(
      () => {
        const up = httpsRequest(new URL(req.url ?? '/', upstreamServer), opts, (upRes) => {
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          upRes.pipe(res);
        });
        up.on('error', () => res.destroy());
        if (isWatch) {
          watching++;
          res.on('close', () => watching--);
        }
        res.on('close', () => up.destroy());
        req.pipe(up);
      },
      () => res.destroy(),
    );
  });
  server.on('secureConnection', (socket: Socket) => {
    connections.add(socket);
    socket.on('close', () => connections.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [
      {
        name: 'proxy',
        server: `https://127.0.0.1:${port}`,
        caData: Buffer.from(ca.certPem).toString('base64'),
        skipTLSVerify: false,
      },
    ],
    users: [{ name: 'proxy' }],
    contexts: [{ name: 'proxy', cluster: 'proxy', user: 'proxy' }],
    currentContext: 'proxy',
  });
  return {
    kc,
    /** Watches currently proxied to the apiserver. */
    get watching() {
      return watching;
    },
    get expired() {
      return expired;
    },
    expireNextWatch(how: 'http' | 'event') {
      expireNext = how;
    },
    breakConnections() {
      for (const s of connections) s.destroy();
    },
    async close() {
      for (const s of connections) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('informer', () => {
  it('lists, then follows adds, updates and deletes; survives a throwing handler', async () => {
    await core.createNamespacedConfigMap({ namespace: ns, body: cm('a', { v: '1' }) });
    await core.createNamespacedConfigMap({ namespace: ns, body: cm('b', { v: '1' }) });
    const { inf, events } = informer('basic');
    inf.on('add', () => {
      throw new Error('a broken handler must not stop the informer');
    });
    expect(inf.synced).toBe(false);
    await inf.start();
    expect(inf.synced).toBe(true);
    expect(events.sort()).toEqual(['add:a', 'add:b']);
    expect(inf.list().map(keyOf).sort()).toEqual([`${ns}/a`, `${ns}/b`]);
    const a = inf.get(ns, 'a');
    expect(a?.data).toEqual({ v: '1' });
    expect(a?.kind).toBe('ConfigMap'); // filled in for list items too
    expect(a?.apiVersion).toBe('v1');
    expect(inf.get(undefined, 'a')).toBeUndefined();

    events.length = 0;
    await core.createNamespacedConfigMap({ namespace: ns, body: cm('c', { v: '1' }) });
    await update('a', '2');
    await del('b');
    await vi.waitFor(() => expect(events).toEqual(['add:c', 'update:a:1->2', 'delete:b']));
    expect(inf.list().map(keyOf).sort()).toEqual([`${ns}/a`, `${ns}/c`]);
    expect(inf.get(ns, 'a')?.data).toEqual({ v: '2' });
    expect(inf.get(ns, 'b')).toBeUndefined();
    // Cached without managedFields (from the list and from watch events); the server still has them.
    for (const o of inf.list()) expect(o.metadata?.managedFields).toBeUndefined();
    const served = await core.readNamespacedConfigMap({ namespace: ns, name: 'a' });
    expect(served.metadata?.managedFields?.length).toBeGreaterThan(0);

    // A write that changes nothing does not bump the resourceVersion: no update.
    await update('a', '2');
    await update('a', '3');
    await vi.waitFor(() => expect(events.at(-1)).toBe('update:a:2->3'));
    expect(events.filter((e) => e.startsWith('update:a:2->2'))).toEqual([]);
    await del('a');
    await del('c');
  });

  it('sees only objects matching its label selector', async () => {
    const { inf, events } = informer('labels', { labelSelector: 'app=x' });
    await core.createNamespacedConfigMap({ namespace: ns, body: cm('x1', {}, { app: 'x' }) });
    await inf.start();
    expect(events).toEqual(['add:x1']);
    await core.createNamespacedConfigMap({ namespace: ns, body: cm('y1', {}, { app: 'y' }) });
    await core.createNamespacedConfigMap({ namespace: ns, body: cm('x2', {}, { app: 'x' }) });
    await vi.waitFor(() => expect(events).toEqual(['add:x1', 'add:x2']));
    // Relabelling moves an object out of (and into) the selection: the watch reports delete/add.
    await core.patchNamespacedConfigMap(
      { name: 'x1', namespace: ns, body: [{ op: 'replace', path: '/metadata/labels/app', value: 'y' }] },
      // JSON Patch is the generated client's default content type
    );
    await core.patchNamespacedConfigMap({
      name: 'y1',
      namespace: ns,
      body: [{ op: 'replace', path: '/metadata/labels/app', value: 'x' }],
    });
    await vi.waitFor(() => expect(events).toEqual(['add:x1', 'add:x2', 'delete:x1', 'add:y1']));
    expect(
      inf
        .list()
        .map((o) => o.metadata?.name)
        .sort(),
    ).toEqual(['x2', 'y1']);
    await Promise.all(['x1', 'x2', 'y1'].map(del));
  });

  it('re-watches from its resourceVersion when the watch connection breaks', async () => {
    const { inf, events, agent } = informer('broken');
    await inf.start();
    const lists = await listsOf('broken');
    const errors = await errorsOf('broken');
    // Wait for the watch connection (the list's has closed: client-node's agent does not keep sockets alive).
    await vi.waitFor(async () => expect(openSockets(await agent())).toBe(1));
    for (const sockets of Object.values((await agent()).sockets)) sockets?.forEach((s) => s.destroy());
    await core.createNamespacedConfigMap({ namespace: ns, body: cm('after-break') });
    await vi.waitFor(() => expect(events).toEqual(['add:after-break']), { timeout: 10_000 });
    expect(await errorsOf('broken')).toBe(errors + 1); // the break was seen...
    expect(await listsOf('broken')).toBe(lists); // ...and needed no relist
    await del('after-break');
    await vi.waitFor(() => expect(events).toEqual(['add:after-break', 'delete:after-break']));
  });

  for (const how of ['http', 'event'] as const) {
    it(`relists after a 410 Gone (${how === 'http' ? 'HTTP status' : 'ERROR event'}) and emits the differences`, async () => {
      await core.createNamespacedConfigMap({ namespace: ns, body: cm(`keep-${how}`, { v: '1' }) });
      await core.createNamespacedConfigMap({ namespace: ns, body: cm(`change-${how}`, { v: '1' }) });
      await core.createNamespacedConfigMap({ namespace: ns, body: cm(`gone-${how}`, { v: '1' }) });
      const proxy = await startFaultProxy(kc);
      try {
        const name = `expired-${how}`;
        const inf = createInformer<V1ConfigMap>(proxy.kc, {
          path: `/api/v1/namespaces/${ns}/configmaps`,
          labelSelector: '!ignored',
          fieldSelector,
          name,
          logger,
        });
        informers.push(inf);
        const events: string[] = [];
        inf.on('add', (o) => events.push(`add:${o.metadata?.name}`));
        inf.on('update', (o, old) => events.push(`update:${o.metadata?.name}:${old?.data?.v}->${o.data?.v}`));
        inf.on('delete', (o) => events.push(`delete:${o.metadata?.name}`));
        await inf.start();
        events.length = 0;
        const lists = await listsOf(name);
        const errors = await errorsOf(name);
        await vi.waitFor(() => expect(proxy.watching).toBe(1));

        // Break the watch; its successor is told that its resourceVersion expired.
        proxy.expireNextWatch(how);
        proxy.breakConnections();
        await core.createNamespacedConfigMap({ namespace: ns, body: cm(`new-${how}`, { v: '1' }) });
        await update(`change-${how}`, '2');
        await del(`gone-${how}`);

        await vi.waitFor(
          () => {
            expect([...events].sort()).toEqual([`add:new-${how}`, `delete:gone-${how}`, `update:change-${how}:1->2`]);
          },
          { timeout: 15_000 },
        );
        expect(proxy.expired).toBe(1);
        expect(await errorsOf(name)).toBe(errors + 1); // the broken connection
        expect(await listsOf(name)).toBe(lists + 1);
        expect(inf.get(ns, `change-${how}`)?.data).toEqual({ v: '2' });
        expect(inf.get(ns, `gone-${how}`)).toBeUndefined();

        // And it watches again afterwards.
        await update(`keep-${how}`, '2');
        await vi.waitFor(() => expect(events).toContain(`update:keep-${how}:1->2`));
        await inf.stop();
        await Promise.all([`keep-${how}`, `change-${how}`, `new-${how}`].map(del));
      } finally {
        await proxy.close();
      }
    });
  }

  it('ignores replayed events not newer than its cache when a watch starts far back', async () => {
    // A namespace of its own, so the replayed history holds only this test's objects.
    const own = await createNamespace(kc, 'informer-replay');
    try {
      const mk = (name: string) =>
        core.createNamespacedConfigMap({ namespace: own, body: { metadata: { name }, data: { v: '1' } } });
      await mk('keep');
      await mk('change');
      await mk('gone');
      const inf = createInformer<V1ConfigMap>(testKubeConfig(), {
        path: `/api/v1/namespaces/${own}/configmaps`,
        fieldSelector,
        name: 'replay',
        logger,
      });
      informers.push(inf);
      const events: string[] = [];
      inf.on('add', (o) => events.push(`add:${o.metadata?.name}`));
      inf.on('update', (o, old) => events.push(`update:${o.metadata?.name}:${old?.data?.v}->${o.data?.v}`));
      inf.on('delete', (o) => events.push(`delete:${o.metadata?.name}`));
      await inf.start();
      events.length = 0;

      // Restart the watch from revision 1. A young apiserver replays the whole history from its watch
      // cache (ADDED keep/change/gone at the versions already cached, then the changes below); an older
      // one answers 410 and the informer relists. Either way the events are exactly the differences.
      (inf as unknown as { resourceVersion: string }).resourceVersion = '1';
      (inf as unknown as { request?: { destroy(): void } }).request?.destroy();
      await mk('new');
      const current = await core.readNamespacedConfigMap({ name: 'change', namespace: own });
      await core.replaceNamespacedConfigMap({ name: 'change', namespace: own, body: { ...current, data: { v: '2' } } });
      await core.deleteNamespacedConfigMap({ name: 'gone', namespace: own });

      await vi.waitFor(() => expect([...events].sort()).toEqual(['add:new', 'delete:gone', 'update:change:1->2']), {
        timeout: 15_000,
      });
      await new Promise((r) => setTimeout(r, 300));
      expect(events).toHaveLength(3);
      expect(
        inf
          .list()
          .map((o) => o.metadata?.name)
          .sort(),
      ).toEqual(['change', 'keep', 'new']);
    } finally {
      await deleteNamespace(kc, own);
    }
  });

  it('stop() closes its sockets and delivers nothing more; start() again relists the differences', async () => {
    await core.createNamespacedConfigMap({ namespace: ns, body: cm('s1', { v: '1' }) });
    const { inf, events, agent } = informer('stopped');
    await inf.start();
    expect(openSockets(await agent())).toBeGreaterThan(0); // the watch
    await inf.stop();
    await vi.waitFor(async () => expect(openSockets(await agent())).toBe(0));

    events.length = 0;
    await update('s1', '2');
    await core.createNamespacedConfigMap({ namespace: ns, body: cm('s2', { v: '1' }) });
    await new Promise((r) => setTimeout(r, 500));
    expect(events).toEqual([]);
    expect(inf.get(ns, 's1')?.data).toEqual({ v: '1' }); // the cache stays readable

    await inf.start();
    expect(events.sort()).toEqual(['add:s2', 'update:s1:1->2']);
    await inf.stop();
    await inf.stop(); // idempotent
    await vi.waitFor(async () => expect(openSockets(await agent())).toBe(0));
    await Promise.all(['s1', 's2'].map(del));
  });

  it('a start() while a stop() is still ending the last watch runs after it; a second stop() waits for the first', async () => {
    await core.createNamespacedConfigMap({ namespace: ns, body: cm('r1', { v: '1' }) });
    const { inf, events } = informer('restarted');
    await inf.start();
    const stopping = inf.stop(); // the watch is still being closed
    const restarted = inf.start();
    await Promise.all([stopping, restarted]);
    expect(inf.running).toBe(true);
    events.length = 0;
    await core.createNamespacedConfigMap({ namespace: ns, body: cm('r2', { v: '1' }) });
    await vi.waitFor(() => expect(events).toContain('add:r2'), { timeout: 30_000 });
    // Two stops at once (a leadership loss and a signal): the second, too, resolves only once nothing runs.
    const first = inf.stop();
    await inf.stop();
    expect(inf.running).toBe(false);
    await first;
    await Promise.all(['r1', 'r2'].map(del));
  });

  it('lists more than one page', async () => {
    const own = await createNamespace(kc, 'informer-pages');
    try {
      const names = Array.from({ length: 520 }, (_, i) => `cm-${i}`); // the informer asks for 500 per page
      for (let i = 0; i < names.length; i += 40) {
        await Promise.all(
          names
            .slice(i, i + 40)
            .map((name) => core.createNamespacedConfigMap({ namespace: own, body: { metadata: { name } } })),
        );
      }
      const firstPage = await rawRequest<{ metadata: { continue?: string } }>(kc, {
        method: 'GET',
        path: `/api/v1/namespaces/${own}/configmaps?limit=500`,
      });
      expect(firstPage.metadata.continue).toBeTruthy(); // the apiserver does paginate this list
      const inf = createInformer<V1ConfigMap>(testKubeConfig(), {
        path: `/api/v1/namespaces/${own}/configmaps`,
        fieldSelector,
        name: 'pages',
        logger,
      });
      informers.push(inf);
      let adds = 0;
      inf.on('add', () => void adds++);
      await inf.start();
      expect(adds).toBe(520);
      expect(inf.list()).toHaveLength(520);
      expect(inf.get(own, 'cm-519')?.metadata?.name).toBe('cm-519');
    } finally {
      await deleteNamespace(kc, own);
    }
  });

  it('keeps retrying when the collection does not exist yet, and stop() ends that', async () => {
    const inf = createInformer(testKubeConfig(), { path: '/apis/nowhere.example/v1/things', logger });
    const started = inf.start();
    await new Promise((r) => setTimeout(r, 1500));
    expect(inf.synced).toBe(false);
    await inf.stop();
    await started; // resolves once stopped
  });
});
