import { KubeConfig } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { advertisedOpsUrl, untilRegistrable } from './presence.ts';

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

describe('untilRegistrable', () => {
  const quiet = { info: () => undefined, warn: () => undefined };

  it('ends its wait between tries as soon as its signal aborts (the agent stopped while waiting for the cluster)', async () => {
    const stop = new AbortController();
    let tries = 0;
    const waiting = untilRegistrable(
      new KubeConfig(),
      'diego-system',
      () => {
        tries++;
        stop.abort(); // stopped while this try fails
        return Promise.reject(new Error('connect ECONNREFUSED'));
      },
      quiet,
      { retryMs: 3_600_000, signal: stop.signal },
    );
    await expect(waiting).rejects.toThrow(/stopped while waiting/);
    expect(tries).toBe(1);
  });
});
