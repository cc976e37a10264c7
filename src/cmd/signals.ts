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
