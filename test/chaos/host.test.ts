// The chaos suite's host view: processes found by their run marker in /proc, the task marker file, and the
// report table.
import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { instanceKey, killRunProcesses, MarkerFile, scanHost } from './host.ts';
import { table } from './report.ts';

const dir = mkdtempSync(join(tmpdir(), 'chaos-host-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const until = async (cond: () => boolean, ms = 10_000) => {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
};

describe('scanHost', () => {
  it('finds an instance and a task of the run by their environment, and kills them', async () => {
    const run = `test-${process.pid}-${Date.now()}`;
    const env = (kind: string, id: string, extra: Record<string, string> = {}) => ({
      PATH: process.env.PATH,
      CHAOS_RUN: run,
      CHAOS_KIND: kind,
      CHAOS_ID: id,
      ...extra,
    });
    const app = spawn('/bin/sh', ['-c', 'sleep 30'], {
      env: env('lrp', 'web', { INSTANCE_INDEX: '2', INSTANCE_GUID: 'guid-a' }),
      detached: true,
      stdio: 'ignore',
    });
    const task = spawn('/bin/sh', ['-c', 'sleep 30 & wait'], {
      env: env('task', 't1'),
      detached: true,
      stdio: 'ignore',
    });
    const other = spawn('/bin/sh', ['-c', 'sleep 30'], {
      env: { ...env('task', 'x'), CHAOS_RUN: 'another' },
      stdio: 'ignore',
    });
    try {
      await until(() => {
        const s = scanHost(run);
        return (
          s.instances.get(instanceKey('web', 2))?.has('guid-a') === true &&
          (s.taskProcesses.get('t1')?.length ?? 0) >= 2
        );
      });
      const s = scanHost(run);
      expect([...s.instances.keys()]).toEqual([instanceKey('web', 2)]);
      expect(s.instances.get('web/2')?.get('guid-a')).toContain(app.pid);
      const t1 = s.taskProcesses.get('t1') ?? [];
      expect(t1.map((p) => p.pid)).toContain(task.pid);
      // The child sleep's parent is the task's shell: one tree, one run.
      expect(t1.some((p) => p.ppid === task.pid)).toBe(true);
      expect(t1.every((p) => p.mntns === '')).toBe(true);
      expect(s.taskProcesses.has('x')).toBe(false);
      const killed = killRunProcesses(run);
      expect(killed).toEqual(expect.arrayContaining([app.pid, task.pid]));
      await until(() => scanHost(run).processes.length === 0);
    } finally {
      for (const c of [app, task, other]) c.kill('SIGKILL');
    }
  });
});

describe('MarkerFile', () => {
  it('reads runs as they are appended, whole lines only', () => {
    const m = new MarkerFile(join(dir, 'marker'));
    m.refresh(); // no file yet
    expect(m.guids()).toEqual([]);
    appendFileSync(m.path, 'start t1 100 /state/cell-0/containers/task-1\nstart t2 200 /x\nend t1 1');
    m.refresh();
    expect(m.runs('t1')).toMatchObject([{ pid: 100, dir: '/state/cell-0/containers/task-1' }]);
    expect(m.runs('t1')[0]?.endedAt).toBeUndefined();
    appendFileSync(m.path, '00\nstart t1 300 /y\n');
    m.refresh();
    expect(m.runs('t1').map((r) => [r.pid, r.endedAt !== undefined])).toEqual([
      [100, true],
      [300, false],
    ]);
    expect(m.guids().sort()).toEqual(['t1', 't2']);
  });
});

describe('report', () => {
  it('counts violations per invariant and summarizes recoveries', () => {
    const text = table([
      {
        name: 'x',
        runs: 3,
        violations: [
          { invariant: 'I1', atMs: 1, subject: 'a', detail: 'd' },
          { invariant: 'I1', atMs: 2, subject: 'b', detail: 'd' },
          { invariant: 'R', atMs: 3, subject: 'c', detail: 'd' },
        ],
        recoveriesMs: [1000, 3000, undefined],
        durationMs: 60_000,
        notes: [],
        failedTasks: {},
        logDir: '/tmp',
      },
    ]);
    const row = text
      .split('\n')[2]!
      .split('|')
      .map((c) => c.trim());
    expect(row.slice(1, 11)).toEqual(['x', '3', '2', '0', '0', '0', '0', '0', '1', '1.0s / 3.0s (+1 never)']);
    expect(row[12]).toBe('FAIL');
  });
});
