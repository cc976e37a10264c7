import { describe, expect, it } from 'vitest';
import { logEnvelope, type LogEnvelope } from './envelope.ts';
import { LogHub } from './hub.ts';
import { RingBuffer } from './ring.ts';

const line = (guid: string, payload: string): LogEnvelope =>
  logEnvelope({ source_id: guid, instance_id: '0' }, 'APP/PROC/WEB', 'OUT', payload);

describe('RingBuffer', () => {
  it('keeps the last N items, oldest first', () => {
    const ring = new RingBuffer<number>(3);
    expect(ring.toArray()).toEqual([]);
    for (let i = 1; i <= 7; i++) ring.push(i);
    expect(ring.toArray()).toEqual([5, 6, 7]);
    expect(ring.size).toBe(3);
    expect(() => new RingBuffer(0)).toThrow(/capacity must be ≥ 1/);
  });
});

describe('LogHub', () => {
  it('fans envelopes out to the subscribers of their log guid only', () => {
    const hub = new LogHub();
    const a: string[] = [];
    const a2: string[] = [];
    const b: string[] = [];
    const stopA = hub.subscribe('app-a', (e) => a.push(e.log.payload));
    hub.subscribe('app-a', (e) => a2.push(e.log.payload));
    hub.subscribe('app-b', (e) => b.push(e.log.payload));
    hub.publish('app-a', line('app-a', 'one'));
    hub.publish('app-b', line('app-b', 'two'));
    stopA();
    hub.publish('app-a', line('app-a', 'three'));
    expect(a).toEqual(['one']);
    expect(a2).toEqual(['one', 'three']);
    expect(b).toEqual(['two']);
    expect(hub.subscriberCount('app-a')).toBe(1);
  });

  it('keeps the recent lines per log guid, and forgets the least recently written guid first', () => {
    const hub = new LogHub({ recentLines: 2, maxLogGuids: 2 });
    hub.publish('a', line('a', '1'));
    hub.publish('a', line('a', '2'));
    hub.publish('a', line('a', '3'));
    hub.publish('b', line('b', 'x'));
    expect(hub.recent('a').map((e) => e.log.payload)).toEqual(['2', '3']);
    hub.publish('a', line('a', '4')); // a is now the most recently written
    hub.publish('c', line('c', 'y')); // evicts b
    expect(hub.recent('b')).toEqual([]);
    expect(hub.recent('a').map((e) => e.log.payload)).toEqual(['3', '4']);
    expect(hub.recent('c')).toHaveLength(1);
  });

  it('keeps publishing when a subscriber throws', () => {
    const hub = new LogHub();
    const seen: string[] = [];
    hub.subscribe('a', () => {
      throw new Error('broken pipe');
    });
    hub.subscribe('a', (e) => seen.push(e.log.payload));
    hub.publish('a', line('a', 'still here'));
    expect(seen).toEqual(['still here']);
  });
});
