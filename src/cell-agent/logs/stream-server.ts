// The cell agent's log endpoint, mounted on its ops server: Loggregator's recent logs and live stream for one
// log guid, as newline-delimited JSON envelopes (envelope.ts):
//   GET /v1/logs/<logGuid>                           the recent lines (last N per log guid), then the end
//   GET /v1/logs/<logGuid>?follow=true               lines as they are written, until the client hangs up
//   GET /v1/logs/<logGuid>?follow=true&recent=true   the recent lines, then the live ones
// A client that does not keep up loses lines (Loggregator drops for slow consumers too): when more than
// maxBufferedBytes wait in its socket, new lines are dropped and counted.
import type { FastifyInstance } from 'fastify';
import type { ServerResponse } from 'node:http';
import { Counter, Gauge } from 'prom-client';
import { registry } from '../../lib/metrics.ts';
import type { LogEnvelope } from './envelope.ts';
import type { LogHub } from './hub.ts';

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

export function registerLogRoutes(app: FastifyInstance, hub: LogHub, opts: LogRoutesOptions = {}): void {
  const maxBuffered = opts.maxBufferedBytes ?? 1024 * 1024;
  const open = new Set<ServerResponse>();
  // Followers never end on their own: end them so that closing the server does not wait for them.
  app.addHook('preClose', (done) => {
    for (const res of open) res.end();
    done();
  });

  app.get<{ Params: { logGuid: string }; Querystring: { follow?: string; recent?: string } }>(
    '/v1/logs/:logGuid',
    (req, reply) => {
      const { logGuid } = req.params;
      const follow = truthy(req.query.follow);
      const recent = req.query.recent === undefined ? !follow : truthy(req.query.recent);
      const lines = recent ? hub.recent(logGuid) : [];
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
      const unsubscribe = hub.subscribe(logGuid, write);
      open.add(res);
      followers.inc();
      res.once('close', () => {
        unsubscribe();
        open.delete(res);
        followers.dec();
      });
    },
  );
}
