// The `dev` role (make run): a local control plane, the CRDs, the webhook, whatever of the operator exists,
// and a sample app, all on 127.0.0.1. Ctrl-C, SIGTERM, SIGHUP or the parent's exit stops everything and leaves
// nothing behind.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { Logger } from 'pino';
import { parseAllDocuments } from 'yaml';
import type { KubernetesObject } from '@kubernetes/client-node';
import { connectOrStart, ensureBinaries } from '../lib/controlplane/index.ts';
import { apply, installCRDs, kubeConfigFromString } from '../lib/kube.ts';
import { tmpdir } from 'node:os';
import { Manager } from '../controllers/manager.ts';
import { DiegoClient } from '../lib/resources.ts';
import { startBbs } from './bbs.ts';
import { startCellAgent } from './cell-agent.ts';
import { registerLogRoutes } from '../cell-agent/logs/stream-server.ts';
import { registerStateRoute } from '../cell-agent/rep-state.ts';
import { startOpsServer } from '../lib/metrics.ts';
import { startLocalWebhook } from '../webhooks/local.ts';
import { startWebView } from '../controllers/web-view.ts';
import { untilStopped } from './signals.ts';
import { createCA, issueCert, writeCertFiles } from '../lib/certs.ts';
import { createLogger } from '../lib/log.ts';
import { roleCommand } from './flags.ts';

const REPO = join(import.meta.dirname, '..', '..');
export const SAMPLES = ['config/samples/desiredlrp.yaml', 'config/samples/task.yaml'];

export async function readManifests(path: string): Promise<KubernetesObject[]> {
  const text = await readFile(join(REPO, path), 'utf8');
  return parseAllDocuments(text)
    .map((d) => d.toJS() as KubernetesObject | null)
    .filter((o): o is KubernetesObject => o !== null);
}

export function devCommand(): Command {
  return roleCommand(
    'dev',
    'Run everything locally (make run): a control plane on 127.0.0.1, the CRDs, the operator, one cell, the BBS API and a sample app. Ctrl-C stops it all.',
  )
    .option('--no-sample', 'Do not apply the sample app and task.')
    .action(async (f: { sample: boolean }) => {
      process.exitCode = await runDev({ log: createLogger(), sample: f.sample });
    });
}

/** One line on stderr per start-up step, so a wait says what it waits for. */
const step = (what: string) => process.stderr.write(`[dev] ${what}…\n`);

export async function runDev(opts: { log: Logger; sample: boolean }): Promise<number> {
  const { log } = opts;
  // From here on a signal (or the parent's exit) is a request to stop: start-up finishes its current step, then
  // everything started is stopped in order.
  let stopRequested: string | undefined;
  const building = new AbortController(); // a stop during the (first, long) build ends the build
  const stopped = untilStopped().then((why) => {
    stopRequested = why;
    step(`stopping (${why})`);
    building.abort();
  });
  let binDir: string | undefined;
  if (!process.env.DIEGO_TEST_KUBECONFIG) {
    step(
      'looking for etcd, kube-apiserver, kube-controller-manager and kubectl (the first time they are built from Go modules: 5-40 min on 2 cores)',
    );
    try {
      binDir = await ensureBinaries({ signal: building.signal });
    } catch (err) {
      if (stopRequested) return 0;
      throw err;
    }
  }
  if (stopRequested) return 0;
  step('starting the control plane: etcd, kube-apiserver, kube-controller-manager');
  const cp = await connectOrStart({ controllerManager: true, logger: log, binDir });
  // Each part's stop, pushed as soon as it has started: whatever step fails (or a stop request), every part started
  // so far is stopped, in reverse order, the control plane last.
  const stops: { what: string; stop: () => Promise<unknown> }[] = [];
  const started = (what: string, stop: () => Promise<unknown>) => stops.push({ what, stop });
  started('the control plane', async () => {
    if (!cp.external) step('stopping the control plane');
    await cp.stop();
  });
  try {
    const kc = kubeConfigFromString(cp.kubeconfig);
    step('installing the CRDs');
    await installCRDs(kc);
    log.info('CRDs installed');
    step('starting the admission webhook, the controllers and cell dev-cell-0');
    const webhook = await startLocalWebhook(kc, log);
    started('the webhook', () => webhook.stop());
    const cellDir = await mkdtemp(join(tmpdir(), 'diego-dev-cell-'));
    started('the cell directory', () => rm(cellDir, { recursive: true, force: true }));
    const pki = await devPki(join(cellDir, 'pki'));
    const manager = new Manager({ kc, log, endpointSlices: true });
    await manager.start();
    started('the controllers', () => manager.stop());
    const cell = await startCellAgent(kc, {
      log,
      cellId: 'dev-cell-0',
      zone: 'z1',
      memoryMb: 4096,
      diskMb: 16384,
      containers: 50,
      // cflinuxfs4 is a Debian root filesystem, built (once per machine) when the first work asks for it.
      stacks: ['busybox', 'cflinuxfs4'],
      backend: 'auto',
      stateDir: cellDir,
      instanceIdentityCaCert: pki.ca.certPath,
      instanceIdentityCaKey: pki.ca.keyPath,
      trustedCertsDir: pki.trustedDir,
    });
    started('the cell', () => cell.stop());
    // Diego's BBS API for Cloud Controller and other BBS clients, on loopback: with mutual TLS as Diego serves it
    // (a client certificate from the local CA is printed below), and in plain HTTP (it says so loudly).
    step('starting the BBS API');
    const client = new DiegoClient(kc);
    const bbs = await startBbs({
      log,
      client,
      namespace: 'default',
      systemNamespace: 'diego-system',
      listen: '127.0.0.1:0',
      healthAddress: '',
      insecureHttp: true,
    });
    started('the BBS API', () => bbs.close());
    const bbsTls = await startBbs({
      log,
      client,
      namespace: 'default',
      systemNamespace: 'diego-system',
      listen: '127.0.0.1:0',
      healthAddress: '',
      insecureHttp: false,
      tlsCert: pki.bbsServer.certPath,
      tlsKey: pki.bbsServer.keyPath,
      tlsClientCa: pki.ca.certPath,
      locketListen: '127.0.0.1:0',
    });
    started('the BBS API (mutual TLS)', () => bbsTls.close());
    const ops = await startOpsServer({
      port: 0,
      ready: () => manager.isLeader,
      logger: log,
      routes: (app) => {
        registerLogRoutes(app, cell.telemetry.hub);
        registerStateRoute(app, () => cell.cellState());
      },
    });
    started('the ops server', () => ops.close());
    // The Cell names it: `kubectl diego logs` finds the log stream there, Diego's rep clients GET /state.
    await cell.advertiseOps(ops.url);
    // The controller's live web view (docs/web-view.md), on loopback: open to this machine only.
    const web = await startWebView({ source: manager, host: '127.0.0.1', port: 0, logger: log });
    started('the web view', () => web.close());
    if (opts.sample && !stopRequested) {
      step("applying the sample app and task, then waiting for the app's 3 instances to run (up to a minute)");
      for (const path of SAMPLES) {
        for (const obj of await readManifests(path)) {
          await apply(kc, { ...obj, metadata: { ...obj.metadata, namespace: obj.metadata?.namespace ?? 'default' } });
        }
      }
      log.info({ samples: SAMPLES }, 'sample app and task applied');
    }
    const urls = opts.sample ? await sampleUrls(kc, () => stopRequested !== undefined) : [];
    const kubectlDir = binDir && existsSync(join(binDir, 'kubectl')) ? binDir : undefined;
    if (!stopRequested)
      process.stdout.write(`
diego-operator is running locally.

  export KUBECONFIG=${cp.kubeconfigPath} PATH=${kubectlDir ? `${kubectlDir}:` : ''}${join(REPO, 'bin')}:$PATH   # kubectl${kubectlDir ? ` (in ${kubectlDir})` : ''} and kubectl-diego
  kubectl get diego                      # DesiredLRPs, ActualLRPs, Tasks and Cells
  kubectl explain desiredlrp.spec        # the API, field by field
  kubectl scale desiredlrp/web --replicas=5
  kubectl diego cell-states          # Diego's cfdot, as a kubectl plugin (docs/kubectl-diego.md)
  kubectl diego logs web -f          # the sample app's log lines, live, labelled like cf logs
  open ${web.url}              # the live web view: cells, instances, crashes, auction decisions
  curl ${ops.url}/metrics            # LRPsDesired, LRPsRunning, AuctioneerLRPAuctionsStarted, ...
${urls.map((u) => `  curl ${u}   # the sample app "web"`).join('\n')}
  curl -sX POST http://${bbs.address}/v1/ping | od -c   # Diego's BBS API (protobuf): BBS clients connect here
  curl -sX POST --cacert ${pki.ca.certPath} --cert ${pki.bbsClient.certPath} --key ${pki.bbsClient.keyPath} https://${bbsTls.address}/v1/ping | od -c   # the same with mutual TLS
  export BBS_URL=https://${bbsTls.address} LOCKET_API_LOCATION=${bbsTls.locketAddress} CA_CERT_FILE=${pki.ca.certPath} CLIENT_CERT_FILE=${pki.bbsClient.certPath} CLIENT_KEY_FILE=${pki.bbsClient.keyPath}   # for Diego's cfdot (cells, actual-lrps, locks, presences, ...)

Running: the converger, auctioneer and task controller; one cell (dev-cell-0) that runs work in runc containers
(plain processes when not root), with its /metrics and log stream; the BBS API on loopback, over mutual TLS (with
Diego's Locket API beside it) and over plain HTTP. Instance identity certificates are signed by the local CA in ${pki.dir}.
Press Ctrl-C to stop; the control plane and its files are removed.
`);
    await stopped;
    log.info({ reason: stopRequested }, 'stopping');
  } finally {
    if (stops.length > 1) step('stopping the cell, the controllers, the BBS API and the webhook');
    await stopAll(stops, log);
  }
  return 0;
}

/** Runs the stops in reverse order (the last started first); one that fails is logged and the others still run. */
async function stopAll(stops: { what: string; stop: () => Promise<unknown> }[], log: Logger): Promise<void> {
  for (let i = stops.length - 1; i >= 0; i--) {
    try {
      await stops[i]!.stop();
    } catch (err) {
      log.error({ err }, `stopping ${stops[i]!.what} failed`);
    }
  }
}

/** Waits (up to a minute) for the sample app's instances to run, and returns their URLs on this host. */
async function sampleUrls(kc: ReturnType<typeof kubeConfigFromString>, stopping: () => boolean): Promise<string[]> {
  const client = new DiegoClient(kc);
  for (let i = 0; i < 120 && !stopping(); i++) {
    const running = (await client.list('ActualLRP', { namespace: 'default' })).filter(
      (a) => a.spec.processGuid === 'web' && a.status?.state === 'RUNNING',
    );
    if (running.length >= 3) {
      return running.flatMap((a) => (a.status?.netInfo?.ports ?? []).map((p) => `http://127.0.0.1:${p.hostPort}/`));
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return [];
}

/**
 * A local CA for `make run`: it signs the cells' instance identity certificates and the BBS's server and client
 * certificates; its certificate is also the cell's trusted certificate (trustedSystemCertificatesPath).
 */
async function devPki(dir: string) {
  const ca = await createCA({ commonName: 'diego-operator dev CA' });
  const server = await issueCert(ca, {
    commonName: 'bbs.service.cf.internal',
    dnsNames: ['bbs.service.cf.internal', 'localhost'],
    ipAddresses: ['127.0.0.1'],
    usage: 'server',
  });
  const client = await issueCert(ca, { commonName: 'bbs-client', usage: 'client' });
  const trustedDir = join(dir, 'trusted-certs');
  await mkdir(trustedDir, { recursive: true });
  return {
    dir,
    ca: await writeCertFiles(dir, 'ca', ca),
    bbsServer: await writeCertFiles(dir, 'bbs-server', server),
    bbsClient: await writeCertFiles(dir, 'bbs-client', client),
    trustedDir,
    trusted: await writeCertFiles(trustedDir, 'ca', ca),
  };
}
