// The BBS event-stream routes (bbs-api.md §2.7): server-sent events in Diego's exact wire form, fed by the
// shared EventHub. Each event is `id: <n>\nevent: <type>\ndata: <base64 protobuf>\n\n`, ids count from 0 per
// connection, no heartbeats; an optional EventsByCellId body keeps only the actual-LRP events of one cell.
import { fromBinary } from '@bufbuild/protobuf';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ServerResponse } from 'node:http';
import { Counter } from 'prom-client';
import { registry } from '../lib/metrics.ts';
import type { BbsEvent, ModelVersion } from './event-calc.ts';
import type { EventHub, Subscriber, Topic } from './events.ts';
import { EventsByCellIdSchema } from './models.ts';

interface StreamRoute {
  method: 'GET' | 'POST';
  topics: Topic[];
  version: ModelVersion;
  /** Whether the request body's cell id filters actual-LRP events (Diego ignores it on task streams). */
  cellFilter: boolean;
}

export const eventRoutes: Record<string, StreamRoute> = {
  '/v1/events/lrp_instances.r1': {
    method: 'POST',
    topics: ['desired', 'instance'],
    version: 'current',
    cellFilter: true,
  },
  '/v1/events/tasks.r1': { method: 'POST', topics: ['task'], version: 'current', cellFilter: false },
  // Deprecated, still routed by BBS: V0 desired LRPs, and the LRP-group events.
  '/v1/events/lrp_instances': { method: 'POST', topics: ['desired', 'instance'], version: 'legacy', cellFilter: true },
  '/v1/events/tasks': { method: 'POST', topics: ['task'], version: 'legacy', cellFilter: false },
  '/v1/events.r1': { method: 'GET', topics: ['desired', 'group'], version: 'current', cellFilter: true },
  '/v1/events': { method: 'GET', topics: ['desired', 'group'], version: 'legacy', cellFilter: true },
};

/** Diego's hub keeps at most this many events for a subscriber (events/hub.go MAX_PENDING_SUBSCRIBER_EVENTS). */
export const MAX_PENDING_EVENTS = 1024;
/** A GET body is read by hand (fastify parses none); EventsByCellId is tiny. */
const MAX_BODY_BYTES = 64 * 1024;

const slowDropped = new Counter({
  name: 'bbs_event_stream_slow_subscribers_dropped_total',
  help: 'Event streams closed because their client read too slowly',
  registers: [registry],
});

const HEADERS = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'no-cache, no-store, must-revalidate',
  Connection: 'keep-alive',
};

/** One SSE frame as go-sse writes it (sse/event.go Write). */
export function sseFrame(id: number, name: string, data: string): string {
  return `id: ${id}\nevent: ${name}\n${data ? `data: ${data}\n` : 'data\n'}\n`;
}

function readBody(req: FastifyRequest): Promise<Buffer> {
  if (Buffer.isBuffer(req.body)) return Promise.resolve(req.body);
  if (req.raw.readableEnded) return Promise.resolve(Buffer.alloc(0));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.raw.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) reject(new Error(`event stream request body over ${MAX_BODY_BYTES} bytes`));
      else chunks.push(c);
    });
    req.raw.on('end', () => resolve(Buffer.concat(chunks)));
    req.raw.on('error', reject);
  });
}

/** A subscriber writing straight to one HTTP response. */
export class SseStream implements Subscriber {
  readonly topics: Topic[];
  private readonly res: ServerResponse;
  private readonly route: StreamRoute;
  private readonly cellId: string;
  private readonly onSlow: () => void;
  private nextId = 0;
  /** Events written since the socket last drained. */
  private backlog = 0;
  private ended = false;

  constructor(res: ServerResponse, route: StreamRoute, cellId: string, onSlow: () => void) {
    this.res = res;
    this.route = route;
    this.topics = route.topics;
    this.cellId = cellId;
    this.onSlow = onSlow;
    res.on('drain', () => (this.backlog = 0));
  }

  open(): void {
    if (this.res.headersSent) return;
    this.res.writeHead(200, HEADERS);
    this.res.flushHeaders();
  }

  deliver(ev: BbsEvent): void {
    if (this.ended || this.res.destroyed) return;
    if (this.cellId && ev.cellIds && !ev.cellIds.includes(this.cellId)) return;
    this.open();
    if (this.res.writableNeedDrain && ++this.backlog > MAX_PENDING_EVENTS) {
      this.ended = true;
      this.onSlow();
      this.res.destroy();
      return;
    }
    this.res.write(sseFrame(this.nextId++, ev.name, ev.payload(this.route.version)));
  }

  close(): void {
    if (this.ended) return;
    this.ended = true;
    this.open();
    this.res.end(); // the terminating chunk, as BBS writes on shutdown
  }
}

export function registerEventRoutes(app: FastifyInstance, hub: EventHub): void {
  for (const [url, route] of Object.entries(eventRoutes)) {
    app.route({
      method: route.method,
      url,
      handler: async (req, reply) => {
        let cellId = '';
        try {
          const body = await readBody(req);
          if (route.cellFilter) cellId = fromBinary(EventsByCellIdSchema, body).cellId;
        } catch (err) {
          // BBS answers a body it cannot parse with a bare 500.
          req.log.warn({ err, url }, 'Could not parse the event stream request');
          return reply.code(500).send();
        }
        const res = reply.raw;
        const log = req.log.child({ stream: url, cellId });
        const stream = new SseStream(res, route, cellId, () => {
          slowDropped.inc();
          log.warn(`Event stream client read too slowly (over ${MAX_PENDING_EVENTS} events behind); closing it`);
          hub.unsubscribe(stream);
        });
        try {
          await hub.subscribe(stream);
        } catch (err) {
          log.error({ err }, 'Could not subscribe to BBS events');
          return reply.code(500).send();
        }
        reply.hijack();
        res.on('close', () => {
          hub.unsubscribe(stream);
          log.info('Event stream closed');
        });
        if (res.destroyed) {
          hub.unsubscribe(stream);
          return;
        }
        stream.open();
        log.info('Subscribed to event stream');
      },
    });
  }
  // Streams never end by themselves: end them before the server waits for its connections to close.
  app.addHook('preClose', async () => hub.close());
}
