// The BBS facade's reads from informer caches (src/bbs/cached-client.ts) on a real API server: its own writes are
// read back at once (create, update, delete), others' writes show after the watch's delay, what the cache cannot
// answer goes to the API server, and a stalled watch costs a bounded wait, never a stale answer to its own write.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildBbsApp } from '../../src/bbs/app.ts';
import { CachedDiegoClient, parseSelector } from '../../src/bbs/cached-client.ts';
import type { IDesiredLRP } from '../../src/crds/models.ts';
import { isNotFound, DiegoClient, refOf } from '../../src/lib/resources.ts';
import { createLogger } from '../../src/lib/log.ts';
import { registry } from '../../src/lib/metrics.ts';
import { eventually } from '../support/eventually.ts';
import { createNamespace, deleteNamespace, testKubeConfig } from '../support/kube.ts';

const kc = testKubeConfig();
const admin = new DiegoClient(kc);
const log = createLogger(process.env.LOG_LEVEL ?? 'warn');
let ns = '';
let reads: CachedDiegoClient;

beforeAll(async () => {
  ns = await createNamespace(kc, 'bbs-cache');
  reads = new CachedDiegoClient(kc, { namespace: ns, log });
  await reads.start();
});
afterAll(async () => {
  await reads?.stop();
  if (ns) await deleteNamespace(kc, ns);
});

const desired = (name: string, instances = 1): Omit<IDesiredLRP, 'apiVersion' | 'kind'> => ({
  metadata: { name, namespace: ns },
  spec: {
    processGuid: name,
    domain: 'cf-apps',
    rootFs: 'preloaded:busybox',
    instances,
    memoryMb: 16,
    action: { run: { path: '/bin/app', user: 'vcap' } },
  },
});

const notFound = (p: Promise<unknown>) =>
  p.then(
    () => false,
    (err: unknown) => isNotFound(err),
  );

describe('the BBS read cache', () => {
  it('reads its own writes at once, from the cache: create, update, delete', async () => {
    for (let i = 0; i < 20; i++) {
      const before = reads.reads.cache;
      const created = await reads.create('DesiredLRP', desired(`own-${i}`));
      expect((await reads.get('DesiredLRP', ns, `own-${i}`)).metadata.uid).toBe(created.metadata.uid);
      const listed = await reads.list('DesiredLRP', { namespace: ns, fieldSelector: `spec.processGuid=own-${i}` });
      expect(listed.map((d) => d.metadata.name)).toEqual([`own-${i}`]);
      await reads.patch('DesiredLRP', refOf(created), { spec: { instances: 3 } });
      expect((await reads.get('DesiredLRP', ns, `own-${i}`)).spec.instances).toBe(3);
      await reads.delete('DesiredLRP', { namespace: ns, name: `own-${i}` });
      const after = await reads.get('DesiredLRP', ns, `own-${i}`).catch((err: unknown) => err);
      // Gone, or held by a finalizer and deleting, as the API server would answer.
      expect(isNotFound(after) || !!(after as IDesiredLRP).metadata.deletionTimestamp).toBe(true);
      expect(reads.reads.cache - before).toBe(4);
    }
  });

  it("shows others' writes after the watch's delay", async () => {
    await admin.create('DesiredLRP', desired('theirs'));
    await eventually(async () => expect((await reads.get('DesiredLRP', ns, 'theirs')).spec.instances).toBe(1));
    await admin.delete('DesiredLRP', { namespace: ns, name: 'theirs' });
    await eventually(async () => expect(await notFound(reads.get('DesiredLRP', ns, 'theirs'))).toBe(true));
  });

  it("lists in the API server's order (by name), whatever order the cache saw the objects in", async () => {
    for (const name of ['order-c', 'order-a', 'order-b']) await reads.create('DesiredLRP', desired(name));
    const names = (l: IDesiredLRP[]) => l.map((d) => d.metadata.name).filter((n) => n?.startsWith('order-'));
    const fromCache = names(await reads.list('DesiredLRP', { namespace: ns }));
    expect(fromCache).toEqual(['order-a', 'order-b', 'order-c']);
    expect(fromCache).toEqual(names(await admin.list('DesiredLRP', { namespace: ns })));
  });

  it('asks the API server what it cannot answer: other namespaces, cluster-scoped kinds, other selectors', async () => {
    await reads.create('DesiredLRP', desired('selected', 2));
    const api = reads.reads.api;
    const others = await reads.list('DesiredLRP', { namespace: ns, fieldSelector: 'spec.processGuid!=nothing' });
    expect(others.map((d) => d.metadata.name)).toContain('selected');
    await reads.list('Cell');
    expect(reads.reads.api - api).toBe(2);
  });

  it("streams BBS events from the cache's own watch: one watch per kind in the process", async () => {
    const app = buildBbsApp({ client: reads, namespace: ns, systemNamespace: ns, logger: log });
    try {
      await app.listen({ host: '127.0.0.1', port: 0 });
      const { port } = app.server.address() as AddressInfo;
      const frames: string[] = [];
      const req = request({ host: '127.0.0.1', port, path: '/v1/events.r1', method: 'GET' });
      await new Promise<void>((resolve, reject) => {
        req.on('response', (res) => {
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => frames.push(chunk));
          resolve();
        });
        req.on('error', reject);
        req.end();
      });
      // A change made by someone else reaches the stream (made again until it does: the subscription is registered
      // as the stream opens).
      let n = 0;
      await eventually(async () => {
        await admin.create('DesiredLRP', desired(`streamed-${n++}`));
        expect(frames.join('')).toContain('event: desired_lrp_created');
      });
      req.destroy();
      const lists = (await registry.getSingleMetric('informer_lists_total')?.get())?.values ?? [];
      const informers = lists.map((v) => String(v.labels.informer));
      expect(informers).toContain('bbs-desiredlrps');
      expect(informers.filter((n) => n.startsWith('bbs-events-'))).toEqual([]);
    } finally {
      await app.close();
    }
  });

  it('a stalled watch: a read waits a bounded time for its own write, then asks the API server', async () => {
    const stalled = new CachedDiegoClient(kc, { namespace: ns, log });
    await stalled.start();
    try {
      // The watch stops delivering (as behind a stuck proxy): the cache never sees the next write.
      const caches = (stalled as unknown as { caches: Map<string, { informer: { stop(): Promise<void> } }> }).caches;
      await caches.get('DesiredLRP')!.informer.stop();
      const created = await stalled.create('DesiredLRP', desired('stalled'));
      const t0 = Date.now();
      expect((await stalled.get('DesiredLRP', ns, 'stalled')).metadata.uid).toBe(created.metadata.uid);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1_500); // it waited for the cache first (2 s)
      expect(stalled.reads.api).toBeGreaterThan(0);
    } finally {
      await stalled.stop();
    }
  });
});

describe('parseSelector', () => {
  it("reads the equality selectors the facade writes, escapes included, and refuses what it can't evaluate", () => {
    expect(parseSelector('spec.processGuid=a\\,b\\=c,spec.index==2')).toEqual([
      { key: 'spec.processGuid', value: 'a,b=c' },
      { key: 'spec.index', value: '2' },
    ]);
    expect(parseSelector(undefined)).toEqual([]);
    expect(parseSelector('diego.dev/index=3')).toEqual([{ key: 'diego.dev/index', value: '3' }]);
    expect(parseSelector('spec.a!=b')).toBeUndefined();
    expect(parseSelector('env in (a,b)')).toBeUndefined();
    expect(parseSelector('exists')).toBeUndefined();
  });
});
