// Runs real runc containers: needs root, runc and busybox-static (hack/install-deps.sh installs them).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { StepError } from '../executor/errors.ts';
import { alive, eventually } from '../testing.ts';
import { buildOciConfig } from './oci.ts';
import { ensureBusyboxRootfs } from './rootfs.ts';
import { cgroupFile, isMountPoint, lookupUser, RuncBackend } from './runc.ts';
import { collect, get, getEventually, runActions, runEnvScript, sh, tarOf, untar } from './testing.ts';

let dir: string;
let backend: RuncBackend;
const prefix = `t${process.pid}-`;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'runc-backend-'));
  backend = new RuncBackend({ stateDir: path.join(dir, 'state'), idPrefix: prefix, outputDrainMs: 100 });
  await ensureBusyboxRootfs();
}, 60_000);

afterEach(async () => {
  for (const handle of await backend.list()) await backend.destroy(handle);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const runcIds = () =>
  (JSON.parse(execFileSync('runc', ['--root', backend.runcRoot, 'list', '--format', 'json']).toString()) as
    { id: string }[] | null) ?? [];

describe('RuncBackend', () => {
  it('creates a busybox container, runs echo and reports exit statuses', async () => {
    const c = await backend.create({ handle: 'hello', rootfs: 'preloaded:busybox', properties: { owner: 'x' } });
    expect(c.properties).toEqual({ owner: 'x' });
    expect(await backend.list()).toEqual(['hello']);
    expect(await backend.lookup('hello')).toBe(c);
    expect(await backend.lookup('nope')).toBeUndefined();
    await expect(backend.create({ handle: 'hello' })).rejects.toThrow('handle already exists: hello');
    await expect(backend.create({ handle: '../x' })).rejects.toThrow('invalid container handle');
    await expect(backend.create({ handle: 'img', rootfs: 'docker:///ubuntu' })).rejects.toThrow('unsupported rootfs');

    const io = collect();
    const p = await c.run({ path: 'echo', args: ['hello'] }, io);
    expect(p.pid).toBeGreaterThan(0);
    expect(await p.wait()).toBe(0);
    expect(io.out).toEqual(['hello']);

    const r = await sh(c, 'echo out; echo err >&2; printf tail; exit 3');
    expect(r).toMatchObject({ status: 3, out: ['out', 'tail'], err: ['err'] });
    // Its own pid namespace: the init is pid 1, our shell is not.
    expect((await sh(c, 'cat /proc/1/cmdline | tr "\\0" " "')).out[0]).toContain('while :');
  });

  it('passes env (container + process) and cwd, runs as a user from /etc/passwd', async () => {
    const { c, status, out } = await runEnvScript(backend, 'process');
    expect(status).toBe(0);
    expect(out).toEqual(['container process arg1', '/tmp', '2000', '/home/vcap', '321']);
    expect((await sh(c, 'id -u; echo "$PATH"')).out).toEqual([
      '0',
      '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    ]);
    await expect(c.run({ path: '/does/not/exist' }, collect())).rejects.toThrow(/no such file or directory/);
    await expect(c.run({ path: '/bin/sh', dir: '/nope' }, collect())).rejects.toThrow(
      'working directory /nope does not exist',
    );
    await expect(c.run({ path: '/bin/sh', user: 'alice' }, collect())).rejects.toThrow('user alice not found');
  });

  it('streams files in and out', async () => {
    const c = await backend.create({ handle: 'stream' });
    await c.streamIn('/home/vcap/app', tarOf({ 'hello.txt': 'hi there', 'sub/x': 'x' }), { user: 'vcap' });
    expect((await sh(c, 'cat /home/vcap/app/hello.txt; echo; stat -c %u /home/vcap/app/sub/x')).out).toEqual([
      'hi there',
      '2000',
    ]);
    await sh(c, 'mkdir -p /out && echo result > /out/r.txt');
    expect(await untar(await c.streamOut('/out/r.txt'))).toEqual({ 'r.txt': 'result\n' });
    expect(await untar(await c.streamOut('/out'))).toEqual({ 'out/r.txt': 'result\n' });
    await expect(c.streamOut('/missing')).rejects.toThrow(/ENOENT/);
    // A symlink planted inside the container cannot lead host-side tar out of the rootfs.
    await sh(c, 'ln -s / /escape');
    await expect(c.streamIn('/escape/x', Readable.from([tarOf({ a: 'a' })]))).rejects.toThrow('outside the container');
  });

  it("resolves relative paths in the user's home, as Garden does", async () => {
    const c = await backend.create({ handle: 'relative' });
    await c.streamIn('.', tarOf({ 'in-home.txt': 'vcap' }), { user: 'vcap' });
    await c.streamIn('app', tarOf({ 'in-root-home.txt': 'root' }));
    expect((await sh(c, 'cat /home/vcap/in-home.txt; echo; cat /root/app/in-root-home.txt')).out).toEqual([
      'vcap',
      'root',
    ]);
    expect(await untar(await c.streamOut('in-home.txt', { user: 'vcap' }))).toEqual({ 'in-home.txt': 'vcap' });
    // Processes start in the user's home, and a relative dir is relative to it.
    expect((await sh(c, 'pwd', { user: 'vcap' })).out).toEqual(['/home/vcap']);
    await sh(c, 'mkdir -p sub', { user: 'vcap' });
    expect((await sh(c, 'pwd', { user: 'vcap', dir: 'sub' })).out).toEqual(['/home/vcap/sub']);
    expect((await sh(c, 'pwd')).out).toEqual(['/root']);
  });

  it('applies memory, pids and cpu limits through cgroups', async () => {
    const c = await backend.create({ handle: 'limits', limits: { memoryMb: 64, pids: 50, cpuWeight: 256 } });
    const id = backend.containerId('limits');
    const mem = cgroupFile(id, 'memory', 'memory.limit_in_bytes', 'memory.max');
    expect(mem).toBeDefined();
    expect(readFileSync(mem!, 'utf8').trim()).toBe(String(64 * 1024 * 1024));
    expect(readFileSync(cgroupFile(id, 'pids', 'pids.max', 'pids.max')!, 'utf8').trim()).toBe('50');
    expect(readFileSync(cgroupFile(id, 'cpu', 'cpu.shares', 'cpu.weight')!, 'utf8').trim()).not.toBe('');
    // Seen from inside too (cgroup v1 layout on the machines that have it).
    const inside = await sh(
      c,
      'cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max',
    );
    expect(inside.out).toEqual([String(64 * 1024 * 1024)]);
    expect((await c.info()).events).toEqual([]);
    await backend.destroy('limits');
    expect(cgroupFile(id, 'memory', 'memory.limit_in_bytes', 'memory.max')).toBeUndefined();
  });

  it('kills a long sleep with a signal', async () => {
    const c = await backend.create({ handle: 'signals' });
    const term = await c.run({ path: 'sleep', args: ['30'] }, collect());
    expect(alive(term.pid)).toBe(true);
    term.signal('SIGTERM');
    expect(await term.wait()).toBe(143);
    // The whole group: a shell waiting for its child.
    const io = collect();
    const group = await c.run({ path: '/bin/sh', args: ['-c', 'sleep 30 & wait'] }, io);
    await eventually(
      () =>
        (spawnSync('pgrep', ['-g', String(group.pid)])
          .stdout?.toString()
          .split('\n').length ?? 0) > 2,
    );
    group.signal('SIGKILL');
    expect(await group.wait()).toBe(137);
    await eventually(() => !alive(-group.pid));
    group.signal('SIGTERM'); // already gone: no throw
  });

  it('destroys without leaving runc state, bundle, mounts, cgroups or processes', async () => {
    const c = await backend.create({ handle: 'gone', limits: { memoryMb: 32 } });
    const p = await c.run({ path: 'sleep', args: ['30'] }, collect());
    const bundle = backend.bundleDir('gone');
    expect(await isMountPoint(path.join(bundle, 'rootfs'))).toBe(true);
    await backend.destroy('gone');
    await backend.destroy('gone'); // idempotent
    expect(await p.wait()).toBe(137);
    expect(alive(p.pid)).toBe(false);
    expect(runcIds().map((s) => s.id)).not.toContain(backend.containerId('gone'));
    expect(existsSync(bundle)).toBe(false);
    expect(await readFile('/proc/self/mountinfo', 'utf8')).not.toContain(bundle);
    expect(cgroupFile(backend.containerId('gone'), 'memory', 'cgroup.procs', 'cgroup.procs')).toBeUndefined();
    expect(await backend.list()).toEqual([]);
  });

  it('lets a restarted agent re-adopt its containers', async () => {
    const c = await backend.create({ handle: 'adopt', properties: { k: 'v' }, env: [{ name: 'E', value: '1' }] });
    expect(await c.netIn(8080, 61234)).toEqual({ containerPort: 8080, hostPort: 61234 });
    const again = new RuncBackend({ stateDir: path.join(dir, 'state'), idPrefix: prefix, outputDrainMs: 100 });
    expect(await again.list()).toEqual(['adopt']);
    const c2 = await again.lookup('adopt');
    expect(c2?.properties).toEqual({ k: 'v' });
    expect((await c2!.info()).ports).toEqual([{ containerPort: 8080, hostPort: 61234 }]);
    const io = collect();
    await (await c2!.run({ path: '/bin/sh', args: ['-c', 'echo $E $PORT'] }, io)).wait();
    expect(io.out).toEqual(['1 61234']);
    // Another prefix does not see it.
    const other = new RuncBackend({ stateDir: path.join(dir, 'state'), idPrefix: 'other-' });
    expect(await other.list()).toEqual([]);
    await again.destroy('adopt');
  });

  it('copies the rootfs where overlayfs is not wanted', async () => {
    const copying = new RuncBackend({ stateDir: path.join(dir, 'copy-state'), idPrefix: prefix, copyRootfs: true });
    const c = await copying.create({ handle: 'copy' });
    const bundle = copying.bundleDir('copy');
    expect(await isMountPoint(path.join(bundle, 'rootfs'))).toBe(false);
    expect((await sh(c, 'echo copied > /tmp/x; cat /tmp/x')).out).toEqual(['copied']);
    await copying.destroy('copy');
    expect(existsSync(bundle)).toBe(false);
  });

  it('serves a busybox httpd on its host port (host network)', async () => {
    const c = await backend.create({ handle: 'web', netIn: [{ containerPort: 8080 }] });
    const [mapping] = (await c.info()).ports;
    await c.streamIn('/www', tarOf({ 'index.html': 'from runc' }));
    const p = await c.run({ path: '/bin/sh', args: ['-c', 'exec httpd -f -p "$PORT" -h /www'] }, collect());
    expect(await getEventually(`http://127.0.0.1:${mapping!.hostPort}/`)).toBe('from runc');
    p.signal('SIGTERM');
    expect(await p.wait()).toBe(143);
  });

  it('runs executor run actions', async () => {
    const c = await backend.create({ handle: 'exec', env: [{ name: 'FROM_CONTAINER', value: 'yes' }] });
    const { logs, run } = runActions(c);
    await run('echo "$FROM_CONTAINER $(id -u)"');
    expect(logs.map((m) => m.line)).toEqual(['yes 2000', 'Exit status 0']);
    await expect(run('exit 3')).rejects.toBeInstanceOf(StepError);
    expect(logs.at(-1)?.line).toBe('Exit status 3');
  });
});

describe('RuncBackend with CNI networking', () => {
  const bridge = `dgo${process.pid % 1_000_000}`;
  let net: RuncBackend;

  beforeAll(() => {
    net = new RuncBackend({
      stateDir: path.join(dir, 'net-state'),
      idPrefix: `n${process.pid}-`,
      outputDrainMs: 100,
      network: {
        networkName: `dgo-test-${process.pid}`,
        bridge,
        subnet: `10.234.${process.pid % 250}.0/24`,
        ipamDataDir: path.join(dir, 'ipam'),
      },
    });
  });

  afterEach(async () => {
    for (const handle of await net.list()) await net.destroy(handle);
  });

  afterAll(() => {
    spawnSync('ip', ['link', 'delete', bridge]);
  });

  it(
    'gives a container its own address; portmap forwards host ports to container ports',
    { timeout: 20_000 },
    async () => {
      const c = await net.create({ handle: 'web', netIn: [{ containerPort: 8080 }] });
      const info = await c.info();
      expect(info.ip).toMatch(new RegExp(`^10\\.234\\.${process.pid % 250}\\.\\d+$`));
      const [mapping] = info.ports;
      await c.streamIn('/www', tarOf({ 'index.html': 'from the namespace' }));
      // PORT is not rewritten: inside its namespace the app listens on the container port.
      const env = await sh(c, 'echo "[$PORT]"; ip -o link | cut -d: -f2 | tr -d " " | cut -d@ -f1');
      expect(env.out).toEqual(['[]', 'lo', 'eth0']);
      await c.run({ path: 'httpd', args: ['-f', '-p', '8080', '-h', '/www'] }, collect());
      expect(await getEventually(`http://${info.ip}:8080/`)).toBe('from the namespace');
      expect(await get(`http://127.0.0.1:${mapping!.hostPort}/`)).toBe('from the namespace');

      // A port mapped after creation.
      const late = await c.netIn(9090);
      await c.run({ path: 'httpd', args: ['-f', '-p', '9090', '-h', '/www'] }, collect());
      expect(await getEventually(`http://127.0.0.1:${late.hostPort}/`)).toBe('from the namespace');
      expect(await get(`http://127.0.0.1:${mapping!.hostPort}/`)).toBe('from the namespace');

      const id = net.containerId('web');
      await net.destroy('web');
      expect(existsSync(`/var/run/netns/${id}`)).toBe(false);
      expect(execFileSync('ip', ['-o', 'link', 'show', 'master', bridge]).toString()).toBe('');
      expect(await get(`http://127.0.0.1:${mapping!.hostPort}/`)).toBeUndefined();
      expect(execFileSync('iptables', ['-t', 'nat', '-S']).toString()).not.toContain(id);
    },
  );
});

describe('buildOciConfig and lookupUser', () => {
  it('maps limits to cgroup resources and bind mounts to mounts', () => {
    const config = buildOciConfig({
      rootfs: '/b/rootfs',
      hostname: 'h',
      cgroupsPath: '/x',
      env: ['PATH=/bin'],
      limits: { memoryMb: 128, pids: 10, cpuWeight: 1 },
      bindMounts: [{ srcPath: '/host/cache', dstPath: '/cache', mode: 'ro' }],
    });
    expect(config.linux.resources).toMatchObject({
      memory: { limit: 128 * 1024 * 1024 },
      pids: { limit: 10 },
      cpu: { shares: 2 },
    });
    expect(config.linux.namespaces.map((n) => n.type)).toEqual(['pid', 'ipc', 'uts', 'mount']);
    expect(config.mounts.at(-1)).toEqual({
      destination: '/cache',
      type: 'bind',
      source: '/host/cache',
      options: ['rbind', 'ro'],
    });
  });

  it('resolves names and numeric users', async () => {
    const root = await ensureBusyboxRootfs();
    expect(await lookupUser(root, undefined)).toEqual({ uid: 0, gid: 0, home: '/root' });
    expect(await lookupUser(root, 'vcap')).toEqual({ uid: 2000, gid: 2000, home: '/home/vcap' });
    expect(await lookupUser(root, '1234:99')).toEqual({ uid: 1234, gid: 99, home: '/' });
  });
});
