// The preloaded root filesystems: the --stacks mapping, and the Debian rootfs (mmdebstrap, built once per machine
// into the same cache the cell agent uses, so only the first run on a machine pays for the build, about a minute)
// running real containers under runc and under a private containerd. Needs root, runc, containerd, mmdebstrap and
// Debian's mirror (hack/install-deps.sh installs the packages).
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerdUnavailable, startContainerd, type TestContainerd } from '../../../test/support/containerd.ts';
import { ContainerdBackend } from './containerd.ts';
import {
  DEFAULT_STACKS,
  ensureDebianRootfs,
  parseStacks,
  preloadedRootfsOf,
  resolveRootfs,
  rootfsId,
  type StackMap,
} from './rootfs.ts';
import { RuncBackend } from './runc.ts';
import { sh } from './testing.ts';
import type { ContainerBackend } from './types.ts';

describe('parseStacks', () => {
  it('maps stacks to root filesystems: explicit, or obvious from the name', () => {
    expect(parseStacks(['busybox'])).toEqual({ busybox: 'busybox' });
    expect(parseStacks(['cflinuxfs4', 'busybox'])).toEqual({ cflinuxfs4: 'debian', busybox: 'busybox' });
    expect(parseStacks(['cflinuxfs3', 'debian'])).toEqual({ cflinuxfs3: 'debian', debian: 'debian' });
    expect(parseStacks(['cflinuxfs4=busybox', 'my-stack=debian', ''])).toEqual({
      cflinuxfs4: 'busybox',
      'my-stack': 'debian',
    });
  });

  it('rejects what it cannot map, naming the entry', () => {
    expect(() => parseStacks(['busybx'])).toThrow(
      "--stacks: which root filesystem does stack 'busybx' run? Write busybx=busybox or busybx=debian",
    );
    expect(() => parseStacks(['cflinuxfs4=ubuntu'])).toThrow("unknown root filesystem 'ubuntu' (busybox or debian)");
    expect(() => parseStacks(['=debian'])).toThrow('no valid stack name');
    expect(() => parseStacks(['a=busybox', 'a=debian'])).toThrow("stack 'a' is given twice");
    expect(() => parseStacks([])).toThrow('no stack given');
  });
});

describe('preloadedRootfsOf', () => {
  const stacks: StackMap = { cflinuxfs4: 'debian', busybox: 'busybox' };
  it('resolves preloaded:<stack> through the mapping; no rootfs is busybox', () => {
    expect(preloadedRootfsOf('preloaded:cflinuxfs4', stacks)).toBe('debian');
    expect(preloadedRootfsOf('preloaded:busybox', stacks)).toBe('busybox');
    expect(preloadedRootfsOf(undefined, stacks)).toBe('busybox');
    expect(preloadedRootfsOf('preloaded:busybox')).toBe('busybox');
    expect(DEFAULT_STACKS).toEqual({ busybox: 'busybox' });
  });

  it('rejects other stacks and schemes, saying what the cell runs', async () => {
    expect(() => preloadedRootfsOf('preloaded:cflinuxfs4')).toThrow(
      "unsupported rootfs 'preloaded:cflinuxfs4' (this cell runs preloaded:busybox)",
    );
    expect(() => preloadedRootfsOf('preloaded:toString', stacks)).toThrow('unsupported rootfs');
    expect(() => preloadedRootfsOf('docker:///ubuntu', stacks, ['docker://<image>'])).toThrow(
      "unsupported rootfs 'docker:///ubuntu' (this cell runs preloaded:cflinuxfs4, preloaded:busybox, docker://<image>)",
    );
    await expect(resolveRootfs('preloaded:nope', undefined, stacks)).rejects.toThrow('unsupported rootfs');
  });

  it('names the Debian rootfs after its recipe', () => {
    expect(rootfsId('busybox')).toBe('busybox');
    expect(rootfsId('debian')).toMatch(/^debian-bookworm-[0-9a-f]{12}$/);
  });
});

const unavailable = containerdUnavailable();
// Like the runc and containerd backend tests: fail loudly where they cannot run, never skip.
if (unavailable)
  throw new Error(`the Debian rootfs tests cannot run here: ${unavailable} (root, hack/install-deps.sh)`);

describe('the Debian rootfs (preloaded:cflinuxfs4)', () => {
  let dir: string;
  let debian: string;
  const stacks = parseStacks(['cflinuxfs4', 'busybox']);
  const prefix = `r${process.pid}-`;
  /** Runs what a cflinuxfs app expects to find, as root and as vcap. */
  const expectCflinuxfsTools = async (backend: ContainerBackend, handle: string) => {
    const c = await backend.create({ handle, rootfs: 'preloaded:cflinuxfs4' });
    try {
      const r = await sh(c, "bash -c 'curl --version; nc -h; id vcap'");
      expect(r.status).toBe(0);
      expect(r.out[0]).toMatch(/^curl \d+\.\d+\.\d+ .*OpenSSL/);
      expect(r.out.at(-1)).toBe('uid=2000(vcap) gid=2000(vcap) groups=2000(vcap)');
      expect(r.err.join('\n')).toContain('OpenBSD netcat');
      const vcap = await sh(
        c,
        'echo "$(id -un) $HOME $(stat -c %u /home/vcap)"; bash --version | head -1; openssl version; ' +
          'ps -o pid= -p $$; test -s /etc/ssl/certs/ca-certificates.crt && echo certs; echo x | gzip | gunzip',
        { user: 'vcap', dir: '/home/vcap' },
      );
      expect(vcap.status).toBe(0);
      expect(vcap.out).toEqual([
        'vcap /home/vcap 2000',
        expect.stringMatching(/^GNU bash, version 5\./),
        expect.stringMatching(/^OpenSSL 3\./),
        expect.stringMatching(/^\s*\d+$/),
        'certs',
        'x',
      ]);
    } finally {
      await backend.destroy(handle);
    }
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'rootfs-debian-'));
    // Cached on this machine after the first build (about a minute on 2 cores; the mirror must be reachable).
    debian = await ensureDebianRootfs();
  }, 900_000);

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('is built once, complete, with vcap and root', async () => {
    expect(path.basename(debian)).toBe(rootfsId('debian'));
    expect(await ensureDebianRootfs()).toBe(debian);
    expect(await resolveRootfs('preloaded:cflinuxfs4', undefined, stacks)).toBe(debian);
    const passwd = await readFile(path.join(debian, 'etc', 'passwd'), 'utf8');
    expect(passwd).toMatch(/^root:x:0:0:root:\/root:\/bin\/bash$/m);
    expect(passwd).toMatch(/^vcap:x:2000:2000:[^:]*:\/home\/vcap:\/bin\/bash$/m);
    expect((await stat(path.join(debian, 'home', 'vcap'))).uid).toBe(2000);
    // Nothing of the build is left in the image: no apt lists, no .debs, no host resolv.conf.
    await expect(stat(path.join(debian, 'etc', 'resolv.conf'))).rejects.toThrow(/ENOENT/);
    const leftovers = [
      ...(await readdir(path.join(debian, 'var', 'cache', 'apt', 'archives'))),
      ...(await readdir(path.join(debian, 'var', 'lib', 'apt', 'lists'))),
    ];
    expect(leftovers.filter((f) => f !== 'lock' && f !== 'partial')).toEqual([]);
    expect(await readFile(path.join(debian, 'etc', 'hosts'), 'utf8')).toContain('127.0.0.1 localhost');
  });

  it('runs bash, curl, nc and vcap in a runc container', { timeout: 120_000 }, async () => {
    const backend = new RuncBackend({ stateDir: path.join(dir, 'runc'), idPrefix: prefix, stacks, outputDrainMs: 100 });
    await expectCflinuxfsTools(backend, 'debian-runc');
    // The busybox stack of the same cell still is busybox.
    const bb = await backend.create({ handle: 'busybox-runc', rootfs: 'preloaded:busybox' });
    expect((await sh(bb, 'readlink /bin/sh')).out).toEqual(['busybox']);
    await backend.destroy('busybox-runc');
    await expect(backend.create({ handle: 'x', rootfs: 'preloaded:cflinuxfs3' })).rejects.toThrow(
      "unsupported rootfs 'preloaded:cflinuxfs3' (this cell runs preloaded:cflinuxfs4, preloaded:busybox)",
    );
    expect(await backend.list()).toEqual([]);
  });

  describe('under containerd', () => {
    let containerd: TestContainerd;
    beforeAll(async () => {
      containerd = await startContainerd();
    }, 60_000);
    afterAll(async () => {
      await containerd?.stop();
    }, 60_000);

    it('imports it as an image and runs bash, curl, nc and vcap', { timeout: 300_000 }, async () => {
      const backend = new ContainerdBackend({
        address: containerd.address,
        snapshotter: containerd.snapshotter,
        stateDir: path.join(dir, 'containerd'),
        idPrefix: prefix,
        stacks,
        outputDrainMs: 100,
      });
      await expectCflinuxfsTools(backend, 'debian-ctr');
      expect(containerd.ctr('diego', 'images', 'ls', '-q').split('\n')).toContain(
        `diego.local/preloaded/${rootfsId('debian')}:latest`,
      );
      expect(await backend.list()).toEqual([]);
    });
  });
});
