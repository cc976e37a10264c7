// The route emitter's NATS connection (@nats-io/transport-node, the maintained NATS client for Node): publishes
// JSON messages, asks the routers for their intervals (router.greet, answered on an inbox), hears router.start,
// and reconnects forever (the emitter re-sends its table when the connection is back).
import { connect, type NatsConnection, type NodeConnectionOptions } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { RouteBus, RouterGreeting } from './route-emitter.ts';

export interface NatsOptions {
  /** nats://host:port or tls://host:port, comma-separated for a cluster. */
  servers: string;
  user?: string;
  pass?: string;
  /** PEM files: the servers' CA, and a client certificate for mutual TLS. */
  tlsCaFile?: string;
  tlsCertFile?: string;
  tlsKeyFile?: string;
  log: Logger;
  /** How long router.greet waits for an answer (Diego retries every 1 s, 30 times). */
  greetTimeoutMs?: number;
  greetAttempts?: number;
}

export class NatsBus implements RouteBus {
  private readonly startHandlers = new Set<(g: RouterGreeting) => void>();
  private readonly reconnectHandlers = new Set<() => void>();
  private readonly enc = new TextEncoder();

  private readonly nc: NatsConnection;
  private readonly o: NatsOptions;

  private constructor(nc: NatsConnection, o: NatsOptions) {
    this.nc = nc;
    this.o = o;
  }

  static async connect(o: NatsOptions): Promise<NatsBus> {
    const tls =
      o.tlsCaFile || o.tlsCertFile
        ? { caFile: o.tlsCaFile, certFile: o.tlsCertFile, keyFile: o.tlsKeyFile }
        : undefined;
    const nc = await connectUntilUp(o, {
      servers: o.servers.split(',').map((s) => s.trim()),
      name: 'diego-operator-route-emitter',
      ...(o.user ? { user: o.user, pass: o.pass } : {}),
      ...(tls ? { tls } : {}),
      maxReconnectAttempts: -1,
      reconnectTimeWait: 1000,
    });
    const bus = new NatsBus(nc, o);
    nc.subscribe('router.start', {
      callback: (err, msg) => {
        if (err) return;
        const g = parseGreeting(msg.data);
        for (const fn of bus.startHandlers) fn(g);
      },
    });
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'reconnect') for (const fn of bus.reconnectHandlers) fn();
        else if (s.type === 'disconnect') o.log.warn({ server: s.server }, 'NATS connection lost; reconnecting');
      }
    })();
    o.log.info({ server: nc.getServer() }, 'connected to NATS');
    return bus;
  }

  publish(subject: string, message: unknown): void {
    this.nc.publish(subject, this.enc.encode(JSON.stringify(message)));
  }

  async greet(): Promise<RouterGreeting | undefined> {
    const attempts = this.o.greetAttempts ?? 30;
    for (let i = 0; i < attempts; i++) {
      try {
        const msg = await this.nc.request('router.greet', undefined, { timeout: this.o.greetTimeoutMs ?? 1000 });
        return parseGreeting(msg.data);
      } catch {
        // No router answered yet (or none at all): Diego tries again every second.
      }
    }
    this.o.log.warn({ attempts }, 'no router answered router.greet; using the default emit interval');
    return undefined;
  }

  onRouterStart(fn: (g: RouterGreeting) => void): () => void {
    this.startHandlers.add(fn);
    return () => this.startHandlers.delete(fn);
  }

  onReconnect(fn: () => void): () => void {
    this.reconnectHandlers.add(fn);
    return () => this.reconnectHandlers.delete(fn);
  }

  async close(): Promise<void> {
    await this.nc.drain().catch(() => this.nc.close());
  }
}

/**
 * Connects, retrying every 2 s while no server answers (NATS may start after us), but failing at once when a server
 * refuses us (credentials, TLS): retrying would not help, and the pod's restarts and this message say what to fix.
 */
async function connectUntilUp(o: NatsOptions, opts: NodeConnectionOptions): Promise<NatsConnection> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await connect(opts);
    } catch (err) {
      const text = err instanceof Error ? err.message : String(err);
      if (/authori[sz]ation|authentication|permission|certificate|tls|ssl/i.test(text))
        throw new Error(
          `NATS at ${o.servers} refused the route emitter: ${text}. Check --nats-user, --nats-password-file and ` +
            '--nats-tls-ca/--nats-tls-cert/--nats-tls-key (chart: routeEmitter.nats)',
          { cause: err },
        );
      if (attempt === 1 || attempt % 30 === 0)
        o.log.warn({ err, servers: o.servers }, 'NATS not reachable yet; retrying');
      await new Promise((r) => setTimeout(r, 2_000));
    }
  }
}

function parseGreeting(data: Uint8Array): RouterGreeting {
  try {
    const v = JSON.parse(new TextDecoder().decode(data)) as Record<string, unknown>;
    const num = (k: string) => (typeof v[k] === 'number' ? v[k] : undefined);
    return {
      minimumRegisterIntervalInSeconds: num('minimumRegisterIntervalInSeconds'),
      pruneThresholdInSeconds: num('pruneThresholdInSeconds'),
    };
  } catch {
    return {};
  }
}
