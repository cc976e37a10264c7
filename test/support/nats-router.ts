// A NATS server for tests (Debian's nats-server on a loopback port) and a stand-in for gorouter, which cannot be
// built here (no version of code.cloudfoundry.org/gorouter is served by the Go module proxy). The stand-in does what
// gorouter does with the route emitter's messages, per its documentation and mbus/subscriber.go: it answers
// router.greet and publishes router.start with its intervals, adds an endpoint per router.register (keyed by URI
// and host:port, replacing an earlier one), removes it on router.unregister, prunes endpoints not registered again
// within its stale threshold, and proxies HTTP requests to one of the endpoints of the request's Host.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { RegistryMessage } from '../../src/lifecycle/routing-table.ts';
import { exitOf, outputOf, running } from './child.ts';

export class NatsServer {
  private proc?: ChildProcess;
  readonly port: number;
  readonly host: string;
  constructor(port: number, host = '127.0.0.1') {
    this.port = port;
    this.host = host;
  }

  get url(): string {
    return `nats://${this.host}:${this.port}`;
  }

  async start(): Promise<this> {
    const proc = spawn('nats-server', ['-a', this.host, '-p', String(this.port)], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.proc = proc;
    try {
      await outputOf(proc, proc.stderr, (err) => err.includes('Server is ready') || undefined, 60_000, 'nats-server');
    } catch (err) {
      proc.kill('SIGKILL');
      throw err;
    }
    return this;
  }

  /** kill -9, as a crashed NATS. */
  async kill(): Promise<void> {
    const p = this.proc;
    if (!p || !running(p)) return;
    p.kill('SIGKILL');
    await exitOf(p, 30_000, 'nats-server (SIGKILLed)');
  }
}

/** A free loopback TCP port (bound and released). */
export async function freePort(): Promise<number> {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address() as AddressInfo;
  s.close();
  return port;
}

export interface RouterEndpoint {
  message: RegistryMessage;
  seenAt: number;
}

export class TestRouter {
  /** URI → host:port → the last registration. */
  readonly routes = new Map<string, Map<string, RouterEndpoint>>();
  /** Every message, with when it arrived (ms since the epoch). */
  readonly received: { subject: string; message: RegistryMessage; at: number }[] = [];
  private nc?: NatsConnection;
  private http?: Server;
  private pruner?: NodeJS.Timeout;

  private readonly opts: { natsUrl: string; registerIntervalSeconds: number; staleThresholdSeconds: number };
  constructor(opts: { natsUrl: string; registerIntervalSeconds: number; staleThresholdSeconds: number }) {
    this.opts = opts;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.http!.address() as AddressInfo).port}`;
  }

  async start(): Promise<this> {
    const nc = await connect({ servers: this.opts.natsUrl, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
    this.nc = nc;
    const greeting = new TextEncoder().encode(
      JSON.stringify({
        id: 'test-router',
        minimumRegisterIntervalInSeconds: this.opts.registerIntervalSeconds,
        pruneThresholdInSeconds: this.opts.staleThresholdSeconds,
      }),
    );
    nc.subscribe('router.greet', {
      callback: (_e, msg) => {
        msg.respond(greeting);
      },
    });
    const decode = (d: Uint8Array) => JSON.parse(new TextDecoder().decode(d)) as RegistryMessage;
    nc.subscribe('router.register', {
      callback: (_e, msg) => {
        const m = decode(msg.data);
        this.received.push({ subject: 'router.register', message: m, at: Date.now() });
        for (const uri of m.uris) {
          const eps = this.routes.get(uri) ?? this.routes.set(uri, new Map()).get(uri)!;
          eps.set(`${m.host}:${m.port}`, { message: m, seenAt: Date.now() });
        }
      },
    });
    nc.subscribe('router.unregister', {
      callback: (_e, msg) => {
        const m = decode(msg.data);
        this.received.push({ subject: 'router.unregister', message: m, at: Date.now() });
        for (const uri of m.uris) {
          this.routes.get(uri)?.delete(`${m.host}:${m.port}`);
          if (this.routes.get(uri)?.size === 0) this.routes.delete(uri);
        }
      },
    });
    await nc.flush();
    nc.publish('router.start', greeting);
    this.pruner = setInterval(() => this.prune(), 500);
    this.http = createServer((req, res) => {
      const host = (req.headers.host ?? '').split(':')[0]!.toLowerCase();
      const eps = [...(this.routes.get(host)?.values() ?? [])];
      if (eps.length === 0) {
        res
          .writeHead(404, { 'x-cf-routererror': 'unknown_route' })
          .end(`404 Not Found: Requested route ('${host}') does not exist.\n`);
        return;
      }
      const { message: m } = eps[Math.floor(Math.random() * eps.length)]!;
      const up = request(
        { host: m.host, port: m.port, path: req.url, method: req.method, headers: req.headers },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      up.on('error', () => res.writeHead(502).end('502 Bad Gateway\n'));
      req.pipe(up);
    });
    this.http.listen(0, '127.0.0.1');
    await once(this.http, 'listening');
    return this;
  }

  /** The host:port endpoints registered for `uri`. */
  endpoints(uri: string): string[] {
    return [...(this.routes.get(uri)?.keys() ?? [])].sort();
  }

  private prune(): void {
    const stale = Date.now() - this.opts.staleThresholdSeconds * 1000;
    for (const [uri, eps] of this.routes) {
      for (const [k, e] of eps) if (e.seenAt < stale) eps.delete(k);
      if (eps.size === 0) this.routes.delete(uri);
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.pruner);
    this.http?.closeAllConnections();
    await new Promise((r) => this.http?.close(r));
    await this.nc?.close();
  }
}
