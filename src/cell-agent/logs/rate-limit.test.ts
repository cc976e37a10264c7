import { describe, expect, it } from 'vitest';
import { bytesExceededMessage, linesExceededMessage, LogRateLimiter } from './rate-limit.ts';

/** A clock the test moves by hand. */
function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('LogRateLimiter', () => {
  it('lets everything through when no limit is set (Diego: max_log_lines_per_second 0, bytes -1)', () => {
    const limiter = new LogRateLimiter({ linesPerSecond: 0, bytesPerSecond: -1 });
    for (let i = 0; i < 10_000; i++) expect(limiter.check(100).allowed).toBe(true);
    expect(limiter.dropped).toBe(0);
  });

  it("allows a second's worth of lines at once, then drops, and tells the app once per second with Diego's words", () => {
    const c = clock();
    const limiter = new LogRateLimiter({ linesPerSecond: 5 }, c.now);
    const verdicts = Array.from({ length: 8 }, () => limiter.check(10));
    expect(verdicts.filter((v) => v.allowed)).toHaveLength(5);
    const notices = verdicts.flatMap((v) => (!v.allowed && v.notice ? [v.notice] : []));
    expect(notices).toEqual(['app instance exceeded log rate limit (5 log-lines/sec) set by platform operator']);
    expect(limiter.dropped).toBe(3);

    // Tokens come back at the rate: 200 ms later one more line passes, the next is dropped without a notice.
    c.advance(200);
    expect(limiter.check(10).allowed).toBe(true);
    expect(limiter.check(10)).toEqual({ allowed: false });

    // A second after the last notice the app is told again.
    c.advance(800);
    const again = Array.from({ length: 5 }, () => limiter.check(10));
    expect(again.filter((v) => v.allowed)).toHaveLength(4); // 800 ms bring 4 tokens
    expect(again[4]).toEqual({ allowed: false, notice: linesExceededMessage(5) });
  });

  it('limits bytes per second per LRP, with the bytes message', () => {
    const c = clock();
    const limiter = new LogRateLimiter({ bytesPerSecond: 100 }, c.now);
    expect(limiter.check(60).allowed).toBe(true);
    expect(limiter.check(60)).toEqual({ allowed: false, notice: bytesExceededMessage(100) });
    expect(bytesExceededMessage(100)).toBe('app instance exceeded log rate limit (100 bytes/sec)');
    c.advance(600);
    expect(limiter.check(60).allowed).toBe(true);
  });

  it('drops every line silently when the byte limit is 0', () => {
    const limiter = new LogRateLimiter({ bytesPerSecond: 0 });
    expect(limiter.check(1)).toEqual({ allowed: false });
    expect(limiter.dropped).toBe(1);
  });

  it('never holds more than one second of tokens', () => {
    const c = clock();
    const limiter = new LogRateLimiter({ linesPerSecond: 3 }, c.now);
    c.advance(60_000);
    expect([1, 2, 3, 4].map(() => limiter.check(1).allowed)).toEqual([true, true, true, false]);
  });
});
