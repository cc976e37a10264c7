import { describe, expect, it } from 'vitest';
import { quantityBytes } from './limits.ts';

describe('quantityBytes', () => {
  it('reads Kubernetes quantities', () => {
    expect(quantityBytes('512Mi')).toBe(512 * 1024 * 1024);
    expect(quantityBytes('1Gi')).toBe(1024 ** 3);
    expect(quantityBytes('1G')).toBe(1e9);
    expect(quantityBytes('1.5Gi')).toBe(1.5 * 1024 ** 3);
    expect(quantityBytes('1048576')).toBe(1048576);
    expect(quantityBytes('lots')).toBeUndefined();
    expect(quantityBytes('10Xi')).toBeUndefined();
  });
});
