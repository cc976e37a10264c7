import { describe, expect, it } from 'vitest';
import { crashPolicyFor, DIEGO_CRASH_POLICY, nextCrashCount, restartDelayMs, shouldRestart } from './crash-policy.ts';

const S = 1000;
const MIN = 60 * S;

describe("Diego's crash restart policy", () => {
  it('restarts crashes 1 and 2 at once, then backs off 30 s doubling to 16 min, and gives up at 200', () => {
    const table: [number, number | undefined][] = [
      [1, 0],
      [2, 0],
      [3, 30 * S],
      [4, 60 * S],
      [5, 2 * MIN],
      [6, 4 * MIN],
      [7, 8 * MIN],
      [8, 16 * MIN],
      [9, 16 * MIN],
      [199, 16 * MIN],
      [200, undefined],
      [1000, undefined],
    ];
    for (const [count, delay] of table) expect(restartDelayMs(count), `crash #${count}`).toBe(delay);
  });

  it('decides now / later / never against the crash time', () => {
    const crashedAt = 1_000_000;
    expect(shouldRestart(2, crashedAt, crashedAt)).toEqual({ restart: 'now' });
    expect(shouldRestart(3, crashedAt, crashedAt + 25 * S)).toEqual({ restart: 'later', afterMs: 5 * S });
    expect(shouldRestart(3, crashedAt, crashedAt + 30 * S)).toEqual({ restart: 'now' });
    expect(shouldRestart(200, crashedAt, crashedAt + 24 * 60 * MIN)).toEqual({ restart: 'never' });
  });

  it('counts crashes up, and starts again at 1 after 5 minutes of running', () => {
    const now = 10 * MIN;
    expect(nextCrashCount(0, undefined, now)).toBe(1);
    expect(nextCrashCount(4, now - 4 * MIN, now)).toBe(5);
    expect(nextCrashCount(4, now - 5 * MIN - 1, now)).toBe(1);
  });

  it('takes a per-LRP override field by field, keeping Diego for the rest', () => {
    const policy = crashPolicyFor({ crashRestartPolicy: { maxRestarts: 5, minBackoffMs: 1000 } });
    expect(policy).toEqual({ ...DIEGO_CRASH_POLICY, maxRestarts: 5, minBackoffMs: 1000 });
    expect(restartDelayMs(3, policy)).toBe(1000);
    expect(restartDelayMs(4, policy)).toBe(2000);
    expect(restartDelayMs(5, policy)).toBeUndefined();
    expect(crashPolicyFor(undefined)).toEqual(DIEGO_CRASH_POLICY);
  });

  it('with immediateRestarts 0 never restarts at once', () => {
    const policy = crashPolicyFor({ crashRestartPolicy: { immediateRestarts: 0 } });
    expect(restartDelayMs(1, policy)).toBe(60 * S);
  });
});
