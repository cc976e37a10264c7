// A private containerd for tests: its own config, root, state and gRPC socket in a temporary directory, no
// system service and no CRI plugin. stop() deletes whatever tasks and containers are left, stops containerd by
// its pid and unmounts anything left under its directories, so nothing outlives the test file.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface TestContainerd {
  dir: string;
  /** The gRPC socket (`ctr --address`). */
  address: string;
  root: string;
  state: string;
  /** overlayfs where containerd could load it, else native (e.g. when the temp dir is itself on overlayfs). */
  snapshotter: 'overlayfs' | 'native';
  /** Runs ctr against this containerd (namespace `ns`); returns stdout. */
  ctr(ns: string, ...args: string[]): string;
  stop(): Promise<void>;
}

/** Why containerd cannot run here, or undefined when it can (root, containerd and ctr installed). */
export function containerdUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'containerd needs root';
  for (const bin of ['containerd', 'ctr', 'containerd-shim-runc-v2', 'runc']) {
    if (spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0) {
      return `${bin} is not installed (hack/install-deps.sh installs Debian's containerd)`;
    }
  }
  if (!existsSync('/bin/busybox')) return "/bin/busybox is missing (Debian's busybox-static)";
  return undefined;
}

export async function startContainerd(): Promise<TestContainerd> {
  const dir = await mkdtemp(path.join(tmpdir(), 'containerd-test-'));
  const root = path.join(dir, 'root');
  const state = path.join(dir, 'state');
  const address = path.join(dir, 'containerd.sock');
  // Plugins that cannot work here (CRI; btrfs, zfs, devmapper and aufs snapshotters; tracing) are disabled.
  const config = [
    'version = 2',
    `root = ${JSON.stringify(root)}`,
    `state = ${JSON.stringify(state)}`,
    'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", ' +
      '"io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", ' +
      '"io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp", ' +
      '"io.containerd.internal.v1.tracing"]',
    '[grpc]',
    `  address = ${JSON.stringify(address)}`,
    '[ttrpc]',
    `  address = ${JSON.stringify(`${address}.ttrpc`)}`,
    '[debug]',
    '  level = "warn"',
    '[metrics]',
    '  address = ""',
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = ${JSON.stringify(path.join(dir, 'opt'))}`,
    '',
  ].join('\n');
  await writeFile(path.join(dir, 'config.toml'), config);
  const logFile = path.join(dir, 'containerd.log');
  const child: ChildProcess = spawn(
    'sh',
    ['-c', 'exec containerd --config "$1" >"$2" 2>&1', 'sh', path.join(dir, 'config.toml'), logFile],
    { stdio: 'ignore' },
  );
  // ctr runs synchronously: until it returns, nothing else in this process runs, not even the test's timeout. A
  // containerd (or shim) that stops answering fails the call instead.
  const timeout = 60_000;
  const ctr = (ns: string, ...args: string[]) =>
    execFileSync('ctr', ['--address', address, '--namespace', ns, ...args], { encoding: 'utf8', timeout });
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(`containerd exited (${child.exitCode}): ${await readFile(logFile, 'utf8').catch(() => '')}`);
    }
    if (existsSync(address) && spawnSync('ctr', ['--address', address, 'version'], { timeout }).status === 0) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`containerd did not come up: ${await readFile(logFile, 'utf8').catch(() => '')}`);
    }
    await sleep(50);
  }

  let overlay: boolean;
  try {
    overlay = ctr('default', 'plugins', 'ls')
      .split('\n')
      .some((l) => /io\.containerd\.snapshotter\.v1\s+overlayfs\s.*\sok\s*$/.test(l));
  } catch (err) {
    child.kill('SIGKILL'); // nobody has a stop() for it yet
    throw err;
  }
  const snapshotter = overlay ? 'overlayfs' : 'native';

  const stop = async () => {
    // Whatever ctr answers (it fails once `timeout` has passed), containerd is stopped and its mounts undone below.
    const list = (ns: string, ...args: string[]) => {
      try {
        return ctr(ns, ...args);
      } catch {
        return '';
      }
    };
    for (const ns of list('default', 'namespaces', 'ls', '-q').split('\n').filter(Boolean)) {
      for (const line of list(ns, 'tasks', 'ls').split('\n').slice(1)) {
        const id = line.trim().split(/\s+/)[0];
        if (id)
          spawnSync('ctr', ['--address', address, '--namespace', ns, 'tasks', 'delete', '--force', id], { timeout });
      }
      for (const id of list(ns, 'containers', 'ls', '-q').split('\n').filter(Boolean)) {
        spawnSync('ctr', ['--address', address, '--namespace', ns, 'containers', 'delete', id], { timeout });
      }
    }
    if (child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(10_000)]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    // Unmount what is left below our directory (snapshots, task rootfs), deepest first.
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[4])
      .filter((p): p is string => p !== undefined && p.startsWith(dir + '/'))
      .sort((a, b) => b.length - a.length);
    for (const m of mounts) spawnSync('umount', ['-l', m]);
    await rm(dir, { recursive: true, force: true });
  };
  return { dir, address, root, state, snapshotter, ctr, stop };
}
