// The `dev` role (make run): a local control plane, the CRDs, the webhook, whatever of the operator exists,
// and a sample app, all on 127.0.0.1. Ctrl-C stops everything and leaves nothing behind.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { parseAllDocuments } from 'yaml';
import type { KubernetesObject } from '@kubernetes/client-node';
import { connectOrStart } from '../lib/controlplane/index.ts';
import { apply, installCRDs, kubeConfigFromString } from '../lib/kube.ts';
import { tmpdir } from 'node:os';
import { Manager } from '../controllers/manager.ts';
import { DiegoClient } from '../lib/resources.ts';
import { startBbs } from './bbs.ts';
import { startCellAgent } from './cell-agent.ts';
import { registerLogRoutes } from '../cell-agent/logs/stream-server.ts';
import { startOpsServer } from '../lib/metrics.ts';
import { startLocalWebhook } from '../webhooks/local.ts';
import { untilSignal } from './signals.ts';

const REPO = join(import.meta.dirname, '..', '..');
export const SAMPLES = ['config/samples/desiredlrp.yaml', 'config/samples/task.yaml'];

export async function readManifests(path: string): Promise<KubernetesObject[]> {
  const text = await readFile(join(REPO, path), 'utf8');
  return parseAllDocuments(text)
    .map((d) => d.toJS() as KubernetesObject | null)
    .filter((o): o is KubernetesObject => o !== null);
}

export async function runDev(opts: { log: Logger; sample: boolean }): Promise<number> {
  const { log } = opts;
  const cp = await connectOrStart({ controllerManager: true, logger: log });
  try {
    const kc = kubeConfigFromString(cp.kubeconfig);
    await installCRDs(kc);
    log.info('CRDs installed');
    const webhook = await startLocalWebhook(kc, log);
    const cellDir = await mkdtemp(join(tmpdir(), 'diego-dev-cell-'));
    const manager = new Manager({ kc, log });
    await manager.start();
    const cell = await startCellAgent(kc, {
      log,
      cellId: 'dev-cell-0',
      zone: 'z1',
      memoryMb: 4096,
      diskMb: 16384,
      containers: 50,
      stacks: ['busybox'],
      backend: 'auto',
      stateDir: cellDir,
    });
    // Diego's BBS API for Cloud Controller and other BBS clients, on loopback and in plain HTTP (it says so loudly):
    // `diego-operator bbs --tls-cert ... --tls-key ... --tls-client-ca ...` serves it with mutual TLS.
    const bbs = await startBbs({
      log,
      client: new DiegoClient(kc),
      namespace: 'default',
      systemNamespace: 'diego-system',
      listen: '127.0.0.1:0',
      healthAddress: '',
      insecureHttp: true,
    });
    const ops = await startOpsServer({
      port: 0,
      ready: () => manager.isLeader,
      logger: log,
      routes: (app) => registerLogRoutes(app, cell.telemetry.hub),
    });
    try {
      if (opts.sample) {
        for (const path of SAMPLES) {
          for (const obj of await readManifests(path)) {
            await apply(kc, { ...obj, metadata: { ...obj.metadata, namespace: obj.metadata?.namespace ?? 'default' } });
          }
        }
        log.info({ samples: SAMPLES }, 'sample app and task applied');
      }
      const urls = opts.sample ? await sampleUrls(kc) : [];
      process.stdout.write(`
diego-operator is running locally.

  export KUBECONFIG=${cp.kubeconfigPath}
  kubectl get diego                      # DesiredLRPs, ActualLRPs, Tasks and Cells
  kubectl explain desiredlrp.spec        # the API, field by field
  kubectl scale desiredlrp/web --replicas=5
  curl ${ops.url}/metrics            # LRPsDesired, LRPsRunning, AuctioneerLRPAuctionsStarted, ...
  curl -N '${ops.url}/v1/logs/web?follow=true&recent=true'   # the sample app's log lines, live
${urls.map((u) => `  curl ${u}   # the sample app "web"`).join('\n')}
  curl -sX POST http://${bbs.address}/v1/ping | od -c   # Diego's BBS API (protobuf): BBS clients connect here

Running: the converger, auctioneer and task controller; one cell (dev-cell-0) that runs work in runc containers
(plain processes when not root), with its /metrics and log stream; the BBS API over plain HTTP on loopback.
Press Ctrl-C to stop; the control plane and its files are removed.
`);
      await untilSignal();
      log.info('stopping');
    } finally {
      await cell.stop();
      await rm(cellDir, { recursive: true, force: true });
      await manager.stop();
      await bbs.close();
      await ops.close();
      await webhook.stop();
    }
  } finally {
    await cp.stop();
  }
  return 0;
}

/** Waits (up to a minute) for the sample app's instances to run, and returns their URLs on this host. */
async function sampleUrls(kc: ReturnType<typeof kubeConfigFromString>): Promise<string[]> {
  const client = new DiegoClient(kc);
  for (let i = 0; i < 120; i++) {
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
