import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { startOpsServer, type OpsServer } from '../../lib/metrics.ts';
import type { LogEnvelope } from './envelope.ts';
import { LogHub } from './hub.ts';
import { InstanceLog } from './instance-log.ts';
import { registerLogRoutes } from './stream-server.ts';

let server: OpsServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const quiet = pino({ level: 'silent' });

function instanceLog(hub: LogHub, extra: Partial<ConstructorParameters<typeof InstanceLog>[0]> = {}) {
  return new InstanceLog({
    cellId: 'cell-1',
    containerGuid: 'ig-1',
    logGuid: 'apps/log-guid', // the hub's key: namespace/logGuid
    tags: { source_id: 'log-guid', instance_id: '2', app_id: 'app' },
    sourceName: 'CELL',
    limits: {},
    hub,
    log: quiet,
    ...extra,
  });
}

/** Reads NDJSON envelopes from a streaming response until `n` arrived. */
async function readLines(res: Response, n: number): Promise<LogEnvelope[]> {
  const out: LogEnvelope[] = [];
  const decoder = new TextDecoder();
  let buffered = '';
  const reader = res.body!.getReader();
  while (out.length < n) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += decoder.decode(value, { stream: true });
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      out.push(JSON.parse(buffered.slice(0, nl)) as LogEnvelope);
      buffered = buffered.slice(nl + 1);
    }
  }
  await reader.cancel();
  return out;
}

describe('instance log and log stream endpoint', () => {
  it('tags app, health and cell lines like Diego and streams them to a follower of the log guid', async () => {
    const hub = new LogHub();
    server = await startOpsServer({ port: 0, routes: (app) => registerLogRoutes(app, hub) });
    const log = instanceLog(hub);
    log.lifecycle('creating'); // before the follower: only in the recent lines

    const res = await fetch(`${server.url}/v1/logs/log-guid?follow=true`);
    expect(res.headers.get('content-type')).toBe('application/x-ndjson');
    await expect.poll(() => hub.subscriberCount('apps/log-guid')).toBe(1);
    const app = log.streamer.withSource('APP/PROC/WEB');
    app.stdout('hello\nworld');
    app.stderr('oops');
    log.streamer.withSource('HEALTH').stdout('Container became healthy');
    log.lifecycle('stopping');
    const lines = await readLines(res, 5);
    expect(lines.map((e) => [e.tags.source_type, e.log.type, e.log.payload])).toEqual([
      ['APP/PROC/WEB', 'OUT', 'hello'],
      ['APP/PROC/WEB', 'OUT', 'world'],
      ['APP/PROC/WEB', 'ERR', 'oops'],
      ['HEALTH', 'OUT', 'Container became healthy'],
      ['CELL', 'OUT', 'Cell cell-1 stopping instance ig-1'],
    ]);
    for (const e of lines) {
      expect(e).toMatchObject({ source_id: 'log-guid', instance_id: '2', tags: { app_id: 'app' } });
    }
    await expect.poll(() => hub.subscriberCount('apps/log-guid')).toBe(0); // the follower hung up

    // Recent logs: everything so far, oldest first, then the end of the response.
    const recent = (await (await fetch(`${server.url}/v1/logs/log-guid`)).text()).trim().split('\n');
    expect(recent.map((l) => (JSON.parse(l) as LogEnvelope).log.payload)).toEqual([
      'Cell cell-1 creating container for instance ig-1',
      'hello',
      'world',
      'oops',
      'Container became healthy',
      'Cell cell-1 stopping instance ig-1',
    ]);
    expect(await (await fetch(`${server.url}/v1/logs/unknown`)).text()).toBe('');
  });

  it('sends the recent lines first when a follower asks for them, and closing the server ends followers', async () => {
    const hub = new LogHub();
    server = await startOpsServer({ port: 0, routes: (app) => registerLogRoutes(app, hub) });
    const log = instanceLog(hub);
    log.streamer.stdout('earlier');
    const res = await fetch(`${server.url}/v1/logs/log-guid?follow=true&recent=true`);
    await expect.poll(() => hub.subscriberCount('apps/log-guid')).toBe(1);
    log.streamer.stdout('later');
    expect((await readLines(res, 2)).map((e) => e.log.payload)).toEqual(['earlier', 'later']);
    const again = await fetch(`${server.url}/v1/logs/log-guid?follow=1`);
    await expect.poll(() => hub.subscriberCount('apps/log-guid')).toBe(1);
    await server.close(); // does not wait for the follower forever
    server = undefined;
    expect(await again.text()).toBe('');
  });

  it('cuts app lines to the rate limit with the notice, but never the cell lines', () => {
    const hub = new LogHub();
    let exceeded = 0;
    const t = 5_000;
    const log = instanceLog(hub, { limits: { linesPerSecond: 3 }, now: () => t, onExceeded: () => exceeded++ });
    for (let i = 0; i < 10; i++) log.streamer.withSource('APP/PROC/WEB').stdout(`line ${i}`);
    log.lifecycle('destroying');
    expect(hub.recent('apps/log-guid').map((e) => `${e.tags.source_type}: ${e.log.payload}`)).toEqual([
      'APP/PROC/WEB: line 0',
      'APP/PROC/WEB: line 1',
      'APP/PROC/WEB: line 2',
      'APP/PROC/WEB: app instance exceeded log rate limit (3 log-lines/sec) set by platform operator',
      'CELL: Cell cell-1 destroying container for instance ig-1',
    ]);
    expect(exceeded).toBe(1);
    expect(log.limiter.dropped).toBe(7);
    expect(log.bytesEmitted).toBe(3 * 'line 0'.length); // what got through, for the log_rate metric
  });
});
