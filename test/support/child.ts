// Waiting on a child process a test started, always with a bound: a test that waits for good on a child that hangs
// times out without reaching its cleanup, and the child, still running (and perhaps holding the run's output),
// keeps the test command from ending (CI once waited out its 90 minutes on one). A bound fails with a message that
// names the child; the caller then kills it.
import type { ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';

/** It has not exited yet (no exit code, no signal). */
export const running = (child: ChildProcess): boolean => child.exitCode === null && child.signalCode === null;

/** Its exit code and signal once it has exited, or a failure once `ms` have passed (or if it could not start). */
export function exitOf(
  child: ChildProcess,
  ms: number,
  what = 'child process',
): Promise<[number | null, NodeJS.Signals | null]> {
  if (!running(child)) return Promise.resolve([child.exitCode, child.signalCode]);
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      child.off('exit', onExit);
      child.off('error', onError);
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
      done();
      resolve([code, signal]);
    };
    const onError = (err: Error) => {
      done();
      reject(new Error(`${what}: ${err.message}`, { cause: err }));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`${what} (pid ${child.pid}) still running ${ms} ms later`));
    }, ms);
    child.once('exit', onExit);
    child.once('error', onError);
  });
}

/**
 * Reads `stream` (the child's stdout or stderr) until `match` finds what it waits for in the text so far, and
 * returns what it found; fails if the child exits (or cannot start) first, or once `ms` have passed. Later output is
 * dropped.
 */
export function outputOf<T>(
  child: ChildProcess,
  stream: Readable,
  match: (text: string) => T | undefined,
  ms: number,
  what = 'child process',
): Promise<T> {
  return new Promise((resolve, reject) => {
    let text = '';
    const done = () => {
      clearTimeout(timer);
      stream.off('data', onData);
      child.off('exit', onExit);
      child.off('error', onError);
    };
    const onData = (d: Buffer) => {
      text += d.toString();
      const found = match(text);
      if (found === undefined) return;
      done();
      resolve(found);
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
      done();
      reject(new Error(`${what} exited (${signal ?? code}) before it was ready: ${text}`));
    };
    const onError = (err: Error) => {
      done();
      reject(new Error(`${what}: ${err.message}`, { cause: err }));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`${what} (pid ${child.pid}) not ready ${ms} ms later: ${text}`));
    }, ms);
    stream.on('data', onData);
    child.once('exit', onExit);
    child.once('error', onError);
    if (!running(child)) onExit(child.exitCode, child.signalCode);
  });
}
