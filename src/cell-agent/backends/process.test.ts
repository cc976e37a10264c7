import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { alive, eventually } from '../testing.ts';
import { ProcessBackend, resolveInRoot } from './process.ts';
import { collect } from './testing.ts';

let dir: string;
let backend: ProcessBackend;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'process-backend-'));
  backend = new ProcessBackend({ baseDir: path.join(dir, 'containers'), outputDrainMs: 100 });
});

afterEach(async () => {
  for (const handle of await backend.list()) await backend.destroy(handle);
  await rm(dir, { recursive: true, force: true });
});

const root = (handle: string) => path.join(dir, 'containers', handle);

describe('ProcessBackend', () => {
  it('creates, looks up, lists and destroys containers', async () => {
    const c = await backend.create({ handle: 'one', properties: { owner: 'executor' } });
    expect(c.properties).toEqual({ owner: 'executor' });
    expect(await backend.lookup('one')).toBe(c);
    expect(await backend.lookup('two')).toBeUndefined();
    expect(await backend.list()).toEqual(['one']);
    expect((await stat(root('one'))).isDirectory()).toBe(true);
    await expect(backend.create({ handle: 'one' })).rejects.toThrow('handle already exists: one');
    await expect(backend.create({ handle: '../x' })).rejects.toThrow('invalid container handle');
    await backend.destroy('one');
    await backend.destroy('one'); // idempotent
    expect(await backend.list()).toEqual([]);
    await expect(stat(root('one'))).rejects.toThrow();
  });

  it('runs a process with container env + process env, args, and the container dir as cwd', async () => {
    const c = await backend.create({
      handle: 'env',
      env: [
        { name: 'A', value: 'container' },
        { name: 'B', value: 'container' },
      ],
    });
    const io = collect();
    const p = await c.run(
      {
        path: '/bin/sh',
        args: ['-c', 'echo "$A $B $1"; pwd; echo oops >&2; printf tail', 'sh', 'arg1'],
        env: [{ name: 'B', value: 'process' }],
      },
      io,
    );
    expect(p.pid).toBeGreaterThan(0);
    expect(await p.wait()).toBe(0);
    expect(io.out).toEqual(['container process arg1', root('env'), 'tail']);
    expect(io.err).toEqual(['oops']);
  });

  it('does not leak the host environment, but sets a PATH', async () => {
    process.env.PROCESS_BACKEND_SECRET = 'x';
    try {
      const c = await backend.create({ handle: 'clean' });
      const io = collect();
      await (await c.run({ path: 'sh', args: ['-c', 'echo "[$PROCESS_BACKEND_SECRET]" "$PATH"'] }, io)).wait();
      expect(io.out).toEqual(['[] /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
    } finally {
      delete process.env.PROCESS_BACKEND_SECRET;
    }
  });

  it('reports the exit status, 128+n for a signal', async () => {
    const c = await backend.create({ handle: 'status' });
    expect(await (await c.run({ path: '/bin/sh', args: ['-c', 'exit 7'] }, collect())).wait()).toBe(7);
    const p = await c.run({ path: '/bin/sh', args: ['-c', 'exec sleep 30'] }, collect());
    p.signal('SIGKILL');
    expect(await p.wait()).toBe(137);
    p.signal('SIGTERM'); // already gone: no throw
  });

  it('rejects when the process cannot be started', async () => {
    const c = await backend.create({ handle: 'bad' });
    await expect(c.run({ path: '/does/not/exist' }, collect())).rejects.toThrow(/ENOENT/);
    await expect(c.run({ path: '/bin/sh', dir: '/nope' }, collect())).rejects.toThrow(
      'working directory /nope does not exist',
    );
  });

  it('resolves dir and executables inside the container directory first', async () => {
    const c = await backend.create({ handle: 'paths' });
    await mkdir(path.join(root('paths'), 'app', 'bin'), { recursive: true });
    await writeFile(path.join(root('paths'), 'app', 'bin', 'hello'), '#!/bin/sh\necho "hello from $(pwd)"\n', {
      mode: 0o755,
    });
    const io = collect();
    await (await c.run({ path: '/app/bin/hello', dir: '/app' }, io)).wait();
    expect(io.out).toEqual([`hello from ${path.join(root('paths'), 'app')}`]);
    expect(resolveInRoot('/r', '../../etc/passwd')).toBe('/r/etc/passwd');
  });

  it('signals the whole process group', async () => {
    const c = await backend.create({ handle: 'group' });
    const io = collect();
    // The shell starts a child and waits; SIGTERM to the group must reach the child too.
    const p = await c.run({ path: '/bin/sh', args: ['-c', 'sleep 30 & echo $!; wait'] }, io);
    await eventually(() => io.out.length === 1);
    const grandchild = Number(io.out[0]);
    expect(alive(grandchild)).toBe(true);
    p.signal('SIGTERM');
    expect(await p.wait()).toBe(143);
    expect(alive(-p.pid)).toBe(false);
  });

  it('applies nofile with ulimit', async () => {
    const c = await backend.create({ handle: 'nofile' });
    const io = collect();
    await (await c.run({ path: '/bin/sh', args: ['-c', 'ulimit -n'], limits: { nofile: 123 } }, io)).wait();
    expect(io.out).toEqual(['123']);
  });

  it('maps ports: free host ports, PORT rewritten to the host port', async () => {
    const c = await backend.create({
      handle: 'ports',
      netIn: [{ containerPort: 8080 }, { containerPort: 9090, hostPort: 9090 }],
    });
    const info = await c.info();
    expect(info.ip).toBeUndefined();
    expect(info.ports).toHaveLength(2);
    const web = info.ports[0]!;
    expect(web.containerPort).toBe(8080);
    expect(web.hostPort).toBeGreaterThan(0);
    expect(info.ports[1]).toEqual({ containerPort: 9090, hostPort: 9090 });
    expect(await c.netIn(8080)).toEqual(web); // idempotent

    const io = collect();
    await (
      await c.run({ path: '/bin/sh', args: ['-c', 'echo $PORT'], env: [{ name: 'PORT', value: '8080' }] }, io)
    ).wait();
    await (await c.run({ path: '/bin/sh', args: ['-c', 'echo $PORT'] }, io)).wait();
    await (
      await c.run({ path: '/bin/sh', args: ['-c', 'echo $PORT'], env: [{ name: 'PORT', value: '9090' }] }, io)
    ).wait();
    await (
      await c.run({ path: '/bin/sh', args: ['-c', 'echo $PORT'], env: [{ name: 'PORT', value: '1234' }] }, io)
    ).wait();
    expect(io.out).toEqual([String(web.hostPort), String(web.hostPort), '9090', '1234']);
  });

  it('streams a tar in and out', async () => {
    const src = path.join(dir, 'src');
    await mkdir(path.join(src, 'sub'), { recursive: true });
    await writeFile(path.join(src, 'a.txt'), 'A');
    await writeFile(path.join(src, 'sub', 'b.sh'), '#!/bin/sh\n', { mode: 0o755 });
    const tar = execFileSync('tar', ['-c', '-f', '-', '-C', src, '.']);

    const c = await backend.create({ handle: 'stream' });
    await c.streamIn('/app', tar);
    expect(await readFile(path.join(root('stream'), 'app', 'a.txt'), 'utf8')).toBe('A');
    expect((await stat(path.join(root('stream'), 'app', 'sub', 'b.sh'))).mode & 0o111).not.toBe(0);

    const out = await c.streamOut('/app/a.txt');
    const chunks: Buffer[] = [];
    for await (const chunk of out) chunks.push(chunk as Buffer);
    const listing = execFileSync('tar', ['-t', '-v', '-f', '-'], { input: Buffer.concat(chunks) }).toString();
    expect(listing).toContain('a.txt');

    await expect(c.streamOut('/missing')).rejects.toThrow(/ENOENT/);
    await expect(c.streamIn('/x', Buffer.from('not a tar at all'.repeat(100)))).rejects.toThrow(/tar extraction/);
  });

  it('stops tar when the reader of streamOut gives up early', async () => {
    const c = await backend.create({ handle: 'early' });
    await writeFile(path.join(root('early'), 'big'), Buffer.alloc(4 * 1024 * 1024, 1));
    const out = await c.streamOut('/big');
    for await (const _ of out) break; // destroys the stream after the first chunk
    const tarOf = (dirPath: string) =>
      readdirSync('/proc')
        .filter((e) => /^\d+$/.test(e))
        .some((e) => {
          try {
            const cmd = readFileSync(`/proc/${e}/cmdline`, 'utf8');
            return cmd.startsWith('tar') && cmd.includes(dirPath) && alive(Number(e));
          } catch {
            return false;
          }
        });
    await eventually(() => !tarOf(root('early')));
  });

  it('bind-mounts with symlinks', async () => {
    const src = path.join(dir, 'cache');
    await mkdir(src);
    await writeFile(path.join(src, 'dep.txt'), 'dep');
    await backend.create({ handle: 'mounts', bindMounts: [{ srcPath: src, dstPath: '/deps/one', mode: 'ro' }] });
    expect(await readFile(path.join(root('mounts'), 'deps', 'one', 'dep.txt'), 'utf8')).toBe('dep');
    await backend.destroy('mounts');
    expect(await readFile(path.join(src, 'dep.txt'), 'utf8')).toBe('dep'); // the source survives
  });

  it('destroy kills the processes of the container', async () => {
    const c = await backend.create({ handle: 'kill' });
    const p = await c.run({ path: '/bin/sh', args: ['-c', 'trap "" TERM; exec sleep 30'] }, collect());
    expect(alive(p.pid)).toBe(true);
    await backend.destroy('kill');
    expect(await p.wait()).toBe(137);
    expect(alive(p.pid)).toBe(false);
  });
});
