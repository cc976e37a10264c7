// Container processes that outlive the agent (detached.ts) and the disk limit, with real runc containers: a
// second RuncBackend on the same state stands for a restarted agent. Needs root, runc and busybox-static.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../testing.ts';
import { ensureBusyboxRootfs } from './rootfs.ts';
import { RuncBackend } from './runc.ts';
import { collect } from './testing.ts';

let dir: string;
let backend: RuncBackend;
const prefix = `d${process.pid}-`;
const make = () => new RuncBackend({ stateDir: path.join(dir, 'state'), idPrefix: prefix, outputDrainMs: 100 });

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'runc-detached-'));
  backend = make();
  await ensureBusyboxRootfs();
}, 60_000);

afterEach(async () => {
  for (const handle of await backend.list()) await backend.destroy(handle);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('runc processes that outlive the agent', () => {
  it('a restarted agent finds a running process by its tag, follows its output and gets its exit status', async () => {
    const c = await backend.create({ handle: 'survivor', properties: { owner: 'web-0' } });
    const first = collect();
    const p = await c.run(
      {
        path: '/bin/sh',
        args: ['-c', 'echo before; while [ ! -e /tmp/go ]; do sleep 0.1; done; echo after; echo oops >&2; exit 7'],
        tag: 'action',
      },
      first,
    );
    await eventually(() => first.out.includes('before'), 5_000);

    // A new agent: a new backend object on the same state directory, with nothing in memory.
    const again = make();
    expect(await again.list()).toContain('survivor');
    const adopted = await again.lookup('survivor');
    expect(adopted?.properties).toEqual({ owner: 'web-0' });
    const procs = await adopted!.processes!();
    expect(procs).toEqual([{ id: expect.any(String) as string, pid: p.pid, tag: 'action' }]);
    const io = collect();
    const attached = await adopted!.attach!(procs[0]!.id, io);
    expect(attached.pid).toBe(p.pid);

    const go = await adopted!.run({ path: '/bin/sh', args: ['-c', 'mkdir -p /tmp && touch /tmp/go'] }, collect());
    expect(await go.wait()).toBe(0);
    expect(await attached.wait()).toBe(7);
    expect(await p.wait()).toBe(7);
    expect(io.out).toEqual(['after']);
    expect(io.err).toEqual(['oops']);
    expect((await adopted!.processes!()).find((r) => r.id === procs[0]!.id)?.exitStatus).toBe(7);
  }, 30_000);

  it('a signal reaches a re-attached process (128 + n)', async () => {
    const c = await backend.create({ handle: 'signalled' });
    await c.run({ path: '/bin/sleep', args: ['600'], tag: 'action' }, collect());
    const adopted = await make().lookup('signalled');
    const [rec] = await adopted!.processes!();
    const h = await adopted!.attach!(rec!.id, collect());
    h.signal('SIGTERM');
    expect(await h.wait()).toBe(143);
  }, 30_000);

  it('reports runc failures when a process cannot start', async () => {
    const c = await backend.create({ handle: 'nostart' });
    await expect(c.run({ path: '/no/such/binary' }, collect())).rejects.toThrow(/no such file|not found/i);
    expect(await c.processes!()).toEqual([]);
  }, 30_000);
});

describe('runc disk limit', () => {
  it('measures the writable layer and kills the processes of a container over its diskMb', async () => {
    const c = await backend.create({ handle: 'writer', limits: { diskMb: 2 } });
    const p = await c.run({ path: '/bin/sleep', args: ['600'], tag: 'action' }, collect());
    const small = (await c.usage!()).diskBytes;
    expect(small).toBeLessThan(1024 * 1024);
    const w = await c.run({ path: '/bin/dd', args: ['if=/dev/zero', 'of=/big', 'bs=1M', 'count=3'] }, collect());
    expect(await w.wait()).toBe(0);
    expect((await c.usage!()).diskBytes).toBeGreaterThan(3 * 1000 * 1000);
    await backend.enforceDisk();
    expect(await p.wait()).toBe(137);
    expect((await c.info()).events).toEqual([
      expect.stringMatching(/^disk quota exceeded: \d+ MB written, the limit is 2 MB$/),
    ]);
  }, 30_000);
});
