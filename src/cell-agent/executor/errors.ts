// The errors a step can fail with, after executor depot/steps/errors.go and emittable_error.go.
// Two properties decide how an error travels up the tree:
// * emittable — Diego's EmittableError: the message is meant for the user. emit_progress appends it to its
//   failure prefix and timeout appends it to "exceeded <d> timeout"; other errors are not shown there.
// * displayable — false for cancellation-type errors; parallel/codependent leave them out of their combined
//   message (multiErrorFormat), so a crash reason names the process that failed, not the ones we stopped.

export type StepErrorCode =
  /** A process exited with a non-zero status (`<SOURCE>: Exited with status N`). */
  | 'exit'
  /** The step was cancelled (its signal aborted) before it finished on its own. */
  | 'cancelled'
  /** Cancelled, and the process had to be SIGKILLed after the graceful shutdown interval. */
  | 'exceeded-graceful-shutdown'
  /** Even SIGKILL did not make the process exit within a second. */
  | 'exit-timeout'
  /** A timeout action ran out of time. */
  | 'timeout'
  /** A child of a codependent action exited (Diego: always an error). */
  | 'codependent-exited'
  /** Several children of parallel/codependent failed; see `errors`. */
  | 'aggregate'
  | 'download'
  | 'upload'
  /** A startup or liveness health check failed. */
  | 'health'
  /** Anything else: the process could not be started, the backend failed. */
  | 'internal';

export interface StepErrorOptions {
  emittable?: boolean;
  displayable?: boolean;
  cause?: unknown;
  exitStatus?: number;
  errors?: StepError[];
}

export class StepError extends Error {
  readonly code: StepErrorCode;
  readonly emittable: boolean;
  readonly displayable: boolean;
  readonly exitStatus: number | undefined;
  /** The collected failures of an 'aggregate' (flattened, as go-multierror's Append does). */
  readonly errors: readonly StepError[];

  constructor(code: StepErrorCode, message: string, opts: StepErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'StepError';
    this.code = code;
    this.emittable = opts.emittable ?? false;
    this.displayable = opts.displayable ?? true;
    this.exitStatus = opts.exitStatus;
    this.errors = opts.errors ?? [];
  }
}

// Diego's fixed messages (depot/steps/errors.go, codependent_step.go).
export const CANCELLED_MESSAGE = 'cancelled';
export const EXCEEDED_GRACEFUL_SHUTDOWN_MESSAGE = 'exceeded graceful shutdown interval';
export const EXIT_TIMEOUT_MESSAGE = 'process did not exit';
export const CODEPENDENT_EXITED_MESSAGE = 'Codependent step exited';

export const cancelledError = (): StepError => new StepError('cancelled', CANCELLED_MESSAGE, { displayable: false });

export const exceededGracefulShutdownError = (): StepError =>
  new StepError('exceeded-graceful-shutdown', EXCEEDED_GRACEFUL_SHUTDOWN_MESSAGE, { displayable: false });

export const exitTimeoutError = (): StepError => new StepError('exit-timeout', EXIT_TIMEOUT_MESSAGE);

export const codependentExitedError = (): StepError => new StepError('codependent-exited', CODEPENDENT_EXITED_MESSAGE);

/** Diego's NewEmittableError: a message for the user, with what really happened as the cause. */
export const emittableError = (code: StepErrorCode, message: string, cause?: unknown): StepError =>
  new StepError(code, message, { emittable: true, cause });

/** Any thrown value as a StepError (a non-StepError becomes 'internal', not emittable). */
export function toStepError(err: unknown): StepError {
  if (err instanceof StepError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new StepError('internal', message, { cause: err });
}

/**
 * go-multierror with the executor's multiErrorFormat: nested aggregates are flattened, and the message joins
 * the displayable messages with '; '. Undefined when there is nothing to report.
 */
export function aggregateErrors(errs: readonly unknown[]): StepError | undefined {
  const flat: StepError[] = [];
  for (const e of errs.map(toStepError)) {
    if (e.code === 'aggregate') flat.push(...e.errors);
    else flat.push(e);
  }
  if (flat.length === 0) return undefined;
  const message = flat
    .filter((e) => e.displayable && e.message !== '')
    .map((e) => e.message)
    .join('; ');
  return new StepError('aggregate', message, { errors: flat });
}

/** True when the error (or every error of an aggregate) only says that the step was stopped. */
export function isCancellation(err: unknown): boolean {
  if (!(err instanceof StepError)) return false;
  if (err.code === 'aggregate') return err.errors.length > 0 && err.errors.every(isCancellation);
  return !err.displayable;
}
