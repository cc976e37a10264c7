// Leader election against the real apiserver: two electors on one Lease, with a sampler that fails the
// test if both ever lead at the same moment.
import type { KubeConfig } from '@kubernetes/client-node';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createNamespace, deleteNamespace, testKubeConfig } from '../../test/support/kube.ts';
import { rawRequest } from './kube.ts';
import { LeaderElector, microTime } from './leader.ts';
import { DiegoClient, FencedError } from './resources.ts';

const logger = pino({ level: process.env.LOG_LEVEL ?? 'silent' });
const timings = { leaseDurationMs: 2000, renewDeadlineMs: 1500, retryPeriodMs: 250 };
const SLACK_MS = 500; // request latency and timer jitter on a loaded machine

let kc: KubeConfig;
let ns: string;
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  kc = testKubeConfig();
  ns = await createNamespace(kc, 'leader');
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(async () => {
  await deleteNamespace(kc, ns);
});

interface LeaseJSON {
  spec: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
  metadata: { resourceVersion: string };
}
const readLease = (name: string) =>
  rawRequest<LeaseJSON>(kc, { method: 'GET', path: `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/${name}` });

/** An elector on its own KubeConfig (so a test can cut it off) that records its callbacks. */
function elector(lease: string, identity: string) {
  const ownKc = testKubeConfig();
  const e = new LeaderElector(ownKc, { namespace: ns, name: lease, identity, logger, ...timings });
  const seen = { signals: [] as AbortSignal[], stopped: 0, leaders: [] as string[] };
  e.run({
    onStartedLeading: (signal) => void seen.signals.push(signal),
    onStoppedLeading: () => void seen.stopped++,
    onNewLeader: (id) => void seen.leaders.push(id),
  });
  cleanups.push(() => e.stop());
  return { e, kc: ownKc, seen };
}

/** Samples isLeader of every elector each 50 ms through the test. */
function neverTwoLeaders(...electors: LeaderElector[]) {
  let overlaps = 0;
  let samples = 0;
  const timer = setInterval(() => {
    samples++;
    if (electors.filter((e) => e.isLeader).length > 1) overlaps++;
  }, 50);
  cleanups.push(() => {
    clearInterval(timer);
    expect(samples).toBeGreaterThan(0);
    expect(overlaps, 'moments with two leaders').toBe(0);
    return Promise.resolve();
  });
}

/** A TCP server that accepts connections and never answers: a partitioned apiserver. */
async function blackhole() {
  const sockets = new Set<Socket>();
  const server = createServer((s) => void sockets.add(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    sockets.forEach((s) => s.destroy());
    await new Promise((resolve) => server.close(resolve));
  });
  return `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function pointAt(k: KubeConfig, server: string): void {
  k.loadFromOptions({
    clusters: k.clusters.map((c) => ({ ...c, server })),
    users: k.users,
    contexts: k.contexts,
    currentContext: k.currentContext,
  });
}

const MICRO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;

describe('LeaderElector', () => {
  it('releases a lease its stop() found being acquired or renewed (the standby does not wait it out)', async () => {
    const { e } = elector('stop-acquiring', 'a');
    // The first try is on its way (read, then create): stop() waits for it, then releases what it wrote.
    await e.stop();
    expect((await readLease('stop-acquiring')).spec.holderIdentity ?? '').toBe('');
    expect(e.isLeader).toBe(false);
  });

  it('rejects timings that would let two leaders overlap', () => {
    const bad = { namespace: 'x', name: 'y', identity: 'z', leaseDurationMs: 1000, renewDeadlineMs: 1000 };
    expect(() => new LeaderElector(kc, bad)).toThrow(/leaseDuration > renewDeadline/);
    expect(() => new LeaderElector(kc, { namespace: 'x', name: 'y', identity: '' })).toThrow(/identity/);
  });

  it('lets exactly one of two lead, and hands over at once when the leader stops', async () => {
    const a = elector('handover', 'a');
    const b = elector('handover', 'b');
    neverTwoLeaders(a.e, b.e);
    await vi.waitFor(() => expect([a.e.isLeader, b.e.isLeader].filter(Boolean)).toHaveLength(1));
    const [leader, follower] = a.e.isLeader ? [a, b] : [b, a];
    const leaderId = leader === a ? 'a' : 'b';
    const followerId = leader === a ? 'b' : 'a';

    // Stable: renewals keep the lease; the follower keeps waiting.
    await new Promise((r) => setTimeout(r, timings.leaseDurationMs + 500));
    expect(leader.e.isLeader).toBe(true);
    expect(follower.e.isLeader).toBe(false);
    expect(leader.seen.signals).toHaveLength(1);
    expect(follower.seen.signals).toHaveLength(0);
    expect(follower.seen.leaders).toEqual([leaderId]);
    const held = await readLease('handover');
    expect(held.spec).toMatchObject({ holderIdentity: leaderId, leaseDurationSeconds: 2, leaseTransitions: 0 });
    expect(held.spec.renewTime).toMatch(MICRO_TIME);
    expect(held.spec.acquireTime).toMatch(MICRO_TIME);
    expect(Date.parse(held.spec.renewTime ?? '')).toBeGreaterThan(Date.parse(held.spec.acquireTime ?? ''));

    const stopping = leader.e.stop();
    expect(leader.seen.signals[0]?.aborted).toBe(true); // work stops before the lease is released
    expect(leader.e.isLeader).toBe(false);
    await stopping;
    const stoppedAt = Date.now();
    expect(leader.seen.stopped).toBe(1);
    await vi.waitFor(() => expect(follower.e.isLeader).toBe(true), { timeout: 5000, interval: 20 });
    expect(Date.now() - stoppedAt).toBeLessThan(timings.retryPeriodMs + SLACK_MS);
    const taken = await readLease('handover');
    expect(taken.spec).toMatchObject({ holderIdentity: followerId, leaseTransitions: 1 });
    expect(follower.seen.leaders).toEqual([leaderId, followerId]);
  });

  it('takes over from a leader cut off from the apiserver once its lease expires, and not before', async () => {
    const a = elector('partition', 'a');
    await vi.waitFor(() => expect(a.e.isLeader).toBe(true));
    const b = elector('partition', 'b');
    neverTwoLeaders(a.e, b.e);
    await new Promise((r) => setTimeout(r, 2 * timings.retryPeriodMs));
    expect(b.e.isLeader).toBe(false);

    // a's renewals now hang (TLS handshake to a silent server): no release, no error, no lease update.
    pointAt(a.kc, await blackhole());
    const cutAt = Date.now();
    await vi.waitFor(() => expect(a.e.isLeader).toBe(false), { timeout: 5000, interval: 20 });
    expect(a.seen.signals[0]?.aborted).toBe(true);
    expect(String(a.seen.signals[0]?.reason)).toMatch(/renew deadline/);
    expect(Date.now() - cutAt).toBeLessThan(timings.renewDeadlineMs + SLACK_MS);

    await vi.waitFor(() => expect(b.e.isLeader).toBe(true), { timeout: 10_000, interval: 20 });
    const tookMs = Date.now() - cutAt;
    // a renewed at most one retryPeriod before the cut, so the lease cannot expire much earlier than this.
    expect(tookMs).toBeGreaterThan(timings.leaseDurationMs - timings.retryPeriodMs - 100);
    expect(tookMs).toBeLessThan(timings.leaseDurationMs + timings.retryPeriodMs + SLACK_MS);
    expect((await readLease('partition')).spec).toMatchObject({ holderIdentity: 'b', leaseTransitions: 1 });

    // a comes back and finds b holding a valid lease: it stays a follower.
    pointAt(a.kc, kc.getCurrentCluster()?.server ?? '');
    await new Promise((r) => setTimeout(r, 4 * timings.retryPeriodMs));
    expect(a.e.isLeader).toBe(false);
    expect(a.seen.leaders.at(-1)).toBe('b');
  });

  it('stops leading as soon as it sees someone else holding its lease', async () => {
    const a = elector('stolen', 'a');
    await vi.waitFor(() => expect(a.e.isLeader).toBe(true));
    const lease = await readLease('stolen');
    await rawRequest(kc, {
      method: 'PUT',
      path: `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/stolen`,
      body: { ...lease, spec: { ...lease.spec, holderIdentity: 'intruder', renewTime: microTime(new Date()) } },
    });
    const stolenAt = Date.now();
    await vi.waitFor(() => expect(a.e.isLeader).toBe(false), { timeout: 5000, interval: 20 });
    expect(Date.now() - stolenAt).toBeLessThan(3 * timings.retryPeriodMs + SLACK_MS);
    expect(a.seen.leaders).toEqual(['a', 'intruder']);
    await a.e.stop();
    expect((await readLease('stolen')).spec.holderIdentity).toBe('intruder'); // not ours to release
  });

  it('fences writes from the clock: a leader starved past its renew deadline writes nothing, before its timers fire', async () => {
    const { e } = elector('fenced', 'starved');
    await vi.waitFor(() => expect(e.isLeader).toBe(true), { timeout: 10_000 });
    await vi.waitFor(() => expect(e.fenceReason()).toBeUndefined(), { timeout: 10_000 });
    const client = new DiegoClient(kc);
    client.fence = () => e.fenceReason();
    // Starve the event loop past the renew deadline: no timer (nor renewal) can run meanwhile.
    const until = Date.now() + timings.renewDeadlineMs + 200;
    while (Date.now() < until) {
      // busy
    }
    expect(e.isLeader).toBe(true); // its deadline timer has not fired yet...
    expect(e.fenceReason()).toMatch(/last renewed \d+ ms ago/); // ...but the fence already holds
    await expect(client.create('Task', { metadata: { name: 'x', namespace: ns }, spec: {} as never })).rejects.toThrow(
      FencedError,
    );
  });
});
