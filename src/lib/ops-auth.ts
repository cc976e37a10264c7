// Authentication and authorization of the ops endpoints (an agent's log stream and metrics, the controller's
// metrics), as kube-rbac-proxy does: the caller's bearer token is checked with a TokenReview, and what it asks for
// with a SubjectAccessReview — a non-resource "get /metrics", or a resource such as "get desiredlrps/log in
// namespace N" for an app's logs. Answers are cached briefly (bounded), so a Prometheus scrape or a follower does
// not cost two API calls each time.
import type { KubeConfig } from '@kubernetes/client-node';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { rawRequest } from './kube.ts';

export interface OpsUser {
  username: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
}

export type AccessAttributes =
  | { nonResource: { path: string; verb: string } }
  | {
      resource: {
        group: string;
        resource: string;
        subresource?: string;
        verb: string;
        namespace?: string;
        name?: string;
      };
    };

export interface OpsAuth {
  /** The user a bearer token stands for, or undefined when the API server does not accept it. */
  authenticate(token: string): Promise<OpsUser | undefined>;
  /** Whether the user may do what the attributes say. */
  authorize(user: OpsUser, attrs: AccessAttributes): Promise<boolean>;
}

interface TokenReview {
  status?: { authenticated?: boolean; user?: OpsUser; error?: string };
}
interface SubjectAccessReview {
  status?: { allowed?: boolean; denied?: boolean; reason?: string };
}

/**
 * TokenReview + SubjectAccessReview against the API server of `kc`, cached for `ttlMs` (at most `max` answers). With
 * `audiences`, a token is accepted only when it was issued for one of them (a token for the API server is not).
 */
export function kubernetesAuth(
  kc: KubeConfig,
  opts: { ttlMs?: number; max?: number; audiences?: string[] } = {},
): OpsAuth {
  const ttl = opts.ttlMs ?? 10_000;
  const tokens = new TtlCache<OpsUser | null>(ttl, opts.max ?? 1024);
  const decisions = new TtlCache<boolean>(ttl, opts.max ?? 4096);
  return {
    async authenticate(token) {
      const hit = tokens.get(token);
      if (hit !== undefined) return hit ?? undefined;
      const review = await rawRequest<TokenReview>(kc, {
        method: 'POST',
        path: '/apis/authentication.k8s.io/v1/tokenreviews',
        body: {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenReview',
          spec: { token, ...(opts.audiences?.length ? { audiences: opts.audiences } : {}) },
        },
      });
      const user = review.status?.authenticated ? (review.status.user ?? null) : null;
      tokens.set(token, user);
      return user ?? undefined;
    },
    async authorize(user, attrs) {
      const key = JSON.stringify([user.username, user.groups, attrs]);
      const hit = decisions.get(key);
      if (hit !== undefined) return hit;
      const spec = {
        user: user.username,
        ...(user.uid ? { uid: user.uid } : {}),
        groups: user.groups ?? [],
        extra: user.extra ?? {},
        ...('nonResource' in attrs
          ? { nonResourceAttributes: attrs.nonResource }
          : { resourceAttributes: attrs.resource }),
      };
      const review = await rawRequest<SubjectAccessReview>(kc, {
        method: 'POST',
        path: '/apis/authorization.k8s.io/v1/subjectaccessreviews',
        body: { apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec },
      });
      const allowed = review.status?.allowed === true;
      decisions.set(key, allowed);
      return allowed;
    },
  };
}

/**
 * Checks the request's bearer token and the attributes; answers 401/403 itself and returns false when refused
 * (the API server unreachable is a 503: nothing is served unchecked).
 */
export async function allowed(
  auth: OpsAuth,
  req: FastifyRequest,
  reply: FastifyReply,
  attrs: AccessAttributes,
): Promise<boolean> {
  const header = req.headers.authorization ?? '';
  const token = /^Bearer\s+(\S+)$/i.exec(header)?.[1];
  if (!token) {
    await reply
      .code(401)
      .header('www-authenticate', 'Bearer')
      .send({ error: 'a bearer token is required (a Kubernetes ServiceAccount or user token)' });
    return false;
  }
  let user: OpsUser | undefined;
  let ok: boolean;
  try {
    user = await auth.authenticate(token);
    ok = user !== undefined && (await auth.authorize(user, attrs));
  } catch (err) {
    req.log.warn({ err }, 'ops auth: cannot reach the API server to check a token');
    await reply.code(503).send({ error: 'cannot check the token now: the API server does not answer' });
    return false;
  }
  if (!user) {
    await reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'the token was not accepted' });
    return false;
  }
  if (!ok) {
    await reply.code(403).send({ error: `${user.username} may not ${describe(attrs)}` });
    return false;
  }
  return true;
}

function describe(attrs: AccessAttributes): string {
  if ('nonResource' in attrs) return `${attrs.nonResource.verb} ${attrs.nonResource.path}`;
  const r = attrs.resource;
  const what = `${r.resource}${r.subresource ? `/${r.subresource}` : ''}${r.group ? `.${r.group}` : ''}`;
  return `${r.verb} ${what}${r.namespace ? ` in namespace ${r.namespace}` : ' in all namespaces'}`;
}

/** A small map whose entries expire after ttl and which forgets the oldest entry beyond max. */
class TtlCache<V> {
  readonly #ttl: number;
  readonly #max: number;
  readonly #entries = new Map<string, { value: V; at: number }>();

  constructor(ttl: number, max: number) {
    this.#ttl = ttl;
    this.#max = max;
  }

  get(key: string): V | undefined {
    const e = this.#entries.get(key);
    if (!e) return undefined;
    if (Date.now() - e.at > this.#ttl) {
      this.#entries.delete(key);
      return undefined;
    }
    return e.value;
  }

  set(key: string, value: V): void {
    this.#entries.delete(key);
    if (this.#entries.size >= this.#max) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
    this.#entries.set(key, { value, at: Date.now() });
  }
}

export type OpsAuthMode = 'kubernetes' | 'none';

/** Loopback only: the one place an unauthenticated ops endpoint may listen. */
export const isLoopback = (host: string): boolean => /^(127\.|::1$|localhost$)/.test(host);

/**
 * What an ops server serves with: authentication (TokenReview/SubjectAccessReview) and TLS unless it listens on
 * loopback only (`auto`), or as asked. Without a certificate of its own it serves a self-signed one (as
 * kube-rbac-proxy does): scrapers then skip verification, or give it one.
 */
export async function opsSecurity(
  kc: KubeConfig,
  host: string,
  mode: OpsAuthMode | 'auto',
  tls: { certFile?: string; keyFile?: string },
): Promise<{ auth?: OpsAuth; tls?: { cert: string; key: string } }> {
  const on = mode === 'kubernetes' || (mode === 'auto' && !isLoopback(host));
  if (!on) return {};
  if (tls.certFile || tls.keyFile) {
    if (!tls.certFile || !tls.keyFile) throw new Error('--ops-tls-cert and --ops-tls-key go together');
    const { readFile } = await import('node:fs/promises');
    return {
      auth: kubernetesAuth(kc),
      tls: { cert: await readFile(tls.certFile, 'utf8'), key: await readFile(tls.keyFile, 'utf8') },
    };
  }
  const { createCA, issueCert } = await import('./certs.ts');
  const ca = await createCA({ commonName: 'diego-operator ops (self-signed)' });
  const { hostname } = await import('node:os');
  const leaf = await issueCert(ca, {
    commonName: hostname(),
    dnsNames: [hostname(), 'localhost'],
    ipAddresses: [
      ...new Set(['127.0.0.1', ...(/^\d+\.\d+\.\d+\.\d+$/.test(host) && host !== '0.0.0.0' ? [host] : [])]),
    ],
    usage: 'server',
  });
  return { auth: kubernetesAuth(kc), tls: { cert: leaf.certPem + ca.certPem, key: leaf.keyPem } };
}
