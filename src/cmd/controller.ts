// The `controller` role: the converger, auctioneer and task controller (under leader election), the
// admission webhook server, and /metrics, /healthz, /readyz.
import { setTimeout as sleep } from 'node:timers/promises';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { Logger } from 'pino';
import { registerCredentialsRoutes } from '../controllers/image-credentials-endpoint.ts';
import { Manager } from '../controllers/manager.ts';
import { loadKubeConfig } from '../lib/kube.ts';
import type { RateLimit } from '../lib/rate-limit.ts';
import { startOpsServer } from '../lib/metrics.ts';
import { kubernetesAuth, opsSecurity, type OpsAuthMode } from '../lib/ops-auth.ts';
import { startWebView } from '../controllers/web-view.ts';
import { buildWebhookServer, closeWebhookServer } from '../webhooks/server.ts';
import { createLogger } from '../lib/log.ts';
import {
  address,
  addressValue,
  authMode,
  bool,
  kubeconfigOption,
  nonNegative,
  optionalAddress,
  tcpPort,
  repeatableOption,
  roleCommand,
  valueOption,
  wholeNumber,
} from './flags.ts';
import { watchSignals } from './signals.ts';

export interface ControllerOptions {
  log: Logger;
  kubeconfig?: string;
  webhookPort: number;
  /** Directory with tls.crt and tls.key; empty to run without the webhook server. */
  webhookCertDir: string;
  metricsAddress: string;
  systemNamespace?: string;
  /** Who may scrape /metrics: `auto` (default) checks Kubernetes tokens unless the address is loopback. */
  metricsAuth?: OpsAuthMode | 'auto';
  metricsTlsCert?: string;
  metricsTlsKey?: string;
  /**
   * The cell agents' ServiceAccount user names (system:serviceaccount:<namespace>:<name>): with them, the webhook
   * server also serves the image credentials endpoint to those agents (credentials/server.ts).
   */
  imageCredentialsCellAgents?: string[];
  /** The audience the cell agents' tokens for that endpoint are issued for (empty: the API server's). */
  imageCredentialsAudience?: string;
  /** The controllers' client-side request limit (--kube-api-qps, --kube-api-burst; qps 0: none). */
  clientRateLimit?: RateLimit;
  /** Services and EndpointSlices for routed DesiredLRPs (--endpoint-slices). */
  endpointSlices?: boolean;
  /** host:port of the read-only live web view (--web-address); empty or absent: not served. */
  webAddress?: string;
  /**
   * Seconds the webhook server keeps answering after a shutdown signal (--shutdown-delay), leadership already given
   * up: the API server's admission calls still reach this pod until it leaves the webhook Service's endpoints.
   */
  shutdownDelaySeconds?: number;
  /** Who may read the web view (--web-auth): as metricsAuth. */
  webAuth?: OpsAuthMode | 'auto';
}

export async function runController(opts: ControllerOptions): Promise<number> {
  const kc = loadKubeConfig(opts.kubeconfig);
  let webhook: ReturnType<typeof buildWebhookServer> | undefined;
  if (opts.webhookCertDir) {
    const read = (name: string) =>
      readFile(join(opts.webhookCertDir, name), 'utf8').catch(() => {
        throw new Error(
          `cannot read ${join(opts.webhookCertDir, name)}: the webhook needs a serving certificate (tls.crt, tls.key); mount one there, pass --webhook-cert-dir, or --webhook-cert-dir= to run without it`,
        );
      });
    webhook = buildWebhookServer({
      tls: { cert: await read('tls.crt'), key: await read('tls.key') },
      logger: opts.log,
      kc,
    });
    // The image credentials endpoint on the same TLS server: the cell agents reach it through the webhook's Service.
    const cellAgents = opts.imageCredentialsCellAgents ?? [];
    if (cellAgents.length > 0) {
      const audiences = opts.imageCredentialsAudience ? [opts.imageCredentialsAudience] : undefined;
      registerCredentialsRoutes(webhook, {
        kc,
        auth: kubernetesAuth(kc, { audiences }),
        cellAgentUsers: cellAgents,
        logger: opts.log,
      });
    }
    await webhook.listen({ host: '0.0.0.0', port: opts.webhookPort });
  }
  const manager = new Manager({
    kc,
    log: opts.log,
    leaderElection: true,
    systemNamespace: opts.systemNamespace,
    clientRateLimit: opts.clientRateLimit,
    endpointSlices: opts.endpointSlices,
  });
  await manager.start();
  let ops: Awaited<ReturnType<typeof startOpsServer>>;
  let web: Awaited<ReturnType<typeof startWebView>> | undefined;
  const servers: { close(): Promise<unknown> }[] = [];
  try {
    const [host, port] = splitAddress(opts.metricsAddress);
    // Ready when leading: a standby replica should not receive traffic meant for the active one.
    // Off loopback, /metrics needs a Kubernetes token allowed to `get /metrics` (ops-auth.ts); probes stay open.
    const security = await opsSecurity(kc, host, opts.metricsAuth ?? 'auto', {
      certFile: opts.metricsTlsCert,
      keyFile: opts.metricsTlsKey,
    });
    ops = await startOpsServer({ host, port, ready: () => manager.isLeader, logger: opts.log, ...security });
    servers.push(ops);
    // The live web view (docs/web-view.md): opt-in, read-only, checked as /metrics is (a standby shows that it is one).
    if (opts.webAddress) {
      const [webHost, webPort] = splitAddress(opts.webAddress);
      const webSecurity = await opsSecurity(kc, webHost, opts.webAuth ?? 'auto', {
        certFile: opts.metricsTlsCert,
        keyFile: opts.metricsTlsKey,
      });
      web = await startWebView({ source: manager, host: webHost, port: webPort, logger: opts.log, ...webSecurity });
      servers.push(web);
      opts.log.info({ url: web.url, auth: webSecurity.auth ? 'kubernetes' : 'none' }, 'web view listening');
    }
  } catch (err) {
    // Leading may have begun: give the Lease up and stop what runs, so the process ends (a standby takes over now).
    await Promise.all(servers.map((server) => server.close()));
    await manager.stop();
    if (webhook) await closeWebhookServer(webhook);
    throw err;
  }
  opts.log.info(
    {
      metrics: ops.url,
      web: web?.url,
      webhookPort: webhook ? opts.webhookPort : undefined,
      imageCredentials: webhook && (opts.imageCredentialsCellAgents ?? []).length > 0 ? 'served' : 'not served',
    },
    'controller started',
  );
  const signals = watchSignals();
  const sig = await signals.nth(1);
  opts.log.info({ signal: sig }, 'shutting down');
  // A third signal (an impatient Ctrl-C) ends the process at once, wherever the shutdown is.
  void signals.nth(3).then(() => {
    opts.log.warn('third signal: exiting now');
    process.exit(1);
  });
  await web?.close();
  // Leadership goes first (the Lease is released, the standby takes over at once); admission reviews are still
  // answered for the delay while the API server and kube-proxy drop this pod from the webhook's endpoints.
  await manager.stop();
  const delay = webhook ? (opts.shutdownDelaySeconds ?? 0) : 0;
  if (delay > 0) {
    opts.log.info({ seconds: delay }, 'still answering admission reviews while this pod leaves the endpoints');
    // Until the delay is over or a second signal comes (also one that came while leadership was given up).
    // The timer does not hold the process: one the second signal cut short is simply left behind.
    await Promise.race([sleep(delay * 1000, undefined, { ref: false }), signals.nth(2)]);
  }
  // From here a further signal ends the process at once.
  signals.dispose();
  await Promise.all([webhook && closeWebhookServer(webhook), ops.close()]);
  return 0;
}

/** host:port → [host, port]: an empty host is 0.0.0.0, an IPv6 host loses its brackets (flags.ts address()). */
export function splitAddress(value: string, flag = 'the address'): [string, number] {
  const { host, port } = address(flag, value, '127.0.0.1:8080');
  return [host, port];
}

/** The flags of `diego-operator controller`, as commander gives them (values as typed). */
interface ControllerFlags {
  kubeconfig?: string;
  webhookPort: string;
  webhookCertDir: string;
  metricsAddress: string;
  systemNamespace: string;
  metricsAuth: string;
  metricsTlsCert?: string;
  metricsTlsKey?: string;
  imageCredentialsCellAgent: string[];
  imageCredentialsAudience: string;
  kubeApiQps: string;
  kubeApiBurst: string;
  endpointSlices: string;
  webAddress: string;
  webAuth: string;
  shutdownDelay: string;
}

export function controllerCommand(): Command {
  return roleCommand(
    'controller',
    'The converger, auctioneer and task controller (leader-elected), the admission webhook server, and /metrics, /healthz, /readyz.',
  )
    .addOption(kubeconfigOption())
    .addOption(
      valueOption('--webhook-port <port>', "The webhook's TLS port (also the image credentials endpoint).", '9443'),
    )
    .addOption(
      valueOption(
        '--webhook-cert-dir <dir>',
        "Directory with the webhook's serving certificate (tls.crt, tls.key); --webhook-cert-dir= runs without the webhook server.",
        '/tmp/k8s-webhook-server/serving-certs',
      ),
    )
    .addOption(valueOption('--metrics-address <host:port>', 'Where /metrics, /healthz and /readyz listen.', ':8080'))
    .addOption(valueOption('--system-namespace <ns>', "The operator's namespace (Leases, Cells).", 'diego-system'))
    .addOption(
      valueOption(
        '--metrics-auth <mode>',
        'Who may scrape /metrics: kubernetes (a token allowed to get /metrics, over TLS), none, or auto (kubernetes unless on loopback).',
        'auto',
      ),
    )
    .option('--metrics-tls-cert <file>', "/metrics' TLS certificate (PEM) when authenticated (default: self-signed).")
    .option('--metrics-tls-key <file>', 'Its private key (PEM).')
    .addOption(
      repeatableOption(
        '--image-credentials-cell-agent <user>',
        "Serve image credentials (a docker:// DesiredLRP's or Task's spec.imageCredentialsSecret) on the webhook's TLS server to this ServiceAccount (system:serviceaccount:<ns>:<name>), only for work placed on the node its bound token names.",
      ),
    )
    .addOption(
      valueOption(
        '--image-credentials-audience <aud>',
        "Accept only tokens issued for this audience (empty: the API server's).",
        '',
      ),
    )
    .addOption(
      valueOption(
        '--kube-api-qps <n>',
        "The controllers' client-side request rate to the API server; 0: unlimited.",
        '1000',
      ),
    )
    .addOption(valueOption('--kube-api-burst <n>', 'Requests allowed above --kube-api-qps in a burst.', '2000'))
    .addOption(
      valueOption(
        '--endpoint-slices <true|false>',
        'A headless Service and EndpointSlices for each DesiredLRP with routes (or the annotation diego.dev/endpoints: "true").',
        'true',
      ),
    )
    .addOption(
      valueOption('--web-address <host:port>', 'Serve a read-only live web view of the cluster here; empty: off.', ''),
    )
    .addOption(valueOption('--web-auth <mode>', 'Who may read the web view: as --metrics-auth.', 'auto'))
    .addOption(
      valueOption(
        '--shutdown-delay <seconds>',
        'After a shutdown signal, give up leadership at once but keep answering admission reviews this long (while the pod leaves the webhook Service); a second signal ends it.',
        '0',
      ),
    )
    .action(async (f: ControllerFlags) => {
      process.exitCode = await runController({
        log: createLogger(),
        kubeconfig: f.kubeconfig,
        webhookPort: tcpPort('--webhook-port', f.webhookPort),
        webhookCertDir: f.webhookCertDir,
        metricsAddress: addressValue('--metrics-address', f.metricsAddress, ':8080'),
        systemNamespace: f.systemNamespace,
        metricsAuth: authMode('--metrics-auth', f.metricsAuth),
        metricsTlsCert: f.metricsTlsCert,
        metricsTlsKey: f.metricsTlsKey,
        imageCredentialsCellAgents: f.imageCredentialsCellAgent,
        imageCredentialsAudience: f.imageCredentialsAudience,
        clientRateLimit: {
          qps: nonNegative('--kube-api-qps', f.kubeApiQps),
          burst: wholeNumber('--kube-api-burst', f.kubeApiBurst),
        },
        endpointSlices: bool('--endpoint-slices', f.endpointSlices),
        webAddress: optionalAddress('--web-address', f.webAddress, '127.0.0.1:8081'),
        webAuth: authMode('--web-auth', f.webAuth),
        shutdownDelaySeconds: wholeNumber('--shutdown-delay', f.shutdownDelay, 0, 3600),
      });
    });
}
