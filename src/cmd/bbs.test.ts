// `diego-operator bbs` listeners: the API over mutual TLS, and BBS's separate plain-HTTP health listener that
// answers without a client certificate.
import { request as httpsRequest } from 'node:https';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromBinary } from '@bufbuild/protobuf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PingResponseSchema } from '../bbs/models.ts';
import { createCA, issueCert, type CertKeyPair } from '../lib/certs.ts';
import { createLogger } from '../lib/log.ts';
import type { DiegoClient } from '../lib/resources.ts';
import { startBbs, type RunningBbs } from './bbs.ts';

const dir = mkdtempSync(join(tmpdir(), 'bbs-cmd-'));
let client: CertKeyPair;
let ca: CertKeyPair;
let bbs: RunningBbs;

beforeAll(async () => {
  ca = await createCA();
  const server = await issueCert(ca, { commonName: 'bbs', ipAddresses: ['127.0.0.1'], usage: 'server' });
  client = await issueCert(ca, { commonName: 'cc', usage: 'client' });
  writeFileSync(join(dir, 'ca.crt'), ca.certPem);
  writeFileSync(join(dir, 'tls.crt'), server.certPem);
  writeFileSync(join(dir, 'tls.key'), server.keyPem);
  bbs = await startBbs({
    log: createLogger('silent'),
    client: {} as DiegoClient, // ping touches no cluster
    namespace: 'ns',
    systemNamespace: 'ns',
    listen: '127.0.0.1:0',
    healthAddress: '127.0.0.1:0',
    insecureHttp: false,
    tlsCert: join(dir, 'tls.crt'),
    tlsKey: join(dir, 'tls.key'),
    tlsClientCa: join(dir, 'ca.crt'),
  });
}, 30_000);
afterAll(async () => {
  await bbs?.close();
  rmSync(dir, { recursive: true, force: true });
});

function mtlsPing(address: string): Promise<{ status: number; body: Buffer }> {
  const [host, port] = address.split(':');
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host,
        port: Number(port),
        method: 'POST',
        path: '/v1/ping',
        ca: ca.certPem,
        cert: client.certPem,
        key: client.keyPem,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('diego-operator bbs listeners', () => {
  it('answers GET /ping on the plain-HTTP health address, without a client certificate', async () => {
    expect(bbs.health).toBeDefined();
    expect(bbs.health!.address).not.toBe(bbs.address);
    const r = await fetch(`http://${bbs.health!.address}/ping`);
    expect(r.status).toBe(200);
    expect(await r.text()).toBe('ok\n');
  });

  it('keeps the API on its own mutual-TLS listener', async () => {
    const r = await mtlsPing(bbs.address);
    expect(r.status).toBe(200);
    expect(fromBinary(PingResponseSchema, r.body).available).toBe(true);
    // Plain HTTP to the API port is not an API.
    await expect(fetch(`http://${bbs.address}/v1/ping`, { method: 'POST' })).rejects.toThrow();
  });

  it('refuses to start without TLS material unless plain HTTP is asked for, and names the flags', async () => {
    await expect(
      startBbs({
        log: createLogger('silent'),
        client: {} as DiegoClient,
        namespace: 'ns',
        systemNamespace: 'ns',
        listen: '127.0.0.1:0',
        insecureHttp: false,
      }),
    ).rejects.toThrow(/--tls-cert, --tls-key and --tls-client-ca, or --insecure-http/);
  });
});
