// The process's one metrics registry and the ops endpoints every role serves: /metrics, /healthz, /readyz.
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { allowed, type OpsAuth } from './ops-auth.ts';

/** One registry per process; modules register their metrics here. */
export const registry = new Registry();
// Module evaluation happens once per process, so the default Node metrics are registered once.
collectDefaultMetrics({ register: registry });

export interface OpsServerOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  /** Readiness (e.g. informers synced, or this replica leads); /readyz answers 503 while false. */
  ready?: () => boolean;
  logger?: Logger;
  /** More routes on the same server (the cell agent's log stream). */
  routes?: (app: FastifyInstance, auth: OpsAuth | undefined) => void;
  /**
   * Who may scrape /metrics (and what the extra routes check): a bearer token checked with TokenReview and
   * SubjectAccessReview (ops-auth.ts). Without it the endpoints are open: keep them on loopback then.
   */
  auth?: OpsAuth;
  /** Serve HTTPS with this certificate (PEM); plain HTTP without. */
  tls?: { cert: string; key: string };
}

export interface OpsServer {
  /** e.g. http://127.0.0.1:41234 */
  url: string;
  close(): Promise<void>;
}

export async function startOpsServer(opts: OpsServerOptions): Promise<OpsServer> {
  const log = opts.logger?.child({ component: 'ops-server' });
  // Scrapes and probes every few seconds: no access log.
  // One instance type for both (fastify's HTTPS and HTTP servers differ only in the socket).
  const app = (opts.tls
    ? Fastify({ logger: false, https: opts.tls })
    : Fastify({ logger: false })) as unknown as FastifyInstance;
  const auth = opts.auth;
  app.get('/metrics', async (req, reply) => {
    if (auth && !(await allowed(auth, req, reply, { nonResource: { path: '/metrics', verb: 'get' } }))) return reply;
    return reply.type(registry.contentType).send(await registry.metrics());
  });
  opts.routes?.(app, auth);
  app.get('/healthz', (_req, reply) => reply.type('text/plain').send('ok'));
  const isReady = (): boolean => {
    try {
      return opts.ready?.() ?? true;
    } catch (err) {
      log?.warn({ err }, 'Readiness check failed');
      return false;
    }
  };
  app.get('/readyz', (_req, reply) => {
    const ready = isReady();
    return reply
      .code(ready ? 200 : 503)
      .type('text/plain')
      .send(ready ? 'ok' : 'not ready');
  });
  const url = await app.listen({ host: opts.host ?? '127.0.0.1', port: opts.port });
  log?.info({ url }, 'Ops server listening');
  return { url, close: () => app.close() };
}
