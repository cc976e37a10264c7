// The process's one metrics registry and the ops endpoints every role serves: /metrics, /healthz, /readyz.
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';

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
  routes?: (app: FastifyInstance) => void;
}

export interface OpsServer {
  /** e.g. http://127.0.0.1:41234 */
  url: string;
  close(): Promise<void>;
}

export async function startOpsServer(opts: OpsServerOptions): Promise<OpsServer> {
  const log = opts.logger?.child({ component: 'ops-server' });
  const app = Fastify({ logger: false }); // scrapes and probes every few seconds: no access log
  app.get('/metrics', async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()));
  opts.routes?.(app);
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
