import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createQueueMetrics, RateLimiter, WorkQueue } from './workqueue.ts';

const logger = pino({ level: 'silent' });

/** A promise the test resolves by hand, to hold a handler in flight. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

describe('RateLimiter', () => {
  it('doubles the per-item delay from the base and caps it', () => {
    const rl = new RateLimiter({ baseDelayMs: 5, maxDelayMs: 100, qps: 1e9, burst: 1e9 });
    const delays = Array.from({ length: 8 }, () => rl.when('a'));
    expect(delays).toEqual([5, 10, 20, 40, 80, 100, 100, 100]);
    expect(rl.numRequeues('a')).toBe(8);
    expect(rl.when('b')).toBe(5); // per item
  });

  it('forget resets the failure count', () => {
    const rl = new RateLimiter({ baseDelayMs: 5 });
    rl.when('a');
    rl.when('a');
    rl.forget('a');
    expect(rl.numRequeues('a')).toBe(0);
    expect(rl.when('a')).toBe(5);
  });

  it('takes the larger of item backoff and token bucket delay', () => {
    vi.useFakeTimers({ now: 0 });
    try {
      const rl = new RateLimiter({ baseDelayMs: 5, qps: 10, burst: 2 });
      expect(rl.when('a')).toBe(5);
      expect(rl.when('b')).toBe(5);
      expect(rl.when('c')).toBeCloseTo(100); // bucket empty: one token per 100 ms
      expect(rl.when('d')).toBeCloseTo(200);
      vi.advanceTimersByTime(1000); // refills to the burst
      expect(rl.when('e')).toBe(5);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('WorkQueue', () => {
  let q: WorkQueue;
  beforeEach(() => {
    q = new WorkQueue({ name: 'test', logger });
  });
  afterEach(async () => {
    vi.useRealTimers();
    await q.shutDown();
  });

  it('does not add a waiting key twice', async () => {
    q.add('a');
    q.add('b');
    q.add('a');
    expect(q.length).toBe(2);
    const seen: string[] = [];
    q.run((k) => {
      seen.push(k);
      return Promise.resolve();
    });
    await vi.waitFor(() => expect(seen).toEqual(['a', 'b']));
  });

  it('never processes one key concurrently and re-queues a key added while processing once', async () => {
    const first = gate();
    let running = 0;
    let maxRunning = 0;
    const seen: string[] = [];
    q.run(async (k) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      seen.push(k);
      if (seen.length === 1) await first.opened;
      running--;
    }, 4);
    q.add('a');
    await vi.waitFor(() => expect(seen).toEqual(['a']));
    q.add('a'); // while 'a' is in flight: marked dirty, not handed to another worker
    q.add('a');
    await new Promise((r) => setTimeout(r, 20));
    expect(seen).toEqual(['a']);
    expect(q.length).toBe(0);
    first.open();
    await vi.waitFor(() => expect(seen).toEqual(['a', 'a']));
    await new Promise((r) => setTimeout(r, 20));
    expect(seen).toEqual(['a', 'a']);
    expect(maxRunning).toBe(1);
  });

  it('processes different keys in parallel', async () => {
    const g = gate();
    let running = 0;
    q.run(async () => {
      running++;
      await g.opened;
    }, 3);
    q.add('a');
    q.add('b');
    q.add('c');
    await vi.waitFor(() => expect(running).toBe(3));
    g.open();
  });

  it('retries a failing key with growing, capped backoff and forgets it on success', async () => {
    vi.useFakeTimers({ now: 0 });
    q = new WorkQueue({ name: 'test', logger, rateLimiter: { baseDelayMs: 100, maxDelayMs: 400 } });
    const calls: number[] = [];
    q.run(() => {
      calls.push(Date.now());
      return calls.length <= 6 ? Promise.reject(new Error('boom')) : Promise.resolve();
    });
    q.add('a');
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toEqual([0, 100, 300, 700]);
    expect(q.numRequeues('a')).toBe(4);
    await vi.advanceTimersByTimeAsync(5000);
    // 100, 200, 400, then capped at 400
    expect(calls).toEqual([0, 100, 300, 700, 1100, 1500, 1900]);
    expect(q.numRequeues('a')).toBe(0);
  });

  it('logs writes refused to a replica that stopped leading at debug, not as reconciler errors, and retries them', async () => {
    vi.useFakeTimers({ now: 0 });
    const lines: { level: number; msg: string }[] = [];
    const sink = pino(
      { level: 'debug' },
      { write: (l: string) => lines.push(JSON.parse(l) as { level: number; msg: string }) },
    );
    q = new WorkQueue({ name: 'test', logger: sink, rateLimiter: { baseDelayMs: 100 } });
    const fenced = () => Object.assign(new Error('write refused: not the leader'), { name: 'FencedError' });
    let calls = 0;
    q.run(() => {
      calls++;
      if (calls === 1) return Promise.reject(new AggregateError([fenced(), fenced()], '2 of 2 writes failed'));
      if (calls === 2) return Promise.reject(new AggregateError([fenced(), new Error('boom')], '2 of 2 writes failed'));
      return Promise.resolve();
    });
    q.add('a');
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toBe(3);
    expect(lines.filter((l) => l.msg === 'writes refused: not leading').map((l) => l.level)).toEqual([20]);
    expect(lines.filter((l) => l.msg === 'Reconciler error')).toHaveLength(1); // the mixed one is an error
  });

  it('forget resets the backoff of a key', async () => {
    vi.useFakeTimers({ now: 0 });
    q = new WorkQueue({ name: 'test', logger, rateLimiter: { baseDelayMs: 100 } });
    q.addRateLimited('a');
    q.addRateLimited('a');
    expect(q.numRequeues('a')).toBe(2);
    q.forget('a');
    expect(q.numRequeues('a')).toBe(0);
    await vi.advanceTimersByTimeAsync(100);
    expect(q.length).toBe(1);
  });

  it('addAfter delays the add and keeps the earliest of several', () => {
    vi.useFakeTimers();
    q.addAfter('a', 1000);
    q.addAfter('a', 300);
    q.addAfter('a', 2000);
    vi.advanceTimersByTime(299);
    expect(q.length).toBe(0);
    vi.advanceTimersByTime(1);
    expect(q.length).toBe(1);
    vi.advanceTimersByTime(5000);
    expect(q.length).toBe(1);
  });

  it('requeues after requeueAfterMs', async () => {
    const seen: number[] = [];
    q.run(() => {
      seen.push(performance.now());
      return Promise.resolve(seen.length < 2 ? { requeueAfterMs: 50 } : undefined);
    });
    q.add('a');
    await vi.waitFor(() => expect(seen).toHaveLength(2));
    expect((seen[1] ?? 0) - (seen[0] ?? 0)).toBeGreaterThanOrEqual(49);
  });

  it('shutDown waits for in-flight handlers and stops taking work', async () => {
    const g = gate();
    let finished = false;
    const seen: string[] = [];
    q.run(async (k) => {
      seen.push(k);
      await g.opened;
      finished = true;
    });
    q.add('a');
    await vi.waitFor(() => expect(seen).toEqual(['a']));
    q.add('b');
    q.addAfter('c', 10);
    let shutDown = false;
    const done = q.shutDown().then(() => (shutDown = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(shutDown).toBe(false);
    g.open();
    await done;
    expect(finished).toBe(true);
    expect(seen).toEqual(['a']);
    q.add('d');
    expect(q.length).toBe(1); // 'b' stays where it was; 'd' is refused
  });

  it('reports metrics', async () => {
    const registry = new Registry();
    const metrics = createQueueMetrics(registry);
    expect(createQueueMetrics(registry).adds).toBe(metrics.adds); // idempotent per registry
    q = new WorkQueue({ name: 'm', logger, metrics });
    let fail = true;
    q.run(() => {
      if (!fail) return Promise.resolve();
      fail = false;
      return Promise.reject(new Error('once'));
    });
    q.add('a');
    await vi.waitFor(async () => {
      const text = await registry.metrics();
      expect(text).toContain('workqueue_adds_total{name="m"} 2');
      expect(text).toContain('workqueue_retries_total{name="m"} 1');
      expect(text).toContain('workqueue_depth{name="m"} 0');
    });
  });
});
