// The `route-emitter` role: Diego's route-emitter in global mode. One replica at a time emits (leader election on
// the Lease diego-operator-route-emitter); the others wait with their NATS connection open, so a failover only
// waits for the Lease. /metrics, /healthz and /readyz (ready = emitting) on the metrics address.
import { hostname } from 'node:os';
import type { Command } from 'commander';
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
import { createLogger } from '../lib/log.ts';
import { addressValue, authMode, kubeconfigOption, readSecretFile, roleCommand, valueOption } from './flags.ts';

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
  const [host, port] = splitAddress(opts.metricsAddress, '--metrics-address');
  let ops: Awaited<ReturnType<typeof startOpsServer>>;
  try {
    const security = await opsSecurity(kc, host, opts.metricsAuth ?? 'auto', {});
    ops = await startOpsServer({ host, port, ready: () => emitting, logger: log, ...security });
  } catch (err) {
    // The role fails: the elector (campaigning, maybe leading and emitting) and NATS would keep the process alive.
    await elector.stop({ release: true });
    await emitter?.stop();
    await bus.close();
    throw err;
  }
  log.info({ metrics: ops.url, nats: opts.natsServers }, 'route emitter started');
  const sig = await untilSignal();
  log.info({ signal: sig }, 'shutting down');
  await elector.stop({ release: true });
  await emitter?.stop();
  await Promise.all([bus.close(), ops.close()]);
  return 0;
}

/** The flags of `diego-operator route-emitter`, as commander gives them (values as typed). */
interface RouteEmitterFlags {
  kubeconfig?: string;
  systemNamespace: string;
  namespace?: string;
  natsServers?: string;
  natsUser?: string;
  natsPasswordFile?: string;
  natsTlsCa?: string;
  natsTlsCert?: string;
  natsTlsKey?: string;
  metricsAddress: string;
  metricsAuth: string;
  directInstanceRoutes?: boolean;
  emitEndpointUpdatedAt?: boolean;
}

export function routeEmitterCommand(): Command {
  return roleCommand(
    'route-emitter',
    "Diego's route-emitter: registers the instances of DesiredLRPs with routes with gorouter over NATS. One replica emits at a time.",
  )
    .addOption(kubeconfigOption())
    .addOption(
      valueOption('--system-namespace <ns>', "The operator's namespace (the emitter's Lease).", 'diego-system'),
    )
    .option('--namespace <ns>', "Only this namespace's DesiredLRPs (default: all).")
    .option('--nats-servers <urls>', 'The NATS servers gorouter listens on, e.g. nats://nats.example:4222. Required.')
    .option('--nats-user <user>', 'NATS user.')
    .option('--nats-password-file <file>', "File holding the NATS user's password.")
    .option('--nats-tls-ca <file>', "CA (PEM) of the NATS servers' certificates.")
    .option('--nats-tls-cert <file>', 'Client certificate (PEM) for NATS.')
    .option('--nats-tls-key <file>', 'Its private key (PEM).')
    .addOption(valueOption('--metrics-address <host:port>', 'Where /metrics, /healthz and /readyz listen.', ':8080'))
    .addOption(
      valueOption(
        '--metrics-auth <mode>',
        'Who may scrape /metrics: kubernetes (a token, over TLS), none, or auto (kubernetes unless on loopback).',
        'auto',
      ),
    )
    .option('--direct-instance-routes', "Register the instances' own address and port (Diego's option).")
    .option('--emit-endpoint-updated-at', "Send each endpoint's update time (Diego's option).")
    .action(async (f: RouteEmitterFlags) => {
      const servers = f.natsServers;
      if (!servers) throw new Error('--nats-servers is required, e.g. --nats-servers nats://nats.example:4222');
      process.exitCode = await runRouteEmitter({
        log: createLogger(),
        kubeconfig: f.kubeconfig,
        systemNamespace: f.systemNamespace,
        namespace: f.namespace,
        natsServers: servers,
        natsUser: f.natsUser,
        natsPass: await readSecretFile('--nats-password-file', f.natsPasswordFile),
        natsTlsCa: f.natsTlsCa,
        natsTlsCert: f.natsTlsCert,
        natsTlsKey: f.natsTlsKey,
        metricsAddress: addressValue('--metrics-address', f.metricsAddress, ':8080'),
        metricsAuth: authMode('--metrics-auth', f.metricsAuth),
        directInstanceRoutes: f.directInstanceRoutes ?? false,
        emitEndpointUpdatedAt: f.emitEndpointUpdatedAt ?? false,
      });
    });
}
