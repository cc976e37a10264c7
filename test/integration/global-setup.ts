// Starts one real control plane (etcd + kube-apiserver + kube-controller-manager) for the integration
// project, installs the CRDs and the admission webhook, and hands the kubeconfig to the tests.
// Set DIEGO_TEST_KUBECONFIG to run the same suites against an existing cluster (e.g. kind) instead.
import type { TestProject } from 'vitest/node';
import { readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectOrStart, ensureBinaries, type ControlPlane } from '../../src/lib/controlplane/index.ts';
import { installCRDs, kubeConfigFromString } from '../../src/lib/kube.ts';
import { createLogger } from '../../src/lib/log.ts';
import { startLocalWebhook, type LocalWebhook } from '../../src/webhooks/local.ts';
import { killStrays, markRun, reportStrays } from '../support/strays.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    kubeconfig: string;
    kubeconfigPath: string;
    kubectl: string;
  }
}

let cp: ControlPlane | undefined;
let webhook: LocalWebhook | undefined;
let startedAt = Date.now();

export async function setup(project: TestProject): Promise<void> {
  startedAt = Date.now();
  markRun();
  const log = createLogger(process.env.LOG_LEVEL ?? 'warn');
  cp = await connectOrStart({ controllerManager: true, logger: log });
  const kc = kubeConfigFromString(cp.kubeconfig);
  await installCRDs(kc);
  // On an external cluster (kind) the apiserver must reach the webhook: DIEGO_TEST_WEBHOOK_HOST names an address
  // of this machine it can reach (hack/kind-e2e.sh uses the kind network's gateway).
  webhook = await startLocalWebhook(kc, log, process.env.DIEGO_TEST_WEBHOOK_HOST ?? '127.0.0.1');
  project.provide('kubeconfig', cp.kubeconfig);
  project.provide('kubeconfigPath', cp.kubeconfigPath);
  // The kubectl built with the control plane (same version); on an external cluster, the one on PATH.
  project.provide('kubectl', process.env.DIEGO_TEST_KUBECONFIG ? 'kubectl' : join(await ensureBinaries(), 'kubectl'));
}

export async function teardown(): Promise<void> {
  try {
    await webhook?.stop();
    await cp?.stop();
  } finally {
    reportStrays(killStrays());
  }
  await removeExecutorStateDirs();
}

/**
 * A Rep given no executor state directory keeps its results in $TMPDIR/diego-executor-<cell id> (a restarted agent of
 * the same cell finds them there): the ones this run's tests made go with it.
 */
async function removeExecutorStateDirs(): Promise<void> {
  const entries = await readdir(tmpdir()).catch(() => []);
  for (const name of entries.filter((n) => n.startsWith('diego-executor-'))) {
    const dir = join(tmpdir(), name);
    const info = await stat(dir).catch(() => undefined);
    if (info && info.birthtimeMs >= startedAt) await rm(dir, { recursive: true, force: true });
  }
}
