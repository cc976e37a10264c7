// A token bucket for a client's requests to the API server, as client-go's flowcontrol limiter: `qps` a second on
// average, up to `burst` at once, callers served in arrival order. It keeps one process's bulk writes (a large
// scale-up, a mass restart) from flooding the API server; the server's own priority and fairness protects the rest.
import { setTimeout as sleep } from 'node:timers/promises';

export interface RateLimit {
  /** Requests a second on average; 0 or less: no limit. */
  qps: number;
  /** Requests allowed at once after an idle period (at least 1). */
  burst: number;
}

export class TokenBucket {
  readonly qps: number;
  readonly burst: number;
  private tokens: number;
  private last: number;
  private tail: Promise<void> = Promise.resolve();
  private readonly now: () => number;

  constructor(limit: RateLimit, now: () => number = () => performance.now()) {
    this.qps = limit.qps;
    this.burst = Math.max(1, Math.floor(limit.burst));
    this.now = now;
    this.tokens = this.burst;
    this.last = now();
  }

  /** Resolves when the caller may send its request; the milliseconds it waited. */
  take(): Promise<number> {
    const start = this.now();
    const turn = this.tail.then(() => this.next()).then(() => this.now() - start);
    this.tail = turn.then(
      () => undefined,
      () => undefined,
    );
    return turn;
  }

  private async next(): Promise<void> {
    for (;;) {
      const t = this.now();
      this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) * this.qps) / 1000);
      this.last = t;
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      await sleep(Math.max(1, Math.ceil(((1 - this.tokens) * 1000) / this.qps)));
    }
  }
}
