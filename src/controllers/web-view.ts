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
  /** The version of the snapshot it last got. */
  sent: number;
  connectedAt: number;
}

export async function startWebView(opts: WebViewOptions): Promise<WebView> {
  const log = opts.logger?.child({ component: 'web-view' });
  const coalesceMs = opts.coalesceMs ?? 250;
  const maxClients = opts.maxClients ?? 32;
  const now = opts.now ?? Date.now;
  const clients = new Set<Client>();
  const subscribed = new WeakSet<DiegoCache>();
  let dirty = true;
  let version = 0;
  let snapshot = '';
  const markDirty = () => {
    dirty = true;
  };
  const unsubscribeDecisions = opts.source.decisions.onRecord(markDirty);

  /** The model now; subscribes to a cache it has not seen (a new leadership term brings a new one). */
  const model = (): WebViewModel => {
    const running = opts.source.controllers;
    const decisions = opts.source.decisions.list();
    if (!running) return standbyView(now(), decisions);
    const { cache, presence } = running;
    if (!subscribed.has(cache)) {
      subscribed.add(cache);
      for (const inf of [cache.cells, cache.leases, cache.actual, cache.desired, cache.tasks]) {
        for (const ev of ['add', 'update', 'delete'] as const) inf.on(ev, markDirty);
      }
    }
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
    if (dirty || !snapshot) {
      dirty = false;
      snapshot = `event: view\ndata: ${JSON.stringify(model())}\n\n`;
      version++;
    }
    return snapshot;
  };
  const send = (c: Client): void => {
    if (c.blocked) return;
    const message = current();
    if (c.sent === version) return;
    c.sent = version;
    if (!c.res.write(message)) c.blocked = true;
  };
  let lastCache: DiegoCache | undefined;
  // Only while someone watches: the cache is read at most once a tick, whatever the event rate.
  const tick = setInterval(() => {
    if (clients.size === 0) return;
    // A leadership change swaps the cache (or removes it): always worth a new snapshot.
    const cache = opts.source.controllers?.cache;
    if (cache !== lastCache) {
      lastCache = cache;
      dirty = true;
    }
    if (!dirty) return;
    for (const c of clients) send(c);
  }, coalesceMs);
  tick.unref();
  const reauthMs = opts.reauthMs ?? 600_000;
  const keepAlive = setInterval(() => {
    for (const c of clients) {
      if (opts.auth && now() - c.connectedAt >= reauthMs) {
        clients.delete(c);
        c.res.end();
      } else if (!c.blocked) c.res.write(': keep-alive\n\n');
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
    const c: Client = { res, blocked: false, sent: -1, connectedAt: now() };
    clients.add(c);
    res.on('drain', () => {
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
      unsubscribeDecisions();
      for (const c of clients) c.res.end();
      clients.clear();
      await app.close();
    },
  };
}
