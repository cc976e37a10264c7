import { describe, expect, it } from 'vitest';
import { LogStreamer, MAX_MESSAGE_SIZE, type LogMessage } from './log.ts';

describe('LogStreamer', () => {
  it('defaults the source to LOG and derives streamers for action log sources', () => {
    const logs: LogMessage[] = [];
    const log = new LogStreamer((m) => logs.push(m));
    log.stdout('a');
    log.withSource('APP').stderr('b');
    log.withSource(undefined).stdout('c');
    log.withSource('').stdout('d');
    expect(logs.map((m) => `${m.source}/${m.stream}/${m.line}`)).toEqual([
      'LOG/stdout/a',
      'APP/stderr/b',
      'LOG/stdout/c',
      'LOG/stdout/d',
    ]);
  });

  it("emits one message per line and splits lines longer than Diego's maximum message size", () => {
    const logs: LogMessage[] = [];
    const log = new LogStreamer((m) => logs.push(m), 'APP');
    log.stdout('one\ntwo\n');
    log.stdout('\n\r\n'); // empty messages are dropped
    log.stdout('progress 1\rprogress 2');
    log.stdout('é'.repeat(MAX_MESSAGE_SIZE)); // two bytes each
    expect(logs.slice(0, 4).map((m) => m.line)).toEqual(['one', 'two', 'progress 1', 'progress 2']);
    expect(logs.slice(4).map((m) => Buffer.byteLength(m.line))).toEqual([MAX_MESSAGE_SIZE, MAX_MESSAGE_SIZE]);
  });
});
