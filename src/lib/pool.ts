// Bounded concurrency for a batch of API writes, cancellable, backing off when writes fail.

export interface PoolOptions {
  /** Once aborted, no further thunk starts (those in flight finish). */
  signal?: AbortSignal;
  /**
   * A worker whose write failed waits before it takes its next one: `baseMs` doubling with each failure in a row,
   * up to `maxMs` (a failing API server is not hammered by the rest of the batch). Default: no wait.
   */
  backoff?: { baseMs: number; maxMs: number };
}

/**
 * Runs the thunks with at most `limit` in flight; a failed write is logged by its caller's retry path. A write refused
 * because this process may no longer write (FencedError) stops the batch: every other one would be refused too.
 */
export async function pool(thunks: (() => Promise<void>)[], limit: number, opts: PoolOptions = {}): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  const { signal, backoff } = opts;
  const worker = async () => {
    let failures = 0;
    while (next < thunks.length && !signal?.aborted) {
      const i = next++;
      try {
        await thunks[i]!();
        failures = 0;
      } catch (err) {
        errors.push(err);
        if (err instanceof Error && err.name === 'FencedError') next = thunks.length;
        else if (backoff) await sleep(Math.min(backoff.baseMs * 2 ** failures++, backoff.maxMs), signal);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, thunks.length) }, worker));
  if (errors.length) throw new AggregateError(errors, `${errors.length} of ${thunks.length} writes failed`);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
