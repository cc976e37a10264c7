// How a cell agent gets the registry credentials of the work it is about to start: from the controller's endpoint
// (controllers/image-credentials-endpoint.ts) with the token bound to its Pod — it cannot read Secrets itself — or,
// for local development with an admin kubeconfig (make run, tests) and no endpoint configured, from the Secret
// directly. Asked just before a docker:// pull; the answer is used once and never logged (errors name the work and
// the Secret, never a password).
import { readFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import {
  credentialsOf,
  credentialsPath,
  getSecret,
  type ImageCredentials,
  type WorkRef,
} from '../lib/image-credentials.ts';
import { isNotFound } from '../lib/resources.ts';

export interface ImageCredentialsSource {
  /** The credentials in `secret` for `work`; rejects with a reason a user can act on. */
  fetch(work: WorkRef, secret: string, signal?: AbortSignal): Promise<ImageCredentials>;
}

export interface EndpointSourceOptions {
  /** Base URL of the controller's endpoint, e.g. https://diego-operator-webhook.diego-system.svc:443 */
  url: string;
  /** PEM of the CA that signed the endpoint's certificate, read for every request (default: the system's CAs). */
  ca?: () => Promise<string>;
  /** The bearer token, read for every request (the kubelet rotates a projected token in place). */
  token: () => Promise<string>;
  /** Default 15 s. */
  timeoutMs?: number;
}

const MAX_ANSWER_BYTES = 64 * 1024;

/** Asks the controller's endpoint over TLS. */
export function endpointSource(o: EndpointSourceOptions): ImageCredentialsSource {
  const base = new URL(o.url);
  if (base.protocol !== 'https:') throw new Error(`the image credentials endpoint must be https:// (got ${o.url})`);
  const timeoutMs = o.timeoutMs ?? 15_000;
  return {
    async fetch(work, secret, signal) {
      const [token, ca] = await Promise.all([o.token(), o.ca?.()]);
      const url = new URL(credentialsPath(work, secret), base);
      const what = `the image credentials of ${work.kind} ${work.namespace}/${work.name} (Secret ${secret})`;
      const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = httpsRequest(
          url,
          {
            method: 'GET',
            headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
            ...(ca ? { ca } : {}),
            timeout: timeoutMs,
            signal,
          },
          (res) => {
            const chunks: Buffer[] = [];
            let size = 0;
            res.on('data', (c: Buffer) => {
              size += c.length;
              if (size > MAX_ANSWER_BYTES)
                res.destroy(new Error(`the answer is larger than ${MAX_ANSWER_BYTES} bytes`));
              else chunks.push(c);
            });
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
            res.on('error', reject);
          },
        );
        req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
        req.on('error', reject);
        req.end();
      }).catch((err: unknown) => {
        throw new Error(`cannot get ${what} from ${base.origin}: ${(err as Error).message}`, { cause: err });
      });
      let parsed: { username?: unknown; password?: unknown; error?: unknown } = {};
      try {
        parsed = JSON.parse(body) as typeof parsed;
      } catch {
        // not JSON: reported below without the body (it could hold anything)
      }
      if (status === 200 && typeof parsed.username === 'string' && typeof parsed.password === 'string') {
        return { username: parsed.username, password: parsed.password };
      }
      const why = typeof parsed.error === 'string' ? parsed.error : `HTTP ${status}`;
      throw new Error(`the controller refused ${what}: ${why} (HTTP ${status})`);
    },
  };
}

/**
 * Reads the Secret with the agent's own kubeconfig: only for a cell agent running with an admin kubeconfig (make
 * run, tests). The chart's cell agents cannot read Secrets, and use endpointSource.
 */
export function secretSource(kc: KubeConfig): ImageCredentialsSource {
  return {
    async fetch(work, secret) {
      const what = `the Secret ${secret} in namespace ${work.namespace} (image credentials of ${work.kind}/${work.name})`;
      const s = await getSecret(kc, work.namespace, secret).catch((err: unknown) => {
        if (isNotFound(err)) throw new Error(`${what} does not exist`, { cause: err });
        throw new Error(`cannot read ${what}: ${(err as Error).message}`, { cause: err });
      });
      const held = credentialsOf(s);
      if (!held.ok) throw new Error(held.reason);
      return held.credentials;
    },
  };
}

/** A bearer token from a file (re-read each time), else the kubeconfig's own token. */
export function tokenFrom(file: string | undefined, kc: KubeConfig): () => Promise<string> {
  return async () => {
    if (file) return (await readFile(file, 'utf8')).trim();
    const token = kc.getCurrentUser()?.token;
    if (!token) throw new Error('no token to present to the image credentials endpoint (--credentials-token-file)');
    return token;
  };
}
