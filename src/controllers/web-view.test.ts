// The web view's HTTP shell with a hand-written cache: the page, one snapshot, server-sent events (a snapshot on
// connect, coalesced updates, a new leadership term, the bound on watchers, cutting off a watcher that stopped reading,
// closing), and the token check.
import { once } from 'node:events';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { ICell, IDesiredLRP } from '../crds/models.ts';
import type { OpsAuth } from '../lib/ops-auth.ts';
import { RecentDecisions } from './auction-decisions.ts';
import type { DiegoCache } from './cache.ts';
import type { CellPresence } from './presence.ts';
import { startWebView, type WebView, type WebViewSource } from './web-view.ts';
import type { WebViewModel } from './web-view-model.ts';

type Handler = (o: unknown) => void;

/** An informer holding a list, firing its handlers on `set`. */
class FakeInformer<T> {
  items: T[] = [];
  readonly handlers: Handler[] = [];
  on(_ev: string, fn: Handler): void {
    this.handlers.push(fn);
  }
  off(_ev: string, fn: Handler): void {
    const i = this.handlers.indexOf(fn);
    if (i >= 0) this.handlers.splice(i, 1);
  }
  list(): T[] {
    return this.items;
  }
  set(items: T[]): void {
    this.items = items;
    for (const h of this.handlers) h(items[0]);
  }
}

function fakeCache() {
  const cache = {
    cells: new FakeInformer<ICell>(),
    leases: new FakeInformer<unknown>(),
    actual: new FakeInformer<unknown>(),
    desired: new FakeInformer<IDesiredLRP>(),
    tasks: new FakeInformer<unknown>(),
  };
  const presence = { isPresent: () => true } as unknown as CellPresence;
  return { cache, running: { cache: cache as unknown as DiegoCache, presence } };
}
const handlerCount = (cache: ReturnType<typeof fakeCache>['cache']): number =>
  Object.values(cache).reduce((n, inf) => n + inf.handlers.length, 0);

const cell = (cellId: string, zone = 'z1'): ICell =>
  ({
    metadata: { name: cellId },
    spec: { cellId, zone, capacity: { memoryMb: 1, diskMb: 1, containers: 1 } },
  }) as ICell;

/** Reads server-sent `view` events from a response. */
class EventReader {
  private buf = '';
  private readonly reader: ReadableStreamDefaultReader<string>;
  constructor(res: Response) {
    this.reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  }
  async next(): Promise<WebViewModel> {
    for (;;) {
      const i = this.buf.indexOf('\n\n');
      if (i >= 0) {
        const msg = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 2);
        const data = /^event: view\ndata: (.*)$/s.exec(msg)?.[1];
        if (data) return JSON.parse(data) as WebViewModel;
        continue;
      }
      const { value, done } = await this.reader.read();
      if (done) throw new Error('stream ended');
      this.buf += value;
    }
  }
  async ended(): Promise<boolean> {
    for (;;) {
      const { done } = await this.reader.read();
      if (done) return true;
    }
  }
  cancel(): Promise<void> {
    return this.reader.cancel();
  }
}

let view: WebView | undefined;
afterEach(async () => {
  await view?.close();
  view = undefined;
});

describe('web view server', () => {
  it('serves the page, a snapshot, and events: one on connect, then coalesced updates', async () => {
    const { cache, running } = fakeCache();
    cache.cells.items = [cell('cell-a')];
    const source: WebViewSource = { controllers: running, decisions: new RecentDecisions() };
    const coalesceMs = 200;
    view = await startWebView({ source, host: '127.0.0.1', port: 0, coalesceMs });

    const page = await fetch(view.url);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await page.text()).toContain('api/events');
    const snapshot = (await (await fetch(`${view.url}/api/view`)).json()) as WebViewModel;
    expect(snapshot.zones[0]!.cells.map((c) => c.cellId)).toEqual(['cell-a']);

    const res = await fetch(`${view.url}/api/events`);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = new EventReader(res);
    expect((await events.next()).totals.cells).toBe(1);
    // Changes spread over several windows, each well inside one (every 10 ms against 200 ms): the watcher gets
    // about one message a window, ending with the end state, not one message per change.
    const changes = 60;
    const started = Date.now();
    for (let i = 2; i <= changes + 1; i++) {
      cache.cells.set(Array.from({ length: i }, (_, j) => cell(`cell-${j}`)));
      await sleep(10);
    }
    expect(Date.now() - started).toBeGreaterThan(2 * coalesceMs);
    let messages = 0;
    let latest: WebViewModel;
    do {
      latest = await events.next();
      messages++;
    } while (latest.totals.cells !== changes + 1);
    expect(messages).toBeGreaterThanOrEqual(1);
    expect(messages).toBeLessThanOrEqual(changes / 4);
    expect(view.clients).toBe(1);
    await events.cancel();
  });

  it('shows a standby without a cache, and fills in when this replica starts leading', async () => {
    const { cache, running } = fakeCache();
    cache.cells.items = [cell('cell-a'), cell('cell-b', 'z2')];
    const source: { controllers: WebViewSource['controllers']; decisions: RecentDecisions } = {
      controllers: undefined,
      decisions: new RecentDecisions(),
    };
    view = await startWebView({ source, host: '127.0.0.1', port: 0, coalesceMs: 50 });
    const events = new EventReader(await fetch(`${view.url}/api/events`));
    const standby = await events.next();
    expect(standby.leading).toBe(false);
    expect(standby.zones).toEqual([]);
    source.controllers = running; // a new leadership term
    const leading = await events.next();
    expect(leading.leading).toBe(true);
    expect(leading.zones.map((z) => z.zone)).toEqual(['z1', 'z2']);
    await events.cancel();
  });

  it('gives a watcher that connects after a leadership change the new cache at once, and leaves the old one', async () => {
    const old = fakeCache();
    old.cache.cells.items = [cell('old-cell')];
    const next = fakeCache();
    next.cache.cells.items = [cell('new-cell')];
    const source: { controllers: WebViewSource['controllers']; decisions: RecentDecisions } = {
      controllers: old.running,
      decisions: new RecentDecisions(),
    };
    // No tick in this test: only the snapshot computed on connect counts.
    view = await startWebView({ source, host: '127.0.0.1', port: 0, coalesceMs: 600_000 });
    const first = new EventReader(await fetch(`${view.url}/api/events`));
    expect((await first.next()).zones[0]!.cells.map((c) => c.cellId)).toEqual(['old-cell']);
    await first.cancel();
    await expect.poll(() => view!.clients, { timeout: 10_000 }).toBe(0);
    expect(handlerCount(old.cache)).toBeGreaterThan(0);

    source.controllers = next.running; // a new leadership term, while nobody watches
    const second = new EventReader(await fetch(`${view.url}/api/events`));
    expect((await second.next()).zones[0]!.cells.map((c) => c.cellId)).toEqual(['new-cell']);
    expect(handlerCount(old.cache)).toBe(0);
    expect(handlerCount(next.cache)).toBeGreaterThan(0);
    await second.cancel();

    // Closing removes its listeners from the informers.
    const closing = view.close();
    view = undefined;
    await closing;
    expect(handlerCount(next.cache)).toBe(0);
  });

  it('cuts off a watcher that stopped reading, frees its slot and admits a new one', async () => {
    const { cache, running } = fakeCache();
    // Big snapshots (about 2 MB), so the socket's buffers fill soon once its reader stops.
    const cells = (n: number) => Array.from({ length: 100 }, (_, j) => cell(`${'x'.repeat(20_000)}-${n}-${j}`));
    cache.cells.items = cells(0);
    const source: WebViewSource = { controllers: running, decisions: new RecentDecisions() };
    view = await startWebView({ source, host: '127.0.0.1', port: 0, coalesceMs: 20, maxClients: 1, stallMs: 300 });
    const { port } = new URL(view.url);
    // A client that sends its request and never reads the answer.
    const stalled = connect(Number(port), '127.0.0.1');
    stalled.on('error', () => undefined);
    try {
      await once(stalled, 'connect');
      stalled.pause();
      stalled.write('GET /api/events HTTP/1.1\r\nHost: localhost\r\n\r\n');
      await expect.poll(() => view!.clients, { timeout: 10_000 }).toBe(1);
      expect((await fetch(`${view.url}/api/events`)).status).toBe(503); // it holds the only slot

      let n = 0;
      const changing = setInterval(() => cache.cells.set(cells(++n)), 25);
      try {
        await expect.poll(() => view!.clients, { timeout: 60_000, interval: 50 }).toBe(0);
      } finally {
        clearInterval(changing);
      }
      const events = new EventReader(await fetch(`${view.url}/api/events`));
      expect((await events.next()).totals.cells).toBe(100);
      expect(view.clients).toBe(1);
      await events.cancel();
    } finally {
      stalled.destroy();
    }
  }, 90_000);

  it('bounds its watchers, frees a slot when one leaves, and ends every stream on close', async () => {
    const source: WebViewSource = { controllers: undefined, decisions: new RecentDecisions() };
    view = await startWebView({ source, host: '127.0.0.1', port: 0, maxClients: 2 });
    const a = new EventReader(await fetch(`${view.url}/api/events`));
    const b = new EventReader(await fetch(`${view.url}/api/events`));
    await Promise.all([a.next(), b.next()]);
    const refused = await fetch(`${view.url}/api/events`);
    expect(refused.status).toBe(503);
    await a.cancel();
    await expect.poll(() => view!.clients, { timeout: 10_000 }).toBe(1);
    const c = new EventReader(await fetch(`${view.url}/api/events`));
    await c.next();
    const closing = view.close();
    view = undefined;
    await closing;
    expect(await b.ended()).toBe(true);
    expect(await c.ended()).toBe(true);
  });

  it('checks the token on the data routes, not on the page', async () => {
    const asked: unknown[] = [];
    const auth: OpsAuth = {
      authenticate: (token) => Promise.resolve(token === 'good' || token === 'weak' ? { username: token } : undefined),
      authorize: (user, attrs) => {
        asked.push(attrs);
        return Promise.resolve(user.username === 'good');
      },
    };
    const source: WebViewSource = { controllers: undefined, decisions: new RecentDecisions() };
    view = await startWebView({ source, host: '127.0.0.1', port: 0, auth });
    const get = (path: string, token?: string) =>
      fetch(`${view!.url}${path}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
    expect((await get('/')).status).toBe(200);
    expect((await get('/api/view')).status).toBe(401);
    expect((await get('/api/events', 'bad')).status).toBe(401);
    expect((await get('/api/events', 'weak')).status).toBe(403);
    expect((await get('/api/view', 'good')).status).toBe(200);
    expect(asked[0]).toEqual({ resource: { group: 'diego.dev', resource: 'desiredlrps', verb: 'list' } });
  });

  it('with auth, ends a stream after reauthMs so the page reconnects and its token is checked again', async () => {
    const auth: OpsAuth = {
      authenticate: (token) => Promise.resolve({ username: token }),
      authorize: () => Promise.resolve(true),
    };
    const source: WebViewSource = { controllers: undefined, decisions: new RecentDecisions() };
    view = await startWebView({ source, host: '127.0.0.1', port: 0, auth, keepAliveMs: 50, reauthMs: 200 });
    const events = new EventReader(await fetch(`${view.url}/api/events`, { headers: { authorization: 'Bearer x' } }));
    await events.next();
    expect(await events.ended()).toBe(true);
  });
});
