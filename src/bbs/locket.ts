// Diego's Locket API (gRPC over mutual TLS, service models.Locket) for Diego's tools — cfdot locks, presences,
// claim-lock, release-lock — and any Diego component that takes a lock. The decisions are locket-rules.ts's; this
// shell reads the system namespace's Leases from an informer, writes with optimistic concurrency (a conflict
// re-reads and decides again), and serves the four calls with @grpc/grpc-js.
import { fromBinary, toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { createInformer, type Informer } from '../lib/informer.ts';
import { type Lease, leasePath } from '../lib/lease.ts';
import { rawRequest } from '../lib/kube.ts';
import { registry } from '../lib/metrics.ts';
import { Counter, Gauge } from 'prom-client';
import type { DiegoClient } from '../lib/resources.ts';
import { isAlreadyExists, isNotFound } from '../lib/resources.ts';
import * as pb from './gen/locket_pb.ts';
import {
  cellPresenceJson,
  Code,
  expiredLocks,
  fetch,
  fetchAll,
  LocketError,
  type PresentCell,
  planLock,
  planRelease,
  leaseNameForKey,
  presentCellIds,
  type Resource,
  TYPE_LOCK,
} from './locket-rules.ts';

const ATTEMPTS = 3;

// Locket's metrics, with its names (request_type: Lock, Release, Fetch, FetchAll). As in Locket, a lock-collision
// is a request that succeeded.
const byType = { labelNames: ['request_type'] as const, registers: [registry] };
const requestsStarted = new Counter({ name: 'RequestsStarted', help: 'Locket requests started', ...byType });
const requestsSucceeded = new Counter({ name: 'RequestsSucceeded', help: 'Locket requests answered', ...byType });
const requestsFailed = new Counter({ name: 'RequestsFailed', help: 'Locket requests that failed', ...byType });
const requestsCancelled = new Counter({
  name: 'RequestsCancelled',
  help: 'Locket requests the client cancelled',
  ...byType,
});
const requestsInFlight = new Gauge({ name: 'RequestsInFlight', help: 'Locket requests being served', ...byType });
const locksExpired = new Counter({
  name: 'LocksExpired',
  help: 'Locket locks removed because their holder stopped renewing them within their TTL',
  registers: [registry],
});
/** The served stores, for the gauges below (read at each scrape). */
const served = new Set<LocketStore>();
new Gauge({
  name: 'ActiveLocks',
  help: 'Locks held (Locket-made and the operator own Leases)',
  registers: [registry],
  collect() {
    this.set([...served].reduce((n, s) => n + s.counts().locks, 0));
  },
});
new Gauge({
  name: 'ActivePresences',
  help: 'Cells present (their cell agent renews its Lease)',
  registers: [registry],
  collect() {
    this.set([...served].reduce((n, s) => n + s.counts().presences, 0));
  },
});

/** Locket bounds each database operation (10 s); each call here gets as long, or the client's deadline if sooner. */
const OPERATION_MS = 10_000;
/** How long an own write is laid over the cache at most (the informer delivers it well within this). */
const OWN_WRITE_MS = 10_000;
/** Expired locks removed per sweep, and how often the sweep runs. */
const SWEEP_BATCH = 50;
const SWEEP_EVERY_MS = 30_000;

interface OwnWrite {
  /** The version the write replaced (undefined: a create). */
  replaced?: string;
  /** The Lease written; undefined: deleted. */
  lease?: Lease;
  at: number;
}

export class LocketStore {
  private readonly leases: Informer<Lease>;
  /**
   * This process's own writes the informer may not have delivered yet, laid over the cache: a holder renews every
   * second or so, and deciding on the cache alone would make most renewals a conflict. An entry goes when the
   * informer delivers that object's next event (our write, or someone else's after it), or after OWN_WRITE_MS.
   */
  private readonly own = new Map<string, OwnWrite>();
  private sweeping?: Promise<void>;
  private sweeper?: NodeJS.Timeout;
  private stopped = false;

  private readonly kc: KubeConfig;
  private readonly client: DiegoClient;
  private readonly namespace: string;

  constructor(kc: KubeConfig, client: DiegoClient, namespace: string, log: Logger) {
    this.kc = kc;
    this.client = client;
    this.namespace = namespace;
    this.leases = createInformer<Lease>(kc, { path: leasePath(namespace), name: 'locket-leases', logger: log });
    const seen = (l: Lease) => this.own.delete(l.metadata?.name ?? '');
    this.leases.on('add', seen);
    this.leases.on('update', seen);
    this.leases.on('delete', seen);
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.leases.start();
    // Stopped meanwhile: no sweeper (it would delete Leases from a cache nobody updates, for good).
    if (this.stopped) return;
    // Expired locks go in the background (Locket's expiry deletes the row), a batch at a time.
    clearInterval(this.sweeper); // one sweeper, also when two start() calls overlap
    this.sweeper = setInterval(() => void this.sweep(), SWEEP_EVERY_MS);
    this.sweeper.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.sweeper);
    await this.sweeping;
    await this.leases.stop();
  }

  async lock(req: pb.LockRequest, deadline = Date.now() + OPERATION_MS): Promise<void> {
    await this.withRetry(deadline, async (leases) => {
      const plan = planLock({ resource: req.resource, ttlInSeconds: req.ttlInSeconds }, leases, Date.now());
      if (plan.op === 'refuse') throw plan.error;
      const name = plan.lease.metadata!.name!;
      const timeoutMs = remaining(deadline);
      const written =
        plan.op === 'create'
          ? await rawRequest<Lease>(this.kc, {
              method: 'POST',
              path: leasePath(this.namespace),
              body: plan.lease,
              timeoutMs,
            })
          : await rawRequest<Lease>(this.kc, {
              method: 'PUT',
              path: leasePath(this.namespace, name),
              body: plan.lease,
              timeoutMs,
            });
      this.wrote(name, plan.lease.metadata?.resourceVersion, written);
    });
  }

  async release(req: pb.ReleaseRequest, deadline = Date.now() + OPERATION_MS): Promise<void> {
    await this.withRetry(deadline, async (leases) => {
      let plan = planRelease(req.resource, leases, Date.now());
      if (plan.op === 'none') {
        // Not in this cache: it may be a lock another replica took a moment ago. Ask the API server (one GET).
        const name = leaseNameForKey(req.resource?.key ?? '');
        const served = await rawRequest<Lease>(this.kc, {
          method: 'GET',
          path: leasePath(this.namespace, name),
          timeoutMs: remaining(deadline),
        }).catch((err: unknown) => {
          if (isNotFound(err)) return undefined;
          throw err;
        });
        if (served)
          plan = planRelease(req.resource, [...leases.filter((l) => l.metadata?.name !== name), served], Date.now());
      }
      if (plan.op === 'refuse') throw plan.error;
      if (plan.op === 'delete') await this.remove(plan.lease, remaining(deadline));
    });
  }

  async fetch(key: string): Promise<Resource> {
    const leases = this.current();
    return fetch(key, leases, await this.presentCells(leases), Date.now());
  }

  async fetchAll(typeCode: number): Promise<Resource[]> {
    const leases = this.current();
    return fetchAll(typeCode, leases, await this.presentCells(leases), Date.now());
  }

  /** Live locks and present cells, from the cache (for the gauges). */
  counts(): { locks: number; presences: number } {
    const leases = this.current();
    const now = Date.now();
    return { locks: fetchAll(TYPE_LOCK, leases, [], now).length, presences: presentCellIds(leases, now).size };
  }

  /** Removes up to SWEEP_BATCH expired locks; one sweep at a time. */
  sweep(): Promise<void> {
    this.sweeping ??= (async () => {
      for (const l of expiredLocks(this.current(), Date.now()).slice(0, SWEEP_BATCH)) {
        if (await this.remove(l, OPERATION_MS).catch(() => false)) locksExpired.inc();
      }
    })().finally(() => (this.sweeping = undefined));
    return this.sweeping;
  }

  private async presentCells(leases: Lease[]): Promise<PresentCell[]> {
    const present = presentCellIds(leases, Date.now());
    // A presence Lease's holder is its cell's id (the cell agent writes it so).
    return (await this.client.list('Cell'))
      .filter((c) => present.has(c.spec.cellId))
      .map((c) => ({ cellId: c.spec.cellId, holder: c.spec.cellId, value: cellPresenceJson(c.spec) }));
  }

  /** Deletes `lease` if it is still the version read; true when this call deleted it. */
  private async remove(lease: Lease, timeoutMs: number): Promise<boolean> {
    const name = lease.metadata?.name;
    if (!name) return false; // never the collection
    const deleted = await rawRequest(this.kc, {
      method: 'DELETE',
      path: leasePath(this.namespace, name),
      body: { preconditions: { resourceVersion: lease.metadata?.resourceVersion } },
      timeoutMs,
    }).then(
      () => true,
      (err: unknown) => {
        if (isNotFound(err)) return false;
        throw err;
      },
    );
    this.wrote(name, lease.metadata?.resourceVersion, undefined);
    return deleted;
  }

  private wrote(name: string, replaced: string | undefined, lease: Lease | undefined): void {
    this.own.set(name, { replaced, lease, at: Date.now() });
  }

  /** The cached Leases with this process's writes the cache has not delivered yet laid over them. */
  private current(): Lease[] {
    const byName = new Map(this.leases.list().map((l) => [l.metadata?.name ?? '', l]));
    const now = Date.now();
    for (const [name, w] of this.own) {
      const cached = byName.get(name)?.metadata?.resourceVersion;
      // Stale, or the cache holds something else than what the write replaced: the cache knows better.
      if (now - w.at > OWN_WRITE_MS || cached !== w.replaced) {
        this.own.delete(name);
        continue;
      }
      if (w.lease) byName.set(name, w.lease);
      else byName.delete(name);
    }
    return [...byName.values()];
  }

  /**
   * Decides on the cached Leases; when a write finds the Lease changed or gone since (409, 404), reads them from the
   * API server and decides again, until the deadline.
   */
  private async withRetry(deadline: number, fn: (leases: Lease[]) => Promise<void>): Promise<void> {
    let leases = this.current();
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn(leases);
      } catch (err) {
        if (err instanceof LocketError) throw err;
        const code = (err as { code?: number }).code;
        const stale = code === 409 || code === 404 || isAlreadyExists(err);
        if (!stale || attempt >= ATTEMPTS || remaining(deadline) <= 1) throw err;
        leases = (
          await rawRequest<{ items: Lease[] }>(this.kc, {
            method: 'GET',
            path: leasePath(this.namespace),
            timeoutMs: remaining(deadline),
          })
        ).items;
      }
    }
  }
}

const remaining = (deadline: number) => Math.max(1, deadline - Date.now());

/** A gRPC method of a generated service, served with @bufbuild/protobuf's codec. */
function unary<I extends DescMessage, O extends DescMessage>(
  service: string,
  method: string,
  input: I,
  output: O,
): grpc.MethodDefinition<MessageShape<I>, MessageShape<O>> {
  return {
    path: `/${service}/${method}`,
    requestStream: false,
    responseStream: false,
    requestSerialize: (m) => Buffer.from(toBinary(input, m)),
    requestDeserialize: (b) => fromBinary(input, b),
    responseSerialize: (m) => Buffer.from(toBinary(output, m)),
    responseDeserialize: (b) => fromBinary(output, b),
  };
}

const SERVICE = pb.Locket.typeName;
export const locketServiceDefinition = {
  Lock: unary(SERVICE, 'Lock', pb.LockRequestSchema, pb.LockResponseSchema),
  Fetch: unary(SERVICE, 'Fetch', pb.FetchRequestSchema, pb.FetchResponseSchema),
  Release: unary(SERVICE, 'Release', pb.ReleaseRequestSchema, pb.ReleaseResponseSchema),
  FetchAll: unary(SERVICE, 'FetchAll', pb.FetchAllRequestSchema, pb.FetchAllResponseSchema),
};

export interface LocketServerOptions {
  kc: KubeConfig;
  client: DiegoClient;
  /** The system namespace: where the Leases are. */
  namespace: string;
  host: string;
  /** 0: any free port. */
  port: number;
  /** Mutual TLS as Locket's (the BBS's certificate and client CA); absent: plaintext (local development only). */
  tls?: { cert: Buffer; key: Buffer; ca: Buffer };
  log: Logger;
}

export interface RunningLocket {
  address: string;
  close(): Promise<void>;
}

export async function startLocketServer(opts: LocketServerOptions): Promise<RunningLocket> {
  const log = opts.log.child({ component: 'locket' });
  const store = new LocketStore(opts.kc, opts.client, opts.namespace, log);
  await store.start();
  served.add(store);
  const server = new grpc.Server();
  const handle =
    <Req, Res>(what: string, fn: (req: Req, deadline: number) => Promise<Res>) =>
    (call: grpc.ServerUnaryCall<Req, Res>, done: grpc.sendUnaryData<Res>) => {
      const type = { request_type: what };
      requestsStarted.inc(type);
      requestsInFlight.inc(type);
      let settled = false;
      // The client's deadline (Infinity without one), as epoch milliseconds.
      const given = call.getDeadline();
      const clientDeadline = given instanceof Date ? given.getTime() : Number(given);
      // grpc-js also says 'cancelled' after an answer, and when the deadline passes: only a client's cancel counts.
      call.on('cancelled', () => {
        if (!settled && clientDeadline > Date.now()) requestsCancelled.inc(type);
      });
      const until = Math.min(Date.now() + OPERATION_MS, clientDeadline);
      fn(call.request, until)
        .then(
          (res) => {
            settled = true;
            requestsSucceeded.inc(type);
            done(null, res);
          },
          (err: unknown) => {
            settled = true;
            if (err instanceof LocketError) {
              (err.code === Code.ALREADY_EXISTS ? requestsSucceeded : requestsFailed).inc(type);
              return done({ code: err.code, details: err.message });
            }
            requestsFailed.inc(type);
            log.warn({ err, call: what }, 'locket call failed');
            done(apiError(err));
          },
        )
        .finally(() => requestsInFlight.dec(type));
    };
  server.addService(locketServiceDefinition, {
    Lock: handle('Lock', async (req: pb.LockRequest, deadline) => {
      await store.lock(req, deadline);
      return { $typeName: 'models.LockResponse' };
    }),
    Release: handle('Release', async (req: pb.ReleaseRequest, deadline) => {
      await store.release(req, deadline);
      return { $typeName: 'models.ReleaseResponse' };
    }),
    Fetch: handle('Fetch', async (req: pb.FetchRequest) => {
      const resource = await store.fetch(req.key);
      return { $typeName: 'models.FetchResponse', resource: toResource(resource) };
    }),
    FetchAll: handle('FetchAll', async (req: pb.FetchAllRequest) => {
      const resources = await store.fetchAll(req.typeCode);
      return { $typeName: 'models.FetchAllResponse', resources: resources.map(toResource) };
    }),
  });
  const credentials = opts.tls
    ? grpc.ServerCredentials.createSsl(opts.tls.ca, [{ cert_chain: opts.tls.cert, private_key: opts.tls.key }], true)
    : grpc.ServerCredentials.createInsecure();
  const { host, port } = opts;
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host.includes(':') ? `[${host}]` : host}:${port}`, credentials, (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  ).catch(async (err: unknown) => {
    served.delete(store);
    await store.stop();
    throw new Error(`Locket cannot listen on ${host}:${port}: ${(err as Error).message}`, { cause: err });
  });
  const address = `${host}:${bound}`;
  log.info({ address, tls: !!opts.tls }, 'Locket listening');
  return {
    address,
    close: async () => {
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => server.forceShutdown(), 5_000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
      served.delete(store);
      await store.stop();
    },
  };
}

const toResource = (r: Resource): pb.Resource =>
  ({
    $typeName: 'models.Resource',
    key: r.key,
    owner: r.owner,
    value: r.value,
    type: r.type,
    typeCode: r.typeCode,
  }) as pb.Resource;

/** What a client sees when the API server refused or did not answer a Lease operation. */
function apiError(err: unknown): grpc.StatusObject | grpc.ServiceError {
  const code = (err as { code?: number }).code;
  const message = (err as Error).message;
  if (code === 403 || code === 422)
    return {
      code: grpc.status.FAILED_PRECONDITION,
      details: `the API server refused the Lease write (${code}): ${message}`,
      metadata: new grpc.Metadata(),
    };
  return {
    code: Code.UNAVAILABLE,
    details: `the API server did not answer in time: ${message}`,
    metadata: new grpc.Metadata(),
  };
}
