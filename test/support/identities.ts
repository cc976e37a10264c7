// Acting as someone else on the test cluster: by impersonation (a user, its groups and its extra attributes, as an
// authenticator would set them), or with a real ServiceAccount token from the TokenRequest API bound to a Pod placed on
// a node, which carries the node's name (authentication.kubernetes.io/node-name) as the kubelet's tokens do. The Pod is
// only an API object: no kubelet runs it.
import { KubeConfig } from '@kubernetes/client-node';
import type { RequestOptions } from 'node:https';
import { randomBytes } from 'node:crypto';
import { rawRequest } from '../../src/lib/kube.ts';

/** The extra attribute a bound ServiceAccount token carries for the node of its Pod. */
export const NODE_NAME_EXTRA = 'authentication.kubernetes.io/node-name';

export interface Identity {
  user: string;
  groups?: string[];
  /** Extra attributes (e.g. { [NODE_NAME_EXTRA]: ['node-a'] }). */
  extra?: Record<string, string[]>;
}

type RequestContextLike = { setHeaderParam(key: string, value: string): void };

/** A KubeConfig whose every request carries fixed headers (the impersonation headers). */
class HeaderKubeConfig extends KubeConfig {
  readonly #headers: Record<string, string[]>;

  constructor(base: KubeConfig, headers: Record<string, string[]>) {
    super();
    this.loadFromOptions({
      clusters: base.clusters,
      contexts: base.contexts,
      currentContext: base.currentContext,
      users: base.users,
    });
    this.#headers = headers;
  }

  override async applyToHTTPSOptions(opts: Parameters<KubeConfig['applyToHTTPSOptions']>[0]): Promise<void> {
    await super.applyToHTTPSOptions(opts);
    const o = opts as RequestOptions;
    o.headers = { ...o.headers, ...this.#headers };
  }

  override async applySecurityAuthentication(context: Parameters<KubeConfig['applySecurityAuthentication']>[0]) {
    await super.applySecurityAuthentication(context);
    for (const [key, values] of Object.entries(this.#headers)) {
      // The generated clients set one value per header: a repeated header cannot be sent through them.
      if (values.length !== 1) throw new Error(`header ${key} needs ${values.length} values: use rawRequest`);
      (context as RequestContextLike).setHeaderParam(key, values[0]!);
    }
  }
}

/** `kc` (an admin) acting as `who` through the Impersonate-* headers. */
export function impersonating(kc: KubeConfig, who: Identity): KubeConfig {
  const headers: Record<string, string[]> = { 'Impersonate-User': [who.user] };
  if (who.groups?.length) headers['Impersonate-Group'] = who.groups;
  for (const [key, values] of Object.entries(who.extra ?? {})) {
    // Extra keys are percent-encoded in the header name (the API server decodes them).
    headers[`Impersonate-Extra-${encodeURIComponent(key)}`] = values;
  }
  return new HeaderKubeConfig(kc, headers);
}

/** A kubeconfig for the test cluster that authenticates with a bearer token. */
export function tokenKubeConfig(kc: KubeConfig, token: string): KubeConfig {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  const as = new KubeConfig();
  as.loadFromOptions({
    clusters: [cluster],
    users: [{ name: 'token', token }],
    contexts: [{ name: 'token', cluster: cluster.name, user: 'token' }],
    currentContext: 'token',
  });
  return as;
}

export interface NodeBoundToken {
  token: string;
  /** A kubeconfig using the token. */
  kc: KubeConfig;
  /** The Pod the token is bound to (deleting it revokes the token). */
  pod: string;
  /** Deletes the Pod, which invalidates the token. */
  revoke(): Promise<void>;
}

/**
 * A ServiceAccount token as the kubelet of `nodeName` gets it for a Pod of `serviceAccount` running there: the
 * TokenRequest API bound to a Pod with spec.nodeName (created here as an API object). The API server puts the node's
 * name in the token, and authenticates it as the ServiceAccount with extra authentication.kubernetes.io/node-name.
 */
export async function nodeBoundToken(
  admin: KubeConfig,
  opts: {
    namespace: string;
    serviceAccount: string;
    nodeName: string;
    expirationSeconds?: number;
    /** Whom the token is for (default: the API server), as a projected token's audience. */
    audiences?: string[];
  },
): Promise<NodeBoundToken> {
  const { namespace, serviceAccount, nodeName } = opts;
  const pod = `${serviceAccount}-${randomBytes(3).toString('hex')}`.slice(0, 63);
  const podPath = `/api/v1/namespaces/${namespace}/pods`;
  await rawRequest(admin, {
    method: 'POST',
    path: podPath,
    body: {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: pod, labels: { 'diego.dev/test': 'node-bound-token' } },
      spec: {
        nodeName,
        serviceAccountName: serviceAccount,
        automountServiceAccountToken: false,
        containers: [{ name: 'agent', image: 'diego-operator:test' }],
      },
    },
  });
  const review = await rawRequest<{ status: { token: string } }>(admin, {
    method: 'POST',
    path: `/api/v1/namespaces/${namespace}/serviceaccounts/${serviceAccount}/token`,
    body: {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: {
        expirationSeconds: opts.expirationSeconds ?? 3600,
        ...(opts.audiences ? { audiences: opts.audiences } : {}),
        boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod },
      },
    },
  });
  const token = review.status.token;
  return {
    token,
    kc: tokenKubeConfig(admin, token),
    pod,
    revoke: async () => {
      await rawRequest(admin, { method: 'DELETE', path: `${podPath}/${pod}` }).catch(() => undefined);
    },
  };
}

/** Who the API server says a kubeconfig is (SelfSubjectReview): user name, groups and extra attributes. */
export async function whoAmI(kc: KubeConfig): Promise<Required<Identity>> {
  const review = await rawRequest<{
    status: { userInfo: { username: string; groups?: string[]; extra?: Record<string, string[]> } };
  }>(kc, {
    method: 'POST',
    path: '/apis/authentication.k8s.io/v1/selfsubjectreviews',
    body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
  });
  const u = review.status.userInfo;
  return { user: u.username, groups: u.groups ?? [], extra: u.extra ?? {} };
}
