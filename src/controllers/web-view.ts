// The controller's live web view (docs/web-view.md): one static page, and the view model (web-view-model.ts) pushed
// to it with server-sent events — a snapshot on connect, then at most one every `coalesceMs` while the cache changes.
// Read-only. The data routes check a bearer token as /metrics does (ops-auth.ts); the page itself holds no data.
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { allowed, type AccessAttributes, type OpsAuth } from '../lib/ops-auth.ts';
import type { RecentDecisions } from './auction-decisions.ts';
import type { DiegoCache } from './cache.ts';
import type { CellPresence } from './presence.ts';
import { buildWebView, standbyView, type WebViewModel } from './web-view-model.ts';
import { WEB_VIEW_PAGE } from './web-view-page.ts';

/** What the view reads: the Manager (its controllers exist only while it leads). */
export interface WebViewSource {
  readonly controllers: { cache: DiegoCache; presence: CellPresence } | undefined;
  readonly decisions: RecentDecisions;
}

/**
 * Who may watch: whoever may list DesiredLRPs in all namespaces (the view shows every app, instance and cell).
 * A cluster's `view` role is namespaced, so a cluster-admin or a ClusterRole binding grants it.
 */
export const WEB_VIEW_ACCESS: AccessAttributes = {
  resource: { group: 'diego.dev', resource: 'desiredlrps', verb: 'list' },
};

export interface WebViewOptions {
  source: WebViewSource;
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Without it the data is open: keep the address on loopback then. */
  auth?: OpsAuth;
  tls?: { cert: string; key: string };
  logger?: Logger;
  /** At most one update this often (default 250 ms). */
  coalesceMs?: number;
  /** Watchers at once; more get a 503 (default 32). */
  maxClients?: number;
  /** A comment line this often keeps idle connections through proxies (default 15 s). */
  keepAliveMs?: number;
  /**
   * With auth, a stream ends after this long (default 10 min) and the page reconnects, so a token that was revoked or
   * expired stops seeing updates.
   */
  reauthMs?: number;
  /**
   * A watcher whose socket has stayed full (it stopped reading) this long is cut off and its slot freed (default
   * 30 s); also how long a stream ended on purpose (re-auth) may take to flush before its socket is destroyed.
   */
  stallMs?: number;
  now?: () => number;
}

export interface WebView {
  url: string;
  /** Connected watchers (for tests). */
  readonly clients: number;
  close(): Promise<void>;
}

interface Client {
  res: ServerResponse;
  /** The socket's buffer is full: skip updates until it drains, then send the newest. */
  blocked: boolean;
  /** When it last became blocked (meaningful while `blocked`). */
  blockedSince: number;
  /** The version of the snapshot it last got. */
  sent: number;
  connectedAt: number;
}

export async function startWebView(opts: WebViewOptions): Promise<WebView> {
  const log = opts.logger?.child({ component: 'web-view' });
  const coalesceMs = opts.coalesceMs ?? 250;
  const maxClients = opts.maxClients ?? 32;
  const now = opts.now ?? Date.now;
  const stallMs = opts.stallMs ?? 30_000;
  const clients = new Set<Client>();
  let dirty = true;
  let version = 0;
  let snapshot = '';
  const markDirty = () => {
    dirty = true;
  };
  const unsubscribeDecisions = opts.source.decisions.onRecord(markDirty);

  // The cache whose informers we listen to, and how to stop listening. Informer has no `off`: each handler goes
  // through `watching`, cleared to detach, so a detached handler does nothing and holds nothing of this view.
  let watchedCache: DiegoCache | undefined;
  let unwatch = (): void => undefined;
  const watch = (cache: DiegoCache | undefined): void => {
    unwatch();
    watchedCache = cache;
    if (!cache) {
      unwatch = () => undefined;
      return;
    }
    let watching: (() => void) | undefined = markDirty;
    const handler = () => watching?.();
    const informers = [cache.cells, cache.leases, cache.actual, cache.desired, cache.tasks];
    for (const inf of informers) for (const ev of ['add', 'update', 'delete'] as const) inf.on(ev, handler);
    unwatch = () => {
      watching = undefined;
      for (const inf of informers) for (const ev of ['add', 'update', 'delete'] as const) inf.off(ev, handler);
    };
  };
  let closed = false;
  /** A leadership change swaps the cache (or removes it): listen to the new one, and the snapshot is stale. */
  const followCache = (): void => {
    if (closed) return;
    const cache = opts.source.controllers?.cache;
    if (cache === watchedCache) return;
    watch(cache);
    dirty = true;
  };

  /** The model now. */
  const model = (): WebViewModel => {
    followCache();
    const running = opts.source.controllers;
    const decisions = opts.source.decisions.list();
    if (!running) return standbyView(now(), decisions);
    const { cache, presence } = running;
    return buildWebView({
      now: now(),
      leading: true,
      cells: cache.cells.list(),
      isPresent: (id) => presence.isPresent(id),
      actual: cache.actual.list(),
      desired: cache.desired.list(),
      tasks: cache.tasks.list(),
      decisions,
    });
  };
  /** The current snapshot as an SSE message, rebuilt only when something changed. */
  const current = (): string => {
    followCache();
    if (dirty || !snapshot) {
      dirty = false;
      snapshot = `event: view\ndata: ${JSON.stringify(model())}\n\n`;
      version++;
    }
    return snapshot;
  };
  const write = (c: Client, text: string): void => {
    if (!c.res.write(text) && !c.blocked) {
      c.blocked = true;
      c.blockedSince = now();
    }
  };
  const send = (c: Client): void => {
    if (c.blocked) return;
    const message = current();
    if (c.sent === version) return;
    c.sent = version;
    write(c, message);
  };
  /**
   * Ends a stream on purpose, giving it `graceMs` to flush: a socket that does not drain (its reader stopped) is
   * destroyed, as `end()` alone would leave it open for good. Resolves once it is finished or destroyed.
   */
  const endStream = (c: Client, graceMs: number): Promise<void> => {
    clients.delete(c);
    const res = c.res;
    if (res.destroyed || res.writableFinished) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        res.destroy();
        resolve();
      }, graceMs);
      timer.unref();
      res.once('finish', done);
      res.once('close', done);
      res.end();
    });
  };
  /** Cuts off watchers that stopped reading: their socket stayed full for `stallMs`. */
  const dropStalled = (): void => {
    const t = now();
    for (const c of clients) {
      if (c.blocked && t - c.blockedSince >= stallMs) {
        clients.delete(c);
        c.res.destroy();
        log?.info({ blockedMs: t - c.blockedSince }, 'web view watcher stopped reading: disconnected');
      }
    }
  };
  // Only while someone watches: the cache is read at most once a tick, whatever the event rate.
  const tick = setInterval(() => {
    if (clients.size === 0) return;
    dropStalled();
    followCache();
    if (!dirty) return;
    for (const c of clients) send(c);
  }, coalesceMs);
  tick.unref();
  const reauthMs = opts.reauthMs ?? 600_000;
  const keepAlive = setInterval(() => {
    for (const c of clients) {
      if (opts.auth && now() - c.connectedAt >= reauthMs) void endStream(c, stallMs);
      else if (!c.blocked) write(c, ': keep-alive\n\n');
    }
  }, opts.keepAliveMs ?? 15_000);
  keepAlive.unref();

  const app = (opts.tls
    ? Fastify({ logger: false, https: opts.tls })
    : Fastify({ logger: false })) as unknown as FastifyInstance;
  const auth = opts.auth;
  const permitted = async (req: FastifyRequest, reply: FastifyReply): Promise<boolean> =>
    !auth || allowed(auth, req, reply, WEB_VIEW_ACCESS);

  app.get('/', (_req, reply) =>
    reply
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .header('content-security-policy', "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'")
      .send(WEB_VIEW_PAGE),
  );
  app.get('/healthz', (_req, reply) => reply.type('text/plain').send('ok'));
  // One snapshot (for scripts and curl).
  app.get('/api/view', async (req, reply) => {
    if (!(await permitted(req, reply))) return reply;
    return reply.header('cache-control', 'no-store').send(model());
  });
  app.get('/api/events', async (req, reply) => {
    if (!(await permitted(req, reply))) return reply;
    dropStalled();
    if (clients.size >= maxClients) {
      return reply
        .code(503)
        .header('retry-after', '5')
        .send({ error: `at most ${maxClients} watchers at once` });
    }
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    const c: Client = { res, blocked: false, blockedSince: 0, sent: -1, connectedAt: now() };
    clients.add(c);
    res.on('drain', () => {
      if (!clients.has(c)) return; // ended, or cut off
      c.blocked = false;
      send(c);
    });
    req.raw.on('close', () => clients.delete(c));
    res.on('close', () => clients.delete(c));
    res.write('retry: 2000\n\n');
    send(c);
    log?.debug({ clients: clients.size }, 'web view watcher connected');
  });

  const url = await app.listen({ host: opts.host, port: opts.port });
  return {
    url,
    get clients() {
      return clients.size;
    },
    async close() {
      clearInterval(tick);
      clearInterval(keepAlive);
      closed = true;
      unsubscribeDecisions();
      watch(undefined);
      // A second to flush the end of each stream; a watcher that does not read is cut off.
      await Promise.all([...clients].map((c) => endStream(c, Math.min(1000, stallMs))));
      await app.close();
    },
  };
}
