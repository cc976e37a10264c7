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

export class LocketStore {
  private readonly leases: Informer<Lease>;
  /**
   * This process's own writes the informer may not have delivered yet: name → the Lease written (undefined:
   * deleted) and the version it replaced. A holder renews every second or so; deciding on the cache alone would
   * make most renewals a conflict.
   */
  private readonly own = new Map<string, { replaced?: string; lease?: Lease }>();

  private readonly kc: KubeConfig;
  private readonly client: DiegoClient;
  private readonly namespace: string;

  constructor(kc: KubeConfig, client: DiegoClient, namespace: string, log: Logger) {
    this.kc = kc;
    this.client = client;
    this.namespace = namespace;
    this.leases = createInformer<Lease>(kc, { path: leasePath(namespace), name: 'locket-leases', logger: log });
  }

  start(): Promise<void> {
    return this.leases.start();
  }

  stop(): Promise<void> {
    return this.leases.stop();
  }

  async lock(req: pb.LockRequest): Promise<void> {
    await this.withRetry(async (leases) => {
      const plan = planLock({ resource: req.resource, ttlInSeconds: req.ttlInSeconds }, leases, Date.now());
      if (plan.op === 'refuse') throw plan.error;
      const name = plan.lease.metadata!.name!;
      const written =
        plan.op === 'create'
          ? await rawRequest<Lease>(this.kc, { method: 'POST', path: leasePath(this.namespace), body: plan.lease })
          : await rawRequest<Lease>(this.kc, {
              method: 'PUT',
              path: leasePath(this.namespace, name),
              body: plan.lease,
            });
      this.wrote(name, plan.lease.metadata?.resourceVersion, written);
    });
  }

  async release(req: pb.ReleaseRequest): Promise<void> {
    await this.withRetry(async (leases) => {
      const plan = planRelease(req.resource, leases, Date.now());
      if (plan.op === 'refuse') throw plan.error;
      if (plan.op === 'delete') await this.remove(plan.lease);
    });
  }

  async fetch(key: string): Promise<Resource> {
    const leases = this.current();
    return fetch(key, leases, await this.presentCells(leases), Date.now());
  }

  async fetchAll(typeCode: number): Promise<Resource[]> {
    const leases = this.current();
    const now = Date.now();
    // Expired locks go as they are seen (Locket's expiry deletes the row), a few at a time.
    for (const l of expiredLocks(leases, now).slice(0, 10))
      await this.remove(l).then(
        () => locksExpired.inc(),
        () => undefined,
      );
    return fetchAll(typeCode, leases, await this.presentCells(leases), now);
  }

  /** Live locks and present cells, from the cache (for the gauges). */
  counts(): { locks: number; presences: number } {
    const leases = this.current();
    const now = Date.now();
    return { locks: fetchAll(TYPE_LOCK, leases, [], now).length, presences: presentCellIds(leases, now).size };
  }

  private async presentCells(leases: Lease[]): Promise<PresentCell[]> {
    const present = presentCellIds(leases, Date.now());
    // A presence Lease's holder is its cell's id (the cell agent writes it so).
    return (await this.client.list('Cell'))
      .filter((c) => present.has(c.spec.cellId))
      .map((c) => ({ cellId: c.spec.cellId, holder: c.spec.cellId, value: cellPresenceJson(c.spec) }));
  }

  private async remove(lease: Lease): Promise<void> {
    const name = lease.metadata?.name;
    if (!name) return; // never the collection
    await rawRequest(this.kc, {
      method: 'DELETE',
      path: leasePath(this.namespace, name),
      body: { preconditions: { resourceVersion: lease.metadata?.resourceVersion } },
    }).catch((err: unknown) => {
      if (!isNotFound(err)) throw err;
    });
    this.wrote(name, lease.metadata?.resourceVersion, undefined);
  }

  private wrote(name: string, replaced: string | undefined, lease: Lease | undefined): void {
    this.own.set(name, { replaced, lease });
  }

  /** The cached Leases with this process's later writes over them (dropped once the cache has moved past them). */
  private current(): Lease[] {
    const byName = new Map(this.leases.list().map((l) => [l.metadata?.name ?? '', l]));
    for (const [name, w] of this.own) {
      const cached = byName.get(name)?.metadata?.resourceVersion;
      if (cached !== w.replaced) {
        this.own.delete(name); // the cache has our write (or a later one)
        continue;
      }
      if (w.lease) byName.set(name, w.lease);
      else byName.delete(name);
    }
    return [...byName.values()];
  }

  /**
   * Decides on the cached Leases; when a write finds the Lease changed since (409: conflict or already exists), reads
   * them from the API server and decides again.
   */
  private async withRetry(fn: (leases: Lease[]) => Promise<void>): Promise<void> {
    let leases = this.current();
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn(leases);
      } catch (err) {
        if (err instanceof LocketError) throw err;
        const conflict = (err as { code?: number }).code === 409 || isAlreadyExists(err);
        if (!conflict || attempt >= ATTEMPTS) throw err;
        leases = (await rawRequest<{ items: Lease[] }>(this.kc, { method: 'GET', path: leasePath(this.namespace) }))
          .items;
      }
    }
  }
}

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
    <Req, Res>(what: string, fn: (req: Req) => Promise<Res>) =>
    (call: grpc.ServerUnaryCall<Req, Res>, done: grpc.sendUnaryData<Res>) => {
      const type = { request_type: what };
      requestsStarted.inc(type);
      requestsInFlight.inc(type);
      call.on('cancelled', () => requestsCancelled.inc(type));
      fn(call.request)
        .then(
          (res) => {
            requestsSucceeded.inc(type);
            done(null, res);
          },
          (err: unknown) => {
            if (err instanceof LocketError) {
              (err.code === Code.ALREADY_EXISTS ? requestsSucceeded : requestsFailed).inc(type);
              return done({ code: err.code, details: err.message });
            }
            requestsFailed.inc(type);
            log.warn({ err, call: what }, 'locket call failed');
            done({ code: Code.UNAVAILABLE, details: `the API server did not answer: ${(err as Error).message}` });
          },
        )
        .finally(() => requestsInFlight.dec(type));
    };
  server.addService(locketServiceDefinition, {
    Lock: handle('Lock', async (req: pb.LockRequest) => {
      await store.lock(req);
      return { $typeName: 'models.LockResponse' };
    }),
    Release: handle('Release', async (req: pb.ReleaseRequest) => {
      await store.release(req);
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
