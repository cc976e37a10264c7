import { describe, expect, it } from 'vitest';
import { advertisedOpsUrl } from './presence.ts';

describe('advertisedOpsUrl', () => {
  it('keeps a loopback or named listening URL', () => {
    expect(advertisedOpsUrl('http://127.0.0.1:17008', '127.0.0.1', '10.0.0.5')).toBe('http://127.0.0.1:17008');
  });
  it("puts the cell's address in place of a wildcard host", () => {
    expect(advertisedOpsUrl('https://127.0.0.1:17008', '0.0.0.0', '10.0.0.5')).toBe('https://10.0.0.5:17008');
    expect(advertisedOpsUrl('https://[::1]:17008', '::', 'fd00::5')).toBe('https://[fd00::5]:17008');
  });
  it('keeps the listening URL when the address is unknown', () => {
    expect(advertisedOpsUrl('http://127.0.0.1:17008', '0.0.0.0', undefined)).toBe('http://127.0.0.1:17008');
  });
});
