// The BBS HTTP shell: POST + protobuf body in, 200 + protobuf response out, with errors in the response's
// field 1 (bbs-api.md §1.1). Routes we do not serve answer a plain-text 404 so Diego's clients fall back
// to older routes, as they do against a real BBS.
import { create, fromBinary, toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { DiegoClient } from '../lib/resources.ts';
import { BbsFailure, toBbsError } from './errors.ts';
import { registerEventRoutes } from './event-routes.ts';
import { CachedDiegoClient } from './cached-client.ts';
import { EventHub } from './events.ts';
import { bbsRoutes } from './handlers.ts';
import { actualLRPLifecycleRoutes } from './actual-lrp-lifecycle.ts';
import { evacuationRoutes } from './evacuation-routes.ts';
import { readRoutes } from './read-routes.ts';
import { taskCellRoutes } from './task-cell-routes.ts';
import type { Route } from './route.ts';
import { Error_Type } from './models.ts';

export const PROTOBUF = 'application/x-protobuf';

export interface BbsAppOptions {
  client: DiegoClient;
  /** Where the DesiredLRPs, ActualLRPs and Tasks live. */
  namespace: string;
  /** Where cell and domain Leases live (default: namespace). */
  systemNamespace?: string;
  logger: Logger;
  https?: { key: Buffer; cert: Buffer; ca: Buffer };
  /** Rejections a task survives before RejectTask fails it (Diego's max_task_retries, default 3). */
  maxTaskRetries?: number;
  /** Largest request body accepted (default 10 MiB; a DesiredLRP is at most a few hundred KiB). */
  maxBodyBytes?: number;
}

export const DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024;

export function buildBbsApp(opts: BbsAppOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: opts.logger,
    bodyLimit: opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    // Diego's clients speak HTTP/1.1 with mutual TLS: the client CA must sign every caller.
    ...(opts.https
      ? {
          https: {
            ...opts.https,
            requestCert: true,
            rejectUnauthorized: true,
            minVersion: 'TLSv1.2' as const,
          },
        }
      : {}),
  }) as unknown as FastifyInstance; // HTTP and HTTPS servers differ only in generics we do not use
  // The real BBS ignores Content-Type; accept any body as raw bytes.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  const ctx = {
    client: opts.client,
    namespace: opts.namespace,
    systemNamespace: opts.systemNamespace ?? opts.namespace,
    log: opts.logger,
  };
  const routes: Record<string, Route> = {
    ...bbsRoutes,
    ...readRoutes,
    ...actualLRPLifecycleRoutes,
    ...evacuationRoutes,
    ...taskCellRoutes(opts.maxTaskRetries),
  };
  for (const [path, r] of Object.entries(routes)) {
    app.post(path, async (req, reply) => {
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      let res: MessageShape<DescMessage>;
      try {
        let msg: MessageShape<DescMessage>;
        try {
          // Diego's ping, domains and cells handlers never read the body: neither do we.
          msg = r.request.typeName === 'google.protobuf.Empty' ? create(r.request) : fromBinary(r.request, body);
        } catch {
          // As Diego's parseRequest: a body that does not unmarshal is models.ErrBadRequest.
          throw new BbsFailure(Error_Type.InvalidRequest, 'the request received is invalid');
        }
        res = await r.handler(msg, ctx);
      } catch (err) {
        if (!(err instanceof BbsFailure)) req.log.warn({ err, path }, 'BBS request failed');
        res = create(r.response, { ...r.failure, error: toBbsError(err) });
      }
      return reply
        .code(200)
        .type(PROTOBUF)
        .send(Buffer.from(toBinary(r.response, res)));
    });
  }
  // Diego's router (tedsuo/rata on bmizerany/pat) answers a known path with another method 405 + Allow.
  for (const path of Object.keys(routes)) {
    app.route({
      method: ['GET', 'PUT', 'DELETE', 'PATCH'],
      url: path,
      handler: (_req, reply) => reply.code(405).header('allow', 'POST').type('text/plain').send('Method Not Allowed\n'),
    });
  }
  // The event streams watch the namespace through one shared informer per kind, started by the first subscriber:
  // the read cache's, when the client has one (the same objects, watched once).
  const { client } = opts;
  const hub = new EventHub({
    kubeConfig: () => client.kc,
    namespace: opts.namespace,
    logger: opts.logger,
    ...(client instanceof CachedDiegoClient ? { sharedInformer: (kind) => client.informerOf(kind) } : {}),
  });
  registerEventRoutes(app, hub);
  // A body the shell refuses before a handler runs (too large, bad Content-Length) still gets the route's BBS
  // envelope, so Diego's clients report our message instead of "Invalid Response with status code: 413".
  app.setErrorHandler((err: { code?: string; statusCode?: number; message: string }, req, reply) => {
    // An unknown path is a 404 whatever its body, as Diego's router answers before reading it.
    if (req.routeOptions.url === undefined) return reply.code(404).type('text/plain').send('404 page not found\n');
    const r = routes[req.routeOptions.url];
    if (!r || (err.statusCode ?? 500) >= 500) return reply.send(err);
    // PingResponse has no error field: a plain status, which Diego's client reports as InvalidResponse.
    if (!r.response.fields.some((f) => f.localName === 'error'))
      return reply
        .code(err.statusCode ?? 400)
        .type('text/plain')
        .send(`${err.message}\n`);
    const message =
      err.code === 'FST_ERR_CTP_BODY_TOO_LARGE'
        ? `the request body is larger than the ${opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES}-byte limit`
        : 'the request received is invalid';
    const res = create(r.response, { ...r.failure, error: { type: Error_Type.InvalidRequest, message } });
    return reply
      .code(200)
      .type(PROTOBUF)
      .send(Buffer.from(toBinary(r.response, res)));
  });
  app.setNotFoundHandler((_req, reply) => reply.code(404).type('text/plain').send('404 page not found\n'));
  return app;
}
