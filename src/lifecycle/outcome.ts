// What a fenced write answers (ops.ts): done, moved-on (a lost race) or refused (the rules say no), and the one
// retry policy for callers that act on a request rather than on a version they saw.
import { KubeError } from '../lib/kube.ts';
import { type DiegoClient, isAlreadyExists, isConflict, isNotFound, type KindMap } from '../lib/resources.ts';

/** Which rule refused a write. */
export type Rule =
  /** The state machine: the record's state does not allow it. */
  | 'transition'
  /** The record stands for another container (or none): the caller no longer owns it. */
  | 'instance-key'
  /** The work is not placed on the calling cell (or is placed already). */
  | 'placement'
  /** The record is a copy where an ORDINARY one is needed, or the other way round. */
  | 'presence'
  /** The task was cancelled. */
  | 'cancelled'
  /** The task runs on another cell. */
  | 'other-cell'
  /** A live cell still runs the container: its finalizer is that cell's to release. */
  | 'container';

export type Outcome<T> =
  | { outcome: 'done'; value: T }
  /** Changed since it was read (a newer version exists), gone, or (a create) there already. */
  | { outcome: 'moved-on'; why: 'changed' | 'gone' | 'exists' }
  | { outcome: 'refused'; rule: Rule; reason: string };

export const done = <T>(value: T): Outcome<T> => ({ outcome: 'done', value });
export const movedOn = <T = never>(why: 'changed' | 'gone' | 'exists'): Outcome<T> => ({ outcome: 'moved-on', why });
export const refused = <T = never>(rule: Rule, reason: string): Outcome<T> => ({ outcome: 'refused', rule, reason });

/** A write that kept losing races (after retryMovedOn gave up): the caller's caller may try again later. */
export class MovedOnError extends Error {
  constructor(what: string) {
    super(`${what}: the record kept changing`);
    this.name = 'MovedOnError';
  }
}

/** A write the rules refused, where the caller has no better answer than an error. */
export class RefusedError extends Error {
  readonly rule: Rule;
  constructor(rule: Rule, reason: string) {
    super(reason);
    this.name = 'RefusedError';
    this.rule = rule;
  }
}

/** The value of a done outcome; the others as errors (MovedOnError, RefusedError). */
export function orThrow<T>(o: Outcome<T>, what: string): T {
  if (o.outcome === 'done') return o.value;
  if (o.outcome === 'moved-on') throw new MovedOnError(what);
  throw new RefusedError(o.rule, o.reason);
}

/** The outcome of a lost race, or undefined for any other error. */
export function lostRace(err: unknown): Outcome<never> | undefined {
  if (isAlreadyExists(err)) return movedOn('exists');
  if (isConflict(err)) return movedOn('changed');
  if (isNotFound(err)) return movedOn('gone');
  return undefined;
}

/** One compare-and-swap write: its result, or the lost race as an outcome. */
export async function cas<T>(write: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return done(await write());
  } catch (err) {
    const lost = lostRace(err);
    if (lost) return lost;
    throw err;
  }
}

/**
 * An error after which a write may or may not have landed: the API server was unreachable, or answered 5xx (a
 * timeout). A 4xx answer is final, and a fenced leader never sent the write.
 */
export function uncertain(err: unknown): boolean {
  if (err instanceof KubeError) return err.code >= 500;
  return !(err instanceof Error && err.name === 'FencedError');
}

/**
 * Runs a read-check-write `step` again while it loses races (`moved-on`: changed): the step reads the record
 * itself, so its checks are made against the newest version each time. The one retry policy of callers that act on
 * a request rather than on a version they saw (the BBS routes, a cell reporting).
 */
export async function retryMovedOn<T>(step: () => Promise<Outcome<T>>, attempts = 5): Promise<Outcome<T>> {
  for (let i = 1; ; i++) {
    const o = await step();
    if (o.outcome !== 'moved-on' || o.why !== 'changed' || i >= attempts) return o;
  }
}

/** The object by name, or undefined when it is gone. */
export async function getOrUndefined<K extends 'ActualLRP' | 'Task'>(
  client: DiegoClient,
  kind: K,
  namespace: string | undefined,
  name: string,
): Promise<KindMap[K] | undefined> {
  try {
    return await client.get(kind, namespace, name);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}
