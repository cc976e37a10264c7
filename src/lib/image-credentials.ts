// Registry credentials of a DesiredLRP or Task as they are kept: a kubernetes.io/basic-auth Secret (keys username and
// password) in the work's namespace, named by spec.imageCredentialsSecret — never in the custom resources, which every
// cell agent can read (docs/security.md, "Node vs cluster"). Shared by the controller's endpoint that hands them to
// the cell a piece of work is placed on (controllers/image-credentials*.ts), the cell agent that asks for them
// (cell-agent/image-credentials.ts) and the BBS that keeps Diego's inline credentials in such a Secret.
import type { KubeConfig } from '@kubernetes/client-node';
import { rawRequest } from './kube.ts';

export const IMAGE_CREDENTIALS_SECRET_TYPE = 'kubernetes.io/basic-auth';

/** The extra attribute of a bound ServiceAccount token that names the node of its Pod (Kubernetes ≥ 1.30). */
export const NODE_NAME_EXTRA = 'authentication.kubernetes.io/node-name';

export interface ImageCredentials {
  username: string;
  password: string;
}

/** The kinds of work whose credentials a cell asks for: an instance (its DesiredLRP's) or a task. */
export const WORK_KINDS = ['actuallrps', 'tasks'] as const;
export type WorkKind = (typeof WORK_KINDS)[number];

/** The work whose credentials are asked for. */
export interface WorkRef {
  namespace: string;
  kind: WorkKind;
  name: string;
}

/** The endpoint's route (GET, `?secret=<the Secret the work names>`), as fastify writes it. */
export const CREDENTIALS_ROUTE = '/v1/namespaces/:namespace/:kind/:name/image-credentials';

/** The endpoint's path for one piece of work. */
export function credentialsPath(work: WorkRef, secret: string): string {
  const e = encodeURIComponent;
  return `/v1/namespaces/${e(work.namespace)}/${work.kind}/${e(work.name)}/image-credentials?secret=${e(secret)}`;
}

/** The fields of a core v1 Secret we read and write (data is base64, as the API serves it). */
export interface SecretLike {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    ownerReferences?: OwnerReference[];
  };
  type?: string;
  data?: Record<string, string>;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export const secretPath = (namespace: string, name?: string): string =>
  `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets${name ? `/${encodeURIComponent(name)}` : ''}`;

/**
 * The credentials a Secret holds, or why it cannot give them: only a basic-auth Secret with both keys does (work
 * naming any other Secret of its namespace must not send it to the registry of its choice).
 */
export function credentialsOf(
  secret: SecretLike,
): { ok: true; credentials: ImageCredentials } | { ok: false; reason: string } {
  const where = `Secret ${secret.metadata?.name ?? '?'} in namespace ${secret.metadata?.namespace ?? '?'}`;
  if (secret.type !== IMAGE_CREDENTIALS_SECRET_TYPE) {
    return {
      ok: false,
      reason: `${where} is of type ${secret.type ?? 'Opaque'}; image credentials must be a ${IMAGE_CREDENTIALS_SECRET_TYPE} Secret (keys username, password)`,
    };
  }
  const decode = (key: string) => Buffer.from(secret.data?.[key] ?? '', 'base64').toString('utf8');
  const username = decode('username');
  const password = decode('password');
  if (!username || !password) {
    return { ok: false, reason: `${where} needs both keys username and password (non-empty)` };
  }
  return { ok: true, credentials: { username, password } };
}

/** A basic-auth Secret holding `credentials`. */
export function basicAuthSecret(
  namespace: string,
  name: string,
  credentials: ImageCredentials,
  extra: { labels?: Record<string, string>; ownerReferences?: OwnerReference[] } = {},
): SecretLike {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace, ...extra },
    type: IMAGE_CREDENTIALS_SECRET_TYPE,
    data: {
      username: Buffer.from(credentials.username, 'utf8').toString('base64'),
      password: Buffer.from(credentials.password, 'utf8').toString('base64'),
    },
  };
}

/** Reads a Secret with `kc` (KubeError 404 when it does not exist). */
export function getSecret(kc: KubeConfig, namespace: string, name: string): Promise<SecretLike> {
  return rawRequest<SecretLike>(kc, { method: 'GET', path: secretPath(namespace, name) });
}
