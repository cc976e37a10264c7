// Mutual TLS as the real BBS does it: a client without a certificate from the client CA is refused.
import { request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { fromBinary } from '@bufbuild/protobuf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCA, issueCert, type CertKeyPair } from '../lib/certs.ts';
import { createLogger } from '../lib/log.ts';
import type { DiegoClient } from '../lib/resources.ts';
import { buildBbsApp } from './app.ts';
import { PingResponseSchema } from './models.ts';

let ca: CertKeyPair;
let client: CertKeyPair;
let app: ReturnType<typeof buildBbsApp>;
let port = 0;

beforeAll(async () => {
  ca = await createCA();
  const server = await issueCert(ca, { commonName: 'bbs', ipAddresses: ['127.0.0.1'], usage: 'server' });
  client = await issueCert(ca, { commonName: 'cc', usage: 'client' });
  app = buildBbsApp({
    client: {} as DiegoClient,
    namespace: 'ns',
    logger: createLogger('silent'),
    https: { cert: Buffer.from(server.certPem), key: Buffer.from(server.keyPem), ca: Buffer.from(ca.certPem) },
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as AddressInfo).port;
}, 30_000);
afterAll(() => app.close());

function ping(withCert: boolean): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/v1/ping',
        method: 'POST',
        ca: ca.certPem,
        ...(withCert ? { cert: client.certPem, key: client.keyPem } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(Buffer.concat(chunks)));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('BBS over mutual TLS', () => {
  it('serves a client with a certificate from the client CA', async () => {
    expect(fromBinary(PingResponseSchema, await ping(true)).available).toBe(true);
  });

  it('refuses a client without a certificate', async () => {
    await expect(ping(false)).rejects.toThrow();
  });
});
