import { describe, expect, it } from 'vitest';
import { LineSplitter, MAX_PARTIAL_LINE } from './lines.ts';

describe('LineSplitter', () => {
  it('splits on newlines across chunks, keeps multi-byte characters whole, flushes the last line at end', () => {
    const lines: string[] = [];
    const s = new LineSplitter((l) => lines.push(l));
    const euro = Buffer.from('€');
    s.write(Buffer.from('one\ntw'));
    s.write(Buffer.concat([Buffer.from('o '), euro.subarray(0, 1)]));
    s.write(Buffer.concat([euro.subarray(1), Buffer.from('\n\nlast')]));
    expect(lines).toEqual(['one', 'two €', '']);
    s.end();
    expect(lines.at(-1)).toBe('last');
  });

  it('passes on a line without newline once it gets too long', () => {
    const lines: string[] = [];
    const s = new LineSplitter((l) => lines.push(l));
    s.write(Buffer.alloc(MAX_PARTIAL_LINE + 1, 'x'));
    expect(lines).toHaveLength(1);
  });
});
