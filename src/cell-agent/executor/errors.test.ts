import { describe, expect, it } from 'vitest';
import {
  aggregateErrors,
  cancelledError,
  codependentExitedError,
  emittableError,
  exceededGracefulShutdownError,
  isCancellation,
  StepError,
  toStepError,
} from './errors.ts';

describe('step errors', () => {
  it('joins displayable messages with "; " and flattens nested aggregates (multiErrorFormat)', () => {
    const inner = aggregateErrors([emittableError('exit', 'A: Exited with status 1'), cancelledError()]);
    const outer = aggregateErrors([inner, codependentExitedError(), exceededGracefulShutdownError()]);
    expect(outer?.message).toBe('A: Exited with status 1; Codependent step exited');
    expect(outer?.errors.map((e) => e.code)).toEqual([
      'exit',
      'cancelled',
      'codependent-exited',
      'exceeded-graceful-shutdown',
    ]);
    expect(outer?.emittable).toBe(false);
    expect(aggregateErrors([])).toBeUndefined();
  });

  it('tells cancellations apart', () => {
    expect(isCancellation(cancelledError())).toBe(true);
    expect(isCancellation(aggregateErrors([cancelledError(), exceededGracefulShutdownError()]))).toBe(true);
    expect(isCancellation(aggregateErrors([cancelledError(), codependentExitedError()]))).toBe(false);
    expect(isCancellation(new Error('x'))).toBe(false);
  });

  it('wraps foreign errors as internal, non-emittable', () => {
    const err = toStepError(new Error('boom'));
    expect(err).toBeInstanceOf(StepError);
    expect(err).toMatchObject({ code: 'internal', message: 'boom', emittable: false, displayable: true });
    expect(toStepError('text').message).toBe('text');
  });
});
