// A tiny OCI distribution registry on loopback, read-only, serving images the test built (oci-image.ts), so
// that `docker://127.0.0.1:<port>/<repo>:<tag>` rootfs URLs pull for real without the network. It answers what
// a pull needs (distribution spec "pull"): GET/HEAD /v2/, /v2/<name>/manifests/<tag or digest> and
// /v2/<name>/blobs/<digest>, with Content-Type, Content-Length and Docker-Content-Digest. With `auth` it wants
// HTTP basic auth on every route, as a registry with htpasswd does: a request without the right credentials gets
// 401 UNAUTHORIZED with `WWW-Authenticate: Basic realm="..."` (no Docker token flow).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Blob, OciImage } from '../../src/cell-agent/backends/oci-image.ts';

export interface TestRegistryOptions {
  /** Requires these credentials (HTTP basic auth) on every request. */
  auth?: { username: string; password: string };
  /** Called for each request before it is answered (with whether its credentials were accepted). */
  onRequest?: (req: IncomingMessage, authorized: boolean) => void;
}

export interface TestRegistry {
  /** host:port, e.g. 127.0.0.1:34567. */
  host: string;
  /** Serves `image` as <name>:<tag> (and by its manifest digest). */
  add(name: string, tag: string, image: OciImage): void;
  /** Requests seen, as 'METHOD path'. */
  requests: string[];
  /** Requests refused with 401 (auth only), as 'METHOD path'. */
  unauthorized: string[];
  close(): Promise<void>;
}

export async function startRegistry(opts: TestRegistryOptions = {}): Promise<TestRegistry> {
  const tags = new Map<string, Blob>(); // '<name>:<tag>' → manifest
  const manifests = new Map<string, Blob>(); // '<name>@<digest>' → manifest
  const blobs = new Map<string, Blob>(); // '<name>@<digest>' → config or layer
  const requests: string[] = [];
  const unauthorized: string[] = [];
  const expected = opts.auth
    ? `Basic ${Buffer.from(`${opts.auth.username}:${opts.auth.password}`).toString('base64')}`
    : undefined;

  const send = (req: IncomingMessage, res: ServerResponse, blob: Blob) => {
    res.writeHead(200, {
      'Content-Type': blob.mediaType,
      'Content-Length': blob.bytes.length,
      'Docker-Content-Digest': blob.digest,
      'Docker-Distribution-API-Version': 'registry/2.0',
    });
    res.end(req.method === 'HEAD' ? undefined : blob.bytes);
  };
  const notFound = (res: ServerResponse, code: string, message: string) => {
    const body = JSON.stringify({ errors: [{ code, message }] });
    res.writeHead(404, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://registry');
    requests.push(`${req.method} ${url.pathname}`);
    const authorized = expected === undefined || req.headers.authorization === expected;
    opts.onRequest?.(req, authorized);
    if (!authorized) {
      unauthorized.push(`${req.method} ${url.pathname}`);
      const body = JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] });
      res.writeHead(401, {
        'Content-Type': 'application/json',
        'Content-Length': Buffer.byteLength(body),
        'WWW-Authenticate': 'Basic realm="diego-operator test registry"',
        'Docker-Distribution-API-Version': 'registry/2.0',
      });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    if (url.pathname === '/v2/' || url.pathname === '/v2') {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Docker-Distribution-API-Version': 'registry/2.0' });
      res.end(req.method === 'HEAD' ? undefined : '{}');
      return;
    }
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(url.pathname);
    if (!m) return notFound(res, 'NAME_UNKNOWN', `no route for ${url.pathname}`);
    const [, name, kind, ref] = m as unknown as [string, string, string, string];
    if (kind === 'manifests') {
      const blob = ref.startsWith('sha256:') ? manifests.get(`${name}@${ref}`) : tags.get(`${name}:${ref}`);
      return blob ? send(req, res, blob) : notFound(res, 'MANIFEST_UNKNOWN', `manifest ${name}:${ref} unknown`);
    }
    const blob = blobs.get(`${name}@${ref}`);
    return blob ? send(req, res, blob) : notFound(res, 'BLOB_UNKNOWN', `blob ${ref} unknown`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    host: `127.0.0.1:${port}`,
    requests,
    unauthorized,
    add(name, tag, image) {
      tags.set(`${name}:${tag}`, image.manifest);
      manifests.set(`${name}@${image.manifest.digest}`, image.manifest);
      for (const b of [image.config, ...image.layers]) blobs.set(`${name}@${b.digest}`, b);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
