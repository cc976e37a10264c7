// The ValidatingWebhookConfiguration that routes DesiredLRP and Task writes to our webhook.
//
// The webhook judges what users write (the whole action tree, Diego's limits), not the operator's own bookkeeping:
// with failurePolicy Fail, a webhook outage would otherwise stop the controller's placement and cancel patches and the
// cell agents' hand-backs, and with them all scheduling. Two matchConditions keep those out of its path:
// - `not-the-operator`: requests of the operator's own identities (the controller's and cell agents' ServiceAccounts
//   in a cluster) are not sent at all;
// - `changes-what-it-validates`: an update that leaves the spec as it was, apart from the placement (spec.cellId)
//   and the cancel request (spec.cancelled), needs no new verdict, whoever sends it (this also covers `make run` and
//   the tests, where every component acts as the cluster admin).
// Status writes never reach it (the rules name no status subresource).
import { GROUP, VERSION } from '../crds/kinds.ts';
import { VALIDATE_PATH } from './server.ts';

export const WEBHOOK_CONFIGURATION_NAME = 'diego-operator';

/**
 * The chart's default identities (release "diego-operator" in namespace "diego-system", as the README installs it):
 * the default of startLocalWebhook's exemptUsers, for an operator run locally against such a cluster.
 */
export const CHART_DEFAULT_OPERATOR_USERS = [
  'system:serviceaccount:diego-system:diego-operator-controller',
  'system:serviceaccount:diego-system:diego-operator-cell-agent',
];

/** Spec fields the operator writes and the webhook does not judge: the placement and the cancel request. */
export const UNVALIDATED_SPEC_FIELDS = ['cellId', 'cancelled'];

export interface MatchCondition {
  name: string;
  expression: string;
}

/** Calls the webhook unless the update changes nothing in the spec but the placement and the cancel request. */
export const SPEC_CHANGED_CONDITION: MatchCondition = {
  name: 'changes-what-it-validates',
  expression:
    `request.operation != 'UPDATE' || !has(object.spec) || !has(oldObject.spec) || ` +
    `object.spec.exists(k, !(k in ${celList(UNVALIDATED_SPEC_FIELDS)}) && ` +
    `(!(k in oldObject.spec) || object.spec[k] != oldObject.spec[k])) || ` +
    `oldObject.spec.exists(k, !(k in ${celList(UNVALIDATED_SPEC_FIELDS)}) && !(k in object.spec))`,
};

/** Calls the webhook unless the request comes from one of `users` (the operator's own identities). */
export function notTheOperator(users: string[]): MatchCondition {
  return { name: 'not-the-operator', expression: `!(request.userInfo.username in ${celList(users)})` };
}

/** A CEL list of string literals (user names and field names hold no quotes or backslashes). */
function celList(values: string[]): string {
  for (const v of values) {
    if (/['\\\n]/.test(v)) throw new Error(`cannot put ${JSON.stringify(v)} in a CEL string literal`);
  }
  return `[${values.map((v) => `'${v}'`).join(', ')}]`;
}

export type WebhookTarget =
  | { url: string } // local development and tests: the apiserver calls us on loopback
  | { service: { namespace: string; name: string; port: number } }; // in-cluster

export interface WebhookConfigurationOptions {
  /** User names whose writes are not sent to the webhook (the operator's own identities). */
  exemptUsers?: string[];
}

export function validatingWebhookConfiguration(
  target: WebhookTarget,
  caBundlePem: string,
  opts: WebhookConfigurationOptions = {},
) {
  const clientConfig =
    'url' in target
      ? { url: `${target.url}${VALIDATE_PATH}`, caBundle: Buffer.from(caBundlePem).toString('base64') }
      : { service: { ...target.service, path: VALIDATE_PATH }, caBundle: Buffer.from(caBundlePem).toString('base64') };
  const exempt = opts.exemptUsers ?? [];
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
        // Only users' writes: the operator's own (and spec-preserving updates) go on while the webhook is down.
        matchConditions: [...(exempt.length > 0 ? [notTheOperator(exempt)] : []), SPEC_CHANGED_CONDITION],
      },
    ],
  };
}
