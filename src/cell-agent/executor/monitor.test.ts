import { existsSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { eventually, failure, loopback, sh, testCell, type Loopback, type TestCell } from '../testing.ts';
import { buildStep } from './build.ts';
import { probesFromChecks } from './health.ts';
import { LogStreamer } from './log.ts';
import { MonitorStep, monitorReadiness } from './monitor.ts';

let cell: TestCell;
beforeEach(async () => {
  cell = await testCell();
});
afterEach(() => cell.cleanup());

/** A monitor action that passes while <container>/healthy exists, and says so. */
function monitor(startTimeoutMs = 0) {
  return new MonitorStep({
    check: (buffer: LogStreamer) =>
      buildStep(sh('echo checking; test -e healthy'), cell.ctx({ log: buffer, suppressExitStatusCode: true })),
    log: cell.log,
    startTimeoutMs,
    unhealthyIntervalMs: 20,
    healthyIntervalMs: 50,
  });
}

describe('legacy monitor action', () => {
  it('is ready once the action first exits 0, and fails the instance when it stops passing', async () => {
    const root = path.join(cell.dir, 'containers', cell.container.handle);
    let ready = false;
    const run = monitor().perform(new AbortController().signal, () => (ready = true));
    await new Promise((r) => setTimeout(r, 100));
    expect(ready).toBe(false);
    writeFileSync(path.join(root, 'healthy'), '');
    await eventually(() => ready, 5_000);
    expect(cell.lines('stdout')).toEqual(['Starting health monitoring of container', 'Container became healthy']);
    rmSync(path.join(root, 'healthy'));
    const err = await failure(() => run);
    expect(err.message).toBe('Instance became unhealthy: checking');
    expect(cell.lines('stdout')).toContain('Container became unhealthy');
    expect(cell.lines('stderr')).toEqual(['checking']); // the check's output, only once it failed
    expect(existsSync(root)).toBe(true);
  });

  it('gives up after the start timeout with Diego’s messages', async () => {
    const err = await failure(() => monitor(150).perform(new AbortController().signal));
    expect(err.message).toBe('Instance never healthy after 150ms: checking');
    expect(cell.lines('stderr')).toContain('Timed out after 150ms: health check never passed.');
  });

  it('stops when cancelled', async () => {
    const stop = new AbortController();
    const run = monitor().perform(stop.signal);
    setTimeout(() => stop.abort(), 50);
    expect((await failure(() => run)).message).toBe('cancelled');
  });
});

describe('readiness checks', () => {
  let http: Loopback;
  let status = 200;
  beforeEach(async () => {
    status = 200;
    http = await loopback((_req, res) => res.writeHead(status).end());
  });
  afterEach(() => http.close());

  it('turn the instance routable and back without ending it', async () => {
    const changes: boolean[] = [];
    const probes = probesFromChecks([{ httpCheck: { port: http.port, path: '/ready', intervalMs: 30 } }], () => ({
      host: '127.0.0.1',
      port: http.port,
    }));
    const stop = new AbortController();
    status = 503;
    const run = monitorReadiness({ probes, untilReadyIntervalMs: 20, onChange: (r) => changes.push(r) }, stop.signal);
    await new Promise((r) => setTimeout(r, 100));
    expect(changes).toEqual([]);
    status = 200;
    await eventually(() => changes.length === 1, 3_000);
    status = 500;
    await eventually(() => changes.length === 2, 3_000);
    status = 200;
    await eventually(() => changes.length === 3, 3_000);
    expect(changes).toEqual([true, false, true]);
    stop.abort();
    await run; // resolves: readiness never fails the instance
  });
});
