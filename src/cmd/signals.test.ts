// As Node calls a signal listener: with the signal's name (process.emit stands in for a real signal).
import { afterEach, describe, expect, it } from 'vitest';
import { watchSignals, type SignalWatch } from './signals.ts';

describe('watchSignals', () => {
  let watch: SignalWatch | undefined;
  afterEach(() => watch?.dispose());

  it('counts signals from the call on; nth resolves on the n-th, at once when it already came', async () => {
    watch = watchSignals();
    const first = watch.nth(1);
    const second = watch.nth(2);
    process.emit('SIGTERM', 'SIGTERM');
    expect(await first).toBe('SIGTERM');
    let secondCame = false;
    void second.then(() => (secondCame = true));
    await Promise.resolve();
    expect(secondCame).toBe(false);
    process.emit('SIGINT', 'SIGINT');
    expect(await second).toBe('SIGINT');
    // Asked for after they came: answered at once.
    expect(await watch.nth(1)).toBe('SIGTERM');
    expect(await watch.nth(2)).toBe('SIGINT');
  });

  it('keeps one listener from the call to dispose(), so there is never a moment without one', () => {
    const before = process.listenerCount('SIGINT');
    watch = watchSignals();
    process.emit('SIGINT', 'SIGINT');
    process.emit('SIGINT', 'SIGINT');
    expect(process.listenerCount('SIGINT')).toBe(before + 1);
    watch.dispose();
    expect(process.listenerCount('SIGINT')).toBe(before);
    watch = undefined;
  });
});
