// rawRequest against a server that takes a request and never answers (as a kube-apiserver can right after a restart):
// the caller gets a RequestTimeoutError after its timeout instead of waiting for ever, and the socket is closed.
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCA, issueCert } from './certs.ts';
import { rawRequest, RequestTimeoutError } from './kube.ts';

let server: Server;
let kc: KubeConfig;
const sockets = new Set<Socket>();
let answering = false;

beforeAll(async () => {
  const ca = await createCA({ commonName: 'silent-ca', days: 1 });
  const leaf = await issueCert(ca, { commonName: '127.0.0.1', ipAddresses: ['127.0.0.1'], usage: 'server', days: 1 });
  server = createServer({ cert: leaf.certPem, key: leaf.keyPem }, (req, res) => {
    if (answering) res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    // otherwise: never answered
  });
  server.on('secureConnection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [
      {
        name: 'silent',
        server: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
        caData: Buffer.from(ca.certPem).toString('base64'),
      },
    ],
    users: [{ name: 'u' }],
    contexts: [{ name: 'silent', cluster: 'silent', user: 'u' }],
    currentContext: 'silent',
  });
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe('rawRequest', () => {
  it('gives up on a request the server never answers, with RequestTimeoutError, and closes its connection', async () => {
    answering = false;
    const err = await rawRequest(kc, { method: 'PATCH', path: '/apis/x', body: {}, timeoutMs: 500 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RequestTimeoutError);
    expect((err as Error).message).toContain('PATCH /apis/x: no answer within 500 ms');
    await expect.poll(() => sockets.size, { timeout: 10_000 }).toBe(0);
  });

  it('answers as before when the server does', async () => {
    answering = true;
    await expect(rawRequest(kc, { method: 'GET', path: '/ok', timeoutMs: 10_000 })).resolves.toEqual({ ok: true });
  });
});
