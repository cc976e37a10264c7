// The SSE framing of one stream, its cell filter, and what happens to a client that stops reading.
import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import type { BbsEvent } from './event-calc.ts';
import { eventRoutes, MAX_PENDING_EVENTS, sseFrame, SseStream } from './event-routes.ts';

/** Just enough of a ServerResponse to watch what a stream writes. */
class FakeResponse extends EventEmitter {
  headersSent = false;
  destroyed = false;
  writableNeedDrain = false;
  status = 0;
  headers: Record<string, string> = {};
  written = '';
  endedWith: string | undefined;
  writeHead(status: number, headers: Record<string, string>) {
    this.status = status;
    this.headers = headers;
    this.headersSent = true;
  }
  flushHeaders() {}
  write(s: string) {
    this.written += s;
    return !this.writableNeedDrain;
  }
  end() {
    this.endedWith = 'end';
  }
  destroy() {
    this.destroyed = true;
  }
}

const ev = (name: string, cellIds?: string[]): BbsEvent => ({ name, cellIds, payload: () => 'CgR3ZWI=' });

function stream(cellId = '') {
  const res = new FakeResponse();
  let slow = 0;
  const s = new SseStream(
    res as unknown as ServerResponse,
    eventRoutes['/v1/events/lrp_instances.r1']!,
    cellId,
    () => slow++,
  );
  return { res, s, slow: () => slow };
}

describe('SSE stream', () => {
  it('writes 200 with the event-stream headers and go-sse frames with ids from 0', () => {
    const { res, s } = stream();
    s.open();
    expect(res.status).toBe(200);
    expect(res.headers['Content-Type']).toBe('text/event-stream; charset=utf-8');
    s.deliver(ev('desired_lrp_created'));
    s.deliver(ev('actual_lrp_instance_created', ['c']));
    expect(res.written).toBe(
      'id: 0\nevent: desired_lrp_created\ndata: CgR3ZWI=\n\nid: 1\nevent: actual_lrp_instance_created\ndata: CgR3ZWI=\n\n',
    );
    expect(sseFrame(3, 'task_created', '')).toBe('id: 3\nevent: task_created\ndata\n\n');
  });

  it("keeps only the cell's actual LRP events, and every desired LRP event", () => {
    const { res, s } = stream('cell-a');
    s.deliver(ev('actual_lrp_instance_created', ['']));
    s.deliver(ev('actual_lrp_instance_changed', ['cell-b']));
    s.deliver(ev('actual_lrp_crashed', ['cell-a']));
    s.deliver(ev('desired_lrp_removed'));
    expect([...res.written.matchAll(/event: (\S+)/g)].map((x) => x[1])).toEqual([
      'actual_lrp_crashed',
      'desired_lrp_removed',
    ]);
    expect(res.written).toMatch(/^id: 0\n/);
  });

  it('drops a client more than MAX_PENDING_EVENTS behind instead of buffering without bound', () => {
    const { res, s, slow } = stream();
    res.writableNeedDrain = true;
    for (let i = 0; i < MAX_PENDING_EVENTS; i++) s.deliver(ev('desired_lrp_changed'));
    expect(res.destroyed).toBe(false);
    res.emit('drain'); // it caught up once: the count starts again
    for (let i = 0; i < MAX_PENDING_EVENTS; i++) s.deliver(ev('desired_lrp_changed'));
    expect(res.destroyed).toBe(false);
    s.deliver(ev('desired_lrp_changed'));
    expect(res.destroyed).toBe(true);
    expect(slow()).toBe(1);
    const written = res.written.length;
    s.deliver(ev('desired_lrp_changed'));
    expect(res.written.length).toBe(written);
  });

  it('ends the response (the terminating chunk) when the hub closes', () => {
    const { res, s } = stream();
    s.close();
    expect(res.endedWith).toBe('end');
    expect(res.status).toBe(200);
  });
});
