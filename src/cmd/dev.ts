// The `dev` role (make run): a local control plane, the CRDs, the webhook, whatever of the operator exists,
// and a sample app, all on 127.0.0.1. Ctrl-C stops everything and leaves nothing behind.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { parseAllDocuments } from 'yaml';
import type { KubernetesObject } from '@kubernetes/client-node';
import { connectOrStart } from '../lib/controlplane/index.ts';
import { apply, installCRDs, kubeConfigFromString } from '../lib/kube.ts';
import { Manager } from '../controllers/manager.ts';
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
    const manager = new Manager({ kc, log });
    await manager.start();
    const ops = await startOpsServer({ port: 0, ready: () => manager.isLeader, logger: log });
    try {
      if (opts.sample) {
        for (const path of SAMPLES) {
          for (const obj of await readManifests(path)) {
            await apply(kc, { ...obj, metadata: { ...obj.metadata, namespace: obj.metadata?.namespace ?? 'default' } });
          }
        }
        log.info({ samples: SAMPLES }, 'sample app and task applied');
      }
      process.stdout.write(`
diego-operator is running locally.

  export KUBECONFIG=${cp.kubeconfigPath}
  kubectl get diego                      # DesiredLRPs, ActualLRPs, Tasks and Cells
  kubectl explain desiredlrp.spec        # the API, field by field
  kubectl scale desiredlrp/web --replicas=5
  curl ${ops.url}/metrics            # LRPsDesired, LRPsRunning, AuctioneerLRPAuctionsStarted, ...

Running: the converger, auctioneer and task controller. Not yet: a cell-agent (issue #4), so instances
wait UNCLAIMED with placementError "unable to communicate to compatible cells"; the BBS facade (#5).
Press Ctrl-C to stop; the control plane and its files are removed.
`);
      await untilSignal();
      log.info('stopping');
    } finally {
      await manager.stop();
      await ops.close();
      await webhook.stop();
    }
  } finally {
    await cp.stop();
  }
  return 0;
}
