// A process guid is unique in the cluster: admission refuses a DesiredLRP whose spec.processGuid another
// DesiredLRP (in any namespace) has, naming it.
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { CoreV1Api } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCA, issueCert } from '../../src/lib/certs.ts';
import { DiegoClient } from '../../src/lib/resources.ts';
import type { AdmissionReview } from '../../src/webhooks/admission.ts';
import { buildWebhookServer, VALIDATE_PATH } from '../../src/webhooks/server.ts';
import { createNamespace, deleteNamespace, testKubeConfig } from '../support/kube.ts';

const kc = testKubeConfig();
const client = new DiegoClient(kc);
let a = '';
let app: ReturnType<typeof buildWebhookServer>;
let url = '';
const guid = `unique-${process.pid}`;

beforeAll(async () => {
  a = await createNamespace(kc, 'unique-a');
  await client.create('DesiredLRP', {
    metadata: { name: 'web', namespace: a },
    spec: {
      processGuid: guid,
      domain: 'd',
      rootFs: 'preloaded:busybox',
      instances: 0,
      action: { run: { path: '/bin/true', user: 'root' } },
    },
  });
  const ca = await createCA();
  const cert = await issueCert(ca, { commonName: 'webhook', ipAddresses: ['127.0.0.1'], usage: 'server' });
  app = buildWebhookServer({ tls: { cert: cert.certPem, key: cert.keyPem }, logger: pino({ level: 'silent' }), kc });
  await app.listen({ host: '127.0.0.1', port: 0 });
  url = `https://127.0.0.1:${(app.server.address() as AddressInfo).port}${VALIDATE_PATH}`;
});
afterAll(async () => {
  await app?.close();
  await deleteNamespace(kc, a);
});

function admit(
  namespace: string,
  name: string,
  operation: 'CREATE' | 'UPDATE' = 'CREATE',
  extra: Record<string, unknown> = {},
  processGuid = guid,
): Promise<AdmissionReview> {
  const body: AdmissionReview = {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'u1',
      kind: { group: 'diego.dev', version: 'v1alpha1', kind: 'DesiredLRP' },
      operation,
      object: {
        metadata: { namespace, name },
        spec: {
          processGuid,
          domain: 'd',
          rootFs: 'preloaded:busybox',
          action: { run: { path: '/bin/true', user: 'root' } },
          ...extra,
        },
      },
    },
  };
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      { method: 'POST', rejectUnauthorized: false, headers: { 'content-type': 'application/json' } },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve(JSON.parse(text) as AdmissionReview));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

describe('process guid uniqueness', () => {
  it('refuses a second DesiredLRP with the same process guid, in another namespace too', async () => {
    const other = await admit('elsewhere', 'api');
    expect(other.response).toMatchObject({ allowed: false, status: { code: 409 } });
    expect(other.response?.status?.message).toBe(
      `spec.processGuid: ${guid} is already the process guid of DesiredLRP ${a}/web; process guids are unique in the cluster (Diego's LRP identity)`,
    );
    // The object itself (an update, or its own create retried) is not a duplicate of itself.
    expect((await admit(a, 'web', 'UPDATE')).response?.allowed).toBe(true);
    expect((await admit(a, 'web')).response?.allowed).toBe(true);
  });
});

describe('namespace caps from LimitRanges', () => {
  it("refuses work above, or without, what the namespace's LimitRange allows a container", async () => {
    await kc.makeApiClient(CoreV1Api).createNamespacedLimitRange({
      namespace: a,
      body: {
        metadata: { name: 'small' },
        spec: { limits: [{ type: 'Container', max: { memory: '256Mi', 'ephemeral-storage': '1Gi' } }] },
      },
    });
    const unbounded = await admit(a, 'x', 'CREATE', {}, `cap-${process.pid}`);
    expect(unbounded.response?.allowed).toBe(false);
    expect(unbounded.response?.status?.message).toContain(
      'spec.memoryMb: must be set: LimitRange small caps containers at 256Mi (256 MB)',
    );
    const big = await admit(a, 'x', 'CREATE', { memoryMb: 512, diskMb: 100 }, `cap-${process.pid}`);
    expect(big.response?.status?.message).toContain(
      "spec.memoryMb: 512 is above LimitRange small's cap of 256Mi (256 MB)",
    );
    expect(
      (await admit(a, 'x', 'CREATE', { memoryMb: 128, diskMb: 512 }, `cap-${process.pid}`)).response?.allowed,
    ).toBe(true);
    expect((await admit('elsewhere', 'x', 'CREATE', {}, `cap-${process.pid}`)).response?.allowed).toBe(true); // no caps there
  });
});
