// The `route-emitter` role: Diego's route-emitter in global mode. One replica at a time emits (leader election on
// the Lease diego-operator-route-emitter); the others wait with their NATS connection open, so a failover only
// waits for the Lease. /metrics, /healthz and /readyz (ready = emitting) on the metrics address.
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { NatsBus } from '../controllers/nats-bus.ts';
import { RouteEmitter } from '../controllers/route-emitter.ts';
import { EventRecorder } from '../lib/events.ts';
import { loadKubeConfig } from '../lib/kube.ts';
import { LeaderElector } from '../lib/leader.ts';
import { startOpsServer } from '../lib/metrics.ts';
import { opsSecurity, type OpsAuthMode } from '../lib/ops-auth.ts';
import { splitAddress } from './controller.ts';
import { untilSignal } from './signals.ts';

export const ROUTE_EMITTER_LEASE_NAME = 'diego-operator-route-emitter';

export interface RouteEmitterRoleOptions {
  log: Logger;
  kubeconfig?: string;
  systemNamespace: string;
  /** Only this namespace's DesiredLRPs (default: all). */
  namespace?: string;
  natsServers: string;
  natsUser?: string;
  /** The NATS password (main.ts reads it from --nats-password-file). */
  natsPass?: string;
  natsTlsCa?: string;
  natsTlsCert?: string;
  natsTlsKey?: string;
  metricsAddress: string;
  metricsAuth?: OpsAuthMode | 'auto';
  directInstanceRoutes?: boolean;
  emitEndpointUpdatedAt?: boolean;
}

export async function runRouteEmitter(opts: RouteEmitterRoleOptions): Promise<number> {
  const kc = loadKubeConfig(opts.kubeconfig);
  const { log } = opts;
  const bus = await NatsBus.connect({
    servers: opts.natsServers,
    user: opts.natsUser,
    pass: opts.natsPass,
    tlsCaFile: opts.natsTlsCa,
    tlsCertFile: opts.natsTlsCert,
    tlsKeyFile: opts.natsTlsKey,
    log,
  });
  const events = new EventRecorder(kc, 'diego-route-emitter', log);
  const elector = new LeaderElector(kc, {
    namespace: opts.systemNamespace,
    name: ROUTE_EMITTER_LEASE_NAME,
    identity: process.env.POD_NAME ?? `${hostname()}-${process.pid}`,
    logger: log,
  });
  let emitter: RouteEmitter | undefined;
  let emitting = false;
  elector.run({
    onStartedLeading: async (signal) => {
      const e = new RouteEmitter({
        kc,
        bus,
        log,
        events,
        namespace: opts.namespace,
        directInstanceRoutes: opts.directInstanceRoutes,
        emitEndpointUpdatedAt: opts.emitEndpointUpdatedAt,
      });
      emitter = e;
      signal.addEventListener('abort', () => {
        emitting = false;
        void e.stop();
      });
      await e.start();
      emitting = !signal.aborted;
    },
    onNewLeader: (identity) => log.info({ leader: identity }, 'route emitter leader observed'),
  });
  const [host, port] = splitAddress(opts.metricsAddress);
  const security = await opsSecurity(kc, host, opts.metricsAuth ?? 'auto', {});
  const ops = await startOpsServer({ host, port, ready: () => emitting, logger: log, ...security });
  log.info({ metrics: ops.url, nats: opts.natsServers }, 'route emitter started');
  const sig = await untilSignal();
  log.info({ signal: sig }, 'shutting down');
  await elector.stop({ release: true });
  await emitter?.stop();
  await Promise.all([bus.close(), ops.close()]);
  return 0;
}
