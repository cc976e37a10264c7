// The `cell-agent` role: Diego's rep + executor for one cell, on this host (or as a DaemonSet pod).
import { execFileSync } from 'node:child_process';
import { readFile, statfs } from 'node:fs/promises';
import { Counter } from 'prom-client';
import { hostname, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { type Command, Option } from 'commander';
import type { Logger } from 'pino';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { ContainerdBackend } from '../cell-agent/backends/containerd.ts';
import { ProcessBackend } from '../cell-agent/backends/process.ts';
import { parseStacks, type StackMap } from '../cell-agent/backends/rootfs.ts';
import { RuncBackend } from '../cell-agent/backends/runc.ts';
import { egressFromSecurityGroups, type SecurityGroupRuleSpec } from '../cell-agent/backends/egress.ts';
import type { ContainerBackend } from '../cell-agent/backends/types.ts';
import { registerLogRoutes } from '../cell-agent/logs/stream-server.ts';
import { advertisedOpsUrl } from '../cell-agent/presence.ts';
import { registerStateRoute } from '../cell-agent/rep-state.ts';
import { type OnSigterm, serveUntilStopped } from '../cell-agent/drain.ts';
import { NatsBus, type NatsOptions } from '../controllers/nats-bus.ts';
import { RouteEmitter } from '../controllers/route-emitter.ts';
import type { RoutingOptions } from '../lifecycle/routing-table.ts';
import { Rep, type RepOptions } from '../cell-agent/rep.ts';
import { DownloadCache } from '../cell-agent/executor/download-cache.ts';
import { Downloader } from '../cell-agent/executor/downloader.ts';
import { InstanceIdentity } from '../cell-agent/executor/identity.ts';
import { cacheMetrics, identityMetrics } from '../cell-agent/executor-metrics.ts';
import { SocatProxyRunner } from '../cell-agent/executor/proxy.ts';
import { VolumeManager } from '../cell-agent/executor/volumes.ts';
import { DEFAULT_MAX_CONCURRENT_DOWNLOADS, Semaphore } from '../cell-agent/executor/index.ts';
import {
  endpointSource,
  type ImageCredentialsSource,
  secretSource,
  tokenFrom,
} from '../cell-agent/image-credentials.ts';
import { EventRecorder } from '../lib/events.ts';
import { loadKubeConfig } from '../lib/kube.ts';
import { registry, startOpsServer } from '../lib/metrics.ts';
import { createLogger } from '../lib/log.ts';
import { opsSecurity, type OpsAuthMode } from '../lib/ops-auth.ts';
import {
  address,
  addressValue,
  authMode,
  kubeconfigOption,
  list,
  nonNegative,
  readSecretFile,
  repeatableOption,
  roleCommand,
  valueOption,
  wholeNumber,
} from './flags.ts';

export interface CellAgentOptions {
  log: Logger;
  kubeconfig?: string;
  cellId: string;
  zone?: string;
  memoryMb: number;
  diskMb: number;
  containers: number;
  /** --stacks entries: `<stack>=<rootfs>` or a bare stack name (parseStacks in backends/rootfs.ts). */
  stacks: string[];
  placementTags?: string[];
  optionalPlacementTags?: string[];
  /**
   * Volume drivers to advertise besides those found in volumeDriverPaths (e.g. one whose driver starts after the
   * agent: re-discovery finds it later). One that is not found is advertised anyway, with a warning.
   */
  volumeDrivers?: string[];
  /** Directories of volume driver spec files (Diego's volman driver_paths): <name>.json, .spec or .sock. */
  volumeDriverPaths?: string[];
  backend: 'runc' | 'containerd' | 'process' | 'auto';
  stateDir: string;
  /** containerd's socket for the containerd backend (default /run/containerd/containerd.sock). */
  containerdAddress?: string;
  /** Registries (host:port) pulled over plain HTTP besides loopback ones: Diego's insecure_docker_registry_list. */
  insecureDockerRegistries?: string[];
  systemNamespace?: string;
  /** Diego's evacuation_timeout (default 600 s): how long instances may take to move when the cell drains. */
  evacuationTimeoutMs?: number;
  /**
   * SIGTERM: 'evacuate' (Diego's rep; default) moves the instances to other cells first; 'detach' exits and leaves
   * the containers running for the next agent to adopt (a DaemonSet rollout). Node drains evacuate either way.
   */
  onSigterm?: OnSigterm;
  /** Cell-local route emitter (Diego's local mode): registers this cell's instances' routes over this NATS. */
  routeEmitter?: Omit<NatsOptions, 'log'> & Pick<RoutingOptions, 'directInstanceRoutes' | 'emitEndpointUpdatedAt'>;
  /** host:port of /metrics, /healthz and the log stream /v1/logs/<logGuid> (default 127.0.0.1:17008). */
  opsAddress?: string;
  /** Diego's max_log_lines_per_second per instance; 0: unlimited (Diego's default). */
  maxLogLinesPerSecond?: number;
  /** Diego's container_metrics_report_interval (default 15 s). */
  containerMetricsIntervalMs?: number;
  /** Diego's polling_interval: how often the rep bulk-syncs containers with its work (default 30 s). */
  pollingIntervalMs?: number;
  /** Also write every app line to the agent's own log (default: app lines go to the log stream only). */
  logAppLines?: boolean;
  /** Limits of containers whose work sets none (0: none, as Diego). */
  defaultContainerMemoryMb?: number;
  defaultContainerDiskMb?: number;
  defaultContainerMaxPids?: number;
  /** Who may read the ops endpoints: `auto` (default) checks Kubernetes tokens unless the address is loopback. */
  opsAuth?: OpsAuthMode | 'auto';
  /** The ops server's certificate (PEM files); with authentication and none given, a self-signed one. */
  opsTlsCert?: string;
  opsTlsKey?: string;
  /** The download cache (default <state-dir>/cache) and its size bound (Diego's max_cache_size_in_bytes). */
  cacheDir?: string;
  maxCacheBytes?: number;
  /** PEM files of the instance identity CA (Diego's instance_identity_ca_cert/key); without them no identity. */
  instanceIdentityCaCert?: string;
  instanceIdentityCaKey?: string;
  /** Diego's instance_identity_validity_period (default 24 h). */
  instanceIdentityValidityMs?: number;
  /** Directory of CA certificates containers may ask for (trustedSystemCertificatesPath; Diego's trusted_certs). */
  trustedCertsDir?: string;
  /** The cell's address instances advertise (CF_INSTANCE_IP, netInfo.address). Default $HOST_IP, else 127.0.0.1. */
  externalIp?: string;
  /** Diego's enable_container_proxy: a TLS proxy beside each instance (executor/proxy.ts); needs the identity CA. */
  containerProxy?: boolean;
  /** Diego's container_proxy_require_and_verify_client_certs, with the CAs of container_proxy_trusted_ca_certs. */
  containerProxyRequireClientCerts?: boolean;
  containerProxyTrustedCa?: string;
  /**
   * Egress rules every container gets, in the CRDs' egressRules form (Diego's running/staging security groups
   * as the cell's default); checked with Diego's rules at start.
   */
  defaultEgress?: unknown[];
  /** Resolvers containers may always query on port 53 (their /etc/resolv.conf is the rootfs's). */
  dnsServers?: string[];
  /**
   * The controller's image credentials endpoint (https://...), asked just before a docker:// pull of work that names
   * a Secret. Empty: the agent reads the Secret itself — local development with an admin kubeconfig only.
   */
  imageCredentialsUrl?: string;
  /** PEM file of the CA that signed the endpoint's certificate (default: the system's CAs). */
  imageCredentialsCa?: string;
  /** The token presented to the endpoint (re-read for each request; default: the kubeconfig's token). */
  imageCredentialsTokenFile?: string;
}

/**
 * containerd when asked for (the backend that runs docker:// images); else runc when we are root and runc is
 * installed; otherwise plain processes (laptops, unprivileged tests).
 */
export function pickBackend(
  kind: CellAgentOptions['backend'],
  stateDir: string,
  log: Logger,
  containerd: Pick<
    CellAgentOptions,
    'containerdAddress' | 'insecureDockerRegistries' | 'defaultEgress' | 'dnsServers'
  > & {
    stacks?: StackMap;
  } = {},
): ContainerBackend {
  const network = {
    ipamDataDir: join(stateDir, 'ipam'),
    defaultEgress: containerd.defaultEgress
      ? egressFromSecurityGroups(containerd.defaultEgress as SecurityGroupRuleSpec[])
      : undefined,
    dnsServers: containerd.dnsServers,
  };
  if (kind === 'containerd') {
    return new ContainerdBackend({
      address: containerd.containerdAddress ?? DEFAULT_CONTAINERD_ADDRESS,
      stateDir: join(stateDir, 'containerd'),
      insecureRegistries: containerd.insecureDockerRegistries,
      stacks: containerd.stacks,
      network,
    });
  }
  let useRunc = kind === 'runc';
  if (kind === 'auto') {
    try {
      execFileSync('runc', ['--version'], { stdio: 'ignore' });
      useRunc = process.getuid?.() === 0;
    } catch {
      useRunc = false;
    }
    if (!useRunc)
      log.warn('runc is not usable here (needs root and runc): running work as plain processes, without isolation');
  }
  // persistent: processes outlive an agent restart and the next agent re-adopts them, as with runc.
  if (!useRunc) return new ProcessBackend({ baseDir: join(stateDir, 'containers'), persistent: true });
  return new RuncBackend({
    stateDir,
    stacks: containerd.stacks,
    network,
  });
}

/**
 * The executor's side of the cell: the download cache (opened: a restarted agent finds its entries), the
 * instance identity CA, trusted certificates, the cell's address and its volume drivers (discovered now, then
 * every 30 s).
 */
export async function executorOptions(opts: Omit<CellAgentOptions, 'kubeconfig'>): Promise<RepOptions['executor']> {
  const downloader = new Downloader({
    limiter: new Semaphore(DEFAULT_MAX_CONCURRENT_DOWNLOADS),
    logger: opts.log.child({ component: 'downloader' }),
  });
  const cache = new DownloadCache({
    dir: opts.cacheDir ?? join(opts.stateDir, 'cache'),
    maxBytes: opts.maxCacheBytes,
    downloader,
    metrics: cacheMetrics,
    logger: opts.log.child({ component: 'download-cache' }),
  });
  await cache.open();
  let identity: InstanceIdentity | undefined;
  if (opts.instanceIdentityCaCert || opts.instanceIdentityCaKey) {
    if (!opts.instanceIdentityCaCert || !opts.instanceIdentityCaKey) {
      throw new Error('--instance-identity-ca-cert and --instance-identity-ca-key go together: give both or neither');
    }
    const ca = {
      certPem: await readFile(opts.instanceIdentityCaCert, 'utf8'),
      keyPem: await readFile(opts.instanceIdentityCaKey, 'utf8'),
    };
    identity = new InstanceIdentity({
      ca,
      dir: join(opts.stateDir, 'credentials'),
      validityMs: opts.instanceIdentityValidityMs,
      metrics: identityMetrics,
      logger: opts.log.child({ component: 'instance-identity' }),
    });
  }
  let proxy: SocatProxyRunner | undefined;
  if (opts.containerProxy) {
    if (!identity)
      throw new Error('--container-proxy needs the instance identity CA (--instance-identity-ca-cert/-key)');
    if (opts.containerProxyTrustedCa) await readFile(opts.containerProxyTrustedCa, 'utf8'); // fail now if unreadable
    proxy = new SocatProxyRunner({
      stateDir: join(opts.stateDir, 'container-proxy'),
      requireClientCerts: opts.containerProxyRequireClientCerts,
      trustedCaFile: opts.containerProxyTrustedCa,
      logger: opts.log.child({ component: 'container-proxy' }),
    });
  } else if (opts.containerProxyRequireClientCerts || opts.containerProxyTrustedCa) {
    throw new Error('--container-proxy-require-client-certs and --container-proxy-trusted-ca need --container-proxy');
  }
  let volumes: VolumeManager | undefined;
  if ((opts.volumeDriverPaths ?? []).length > 0) {
    volumes = new VolumeManager({
      driverPaths: opts.volumeDriverPaths ?? [],
      logger: opts.log.child({ component: 'volman' }),
    });
    await volumes.discover();
    volumes.start(); // re-discovery every 30 s, as volman
  }
  return {
    stateDir: join(opts.stateDir, 'executor'),
    cache,
    downloader,
    identity,
    proxy,
    trustedCertsDir: opts.trustedCertsDir,
    externalIp: opts.externalIp || process.env.HOST_IP || '127.0.0.1',
    // Never named in a reason a tenant reads.
    hostPaths: [opts.stateDir, opts.cacheDir ?? join(opts.stateDir, 'cache'), tmpdir()],
    defaultLimits: {
      memoryMb: opts.defaultContainerMemoryMb,
      diskMb: opts.defaultContainerDiskMb,
      pids: opts.defaultContainerMaxPids,
    },
    volumes,
  };
}

/**
 * The volume drivers the cell advertises: those discovered at start plus --volume-drivers. A --volume-drivers entry
 * without a driver (yet) is advertised with a warning, not refused: a driver started after the agent is found by
 * re-discovery, and until then its mounts fail with "failed to mount volume".
 */
export function advertisedVolumeDrivers(
  flag: string[] | undefined,
  volumes: VolumeManager | undefined,
  log: Pick<Logger, 'warn'>,
): string[] {
  const found = volumes?.drivers() ?? [];
  const missing = (flag ?? []).filter((d) => !found.includes(d));
  if (missing.length > 0) {
    log.warn(
      { missing, found, volumeDriverPaths: volumes ? 'set' : 'not set' },
      'advertising volume drivers not found in --volume-driver-paths: their mounts fail until a driver answers',
    );
  }
  return [...new Set([...found, ...(flag ?? [])])].sort();
}

/** Where the agent gets image credentials: the controller's endpoint, or (no URL: development) the Secret itself. */
export async function imageCredentialsSource(
  kc: KubeConfig,
  opts: Pick<CellAgentOptions, 'imageCredentialsUrl' | 'imageCredentialsCa' | 'imageCredentialsTokenFile' | 'log'>,
): Promise<ImageCredentialsSource> {
  if (!opts.imageCredentialsUrl) {
    if (opts.imageCredentialsCa || opts.imageCredentialsTokenFile) {
      throw new Error('--image-credentials-ca and --image-credentials-token-file need --image-credentials-url');
    }
    opts.log.info('no --image-credentials-url: image credentials Secrets are read with this kubeconfig (development)');
    return secretSource(kc);
  }
  const caFile = opts.imageCredentialsCa;
  if (caFile) await readFile(caFile, 'utf8'); // unreadable: fail now, not at the first pull
  return endpointSource({
    url: opts.imageCredentialsUrl,
    // Read for every request, as the token: a rotated CA or token needs no restart.
    ...(caFile ? { ca: () => readFile(caFile, 'utf8') } : {}),
    token: tokenFrom(opts.imageCredentialsTokenFile, kc),
  });
}

export async function startCellAgent(kc: KubeConfig, opts: Omit<CellAgentOptions, 'kubeconfig'>): Promise<Rep> {
  const rep = await createCellAgent(kc, opts);
  await rep.start();
  return rep;
}

/** The cell agent of these options, not started yet (runCellAgent names its ops server before it registers). */
async function createCellAgent(kc: KubeConfig, opts: Omit<CellAgentOptions, 'kubeconfig'>): Promise<Rep> {
  const stacks = parseStacks(opts.stacks); // stack → rootfs; the rep advertises the stack names
  const imageCredentials = await imageCredentialsSource(kc, opts); // a bad flag fails before any work
  const executor = await executorOptions(opts);
  const rep = new Rep({
    executor,
    imageCredentials,
    kc,
    cellId: opts.cellId,
    zone: opts.zone,
    capacity: { memoryMb: opts.memoryMb, diskMb: opts.diskMb, containers: opts.containers },
    stacks: Object.keys(stacks),
    backend: pickBackend(opts.backend, opts.stateDir, opts.log, { ...opts, stacks }),
    rootfsProviders: opts.backend === 'containerd' ? ['docker'] : [],
    placementTags: opts.placementTags,
    optionalPlacementTags: opts.optionalPlacementTags,
    volumeDrivers: advertisedVolumeDrivers(opts.volumeDrivers, executor?.volumes, opts.log),
    log: opts.log,
    systemNamespace: opts.systemNamespace,
    evacuationTimeoutMs: opts.evacuationTimeoutMs,
    pollingIntervalMs: opts.pollingIntervalMs,
    telemetry: {
      maxLogLinesPerSecond: opts.maxLogLinesPerSecond,
      containerMetricsIntervalMs: opts.containerMetricsIntervalMs,
      logAppLines: opts.logAppLines,
    },
  });
  return rep;
}

const MIB = 1024 * 1024;

/**
 * A capacity flag: a number of MB, or `auto` as Diego's memory_capacity_mb/disk_capacity_mb — the node's memory,
 * or the size of the filesystem that holds the state dir (containers' writable layers live there).
 */
export async function capacityMb(flag: '--memory-mb' | '--disk-mb', value: string, stateDir: string): Promise<number> {
  if (value !== 'auto') {
    const n = Number(value);
    if (!Number.isInteger(n) || n <= 0)
      throw new Error(`${flag} must be a whole number of MB or "auto" (got "${value}")`);
    return n;
  }
  if (flag === '--memory-mb') return Math.floor(totalmem() / MIB);
  let dir = stateDir;
  for (;;) {
    try {
      const fs = await statfs(dir);
      return Math.floor((fs.blocks * fs.bsize) / MIB);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(dir) === dir) throw err;
      dir = dirname(dir); // the state dir is created later: measure the filesystem it will be on
    }
  }
}

/** In a DaemonSet pod (NODE_NAME set), the zone is the node's topology.kubernetes.io/zone label. */
export async function nodeZone(kc: KubeConfig, nodeName: string | undefined): Promise<string | undefined> {
  if (!nodeName) return undefined;
  const node = await kc.makeApiClient(CoreV1Api).readNode({ name: nodeName });
  return node.metadata?.labels?.['topology.kubernetes.io/zone'];
}

export async function runCellAgent(opts: CellAgentOptions): Promise<number> {
  // A promise rejected with nobody listening is a bug, but it must not end an agent that supervises a cell's
  // containers (Node's default is to exit): it is logged loudly and counted, and the agent goes on.
  process.on('unhandledRejection', (err: unknown) => {
    unhandledRejections.inc();
    opts.log.error({ err }, 'unhandled promise rejection (a bug: please report it); the cell agent goes on');
  });
  const kc = loadKubeConfig(opts.kubeconfig);
  const [host, port] = parseAddress(opts.opsAddress ?? DEFAULT_OPS_ADDRESS); // a typo fails before any work
  const zone = opts.zone || (await nodeZone(kc, process.env.NODE_NAME)) || '';
  const rep = await createCellAgent(kc, { ...opts, zone });
  // Off loopback, the log stream and the metrics need a Kubernetes token allowed to read them (ops-auth.ts).
  const security = await opsSecurity(kc, host, opts.opsAuth ?? 'auto', {
    certFile: opts.opsTlsCert,
    keyFile: opts.opsTlsKey,
  });
  const ops = await startOpsServer({
    host,
    port,
    logger: opts.log,
    ...security,
    routes: (app, auth) => {
      registerLogRoutes(app, rep.telemetry.hub, {}, auth);
      registerStateRoute(app, () => rep.cellState(), auth);
    },
  });
  // Named before the first registration: a restarted agent's Cell keeps its opsUrl and repAddress throughout.
  await rep.advertiseOps(advertisedOpsUrl(ops.url, host, opts.externalIp || process.env.HOST_IP));
  try {
    await rep.start();
  } catch (err) {
    await ops.close();
    throw err;
  }
  let routes: { stop(): Promise<void> } | undefined;
  try {
    routes = opts.routeEmitter ? await startLocalRouteEmitter(kc, opts, opts.routeEmitter) : undefined;
  } catch (err) {
    // NATS refused the emitter: the agent exits, and nothing it started may keep it (and its presence) alive.
    await rep.stop({ leaveContainers: true });
    await ops.close();
    throw err;
  }
  opts.log.info(
    {
      ops: ops.url,
      logs: `${ops.url}/v1/namespaces/<namespace>/logs/<logGuid>?follow=true`,
      authentication: security.auth ? 'kubernetes bearer tokens' : 'none (loopback)',
    },
    'cell agent started',
  );
  // Node drains evacuate (Diego's drain); SIGTERM evacuates or detaches (opts.onSigterm); SIGINT stops at once.
  const how = await serveUntilStopped(kc, rep, {
    log: opts.log,
    nodeName: process.env.NODE_NAME,
    onSigterm: opts.onSigterm,
  });
  await routes?.stop();
  await rep.stop({ leaveContainers: how === 'detach' });
  await ops.close();
  return 0;
}

/** The cell's own route emitter: its instances only, their DesiredLRPs read one by one (no cluster-wide watch). */
async function startLocalRouteEmitter(
  kc: KubeConfig,
  opts: CellAgentOptions,
  o: NonNullable<CellAgentOptions['routeEmitter']>,
): Promise<{ stop(): Promise<void> }> {
  const bus = await NatsBus.connect({ ...o, log: opts.log });
  const emitter = new RouteEmitter({
    kc,
    bus,
    log: opts.log,
    cellId: opts.cellId,
    events: new EventRecorder(kc, 'diego-route-emitter', opts.log),
    directInstanceRoutes: o.directInstanceRoutes,
    emitEndpointUpdatedAt: o.emitEndpointUpdatedAt,
  });
  await emitter.start();
  return {
    stop: async () => {
      await emitter.stop();
      await bus.close();
    },
  };
}

const unhandledRejections = new Counter({
  name: 'CellAgentUnhandledRejections',
  help: 'Promise rejections nobody handled in the cell agent (each is a bug; the agent logs it and goes on).',
  registers: [registry],
});

/** Diego's rep debug port; not 8080, which the controller's metrics take on the same host. */
export const DEFAULT_OPS_ADDRESS = '127.0.0.1:17008';

/** host:port (host empty: all interfaces; port 0: any free port). */
export function parseAddress(value: string): [string, number] {
  const { host, port } = address('--ops-address', value, '0.0.0.0:17008');
  return [host, port];
}

export const DEFAULT_CONTAINERD_ADDRESS = '/run/containerd/containerd.sock';
export const defaultCellId = (): string => process.env.NODE_NAME ?? hostname();
export const defaultStateDir = (): string => join(tmpdir(), 'diego-cell');

/** The flags of `diego-operator cell-agent`, as commander gives them (values as typed). */
interface CellAgentFlags {
  kubeconfig?: string;
  cellId?: string;
  zone: string;
  memoryMb: string;
  diskMb: string;
  containers: string;
  stacks: string;
  placementTags: string;
  optionalPlacementTags: string;
  volumeDrivers: string;
  volumeDriverPaths: string;
  backend: string;
  containerdAddress: string;
  insecureDockerRegistry: string[];
  stateDir?: string;
  systemNamespace: string;
  evacuationTimeout: string;
  onSigterm: string;
  routeEmitterNatsServers?: string;
  routeEmitterNatsUser?: string;
  routeEmitterNatsPasswordFile?: string;
  routeEmitterNatsTlsCa?: string;
  routeEmitterNatsTlsCert?: string;
  routeEmitterNatsTlsKey?: string;
  routeEmitterDirectInstanceRoutes?: boolean;
  routeEmitterEmitEndpointUpdatedAt?: boolean;
  opsAddress: string;
  maxLogLinesPerSecond: string;
  containerMetricsInterval: string;
  pollingInterval: string;
  logAppLines?: boolean;
  defaultContainerMemoryMb: string;
  defaultContainerDiskMb: string;
  defaultContainerMaxPids: string;
  opsAuth: string;
  opsTlsCert?: string;
  opsTlsKey?: string;
  cacheDir?: string;
  maxCacheSizeMb: string;
  instanceIdentityCaCert?: string;
  instanceIdentityCaKey?: string;
  instanceIdentityValidity: string;
  trustedCertsDir?: string;
  externalIp?: string;
  defaultEgress?: string;
  dnsServer: string[];
  containerProxy?: boolean;
  containerProxyRequireClientCerts?: boolean;
  containerProxyTrustedCa?: string;
  imageCredentialsUrl: string;
  imageCredentialsCa?: string;
  imageCredentialsTokenFile?: string;
}

export function cellAgentCommand(): Command {
  return roleCommand('cell-agent', "Diego's rep and executor for one cell: runs the work the auctioneer places on it.")
    .addOption(kubeconfigOption())
    .option('--cell-id <id>', "The Cell object's name (default: $NODE_NAME, else the host name).")
    .addOption(
      new Option(
        '--zone <zone>',
        "The cell's availability zone; empty: the node's topology.kubernetes.io/zone.",
      ).default(process.env.DIEGO_ZONE ?? '', '$DIEGO_ZONE'),
    )
    .addOption(
      valueOption('--memory-mb <mb|auto>', "Memory capacity offered to work; auto: the host's memory.", 'auto'),
    )
    .addOption(
      valueOption(
        '--disk-mb <mb|auto>',
        "Disk capacity offered to work; auto: the state directory's filesystem less the download cache's room.",
        'auto',
      ),
    )
    .addOption(valueOption('--containers <n>', 'Most containers at once.', '250'))
    .addOption(
      valueOption(
        '--stacks <list>',
        'Root filesystems offered, comma-separated: <stack>=<rootfs> or a preloaded stack name.',
        'busybox',
      ),
    )
    .addOption(
      valueOption('--placement-tags <list>', 'Placement tags work must ask for to run here, comma-separated.', ''),
    )
    .addOption(valueOption('--optional-placement-tags <list>', 'Placement tags work may ask for, comma-separated.', ''))
    .addOption(
      valueOption('--volume-drivers <list>', 'Volume drivers advertised besides those found, comma-separated.', ''),
    )
    .addOption(
      valueOption(
        '--volume-driver-paths <dirs>',
        "Directories of volume driver specs (<name>.json, .spec, .sock), ':'- or ','-separated (Diego's volman driver_paths).",
        '',
      ),
    )
    .addOption(
      valueOption(
        '--backend <kind>',
        'How containers run: runc, containerd (docker:// images), process, or auto (runc when root and installed, else process).',
        'auto',
      ),
    )
    .addOption(
      valueOption(
        '--containerd-address <socket>',
        "containerd's socket (the containerd backend).",
        DEFAULT_CONTAINERD_ADDRESS,
      ),
    )
    .addOption(
      repeatableOption(
        '--insecure-docker-registry <host:port>',
        "A registry pulled over plain HTTP besides loopback ones (Diego's insecure_docker_registry_list).",
      ),
    )
    .option('--state-dir <dir>', `Where containers, logs and the download cache live (default: ${defaultStateDir()}).`)
    .addOption(valueOption('--system-namespace <ns>', "The operator's namespace.", 'diego-system'))
    .addOption(
      valueOption(
        '--evacuation-timeout <seconds>',
        "How long instances may take to move elsewhere when the cell drains (Diego's evacuation_timeout).",
        '600',
      ),
    )
    .addOption(
      valueOption(
        '--on-sigterm <evacuate|detach>',
        "SIGTERM evacuates the cell first (evacuate: Diego's rep), or exits leaving the containers running for the next agent to adopt (detach: a DaemonSet pod replaced). Cordoning the node evacuates either way.",
        'evacuate',
      ),
    )
    .option(
      '--route-emitter-nats-servers <urls>',
      "Register this cell's instances' routes over this NATS (Diego's local route emitter; else run the route-emitter role), e.g. nats://nats:4222.",
    )
    .option('--route-emitter-nats-user <user>', 'NATS user.')
    .option('--route-emitter-nats-password-file <file>', "File holding the NATS user's password.")
    .option('--route-emitter-nats-tls-ca <file>', "CA (PEM) of the NATS servers' certificates.")
    .option('--route-emitter-nats-tls-cert <file>', 'Client certificate (PEM) for NATS.')
    .option('--route-emitter-nats-tls-key <file>', 'Its private key (PEM).')
    .option('--route-emitter-direct-instance-routes', "Register the instances' own address and port (Diego's option).")
    .option('--route-emitter-emit-endpoint-updated-at', "Send each endpoint's update time (Diego's option).")
    .addOption(
      valueOption(
        '--ops-address <host:port>',
        '/metrics, /healthz and the log stream /v1/logs/<logGuid>.',
        DEFAULT_OPS_ADDRESS,
      ),
    )
    .addOption(
      valueOption(
        '--max-log-lines-per-second <n>',
        "Log lines each instance may write per second; 0: unlimited (Diego's default).",
        '0',
      ),
    )
    .addOption(valueOption('--container-metrics-interval <seconds>', 'How often container metrics are reported.', '15'))
    .addOption(
      valueOption(
        '--polling-interval <seconds>',
        "How often the rep bulk-syncs its containers with its work (Diego's polling_interval).",
        '30',
      ),
    )
    .option('--log-app-lines', "Also write every app log line to the agent's own log.")
    .addOption(
      valueOption(
        '--default-container-memory-mb <mb>',
        'Memory limit of containers whose work sets none; 0: none.',
        '0',
      ),
    )
    .addOption(
      valueOption('--default-container-disk-mb <mb>', 'Disk limit of containers whose work sets none; 0: none.', '0'),
    )
    .addOption(
      valueOption(
        '--default-container-max-pids <n>',
        'Process limit of containers whose work sets none; 0: none.',
        '0',
      ),
    )
    .addOption(
      valueOption(
        '--ops-auth <mode>',
        'Who may read the ops endpoints: kubernetes (a token, over TLS), none, or auto (kubernetes unless on loopback).',
        'auto',
      ),
    )
    .option(
      '--ops-tls-cert <file>',
      "The ops server's TLS certificate (PEM) when authenticated (default: self-signed).",
    )
    .option('--ops-tls-key <file>', 'Its private key (PEM).')
    .option('--cache-dir <dir>', 'The download cache (default: <state-dir>/cache).')
    .addOption(
      valueOption(
        '--max-cache-size-mb <mb>',
        "The download cache's size bound (Diego's max_cache_size_in_bytes).",
        '10000',
      ),
    )
    .option(
      '--instance-identity-ca-cert <file>',
      "CA (PEM) that signs instances' identity certificates; without it, none.",
    )
    .option('--instance-identity-ca-key <file>', 'Its private key (PEM).')
    .addOption(
      valueOption(
        '--instance-identity-validity <seconds>',
        "Lifetime of instance identity certificates (Diego's default: 24 h).",
        '86400',
      ),
    )
    .option('--trusted-certs-dir <dir>', 'CA certificates containers may ask for (trustedSystemCertificatesPath).')
    .option('--external-ip <ip>', 'The address instances advertise (default: $HOST_IP, else 127.0.0.1).')
    .option(
      '--default-egress <json>',
      'Egress rules every container gets, a JSON array in the CRDs\' egressRules form, e.g. \'[{"protocol":"all","destinations":["0.0.0.0-9.255.255.255"]}]\'.',
    )
    .addOption(repeatableOption('--dns-server <ip>', 'A resolver containers may always query on port 53.'))
    .option(
      '--container-proxy',
      "A TLS proxy beside each instance (Diego's enable_container_proxy; needs the identity CA).",
    )
    .option(
      '--container-proxy-require-client-certs',
      'The proxy verifies client certificates against --container-proxy-trusted-ca.',
    )
    .option('--container-proxy-trusted-ca <file>', "CAs (PEM) of the proxy's clients.")
    .addOption(
      valueOption(
        '--image-credentials-url <url>',
        "Ask the controller's image credentials endpoint (https://...) just before a docker:// pull; empty: the agent reads the Secret itself (local development with an admin kubeconfig only).",
        '',
      ),
    )
    .option('--image-credentials-ca <file>', "CA (PEM) of the endpoint's certificate (default: the system's).")
    .option(
      '--image-credentials-token-file <file>',
      "Token presented to it, re-read each time (default: the kubeconfig's token).",
    )
    .action(async (f: CellAgentFlags) => {
      process.exitCode = await runCellAgent(await cellAgentOptions(f));
    });
}

/** The flags' values checked and turned into the agent's options; errors name the flag. */
async function cellAgentOptions(f: CellAgentFlags): Promise<CellAgentOptions> {
  const maxCacheMb = nonNegative('--max-cache-size-mb', f.maxCacheSizeMb);
  const stateDir = f.stateDir ?? defaultStateDir();
  const backend = f.backend;
  if (backend !== 'auto' && backend !== 'runc' && backend !== 'containerd' && backend !== 'process') {
    throw new Error(`--backend must be auto, runc, containerd or process (got "${backend}")`);
  }
  const onSigterm = f.onSigterm;
  if (onSigterm !== 'evacuate' && onSigterm !== 'detach') {
    throw new Error(`--on-sigterm must be evacuate or detach (got "${onSigterm}")`);
  }
  return {
    log: createLogger(),
    kubeconfig: f.kubeconfig,
    cellId: f.cellId ?? defaultCellId(),
    zone: f.zone,
    memoryMb: await capacityMb('--memory-mb', f.memoryMb, stateDir),
    // Diego's auto disk capacity leaves the download cache's room out.
    diskMb:
      f.diskMb === 'auto'
        ? Math.max(1, (await capacityMb('--disk-mb', 'auto', stateDir)) - maxCacheMb)
        : await capacityMb('--disk-mb', f.diskMb, stateDir),
    containers: wholeNumber('--containers', f.containers, 1),
    stacks: list(f.stacks),
    placementTags: list(f.placementTags),
    optionalPlacementTags: list(f.optionalPlacementTags),
    volumeDrivers: list(f.volumeDrivers),
    // Diego's volman.driver_paths is ':'-separated (filepath.SplitList); commas work too.
    volumeDriverPaths: f.volumeDriverPaths.split(/[,:]/).filter(Boolean),
    backend,
    containerdAddress: f.containerdAddress,
    insecureDockerRegistries: f.insecureDockerRegistry,
    stateDir,
    systemNamespace: f.systemNamespace,
    evacuationTimeoutMs: evacuationTimeoutMs(f.evacuationTimeout),
    onSigterm,
    routeEmitter: f.routeEmitterNatsServers
      ? {
          servers: f.routeEmitterNatsServers,
          user: f.routeEmitterNatsUser,
          pass: await readSecretFile('--route-emitter-nats-password-file', f.routeEmitterNatsPasswordFile),
          tlsCaFile: f.routeEmitterNatsTlsCa,
          tlsCertFile: f.routeEmitterNatsTlsCert,
          tlsKeyFile: f.routeEmitterNatsTlsKey,
          directInstanceRoutes: f.routeEmitterDirectInstanceRoutes ?? false,
          emitEndpointUpdatedAt: f.routeEmitterEmitEndpointUpdatedAt ?? false,
        }
      : undefined,
    opsAddress: addressValue('--ops-address', f.opsAddress, '0.0.0.0:17008'),
    maxLogLinesPerSecond: wholeNumber('--max-log-lines-per-second', f.maxLogLinesPerSecond),
    containerMetricsIntervalMs: nonNegative('--container-metrics-interval', f.containerMetricsInterval) * 1000,
    pollingIntervalMs: nonNegative('--polling-interval', f.pollingInterval) * 1000 || 30_000,
    logAppLines: f.logAppLines ?? false,
    defaultContainerMemoryMb: wholeNumber('--default-container-memory-mb', f.defaultContainerMemoryMb),
    defaultContainerDiskMb: wholeNumber('--default-container-disk-mb', f.defaultContainerDiskMb),
    defaultContainerMaxPids: wholeNumber('--default-container-max-pids', f.defaultContainerMaxPids),
    opsAuth: authMode('--ops-auth', f.opsAuth),
    opsTlsCert: f.opsTlsCert,
    opsTlsKey: f.opsTlsKey,
    cacheDir: f.cacheDir,
    maxCacheBytes: maxCacheMb * 1_000_000,
    instanceIdentityCaCert: f.instanceIdentityCaCert,
    instanceIdentityCaKey: f.instanceIdentityCaKey,
    instanceIdentityValidityMs:
      nonNegative('--instance-identity-validity', f.instanceIdentityValidity) * 1000 || undefined,
    trustedCertsDir: f.trustedCertsDir,
    externalIp: f.externalIp,
    defaultEgress: defaultEgress(f.defaultEgress),
    dnsServers: f.dnsServer,
    containerProxy: f.containerProxy ?? false,
    containerProxyRequireClientCerts: f.containerProxyRequireClientCerts ?? false,
    containerProxyTrustedCa: f.containerProxyTrustedCa,
    imageCredentialsUrl: f.imageCredentialsUrl,
    imageCredentialsCa: f.imageCredentialsCa,
    imageCredentialsTokenFile: f.imageCredentialsTokenFile,
  };
}

/**
 * --default-egress: a JSON array of egress rules in the CRDs' form (protocol, destinations, ports, portRange,
 * icmpInfo, log), e.g. '[{"protocol":"all","destinations":["0.0.0.0-9.255.255.255"]}]'.
 */
function defaultEgress(value: string | undefined): unknown[] | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch (err) {
    throw new Error(`--default-egress must be a JSON array of egress rules: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (!Array.isArray(parsed)) throw new Error('--default-egress must be a JSON array of egress rules');
  return parsed as unknown[];
}

/** --evacuation-timeout in seconds (Diego: 600), as milliseconds. */
function evacuationTimeoutMs(value: string): number {
  const s = value.trim() === '' ? NaN : Number(value);
  if (!Number.isFinite(s) || s < 0)
    throw new Error(`--evacuation-timeout must be seconds ≥ 0, e.g. 600 (got "${value}")`);
  return s * 1000;
}
