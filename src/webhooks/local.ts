// Runs the admission webhook on loopback and registers it with the apiserver by URL: for `dev`, tests and
// any setup where the apiserver can reach this process directly (no Service, no cert-manager). As in the chart, it
// judges users' writes only (configuration.ts): the operator's own identities (`exemptUsers`) and updates that
// change nothing but the placement or the cancel request are not sent to it, so scheduling goes on while it is down.
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { createCA, issueCert } from '../lib/certs.ts';
import { apply } from '../lib/kube.ts';
import { GROUP, VERSION } from '../crds/kinds.ts';
import { CHART_DEFAULT_OPERATOR_USERS, validatingWebhookConfiguration } from './configuration.ts';
import { buildWebhookServer, closeWebhookServer } from './server.ts';

export interface LocalWebhook {
  url: string;
  stop(): Promise<void>;
}

export interface LocalWebhookOptions {
  /**
   * User names whose writes skip the webhook: the operator's own identities. Default: the chart's default
   * ServiceAccounts of the controller and the cell agents (CHART_DEFAULT_OPERATOR_USERS).
   */
  exemptUsers?: string[];
}

export async function startLocalWebhook(
  kc: KubeConfig,
  logger: Logger,
  host = '127.0.0.1',
  opts: LocalWebhookOptions = {},
): Promise<LocalWebhook> {
  const ca = await createCA({ commonName: 'diego-operator-webhook-ca' });
  const serving = await issueCert(ca, {
    commonName: 'diego-operator-webhook',
    ipAddresses: [host],
    dnsNames: ['localhost'],
    usage: 'server',
  });
  // Specs only: the cluster-wide checks (a process guid unique in the cluster, namespace caps) are the controller's
  // webhook's (cmd/controller.ts); the test suites here share one cluster and reuse process guids across namespaces.
  const app = buildWebhookServer({ tls: { cert: serving.certPem, key: serving.keyPem }, logger });
  await app.listen({ host, port: 0 });
  const { port } = app.server.address() as AddressInfo;
  const url = `https://${host}:${port}`;
  const exemptUsers = opts.exemptUsers ?? CHART_DEFAULT_OPERATOR_USERS;
  await apply(kc, validatingWebhookConfiguration({ url }, ca.certPem, { exemptUsers }) as never);
  await waitUntilEnforced(kc);
  logger.info({ url }, 'admission webhook registered');
  return { url, stop: () => closeWebhookServer(app, 1_000) };
}

/** The apiserver picks up webhook configurations through an informer: probe until ours rejects a bad object. */
async function waitUntilEnforced(kc: KubeConfig, timeoutMs = 30_000): Promise<void> {
  const api = kc.makeApiClient(CustomObjectsApi);
  const probe = {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'Task',
    metadata: { name: 'webhook-probe' },
    spec: {
      taskGuid: 'webhook-probe',
      domain: 'probe',
      rootFs: 'preloaded:probe',
      action: { serial: { actions: [{ try: { action: { bogus: {} } } }] } },
    },
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await api.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: 'default',
        plural: 'tasks',
        body: probe,
        dryRun: 'All',
      });
    } catch (err) {
      if (String((err as { body?: unknown }).body ?? err).includes('validate.diego.dev')) return;
    }
    if (Date.now() > deadline) throw new Error('the apiserver did not start calling the admission webhook within 30 s');
    await sleep(200);
  }
}
