// Runs real containers under a private containerd (test/support/containerd.ts): needs root, containerd, runc and
// busybox-static (hack/install-deps.sh installs them); skipped, saying why, where containerd cannot run.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { containerdUnavailable, startContainerd, type TestContainerd } from '../../../test/support/containerd.ts';
import { startRegistry, type TestRegistry } from '../../../test/support/oci-registry.ts';
import { pickBackend } from '../../cmd/cell-agent.ts';
import { createLogger } from '../../lib/log.ts';
import { alive, eventually } from '../testing.ts';
import { ContainerdBackend } from './containerd.ts';
import { parseDockerRootfs } from './docker-ref.ts';
import { buildOciImage } from './oci-image.ts';
import { ensureBusyboxRootfs } from './rootfs.ts';
import { cgroupFile } from './runc.ts';
import { collect, get, getEventually, runActions, runEnvScript, sh, tarOf, untar } from './testing.ts';

const unavailable = containerdUnavailable();
// Like the runc tests, these need root and the Debian packages `make test` installs: fail loudly, never skip.
if (unavailable)
  throw new Error(
    `the containerd backend tests cannot run here: ${unavailable} (run them as root after hack/install-deps.sh)`,
  );

describe('parseDockerRootfs', () => {
  it("understands Diego's docker:///repo#tag URLs and Docker's own references", () => {
    expect(parseDockerRootfs('docker:///busybox').ref).toBe('docker.io/library/busybox:latest');
    expect(parseDockerRootfs('docker:///cloudfoundry/grace#v1').ref).toBe('docker.io/cloudfoundry/grace:v1');
    expect(parseDockerRootfs('docker://registry.example.com:5000/team/app#1.2').ref).toBe(
      'registry.example.com:5000/team/app:1.2',
    );
    expect(parseDockerRootfs('docker://busybox:1.36').ref).toBe('docker.io/library/busybox:1.36');
    expect(parseDockerRootfs('docker://127.0.0.1:5000/busybox:latest')).toMatchObject({
      registry: '127.0.0.1:5000',
      repository: 'busybox',
      tag: 'latest',
    });
    const digest = `sha256:${'a'.repeat(64)}`;
    expect(parseDockerRootfs(`docker:///busybox@${digest}`).ref).toBe(`docker.io/library/busybox@${digest}`);
    expect(parseDockerRootfs(`docker:///busybox#${digest}`).ref).toBe(`docker.io/library/busybox@${digest}`);
    expect(() => parseDockerRootfs('docker:///Busy Box')).toThrow(/no valid repository name/);
    expect(() => parseDockerRootfs('docker:///busybox:1#2')).toThrow(/tag twice/);
  });
});

describe('ContainerdBackend', () => {
  let dir: string;
  let containerd: TestContainerd;
  let registry: TestRegistry;
  let backend: ContainerdBackend;
  const prefix = `t${process.pid}-`;
  const bridge = `dgc${process.pid % 1_000_000}`;
  const subnet = `10.231.${process.pid % 250}`;
  /** The backend; a second one on the same state stands for a restarted agent. */
  const make = () =>
    new ContainerdBackend({
      address: containerd.address,
      snapshotter: containerd.snapshotter,
      stateDir: path.join(dir, 'state'),
      idPrefix: prefix,
      outputDrainMs: 100,
      network: {
        networkName: `dgc-${process.pid}`,
        bridge,
        subnet: `${subnet}.0/24`,
        ipamDataDir: path.join(dir, 'ipam'),
      },
    });

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'containerd-backend-'));
    containerd = await startContainerd();
    registry = await startRegistry();
    // The image env tells the pulled image from the preloaded one (which has the same layer).
    const env = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'FROM_REGISTRY=yes'];
    registry.add('busybox', 'latest', await buildOciImage(await ensureBusyboxRootfs(), { env }));
    backend = make();
  }, 120_000);

  afterEach(async () => {
    for (const handle of await backend.list()) await backend.destroy(handle);
  });

  afterAll(async () => {
    await registry?.close();
    await containerd?.stop();
    spawnSync('ip', ['link', 'delete', bridge]);
    await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it('creates a busybox container, runs echo and reports exit statuses', { timeout: 60_000 }, async () => {
    const c = await backend.create({ handle: 'hello', properties: { owner: 'x', 'diego.dev/guid': 'g 1' } });
    expect(c.properties).toEqual({ owner: 'x', 'diego.dev/guid': 'g 1' });
    expect(await backend.list()).toEqual(['hello']);
    expect(await backend.lookup('hello')).toBe(c);
    expect(await backend.lookup('nope')).toBeUndefined();
    await expect(backend.create({ handle: 'hello' })).rejects.toThrow('handle already exists: hello');
    await expect(backend.create({ handle: '../x' })).rejects.toThrow('invalid container handle');
    await expect(backend.create({ handle: 'img', rootfs: 'preloaded:cflinuxfs4' })).rejects.toThrow(
      'unsupported rootfs',
    );

    const io = collect();
    const p = await c.run({ path: 'echo', args: ['hello'] }, io);
    expect(p.pid).toBeGreaterThan(0);
    expect(await p.wait()).toBe(0);
    expect(io.out).toEqual(['hello']);

    const r = await sh(c, 'echo out; echo err >&2; printf tail; exit 3');
    expect(r).toMatchObject({ status: 3, out: ['out', 'tail'], err: ['err'] });
    // Its own pid namespace (our init is pid 1) and its handle as hostname.
    expect((await sh(c, 'cat /proc/1/cmdline | tr "\\0" " "; echo; hostname')).out).toEqual([
      expect.stringContaining('while :'),
      'hello',
    ]);
  });

  it('passes env (container + process) and cwd, runs as a user from /etc/passwd', { timeout: 60_000 }, async () => {
    const { c, status, out } = await runEnvScript(backend, 'process with spaces');
    expect(status).toBe(0);
    expect(out).toEqual(['container process with spaces arg1', '/tmp', '2000', '/home/vcap', '321']);
    expect((await sh(c, 'id -u; echo "$PATH"')).out).toEqual([
      '0',
      '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    ]);
    await expect(c.run({ path: '/does/not/exist' }, collect())).rejects.toThrow(/executable file not found/);
    await expect(c.run({ path: 'nope' }, collect())).rejects.toThrow(/"nope": executable file not found/);
    await expect(c.run({ path: '/bin/sh', dir: '/nope' }, collect())).rejects.toThrow(
      'working directory /nope does not exist',
    );
    await expect(c.run({ path: '/bin/sh', user: 'alice' }, collect())).rejects.toThrow('user alice not found');
  });

  it('streams files in and out', { timeout: 60_000 }, async () => {
    const c = await backend.create({ handle: 'stream' });
    await c.streamIn('/home/vcap/app', tarOf({ 'hello.txt': 'hi there', 'sub/x': 'x' }), { user: 'vcap' });
    expect((await sh(c, 'cat /home/vcap/app/hello.txt; echo; stat -c %u /home/vcap/app/sub/x')).out).toEqual([
      'hi there',
      '2000',
    ]);
    await c.streamIn('/new/deep', Readable.from([tarOf({ a: 'a' })]), { user: 'vcap' });
    expect((await sh(c, 'stat -c %u /new /new/deep; cat /new/deep/a')).out).toEqual(['2000', '2000', 'a']);
    await sh(c, 'mkdir -p /out && echo result > /out/r.txt');
    expect(await untar(await c.streamOut('/out/r.txt'))).toEqual({ 'r.txt': 'result\n' });
    expect(await untar(await c.streamOut('/out'))).toEqual({ 'out/r.txt': 'result\n' });
    await expect(c.streamOut('/missing')).rejects.toThrow(/ENOENT/);
    // Paths resolve inside the container: a symlink to / leads to the container's root, not the host's.
    await sh(c, 'ln -s / /escape');
    await c.streamIn('/escape/landed', tarOf({ f: 'inside' }));
    expect((await sh(c, 'cat /landed/f')).out).toEqual(['inside']);
    expect(existsSync('/landed')).toBe(false);
  });

  it("resolves relative paths in the user's home, as Garden does", { timeout: 60_000 }, async () => {
    const c = await backend.create({ handle: 'relative' });
    await c.streamIn('.', tarOf({ 'in-home.txt': 'vcap' }), { user: 'vcap' });
    expect((await sh(c, 'cat /home/vcap/in-home.txt')).out).toEqual(['vcap']);
    expect(await untar(await c.streamOut('in-home.txt', { user: 'vcap' }))).toEqual({ 'in-home.txt': 'vcap' });
    // Processes start in the user's home, and a relative dir is relative to it.
    expect((await sh(c, 'pwd', { user: 'vcap' })).out).toEqual(['/home/vcap']);
    await sh(c, 'mkdir -p sub', { user: 'vcap' });
    expect((await sh(c, 'pwd', { user: 'vcap', dir: 'sub' })).out).toEqual(['/home/vcap/sub']);
    expect((await sh(c, 'pwd')).out).toEqual(['/root']);
  });

  it('applies memory, pids and cpu limits through cgroups', { timeout: 60_000 }, async () => {
    const c = await backend.create({ handle: 'limits', limits: { memoryMb: 64, pids: 50, cpuWeight: 256 } });
    const id = backend.containerId('limits');
    const mem = cgroupFile(id, 'memory', 'memory.limit_in_bytes', 'memory.max');
    expect(mem).toBeDefined();
    expect(readFileSync(mem!, 'utf8').trim()).toBe(String(64 * 1024 * 1024));
    expect(readFileSync(cgroupFile(id, 'pids', 'pids.max', 'pids.max')!, 'utf8').trim()).toBe('50');
    const shares = cgroupFile(id, 'cpu', 'cpu.shares', 'cpu.weight');
    if (shares!.endsWith('cpu.shares')) expect(readFileSync(shares!, 'utf8').trim()).toBe('256');
    // Seen from inside too (cgroup v1 layout on the machines that have it).
    const inside = await sh(
      c,
      'cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max',
    );
    expect(inside.out).toEqual([String(64 * 1024 * 1024)]);
    // The pids limit holds: 60 sleeps cannot all start.
    const fork = await sh(c, 'for i in $(seq 60); do sleep 2 & done; wait; echo done');
    expect(fork.err.join('\n')).toMatch(/can't fork|Resource temporarily unavailable/i);
    expect((await c.info()).events).toEqual([]);
    // Usage: memory and cpu from the cgroup, disk from the writable snapshot.
    await sh(c, 'head -c 2000000 /dev/zero > /tmp/blob');
    const usage = await c.usage!();
    expect(usage.memoryBytes).toBeGreaterThan(0);
    expect(usage.cpuNanos).toBeGreaterThan(0);
    expect(usage.diskBytes).toBeGreaterThanOrEqual(2_000_000);
    await backend.destroy('limits');
    expect(cgroupFile(id, 'memory', 'memory.limit_in_bytes', 'memory.max')).toBeUndefined();
  });

  it('kills a long sleep with a signal', { timeout: 60_000 }, async () => {
    const c = await backend.create({ handle: 'signals' });
    const term = await c.run({ path: 'sleep', args: ['30'] }, collect());
    expect(alive(term.pid)).toBe(true);
    term.signal('SIGTERM');
    expect(await term.wait()).toBe(143);
    // The whole group: a shell waiting for its child.
    const group = await c.run({ path: '/bin/sh', args: ['-c', 'sleep 30 & wait'] }, collect());
    await eventually(
      () =>
        (spawnSync('pgrep', ['-g', String(group.pid)])
          .stdout?.toString()
          .trim()
          .split('\n').length ?? 0) >= 2,
    );
    group.signal('SIGKILL');
    expect(await group.wait()).toBe(137);
    await eventually(() => !alive(-group.pid));
    group.signal('SIGTERM'); // already gone: no throw
  });

  it(
    'gives a container its own address; portmap forwards host ports to container ports',
    { timeout: 60_000 },
    async () => {
      const c = await backend.create({ handle: 'web', netIn: [{ containerPort: 8080 }] });
      const info = await c.info();
      expect(info.ip).toMatch(new RegExp(`^${subnet.replace(/\./g, '\\.')}\\.\\d+$`));
      const [mapping] = info.ports;
      await c.streamIn('/www', tarOf({ 'index.html': 'from containerd' }));
      expect((await sh(c, 'echo "[$PORT]"; ip -o link | cut -d: -f2 | tr -d " " | cut -d@ -f1')).out).toEqual([
        '[]',
        'lo',
        'eth0',
      ]);
      await c.run({ path: 'httpd', args: ['-f', '-p', '8080', '-h', '/www'] }, collect());
      expect(await getEventually(`http://${info.ip}:8080/`, 10_000, 100)).toBe('from containerd');
      expect(await get(`http://127.0.0.1:${mapping!.hostPort}/`)).toBe('from containerd');

      // A port mapped after creation, kept in the container's labels.
      const late = await c.netIn(9090);
      await c.run({ path: 'httpd', args: ['-f', '-p', '9090', '-h', '/www'] }, collect());
      expect(await getEventually(`http://127.0.0.1:${late.hostPort}/`, 10_000, 100)).toBe('from containerd');
      const labels = JSON.parse(containerd.ctr('diego', 'containers', 'info', backend.containerId('web'))) as {
        Labels: Record<string, string>;
      };
      expect(JSON.parse(labels.Labels['org.cloudfoundry.diego.ports']!)).toHaveLength(2);
    },
  );

  it('pulls a docker:// image from a registry and runs it', { timeout: 120_000 }, async () => {
    const rootfs = `docker://${registry.host}/busybox:latest`;
    const c = await backend.create({ handle: 'pulled', rootfs });
    expect(registry.requests).toContain('HEAD /v2/busybox/manifests/latest');
    expect(registry.requests.filter((r) => r.startsWith('GET /v2/busybox/manifests/sha256:'))).toHaveLength(1);
    expect(registry.requests.filter((r) => r.startsWith('GET /v2/busybox/blobs/sha256:'))).not.toHaveLength(0);
    // The image's env reaches its processes.
    expect((await sh(c, 'echo "pulled $FROM_REGISTRY"; ls /bin/busybox')).out).toEqual(['pulled yes', '/bin/busybox']);
    expect(containerd.ctr('diego', 'images', 'ls', '-q').split('\n')).toContain(`${registry.host}/busybox:latest`);
    // Present now: the next container does not pull again.
    const before = registry.requests.length;
    await backend.create({ handle: 'pulled2', rootfs: `docker://${registry.host}/busybox#latest` });
    expect(registry.requests.length).toBe(before);
    await expect(backend.create({ handle: 'missing', rootfs: `docker://${registry.host}/nope:1` })).rejects.toThrow(
      /pulling docker:\/\/.*nope:1.*failed/,
    );
    expect(await backend.list()).toEqual(['pulled', 'pulled2']);
  });

  describe('with a registry that wants credentials', () => {
    const auth = { username: 'diego', password: `s3cret-${process.pid}-${Date.now()}` };
    let secured: TestRegistry;
    /** Processes whose arguments or environment held the password while the registry was asked (should be none). */
    const leaks: string[] = [];
    let scans = 0;
    let image: Awaited<ReturnType<typeof buildOciImage>>;
    /** A repository nobody pulled yet, so that containerd cannot use a cached image. */
    const fresh = (name: string) => {
      const repo = `${name}-${process.pid}-${Date.now().toString(36)}`;
      secured.add(repo, 'v1', image);
      return `docker://${secured.host}/${repo}:v1`;
    };
    /** Every process's argv and environment, searched for the password while ctr talks to the registry. */
    const scanProcesses = () => {
      scans++;
      for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
        for (const file of ['cmdline', 'environ']) {
          try {
            if (readFileSync(`/proc/${pid}/${file}`).includes(auth.password)) leaks.push(`${pid} ${file}`);
          } catch {
            // gone, or not readable
          }
        }
      }
    };

    beforeAll(async () => {
      secured = await startRegistry({ auth, onRequest: (_req, authorized) => authorized && scanProcesses() });
      const env = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'FROM_REGISTRY=private'];
      image = await buildOciImage(await ensureBusyboxRootfs(), { env });
    }, 60_000);

    afterAll(async () => {
      await secured?.close();
    });

    it('pulls with imageCredentials, the password in no process arguments', { timeout: 120_000 }, async () => {
      const rootfs = fresh('private');
      const c = await backend.create({ handle: 'private', rootfs, imageCredentials: auth });
      expect((await sh(c, 'echo "pulled $FROM_REGISTRY"')).out).toEqual(['pulled private']);
      // Asked for credentials first (401 + WWW-Authenticate: Basic), then pulled with them.
      expect(secured.unauthorized.length).toBeGreaterThan(0);
      expect(secured.requests.filter((r) => r.startsWith('GET /v2/private-') && r.includes('/blobs/'))).not.toEqual([]);
      expect(scans).toBeGreaterThan(0);
      expect(leaks).toEqual([]);
      // Other failures of an authenticated pull keep ctr's reason.
      const missing = `docker://${secured.host}/private-nope-${process.pid}:v1`;
      const err = await backend
        .create({ handle: 'missing', rootfs: missing, imageCredentials: auth })
        .catch((e: unknown) => e as Error);
      expect((err as Error).message).toMatch(/^pulling docker:\/\/.*private-nope-\d+:v1.* failed: .*not found/);
    });

    it('fails the create, naming the image, without or with wrong credentials', { timeout: 120_000 }, async () => {
      const none = fresh('nocreds');
      const err1 = await backend.create({ handle: 'nocreds', rootfs: none }).catch((e: unknown) => e as Error);
      expect(err1).toBeInstanceOf(Error);
      expect((err1 as Error).message).toBe(
        `pulling ${none} (${none.slice('docker://'.length)}) failed: ` +
          'the registry wants credentials (401 Unauthorized) and the container has none',
      );
      const wrong = fresh('wrongcreds');
      const bad = { username: 'diego', password: `wrong-${auth.password}` };
      const err2 = await backend
        .create({ handle: 'wrongcreds', rootfs: wrong, imageCredentials: bad })
        .catch((e: unknown) => e as Error);
      expect(err2).toBeInstanceOf(Error);
      expect((err2 as Error).message).toBe(
        `pulling ${wrong} (${wrong.slice('docker://'.length)}) failed: ` +
          "the registry refused the credentials of user 'diego' (401 Unauthorized)",
      );
      expect((err2 as Error).message).not.toContain(bad.password);
      expect(String((err2 as Error).cause)).not.toContain(bad.password);
      expect(await backend.list()).toEqual([]);
      expect(containerd.ctr('diego', 'images', 'ls', '-q')).not.toMatch(/nocreds|wrongcreds/);
      expect(leaks).toEqual([]);
    });
  });

  it(
    'destroys without leaving tasks, containers, snapshots, mounts, cgroups, netns or processes',
    {
      timeout: 60_000,
    },
    async () => {
      const c = await backend.create({ handle: 'gone', limits: { memoryMb: 32 }, netIn: [{ containerPort: 8080 }] });
      const p = await c.run({ path: 'sleep', args: ['30'] }, collect());
      const id = backend.containerId('gone');
      const snapshotsBefore = containerd.ctr('diego', 'snapshots', 'ls').split('\n').length;
      await backend.destroy('gone');
      await backend.destroy('gone'); // idempotent
      expect(await p.wait()).toBe(137);
      expect(alive(p.pid)).toBe(false);
      expect(containerd.ctr('diego', 'tasks', 'ls')).not.toContain(id);
      expect(containerd.ctr('diego', 'containers', 'ls', '-q')).not.toContain(id);
      expect(containerd.ctr('diego', 'snapshots', 'ls').split('\n').length).toBe(snapshotsBefore - 1);
      expect(await readFile('/proc/self/mountinfo', 'utf8')).not.toContain(id);
      expect(cgroupFile(id, 'memory', 'cgroup.procs', 'cgroup.procs')).toBeUndefined();
      expect(existsSync(`/var/run/netns/${id}`)).toBe(false);
      expect(existsSync(path.join(backend.stateDir, 'procs', id))).toBe(false);
      expect(execFileSync('iptables', ['-t', 'nat', '-S']).toString()).not.toContain(id);
      expect(await backend.list()).toEqual([]);
    },
  );

  it('lets a restarted agent re-adopt its containers', { timeout: 60_000 }, async () => {
    const c = await backend.create({ handle: 'adopt', properties: { k: 'v' }, env: [{ name: 'E', value: '1' }] });
    const mapping = await c.netIn(8080, 61235);
    // A long-running process started by this agent, still running when the next one takes over.
    const script =
      'trap "echo bye; exit 0" TERM; echo started; while :; do sleep 0.2; [ -f /tmp/go ] && echo go && rm /tmp/go; done';
    const before = collect();
    const app = await c.run({ path: '/bin/sh', args: ['-c', script], tag: 'action' }, before);
    await eventually(() => before.out.length > 0, 10_000);
    expect(before.out).toEqual(['started']);
    const again = make();
    expect(await again.list()).toEqual(['adopt']);
    const c2 = await again.lookup('adopt');
    expect(c2?.properties).toEqual({ k: 'v' });
    expect((await c2!.info()).ports).toEqual([mapping]);
    expect((await c2!.info()).ip).toBe((await c.info()).ip);
    const io = collect();
    await (await c2!.run({ path: '/bin/sh', args: ['-c', 'echo $E'] }, io)).wait();
    expect(io.out).toEqual(['1']);
    // Its process is listed with its tag and re-attached: output from now on, signals and the exit status.
    const records = (await c2!.processes!()).filter((r) => r.tag === 'action');
    expect(records).toEqual([{ id: expect.any(String), pid: app.pid, tag: 'action' }]);
    const after = collect();
    const attached = await c2!.attach!(records[0]!.id, after);
    await sh(c2!, 'touch /tmp/go');
    await eventually(() => after.out.length > 0, 10_000);
    expect(after.out).toEqual(['go']);
    attached.signal('SIGTERM');
    expect(await attached.wait()).toBe(0);
    expect(after.out).toEqual(['go', 'bye']);
    expect((await c2!.processes!()).find((r) => r.id === records[0]!.id)?.exitStatus).toBe(0);
    const other = new ContainerdBackend({ address: containerd.address, stateDir: path.join(dir, 'o'), idPrefix: 'x-' });
    expect(await other.list()).toEqual([]);
    await again.destroy('adopt');
  });

  it('is what `cell-agent --backend containerd --containerd-address <sock>` runs', { timeout: 60_000 }, async () => {
    const picked = pickBackend('containerd', path.join(dir, 'cli'), createLogger('silent'), {
      containerdAddress: containerd.address,
    });
    expect(picked).toBeInstanceOf(ContainerdBackend);
    expect((picked as ContainerdBackend).address).toBe(containerd.address);
    expect(await picked.list()).toEqual([]);
  });

  it('runs executor run actions', { timeout: 60_000 }, async () => {
    const c = await backend.create({ handle: 'exec', env: [{ name: 'FROM_CONTAINER', value: 'yes' }] });
    const { logs, run } = runActions(c);
    await run('echo "$FROM_CONTAINER $(id -u)"');
    expect(logs.map((m) => m.line)).toEqual(['yes 2000', 'Exit status 0']);
    await expect(run('exit 3')).rejects.toThrow();
    expect(logs.at(-1)?.line).toBe('Exit status 3');
  });
});
