// Retries an assertion until it passes or the time is up (tests observe an eventually consistent system).
import { setTimeout as sleep } from 'node:timers/promises';

export async function eventually<T>(fn: () => Promise<T> | T, timeoutMs = 20_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(intervalMs);
    }
  }
}
