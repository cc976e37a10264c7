// A process is recorded before it can run: an agent killed between starting it and learning its pid leaves a
// record (pid 0) that the next agent lists, follows and gets the exit status of — never a process it cannot see.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { attachDetached, listDetached, plainExec, startDetached } from './detached.ts';
import { collect } from './testing.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'detached-record-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe('detached process records', () => {
  it('lists and follows a process whose starter died before recording its pid', async () => {
    const opts = { dir, tailIntervalMs: 20, pollIntervalMs: 50, drainMs: 20 };
    const started = await startDetached(
      opts,
      'p1',
      {},
      plainExec('/bin/sh', ['-c', 'echo hi; while [ ! -e "$0" ]; do sleep 0.05; done; exit 3', path.join(dir, 'go')]),
      collect(),
      'action',
    );
    const pid = started.pid;
    // Rewind to the moment before the starter wrote the pid: the record says 0, the pid file is still there.
    const meta = JSON.parse(await readFile(path.join(dir, 'p1.meta'), 'utf8')) as Record<string, unknown>;
    await writeFile(path.join(dir, 'p1.meta'), JSON.stringify({ ...meta, pid: 0 }));
    await writeFile(path.join(dir, 'p1.pid'), String(pid));
    expect(await listDetached(dir)).toEqual([{ id: 'p1', pid, tag: 'action' }]);
    const io = collect();
    const attached = await attachDetached(opts, 'p1', io);
    expect(attached.pid).toBe(pid);
    await writeFile(path.join(dir, 'go'), '');
    expect(await attached.wait()).toBe(3);
    expect((await listDetached(dir))[0]).toMatchObject({ exitStatus: 3 });
  });

  it('never signals pid 0 (its own process group) for a process not known yet', async () => {
    const opts = { dir, tailIntervalMs: 20, pollIntervalMs: 50, drainMs: 20 };
    await writeFile(
      path.join(dir, 'p2.meta'),
      JSON.stringify({ id: 'p2', pid: 0, wrapperPid: process.pid, startedAt: new Date().toISOString() }),
    );
    const attached = await attachDetached(opts, 'p2', collect());
    expect(attached.pid).toBe(0);
    expect(() => attached.signal('SIGTERM')).not.toThrow(); // a no-op, or this test process would be gone
    await writeFile(path.join(dir, 'p2.status'), '0\n');
    expect(await attached.wait()).toBe(0);
  });
});
