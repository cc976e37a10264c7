// The process backend with persistent: true — processes and containers that outlive the agent. A second
// ProcessBackend on the same directory stands for a restarted agent.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { alive, eventually } from '../testing.ts';
import { ProcessBackend } from './process.ts';
import { collect } from './testing.ts';

let dir: string;
const make = () => new ProcessBackend({ baseDir: path.join(dir, 'c'), persistent: true, outputDrainMs: 50 });

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'process-persistent-'));
});
afterEach(async () => {
  const b = make();
  for (const h of await b.list()) await b.destroy(h);
  await rm(dir, { recursive: true, force: true });
});

describe('persistent process backend', () => {
  it('a restarted agent lists the container, re-attaches to its process and gets its exit status', async () => {
    const first = make();
    const c = await first.create({ handle: 'app', properties: { owner: 'web-0' }, env: [{ name: 'A', value: '1' }] });
    await c.netIn(8080, 61001);
    const io = collect();
    const p = await c.run(
      {
        path: '/bin/sh',
        args: ['-c', 'echo "a=$A"; while [ ! -e go ]; do sleep 0.05; done; echo bye; echo oops >&2; exit 5'],
        tag: 'action',
      },
      io,
    );
    await eventually(() => io.out.includes('a=1'), 5_000);

    const again = make();
    expect(await again.list()).toEqual(['app']);
    const adopted = await again.lookup('app');
    expect(adopted?.properties).toEqual({ owner: 'web-0' });
    expect((await adopted!.info()).ports).toEqual([{ containerPort: 8080, hostPort: 61001 }]);
    const [rec] = await adopted!.processes!();
    expect(rec).toMatchObject({ pid: p.pid, tag: 'action' });
    const io2 = collect();
    const h = await adopted!.attach!(rec!.id, io2);
    await (await adopted!.run({ path: '/bin/sh', args: ['-c', 'touch go'] }, collect())).wait();
    expect(await h.wait()).toBe(5);
    expect(io2).toMatchObject({ out: ['bye'], err: ['oops'] });
  });

  it('signals reach the process group; destroy by a new agent kills what the old one started', async () => {
    const c = await make().create({ handle: 'sleepy' });
    const p = await c.run({ path: '/bin/sh', args: ['-c', 'sleep 30 & sleep 30; wait'], tag: 'action' }, collect());
    p.signal('SIGTERM');
    expect(await p.wait()).toBe(143);
    const q = await c.run({ path: '/bin/sleep', args: ['30'] }, collect());
    await make().destroy('sleepy');
    await eventually(() => !alive(q.pid), 5_000);
    expect(await make().list()).toEqual([]);
  });
});
