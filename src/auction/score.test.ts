import { describe, expect, it } from 'vitest';
import { LOCALITY_OFFSET, resourceScore, scoreForLrp, scoreForTask } from './score.ts';

describe('resourceScore', () => {
  it('is the mean of the fractions used after placing the request', () => {
    // memory 1 - 40/100 = 0.6, disk 1 - 150/200 = 0.25, containers 1 - 9/10 = 0.1
    expect(resourceScore(50, 160, 10, 100, 200, 10, 10, 10)).toBeCloseTo((0.6 + 0.25 + 0.1) / 3, 12);
    expect(resourceScore(100, 100, 100, 100, 100, 100, 0, 0)).toBeCloseTo(0.01 / 3, 12);
  });

  it('treats a zero total as fully used instead of dividing by zero', () => {
    expect(resourceScore(0, 100, 10, 0, 100, 10, 0, 0)).toBeCloseTo((1 + 0 + 0.1) / 3, 12);
  });
});

describe('scoreForLrp / scoreForTask', () => {
  it('adds starting containers, locality and bin-pack index', () => {
    expect(LOCALITY_OFFSET).toBe(1000);
    expect(scoreForLrp(0.5, 2, 0.25, 0, 0, 0)).toBe(1);
    expect(scoreForLrp(0.5, 2, 0.25, 3, 0, 0)).toBe(3001);
    expect(scoreForLrp(0.5, 0, 0.25, 0, 4, 0.5)).toBe(2.5);
    expect(scoreForTask(0.5, 2, 0.25, 2)).toBe(2001);
  });

  it('makes any co-located instance outweigh resource balance', () => {
    const emptyButBusy = scoreForLrp(0.99, 3, 0.25, 0, 0, 0);
    const idleWithOne = scoreForLrp(0.01, 0, 0.25, 1, 0, 0);
    expect(emptyButBusy).toBeLessThan(idleWithOne);
  });
});
