// The cell agent's log endpoint, mounted on its ops server: Loggregator's recent logs and live stream for one
// log guid of one namespace, as newline-delimited JSON envelopes (envelope.ts):
//   GET /v1/namespaces/<ns>/logs/<logGuid>                           the recent lines (last N), then the end
//   GET /v1/namespaces/<ns>/logs/<logGuid>?follow=true               lines as they are written, until hang-up
//   GET /v1/namespaces/<ns>/logs/<logGuid>?follow=true&recent=true   the recent lines, then the live ones
//   GET /v1/logs/<logGuid>[?...]                                     the same across every namespace
// With authentication (ops-auth.ts) the caller's token must allow `get desiredlrps/log` (a virtual subresource:
// the chart grants it to the `view` role) in that namespace — in all namespaces for /v1/logs/<logGuid> — so a
// tenant reads only its own namespaces' lines, even when two tenants pick the same log guid.
// A client that does not keep up loses lines (Loggregator drops for slow consumers too): when more than
// maxBufferedBytes wait in its socket, new lines are dropped and counted.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ServerResponse } from 'node:http';
import { Counter, Gauge } from 'prom-client';
import { registry } from '../../lib/metrics.ts';
import type { LogEnvelope } from './envelope.ts';
import type { LogHub } from './hub.ts';
import { allowed, type OpsAuth } from '../../lib/ops-auth.ts';

export interface LogRoutesOptions {
  /** Bytes allowed to wait in a follower's socket before lines are dropped (default 1 MiB). */
  maxBufferedBytes?: number;
}

const reuse = <M>(name: string, make: () => M): M => (registry.getSingleMetric(name) as M | undefined) ?? make();
const followers = reuse(
  'LogStreamFollowers',
  () =>
    new Gauge({
      name: 'LogStreamFollowers',
      help: 'Clients following a log stream of this cell',
      registers: [registry],
    }),
);
const droppedLines = reuse(
  'LogStreamDroppedLines',
  () =>
    new Counter({
      name: 'LogStreamDroppedLines',
      help: 'Log lines not sent to a follower that did not keep up',
      registers: [registry],
    }),
);

const truthy = (v: unknown): boolean => v === 'true' || v === '1' || v === '';

/** The hub's key of a namespace's log guid (the cell keeps streams apart by namespace). */
export const streamKey = (namespace: string, logGuid: string): string => `${namespace}/${logGuid}`;

export function registerLogRoutes(
  app: FastifyInstance,
  hub: LogHub,
  opts: LogRoutesOptions = {},
  auth?: OpsAuth,
): void {
  const maxBuffered = opts.maxBufferedBytes ?? 1024 * 1024;
  const open = new Set<ServerResponse>();
  // Followers never end on their own: end them so that closing the server does not wait for them.
  app.addHook('preClose', (done) => {
    for (const res of open) res.end();
    done();
  });

  type Query = { follow?: string; recent?: string };
  const serve = async (
    req: FastifyRequest<{ Querystring: Query }>,
    reply: FastifyReply,
    namespace: string | undefined,
    logGuid: string,
  ) => {
    if (auth) {
      const attrs = {
        resource: { group: 'diego.dev', resource: 'desiredlrps', subresource: 'log', verb: 'get', namespace },
      };
      if (!(await allowed(auth, req, reply, attrs))) return reply;
    }
    // One namespace's stream, or every namespace's stream of that log guid.
    const keys = namespace !== undefined ? [streamKey(namespace, logGuid)] : hub.keysEndingWith(`/${logGuid}`);
    const follow = truthy(req.query.follow);
    const recent = req.query.recent === undefined ? !follow : truthy(req.query.recent);
    // Several namespaces' streams of one log guid are merged by time (each stream is in order already).
    const lines = !recent
      ? []
      : keys.length === 1
        ? hub.recent(keys[0]!)
        : keys.flatMap((k) => hub.recent(k)).sort((a, b) => (BigInt(a.timestamp) < BigInt(b.timestamp) ? -1 : 1));
    if (!follow) {
      return reply.type('application/x-ndjson').send(lines.map((e) => JSON.stringify(e) + '\n').join(''));
    }
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-cache' });
    const write = (e: LogEnvelope) => {
      if (res.writableLength > maxBuffered) {
        droppedLines.inc();
        return;
      }
      res.write(JSON.stringify(e) + '\n');
    };
    for (const e of lines) write(e);
    // Headers out now, so the client knows it is connected before the first line.
    if (lines.length === 0) res.flushHeaders();
    const unsubscribe =
      namespace !== undefined
        ? hub.subscribe(streamKey(namespace, logGuid), write)
        : hub.subscribeSuffix(`/${logGuid}`, write);
    open.add(res);
    followers.inc();
    res.once('close', () => {
      unsubscribe();
      open.delete(res);
      followers.dec();
    });
    return reply;
  };
  app.get<{ Params: { namespace: string; logGuid: string }; Querystring: Query }>(
    '/v1/namespaces/:namespace/logs/:logGuid',
    (req, reply) => serve(req, reply, req.params.namespace, req.params.logGuid),
  );
  app.get<{ Params: { logGuid: string }; Querystring: Query }>('/v1/logs/:logGuid', (req, reply) =>
    serve(req, reply, undefined, req.params.logGuid),
  );
}
