// The ValidatingWebhookConfiguration that routes DesiredLRP and Task writes to our webhook.
import { GROUP, VERSION } from '../crds/kinds.ts';
import { VALIDATE_PATH } from './server.ts';

export const WEBHOOK_CONFIGURATION_NAME = 'diego-operator';

export type WebhookTarget =
  | { url: string } // local development and tests: the apiserver calls us on loopback
  | { service: { namespace: string; name: string; port: number } }; // in-cluster

export function validatingWebhookConfiguration(target: WebhookTarget, caBundlePem: string) {
  const clientConfig =
    'url' in target
      ? { url: `${target.url}${VALIDATE_PATH}`, caBundle: Buffer.from(caBundlePem).toString('base64') }
      : { service: { ...target.service, path: VALIDATE_PATH }, caBundle: Buffer.from(caBundlePem).toString('base64') };
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata: { name: WEBHOOK_CONFIGURATION_NAME, labels: { 'app.kubernetes.io/part-of': 'diego-operator' } },
    webhooks: [
      {
        name: 'validate.diego.dev',
        admissionReviewVersions: ['v1'],
        sideEffects: 'None',
        // Invalid action trees must never be stored: refuse writes when the webhook cannot be reached.
        failurePolicy: 'Fail',
        timeoutSeconds: 10,
        clientConfig,
        rules: [
          {
            apiGroups: [GROUP],
            apiVersions: [VERSION],
            operations: ['CREATE', 'UPDATE'],
            resources: ['desiredlrps', 'tasks'],
            scope: 'Namespaced',
          },
        ],
      },
    ],
  };
}
