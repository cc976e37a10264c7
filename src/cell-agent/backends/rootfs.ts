// Root filesystems for the runc backend. Only 'preloaded:busybox' exists so far: a directory holding Debian's
// busybox-static as /bin/busybox plus one symlink per applet (sh, echo, tar, httpd, ...), an /etc/passwd with
// root and vcap (uid 2000, as in cflinuxfs), and empty mount points. It is built once per machine into a cache
// directory ($DIEGO_ROOTFS_DIR, else ~/.cache/diego-operator/rootfs) and shared read-only by every container
// (each container writes to an overlay upper dir or to its own copy, see runc.ts).
import { execFile } from 'node:child_process';
import { access, chmod, chown, copyFile, mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** Where Debian's busybox-static installs the binary. */
export const BUSYBOX_BINARY = '/bin/busybox';

export const ETC_PASSWD = [
  'root:x:0:0:root:/root:/bin/sh',
  'vcap:x:2000:2000:vcap:/home/vcap:/bin/sh',
  'nobody:x:65534:65534:nobody:/nonexistent:/bin/false',
  '',
].join('\n');

export const ETC_GROUP = ['root:x:0:', 'vcap:x:2000:', 'nogroup:x:65534:', ''].join('\n');

export function defaultRootfsCacheDir(): string {
  return process.env.DIEGO_ROOTFS_DIR ?? path.join(homedir(), '.cache', 'diego-operator', 'rootfs');
}

/** The rootfs directory for a rootfs URL, built on first use. Rejects URLs we cannot provide. */
export async function resolveRootfs(url: string | undefined, cacheDir = defaultRootfsCacheDir()): Promise<string> {
  const name = url ?? 'preloaded:busybox';
  if (name === 'preloaded:busybox') return ensureBusyboxRootfs(cacheDir);
  throw new Error(`unsupported rootfs '${name}' (only preloaded:busybox is available)`);
}

const building = new Map<string, Promise<string>>();

/** Builds <cacheDir>/busybox once (atomically: built aside, then renamed into place) and returns its path. */
export function ensureBusyboxRootfs(cacheDir = defaultRootfsCacheDir()): Promise<string> {
  const dir = path.join(path.resolve(cacheDir), 'busybox');
  let pending = building.get(dir);
  if (!pending) {
    pending = buildOnce(dir).finally(() => building.delete(dir));
    building.set(dir, pending);
  }
  return pending;
}

async function buildOnce(dir: string): Promise<string> {
  if (await exists(path.join(dir, 'bin', 'busybox'))) return dir;
  if (!(await exists(BUSYBOX_BINARY))) {
    throw new Error(`${BUSYBOX_BINARY} is missing: install Debian's busybox-static (hack/install-deps.sh)`);
  }
  await mkdir(path.dirname(dir), { recursive: true });
  const tmp = await mkdtemp(`${dir}.tmp-`);
  try {
    await buildBusyboxRootfs(tmp);
    try {
      await rename(tmp, dir);
    } catch (err) {
      // Another agent on this machine won the race: its copy is as good as ours.
      if (!(await exists(path.join(dir, 'bin', 'busybox')))) throw err;
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return dir;
}

/** Writes a busybox root filesystem into the (existing, empty) directory `root`. */
export async function buildBusyboxRootfs(root: string): Promise<void> {
  await chmod(root, 0o755);
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'proc', 'sys', 'dev', 'root', 'home/vcap', 'var/tmp']) {
    await mkdir(path.join(root, d), { recursive: true, mode: 0o755 });
  }
  await mkdir(path.join(root, 'tmp'), { mode: 0o1777 });
  await chmod(path.join(root, 'tmp'), 0o1777);
  await copyFile(BUSYBOX_BINARY, path.join(root, 'bin', 'busybox'));
  await chmod(path.join(root, 'bin', 'busybox'), 0o755);
  const { stdout } = await execFileAsync(BUSYBOX_BINARY, ['--list']);
  for (const applet of stdout.split('\n')) {
    // `busybox --list` names busybox itself: a symlink there would replace the binary with a loop.
    if (applet === '' || applet === 'busybox' || applet.includes('/')) continue;
    await symlink('busybox', path.join(root, 'bin', applet));
  }
  await writeFile(path.join(root, 'etc', 'passwd'), ETC_PASSWD);
  await writeFile(path.join(root, 'etc', 'group'), ETC_GROUP);
  await writeFile(path.join(root, 'etc', 'hosts'), '127.0.0.1 localhost\n::1 localhost\n');
  await chown(path.join(root, 'home', 'vcap'), 2000, 2000);
}

async function exists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  );
}
