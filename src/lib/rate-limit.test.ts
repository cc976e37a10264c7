import { describe, expect, it } from 'vitest';
import { TokenBucket } from './rate-limit.ts';

describe('TokenBucket (the client-side limit of requests to the API server)', () => {
  it('lets a burst through at once, then paces the rest at qps, in arrival order', async () => {
    const bucket = new TokenBucket({ qps: 100, burst: 5 });
    const order: number[] = [];
    const t0 = performance.now();
    const waits = await Promise.all(
      Array.from({ length: 15 }, (_, i) => bucket.take().then((w) => (order.push(i), w))),
    );
    const elapsed = performance.now() - t0;
    expect(order).toEqual(Array.from({ length: 15 }, (_, i) => i));
    expect(waits.slice(0, 5).every((w) => w < 50)).toBe(true);
    // 10 past the burst at 100 a second: at least ~100 ms (a lower bound only: a loaded machine is slower).
    expect(elapsed).toBeGreaterThanOrEqual(90);
  });

  it('refills while idle, never beyond the burst', async () => {
    let now = 0;
    const bucket = new TokenBucket({ qps: 10, burst: 2 }, () => now);
    await bucket.take();
    await bucket.take();
    now += 10_000; // a long idle period refills 2 tokens, not 100
    await bucket.take();
    await bucket.take();
    let third = false;
    const pending = bucket.take().then(() => (third = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(third).toBe(false);
    now += 100; // one token's worth at 10 a second
    await pending;
    expect(third).toBe(true);
  });
});

describe('DiegoClient with a limiter', () => {
  it('asks the fence after its turn, so a write that waited for the limit never goes out once fenced', async () => {
    const { KubeConfig } = await import('@kubernetes/client-node');
    const { DiegoClient, FencedError } = await import('./resources.ts');
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: 'https://127.0.0.1:1', skipTLSVerify: true }],
      users: [{ name: 'u', token: 't' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const client = new DiegoClient(kc);
    client.limiter = new TokenBucket({ qps: 5, burst: 1 });
    const waits: number[] = [];
    client.onLimited = (ms) => waits.push(ms);
    const lease = { lost: undefined as string | undefined };
    client.fence = () => lease.lost;
    const ref = { namespace: 'ns', name: 'a' };
    const first = client.patch('ActualLRP', ref, { spec: { cellId: 'c1' } });
    const second = client.patch('ActualLRP', ref, { spec: { cellId: 'c2' } }); // waits ~200 ms for a token
    await expect(first).rejects.toThrow(/ECONNREFUSED|connect/); // it went out (to nobody)
    lease.lost = 'leadership lost'; // while the second waits for its turn
    await expect(second).rejects.toBeInstanceOf(FencedError);
    expect(waits).toHaveLength(2);
  });
});
