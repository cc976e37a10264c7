import { describe, expect, it } from 'vitest';
import { withDefaults } from './options.ts';

describe('withDefaults', () => {
  it('keeps a default when the option is given as undefined', () => {
    expect(withDefaults({ intervalMs: 30_000, n: 1 }, { intervalMs: undefined, n: 2 })).toEqual({
      intervalMs: 30_000,
      n: 2,
    });
  });
});
