// Diego's Locket API served by `diego-operator bbs --locket-listen` (src/bbs/locket.ts), over the BBS's mutual TLS:
// Diego's own Locket client and lock runner (test/bbs-conformance, scenario "locket": what cfdot locks, presences,
// claim-lock and release-lock do, and how Diego's components hold a lock); racing claimers (one wins); clients
// without a certificate or with another CA's (refused); the locks as Leases in the system namespace.
import * as grpc from '@grpc/grpc-js';
import { create } from '@bufbuild/protobuf';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leaseNameForKey } from '../../src/bbs/locket-rules.ts';
import { LocketStore, locketServiceDefinition } from '../../src/bbs/locket.ts';
import * as pb from '../../src/bbs/gen/locket_pb.ts';
import { startBbs, type RunningBbs } from '../../src/cmd/bbs.ts';
import { createCA, issueCert, writeCertFiles, type CertKeyPair } from '../../src/lib/certs.ts';
import { rawRequest } from '../../src/lib/kube.ts';
import { type Lease, leasePath, microTime } from '../../src/lib/lease.ts';
import { runBbsClient } from '../support/bbs-go.ts';
import { eventually } from '../support/eventually.ts';
import { startFaultProxy } from '../support/fault-proxy.ts';
import { useDiego } from '../support/fixture.ts';

const env = useDiego('locket');
const dir = mkdtempSync(join(tmpdir(), 'locket-test-'));
let ca: CertKeyPair;
let clientPair: CertKeyPair;
let bbs: RunningBbs;
let cellId = '';

beforeAll(async () => {
  ca = await createCA({ commonName: 'locket-test-ca' });
  await writeCertFiles(dir, 'ca', ca);
  await writeCertFiles(
    dir,
    'server',
    await issueCert(ca, { commonName: 'locket', ipAddresses: ['127.0.0.1'], usage: 'server' }),
  );
  clientPair = await issueCert(ca, { commonName: 'cfdot', usage: 'client' });
  await writeCertFiles(dir, 'client', clientPair);
  cellId = `locket-cell-${process.pid}`;
  await env.startCells(1, () => ({ cellId }));
  // The controller's leader Lease, as a running controller holds it.
  const now = microTime(new Date());
  await rawRequest(env.kc, {
    method: 'POST',
    path: leasePath(env.systemNamespace),
    body: {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: 'diego-operator-controller' },
      spec: { holderIdentity: 'controller-0', leaseDurationSeconds: 3600, acquireTime: now, renewTime: now },
    },
  });
  bbs = await startBbs({
    log: env.log,
    client: env.client,
    namespace: env.ns,
    systemNamespace: env.systemNamespace,
    listen: '127.0.0.1:0',
    healthAddress: '',
    insecureHttp: false,
    tlsCert: join(dir, 'server.crt'),
    tlsKey: join(dir, 'server.key'),
    tlsClientCa: join(dir, 'ca.crt'),
    locketListen: '127.0.0.1:0',
    metricsAddress: '127.0.0.1:0',
  });
}, 120_000);

afterAll(async () => {
  await bbs?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A Locket client over grpc-js with the given credentials. */
function locketClient(creds: grpc.ChannelCredentials) {
  const client = new grpc.Client(bbs.locketAddress!, creds);
  const call = <K extends keyof typeof locketServiceDefinition>(method: K, req: unknown) =>
    new Promise<unknown>((resolve, reject) => {
      const d = locketServiceDefinition[method];
      client.makeUnaryRequest(
        d.path,
        d.requestSerialize as (v: unknown) => Buffer,
        d.responseDeserialize as (b: Buffer) => unknown,
        req,
        { deadline: Date.now() + 30_000 },
        (err, res) => (err ? reject(err) : resolve(res)),
      );
    });
  return { call, close: () => client.close() };
}

const mutualTls = () =>
  grpc.credentials.createSsl(Buffer.from(ca.certPem), Buffer.from(clientPair.keyPem), Buffer.from(clientPair.certPem));

const lockRequest = (key: string, owner: string, ttl = 30) =>
  create(pb.LockRequestSchema, {
    resource: { key, owner, value: `held by ${owner}`, typeCode: pb.TypeCode.LOCK },
    ttlInSeconds: BigInt(ttl),
  });

describe('Locket API (cfdot locks, presences, claim-lock, release-lock)', () => {
  it("serves Diego's Locket client and lock runner: presences, locks, claim, renew, collision, release, expiry", async () => {
    const res = await runBbsClient(
      [
        '-scenario',
        'locket',
        '-locket',
        bbs.locketAddress!,
        '-cell',
        cellId,
        '-tls-ca',
        join(dir, 'ca.crt'),
        '-tls-cert',
        join(dir, 'client.crt'),
        '-tls-key',
        join(dir, 'client.key'),
      ],
      300_000,
    );
    expect(res.stderr).not.toMatch(/FAIL/);
    expect(res.ok).toEqual([
      'presences',
      'locks',
      'claim-lock',
      'renew-lock',
      'lock-collision',
      'release-collision',
      'component-lock-collision',
      'invalid-ttl',
      'invalid-owner',
      'invalid-type',
      'release-lock',
      'release-absent',
      'expiry',
      'presence-refused',
      'lock-runner',
      'lock-handover',
    ]);
    expect(res.code).toBe(0);
    // Locket's metrics, with its names, on the BBS's /metrics.
    const text = await (await fetch(`${bbs.metricsUrl}/metrics`)).text();
    const value = (line: RegExp) => Number(line.exec(text)?.[1] ?? NaN);
    expect(value(/^RequestsStarted\{request_type="Lock"\} (\d+)/m)).toBeGreaterThan(5);
    expect(value(/^RequestsSucceeded\{request_type="FetchAll"\} (\d+)/m)).toBeGreaterThanOrEqual(2);
    expect(value(/^RequestsFailed\{request_type="FetchAll"\} (\d+)/m)).toBeGreaterThanOrEqual(1); // invalid-type
    expect(value(/^RequestsInFlight\{request_type="Lock"\} (\d+)/m)).toBe(0);
    expect(value(/^ActivePresences (\d+)/m)).toBeGreaterThanOrEqual(1);
    expect(value(/^ActiveLocks (\d+)/m)).toBeGreaterThanOrEqual(1); // the controller's leader Lease
  }, 320_000);

  it('lets exactly one of many racing claimers take a lock; it is a Lease in the system namespace until released', async () => {
    const c = locketClient(mutualTls());
    try {
      const owners = Array.from({ length: 8 }, (_, i) => `racer-${i}`);
      const results = await Promise.allSettled(owners.map((o) => c.call('Lock', lockRequest('raced', o))));
      const won = owners.filter((_, i) => results[i]!.status === 'fulfilled');
      expect(won).toHaveLength(1);
      for (const r of results)
        if (r.status === 'rejected')
          expect(r.reason).toMatchObject({ code: grpc.status.ALREADY_EXISTS, details: 'lock-collision' });
      const lease = await rawRequest<Lease>(env.kc, {
        method: 'GET',
        path: leasePath(env.systemNamespace, leaseNameForKey('raced')),
      });
      expect(lease.spec).toMatchObject({ holderIdentity: won[0], leaseDurationSeconds: 30 });
      expect(lease.metadata?.annotations).toMatchObject({ 'diego.dev/locket-key': 'raced' });
      const fetched = (await c.call('Fetch', create(pb.FetchRequestSchema, { key: 'raced' }))) as pb.FetchResponse;
      expect(fetched.resource).toMatchObject({ key: 'raced', owner: won[0], value: `held by ${won[0]}` });
      await c.call('Release', create(pb.ReleaseRequestSchema, { resource: { key: 'raced', owner: won[0] } }));
      await expect(
        rawRequest(env.kc, { method: 'GET', path: leasePath(env.systemNamespace, leaseNameForKey('raced')) }),
      ).rejects.toMatchObject({ code: 404 });
    } finally {
      c.close();
    }
  }, 120_000);

  it('keeps one lock table across BBS replicas: claimed on one, released on the other, then free on both', async () => {
    const a = new LocketStore(env.kc, env.client, env.systemNamespace, env.log);
    const b = new LocketStore(env.kc, env.client, env.systemNamespace, env.log);
    await Promise.all([a.start(), b.start()]);
    try {
      const claim = (owner: string) => lockRequest('replicated', owner);
      const release = (owner: string) =>
        create(pb.ReleaseRequestSchema, { resource: { key: 'replicated', owner, typeCode: pb.TypeCode.LOCK } });
      for (let round = 0; round < 3; round++) {
        await a.lock(claim('first'));
        // At once on the other replica, whatever its cache has seen: a claim collides (the API server's answer).
        await expect(b.lock(claim('second'))).rejects.toMatchObject({ message: 'lock-collision' });
        await b.release(release('first'));
        // And back on the first one: the lock is free (its own write does not outlive the release it did not see).
        await eventually(async () => {
          await a.lock(claim('second'));
        }, 30_000);
        await a.release(release('second'));
      }
      await expect(
        rawRequest(env.kc, { method: 'GET', path: leasePath(env.systemNamespace, leaseNameForKey('replicated')) }),
      ).rejects.toMatchObject({ code: 404 });
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  }, 120_000);

  it('survives a lost answer (the claim landed, the caller saw the connection cut) and a cut release: retries settle it', async () => {
    let loseClaim = true;
    let cutRelease = true;
    const proxy = await startFaultProxy(env.kc, (r) => {
      if (r.method === 'POST' && r.path.includes('/leases') && r.body.includes('"lost-answer"') && loseClaim) {
        loseClaim = false;
        return 'lose-answer';
      }
      if (r.method === 'DELETE' && r.path.endsWith(leaseNameForKey('lost-answer')) && cutRelease) {
        cutRelease = false;
        return 'refuse';
      }
      return undefined;
    });
    const store = new LocketStore(proxy.kc, env.client, env.systemNamespace, env.log);
    await store.start();
    const served = () =>
      rawRequest<Lease>(env.kc, {
        method: 'GET',
        path: leasePath(env.systemNamespace, leaseNameForKey('lost-answer')),
      });
    try {
      const claim = (owner: string) => lockRequest('lost-answer', owner);
      await expect(store.lock(claim('runner'))).rejects.toThrow(/socket hang up|ECONNRESET/);
      expect(proxy.lost.map((r) => r.method)).toEqual(['POST']);
      expect((await served()).spec?.holderIdentity).toBe('runner'); // it landed
      // The lock runner tries again a second later: the same owner renews what it already holds; no one else gets it.
      await store.lock(claim('runner'));
      await expect(store.lock(claim('intruder'))).rejects.toMatchObject({ message: 'lock-collision' });
      // A release cut on its way: the lock is still held (nothing lost), and the next release takes it away.
      const release = create(pb.ReleaseRequestSchema, { resource: { key: 'lost-answer', owner: 'runner' } });
      await expect(store.release(release)).rejects.toThrow();
      expect(proxy.refused.map((r) => r.method)).toEqual(['DELETE']);
      expect((await served()).spec?.holderIdentity).toBe('runner');
      await store.release(release);
      await expect(served()).rejects.toMatchObject({ code: 404 });
    } finally {
      await store.stop();
      await proxy.close();
    }
  }, 120_000);

  it('refuses a client without a certificate, or with one from another CA; a bad request changes nothing', async () => {
    const before = (
      await rawRequest<{ items: Lease[] }>(env.kc, { method: 'GET', path: leasePath(env.systemNamespace) })
    ).items.length;
    const anonymous = locketClient(grpc.credentials.createSsl(Buffer.from(ca.certPem)));
    const otherCa = await createCA({ commonName: 'other-ca' });
    const stranger = await issueCert(otherCa, { commonName: 'stranger', usage: 'client' });
    const foreign = locketClient(
      grpc.credentials.createSsl(Buffer.from(ca.certPem), Buffer.from(stranger.keyPem), Buffer.from(stranger.certPem)),
    );
    try {
      for (const c of [anonymous, foreign]) {
        await expect(c.call('Lock', lockRequest('intruded', 'intruder'))).rejects.toMatchObject({
          code: grpc.status.UNAVAILABLE,
        });
        await expect(
          c.call('FetchAll', create(pb.FetchAllRequestSchema, { typeCode: pb.TypeCode.LOCK })),
        ).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
      }
      // An authenticated client's hostile requests: too long a key, too big a value; refused, naming what is wrong.
      const c = locketClient(mutualTls());
      try {
        await expect(c.call('Lock', lockRequest('k'.repeat(256), 'me'))).rejects.toMatchObject({
          code: grpc.status.INVALID_ARGUMENT,
          details: expect.stringContaining('invalid-key') as unknown,
        });
        const big = create(pb.LockRequestSchema, {
          resource: { key: 'big', owner: 'me', value: 'x'.repeat(65 * 1024), typeCode: pb.TypeCode.LOCK },
          ttlInSeconds: 10n,
        });
        await expect(c.call('Lock', big)).rejects.toMatchObject({
          code: grpc.status.INVALID_ARGUMENT,
          details: expect.stringContaining('invalid-value') as unknown,
        });
      } finally {
        c.close();
      }
      const after = (
        await rawRequest<{ items: Lease[] }>(env.kc, { method: 'GET', path: leasePath(env.systemNamespace) })
      ).items.length;
      expect(after).toBe(before);
    } finally {
      anonymous.close();
      foreign.close();
    }
  }, 120_000);
});
