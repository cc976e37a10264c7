#!/usr/bin/env node
// diego-operator: one binary, several roles (see docs/architecture.md).
import { parseArgs } from 'node:util';
import { createLogger } from './lib/log.ts';

const USAGE = `Usage: diego-operator <command> [flags]

Commands:
  dev           Run everything locally: a control plane on 127.0.0.1, the CRDs, the operator, a sample app.
  controller    The converger, auctioneer and task controller, plus the admission webhook server.
  cell-agent    Diego's rep and executor for one cell.
  bbs           Diego's BBS API (protobuf over HTTP, mutual TLS) on top of the CRDs.
  install-crds  Install or update the Diego CRDs in the cluster of --kubeconfig.
  route-emitter Diego's route-emitter: registers the instances of DesiredLRPs with routes with gorouter over NATS
                (--nats-servers nats://host:4222; --nats-user, --nats-password-file, --nats-tls-ca/-cert/-key;
                --direct-instance-routes, --emit-endpoint-updated-at as Diego's options). One replica emits at a time.
  delete-workloads
                Delete every DesiredLRP, Task and ActualLRP and wait (--timeout seconds, default 300) until the
                cell agents destroyed their containers: what the chart runs before \`helm uninstall\` removes it.
  help          Show this text.

Common flags:
  --kubeconfig PATH   Cluster to use (default: $KUBECONFIG, ~/.kube/config, or in-cluster).

Cell-local route emitter (Diego's local mode; else run the route-emitter role):
  cell-agent  --route-emitter-nats-servers URL      Register this cell's instances' routes over this NATS (with
                                                    --route-emitter-nats-user/-password-file/-tls-ca/-tls-cert/-tls-key,
                                                    --route-emitter-direct-instance-routes, -emit-endpoint-updated-at).

Controller:
  controller  --endpoint-slices true|false   A headless Service and EndpointSlices for each DesiredLRP with routes (or
                                             the annotation diego.dev/endpoints: "true"); default true.

Cell agent stopping:
  cell-agent  --on-sigterm evacuate|detach   SIGTERM evacuates the cell first (evacuate: Diego's rep, default) or
                                             exits leaving the containers running for the next agent to adopt
                                             (detach: a DaemonSet pod replaced). Cordoning the node evacuates.

Image credentials (the registry credentials a docker:// DesiredLRP or Task names in spec.imageCredentialsSecret):
  controller  --image-credentials-cell-agent USER   Serve them on the webhook's TLS server to this ServiceAccount
                                                    (system:serviceaccount:<ns>:<name>; repeatable), only for work
                                                    placed on the node its bound token names.
              --image-credentials-audience AUD      Accept only tokens issued for this audience.
  cell-agent  --image-credentials-url URL           Ask that endpoint (https://...) just before a pull. Without it the
                                                    agent reads the Secret itself: only for local development with an
                                                    admin kubeconfig (make run, tests); the chart's agents cannot.
              --image-credentials-ca FILE           PEM CA of the endpoint's certificate (default: the system's).
              --image-credentials-token-file FILE   Token presented to it, re-read each time (default: the
                                                    kubeconfig's token).
`;

async function main(argv: string[]): Promise<number> {
  const [command = 'help', ...rest] = argv;
  const log = createLogger();
  switch (command) {
    case 'dev': {
      const { values } = parseArgs({
        args: rest,
        options: { 'no-sample': { type: 'boolean' } },
      });
      const { runDev } = await import('./cmd/dev.ts');
      return runDev({ log, sample: !values['no-sample'] });
    }
    case 'controller': {
      const { values } = parseArgs({
        args: rest,
        options: {
          kubeconfig: { type: 'string' },
          'webhook-port': { type: 'string', default: '9443' },
          'webhook-cert-dir': { type: 'string', default: '/tmp/k8s-webhook-server/serving-certs' },
          'metrics-address': { type: 'string', default: ':8080' },
          'system-namespace': { type: 'string', default: 'diego-system' },
          'metrics-auth': { type: 'string', default: 'auto' },
          'metrics-tls-cert': { type: 'string' },
          'metrics-tls-key': { type: 'string' },
          'image-credentials-cell-agent': { type: 'string', multiple: true, default: [] },
          'image-credentials-audience': { type: 'string', default: '' },
          'kube-api-qps': { type: 'string', default: '1000' },
          'kube-api-burst': { type: 'string', default: '2000' },
          'endpoint-slices': { type: 'string', default: 'true' },
        },
      });
      const { runController } = await import('./cmd/controller.ts');
      return runController({
        log,
        kubeconfig: values.kubeconfig,
        webhookPort: Number(values['webhook-port']),
        webhookCertDir: values['webhook-cert-dir'],
        metricsAddress: values['metrics-address'],
        systemNamespace: values['system-namespace'],
        metricsAuth: authMode('--metrics-auth', values['metrics-auth']),
        metricsTlsCert: values['metrics-tls-cert'],
        metricsTlsKey: values['metrics-tls-key'],
        // The image credentials endpoint (on the webhook's TLS server): the cell agents' ServiceAccount, e.g.
        // system:serviceaccount:diego-system:diego-operator-cell-agent; none: not served.
        imageCredentialsCellAgents: values['image-credentials-cell-agent'],
        imageCredentialsAudience: values['image-credentials-audience'],
        clientRateLimit: {
          qps: nonNegative('--kube-api-qps', values['kube-api-qps']),
          burst: nonNegative('--kube-api-burst', values['kube-api-burst']),
        },
        endpointSlices: bool('--endpoint-slices', values['endpoint-slices']),
      });
    }
    case 'install-crds': {
      const { values } = parseArgs({ args: rest, options: { kubeconfig: { type: 'string' } } });
      const { loadKubeConfig, installCRDs } = await import('./lib/kube.ts');
      await installCRDs(loadKubeConfig(values.kubeconfig));
      log.info('Diego CRDs installed and established');
      return 0;
    }
    case 'route-emitter': {
      const { values } = parseArgs({
        args: rest,
        options: {
          kubeconfig: { type: 'string' },
          'system-namespace': { type: 'string', default: 'diego-system' },
          namespace: { type: 'string' },
          'nats-servers': { type: 'string' },
          'nats-user': { type: 'string' },
          'nats-password-file': { type: 'string' },
          'nats-tls-ca': { type: 'string' },
          'nats-tls-cert': { type: 'string' },
          'nats-tls-key': { type: 'string' },
          'metrics-address': { type: 'string', default: ':8080' },
          'metrics-auth': { type: 'string', default: 'auto' },
          'direct-instance-routes': { type: 'boolean', default: false },
          'emit-endpoint-updated-at': { type: 'boolean', default: false },
        },
      });
      const servers = values['nats-servers'];
      if (!servers) throw new Error('--nats-servers is required, e.g. --nats-servers nats://nats.example:4222');
      const { runRouteEmitter } = await import('./cmd/route-emitter.ts');
      return runRouteEmitter({
        log,
        kubeconfig: values.kubeconfig,
        systemNamespace: values['system-namespace'],
        namespace: values.namespace,
        natsServers: servers,
        natsUser: values['nats-user'],
        natsPass: await readSecretFile('--nats-password-file', values['nats-password-file']),
        natsTlsCa: values['nats-tls-ca'],
        natsTlsCert: values['nats-tls-cert'],
        natsTlsKey: values['nats-tls-key'],
        metricsAddress: values['metrics-address'],
        metricsAuth: authMode('--metrics-auth', values['metrics-auth']),
        directInstanceRoutes: values['direct-instance-routes'],
        emitEndpointUpdatedAt: values['emit-endpoint-updated-at'],
      });
    }
    case 'delete-workloads': {
      const { values } = parseArgs({
        args: rest,
        options: { kubeconfig: { type: 'string' }, timeout: { type: 'string', default: '300' } },
      });
      const { runDeleteWorkloads } = await import('./cmd/delete-workloads.ts');
      return runDeleteWorkloads({
        log,
        kubeconfig: values.kubeconfig,
        timeoutMs: nonNegative('--timeout', values.timeout) * 1000,
      });
    }
    case 'bbs': {
      const { values } = parseArgs({
        args: rest,
        options: {
          kubeconfig: { type: 'string' },
          namespace: { type: 'string', default: 'default' },
          'system-namespace': { type: 'string', default: 'diego-system' },
          listen: { type: 'string', default: '127.0.0.1:8889' },
          'health-address': { type: 'string', default: '127.0.0.1:8890' },
          'max-body-bytes': { type: 'string', default: String(10 * 1024 * 1024) },
          'insecure-http': { type: 'boolean', default: false },
          'tls-cert': { type: 'string' },
          'tls-key': { type: 'string' },
          'tls-client-ca': { type: 'string' },
        },
      });
      const { runBbs } = await import('./cmd/bbs.ts');
      return runBbs({
        log,
        kubeconfig: values.kubeconfig,
        namespace: values.namespace,
        systemNamespace: values['system-namespace'],
        listen: values.listen,
        healthAddress: values['health-address'],
        maxBodyBytes: Number(values['max-body-bytes']),
        insecureHttp: values['insecure-http'],
        tlsCert: values['tls-cert'],
        tlsKey: values['tls-key'],
        tlsClientCa: values['tls-client-ca'],
      });
    }
    case 'cell-agent': {
      const { values } = parseArgs({
        args: rest,
        options: {
          kubeconfig: { type: 'string' },
          'cell-id': { type: 'string' },
          zone: { type: 'string', default: process.env.DIEGO_ZONE ?? '' },
          'memory-mb': { type: 'string', default: 'auto' },
          'disk-mb': { type: 'string', default: 'auto' },
          containers: { type: 'string', default: '250' },
          stacks: { type: 'string', default: 'busybox' },
          'placement-tags': { type: 'string', default: '' },
          'optional-placement-tags': { type: 'string', default: '' },
          'volume-drivers': { type: 'string', default: '' },
          'volume-driver-paths': { type: 'string', default: '' },
          backend: { type: 'string', default: 'auto' },
          'containerd-address': { type: 'string', default: '/run/containerd/containerd.sock' },
          'insecure-docker-registry': { type: 'string', multiple: true, default: [] },
          'state-dir': { type: 'string' },
          'system-namespace': { type: 'string', default: 'diego-system' },
          'evacuation-timeout': { type: 'string', default: '600' },
          'on-sigterm': { type: 'string', default: 'evacuate' },
          'route-emitter-nats-servers': { type: 'string' },
          'route-emitter-nats-user': { type: 'string' },
          'route-emitter-nats-password-file': { type: 'string' },
          'route-emitter-nats-tls-ca': { type: 'string' },
          'route-emitter-nats-tls-cert': { type: 'string' },
          'route-emitter-nats-tls-key': { type: 'string' },
          'route-emitter-direct-instance-routes': { type: 'boolean', default: false },
          'route-emitter-emit-endpoint-updated-at': { type: 'boolean', default: false },
          'ops-address': { type: 'string', default: '127.0.0.1:17008' },
          'max-log-lines-per-second': { type: 'string', default: '0' },
          'container-metrics-interval': { type: 'string', default: '15' },
          'polling-interval': { type: 'string', default: '30' },
          'log-app-lines': { type: 'boolean', default: false },
          'default-container-memory-mb': { type: 'string', default: '0' },
          'default-container-disk-mb': { type: 'string', default: '0' },
          'default-container-max-pids': { type: 'string', default: '0' },
          'ops-auth': { type: 'string', default: 'auto' },
          'ops-tls-cert': { type: 'string' },
          'ops-tls-key': { type: 'string' },
          'cache-dir': { type: 'string' },
          'max-cache-size-mb': { type: 'string', default: '10000' },
          'instance-identity-ca-cert': { type: 'string' },
          'instance-identity-ca-key': { type: 'string' },
          'instance-identity-validity': { type: 'string', default: '86400' },
          'trusted-certs-dir': { type: 'string' },
          'external-ip': { type: 'string' },
          'default-egress': { type: 'string' },
          'dns-server': { type: 'string', multiple: true, default: [] },
          'container-proxy': { type: 'boolean', default: false },
          'container-proxy-require-client-certs': { type: 'boolean', default: false },
          'container-proxy-trusted-ca': { type: 'string' },
          'image-credentials-url': { type: 'string', default: '' },
          'image-credentials-ca': { type: 'string' },
          'image-credentials-token-file': { type: 'string' },
        },
      });
      const { runCellAgent, defaultCellId, defaultStateDir, capacityMb } = await import('./cmd/cell-agent.ts');
      const maxCacheMb = nonNegative('--max-cache-size-mb', values['max-cache-size-mb']);
      const stateDir = values['state-dir'] ?? defaultStateDir();
      const list = (v: string) => v.split(',').filter(Boolean);
      const backend = values.backend;
      if (backend !== 'auto' && backend !== 'runc' && backend !== 'containerd' && backend !== 'process') {
        throw new Error(`--backend must be auto, runc, containerd or process (got "${backend}")`);
      }
      const onSigterm = values['on-sigterm'];
      if (onSigterm !== 'evacuate' && onSigterm !== 'detach') {
        throw new Error(`--on-sigterm must be evacuate or detach (got "${onSigterm}")`);
      }
      return runCellAgent({
        log,
        kubeconfig: values.kubeconfig,
        cellId: values['cell-id'] ?? defaultCellId(),
        zone: values.zone,
        memoryMb: await capacityMb('--memory-mb', values['memory-mb'], stateDir),
        // Diego's auto disk capacity leaves the download cache's room out.
        diskMb:
          values['disk-mb'] === 'auto'
            ? Math.max(1, (await capacityMb('--disk-mb', 'auto', stateDir)) - maxCacheMb)
            : await capacityMb('--disk-mb', values['disk-mb'], stateDir),
        containers: Number(values.containers),
        stacks: list(values.stacks),
        placementTags: list(values['placement-tags']),
        optionalPlacementTags: list(values['optional-placement-tags']),
        volumeDrivers: list(values['volume-drivers']),
        // Diego's volman.driver_paths is ':'-separated (filepath.SplitList); commas work too.
        volumeDriverPaths: values['volume-driver-paths'].split(/[,:]/).filter(Boolean),
        backend,
        containerdAddress: values['containerd-address'],
        insecureDockerRegistries: values['insecure-docker-registry'],
        stateDir,
        systemNamespace: values['system-namespace'],
        evacuationTimeoutMs: evacuationTimeoutMs(values['evacuation-timeout']),
        onSigterm,
        routeEmitter: values['route-emitter-nats-servers']
          ? {
              servers: values['route-emitter-nats-servers'],
              user: values['route-emitter-nats-user'],
              pass: await readSecretFile(
                '--route-emitter-nats-password-file',
                values['route-emitter-nats-password-file'],
              ),
              tlsCaFile: values['route-emitter-nats-tls-ca'],
              tlsCertFile: values['route-emitter-nats-tls-cert'],
              tlsKeyFile: values['route-emitter-nats-tls-key'],
              directInstanceRoutes: values['route-emitter-direct-instance-routes'],
              emitEndpointUpdatedAt: values['route-emitter-emit-endpoint-updated-at'],
            }
          : undefined,
        opsAddress: values['ops-address'],
        maxLogLinesPerSecond: nonNegative('--max-log-lines-per-second', values['max-log-lines-per-second']),
        containerMetricsIntervalMs:
          nonNegative('--container-metrics-interval', values['container-metrics-interval']) * 1000,
        pollingIntervalMs: nonNegative('--polling-interval', values['polling-interval']) * 1000 || 30_000,
        logAppLines: values['log-app-lines'],
        defaultContainerMemoryMb: nonNegative('--default-container-memory-mb', values['default-container-memory-mb']),
        defaultContainerDiskMb: nonNegative('--default-container-disk-mb', values['default-container-disk-mb']),
        defaultContainerMaxPids: nonNegative('--default-container-max-pids', values['default-container-max-pids']),
        opsAuth: authMode('--ops-auth', values['ops-auth']),
        opsTlsCert: values['ops-tls-cert'],
        opsTlsKey: values['ops-tls-key'],
        cacheDir: values['cache-dir'],
        maxCacheBytes: maxCacheMb * 1_000_000,
        instanceIdentityCaCert: values['instance-identity-ca-cert'],
        instanceIdentityCaKey: values['instance-identity-ca-key'],
        instanceIdentityValidityMs:
          nonNegative('--instance-identity-validity', values['instance-identity-validity']) * 1000 || undefined,
        trustedCertsDir: values['trusted-certs-dir'],
        externalIp: values['external-ip'],
        defaultEgress: defaultEgress(values['default-egress']),
        dnsServers: values['dns-server'],
        containerProxy: values['container-proxy'],
        containerProxyRequireClientCerts: values['container-proxy-require-client-certs'],
        containerProxyTrustedCa: values['container-proxy-trusted-ca'],
        imageCredentialsUrl: values['image-credentials-url'],
        imageCredentialsCa: values['image-credentials-ca'],
        imageCredentialsTokenFile: values['image-credentials-token-file'],
      });
    }
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return 0;
    default:
      process.stderr.write(`unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

/** kubernetes (TokenReview + SubjectAccessReview), none, or auto (kubernetes unless on loopback). */
function authMode(flag: string, value: string): 'kubernetes' | 'none' | 'auto' {
  if (value === 'kubernetes' || value === 'none' || value === 'auto') return value;
  throw new Error(`${flag} must be kubernetes, none or auto (got "${value}")`);
}

/** A flag's value as a number ≥ 0, or an error that names the flag. */
/** The trimmed contents of a secret file given by `flag`; undefined without one. */
async function readSecretFile(flag: string, path: string | undefined): Promise<string | undefined> {
  if (!path) return undefined;
  const { readFile } = await import('node:fs/promises');
  return (
    await readFile(path, 'utf8').catch(() => {
      throw new Error(`cannot read ${flag} ${path}: mount the file there or leave the flag out`);
    })
  ).trim();
}

function bool(flag: string, value: string): boolean {
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new Error(`${flag} must be true or false (got "${value}")`);
}

function nonNegative(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${flag} must be a number ≥ 0 (got "${value}")`);
  return n;
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
  const s = Number(value);
  if (!Number.isFinite(s) || s < 0)
    throw new Error(`--evacuation-timeout must be seconds ≥ 0, e.g. 600 (got "${value}")`);
  return s * 1000;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`diego-operator: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
