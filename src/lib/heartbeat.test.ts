import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { Heartbeat } from './heartbeat.ts';

describe('Heartbeat', () => {
  it('never runs two beats at once when a beat takes longer than the interval, and goes on after a failure', async () => {
    let inFlight = 0;
    let most = 0;
    let beats = 0;
    const errors: unknown[] = [];
    const hb = new Heartbeat(
      async () => {
        inFlight++;
        most = Math.max(most, inFlight);
        beats++;
        await sleep(60); // slower than the interval
        inFlight--;
        if (beats === 2) throw new Error('renewal failed');
      },
      10,
      (err) => errors.push(err),
    );
    hb.start();
    await expect.poll(() => beats, { timeout: 10_000 }).toBeGreaterThanOrEqual(4);
    await hb.stop();
    expect(most).toBe(1);
    expect(errors).toHaveLength(1);
    // Stopped: no beat in flight and none after.
    expect(inFlight).toBe(0);
    const after = beats;
    await sleep(100);
    expect(beats).toBe(after);
  });
});
