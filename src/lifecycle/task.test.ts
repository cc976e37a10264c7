import { describe, expect, it } from 'vitest';
import {
  allows,
  canTransition,
  completedStatus,
  rejectedStatus,
  TASK_EVENTS,
  TASK_STATES,
  type TaskState,
} from './task.ts';
import { task } from './testing.ts';

const NOW = new Date(Date.UTC(2026, 0, 2, 3, 4, 5));
const AT = '2026-01-02T03:04:05.000Z';

describe('the Task state machine', () => {
  it("has Diego's ValidateTransitionTo moves, and the db operations' moves around it, and nothing else", () => {
    const pairs = TASK_STATES.flatMap((from) =>
      TASK_STATES.filter((to) => canTransition(from, to)).map((to) => `${from}→${to}`),
    );
    expect(pairs.sort()).toEqual(
      [
        'Pending→Running', // StartTask
        'Running→Completed', // CompleteTask
        'Completed→Resolving', // ResolvingTask
        'Pending→Completed', // FailTask, CancelTask, expiry, invalid
        'Pending→Pending', // RejectTask
        'Running→Pending', // RejectTask
        'Resolving→Completed', // the kick of a stalled resolver
      ].sort(),
    );
  });

  it('each event starts only from its states', () => {
    const from = (e: keyof typeof TASK_EVENTS) => TASK_STATES.filter((s: TaskState) => allows(e, s));
    expect(from('start')).toEqual(['Pending']);
    expect(from('complete')).toEqual(['Running']);
    expect(from('fail')).toEqual(['Pending', 'Running']);
    expect(from('reject')).toEqual(['Pending', 'Running']);
    expect(from('resolve')).toEqual(['Completed']);
    expect(from('demote')).toEqual(['Resolving']);
    expect(from('delete')).toEqual(['Resolving']);
    expect(from('expire')).toEqual(['Completed']);
  });
});

describe('task status builders', () => {
  it('completion clears the cell, stamps the first completion, and keeps 1024 characters of a failure', () => {
    expect(completedStatus({ failed: true, failureReason: 'z'.repeat(2000), result: 'ignored' }, NOW)).toEqual({
      state: 'Completed',
      failed: true,
      failureReason: 'z'.repeat(1024),
      result: null,
      cellId: null,
      updatedAt: AT,
      firstCompletedAt: AT,
    });
    expect(completedStatus({ failed: false, result: 'ok' }, NOW)).toMatchObject({ failureReason: null, result: 'ok' });
  });

  it('a rejection counts and goes back to Pending, and fails the task once it was rejected max-retries times', () => {
    expect(rejectedStatus(task('Running', { cellId: 'c' }), 'no room', 3, NOW)).toEqual({
      rejectionCount: 1,
      rejectionReason: 'no room',
      state: 'Pending',
      cellId: null,
      updatedAt: AT,
    });
    const tired = task('Pending');
    tired.status!.rejectionCount = 3;
    expect(rejectedStatus(tired, 'no room', 3, NOW)).toMatchObject({
      state: 'Completed',
      failed: true,
      failureReason: 'no room',
      rejectionCount: 4,
    });
  });
});
