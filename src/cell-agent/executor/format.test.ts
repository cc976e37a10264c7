import { describe, expect, it } from 'vitest';
import { byteSize, goDuration } from './format.ts';

describe('goDuration (Go time.Duration.String)', () => {
  it.each([
    [0, '0s'],
    [0.0005, '500ns'],
    [0.25, '250µs'],
    [1.5, '1.5ms'],
    [200, '200ms'],
    [1_000, '1s'],
    [1_500, '1.5s'],
    [1_003, '1.003s'],
    [10_000, '10s'],
    [60_000, '1m0s'],
    [90_000, '1m30s'],
    [3_600_000, '1h0m0s'],
    [3_723_004, '1h2m3.004s'],
    [-1_500, '-1.5s'],
  ])('%d ms → %s', (ms, text) => {
    expect(goDuration(ms)).toBe(text);
  });
});

describe('byteSize (bytefmt.ByteSize)', () => {
  it.each([
    [0, '0B'],
    [512, '512B'],
    [1024, '1K'],
    [1536, '1.5K'],
    [14000, '13.7K'],
    [10 * 2 ** 20, '10M'],
    [12.5 * 2 ** 20, '12.5M'],
    [3 * 2 ** 30, '3G'],
  ])('%d → %s', (n, text) => {
    expect(byteSize(n)).toBe(text);
  });
});
