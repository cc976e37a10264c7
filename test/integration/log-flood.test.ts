// One tenant cannot take the cell agent down by writing: a task printing 600 MB of output leaves the agent's
// memory bounded (lines past the cell's and the instance's limits are dropped with Diego's notice, the rest streamed).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { ProcessBackend } from '../../src/cell-agent/backends/process.ts';
import { Rep } from '../../src/cell-agent/rep.ts';
import { eventually } from '../support/eventually.ts';
import { useDiego } from '../support/fixture.ts';

const env = useDiego('flood', { convergeIntervalMs: 2000 });
let logged = 0;
/** The agent's log at info, counting what it writes. */
const agentLog = pino(
  { level: 'info' },
  new Writable({
    write(chunk: Buffer, _enc, done) {
      logged += chunk.length;
      done();
    },
  }),
);
const dir = mkdtempSync(path.join(tmpdir(), 'log-flood-'));
let rep: Rep | undefined;
afterAll(async () => {
  await rep?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('a task flooding its output', () => {
  it('keeps the agent memory bounded while 600 MB of lines go by', { timeout: 300_000 }, async () => {
    rep = new Rep({
      kc: env.kc,
      cellId: `flood-${process.pid}`,
      capacity: { memoryMb: 2048, diskMb: 8192, containers: 4 },
      stacks: ['busybox'],
      backend: new ProcessBackend({ baseDir: path.join(dir, 'containers'), persistent: true }),
      log: agentLog,
      systemNamespace: env.systemNamespace,
      executor: { stateDir: path.join(dir, 'executor') },
    });
    await rep.start();
    global.gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 100);
    try {
      await env.client.create('Task', {
        metadata: { name: 'flood', namespace: env.ns },
        spec: {
          taskGuid: `flood-${process.pid}`,
          domain: 'cf-tasks',
          rootFs: 'preloaded:busybox',
          memoryMb: 64,
          action: {
            run: {
              path: '/bin/sh',
              args: ['-c', 'yes "a fairly ordinary log line of some length" | head -c 600000000'],
              user: 'root',
            },
          },
        },
      });
      await eventually(
        async () => {
          const t = await env.client.get('Task', env.ns, 'flood');
          expect(t.status?.state).toBe('Completed');
        },
        280_000,
        500,
      );
    } finally {
      clearInterval(sampler);
    }
    const grewMb = (peak - before) / 1024 / 1024;
    console.log(
      `agent rss before ${(before / 1048576).toFixed(0)} MB, peak ${(peak / 1048576).toFixed(0)} MB (+${grewMb.toFixed(0)} MB)`,
    );
    // Bounded, not zero: V8 lets garbage pile up before it collects, more so on a loaded machine; a buffer that
    // kept the lines would grow by the 600 MB written.
    expect(grewMb).toBeLessThan(300);
    // The agent's own log (at info) carries the cell's lines about the task, not the 600 MB of app output.
    expect(logged).toBeLessThan(1_000_000);
  });
});
