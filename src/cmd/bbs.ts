// `diego-operator bbs`: Diego's BBS API for existing Diego clients (Cloud Controller, the Go client), served
// over mutual TLS like the real BBS, or over plain HTTP for local development only; plus BBS's separate
// plain-HTTP health listener.
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Command } from 'commander';
import type { Logger } from 'pino';
import { buildBbsApp } from '../bbs/app.ts';
import { startLocketServer, type RunningLocket } from '../bbs/locket.ts';
import { startHealthServer, type HealthServer } from '../bbs/health.ts';
import type { KubeConfig } from '@kubernetes/client-node';
import { GROUP, VERSION } from '../crds/kinds.ts';
import { loadKubeConfig, rawRequest } from '../lib/kube.ts';
import { CachedDiegoClient } from '../bbs/cached-client.ts';
import { type DiegoClient, isNotFound } from '../lib/resources.ts';
import { untilSignal } from './signals.ts';
import { type OpsServer, startOpsServer } from '../lib/metrics.ts';
import { type OpsAuthMode, opsSecurity } from '../lib/ops-auth.ts';
import { createLogger } from '../lib/log.ts';
import {
  address as hostPort,
  addressValue,
  authMode,
  kubeconfigOption,
  optionalAddress,
  roleCommand,
  valueOption,
  wholeNumber,
} from './flags.ts';

export interface BbsOptions {
  log: Logger;
  kubeconfig?: string;
  /** For tests: a client instead of one built from kubeconfig. */
  client?: DiegoClient;
  namespace: string;
  systemNamespace: string;
  listen: string;
  /** Plain-HTTP health listener (Diego's health_addr, default 127.0.0.1:8890); empty = none. */
  healthAddress?: string;
  insecureHttp: boolean;
  tlsCert?: string;
  tlsKey?: string;
  tlsClientCa?: string;
  maxBodyBytes?: number;
  /** host:port of Diego's Locket API (gRPC, the same TLS); empty or absent: not served. */
  locketListen?: string;
  /** host:port of /metrics, /healthz, /readyz (src/lib/metrics.ts); empty or absent: not served. */
  metricsAddress?: string;
  /** Who may scrape /metrics: as the controller's --metrics-auth. */
  metricsAuth?: OpsAuthMode | 'auto';
}

export interface RunningBbs {
  /** host:port of the API listener. */
  address: string;
  /** host:port of the Locket API, when served. */
  locketAddress?: string;
  /** URL of /metrics' server, when served. */
  metricsUrl?: string;
  health?: HealthServer;
  close(): Promise<void>;
}

export class BbsUsageError extends Error {}

export async function startBbs(opts: BbsOptions): Promise<RunningBbs> {
  const tls = opts.tlsCert && opts.tlsKey && opts.tlsClientCa;
  if (!tls && !opts.insecureHttp)
    throw new BbsUsageError('give --tls-cert, --tls-key and --tls-client-ca, or --insecure-http');
  if (!tls) {
    opts.log.warn(
      '!!! BBS is serving PLAIN HTTP without client authentication: anyone who can reach it can run code on your cells. Use only for local development. !!!',
    );
  }
  if (opts.maxBodyBytes !== undefined && !(Number.isInteger(opts.maxBodyBytes) && opts.maxBodyBytes > 0))
    throw new BbsUsageError(`--max-body-bytes must be a whole number of bytes > 0 (got ${opts.maxBodyBytes})`);
  const { host, port } = hostPort('--listen', opts.listen, '0.0.0.0:8889');
  let client = opts.client;
  let cached: CachedDiegoClient | undefined;
  if (!client) {
    const kc = loadKubeConfig(opts.kubeconfig);
    // Started before the operator (its CRDs) or before the system namespace exists: wait, saying so, not exit.
    await untilServed(kc, opts.systemNamespace, opts.log);
    // Reads from informer caches, consistent with this process's own writes (bbs/cached-client.ts).
    client = cached = new CachedDiegoClient(kc, { namespace: opts.namespace, log: opts.log });
    await cached.start();
  }
  let app: ReturnType<typeof buildBbsApp>;
  try {
    app = buildBbsApp({
      client,
      namespace: opts.namespace,
      systemNamespace: opts.systemNamespace,
      logger: opts.log,
      maxBodyBytes: opts.maxBodyBytes,
      https: tls
        ? {
            cert: readFileSync(opts.tlsCert!),
            key: readFileSync(opts.tlsKey!),
            ca: readFileSync(opts.tlsClientCa!),
          }
        : undefined,
    });
    await app.listen({ host, port });
  } catch (err) {
    // The read cache's watches would keep the process from ending after this error.
    await cached?.stop();
    throw err;
  }
  let health: HealthServer | undefined;
  let locket: RunningLocket | undefined;
  let ops: OpsServer | undefined;
  try {
    health = opts.healthAddress ? await startHealthServer(opts.healthAddress) : undefined;
    if (opts.metricsAddress) {
      const at = hostPort('--metrics-address', opts.metricsAddress, '0.0.0.0:8080');
      const security = await opsSecurity(client.kc, at.host, opts.metricsAuth ?? 'auto', {});
      ops = await startOpsServer({ host: at.host, port: at.port, logger: opts.log, ...security });
    }
    if (opts.locketListen) {
      const at = hostPort('--locket-listen', opts.locketListen, '0.0.0.0:8891');
      locket = await startLocketServer({
        kc: client.kc,
        client,
        namespace: opts.systemNamespace,
        host: at.host,
        port: at.port,
        log: opts.log,
        tls: tls
          ? { cert: readFileSync(opts.tlsCert!), key: readFileSync(opts.tlsKey!), ca: readFileSync(opts.tlsClientCa!) }
          : undefined,
      });
    }
  } catch (err) {
    await ops?.close();
    await health?.close();
    await app.close();
    await cached?.stop();
    throw err;
  }
  const address = `${host}:${(app.server.address() as AddressInfo).port}`;
  opts.log.info(
    { address, health: health?.address, locket: locket?.address, metrics: ops?.url, tls: !!tls },
    'BBS listening',
  );
  return {
    address,
    locketAddress: locket?.address,
    metricsUrl: ops?.url,
    health,
    close: async () => {
      await ops?.close();
      await locket?.close();
      await health?.close();
      await app.close();
      await cached?.stop();
    },
  };
}

/** Waits (retrying every 2 s, one log line per change) until the Diego CRDs are served and the namespace exists. */
export async function untilServed(kc: KubeConfig, namespace: string, log: Logger, retryMs = 2000): Promise<void> {
  let said = '';
  for (;;) {
    let what = '';
    try {
      await rawRequest(kc, { method: 'GET', path: `/apis/${GROUP}/${VERSION}` });
      await rawRequest(kc, { method: 'GET', path: `/api/v1/namespaces/${namespace}` }).catch(async (err: unknown) => {
        if (!isNotFound(err)) throw err;
        await rawRequest(kc, {
          method: 'POST',
          path: '/api/v1/namespaces',
          body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } },
        }).catch((e: unknown) => {
          what = `the system namespace ${namespace} (this identity may not create it)`;
          throw e;
        });
      });
      if (said) log.info('the cluster is ready');
      return;
    } catch (err) {
      what ||= isNotFound(err) ? 'the Diego CRDs (diego-operator install-crds, or the Helm chart)' : 'the API server';
      if (what !== said) log.warn({ err }, `waiting for ${what}`);
      said = what;
      await new Promise((r) => setTimeout(r, retryMs));
    }
  }
}

export async function runBbs(opts: BbsOptions): Promise<number> {
  let bbs: RunningBbs;
  try {
    bbs = await startBbs(opts);
  } catch (err) {
    if (!(err instanceof BbsUsageError) && !(err instanceof Error && /host:port/.test(err.message))) throw err;
    process.stderr.write(`diego-operator bbs: ${err.message}\n`);
    return 2;
  }
  const sig = await untilSignal();
  opts.log.info({ signal: sig }, 'shutting down');
  await bbs.close();
  return 0;
}

/** The flags of `diego-operator bbs`, as commander gives them (values as typed). */
interface BbsFlags {
  kubeconfig?: string;
  namespace: string;
  systemNamespace: string;
  listen: string;
  healthAddress: string;
  maxBodyBytes: string;
  insecureHttp?: boolean;
  tlsCert?: string;
  tlsKey?: string;
  tlsClientCa?: string;
  locketListen: string;
  metricsAddress: string;
  metricsAuth: string;
}

export function bbsCommand(): Command {
  return roleCommand('bbs', "Diego's BBS API (protobuf over HTTP, mutual TLS) on top of the CRDs, for BBS clients.")
    .addOption(kubeconfigOption())
    .addOption(valueOption('--namespace <ns>', 'Where DesiredLRPs and Tasks created through the API go.', 'default'))
    .addOption(valueOption('--system-namespace <ns>', "The operator's namespace (Cells).", 'diego-system'))
    .addOption(valueOption('--listen <host:port>', 'Where the API listens.', '127.0.0.1:8889'))
    .addOption(
      valueOption(
        '--health-address <host:port>',
        "The plain-HTTP health listener (Diego's health_addr); empty: none.",
        '127.0.0.1:8890',
      ),
    )
    .addOption(valueOption('--max-body-bytes <n>', 'Largest request body accepted.', String(10 * 1024 * 1024)))
    .addOption(
      valueOption(
        '--metrics-address <host:port>',
        'Serve /metrics (the BBS event streams, Locket: RequestsStarted, ActiveLocks, ...), /healthz and /readyz here; empty: off.',
        '',
      ),
    )
    .addOption(
      valueOption(
        '--metrics-auth <mode>',
        'Who may scrape /metrics: kubernetes (a token allowed to get /metrics, over TLS), none, or auto (kubernetes unless on loopback).',
        'auto',
      ),
    )
    .addOption(
      valueOption(
        '--locket-listen <host:port>',
        "Also serve Diego's Locket API (gRPC, the same TLS) here, e.g. :8891 as Diego's: locks and cell presences for cfdot; empty: off.",
        '',
      ),
    )
    .option('--insecure-http', 'Serve plain HTTP without client authentication: local development only.')
    .option('--tls-cert <file>', "The API's server certificate (PEM).")
    .option('--tls-key <file>', 'Its private key (PEM).')
    .option('--tls-client-ca <file>', "CA (PEM) that clients' certificates must chain to (mutual TLS).")
    .action(async (f: BbsFlags) => {
      process.exitCode = await runBbs({
        log: createLogger(),
        kubeconfig: f.kubeconfig,
        namespace: f.namespace,
        systemNamespace: f.systemNamespace,
        listen: addressValue('--listen', f.listen, '0.0.0.0:8889'),
        healthAddress: optionalAddress('--health-address', f.healthAddress, '0.0.0.0:8890'),
        maxBodyBytes: wholeNumber('--max-body-bytes', f.maxBodyBytes, 1),
        insecureHttp: f.insecureHttp ?? false,
        tlsCert: f.tlsCert,
        tlsKey: f.tlsKey,
        tlsClientCa: f.tlsClientCa,
        locketListen: optionalAddress('--locket-listen', f.locketListen, '0.0.0.0:8891'),
        metricsAddress: optionalAddress('--metrics-address', f.metricsAddress, '0.0.0.0:8080'),
        metricsAuth: authMode('--metrics-auth', f.metricsAuth),
      });
    });
}
