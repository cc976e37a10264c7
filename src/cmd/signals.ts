// Resolves on the first SIGINT or SIGTERM, so roles can shut down in order.
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(sig);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

/**
 * Resolves on the first SIGINT, SIGTERM or SIGHUP (the terminal closed), or once the parent process is gone: Node has
 * no PR_SET_PDEATHSIG, so a changed process.ppid (checked every second) means we were orphaned, e.g. `make run` was
 * killed. Listening starts at the call, so a signal during a long start-up is kept, not fatal.
 */
export function untilStopped(pollMs = 1000): Promise<string> {
  return new Promise((resolve) => {
    const parent = process.ppid;
    const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
    const done = (why: string) => {
      clearInterval(timer);
      resolve(why);
      // Not at once: a listener that stops listening while the signal is being delivered makes the next listener
      // (the control plane's last-resort cleanup) think it is alone and kill the process. A second signal after
      // this goes to those listeners: stop now.
      setImmediate(() => {
        for (const s of signals) process.off(s, done);
      });
    };
    for (const s of signals) process.on(s, done);
    const timer = setInterval(() => {
      if (process.ppid !== parent) done('parent process exited');
    }, pollMs).unref();
  });
}

/** SIGINT and SIGTERM counted from the call on; see watchSignals. */
export interface SignalWatch {
  /** Resolves on the n-th signal since the call (1 = the first), at once if it has already come. */
  nth(n: number): Promise<NodeJS.Signals>;
  /** Stops listening: the next signal has its default effect (the process ends). */
  dispose(): void;
}

/**
 * Listens for SIGINT and SIGTERM until dispose(), for a shutdown in steps where a second signal cuts a step short.
 * One listener stays installed throughout: removing one and adding the next would leave a moment with none, when a
 * signal kills the process instead of ending the step.
 */
export function watchSignals(): SignalWatch {
  const seen: NodeJS.Signals[] = [];
  const waiting: { n: number; resolve: (sig: NodeJS.Signals) => void }[] = [];
  const on = (sig: NodeJS.Signals) => {
    seen.push(sig);
    for (const w of waiting.filter((x) => x.n <= seen.length)) {
      waiting.splice(waiting.indexOf(w), 1);
      w.resolve(seen[w.n - 1]!);
    }
  };
  process.on('SIGINT', on);
  process.on('SIGTERM', on);
  return {
    nth: (n) => {
      const sig = seen[n - 1];
      return sig ? Promise.resolve(sig) : new Promise((resolve) => waiting.push({ n, resolve }));
    },
    dispose: () => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
    },
  };
}
