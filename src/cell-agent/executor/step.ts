// A step is one node of the executor's step tree (Diego: an ifrit.Runner). perform() resolves when the step
// succeeded and rejects with a StepError otherwise. Aborting the signal is Diego's os.Interrupt: the step
// stops what it is doing (SIGTERM, then SIGKILL for processes) and rejects, usually with 'cancelled'.
// ready() is Diego's ready channel: a run step is ready once its process is started, a health check once the
// startup check passed, serial once its last step is, parallel/codependent once all are. The rep marks an
// instance RUNNING when the whole tree is ready.
import { cancelledError } from './errors.ts';

export type Ready = () => void;

export interface Step {
  perform(signal: AbortSignal, ready?: Ready): Promise<void>;
}

/** A controller whose signal also aborts when the parent's does (for steps that cancel their children). */
export function childController(parent: AbortSignal): { controller: AbortController; signal: AbortSignal } {
  const controller = new AbortController();
  return { controller, signal: AbortSignal.any([parent, controller.signal]) };
}

/** Calls ready once all n parts have called theirs (at once when n is 0). Returns one callback per part. */
export function readyWhenAll(n: number, ready: Ready | undefined): Ready[] {
  let pending = n;
  if (n === 0) ready?.();
  return Array.from({ length: n }, () => {
    let called = false;
    return () => {
      if (called) return;
      called = true;
      if (--pending === 0) ready?.();
    };
  });
}

/** Resolves after ms, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Resolves when the signal aborts (never, if it doesn't); `dispose` removes the listener. */
export function aborted(signal: AbortSignal): { promise: Promise<void>; dispose: () => void } {
  let dispose = () => {};
  const promise = new Promise<void>((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const onAbort = () => resolve();
    signal.addEventListener('abort', onAbort, { once: true });
    dispose = () => signal.removeEventListener('abort', onAbort);
  });
  return { promise, dispose };
}

/** A counting semaphore (Diego bounds concurrent downloads and uploads with buffered channels). */
export class Semaphore {
  #available: number;
  readonly #waiters: (() => void)[] = [];

  constructor(size: number) {
    this.#available = size;
  }

  /** Waits for a slot; rejects with the signal's reason if it aborts while waiting. Returns the release function. */
  acquire(signal?: AbortSignal): Promise<() => void> {
    const release = once(() => {
      const next = this.#waiters.shift();
      if (next) next();
      else this.#available++;
    });
    if (this.#available > 0) {
      this.#available--;
      return Promise.resolve(release);
    }
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason as Error);
        return;
      }
      const grant = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve(release);
      };
      const onAbort = () => {
        const i = this.#waiters.indexOf(grant);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(signal?.reason as Error);
      };
      this.#waiters.push(grant);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}

function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    fn();
  };
}

/** Runs `fn` holding a slot of `limiter` (if any); waiting for the slot ends with Diego's cancelled error. */
export async function withLimiter<T>(
  limiter: Semaphore | undefined,
  signal: AbortSignal,
  fn: () => Promise<T>,
): Promise<T> {
  let release = () => {};
  if (limiter) {
    try {
      release = await limiter.acquire(signal);
    } catch {
      throw cancelledError();
    }
  }
  try {
    return await fn();
  } finally {
    release();
  }
}
