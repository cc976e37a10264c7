// The per-instance log rate limit (executor depot/log_streamer/log_rate_limiter.go). Two token buckets shared
// by stdout and stderr of every process of the instance: lines per second, set by the operator for the whole
// cell (rep max_log_lines_per_second, 0 = unlimited, Diego's default), and bytes per second, set per LRP or
// Task (log_rate_limit.bytes_per_second, -1 = unlimited, 0 = nothing at all). Each bucket holds one second's
// worth (burst = rate), like golang.org/x/time/rate with burst = limit. A line over the limit is dropped, and
// the app is told so with Diego's message at most once per second (LogRateLimitExceededLogInterval).
// The clock is a parameter so tests need not sleep.

export interface LogRateLimits {
  /** Lines per second per instance; 0 or less: unlimited. */
  linesPerSecond?: number;
  /** Bytes per second per instance; -1 (or undefined): unlimited; 0: every line is dropped, silently. */
  bytesPerSecond?: number;
}

export type LimitVerdict =
  | { allowed: true }
  /** `notice` is set when the app should be told (the first drop of each second). */
  | { allowed: false; notice?: string };

/** Diego: how often the "exceeded" message may be sent to the app's log. */
const EXCEEDED_NOTICE_INTERVAL_MS = 1000;

export const linesExceededMessage = (n: number): string =>
  `app instance exceeded log rate limit (${n} log-lines/sec) set by platform operator`;
export const bytesExceededMessage = (n: number): string => `app instance exceeded log rate limit (${n} bytes/sec)`;

class TokenBucket {
  readonly #rate: number;
  #tokens: number;
  #last: number;

  constructor(ratePerSecond: number, now: number) {
    this.#rate = ratePerSecond;
    this.#tokens = ratePerSecond;
    this.#last = now;
  }

  take(n: number, now: number): boolean {
    this.#tokens = Math.min(this.#rate, this.#tokens + ((now - this.#last) / 1000) * this.#rate);
    this.#last = now;
    if (this.#tokens < n) return false;
    this.#tokens -= n;
    return true;
  }
}

export class LogRateLimiter {
  readonly limits: Readonly<LogRateLimits>;
  readonly #now: () => number;
  readonly #lines?: TokenBucket;
  readonly #bytes?: TokenBucket;
  #lastNotice = -Infinity;
  /** Lines dropped so far. */
  dropped = 0;

  constructor(limits: LogRateLimits, now: () => number = Date.now) {
    this.limits = { ...limits };
    this.#now = now;
    const t = now();
    if ((limits.linesPerSecond ?? 0) > 0) this.#lines = new TokenBucket(limits.linesPerSecond!, t);
    if ((limits.bytesPerSecond ?? -1) > 0) this.#bytes = new TokenBucket(limits.bytesPerSecond!, t);
  }

  /** Whether a line of `bytes` bytes may be sent now (and takes its tokens when it may). */
  check(bytes: number): LimitVerdict {
    if (this.limits.bytesPerSecond === 0) {
      this.dropped++;
      return { allowed: false }; // Diego: "Not allowed to log", nothing is reported
    }
    const now = this.#now();
    let message: string | undefined;
    if (this.#bytes && !this.#bytes.take(bytes, now)) message = bytesExceededMessage(this.limits.bytesPerSecond!);
    else if (this.#lines && !this.#lines.take(1, now)) message = linesExceededMessage(this.limits.linesPerSecond!);
    if (message === undefined) return { allowed: true };
    this.dropped++;
    if (now - this.#lastNotice < EXCEEDED_NOTICE_INTERVAL_MS) return { allowed: false };
    this.#lastNotice = now;
    return { allowed: false, notice: message };
  }
}
