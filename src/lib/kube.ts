// Kubernetes client plumbing shared by every role: load a kubeconfig, apply objects, install our CRDs.
import {
  ApiextensionsV1Api,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  type KubernetesObject,
  type V1CustomResourceDefinition,
} from '@kubernetes/client-node';
import { Agent, request as httpsRequest, type RequestOptions } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildCRD } from '../crds/crd.ts';
import { KINDS } from '../crds/kinds.ts';

export const FIELD_MANAGER = 'diego-operator';

/** Loads the kubeconfig at `path`, or $KUBECONFIG / ~/.kube/config / in-cluster config. */
export function loadKubeConfig(path?: string): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  return kc;
}

export function kubeConfigFromString(yaml: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromString(yaml);
  return kc;
}

/** Server-side apply: create or update `obj`, owning the fields it sets. */
export async function apply<T extends KubernetesObject>(
  kc: KubeConfig,
  obj: T,
  fieldManager = FIELD_MANAGER,
): Promise<T> {
  const api = KubernetesObjectApi.makeApiClient(kc);
  return api.patch(obj, undefined, undefined, fieldManager, true, PatchStrategy.ServerSideApply);
}

/** An error answer from the apiserver, with its HTTP status and Status message. */
export class KubeError extends Error {
  readonly code: number;
  readonly body: unknown;
  constructor(code: number, body: unknown, what: string) {
    const message = (body as { message?: string } | undefined)?.message ?? JSON.stringify(body);
    super(`${what}: ${code} ${message}`);
    this.code = code;
    this.body = body;
  }
}

export interface RawRequest {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  body?: unknown;
  contentType?: string;
  /** Gives up after this long (default REQUEST_TIMEOUT_MS): a RequestTimeoutError, an uncertain outcome. */
  timeoutMs?: number;
}

/**
 * How long a request may take, answer included. The API server ends a request it is still serving after 60 s (its
 * --request-timeout); one it never answers — seen right after a kube-apiserver restart, a request hanging for minutes
 * and with it a cell's claim and bulk sync — is given up a little later, as a network error: its write may have
 * landed, so callers read back before they call it lost (src/lifecycle/outcome.ts `uncertain`).
 */
export const REQUEST_TIMEOUT_MS = 70_000;

/** A request given up after its timeout (no answer). */
export class RequestTimeoutError extends Error {
  override readonly name = 'RequestTimeoutError';
}

/** The keep-alive agent of each kubeconfig, for the TLS identity it was made for. */
const agents = new WeakMap<KubeConfig, { identity: string; agent: Agent }>();

/**
 * Request options for `kc` on a keep-alive agent shared by every request made with it. client-node's
 * applyToHTTPSOptions sets a new agent on every call, so each request opened its own TLS connection: a handshake with
 * the client certificate per request on both ends (9 % of the API server's CPU while placing 10k instances, and the
 * same again in the controller). The agent is made again when the TLS identity changes (a rotated client
 * certificate); idle sockets close after 30 s.
 */
export async function requestOptionsFor(kc: KubeConfig, method: string): Promise<RequestOptions> {
  const opts: RequestOptions = { method, headers: { accept: 'application/json' } };
  await kc.applyToHTTPSOptions(opts);
  const tls = {
    ca: opts.ca,
    cert: opts.cert,
    key: opts.key,
    pfx: opts.pfx,
    passphrase: opts.passphrase,
    servername: opts.servername,
    ...(opts.rejectUnauthorized === undefined ? {} : { rejectUnauthorized: opts.rejectUnauthorized }),
  };
  const identity = JSON.stringify(tls, (_k, v: unknown) => (Buffer.isBuffer(v) ? v.toString('base64') : v));
  let cached = agents.get(kc);
  if (cached?.identity !== identity) {
    cached = {
      identity,
      agent: new Agent({
        ...tls,
        keepAlive: true,
        maxSockets: 128,
        maxFreeSockets: 32,
        timeout: 30_000,
        scheduling: 'lifo',
      }),
    };
    agents.set(kc, cached);
  }
  opts.agent = cached.agent;
  return opts;
}

/**
 * A JSON request to the apiserver without client-node's typed serializer, which drops fields its models
 * name differently (e.g. x-kubernetes-validations in a CRD built as plain JSON).
 */
export async function rawRequest<T = unknown>(kc: KubeConfig, req: RawRequest): Promise<T> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  const url = new URL(req.path, cluster.server);
  const opts = await requestOptionsFor(kc, req.method);
  const payload = req.body === undefined ? undefined : JSON.stringify(req.body);
  if (payload !== undefined) {
    opts.headers = {
      ...opts.headers,
      'content-type': req.contentType ?? 'application/json',
      'content-length': Buffer.byteLength(payload),
    };
  }
  return new Promise<T>((resolve, reject) => {
    const timeoutMs = req.timeoutMs ?? REQUEST_TIMEOUT_MS;
    const timer = setTimeout(
      () => r.destroy(new RequestTimeoutError(`${req.method} ${req.path}: no answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    timer.unref();
    const settle =
      <A extends unknown[]>(f: (...a: A) => void) =>
      (...a: A) => {
        clearTimeout(timer);
        f(...a);
      };
    resolve = settle(resolve);
    reject = settle(reject);
    const r = httpsRequest(url, opts, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown = text;
        try {
          body = text ? JSON.parse(text) : undefined;
        } catch {
          // not JSON: keep the text
        }
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) resolve(body as T);
        else reject(new KubeError(status, body, `${req.method} ${req.path}`));
      });
      res.on('error', reject);
    });
    r.on('error', reject);
    r.end(payload);
  });
}

/** Server-side apply of raw JSON to an explicit object path (no typed serializer). */
export function applyAt<T = unknown>(
  kc: KubeConfig,
  path: string,
  obj: unknown,
  fieldManager = FIELD_MANAGER,
): Promise<T> {
  return rawRequest<T>(kc, {
    method: 'PATCH',
    path: `${path}?fieldManager=${encodeURIComponent(fieldManager)}&force=true`,
    body: obj,
    contentType: 'application/apply-patch+yaml',
  });
}

/** Installs (or updates) the four Diego CRDs and waits until the apiserver serves them. */
export async function installCRDs(kc: KubeConfig, timeoutMs = 60_000): Promise<void> {
  const crds = KINDS.map((k) => buildCRD(k) as unknown as V1CustomResourceDefinition);
  for (const crd of crds) {
    await applyAt(kc, `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata?.name}`, crd);
  }
  const api = kc.makeApiClient(ApiextensionsV1Api);
  const deadline = Date.now() + timeoutMs;
  for (const crd of crds) {
    const name = crd.metadata?.name ?? '';
    for (;;) {
      const current = await api.readCustomResourceDefinition({ name });
      const established = current.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
      if (established) break;
      if (Date.now() > deadline) throw new Error(`CRD ${name} did not become Established within ${timeoutMs} ms`);
      await sleep(100);
    }
  }
}
