import { describe, expect, it } from 'vitest';
import { FencedError } from './resources.ts';
import { pool } from './pool.ts';

describe('pool (bounded, cancellable fan-out)', () => {
  it('never has more than the limit in flight and runs every thunk', async () => {
    let inFlight = 0;
    let most = 0;
    let ran = 0;
    const thunks = Array.from({ length: 50 }, () => async () => {
      most = Math.max(most, ++inFlight);
      await new Promise((r) => setTimeout(r, 1));
      inFlight--;
      ran++;
    });
    await pool(thunks, 4);
    expect(most).toBe(4);
    expect(ran).toBe(50);
  });

  it('starts nothing more once aborted', async () => {
    const ac = new AbortController();
    let ran = 0;
    const thunks = Array.from({ length: 20 }, () => async () => {
      if (++ran === 3) ac.abort();
      await Promise.resolve();
    });
    await pool(thunks, 1, { signal: ac.signal });
    expect(ran).toBe(3);
  });

  it('stops the batch at the first write refused for not leading', async () => {
    let ran = 0;
    const thunks = Array.from({ length: 20 }, () => () => {
      ran++;
      return Promise.reject(new FencedError('leadership lost'));
    });
    await expect(pool(thunks, 1)).rejects.toThrow(AggregateError);
    expect(ran).toBe(1);
  });

  it('backs off after a failure before its next write, and still runs the rest', async () => {
    const started: number[] = [];
    const thunks = Array.from({ length: 3 }, (_, i) => () => {
      started.push(Date.now());
      return i === 0 ? Promise.reject(new Error('503')) : Promise.resolve();
    });
    await expect(pool(thunks, 1, { backoff: { baseMs: 40, maxMs: 40 } })).rejects.toThrow('1 of 3 writes failed');
    expect(started).toHaveLength(3);
    expect(started[1]! - started[0]!).toBeGreaterThanOrEqual(35);
  });
});
